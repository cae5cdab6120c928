//! Kernel options and shape rules shared by the GPU launchers (`gpu::ops`) and their CPU
//! references (`cpu::ops`), so both sides accept exactly the same calls.

use crate::error::{Result, ensure};

pub use crate::activation::{Activation, Saved};

/// C = op(A) * op(B) [+ C] [+ bias], then the activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulSpec {
    /// A is stored [K, M] and used transposed.
    pub trans_a: bool,
    /// B is stored [N, K] and used transposed.
    pub trans_b: bool,
    /// Add the product to C instead of overwriting it.
    pub accumulate: bool,
    /// Applied to each element of C last.
    pub activation: Activation,
}

impl MatmulSpec {
    /// C = A B: no transposes, bias, accumulation or activation.
    pub const PLAIN: MatmulSpec = MatmulSpec {
        trans_a: false,
        trans_b: false,
        accumulate: false,
        activation: Activation::Identity,
    };

    /// x W^T, then `act`: a Linear layer's or a convolution's forward product, with PyTorch's
    /// [out, in] weight.
    pub fn by_weight(act: Activation) -> MatmulSpec {
        MatmulSpec {
            trans_b: true,
            activation: act,
            ..MatmulSpec::PLAIN
        }
    }

    /// dW += dy^T x: a weight gradient, accumulated over the backward passes of a step.
    pub const WEIGHT_GRAD: MatmulSpec = MatmulSpec {
        trans_a: true,
        accumulate: true,
        ..MatmulSpec::PLAIN
    };

    /// (M, N, K) from the operand shapes, or a shape error.
    pub fn dims(
        &self,
        a: &[usize],
        b: &[usize],
        bias: Option<&[usize]>,
        c: &[usize],
    ) -> Result<(usize, usize, usize)> {
        ensure(a.len() == 2 && b.len() == 2 && c.len() == 2, || {
            format!("matmul takes 2-D operands, got A {a:?}, B {b:?}, C {c:?}")
        })?;
        let (m, k) = if self.trans_a {
            (a[1], a[0])
        } else {
            (a[0], a[1])
        };
        let (kb, n) = if self.trans_b {
            (b[1], b[0])
        } else {
            (b[0], b[1])
        };
        ensure(k == kb && c[0] == m && c[1] == n && m * n * k > 0, || {
            format!("matmul {self:?}: A {a:?}, B {b:?} and C {c:?} do not fit")
        })?;
        if let Some(bias) = bias {
            ensure(bias == [n], || {
                format!("matmul bias {bias:?} must be [{n}]")
            })?;
        }
        ensure(
            !(self.accumulate && self.activation != Activation::Identity),
            || "matmul cannot both accumulate and apply an activation".to_string(),
        )?;
        Ok((m, n, k))
    }
}

/// 2-D convolution geometry on NHWC tensors: x [B, H, W, C] -> y [B, OH, OW, C_out].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvGeom {
    /// Images in the batch (B).
    pub batch: usize,
    /// Input height (H).
    pub height: usize,
    /// Input width (W).
    pub width: usize,
    /// Input channels (C).
    pub channels: usize,
    /// Kernel side (K).
    pub kernel: usize,
    /// Stride, both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl ConvGeom {
    /// A `kernel` x `kernel` convolution of `stride` and `padding` over x [B, H, W, C].
    pub fn new(input: [usize; 4], kernel: usize, stride: usize, padding: usize) -> ConvGeom {
        let [batch, height, width, channels] = input;
        ConvGeom {
            batch,
            height,
            width,
            channels,
            kernel,
            stride,
            padding,
        }
    }

    /// Output height OH.
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }
    /// Output width OW.
    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }
    /// x's shape [B, H, W, C].
    pub fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.height, self.width, self.channels]
    }
    /// im2col's matrix: [B * OH * OW, C * K * K].
    pub fn cols_shape(&self) -> [usize; 2] {
        [
            self.batch * self.out_height() * self.out_width(),
            self.channels * self.kernel * self.kernel,
        ]
    }
    /// Checks that the geometry is valid and that x and cols have its shapes (by element count).
    pub fn check(&self, x: &[usize], cols: &[usize]) -> Result<()> {
        ensure(
            self.batch * self.channels * self.stride > 0
                && self.kernel > 0
                && self.height + 2 * self.padding >= self.kernel
                && self.width + 2 * self.padding >= self.kernel,
            || format!("invalid convolution geometry {self:?}"),
        )?;
        let n: usize = x.iter().product();
        ensure(n == self.input_shape().iter().product::<usize>(), || {
            format!("conv input {x:?} does not match {:?}", self.input_shape())
        })?;
        ensure(cols == self.cols_shape(), || {
            format!("im2col matrix {cols:?} must be {:?}", self.cols_shape())
        })
    }
}

