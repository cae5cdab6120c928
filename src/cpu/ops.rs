//! CPU twins of `gpu::ops`: same names, same arguments (without the `Gpu`), same shape checks;
//! they run at once instead of returning a dispatch.

use crate::cpu::Tensor;
use crate::error::Result;
use crate::rng;
use crate::spec::{self, Activation, AdamSpec, ConvGeom, MatmulSpec, ParamGrads};

/// CPU reference of [`gpu::ops::matmul`](crate::gpu::ops::matmul): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn matmul(
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: MatmulSpec,
) -> Result<()> {
    let (m, n, k) = spec.dims(a.shape(), b.shape(), bias.map(|t| t.shape()), c.shape())?;
    let (av, bv) = (a.to_vec(), b.to_vec());
    let bias = bias.map(|t| t.to_vec());
    let old = c.to_vec();
    let mut out = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                let x = if spec.trans_a {
                    av[p * m + i]
                } else {
                    av[i * k + p]
                };
                let y = if spec.trans_b {
                    bv[j * k + p]
                } else {
                    bv[p * n + j]
                };
                acc += x as f64 * y as f64;
            }
            if spec.accumulate {
                acc += old[i * n + j] as f64;
            }
            if let Some(bias) = &bias {
                acc += bias[j] as f64;
            }
            out[i * n + j] = spec.activation.apply(acc as f32);
        }
    }
    c.write(&out)
}

/// Calls `f(col_index, input_index)` for every im2col entry that reads the input (padding skipped).
fn for_each_window(g: &ConvGeom, mut f: impl FnMut(usize, usize)) {
    let (oh, ow, k) = (g.out_height(), g.out_width(), g.kernel);
    let kk = g.channels * k * k;
    for b in 0..g.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let r = (b * oh + oy) * ow + ox;
                for c in 0..g.channels {
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                            let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                            if iy < 0 || ix < 0 || iy >= g.height as isize || ix >= g.width as isize
                            {
                                continue;
                            }
                            let src = ((b * g.height + iy as usize) * g.width + ix as usize)
                                * g.channels
                                + c;
                            f(r * kk + (c * k + ky) * k + kx, src);
                        }
                    }
                }
            }
        }
    }
}

/// CPU reference of [`gpu::ops::im2col`](crate::gpu::ops::im2col): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn im2col(x: &Tensor, cols: &Tensor, geom: ConvGeom) -> Result<()> {
    geom.check(x.shape(), cols.shape())?;
    let xv = x.to_vec();
    let mut out = vec![0.0; cols.len()];
    for_each_window(&geom, |dst, src| out[dst] = xv[src]);
    cols.write(&out)
}

/// CPU reference of [`gpu::ops::col2im`](crate::gpu::ops::col2im): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn col2im(
    dcols: &Tensor,
    dx: &Tensor,
    geom: ConvGeom,
    through: Option<(&Tensor, Activation)>,
) -> Result<()> {
    spec::col2im_dims(
        &geom,
        dcols.shape(),
        dx.shape(),
        through.map(|(y, act)| (y.shape(), act)),
    )?;
    let cv = dcols.to_vec();
    let mut out = vec![0.0f64; dx.len()];
    for_each_window(&geom, |col, x| out[x] += cv[col] as f64);
    let mut out: Vec<f32> = out.iter().map(|&v| v as f32).collect();
    if let Some((y, act)) = through {
        out.iter_mut()
            .zip(y.to_vec())
            .for_each(|(d, y)| *d *= act.derivative(y));
    }
    dx.write(&out)
}

/// y = act(im2col(x) W^T + b): the GPU's conv2d as the two operations it stands for.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    y: &Tensor,
    geom: ConvGeom,
    act: Activation,
) -> Result<()> {
    spec::conv2d_dims(&geom, x.shape(), weight.shape(), bias.shape(), y.shape())?;
    let cols = Tensor::zeros(&geom.cols_shape());
    im2col(x, &cols, geom)?;
    let spec = MatmulSpec::by_weight(act);
    matmul(
        &cols,
        weight,
        Some(bias),
        &y.reshape(&[cols.shape()[0], bias.len()])?,
        spec,
    )
}

