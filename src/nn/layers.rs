//! Layers with forward and backward over a [`Backend`]. Parameter gradients always accumulate:
//! the step zeroes a network's gradient buffer once, then every backward pass adds to it.

use crate::error::Result;
use crate::nn::{Backend, Layout, ParamSpec, ParamStore, params::Init};
use crate::spec::{Activation, ConvGeom, MatmulSpec, ParamGrads};

/// The parameter specs of a Linear layer `prefix` (PyTorch layout: weight [out, in]).
pub fn linear_specs(prefix: &str, input: usize, output: usize) -> Vec<ParamSpec> {
    vec![
        ParamSpec {
            name: format!("{prefix}.weight"),
            shape: vec![output, input],
            trainable: true,
            init: Init::GlorotUniform {
                fan_in: input,
                fan_out: output,
            },
            layout: Layout::Same,
        },
        ParamSpec {
            name: format!("{prefix}.bias"),
            shape: vec![output],
            trainable: true,
            init: Init::Zeros,
            layout: Layout::Same,
        },
    ]
}

/// A Linear layer reading a flattened NHWC map [h, w, c] (PyTorch's Flatten orders it c, h, w).
pub fn linear_after_flatten_specs(prefix: &str, map: [usize; 3], output: usize) -> Vec<ParamSpec> {
    let mut s = linear_specs(prefix, map.iter().product(), output);
    s[0].layout = Layout::NhwcColumns(map);
    s
}

/// A Linear layer whose output is read as an NHWC map [h, w, c] (PyTorch's Unflatten: c, h, w).
pub fn linear_before_unflatten_specs(
    prefix: &str,
    input: usize,
    map: [usize; 3],
) -> Vec<ParamSpec> {
    let mut s = linear_specs(prefix, input, map.iter().product());
    for spec in &mut s {
        spec.layout = Layout::NhwcRows(map);
    }
    s
}

/// The parameter specs of a Conv2d layer (weight [out, in, k, k]).
pub fn conv_specs(prefix: &str, input: usize, output: usize, kernel: usize) -> Vec<ParamSpec> {
    let area = kernel * kernel;
    vec![
        ParamSpec {
            name: format!("{prefix}.weight"),
            shape: vec![output, input, kernel, kernel],
            trainable: true,
            init: Init::GlorotUniform {
                fan_in: input * area,
                fan_out: output * area,
            },
            layout: Layout::Same,
        },
        ParamSpec {
            name: format!("{prefix}.bias"),
            shape: vec![output],
            trainable: true,
            init: Init::Zeros,
            layout: Layout::Same,
        },
    ]
}

/// The parameter specs of a ConvTranspose2d layer (PyTorch's weight layout [in, out, k, k]).
pub fn conv_transpose_specs(
    prefix: &str,
    input: usize,
    output: usize,
    kernel: usize,
) -> Vec<ParamSpec> {
    let area = kernel * kernel;
    vec![
        ParamSpec {
            name: format!("{prefix}.weight"),
            shape: vec![input, output, kernel, kernel],
            trainable: true,
            init: Init::GlorotUniform {
                fan_in: output * area,
                fan_out: input * area,
            },
            layout: Layout::Same,
        },
        ParamSpec {
            name: format!("{prefix}.bias"),
            shape: vec![output],
            trainable: true,
            init: Init::Zeros,
            layout: Layout::Same,
        },
    ]
}

/// The specs of a BatchNorm layer: gamma ("weight"), beta ("bias"), running statistics.
pub fn batch_norm_specs(prefix: &str, channels: usize) -> Vec<ParamSpec> {
    let spec = |name: &str, trainable, init| ParamSpec {
        name: format!("{prefix}.{name}"),
        shape: vec![channels],
        trainable,
        init,
        layout: Layout::Same,
    };
    vec![
        spec("weight", true, Init::Ones),
        spec("bias", true, Init::Zeros),
        spec("running_mean", false, Init::Zeros),
        spec("running_var", false, Init::Ones),
    ]
}

