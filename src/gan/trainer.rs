//! The GAN on the GPU: the step recorded once as a [`Program`] and run every step with the step
//! number and batch offset as its inputs; losses are read back only when asked for.

use crate::error::{Error, Result};
use crate::eval::{Evaluator, Report};
use crate::gan::ema::{averaged_name, ema_name};
use crate::gan::generator::{AnyGenerator, GeneratorKind};
use crate::gan::model::{LATENT, PIXELS, generator_input};
use crate::gan::objective::StepStats;
use crate::gan::options::TrainOptions;
use crate::gan::step::{Gan, StepConfig};
use crate::gpu::{Dispatch, Gpu, ready_now};
use crate::nn::{Backend, BnMode, NamedValues, ParamStore, Program, Recorder, Run, Stream};

pub struct GpuTrainer<'g> {
    be: Recorder<'g>,
    pub gan: Gan<Recorder<'g>>,
    program: Program<'g>,
}

impl<'g> GpuTrainer<'g> {
    /// Allocates everything and records the step; parameters start at zero (initialise or load).
    pub fn new(
        gpu: &'g Gpu,
        config: StepConfig,
        images: &[u32],
        labels: &[u32],
        count: usize,
    ) -> Result<GpuTrainer<'g>> {
        let mut be = Recorder::new(gpu);
        let gan = Gan::new(&mut be, config, images, labels, count)?;
        gan.step(&mut be)?;
        be.input_words("order", &gan.order);
        be.input("noise.d", &gan.noise[0]);
        be.input("noise.g", &gan.noise[1]);
        be.output("stats", &gan.stats);
        let program = Program::new(&mut be);
        Ok(GpuTrainer { be, gan, program })
    }

    /// Keras-style initial weights from the configuration's seed.
    pub fn initialize(&mut self) -> Result<()> {
        self.gan.initialize(&mut self.be)
    }

    /// GPU dispatches per step (for reports).
    pub fn dispatch_count(&self) -> usize {
        self.program.dispatch_count()
    }

    /// The recorded step, for profiling.
    pub fn dispatches(&self) -> &[Dispatch] {
        self.program.dispatches()
    }

    /// Sets the epoch's image order (a permutation of the dataset's indices).
    pub fn set_order(&mut self, order: &[u32]) -> Result<()> {
        self.program.write_words("order", order)
    }

    /// The next step's noise, for a step configured with
    /// [`Noise::Given`](crate::gan::step::Noise::Given): the D step's and the G step's,
    /// [batch, 100] each.
    pub fn set_noise(&mut self, d_step: &[f32], g_step: &[f32]) -> Result<()> {
        self.program.write("noise.d", d_step)?;
        self.program.write("noise.g", g_step)
    }

    /// Runs step `step` (0-based) on the batch at `offset`; with `read`, returns its statistics.
    /// At most one step is in flight.
    pub fn run_step(&mut self, step: u64, offset: usize, read: bool) -> Result<Option<StepStats>> {
        ready_now(self.run_step_async(step, offset, read))
    }

    pub async fn run_step_async(
        &mut self,
        step: u64,
        offset: usize,
        read: bool,
    ) -> Result<Option<StepStats>> {
        let run = Run {
            step,
            offset,
            lr: None,
        };
        if !read {
            return self.program.run(&run).map(|_| None);
        }
        let slots = self.program.run_and_read_async(&run, "stats").await?;
        Ok(Some(self.gan.config.objective.stats(&slots)))
    }

    /// Waits for the last step.
    pub fn finish(&mut self) -> Result<()> {
        self.program.finish()
    }

    /// The generator's weights the samples are drawn with: the moving average when the run
    /// keeps one, else the generator's own.
    pub fn sampling_store(&self) -> &ParamStore<Recorder<'g>> {
        self.gan.g_ema.as_ref().unwrap_or(&self.gan.g_store)
    }

    /// Both networks' parameters and running statistics (and G's moving average under
    /// `generator_ema.*`), then Adam's moments.
    pub fn values(&mut self) -> Result<(NamedValues, NamedValues)> {
        ready_now(self.values_async())
    }

    pub async fn values_async(&mut self) -> Result<(NamedValues, NamedValues)> {
        self.finish()?;
        let gpu = self.be.gpu;
        let (mut weights, mut moments) = (Vec::new(), Vec::new());
        for store in [&self.gan.g_store, &self.gan.d_store] {
            let params = store.params.read_async(gpu).await?;
            let state = store.state.read_async(gpu).await?;
            weights.extend(store.values_from(&params, &state));
            let m = store.m.read_async(gpu).await?;
            let v = store.v.read_async(gpu).await?;
            moments.extend(store.moments_from(&m, &v));
        }
        if let Some(avg) = &self.gan.g_ema {
            let params = avg.params.read_async(gpu).await?;
            let state = avg.state.read_async(gpu).await?;
            let values = avg.values_from(&params, &state);
            weights.extend(values.into_iter().map(|(n, s, v)| (ema_name(&n), s, v)));
        }
        Ok((weights, moments))
    }

    pub fn load(&mut self, weights: &NamedValues, moments: &NamedValues) -> Result<()> {
        self.finish()?;
        for store in [&self.gan.g_store, &self.gan.d_store] {
            store.load(&mut self.be, weights)?;
            store.load_moments(&mut self.be, moments)?;
        }
        if let Some(avg) = &self.gan.g_ema {
            let values: NamedValues = weights
                .iter()
                .filter_map(|(n, s, v)| averaged_name(n).map(|n| (n, s.clone(), v.clone())))
                .collect();
            avg.load(&mut self.be, &values)?;
        }
        Ok(())
    }

    /// Overwrites every generator parameter with NaN (the divergence check's test hook).
    pub fn poison_generator(&mut self) -> Result<()> {
        self.finish()?;
        let store = &self.gan.g_store;
        self.be.write(&store.params, &vec![f32::NAN; store.len()])
    }
}

