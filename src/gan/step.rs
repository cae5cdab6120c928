//! One training step of the GAN, written once over a [`Backend`]: on the GPU it is recorded once
//! and replayed every step; on the CPU it runs as the reference.

use crate::error::{Result, ensure};
use crate::gan::generator::{AnyGenerator, GeneratorKind};
use crate::gan::model::{Discriminator, LATENT, PIXELS, discriminator_specs, generator_input};
use crate::gan::objective::{Objective, Target, Term};
use crate::nn::layers::Backprop;
use crate::nn::{Backend, BnMode, ParamStore, Stream};
use crate::spec::AdamSpec;

/// Noise streams a training step draws: the D step's and the G step's.
pub const NOISE_STREAMS_PER_STEP: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConfig {
    pub model: GeneratorKind,
    pub batch: usize,
    pub seed: u64,
    /// The discriminator's optimiser.
    pub adam_d: AdamSpec,
    /// The generator's optimiser (another learning rate: two time-scale updates).
    pub adam_g: AdamSpec,
    pub noise: Noise,
    pub objective: Objective,
    /// One-sided label smoothing p: D's real targets are 1 - p (bce only).
    pub label_smoothing: f32,
    /// Keep an exponential moving average of G's weights and running statistics with this
    /// decay, updated after each of G's Adam steps.
    pub ema: Option<f32>,
    /// Class-conditional: G takes [z | one_hot(y)], D adds the projection term; real labels come
    /// from the dataset, fake ones are drawn on the device from (seed, step).
    pub conditional: bool,
}

impl StepConfig {
    /// The article's step for `model` at batch size `batch`: noise drawn on the device, binary
    /// cross-entropy, Adam(2e-4, beta1 0.5).
    pub fn article(model: GeneratorKind, batch: usize, seed: u64) -> StepConfig {
        StepConfig {
            model,
            batch,
            seed,
            adam_d: AdamSpec::GAN,
            adam_g: AdamSpec::GAN,
            noise: Noise::Drawn,
            objective: Objective::Bce,
            label_smoothing: 0.0,
            ema: None,
            conditional: false,
        }
    }
}

/// Seed of the fake labels' streams (the D step's and the G step's, as for the noise), apart
/// from the noise's.
fn label_seed(seed: u64) -> u64 {
    seed ^ 0x6c61_6265_6c73_0000
}

/// Where a step's two noise batches (for the D step and the G step) come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// Drawn on the device from (seed, step): streams 2*step and 2*step + 1.
    Drawn,
    /// Written into [`Gan::noise`] before each step (golden tests against other frameworks).
    Given,
}

/// Seeds of the two networks' initial weights, derived from the run's seed.
pub fn init_seeds(seed: u64) -> (u64, u64) {
    (seed ^ 0x6765_6e65_7261_746f, seed ^ 0x6469_7363_7269_6d69)
}

pub struct Gan<B: Backend> {
    pub config: StepConfig,
    pub g_store: ParamStore<B>,
    pub d_store: ParamStore<B>,
    /// The moving average of G's parameters and state (`StepConfig::ema`), in G's layout.
    pub g_ema: Option<ParamStore<B>>,
    pub generator: AnyGenerator<B>,
    pub discriminator: Discriminator<B>,
    /// The training images, 4 bytes per u32, uploaded once.
    pub images: B::Words,
    /// This epoch's shuffled image indices.
    pub order: B::Words,
    /// Conditional models: the labels of the training images (bytes packed 4 per u32), of the
    /// real batch, of the D step's and the G step's fakes, and G's input [z | one_hot(y)].
    pub labels: Option<Labels<B>>,
    /// The noise [B, 100] of the D step and of the G step.
    pub noise: [B::Tensor; 2],
    /// Images fed to D: the real batch, then G's output.
    pub input: B::Tensor,
    pub dlogits: B::Tensor,
    pub dinput: B::Tensor,
    pub stats: B::Tensor,
}

pub struct Labels<B: Backend> {
    pub all: B::Words,
    pub real: B::Tensor,
    pub fake: [B::Tensor; 2],
    pub g_input: B::Tensor,
}