/// What a backward pass computes besides the gradient it passes through.
#[derive(Debug)]
pub enum Backprop<'a, T> {
    /// Accumulate parameter gradients; no gradient for the input (a network's first layer).
    Params,
    /// The input gradient only, parameters untouched: a frozen network passing gradients on
    /// (the discriminator in the generator's step).
    Input(&'a T),
    /// Both.
    Both(&'a T),
}

impl<T> Clone for Backprop<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Backprop<'_, T> {}

impl<'a, T> Backprop<'a, T> {
    /// Whether the parameters' gradients are wanted.
    pub fn params(self) -> bool {
        !matches!(self, Backprop::Input(_))
    }

    /// Where the input gradient goes, if it is wanted.
    pub fn input(self) -> Option<&'a T> {
        match self {
            Backprop::Params => None,
            Backprop::Input(dx) | Backprop::Both(dx) => Some(dx),
        }
    }

    /// The same choice of parameter gradients, passing the gradient on into `dx` (for the layers
    /// before the first).
    pub fn with_input<'b>(self, dx: &'b T) -> Backprop<'b, T> {
        if self.params() {
            Backprop::Both(dx)
        } else {
            Backprop::Input(dx)
        }
    }

    /// Whether batch norm accumulates its parameter gradients.
    pub fn param_grads(self) -> ParamGrads {
        if self.params() {
            ParamGrads::Accumulate
        } else {
            ParamGrads::Skip
        }
    }
}

/// y [N, out] = act(x [N, in] W^T + b).
pub struct Linear<B: Backend> {
    weight: B::Tensor,
    bias: B::Tensor,
    dweight: B::Tensor,
    dbias: B::Tensor,
}

impl<B: Backend> Linear<B> {
    /// The layer over the parameters `{prefix}.weight` [out, in] and `{prefix}.bias` `[out]` of
    /// `store` (made with [`linear_specs`]).
    pub fn new(
        be: &B,
        store: &ParamStore<B>,
        prefix: &str,
        input: usize,
        output: usize,
    ) -> Result<Linear<B>> {
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        Ok(Linear {
            weight: store.get(be, &w, &[output, input])?,
            bias: store.get(be, &b, &[output])?,
            dweight: store.grad(be, &w, &[output, input])?,
            dbias: store.grad(be, &b, &[output])?,
        })
    }

    /// y = act(x W^T + b), the activation fused into the product (one that saves its output).
    pub fn forward(&self, be: &mut B, x: &B::Tensor, y: &B::Tensor, act: Activation) -> Result<()> {
        act.ensure_fusable("Linear")?;
        be.matmul(
            x,
            &self.weight,
            Some(&self.bias),
            y,
            MatmulSpec::by_weight(act),
        )
    }

    /// dW += dy^T x, db += sum(dy) (with parameter gradients); dx = dy W (with an input
    /// gradient). dy is w.r.t. the pre-activation output.
    pub fn backward(
        &self,
        be: &mut B,
        x: &B::Tensor,
        dy: &B::Tensor,
        mode: Backprop<B::Tensor>,
    ) -> Result<()> {
        if mode.params() {
            be.matmul(dy, x, None, &self.dweight, MatmulSpec::WEIGHT_GRAD)?;
            be.sum_over_rows(dy, &self.dbias, true)?;
        }
        if let Some(dx) = mode.input() {
            be.matmul(dy, &self.weight, None, dx, MatmulSpec::PLAIN)?;
        }
        Ok(())
    }
}

/// y [B*OH*OW, out] (NHWC) = act(im2col(x) W^T + b), x [B, H, W, C]. The backend keeps the
/// im2col matrices (or packs them straight into its kernels' layout). Tensors may come in any
/// shape of as many elements (a previous convolution's [B*OH*OW, C] rows as this one's x, or
/// y as [B, OH, OW, out]): the layer reads them in these layouts.
pub struct Conv2d<B: Backend> {
    /// The convolution's geometry (batch included).
    pub geom: ConvGeom,
    output: usize,
    weight: B::Tensor,
    bias: B::Tensor,
    dweight: B::Tensor,
    dbias: B::Tensor,
}

