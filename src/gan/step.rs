//! One training step of the GAN, written once over a [`Backend`]: on the GPU it is recorded once
//! and replayed every step; on the CPU it runs as the reference.

use crate::error::{Result, ensure};
use crate::gan::model::{
    AnyGenerator, Discriminator, GeneratorKind, LATENT, PIXELS, discriminator_specs,
};
use crate::nn::{Backend, BnMode, NOISE_STREAMS_PER_STEP, ParamStore};
use crate::spec::AdamSpec;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConfig {
    pub model: GeneratorKind,
    pub batch: usize,
    pub seed: u64,
    pub adam: AdamSpec,
    pub noise: Noise,
}

/// Where a step's two noise batches (for the D step and the G step) come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// Drawn on the device from (seed, step): streams 2*step and 2*step + 1.
    Drawn,
    /// Written into [`Gan::noise`] before each step (golden tests against other frameworks).
    Given,
}

/// Slots of the statistics buffer the step writes (read back only when logged).
pub mod slot {
    pub const D_LOSS_REAL: usize = 0;
    pub const D_REAL: usize = 1;
    pub const D_LOSS_FAKE: usize = 2;
    pub const D_FAKE: usize = 3;
    pub const G_LOSS: usize = 4;
    pub const D_FAKE_G_STEP: usize = 5;
    pub const COUNT: usize = 8;
}

/// Losses and mean discriminator outputs of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    pub d_loss: f32,
    pub g_loss: f32,
    /// Mean D(x) on the real batch.
    pub d_real: f32,
    /// Mean D(G(z)) on the fake batch of the discriminator step.
    pub d_fake: f32,
}

impl StepStats {
    pub fn from_slots(s: &[f32]) -> StepStats {
        StepStats {
            d_loss: 0.5 * (s[slot::D_LOSS_REAL] + s[slot::D_LOSS_FAKE]),
            g_loss: s[slot::G_LOSS],
            d_real: s[slot::D_REAL],
            d_fake: s[slot::D_FAKE],
        }
    }

    pub fn is_finite(&self) -> bool {
        [self.d_loss, self.g_loss, self.d_real, self.d_fake]
            .iter()
            .all(|v| v.is_finite())
    }
}

/// Seeds of the two networks' initial weights, derived from the run's seed.
pub fn init_seeds(seed: u64) -> (u64, u64) {
    (seed ^ 0x6765_6e65_7261_746f, seed ^ 0x6469_7363_7269_6d69)
}

pub struct Gan<B: Backend> {
    pub config: StepConfig,
    pub g_store: ParamStore<B>,
    pub d_store: ParamStore<B>,
    pub generator: AnyGenerator<B>,
    pub discriminator: Discriminator<B>,
    /// The training images, 4 bytes per u32, uploaded once.
    pub images: B::Words,
    /// This epoch's shuffled image indices.
    pub order: B::Words,
    /// The noise [B, 100] of the D step and of the G step.
    pub noise: [B::Tensor; 2],
    /// Images fed to D: the real batch, then G's output.
    pub input: B::Tensor,
    pub dlogits: B::Tensor,
    pub dinput: B::Tensor,
    pub stats: B::Tensor,
}

impl<B: Backend> Gan<B> {
    /// Buffers for training on `images` (`count` images of 784 bytes, packed 4 per u32);
    /// parameters start at zero: initialise or load them next.
    pub fn new(be: &mut B, config: StepConfig, images: &[u32], count: usize) -> Result<Gan<B>> {
        ensure(config.batch >= 1 && config.batch <= count, || {
            format!(
                "batch size {} must be between 1 and the dataset size {count}",
                config.batch
            )
        })?;
        ensure(images.len() * 4 == count * PIXELS, || {
            "image data does not hold whole images".into()
        })?;
        let g_store = ParamStore::new(be, config.model.specs())?;
        let d_store = ParamStore::new(be, discriminator_specs())?;
        let input = be.zeros(&[config.batch, PIXELS])?;
        let generator = AnyGenerator::new(config.model, be, &g_store, config.batch, &input)?;
        let discriminator = Discriminator::new(be, &d_store, config.batch, &input)?;
        let order: Vec<u32> = (0..count as u32).collect();
        Ok(Gan {
            config,
            images: be.words(images)?,
            order: be.words(&order)?,
            dlogits: be.zeros(&[config.batch, 1])?,
            dinput: be.zeros(&[config.batch, PIXELS])?,
            stats: be.zeros(&[slot::COUNT])?,
            noise: [
                be.zeros(&[config.batch, LATENT])?,
                be.zeros(&[config.batch, LATENT])?,
            ],
            input,
            generator,
            discriminator,
            g_store,
            d_store,
        })
    }

    pub fn initialize(&self, be: &mut B) -> Result<()> {
        let (g, d) = init_seeds(self.config.seed);
        self.g_store.initialize(be, g)?;
        self.d_store.initialize(be, d)
    }

    /// Step `step` (0-based) on the batch at `offset` of the current order.
    pub fn step(&self, be: &mut B, step: u64, offset: usize) -> Result<()> {
        let (d, g, c) = (&self.discriminator, &self.generator, &self.config);
        let stream = NOISE_STREAMS_PER_STEP.wrapping_mul(step as u32);
        let update = BnMode::Train {
            update_running: true,
        };

        // Discriminator: real batch (target 1), then a fake batch (target 0), loss = their mean.
        be.fill(&self.d_store.grads, 0.0)?;
        be.gather_batch(&self.images, &self.order, &self.input, offset)?;
        d.forward(be, update)?;
        be.bce_with_logits(
            &d.logits,
            &self.dlogits,
            &self.stats,
            slot::D_LOSS_REAL,
            1.0,
            0.5,
        )?;
        d.backward(be, &self.dlogits, None, true)?;
        let [z_d, z_g] = &self.noise;
        if c.noise == Noise::Drawn {
            be.randn(z_d, c.seed, stream)?;
            be.randn(z_g, c.seed, stream.wrapping_add(1))?;
        }
        g.forward(be, z_d, update)?;
        d.forward(be, update)?;
        be.bce_with_logits(
            &d.logits,
            &self.dlogits,
            &self.stats,
            slot::D_LOSS_FAKE,
            0.0,
            0.5,
        )?;
        d.backward(be, &self.dlogits, None, true)?;
        let s = &self.d_store;
        be.adam(&s.params, &s.grads, &s.m, &s.v, c.adam, step + 1)?;

        // Generator: fresh noise, target 1, gradients through D without touching D's state.
        g.forward(be, z_g, update)?;
        d.forward(
            be,
            BnMode::Train {
                update_running: false,
            },
        )?;
        be.bce_with_logits(
            &d.logits,
            &self.dlogits,
            &self.stats,
            slot::G_LOSS,
            1.0,
            1.0,
        )?;
        d.backward(be, &self.dlogits, Some(&self.dinput), false)?;
        be.fill(&self.g_store.grads, 0.0)?;
        g.backward(be, z_g, &self.dinput)?;
        let s = &self.g_store;
        be.adam(&s.params, &s.grads, &s.m, &s.v, c.adam, step + 1)
    }
}