/// The generator in inference mode over fixed noise: recorded once, run on demand. Large counts
/// run in chunks of at most `SAMPLE_CHUNK` images (chunk k draws noise stream `SAMPLE_STREAM - k`),
/// so the workspace stays within the adapter's buffer limits.
pub struct Sampler<'g> {
    count: usize,
    chunk: usize,
    /// z is the program's input "z" (written per chunk), not drawn on the GPU.
    given: bool,
    /// A conditional generator's labels, one per image (written per chunk).
    labels: Option<Vec<f32>>,
    program: Program<'g>,
}

/// What scores the generator at each epoch's end (`train`, and the page): `count` images from
/// fixed noise (a class-conditional generator asked for the digits 0..9 in turn), drawn with the
/// weights samples are drawn with, and the evaluation classifier.
pub struct EpochScorer<'g> {
    sampler: Sampler<'g>,
    evaluator: Evaluator<'g>,
}

impl<'g> EpochScorer<'g> {
    /// The scorer of `trainer`'s run with `opts`, scoring `count` images.
    pub fn new(
        gpu: &'g Gpu,
        opts: &TrainOptions,
        count: usize,
        trainer: &GpuTrainer<'g>,
        evaluator: Evaluator<'g>,
    ) -> Result<EpochScorer<'g>> {
        let (g, labels) = (trainer.sampling_store(), opts.sample_labels(count));
        let seed = EpochScorer::noise_seed(opts.seed);
        let sampler = Sampler::new(gpu, opts.model, g, count, seed, labels)?;
        Ok(EpochScorer { sampler, evaluator })
    }

    /// The seed of the scored images' noise for a run of `seed`: `eval --checkpoint --seed` with
    /// it scores the same images.
    pub fn noise_seed(seed: u64) -> u64 {
        grid_seed(seed) ^ 1
    }

    /// The scores of the generator as it is now.
    pub fn score(&mut self) -> Result<Report> {
        ready_now(self.score_async())
    }

    /// [`EpochScorer::score`], awaitable (the browser build).
    pub async fn score_async(&mut self) -> Result<Report> {
        let (images, _) = self.sampler.generate_from_async(None, false).await?;
        self.evaluator
            .evaluate_requested_async(&images, self.sampler.labels())
            .await
    }
}

/// Seed of the fixed noise behind the per-epoch sample grids.
pub fn grid_seed(seed: u64) -> u64 {
    seed ^ 0x5a3d_1e00_9f11_0c0d
}

/// Noise stream of sample batches (training steps use streams 0, 1, 2, ...).
pub const SAMPLE_STREAM: u32 = u32::MAX;
pub const SAMPLE_CHUNK: usize = 500;

/// Where a sampler's latent vectors come from.
#[derive(Clone, Copy, Debug)]
pub enum SampleNoise {
    /// Drawn on the GPU from `seed` (chunk k from stream SAMPLE_STREAM - k).
    Drawn { seed: u64 },
    /// Given by the caller (`Sampler::generate_from`).
    Given,
}

impl<'g> Sampler<'g> {
    /// The digit each image is generated for (class-conditional generators).
    pub fn labels(&self) -> Option<&[f32]> {
        self.labels.as_deref()
    }