/// dweight += dy^T im2col(x).
pub fn conv2d_weight_grad(dy: &Tensor, x: &Tensor, dweight: &Tensor, geom: ConvGeom) -> Result<()> {
    let out = spec::conv2d_grad_dims(&geom, dy.shape(), dweight.shape(), x.shape())?;
    let cols = Tensor::zeros(&geom.cols_shape());
    im2col(x, &cols, geom)?;
    let spec = MatmulSpec::WEIGHT_GRAD;
    matmul(
        &dy.reshape(&[cols.shape()[0], out])?,
        &cols,
        None,
        dweight,
        spec,
    )
}

/// dx = col2im(dy W) (through act at x's output, as col2im).
pub fn conv2d_input_grad(
    dy: &Tensor,
    weight: &Tensor,
    dx: &Tensor,
    geom: ConvGeom,
    through: Option<(&Tensor, Activation)>,
) -> Result<()> {
    let out = spec::conv2d_grad_dims(&geom, dy.shape(), weight.shape(), dx.shape())?;
    let dcols = Tensor::zeros(&geom.cols_shape());
    let dy = dy.reshape(&[dcols.shape()[0], out])?;
    matmul(&dy, weight, None, &dcols, MatmulSpec::PLAIN)?;
    col2im(&dcols, dx, geom, through)
}

/// Per-channel (mean, biased variance) of x [rows, C], in f64.
fn channel_moments(x: &[f32], rows: usize, c: usize) -> Vec<(f64, f64)> {
    (0..c)
        .map(|ch| {
            let mean = (0..rows).map(|r| x[r * c + ch] as f64).sum::<f64>() / rows as f64;
            let var = (0..rows)
                .map(|r| (x[r * c + ch] as f64 - mean).powi(2))
                .sum::<f64>()
                / rows as f64;
            (mean, var)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
/// CPU reference of [`gpu::ops::batch_norm_stats`](crate::gpu::ops::batch_norm_stats): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn batch_norm_stats(
    x: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    momentum: f32,
    eps: f32,
    update_running: bool,
) -> Result<()> {
    let (rows, c) = spec::batch_norm_stats_dims(
        x.shape(),
        [
            mean.shape(),
            invstd.shape(),
            running_mean.shape(),
            running_var.shape(),
        ],
    )?;
    let moments = channel_moments(&x.to_vec(), rows, c);
    mean.write(&moments.iter().map(|m| m.0 as f32).collect::<Vec<_>>())?;
    invstd.write(
        &moments
            .iter()
            .map(|m| (1.0 / (m.1 + eps as f64).sqrt()) as f32)
            .collect::<Vec<_>>(),
    )?;
    if update_running {
        let mo = momentum;
        running_mean.update(|r| {
            r.iter_mut()
                .zip(&moments)
                .for_each(|(r, m)| *r = mo * *r + (1.0 - mo) * m.0 as f32)
        });
        running_var.update(|r| {
            r.iter_mut()
                .zip(&moments)
                .for_each(|(r, m)| *r = mo * *r + (1.0 - mo) * m.1 as f32)
        });
    }
    Ok(())
}

/// CPU reference of [`gpu::ops::batch_norm_use_running`](crate::gpu::ops::batch_norm_use_running): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn batch_norm_use_running(
    running_mean: &Tensor,
    running_var: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    eps: f32,
) -> Result<()> {
    spec::batch_norm_running_dims([
        running_mean.shape(),
        running_var.shape(),
        mean.shape(),
        invstd.shape(),
    ])?;
    mean.write(&running_mean.to_vec())?;
    invstd.write(
        &running_var
            .to_vec()
            .iter()
            .map(|v| 1.0 / (v + eps).sqrt())
            .collect::<Vec<_>>(),
    )
}

#[allow(clippy::too_many_arguments)]
/// CPU reference of [`gpu::ops::batch_norm_apply`](crate::gpu::ops::batch_norm_apply): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn batch_norm_apply(
    x: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    y: &Tensor,
    act: Activation,
) -> Result<()> {
    let (_, c) = spec::batch_norm_apply_dims(
        x.shape(),
        [mean.shape(), invstd.shape(), gamma.shape(), beta.shape()],
        y.shape(),
    )?;
    let (m, s, g, b) = (
        mean.to_vec(),
        invstd.to_vec(),
        gamma.to_vec(),
        beta.to_vec(),
    );
    let out: Vec<f32> = x
        .to_vec()
        .iter()
        .enumerate()
        .map(|(i, &v)| act.apply((v - m[i % c]) * s[i % c] * g[i % c] + b[i % c]))
        .collect();
    y.write(&out)
}

