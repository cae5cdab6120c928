//! The article's GAN, corrected. Activations are NHWC; names and layouts follow PyTorch's
//! `nn.Sequential` so checkpoints load there:
//!
//! generator:     0 Linear(100,128) 1 LeakyReLU(0.2) 2 BatchNorm1d 3 Linear(128,128) 4 LeakyReLU
//!                5 BatchNorm1d 6 Linear(128,784) 7 Tanh                          -> [B, 28, 28, 1]
//! discriminator: 0 Conv(1,32,3,s2) 1 LeakyReLU 2 Conv(32,64) 3 BatchNorm2d 4 LeakyReLU
//!                5 Conv(64,128) 6 BatchNorm2d 7 LeakyReLU 8 Flatten 9 Linear(512,1) -> logit
//!
//! The convolutions have no padding (Keras' default 'valid'): 28 -> 13 -> 6 -> 2.

pub use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::nn::layers::Backprop;
use crate::nn::layers::{batch_norm_specs, linear_after_flatten_specs, linear_specs};
use crate::nn::trunk::{BN_EPS, LEAKY, conv_trunk_specs};
use crate::nn::{Backend, BatchNorm, BnMode, ConvTrunk, Linear, ParamSpec, ParamStore, TrunkShape};
pub use crate::rng::CLASSES;
use crate::spec::{Activation, ParamGrads};

const ACCUMULATE: ParamGrads = ParamGrads::Accumulate;

pub const LATENT: usize = 100;
pub const HIDDEN: usize = 128;
/// Keras' BatchNormalization(momentum=0.8).
pub const BN_MOMENTUM: f32 = 0.8;
/// The article's discriminator: convolutions without padding, 512 features.
pub const D_TRUNK: TrunkShape = TrunkShape::VALID;

/// Width of the generator's input: the latent vector, then in a conditional model the label
/// one-hot (PyTorch: `torch.cat([z, F.one_hot(y, 10)], 1)`).
pub fn generator_input(conditional: bool) -> usize {
    LATENT + if conditional { CLASSES } else { 0 }
}

/// Labels 0, 1, ..., 9, 0, 1, ... for `count` images: every digit equally, for a conditional
/// model's sample grids and scores.
pub fn cycled_labels(count: usize) -> Vec<f32> {
    (0..count).map(|i| (i % CLASSES) as f32).collect()
}

pub fn generator_specs(conditional: bool) -> Vec<ParamSpec> {
    let mut s = linear_specs("generator.0", generator_input(conditional), HIDDEN);
    s.extend(batch_norm_specs("generator.2", HIDDEN));
    s.extend(linear_specs("generator.3", HIDDEN, HIDDEN));
    s.extend(batch_norm_specs("generator.5", HIDDEN));
    s.extend(linear_specs("generator.6", HIDDEN, PIXELS));
    s
}

/// The discriminator; a conditional one adds the projection's class embedding
/// `projection.weight` [10, 512] (PyTorch: logit = D(x) + (projection.weight`[y]` *
/// flatten(D`[:9]`(x))).sum(1)), which reads the flattened features like `discriminator.9`.
pub fn discriminator_specs(conditional: bool) -> Vec<ParamSpec> {
    let mut s = conv_trunk_specs("discriminator");
    s.extend(linear_after_flatten_specs(
        "discriminator.9",
        D_TRUNK.features(),
        1,
    ));
    if conditional {
        // A Linear(512, 10)'s weight without its bias: its rows are the class embeddings.
        let mut embed = linear_after_flatten_specs("projection", D_TRUNK.features(), CLASSES);
        embed.truncate(1);
        s.extend(embed);
    }
    s
}

