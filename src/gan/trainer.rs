//! The GAN on the GPU: the step is recorded once into prepared dispatches and replayed with one
//! compute pass and one submit per step; only the per-step uniforms (batch offset, noise stream,
//! Adam's bias corrections) are rewritten. Statistics are copied back only when asked for.

use crate::error::{Error, Result};
use crate::gan::model::{AnyGenerator, GeneratorKind, LATENT, PIXELS};
use crate::gan::step::{Gan, StepConfig, slot};
use crate::gpu::{Dispatch, Gpu};
use crate::nn::{BnMode, Dynamic, NamedValues, ParamStore, Recorder};

pub struct GpuTrainer<'g> {
    pub gpu: &'g Gpu,
    pub be: Recorder<'g>,
    pub gan: Gan<Recorder<'g>>,
    step: Vec<Dispatch>,
    dynamic: Vec<(usize, Dynamic)>,
    staging: wgpu::Buffer,
    in_flight: Option<wgpu::SubmissionIndex>,
}

impl<'g> GpuTrainer<'g> {
    /// Allocates everything and records the step; parameters start at zero (initialise or load).
    pub fn new(
        gpu: &'g Gpu,
        config: StepConfig,
        images: &[u32],
        count: usize,
    ) -> Result<GpuTrainer<'g>> {
        let mut be = Recorder::new(gpu);
        let gan = Gan::new(&mut be, config, images, count)?;
        gan.step(&mut be, 0, 0)?;
        let (step, dynamic) = be.take();
        let staging = gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stats readback"),
            size: (slot::COUNT * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuTrainer {
            gpu,
            be,
            gan,
            step,
            dynamic,
            staging,
            in_flight: None,
        })
    }

    /// GPU dispatches per step (for reports).
    pub fn dispatch_count(&self) -> usize {
        self.step.iter().map(Dispatch::len).sum()
    }

    /// The recorded step, for profiling.
    pub fn step_dispatches(&self) -> (&[Dispatch], &[(usize, Dynamic)]) {
        (&self.step, &self.dynamic)
    }

    /// Sets the epoch's image order (a permutation of the dataset's indices).
    pub fn set_order(&mut self, order: &[u32]) -> Result<()> {
        self.gan.order.write(self.gpu, order)
    }

    /// The next step's noise, for a step configured with
    /// [`Noise::Given`](crate::gan::step::Noise::Given): the D step's and the G
    /// step's, [batch, 100] each.
    pub fn set_noise(&mut self, d_step: &[f32], g_step: &[f32]) -> Result<()> {
        self.gan.noise[0].write(self.gpu, d_step)?;
        self.gan.noise[1].write(self.gpu, g_step)
    }

    /// Runs step `step` on the batch at `offset`; with `read`, returns the statistics slots.
    /// At most one step is in flight: the previous one is waited for before submitting.
    pub fn run_step(&mut self, step: u64, offset: usize, read: bool) -> Result<Option<Vec<f32>>> {
        for (i, d) in &self.dynamic {
            self.step[*i].set_params(self.gpu, &d.params_at(step, offset));
        }
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in &self.step {
                d.record(&mut pass);
            }
        }
        if read {
            encoder.copy_buffer_to_buffer(
                self.gan.stats.buffer(),
                0,
                &self.staging,
                0,
                (slot::COUNT * 4) as u64,
            );
        }
        if let Some(previous) = self.in_flight.take() {
            self.gpu
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(previous),
                    timeout: None,
                })
                .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        }
        let index = self.gpu.queue.submit([encoder.finish()]);
        if !read {
            self.in_flight = Some(index);
            return self.gpu.check().map(|_| None);
        }
        let bytes = crate::gpu::map_and_read(self.gpu, &self.staging, (slot::COUNT * 4) as u64)?;
        Ok(Some(bytemuck::pod_collect_to_vec(&bytes)))
    }

    /// Waits for the last step.
    pub fn finish(&mut self) -> Result<()> {
        self.in_flight = None;
        self.gpu.wait()
    }

    /// Both networks' parameters and running statistics, then Adam's moments.
    pub fn values(&mut self) -> Result<(NamedValues, NamedValues)> {
        self.finish()?;
        let mut weights = self.gan.g_store.values(&mut self.be)?;
        weights.extend(self.gan.d_store.values(&mut self.be)?);
        let mut moments = self.gan.g_store.moments(&mut self.be)?;
        moments.extend(self.gan.d_store.moments(&mut self.be)?);
        Ok((weights, moments))
    }

    pub fn load(&mut self, weights: &NamedValues, moments: &NamedValues) -> Result<()> {
        for store in [&self.gan.g_store, &self.gan.d_store] {
            store.load(&mut self.be, weights)?;
            store.load_moments(&mut self.be, moments)?;
        }
        Ok(())
    }
}

/// The generator in inference mode over a fixed noise batch: recorded once, run on demand.
/// Large counts run in chunks of at most `SAMPLE_CHUNK` images (chunk k draws noise stream
/// `SAMPLE_STREAM - k`), so the workspace stays within the adapter's buffer limits.
pub struct Sampler<'g> {
    gpu: &'g Gpu,
    count: usize,
    generator: AnyGenerator<Recorder<'g>>,
    /// One noise dispatch per chunk, into `z`.
    noise: Vec<Dispatch>,
    forward: Vec<Dispatch>,
}

/// Noise stream of sample batches (training steps use streams 0, 1, 2, ...).
pub const SAMPLE_STREAM: u32 = u32::MAX;
pub const SAMPLE_CHUNK: usize = 500;

impl<'g> Sampler<'g> {
    pub fn new(
        gpu: &'g Gpu,
        kind: GeneratorKind,
        store: &ParamStore<Recorder<'g>>,
        count: usize,
        seed: u64,
    ) -> Result<Sampler<'g>> {
        let chunk = count.clamp(1, SAMPLE_CHUNK);
        let mut be = Recorder::new(gpu);
        let out = crate::gpu::Tensor::zeros(gpu, &[chunk, PIXELS])?;
        let z = crate::gpu::Tensor::zeros(gpu, &[chunk, LATENT])?;
        let generator = AnyGenerator::new(kind, &mut be, store, chunk, &out)?;
        generator.forward(&mut be, &z, BnMode::Inference)?;
        let (forward, _) = be.take();
        let noise = (0..count.div_ceil(chunk))
            .map(|k| crate::gpu::ops::randn(gpu, &z, seed, SAMPLE_STREAM.wrapping_sub(k as u32)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Sampler {
            gpu,
            count,
            generator,
            noise,
            forward,
        })
    }

    /// Images [count, 784] in [-1, 1].
    pub fn generate(&self) -> Result<Vec<f32>> {
        let mut images = Vec::with_capacity(self.count * PIXELS);
        for noise in &self.noise {
            let mut run: Vec<&Dispatch> = vec![noise];
            run.extend(self.forward.iter());
            self.gpu.run(&run)?;
            let chunk = self.generator.out().read(self.gpu)?;
            let take = (self.count * PIXELS - images.len()).min(chunk.len());
            images.extend_from_slice(&chunk[..take]);
        }
        Ok(images)
    }
}

/// A generator-only parameter store on the GPU (for `sample`).
pub fn generator_store<'g>(
    be: &mut Recorder<'g>,
    kind: GeneratorKind,
) -> Result<ParamStore<Recorder<'g>>> {
    ParamStore::new(be, kind.specs())
}