#[allow(clippy::too_many_arguments)]
/// CPU reference of [`gpu::ops::batch_norm_backward`](crate::gpu::ops::batch_norm_backward): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn batch_norm_backward(
    x: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    gamma: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dgamma: &Tensor,
    dbeta: &Tensor,
    grads: ParamGrads,
    after: Option<(&Tensor, Activation)>,
    before: Activation,
) -> Result<()> {
    let (rows, c, _) = spec::batch_norm_backward_dims(
        x.shape(),
        [
            mean.shape(),
            invstd.shape(),
            gamma.shape(),
            dgamma.shape(),
            dbeta.shape(),
        ],
        dy.shape(),
        dx.shape(),
        after.map(|(y, act)| (y.shape(), act)),
        before,
    )?;
    let (xv, m, s, g) = (x.to_vec(), mean.to_vec(), invstd.to_vec(), gamma.to_vec());
    let mut dyv = dy.to_vec();
    if let Some((y, act)) = after {
        dyv.iter_mut()
            .zip(y.to_vec())
            .for_each(|(d, y)| *d *= act.derivative(y));
    }
    let xhat = |i: usize| ((xv[i] - m[i % c]) * s[i % c]) as f64;
    let mut sum_dy = vec![0.0f64; c];
    let mut sum_dy_xhat = vec![0.0f64; c];
    for i in 0..rows * c {
        sum_dy[i % c] += dyv[i] as f64;
        sum_dy_xhat[i % c] += dyv[i] as f64 * xhat(i);
    }
    let n = rows as f64;
    let out: Vec<f32> = (0..rows * c)
        .map(|i| {
            let ch = i % c;
            let dx = (g[ch] * s[ch]) as f64
                * (dyv[i] as f64 - sum_dy[ch] / n - xhat(i) * sum_dy_xhat[ch] / n);
            dx as f32 * before.derivative(xv[i])
        })
        .collect();
    dx.write(&out)?;
    let store = |t: &Tensor, sums: &[f64]| {
        let acc = grads == ParamGrads::Accumulate;
        t.update(|d| {
            d.iter_mut()
                .zip(sums)
                .for_each(|(d, s)| *d = if acc { *d + *s as f32 } else { *s as f32 })
        });
    };
    if grads != ParamGrads::Skip {
        store(dgamma, &sum_dy_xhat);
        store(dbeta, &sum_dy);
    }
    Ok(())
}

/// CPU reference of [`gpu::ops::activation_forward`](crate::gpu::ops::activation_forward): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn activation_forward(x: &Tensor, y: &Tensor, act: Activation) -> Result<()> {
    spec::elementwise_dims("activation", x.shape(), &[y.shape()])?;
    y.write(&x.to_vec().iter().map(|&v| act.apply(v)).collect::<Vec<_>>())
}

/// CPU reference of [`gpu::ops::activation_backward`](crate::gpu::ops::activation_backward): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn activation_backward(
    saved: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    act: Activation,
) -> Result<()> {
    let dims = [dy.shape(), dx.shape()];
    spec::elementwise_dims("activation backward", saved.shape(), &dims)?;
    let out: Vec<f32> = saved
        .to_vec()
        .iter()
        .zip(dy.to_vec())
        .map(|(&s, d)| d * act.derivative(s))
        .collect();
    dx.write(&out)
}

/// CPU reference of [`gpu::ops::bce_with_logits`](crate::gpu::ops::bce_with_logits): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn bce_with_logits(
    logits: &Tensor,
    grad: &Tensor,
    stats: &Tensor,
    slot: usize,
    target: f32,
    scale: f32,
) -> Result<()> {
    let n = spec::bce_dims(logits.shape(), grad.shape(), stats.len(), slot)?;
    let x = logits.to_vec();
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let t = target as f64;
    let loss = x.iter().map(|&v| {
        let v = v as f64;
        v.max(0.0) - v * t + (-v.abs()).exp().ln_1p()
    });
    let loss = loss.sum::<f64>() / n as f64;
    let mean_sig = x.iter().map(|&v| sigmoid(v as f64)).sum::<f64>() / n as f64;
    grad.write(
        &x.iter()
            .map(|&v| ((sigmoid(v as f64) - t) * scale as f64 / n as f64) as f32)
            .collect::<Vec<_>>(),
    )?;
    stats.update(|s| {
        s[slot] = loss as f32;
        s[slot + 1] = mean_sig as f32;
    });
    Ok(())
}

