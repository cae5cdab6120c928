//! The article's GAN, corrected. Activations are NHWC; names and layouts follow PyTorch's
//! `nn.Sequential` so checkpoints load there:
//!
//! generator:     0 Linear(100,128) 1 LeakyReLU(0.2) 2 BatchNorm1d 3 Linear(128,128) 4 LeakyReLU
//!                5 BatchNorm1d 6 Linear(128,784) 7 Tanh                          -> [B, 28, 28, 1]
//! discriminator: 0 Conv(1,32,3,s2,p1) 1 LeakyReLU 2 Conv(32,64) 3 BatchNorm2d 4 LeakyReLU
//!                5 Conv(64,128) 6 BatchNorm2d 7 LeakyReLU 8 Flatten 9 Linear(2048,1) -> logit

use crate::error::Result;
use crate::nn::layers::{batch_norm_specs, conv_specs, linear_specs};
use crate::nn::{Backend, BatchNorm, BnMode, Conv2d, Linear, ParamSpec, ParamStore};
use crate::spec::{Activation, ConvGeom};

pub const LATENT: usize = 100;
pub const HIDDEN: usize = 128;
pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;
pub const LEAKY: Activation = Activation::LeakyRelu(0.2);
/// Keras' BatchNormalization(momentum=0.8) and its default epsilon.
pub const BN_MOMENTUM: f32 = 0.8;
pub const BN_EPS: f32 = 1e-3;
/// The discriminator's last feature map: [4, 4, 128].
pub const D_FEATURES: [usize; 3] = [4, 4, 128];

pub fn generator_specs() -> Vec<ParamSpec> {
    let mut s = linear_specs("generator.0", LATENT, HIDDEN);
    s.extend(batch_norm_specs("generator.2", HIDDEN));
    s.extend(linear_specs("generator.3", HIDDEN, HIDDEN));
    s.extend(batch_norm_specs("generator.5", HIDDEN));
    s.extend(linear_specs("generator.6", HIDDEN, PIXELS));
    s
}

/// The three convolutions both the discriminator and the evaluation classifier start with:
/// `prefix`.{0, 2, 3, 5, 6} in PyTorch's Sequential numbering (1, 4, 7 are LeakyReLUs, 8 Flatten).
pub fn conv_trunk_specs(prefix: &str) -> Vec<ParamSpec> {
    let mut s = conv_specs(&format!("{prefix}.0"), 1, 32, 3);
    s.extend(conv_specs(&format!("{prefix}.2"), 32, 64, 3));
    s.extend(batch_norm_specs(&format!("{prefix}.3"), 64));
    s.extend(conv_specs(&format!("{prefix}.5"), 64, 128, 3));
    s.extend(batch_norm_specs(&format!("{prefix}.6"), 128));
    s
}

pub fn discriminator_specs() -> Vec<ParamSpec> {
    let mut s = conv_trunk_specs("discriminator");
    s.extend(linear_specs(
        "discriminator.9",
        D_FEATURES.iter().product(),
        1,
    ));
    s
}

/// Which generator a GAN uses; the name is the checkpoint's `model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratorKind {
    /// The article's MLP generator.
    Mlp,
    /// The convolutional generator (transposed convolutions).
    Dcgan,
}

impl GeneratorKind {
    pub fn model_name(self) -> &'static str {
        match self {
            GeneratorKind::Mlp => "mlp-gan",
            GeneratorKind::Dcgan => "dcgan",
        }
    }

    pub fn from_model_name(name: &str) -> Option<GeneratorKind> {
        [GeneratorKind::Mlp, GeneratorKind::Dcgan]
            .into_iter()
            .find(|k| k.model_name() == name)
    }

    pub fn specs(self) -> Vec<ParamSpec> {
        match self {
            GeneratorKind::Mlp => generator_specs(),
            GeneratorKind::Dcgan => crate::gan::dcgan::dcgan_specs(),
        }
    }
}

/// Either generator, for one batch size.
pub enum AnyGenerator<B: Backend> {
    Mlp(Generator<B>),
    Dcgan(crate::gan::dcgan::DcganGenerator<B>),
}