/// The one alpha shared by two activations fused into a kernel (LeakyReLU's, or 0).
pub fn fused_alpha(a: Activation, b: Activation) -> Result<f32> {
    a.ensure_fusable("batch-norm backward")?;
    b.ensure_fusable("batch-norm backward")?;
    match (a, b) {
        (Activation::LeakyRelu(x), Activation::LeakyRelu(y)) if x != y => Err(
            crate::error::Error::Shape(format!("fused LeakyReLUs need one alpha, got {x} and {y}")),
        ),
        (Activation::LeakyRelu(x), _) | (_, Activation::LeakyRelu(x)) => Ok(x),
        _ => Ok(0.0),
    }
}

/// What a batch-norm backward does with dgamma and dbeta.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamGrads {
    /// Only dx is wanted (gradients flowing through a frozen network).
    Skip,
    /// dgamma and dbeta are overwritten.
    Write,
    /// dgamma and dbeta are added to.
    Accumulate,
}

/// Batch-norm channel count from x [rows, C] (any leading dims) and the per-channel tensors.
pub fn batch_norm_dims(x: &[usize], per_channel: &[&[usize]]) -> Result<(usize, usize)> {
    ensure(x.len() >= 2, || {
        format!("batch norm input {x:?} needs [rows.., C]")
    })?;
    let c = *x.last().unwrap_or(&0);
    let rows: usize = x[..x.len() - 1].iter().product();
    for s in per_channel {
        ensure(*s == [c], || {
            format!("batch norm per-channel tensor {s:?} must be [{c}]")
        })?;
    }
    ensure(rows * c > 0, || format!("batch norm input {x:?} is empty"))?;
    Ok((rows, c))
}

/// Adam hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamSpec {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the second moment's root.
    pub eps: f32,
}

impl AdamSpec {
    /// The article's optimiser: Adam(2e-4, beta1 0.5), Keras' beta2 and epsilon.
    pub const GAN: AdamSpec = AdamSpec {
        lr: 2e-4,
        beta1: 0.5,
        beta2: 0.999,
        eps: 1e-7,
    };

