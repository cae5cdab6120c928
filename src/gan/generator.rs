//! Which generator a GAN uses: the article's MLP ([`Generator`]) or the convolutional one
//! ([`DcganGenerator`]), chosen by [`GeneratorKind`] and run as an [`AnyGenerator`].

use crate::error::Result;
use crate::gan::dcgan::{DcganGenerator, dcgan_specs};
use crate::gan::model::{Generator, generator_input, generator_specs};
use crate::nn::{Backend, BnMode, ParamSpec, ParamStore};

/// Which generator a GAN uses (`--model mlp|dcgan`); the name is the checkpoint's `model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GeneratorKind {
    /// The article's MLP generator
    Mlp,
    /// Convolutional generator (transposed convolutions)
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

    pub fn specs(self, conditional: bool) -> Vec<ParamSpec> {
        match self {
            GeneratorKind::Mlp => generator_specs(conditional),
            GeneratorKind::Dcgan => dcgan_specs(conditional),
        }
    }
}

/// Either generator, for one batch size.
pub enum AnyGenerator<B: Backend> {
    Mlp(Generator<B>),
    Dcgan(DcganGenerator<B>),
}

impl<B: Backend> AnyGenerator<B> {
    /// A conditional generator takes [z | one_hot(y)] (see [`generator_input`]) where the
    /// others take z.
    pub fn new(
        kind: GeneratorKind,
        be: &mut B,
        store: &ParamStore<B>,
        batch: usize,
        out: &B::Tensor,
        conditional: bool,
    ) -> Result<AnyGenerator<B>> {
        let input = generator_input(conditional);
        Ok(match kind {
            GeneratorKind::Mlp => AnyGenerator::Mlp(Generator::new(be, store, batch, out, input)?),
            GeneratorKind::Dcgan => {
                AnyGenerator::Dcgan(DcganGenerator::new(be, store, batch, out, input)?)
            }
        })
    }

    /// Output images [N, 784].
    pub fn out(&self) -> &B::Tensor {
        match self {
            AnyGenerator::Mlp(g) => &g.out,
            AnyGenerator::Dcgan(g) => &g.out,
        }
    }

    /// out = G(z), z [N, 100].
    pub fn forward(&self, be: &mut B, z: &B::Tensor, mode: BnMode) -> Result<()> {
        match self {
            AnyGenerator::Mlp(g) => g.forward(be, z, mode),
            AnyGenerator::Dcgan(g) => g.forward(be, z, mode),
        }
    }

    /// Accumulates parameter gradients from dout [N, 784], after a training-mode forward of z.
    pub fn backward(&self, be: &mut B, z: &B::Tensor, dout: &B::Tensor) -> Result<()> {
        match self {
            AnyGenerator::Mlp(g) => g.backward(be, z, dout),
            AnyGenerator::Dcgan(g) => g.backward(be, z, dout),
        }
    }
}