impl<B: Backend> Conv2d<B> {
    /// The layer over `{prefix}.weight` [out, in, k, k] and `{prefix}.bias` `[out]` of `store`
    /// (made with [`conv_specs`]), for inputs of `geom`.
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        prefix: &str,
        geom: ConvGeom,
        output: usize,
    ) -> Result<Conv2d<B>> {
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        let k = geom.cols_shape()[1];
        Ok(Conv2d {
            geom,
            output,
            weight: store.get(be, &w, &[output, k])?,
            bias: store.get(be, &b, &[output])?,
            dweight: store.grad(be, &w, &[output, k])?,
            dbias: store.grad(be, &b, &[output])?,
        })
    }

    /// `x` as [B, H, W, C].
    fn input(&self, be: &B, x: &B::Tensor) -> Result<B::Tensor> {
        be.reshape(x, &self.geom.input_shape())
    }

    /// `y` (or dy) as [B*OH*OW, out].
    fn rows(&self, be: &B, y: &B::Tensor) -> Result<B::Tensor> {
        be.reshape(y, &[self.geom.cols_shape()[0], self.output])
    }

    /// y = act(conv(x) + b), the activation fused into the product (one that saves its output).
    pub fn forward(&self, be: &mut B, x: &B::Tensor, y: &B::Tensor, act: Activation) -> Result<()> {
        act.ensure_fusable("Conv2d")?;
        let (x, y) = (self.input(be, x)?, self.rows(be, y)?);
        be.conv2d(&x, &self.weight, &self.bias, &y, self.geom, act)
    }

    /// x: the forward's input; dy: [B*OH*OW, out] w.r.t. the pre-activation output; the input
    /// gradient [B, H, W, C]. With `dx_through` = (y, act), the input was act's output y and dx
    /// is taken through act.
    pub fn backward(
        &self,
        be: &mut B,
        x: &B::Tensor,
        dy: &B::Tensor,
        mode: Backprop<B::Tensor>,
        dx_through: Option<(&B::Tensor, Activation)>,
    ) -> Result<()> {
        let (x, dy) = (self.input(be, x)?, self.rows(be, dy)?);
        if mode.params() {
            be.conv2d_weight_grad(&dy, &x, &self.dweight, self.geom)?;
            be.sum_over_rows(&dy, &self.dbias, true)?;
        }
        if let Some(dx) = mode.input() {
            let dx = self.input(be, dx)?;
            let through = match dx_through {
                Some((y, act)) => Some((self.input(be, y)?, act)),
                None => None,
            };
            let through = through.as_ref().map(|(y, act)| (y, *act));
            be.conv2d_input_grad(&dy, &self.weight, &dx, self.geom, through)?;
        }
        Ok(())
    }
}

/// Transposed convolution, the adjoint of a convolution: y [B, OH, OW, C_out] from
/// x [B, H, W, C_in] as col2im(x W) + b, where `geom` is the convolution from y's shape back to
/// x's (so its im2col matrix is [B*H*W, C_out*K*K], PyTorch's [in, out, k, k] weight flattened).
pub struct ConvTranspose2d<B: Backend> {
    /// The convolution from y's shape back to x's (batch included).
    pub geom: ConvGeom,
    weight: B::Tensor,
    bias: B::Tensor,
    dweight: B::Tensor,
    dbias: B::Tensor,
    cols: B::Tensor,
    dcols: B::Tensor,
}

impl<B: Backend> ConvTranspose2d<B> {
    /// `geom`: the convolution y -> x (batch, y's height/width, C_out channels, kernel, stride, padding).
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        prefix: &str,
        geom: ConvGeom,
        input: usize,
    ) -> Result<ConvTranspose2d<B>> {
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        let k = geom.cols_shape()[1];
        Ok(ConvTranspose2d {
            geom,
            weight: store.get(be, &w, &[input, k])?,
            bias: store.get(be, &b, &[geom.channels])?,
            dweight: store.grad(be, &w, &[input, k])?,
            dbias: store.grad(be, &b, &[geom.channels])?,
            cols: be.zeros(&geom.cols_shape())?,
            dcols: be.zeros(&geom.cols_shape())?,
        })
    }

    /// x [B*H*W, C_in] -> y [B*OH*OW, C_out] (before any activation).
    pub fn forward(&self, be: &mut B, x: &B::Tensor, y: &B::Tensor) -> Result<()> {
        be.matmul(x, &self.weight, None, &self.cols, MatmulSpec::PLAIN)?;
        be.col2im(&self.cols, y, self.geom, None)?;
        be.add_bias(y, &self.bias)
    }

    /// dy [B*OH*OW, C_out] w.r.t. the output; the input gradient is [B*H*W, C_in].
    pub fn backward(
        &self,
        be: &mut B,
        x: &B::Tensor,
        dy: &B::Tensor,
        mode: Backprop<B::Tensor>,
    ) -> Result<()> {
        be.im2col(dy, &self.dcols, self.geom)?;
        if mode.params() {
            be.matmul(x, &self.dcols, None, &self.dweight, MatmulSpec::WEIGHT_GRAD)?;
            be.sum_over_rows(dy, &self.dbias, true)?;
        }
        if let Some(dx) = mode.input() {
            be.matmul(
                &self.dcols,
                &self.weight,
                None,
                dx,
                MatmulSpec::by_weight(Activation::Identity),
            )?;
        }
        Ok(())
    }
}