/// The generator for one batch size: layers (views into the shared store) and activations.
pub struct Generator<B: Backend> {
    l1: Linear<B>,
    bn1: BatchNorm<B>,
    l2: Linear<B>,
    bn2: BatchNorm<B>,
    l3: Linear<B>,
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
    /// `out` ([batch, 784] elements) is where the images go: the discriminator's input in
    /// training; `input` is the width of z ([`generator_input`]).
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        batch: usize,
        out: &B::Tensor,
        input: usize,
    ) -> Result<Generator<B>> {
        let rows = batch;
        let hidden = |be: &mut B| be.zeros(&[rows, HIDDEN]);
        Ok(Generator {
            l1: Linear::new(be, store, "generator.0", input, HIDDEN)?,
            bn1: BatchNorm::new(be, store, "generator.2", HIDDEN, BN_MOMENTUM, BN_EPS)?,
            l2: Linear::new(be, store, "generator.3", HIDDEN, HIDDEN)?,
            bn2: BatchNorm::new(be, store, "generator.5", HIDDEN, BN_MOMENTUM, BN_EPS)?,
            l3: Linear::new(be, store, "generator.6", HIDDEN, PIXELS)?,
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
    pub fn forward(&self, be: &mut B, z: &B::Tensor, mode: BnMode) -> Result<()> {
        self.l1.forward(be, z, &self.h1a, LEAKY)?;
        self.bn1
            .forward(be, &self.h1a, &self.h1, Activation::Identity, mode)?;
        self.l2.forward(be, &self.h1, &self.h2a, LEAKY)?;
        self.bn2
            .forward(be, &self.h2a, &self.h2, Activation::Identity, mode)?;
        self.l3.forward(be, &self.h2, &self.out, Activation::Tanh)
    }

    /// Accumulates parameter gradients from dout [N, 784] (after a training-mode forward).
    pub fn backward(&self, be: &mut B, z: &B::Tensor, dout: &B::Tensor) -> Result<()> {
        let dout = be.reshape(dout, &[self.batch, PIXELS])?;
        be.activation_backward(&self.out, &dout, &self.d3, Activation::Tanh)?;
        self.l3
            .backward(be, &self.h2, &self.d3, Backprop::Both(&self.dh2))?;
        // Each BN's input is a LeakyReLU's output: its derivative is folded into the BN backward.
        self.bn2
            .backward(be, &self.h2a, &self.dh2, &self.d2, ACCUMULATE, None, LEAKY)?;
        self.l2
            .backward(be, &self.h1, &self.d2, Backprop::Both(&self.dh1))?;
        self.bn1
            .backward(be, &self.h1a, &self.dh1, &self.d1, ACCUMULATE, None, LEAKY)?;
        self.l1.backward(be, z, &self.d1, Backprop::Params)
    }
}

/// The discriminator for one batch size: the conv trunk and a dense logit, plus in a
/// conditional model the projection term <embed`[y]`, features>.
pub struct Discriminator<B: Backend> {
    trunk: ConvTrunk<B>,
    dense: Linear<B>,
    /// The class embedding [10, 512] and its gradient (conditional models).
    projection: Option<(B::Tensor, B::Tensor)>,
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
        conditional: bool,
    ) -> Result<Discriminator<B>> {
        let flat = D_TRUNK.feature_count();
        let projection = match conditional {
            true => Some((
                store.get(be, "projection.weight", &[CLASSES, flat])?,
                store.grad(be, "projection.weight", &[CLASSES, flat])?,
            )),
            false => None,
        };
        Ok(Discriminator {
            projection,
            trunk: ConvTrunk::new(
                be,
                store,
                "discriminator",
                D_TRUNK,
                batch,
                input,
                BN_MOMENTUM,
            )?,
            dense: Linear::new(be, store, "discriminator.9", flat, 1)?,
            logits: be.zeros(&[batch, 1])?,
            dfeatures: be.zeros(&[batch, flat])?,
        })
    }

    /// logits = D(input), with the labels [B] of the input in a conditional model.
    pub fn forward(&self, be: &mut B, mode: BnMode, labels: Option<&B::Tensor>) -> Result<()> {
        self.trunk.forward(be, mode)?;
        let features = &self.trunk.features;
        self.dense
            .forward(be, features, &self.logits, Activation::Identity)?;
        match (&self.projection, labels) {
            (Some((embed, _)), Some(y)) => be.projection(features, embed, y, &self.logits),
            (None, None) => Ok(()),
            _ => Err(Error::Invalid(
                "labels go with a conditional discriminator, and only with one".into(),
            )),
        }
    }

    /// Backward from dlogits [B, 1] (the labels as in the forward); an input gradient is
    /// [B, 784].
    pub fn backward(
        &self,
        be: &mut B,
        dlogits: &B::Tensor,
        mode: Backprop<B::Tensor>,
        labels: Option<&B::Tensor>,
    ) -> Result<()> {
        let features = &self.trunk.features;
        self.dense
            .backward(be, features, dlogits, mode.with_input(&self.dfeatures))?;
        if let (Some((embed, dembed)), Some(y)) = (&self.projection, labels) {
            be.projection_backward_input(dlogits, embed, y, &self.dfeatures)?;
            if mode.params() {
                be.projection_backward_params(dlogits, features, y, dembed)?;
            }
        }
        self.trunk.backward(be, &self.dfeatures, mode)
    }
}