impl<B: Backend> AnyGenerator<B> {
    pub fn new(
        kind: GeneratorKind,
        be: &mut B,
        store: &ParamStore<B>,
        batch: usize,
        out: &B::Tensor,
    ) -> Result<AnyGenerator<B>> {
        Ok(match kind {
            GeneratorKind::Mlp => AnyGenerator::Mlp(Generator::new(be, store, batch, out)?),
            GeneratorKind::Dcgan => AnyGenerator::Dcgan(crate::gan::dcgan::DcganGenerator::new(
                be, store, batch, out,
            )?),
        })
    }

    /// Input noise [N, 100].
    pub fn z(&self) -> &B::Tensor {
        match self {
            AnyGenerator::Mlp(g) => &g.z,
            AnyGenerator::Dcgan(g) => &g.z,
        }
    }

    /// Output images [N, 784].
    pub fn out(&self) -> &B::Tensor {
        match self {
            AnyGenerator::Mlp(g) => &g.out,
            AnyGenerator::Dcgan(g) => &g.out,
        }
    }

    pub fn forward(&self, be: &mut B, mode: BnMode) -> Result<()> {
        match self {
            AnyGenerator::Mlp(g) => g.forward(be, mode),
            AnyGenerator::Dcgan(g) => g.forward(be, mode),
        }
    }

    pub fn backward(&self, be: &mut B, dout: &B::Tensor) -> Result<()> {
        match self {
            AnyGenerator::Mlp(g) => g.backward(be, dout),
            AnyGenerator::Dcgan(g) => g.backward(be, dout),
        }
    }
}

/// The generator for one batch size: layers (views into the shared store) and activations.
pub struct Generator<B: Backend> {
    l1: Linear<B>,
    bn1: BatchNorm<B>,
    l2: Linear<B>,
    bn2: BatchNorm<B>,
    l3: Linear<B>,
    /// Input noise [N, 100].
    pub z: B::Tensor,
    /// Output images [N, 784] in [-1, 1].
    pub out: B::Tensor,
    pub batch: usize,
    h1a: B::Tensor,
    h1: B::Tensor,
    h2a: B::Tensor,
    h2: B::Tensor,
    d3: B::Tensor,
    dh2: B::Tensor,
    d2: B::Tensor,
    dh1: B::Tensor,
    d1: B::Tensor,
}

impl<B: Backend> Generator<B> {
    /// `out` ([batch, 784] elements) is where the images go: the discriminator's input in training.
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        batch: usize,
        out: &B::Tensor,
    ) -> Result<Generator<B>> {
        let rows = batch;
        let hidden = |be: &mut B| be.zeros(&[rows, HIDDEN]);
        Ok(Generator {
            l1: Linear::new(be, store, "generator.0", LATENT, HIDDEN)?,
            bn1: BatchNorm::new(be, store, "generator.2", HIDDEN, BN_MOMENTUM, BN_EPS)?,
            l2: Linear::new(be, store, "generator.3", HIDDEN, HIDDEN)?,
            bn2: BatchNorm::new(be, store, "generator.5", HIDDEN, BN_MOMENTUM, BN_EPS)?,
            l3: Linear::new(be, store, "generator.6", HIDDEN, PIXELS)?,
            z: be.zeros(&[rows, LATENT])?,
            out: be.reshape(out, &[rows, PIXELS])?,
            batch,
            h1a: hidden(be)?,
            h1: hidden(be)?,
            h2a: hidden(be)?,
            h2: hidden(be)?,
            d3: be.zeros(&[rows, PIXELS])?,
            dh2: hidden(be)?,
            d2: hidden(be)?,
            dh1: hidden(be)?,
            d1: hidden(be)?,
        })
    }

    /// out = G(z). Training mode normalises with batch statistics (and updates the running ones).
    pub fn forward(&self, be: &mut B, mode: BnMode) -> Result<()> {
        self.l1.forward(be, &self.z, &self.h1a, LEAKY)?;
        self.bn1
            .forward(be, &self.h1a, &self.h1, Activation::Identity, mode)?;
        self.l2.forward(be, &self.h1, &self.h2a, LEAKY)?;
        self.bn2
            .forward(be, &self.h2a, &self.h2, Activation::Identity, mode)?;
        self.l3.forward(be, &self.h2, &self.out, Activation::Tanh)
    }

    /// Accumulates parameter gradients from dout [N, 784] (after a training-mode forward).
    pub fn backward(&self, be: &mut B, dout: &B::Tensor) -> Result<()> {
        let dout = be.reshape(dout, &[self.batch, PIXELS])?;
        be.activation_backward(&self.out, &dout, &self.d3, Activation::Tanh)?;
        self.l3
            .backward(be, &self.h2, &self.d3, Some(&self.dh2), true)?;
        // Each BN's input is a LeakyReLU's output: its derivative is folded into the BN backward.
        self.bn2
            .backward(be, &self.h2a, &self.dh2, &self.d2, true, None, LEAKY)?;
        self.l2
            .backward(be, &self.h1, &self.d2, Some(&self.dh1), true)?;
        self.bn1
            .backward(be, &self.h1a, &self.dh1, &self.d1, true, None, LEAKY)?;
        self.l1.backward(be, &self.z, &self.d1, None, true)
    }
}