    /// `torch.optim.Adam`'s defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8.
    pub const PYTORCH: AdamSpec = AdamSpec {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    /// (1 - beta1^t, 1 - beta2^t) for step t >= 1, computed in f64.
    pub fn bias_corrections(&self, t: u64) -> (f32, f32) {
        let t = t.min(i32::MAX as u64) as i32;
        (
            (1.0 - (self.beta1 as f64).powi(t)) as f32,
            (1.0 - (self.beta2 as f64).powi(t)) as f32,
        )
    }
}

/// Checks that two shapes have as many elements (naming `what`); returns the count.
pub fn same_len(what: &str, a: &[usize], b: &[usize]) -> Result<usize> {
    let (na, nb) = (a.iter().product::<usize>(), b.iter().product::<usize>());
    ensure(na == nb && na > 0, || {
        format!("{what}: {a:?} and {b:?} must have the same non-zero size")
    })?;
    Ok(na)
}

/// (rows, cols) of a non-empty matrix.
pub fn matrix_dims(x: &[usize]) -> Result<(usize, usize)> {
    ensure(x.len() == 2 && x.iter().all(|&d| d > 0), || {
        format!("expected a non-empty matrix, got {x:?}")
    })?;
    Ok((x[0], x[1]))
}

/// (batch, pixels) of a gathered batch `dst` reading `order[offset..offset + batch]`.
pub fn gather_dims(dst: &[usize], order_len: usize, offset: usize) -> Result<(usize, usize)> {
    ensure(dst.len() >= 2 && dst[0] > 0, || {
        format!("batch {dst:?} must be [B, pixels..]")
    })?;
    let batch = dst[0];
    let pixels = dst[1..].iter().product::<usize>();
    ensure(
        offset + batch <= order_len && pixels.is_multiple_of(4),
        || {
            format!(
                "batch of {batch} at {offset} outside {order_len} indices (or {pixels} pixels not a multiple of 4)"
            )
        },
    )?;
    Ok((batch, pixels))
}

/// (rows, classes) of a softmax cross-entropy: logits [B, C], labels `[B]`, grad like logits.
pub fn cross_entropy_dims(
    logits: &[usize],
    labels: &[usize],
    grad: &[usize],
    stats_len: usize,
    slot: usize,
) -> Result<(usize, usize)> {
    let (rows, classes) = matrix_dims(logits)?;
    ensure(
        labels == [rows] && grad == logits && slot + 2 <= stats_len,
        || {
            format!(
                "cross-entropy: logits {logits:?}, labels {labels:?}, grad {grad:?}, slot {slot} of {stats_len}"
            )
        },
    )?;
    Ok((rows, classes))
}

// The shape rules of each kernel, one function per kernel, called by its launcher in `gpu::ops`
// and by its CPU twin in `cpu::ops` before any work. Each returns the sizes the kernel runs over.

/// col2im: `dcols` is the im2col matrix of `dx`'s geometry; `through` (the output of the
/// activation dx is taken through, and that activation) has dx's size. Returns dx's element
/// count.
pub fn col2im_dims(
    geom: &ConvGeom,
    dcols: &[usize],
    dx: &[usize],
    through: Option<(&[usize], Activation)>,
) -> Result<usize> {
    geom.check(dx, dcols)?;
    if let Some((y, act)) = through {
        act.ensure_fusable("col2im")?;
        same_len("col2im activation output", dx, y)?;
    }
    Ok(dx.iter().product())
}

/// A convolution y = act(im2col(x) W^T + b): x [B, H, W, C], weight [C_out, C*K*K], bias
/// `[C_out]`, y [B*OH*OW, C_out] (or any shape of as many elements): C_out.
pub fn conv2d_dims(
    geom: &ConvGeom,
    x: &[usize],
    weight: &[usize],
    bias: &[usize],
    y: &[usize],
) -> Result<usize> {
    let out = conv2d_grad_dims(geom, y, weight, x)?;
    ensure(bias == [out], || {
        format!("convolution bias {bias:?} must be [{out}]")
    })?;
    Ok(out)
}

/// A convolution's gradients: dy [B*OH*OW, C_out] (any shape of as many elements), a weight or
/// its gradient [C_out, C*K*K], and x or dx [B, H, W, C]: C_out.
pub fn conv2d_grad_dims(
    geom: &ConvGeom,
    dy: &[usize],
    weight: &[usize],
    x: &[usize],
) -> Result<usize> {
    let [rows, depth] = geom.cols_shape();
    geom.check(x, &[rows, depth])?;
    ensure(
        weight.len() == 2 && weight[1] == depth && weight[0] > 0,
        || format!("convolution weight {weight:?} must be [C_out, {depth}]"),
    )?;
    let out = weight[0];
    ensure(dy.iter().product::<usize>() == rows * out, || {
        format!("convolution output {dy:?} must hold [{rows}, {out}]")
    })?;
    Ok(out)
}

/// Batch statistics of x [rows.., C] into four per-channel tensors: (rows, C).
pub fn batch_norm_stats_dims(x: &[usize], per_channel: [&[usize]; 4]) -> Result<(usize, usize)> {
    batch_norm_dims(x, &per_channel)
}

/// Running statistics copied into mean / invstd: C.
pub fn batch_norm_running_dims(per_channel: [&[usize]; 4]) -> Result<usize> {
    let c = per_channel[0].iter().product();
    for s in &per_channel[1..] {
        ensure(*s == [c], || {
            format!("batch norm statistics {s:?} must be [{c}]")
        })?;
    }
    Ok(c)
}

/// y = act(BN(x)) with mean, invstd, gamma, beta: (rows, C).
pub fn batch_norm_apply_dims(
    x: &[usize],
    per_channel: [&[usize]; 4],
    y: &[usize],
) -> Result<(usize, usize)> {
    let dims = batch_norm_dims(x, &per_channel)?;
    same_len("batch norm output", x, y)?;
    Ok(dims)
}

/// Batch-norm backward: x, dy and dx (and the output of a fused activation after it) of one size,
/// five per-channel tensors (mean, invstd, gamma, dgamma, dbeta), and the two fused activations
/// sharing one alpha: (rows, C, alpha).
pub fn batch_norm_backward_dims(
    x: &[usize],
    per_channel: [&[usize]; 5],
    dy: &[usize],
    dx: &[usize],
    after: Option<(&[usize], Activation)>,
    before: Activation,
) -> Result<(usize, usize, f32)> {
    let (rows, c) = batch_norm_dims(x, &per_channel)?;
    same_len("batch norm dy", x, dy)?;
    same_len("batch norm dx", x, dx)?;
    if let Some((y, _)) = after {
        same_len("batch norm activation output", x, y)?;
    }
    let alpha = fused_alpha(after.map_or(Activation::Identity, |a| a.1), before)?;
    Ok((rows, c, alpha))
}

/// An activation forward (x, y) or backward (y, dy, dx): tensors of one size, its element count.
pub fn elementwise_dims(what: &str, first: &[usize], others: &[&[usize]]) -> Result<usize> {
    let mut n = first.iter().product();
    for o in others {
        n = same_len(what, first, o)?;
    }
    Ok(n)
}

/// BCE with logits: the gradient like the logits, and two statistics slots from `slot`.
pub fn bce_dims(logits: &[usize], grad: &[usize], stats_len: usize, slot: usize) -> Result<usize> {
    let n = same_len("bce gradient", logits, grad)?;
    ensure(slot + 2 <= stats_len, || {
        format!("bce slot {slot} outside {stats_len} statistics")
    })?;
    Ok(n)
}

/// The hinge loss's logits count; its sign must be +1 or -1.
pub fn hinge_dims(
    logits: &[usize],
    grad: &[usize],
    stats_len: usize,
    slot: usize,
    sign: f32,
) -> Result<usize> {
    ensure(sign == 1.0 || sign == -1.0, || {
        format!("hinge sign {sign}, expected +1 (real) or -1 (fake)")
    })?;
    bce_dims(logits, grad, stats_len, slot)
}

/// The element counts (parameters, state) of a moving average over a network; the decay in
/// [0, 1].
pub fn ema_dims(
    avg_params: &[usize],
    params: &[usize],
    avg_state: &[usize],
    state: &[usize],
    decay: f32,
) -> Result<(usize, usize)> {
    ensure((0.0..=1.0).contains(&decay), || {
        format!("moving-average decay {decay} outside [0, 1]")
    })?;
    let n = same_len("moving average of parameters", avg_params, params)?;
    let ns = same_len("moving average of state", avg_state, state)?;
    Ok((n, ns))
}

/// Sums of x [rows, cols] over its rows (`over_rows`, into `[cols]`) or its columns (into `[rows]`).
pub fn sum_dims(x: &[usize], out: &[usize], over_rows: bool) -> Result<(usize, usize)> {
    let (rows, cols) = matrix_dims(x)?;
    let want = if over_rows { cols } else { rows };
    ensure(out == [want], || {
        format!("sum of {x:?} into {out:?}, expected [{want}]")
    })?;
    Ok((rows, cols))
}

/// The mean of a non-empty x into one value: x's element count.
pub fn mean_all_dims(x: &[usize], out: &[usize]) -> Result<usize> {
    let n: usize = x.iter().product();
    ensure(out.iter().product::<usize>() == 1 && n > 0, || {
        format!("mean of {x:?} into {out:?}")
    })?;
    Ok(n)
}

/// x [rows.., C] += bias `[C]`: (x's element count, C).
pub fn add_bias_dims(x: &[usize], bias: &[usize]) -> Result<(usize, usize)> {
    let c = *x.last().unwrap_or(&0);
    ensure(bias == [c] && c > 0, || {
        format!("bias {bias:?} does not fit {x:?}")
    })?;
    Ok((x.iter().product(), c))
}

/// Labels `[B]` gathered from `order[offset..offset + B]`: B.
/// one_hot_concat: z [B, L], labels `[B]`, out [B, L + classes]; returns (B, L, classes).
pub fn one_hot_concat_dims(
    z: &[usize],
    labels: &[usize],
    out: &[usize],
) -> Result<(usize, usize, usize)> {
    ensure(
        z.len() == 2 && labels == [z[0]] && out.len() == 2 && out[0] == z[0] && out[1] > z[1],
        || format!("one_hot_concat: z {z:?}, labels {labels:?}, out {out:?}"),
    )?;
    Ok((z[0], z[1], out[1] - z[1]))
}

/// The projection term: features [B, F], embed [C, F], labels `[B]`, logits (or their gradient)
/// [B, 1]; returns (B, F, C).
pub fn projection_dims(
    features: &[usize],
    embed: &[usize],
    labels: &[usize],
    logits: &[usize],
) -> Result<(usize, usize, usize)> {
    ensure(
        features.len() == 2
            && embed.len() == 2
            && embed[1] == features[1]
            && labels == [features[0]]
            && logits == [features[0], 1],
        || {
            format!(
                "projection: features {features:?}, embed {embed:?}, labels {labels:?}, logits {logits:?}"
            )
        },
    )?;
    Ok((features[0], features[1], embed[0]))
}

/// gather_labels: dst `[B]` from `order` at `offset`. Returns B.
pub fn gather_labels_dims(dst: &[usize], order_len: usize, offset: usize) -> Result<usize> {
    let batch: usize = dst.iter().product();
    ensure(dst == [batch] && offset + batch <= order_len, || {
        format!("labels {dst:?} at {offset} outside {order_len} indices")
    })?;
    Ok(batch)
}