    /// `labels` (one per image) for a conditional generator, `None` for the others.
    pub fn new(
        gpu: &'g Gpu,
        kind: GeneratorKind,
        store: &ParamStore<Recorder<'g>>,
        count: usize,
        seed: u64,
        labels: Option<Vec<f32>>,
    ) -> Result<Sampler<'g>> {
        Sampler::with_noise(gpu, kind, store, count, SampleNoise::Drawn { seed }, labels)
    }

    pub fn with_noise(
        gpu: &'g Gpu,
        kind: GeneratorKind,
        store: &ParamStore<Recorder<'g>>,
        count: usize,
        noise: SampleNoise,
        labels: Option<Vec<f32>>,
    ) -> Result<Sampler<'g>> {
        if labels.as_ref().is_some_and(|l| l.len() != count) {
            return Err(Error::Invalid(format!(
                "{count} images need {count} labels"
            )));
        }
        let chunk = count.clamp(1, SAMPLE_CHUNK);
        let mut be = Recorder::new(gpu);
        let out = be.zeros(&[chunk, PIXELS])?;
        let z = be.zeros(&[chunk, LATENT])?;
        let conditional = labels.is_some();
        let generator = AnyGenerator::new(kind, &mut be, store, chunk, &out, conditional)?;
        match noise {
            SampleNoise::Drawn { seed } => {
                let stream = Stream {
                    base: SAMPLE_STREAM,
                    per_run: u32::MAX,
                };
                be.randn(&z, seed, stream)?;
            }
            SampleNoise::Given => be.input("z", &z),
        }
        let input = match conditional {
            false => z.clone(),
            true => {
                let y = be.zeros(&[chunk])?;
                let input = be.zeros(&[chunk, generator_input(true)])?;
                be.input("labels", &y);
                be.one_hot_concat(&z, &y, &input)?;
                input
            }
        };
        generator.forward(&mut be, &input, BnMode::Inference)?;
        be.output("images", &out);
        be.output("z", &z);
        Ok(Sampler {
            count,
            chunk,
            given: matches!(noise, SampleNoise::Given),
            labels,
            program: Program::new(&mut be),
        })
    }

    /// Images [count, 784] in [-1, 1] from drawn noise (the latent vectors stay on the GPU).
    pub fn generate(&mut self) -> Result<Vec<f32>> {
        Ok(self.generate_from(None, false)?.0)
    }

    /// Images [count, 784] in [-1, 1] from `z` when the noise is given (count x 100 values), else
    /// from drawn noise; with `keep_latents`, also the latent vectors [count, 100] used (read
    /// back per chunk), else an empty vector.
    pub fn generate_from(
        &mut self,
        z: Option<&[f32]>,
        keep_latents: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        ready_now(self.generate_from_async(z, keep_latents))
    }

    pub async fn generate_from_async(
        &mut self,
        z: Option<&[f32]>,
        keep_latents: bool,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if self.given != z.is_some() || z.is_some_and(|z| z.len() != self.count * LATENT) {
            return Err(Error::Invalid(format!(
                "this sampler wants {} latent vectors of {LATENT}",
                if self.given { "given" } else { "no given" }
            )));
        }
        let mut images = Vec::with_capacity(self.count * PIXELS);
        let mut latents = Vec::with_capacity(self.count * LATENT);
        for k in 0..self.count.div_ceil(self.chunk) {
            let first = k * self.chunk;
            let rows = self.chunk.min(self.count - first);
            if let Some(z) = z {
                // The last chunk's unused rows are zeros; their images are dropped.
                let mut block = z[first * LATENT..(first + rows) * LATENT].to_vec();
                block.resize(self.chunk * LATENT, 0.0);
                self.program.write("z", &block)?;
            }
            if let Some(labels) = &self.labels {
                let mut block = labels[first..first + rows].to_vec();
                block.resize(self.chunk, 0.0);
                self.program.write("labels", &block)?;
            }
            let run = Run {
                step: k as u64,
                ..Run::default()
            };
            let chunk = self.program.run_and_read_async(&run, "images").await?;
            images.extend_from_slice(&chunk[..rows * PIXELS]);
            if keep_latents {
                latents.extend_from_slice(&self.program.read_async("z").await?[..rows * LATENT]);
            }
        }
        Ok((images, latents))
    }
}

/// A generator-only parameter store on the GPU (for `sample`).
pub fn generator_store<'g>(
    be: &mut Recorder<'g>,
    kind: GeneratorKind,
    conditional: bool,
) -> Result<ParamStore<Recorder<'g>>> {
    ParamStore::new(be, kind.specs(conditional))
}

/// (count, sum of absolute values, sum of squares) in f64 over the generator's values among
/// `values`: what the browser test compares with the native CPU reference.
pub fn generator_checksum(values: &NamedValues) -> [f64; 3] {
    let mut sums = [0.0f64; 3];
    for (_, _, v) in values
        .iter()
        .filter(|(n, _, _)| n.starts_with("generator."))
    {
        for &x in v {
            let x = f64::from(x);
            sums[0] += 1.0;
            sums[1] += x.abs();
            sums[2] += x * x;
        }
    }
    sums
}