/// Conv(32, 3x3, s2) -> LeakyReLU -> Conv(64) -> BN -> LeakyReLU -> Conv(128) -> BN -> LeakyReLU
/// over images [B, 28, 28, 1], to features [B, 2048] (NHWC order), for one batch size.
pub struct ConvTrunk<B: Backend> {
    batch: usize,
    c1: Conv2d<B>,
    c2: Conv2d<B>,
    bn2: BatchNorm<B>,
    c3: Conv2d<B>,
    bn3: BatchNorm<B>,
    /// Input images [B, 28, 28, 1].
    pub input: B::Tensor,
    /// Output features [B, 2048].
    pub features: B::Tensor,
    a1: B::Tensor,
    c2out: B::Tensor,
    a2: B::Tensor,
    c3out: B::Tensor,
    dc3: B::Tensor,
    da2: B::Tensor,
    dc2: B::Tensor,
    dc1: B::Tensor,
}

fn geom(batch: usize, side: usize, channels: usize) -> ConvGeom {
    ConvGeom {
        batch,
        height: side,
        width: side,
        channels,
        kernel: 3,
        stride: 2,
        padding: 1,
    }
}

impl<B: Backend> ConvTrunk<B> {
    /// `momentum`: of the batch-norm running statistics (Keras' convention).
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        prefix: &str,
        batch: usize,
        input: &B::Tensor,
        momentum: f32,
    ) -> Result<ConvTrunk<B>> {
        let (g1, g2, g3) = (geom(batch, 28, 1), geom(batch, 14, 32), geom(batch, 7, 64));
        let rows = |g: ConvGeom| g.cols_shape()[0];
        let name = |i: usize| format!("{prefix}.{i}");
        Ok(ConvTrunk {
            batch,
            c1: Conv2d::new(be, store, &name(0), g1, 32)?,
            c2: Conv2d::new(be, store, &name(2), g2, 64)?,
            bn2: BatchNorm::new(be, store, &name(3), 64, momentum, BN_EPS)?,
            c3: Conv2d::new(be, store, &name(5), g3, 128)?,
            bn3: BatchNorm::new(be, store, &name(6), 128, momentum, BN_EPS)?,
            input: be.reshape(input, &[batch, SIDE, SIDE, 1])?,
            features: be.zeros(&[batch, D_FEATURES.iter().product()])?,
            a1: be.zeros(&[rows(g1), 32])?,
            c2out: be.zeros(&[rows(g2), 64])?,
            a2: be.zeros(&[rows(g2), 64])?,
            c3out: be.zeros(&[rows(g3), 128])?,
            dc3: be.zeros(&[rows(g3), 128])?,
            da2: be.zeros(&[batch, 7, 7, 64])?,
            dc2: be.zeros(&[rows(g2), 64])?,
            dc1: be.zeros(&[rows(g1), 32])?,
        })
    }

    pub fn forward(&self, be: &mut B, mode: BnMode) -> Result<()> {
        // Kernels check element counts, so NHWC maps pass as their [rows, C] matrices.
        let none = Activation::Identity;
        self.c1.forward(be, &self.input, &self.a1, LEAKY)?;
        self.c2.forward(be, &self.a1, &self.c2out, none)?;
        self.bn2.forward(be, &self.c2out, &self.a2, LEAKY, mode)?;
        self.c3.forward(be, &self.a2, &self.c3out, none)?;
        self.bn3
            .forward(be, &self.c3out, &self.features, LEAKY, mode)
    }

    /// From dfeatures [B, 2048]: accumulates parameter gradients when `grads`; writes the input
    /// gradient [B, 28, 28, 1] into `dinput` when given.
    pub fn backward(
        &self,
        be: &mut B,
        dfeatures: &B::Tensor,
        dinput: Option<&B::Tensor>,
        grads: bool,
    ) -> Result<()> {
        let dinput = dinput
            .map(|d| be.reshape(d, &[self.batch, SIDE, SIDE, 1]))
            .transpose()?;
        let none = Activation::Identity;
        // The LeakyReLUs' derivatives are folded into the batch-norm backwards and into col2im.
        self.bn3.backward(
            be,
            &self.c3out,
            dfeatures,
            &self.dc3,
            grads,
            Some((&self.features, LEAKY)),
            none,
        )?;
        self.c3
            .backward(be, &self.dc3, Some(&self.da2), None, grads)?;
        self.bn2.backward(
            be,
            &self.c2out,
            &self.da2,
            &self.dc2,
            grads,
            Some((&self.a2, LEAKY)),
            none,
        )?;
        // col2im takes the gradient through conv1's LeakyReLU: dc1 is w.r.t. conv1's output.
        self.c2.backward(
            be,
            &self.dc2,
            Some(&self.dc1),
            Some((&self.a1, LEAKY)),
            grads,
        )?;
        self.c1
            .backward(be, &self.dc1, dinput.as_ref(), None, grads)
    }
}