impl<B: Backend> Gan<B> {
    /// Buffers for training on `images` (`count` images of 784 bytes, packed 4 per u32) and
    /// their `labels` (bytes packed 4 per u32; used by conditional models); parameters start at
    /// zero: initialise or load them next.
    pub fn new(
        be: &mut B,
        config: StepConfig,
        images: &[u32],
        labels: &[u32],
        count: usize,
    ) -> Result<Gan<B>> {
        // Batch norm over one image subtracts it from itself: the layers before it would get no
        // gradient. The commands refuse it naming their flag; this holds for every caller.
        ensure(config.batch >= 2 && config.batch <= count, || {
            format!(
                "batch size {} must be between 2 and the dataset size {count}",
                config.batch
            )
        })?;
        ensure(images.len() * 4 == count * PIXELS, || {
            "image data does not hold whole images".into()
        })?;
        let c = config.conditional;
        let g_store = ParamStore::new(be, config.model.specs(c))?;
        let d_store = ParamStore::new(be, discriminator_specs(c))?;
        let g_ema = match config.ema {
            Some(_) => Some(ParamStore::new(be, config.model.specs(c))?),
            None => None,
        };
        let input = be.zeros(&[config.batch, PIXELS])?;
        let generator = AnyGenerator::new(config.model, be, &g_store, config.batch, &input, c)?;
        let discriminator = Discriminator::new(be, &d_store, config.batch, &input, c)?;
        let order: Vec<u32> = (0..count as u32).collect();
        let labels = match c {
            false => None,
            true => {
                ensure(labels.len() == count.div_ceil(4), || {
                    format!("{} label words for {count} images", labels.len())
                })?;
                let rows = config.batch;
                Some(Labels {
                    all: be.words(labels)?,
                    real: be.zeros(&[rows])?,
                    fake: [be.zeros(&[rows])?, be.zeros(&[rows])?],
                    g_input: be.zeros(&[rows, generator_input(true)])?,
                })
            }
        };
        Ok(Gan {
            labels,
            config,
            images: be.words(images)?,
            order: be.words(&order)?,
            dlogits: be.zeros(&[config.batch, 1])?,
            dinput: be.zeros(&[config.batch, PIXELS])?,
            stats: be.zeros(&[Objective::SLOTS])?,
            noise: [
                be.zeros(&[config.batch, LATENT])?,
                be.zeros(&[config.batch, LATENT])?,
            ],
            input,
            generator,
            discriminator,
            g_store,
            d_store,
            g_ema,
        })
    }

    pub fn initialize(&self, be: &mut B) -> Result<()> {
        let (g, d) = init_seeds(self.config.seed);
        self.g_store.initialize(be, g)?;
        if let Some(avg) = &self.g_ema {
            // The average starts at G's initial weights.
            avg.initialize(be, g)?;
        }
        self.d_store.initialize(be, d)
    }

    /// G's input for noise `z` and (conditional) fake labels `i` (0: the D step's, 1: the G
    /// step's): z itself, or [z | one_hot(y)] with y drawn for this step.
    fn generator_input<'a>(
        &'a self,
        be: &mut B,
        z: &'a B::Tensor,
        i: u32,
    ) -> Result<&'a B::Tensor> {
        let Some(l) = &self.labels else {
            return Ok(z);
        };
        let seed = label_seed(self.config.seed);
        let y = &l.fake[i as usize];
        be.rand_labels(
            y,
            seed,
            Stream {
                base: i,
                per_run: NOISE_STREAMS_PER_STEP,
            },
        )?;
        be.one_hot_concat(z, y, &l.g_input)?;
        Ok(&l.g_input)
    }

    /// One training step at the run's step, on the batch at the run's offset of the current order.
    pub fn step(&self, be: &mut B) -> Result<()> {
        let (d, g, c) = (&self.discriminator, &self.generator, &self.config);
        let (o, dlogits, stats) = (c.objective, &self.dlogits, &self.stats);
        let real_label = 1.0 - c.label_smoothing;
        // Scores D's current logits for one term of the step.
        let score = |be: &mut B, term, target| {
            o.score(be, term, target, real_label, &d.logits, dlogits, stats)
        };
        let [z_d, z_g] = &self.noise;
        if c.noise == Noise::Drawn {
            let per_run = NOISE_STREAMS_PER_STEP;
            be.randn(z_d, c.seed, Stream { base: 0, per_run })?;
            be.randn(z_g, c.seed, Stream { base: 1, per_run })?;
        }
        let l = self.labels.as_ref();
        let (real, fake_d, fake_g) = (
            l.map(|l| &l.real),
            l.map(|l| &l.fake[0]),
            l.map(|l| &l.fake[1]),
        );

        // Discriminator: the real batch, then G(z_d); its loss is the mean of the two terms.
        be.fill(&self.d_store.grads, 0.0)?;
        be.gather_batch(&self.images, &self.order, &self.input)?;
        if let Some(l) = l {
            be.gather_labels(&l.all, &self.order, &l.real)?;
        }
        d.forward(be, BnMode::TRAIN, real)?;
        score(be, Term::D, Target::Real)?;
        d.backward(be, dlogits, Backprop::Params, real)?;
        let input = self.generator_input(be, z_d, 0)?;
        g.forward(be, input, BnMode::TRAIN)?;
        d.forward(be, BnMode::TRAIN, fake_d)?;
        score(be, Term::D, Target::Fake)?;
        d.backward(be, dlogits, Backprop::Params, fake_d)?;
        self.d_store.adam(be, c.adam_d)?;

        // Generator: G(z_g) scored as real, gradients through D leaving D's state untouched.
        let input = self.generator_input(be, z_g, 1)?;
        g.forward(be, input, BnMode::TRAIN)?;
        d.forward(be, BnMode::TRAIN_KEEP_RUNNING, fake_g)?;
        score(be, Term::G, Target::Real)?;
        d.backward(be, dlogits, Backprop::Input(&self.dinput), fake_g)?;
        be.fill(&self.g_store.grads, 0.0)?;
        g.backward(be, input, &self.dinput)?;
        self.g_store.adam(be, c.adam_g)?;
        match (&self.g_ema, c.ema) {
            (Some(avg), Some(decay)) => {
                let g = &self.g_store;
                be.ema(&avg.params, &g.params, &avg.state, &g.state, decay)
            }
            _ => Ok(()),
        }
    }
}