/// CPU reference of [`gpu::ops::hinge`](crate::gpu::ops::hinge): same arguments and shape rules,
/// computed at once (in f64 where it sums).
#[allow(clippy::too_many_arguments)]
pub fn hinge(
    logits: &Tensor,
    grad: &Tensor,
    stats: &Tensor,
    slot: usize,
    sign: f32,
    margin: bool,
    scale: f32,
) -> Result<()> {
    let n = spec::hinge_dims(logits.shape(), grad.shape(), stats.len(), slot, sign)?;
    let x = logits.to_vec();
    let step = scale / n as f32;
    let (mut loss, mut mean_sig) = (0.0f64, 0.0f64);
    let mut g = Vec::with_capacity(n);
    for &v in &x {
        let (l, d) = match margin {
            true if sign * v < 1.0 => (1.0 - sign * v, -sign * step),
            true => (0.0, 0.0),
            false => (-sign * v, -sign * step),
        };
        loss += l as f64;
        mean_sig += 1.0 / (1.0 + (-(v as f64)).exp());
        g.push(d);
    }
    grad.write(&g)?;
    stats.update(|s| {
        s[slot] = (loss / n as f64) as f32;
        s[slot + 1] = (mean_sig / n as f64) as f32;
    });
    Ok(())
}

/// CPU reference of [`gpu::ops::softmax_cross_entropy`](crate::gpu::ops::softmax_cross_entropy): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn softmax_cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    grad: &Tensor,
    stats: &Tensor,
    slot: usize,
    scale: f32,
) -> Result<()> {
    let (rows, c) = spec::cross_entropy_dims(
        logits.shape(),
        labels.shape(),
        grad.shape(),
        stats.len(),
        slot,
    )?;
    let (x, y) = (logits.to_vec(), labels.to_vec());
    let mut g = vec![0.0f32; rows * c];
    let (mut loss, mut correct) = (0.0f64, 0usize);
    for r in 0..rows {
        let row = &x[r * c..(r + 1) * c];
        let label = y[r] as usize;
        // First index of the largest logit, as the shader breaks ties.
        let arg = (0..c).fold(0, |best, j| if row[j] > row[best] { j } else { best });
        let top = row[arg] as f64;
        let lse = top
            + row
                .iter()
                .map(|&v| (v as f64 - top).exp())
                .sum::<f64>()
                .ln();
        for j in 0..c {
            let p = (row[j] as f64 - lse).exp();
            g[r * c + j] =
                ((p - if j == label { 1.0 } else { 0.0 }) * scale as f64 / rows as f64) as f32;
        }
        loss += lse - row[label] as f64;
        correct += usize::from(arg == label);
    }
    grad.write(&g)?;
    stats.update(|s| {
        s[slot] = (loss / rows as f64) as f32;
        s[slot + 1] = correct as f32 / rows as f32;
    });
    Ok(())
}

fn store_sums(out: &Tensor, sums: &[f64], accumulate: bool) {
    out.update(|o| {
        o.iter_mut().zip(sums).for_each(|(o, s)| {
            *o = if accumulate {
                *o + *s as f32
            } else {
                *s as f32
            }
        })
    });
}

/// CPU reference of [`gpu::ops::sum_over_rows`](crate::gpu::ops::sum_over_rows): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn sum_over_rows(x: &Tensor, out: &Tensor, accumulate: bool) -> Result<()> {
    let (rows, cols) = spec::sum_dims(x.shape(), out.shape(), true)?;
    let v = x.to_vec();
    let sums: Vec<f64> = (0..cols)
        .map(|c| (0..rows).map(|r| v[r * cols + c] as f64).sum())
        .collect();
    store_sums(out, &sums, accumulate);
    Ok(())
}

/// CPU reference of [`gpu::ops::sum_over_cols`](crate::gpu::ops::sum_over_cols): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn sum_over_cols(x: &Tensor, out: &Tensor, accumulate: bool) -> Result<()> {
    let (rows, cols) = spec::sum_dims(x.shape(), out.shape(), false)?;
    let v = x.to_vec();
    let sums: Vec<f64> = (0..rows)
        .map(|r| v[r * cols..(r + 1) * cols].iter().map(|&x| x as f64).sum())
        .collect();
    store_sums(out, &sums, accumulate);
    Ok(())
}