/// The discriminator for one batch size: the conv trunk and a dense logit.
pub struct Discriminator<B: Backend> {
    trunk: ConvTrunk<B>,
    dense: Linear<B>,
    /// Output logits [B, 1].
    pub logits: B::Tensor,
    dfeatures: B::Tensor,
}

impl<B: Backend> Discriminator<B> {
    /// `input`: images [B, 784] (shared with the generator's output and the real batch).
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        batch: usize,
        input: &B::Tensor,
    ) -> Result<Discriminator<B>> {
        let flat: usize = D_FEATURES.iter().product();
        Ok(Discriminator {
            trunk: ConvTrunk::new(be, store, "discriminator", batch, input, BN_MOMENTUM)?,
            dense: Linear::new(be, store, "discriminator.9", flat, 1)?,
            logits: be.zeros(&[batch, 1])?,
            dfeatures: be.zeros(&[batch, flat])?,
        })
    }

    /// logits = D(input).
    pub fn forward(&self, be: &mut B, mode: BnMode) -> Result<()> {
        self.trunk.forward(be, mode)?;
        self.dense
            .forward(be, &self.trunk.features, &self.logits, Activation::Identity)
    }

    /// Backward from dlogits [B, 1]: accumulates parameter gradients when `grads`; writes the
    /// input gradient [B, 28, 28, 1] into `dinput` when given.
    pub fn backward(
        &self,
        be: &mut B,
        dlogits: &B::Tensor,
        dinput: Option<&B::Tensor>,
        grads: bool,
    ) -> Result<()> {
        self.dense.backward(
            be,
            &self.trunk.features,
            dlogits,
            Some(&self.dfeatures),
            grads,
        )?;
        self.trunk.backward(be, &self.dfeatures, dinput, grads)
    }
}

/// The dense layers after a conv trunk flatten our NHWC features (h, w, c); PyTorch's Flatten of
/// an NCHW map orders them (c, h, w). Checkpoints hold PyTorch's order.
const DENSE_AFTER_TRUNK: [&str; 2] = ["discriminator.9.weight", "classifier.9.weight"];

fn permute_dense(values: &mut crate::nn::NamedValues, to_pytorch: bool) {
    let [h, w, c] = D_FEATURES;
    let width = h * w * c;
    let dense = |n: &str| DENSE_AFTER_TRUNK.iter().any(|d| n.ends_with(d));
    for (_, _, v) in values.iter_mut().filter(|(n, _, _)| dense(n)) {
        for row in v.chunks_mut(width) {
            let old = row.to_vec();
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let ours = (y * w + x) * c + ch;
                        let theirs = ch * h * w + y * w + x;
                        if to_pytorch {
                            row[theirs] = old[ours]
                        } else {
                            row[ours] = old[theirs]
                        }
                    }
                }
            }
        }
    }
}

/// Our layouts to PyTorch's, for checkpoints.
pub fn to_pytorch_layout(values: &mut crate::nn::NamedValues) {
    permute_dense(values, true);
    crate::gan::dcgan::to_pytorch_layout(values);
}

/// PyTorch's layouts (from a checkpoint) to ours.
pub fn from_pytorch_layout(values: &mut crate::nn::NamedValues) {
    permute_dense(values, false);
    crate::gan::dcgan::from_pytorch_layout(values);
}