/// Batch norm over the rows of [rows, C] (dense, or NHWC flattened), Keras' momentum convention.
pub struct BatchNorm<B: Backend> {
    gamma: B::Tensor,
    beta: B::Tensor,
    dgamma: B::Tensor,
    dbeta: B::Tensor,
    running_mean: B::Tensor,
    running_var: B::Tensor,
    mean: B::Tensor,
    invstd: B::Tensor,
    /// Keras' momentum: running = momentum * running + (1 - momentum) * batch.
    pub momentum: f32,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl<B: Backend> BatchNorm<B> {
    /// The layer over `{prefix}.weight` (gamma), `{prefix}.bias` (beta) and the running statistics
    /// of `store` (made with [`batch_norm_specs`]).
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        prefix: &str,
        channels: usize,
        momentum: f32,
        eps: f32,
    ) -> Result<BatchNorm<B>> {
        let get = |n: &str| store.get(be, &format!("{prefix}.{n}"), &[channels]);
        let (gamma, beta, running_mean, running_var) = (
            get("weight")?,
            get("bias")?,
            get("running_mean")?,
            get("running_var")?,
        );
        Ok(BatchNorm {
            gamma,
            beta,
            running_mean,
            running_var,
            dgamma: store.grad(be, &format!("{prefix}.weight"), &[channels])?,
            dbeta: store.grad(be, &format!("{prefix}.bias"), &[channels])?,
            mean: be.zeros(&[channels])?,
            invstd: be.zeros(&[channels])?,
            momentum,
            eps,
        })
    }

    /// Training mode (batch statistics), or inference mode (running statistics).
    pub fn forward(
        &self,
        be: &mut B,
        x: &B::Tensor,
        y: &B::Tensor,
        act: Activation,
        mode: BnMode,
    ) -> Result<()> {
        act.ensure_fusable("BatchNorm")?;
        match mode {
            BnMode::Train { update_running } => be.batch_norm_stats(
                x,
                &self.mean,
                &self.invstd,
                &self.running_mean,
                &self.running_var,
                self.momentum,
                self.eps,
                update_running,
            )?,
            BnMode::Inference => be.batch_norm_use_running(
                &self.running_mean,
                &self.running_var,
                &self.mean,
                &self.invstd,
                self.eps,
            )?,
        }
        be.batch_norm_apply(x, &self.mean, &self.invstd, &self.gamma, &self.beta, y, act)
    }

    /// Backward after a training-mode forward. dy is w.r.t. the output: of act(BN(x)) when
    /// `after` = (that output, act), else of BN(x). With `before` = act, x was act's output and dx
    /// is taken through it. Both activations are folded into the one kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        be: &mut B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: &B::Tensor,
        grads: ParamGrads,
        after: Option<(&B::Tensor, Activation)>,
        before: Activation,
    ) -> Result<()> {
        be.batch_norm_backward(
            x,
            &self.mean,
            &self.invstd,
            &self.gamma,
            dy,
            dx,
            &self.dgamma,
            &self.dbeta,
            grads,
            after,
            before,
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
/// How a batch norm normalises.
pub enum BnMode {
    /// With the batch's statistics; `update_running` also moves the running statistics.
    Train {
        /// Also move the running statistics.
        update_running: bool,
    },
    /// With the running statistics.
    Inference,
}

impl BnMode {
    /// Batch statistics, running statistics updated.
    pub const TRAIN: BnMode = BnMode::Train {
        update_running: true,
    };
    /// Batch statistics, running statistics left as they are.
    pub const TRAIN_KEEP_RUNNING: BnMode = BnMode::Train {
        update_running: false,
    };
}