/// CPU reference of [`gpu::ops::mean_all`](crate::gpu::ops::mean_all): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn mean_all(x: &Tensor, out: &Tensor) -> Result<()> {
    spec::mean_all_dims(x.shape(), out.shape())?;
    let v = x.to_vec();
    out.write(&[(v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64) as f32])
}

/// CPU reference of [`gpu::ops::ema`](crate::gpu::ops::ema): same arguments and shape rules.
pub fn ema(
    avg_params: &Tensor,
    params: &Tensor,
    avg_state: &Tensor,
    state: &Tensor,
    decay: f32,
) -> Result<()> {
    spec::ema_dims(
        avg_params.shape(),
        params.shape(),
        avg_state.shape(),
        state.shape(),
        decay,
    )?;
    for (avg, value) in [(avg_params, params), (avg_state, state)] {
        let value = value.to_vec();
        avg.update(|a| {
            for (a, v) in a.iter_mut().zip(&value) {
                *a = decay * *a + (1.0 - decay) * v;
            }
        });
    }
    Ok(())
}

/// CPU reference of [`gpu::ops::adam`](crate::gpu::ops::adam): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn adam(
    params: &Tensor,
    grads: &Tensor,
    m: &Tensor,
    v: &Tensor,
    spec: AdamSpec,
    t: u64,
) -> Result<()> {
    spec::elementwise_dims(
        "adam",
        params.shape(),
        &[grads.shape(), m.shape(), v.shape()],
    )?;
    let (bc1, bc2) = spec.bias_corrections(t.max(1));
    let (mut p, g, mut mv, mut vv) = (params.to_vec(), grads.to_vec(), m.to_vec(), v.to_vec());
    for i in 0..p.len() {
        mv[i] = spec.beta1 * mv[i] + (1.0 - spec.beta1) * g[i];
        vv[i] = spec.beta2 * vv[i] + (1.0 - spec.beta2) * g[i] * g[i];
        p[i] -= spec.lr * (mv[i] / bc1) / ((vv[i] / bc2).sqrt() + spec.eps);
    }
    params.write(&p)?;
    m.write(&mv)?;
    v.write(&vv)
}

/// CPU reference of [`gpu::ops::fill`](crate::gpu::ops::fill): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn fill(dst: &Tensor, value: f32) -> Result<()> {
    dst.update(|d| d.fill(value));
    Ok(())
}

/// CPU reference of [`gpu::ops::scale`](crate::gpu::ops::scale): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn scale(src: &Tensor, dst: &Tensor, alpha: f32) -> Result<()> {
    spec::elementwise_dims("scale", src.shape(), &[dst.shape()])?;
    dst.write(&src.to_vec().iter().map(|v| alpha * v).collect::<Vec<_>>())
}

/// CPU reference of [`gpu::ops::copy`](crate::gpu::ops::copy): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn copy(src: &Tensor, dst: &Tensor) -> Result<()> {
    scale(src, dst, 1.0)
}

/// CPU reference of [`gpu::ops::add`](crate::gpu::ops::add): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn add(a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<()> {
    spec::elementwise_dims("add", a.shape(), &[b.shape(), dst.shape()])?;
    dst.write(
        &a.to_vec()
            .iter()
            .zip(b.to_vec())
            .map(|(x, y)| x + y)
            .collect::<Vec<_>>(),
    )
}

/// CPU reference of [`gpu::ops::add_bias`](crate::gpu::ops::add_bias): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<()> {
    let (_, c) = spec::add_bias_dims(x.shape(), bias.shape())?;
    let b = bias.to_vec();
    x.update(|v| v.iter_mut().enumerate().for_each(|(i, v)| *v += b[i % c]));
    Ok(())
}

/// labels: bytes packed 4 per u32, as the GPU holds them.
pub fn gather_labels(labels: &[u32], order: &[u32], dst: &Tensor, offset: usize) -> Result<()> {
    let batch = spec::gather_labels_dims(dst.shape(), order.len(), offset)?;
    let bytes: &[u8] = bytemuck::cast_slice(labels);
    dst.write(
        &(0..batch)
            .map(|b| bytes[order[offset + b] as usize] as f32)
            .collect::<Vec<_>>(),
    )
}

/// CPU reference of [`gpu::ops::randn`](crate::gpu::ops::randn): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn randn(dst: &Tensor, seed: u64, stream: u32) -> Result<()> {
    dst.write(
        &(0..dst.len() as u32)
            .map(|i| rng::normal_at(seed, stream, i))
            .collect::<Vec<_>>(),
    )
}

/// CPU reference of [`gpu::ops::rand_labels`](crate::gpu::ops::rand_labels): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn rand_labels(dst: &Tensor, seed: u64, stream: u32) -> Result<()> {
    dst.write(
        &(0..dst.len() as u32)
            .map(|i| rng::label_at(seed, stream, i))
            .collect::<Vec<_>>(),
    )
}

/// CPU reference of [`gpu::ops::one_hot_concat`](crate::gpu::ops::one_hot_concat): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn one_hot_concat(z: &Tensor, labels: &Tensor, out: &Tensor) -> Result<()> {
    let (rows, cols, classes) = spec::one_hot_concat_dims(z.shape(), labels.shape(), out.shape())?;
    let (z, labels) = (z.to_vec(), labels.to_vec());
    let mut o = Vec::with_capacity(rows * (cols + classes));
    for b in 0..rows {
        o.extend_from_slice(&z[b * cols..(b + 1) * cols]);
        o.extend((0..classes).map(|c| f32::from(u8::from(labels[b] as usize == c))));
    }
    out.write(&o)
}

/// CPU reference of [`gpu::ops::projection`](crate::gpu::ops::projection): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn projection(
    features: &Tensor,
    embed: &Tensor,
    labels: &Tensor,
    logits: &Tensor,
) -> Result<()> {
    let (rows, f, _) = spec::projection_dims(
        features.shape(),
        embed.shape(),
        labels.shape(),
        logits.shape(),
    )?;
    let (x, e, y, mut out) = (
        features.to_vec(),
        embed.to_vec(),
        labels.to_vec(),
        logits.to_vec(),
    );
    for b in 0..rows {
        let row = &e[y[b] as usize * f..][..f];
        out[b] += row
            .iter()
            .zip(&x[b * f..(b + 1) * f])
            .map(|(&p, &q)| f64::from(p) * f64::from(q))
            .sum::<f64>() as f32;
    }
    logits.write(&out)
}

/// CPU reference of [`gpu::ops::projection_backward_input`](crate::gpu::ops::projection_backward_input): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn projection_backward_input(
    dlogits: &Tensor,
    embed: &Tensor,
    labels: &Tensor,
    dfeatures: &Tensor,
) -> Result<()> {
    let (rows, f, _) = spec::projection_dims(
        dfeatures.shape(),
        embed.shape(),
        labels.shape(),
        dlogits.shape(),
    )?;
    let (g, e, y, mut dx) = (
        dlogits.to_vec(),
        embed.to_vec(),
        labels.to_vec(),
        dfeatures.to_vec(),
    );
    for b in 0..rows {
        for j in 0..f {
            dx[b * f + j] += g[b] * e[y[b] as usize * f + j];
        }
    }
    dfeatures.write(&dx)
}

/// CPU reference of [`gpu::ops::projection_backward_params`](crate::gpu::ops::projection_backward_params): same arguments and shape
/// rules, computed at once (in f64 where it sums).
pub fn projection_backward_params(
    dlogits: &Tensor,
    features: &Tensor,
    labels: &Tensor,
    dembed: &Tensor,
) -> Result<()> {
    let (rows, f, classes) = spec::projection_dims(
        features.shape(),
        dembed.shape(),
        labels.shape(),
        dlogits.shape(),
    )?;
    let (g, x, y, mut de) = (
        dlogits.to_vec(),
        features.to_vec(),
        labels.to_vec(),
        dembed.to_vec(),
    );
    for c in 0..classes {
        for j in 0..f {
            let sum: f64 = (0..rows)
                .filter(|&b| y[b] as usize == c)
                .map(|b| f64::from(g[b]) * f64::from(x[b * f + j]))
                .sum();
            de[c * f + j] += sum as f32;
        }
    }
    dembed.write(&de)
}

/// images: bytes packed 4 per u32 (little-endian), as the GPU holds them.
pub fn gather_batch(images: &[u32], order: &[u32], dst: &Tensor, offset: usize) -> Result<()> {
    let (batch, pixels) = spec::gather_dims(dst.shape(), order.len(), offset)?;
    let bytes: &[u8] = bytemuck::cast_slice(images);
    let out: Vec<f32> = (0..batch * pixels)
        .map(|i| {
            bytes[order[offset + i / pixels] as usize * pixels + i % pixels] as f32 / 127.5 - 1.0
        })
        .collect();
    dst.write(&out)
}
