//! The GAN on the GPU: the step is recorded once into prepared dispatches and replayed with one
//! compute pass and one submit per step; only the per-step uniforms (batch offset, noise stream,
//! Adam's bias corrections) are rewritten. Statistics are copied back only when asked for.

use crate::error::{Error, Result};
use crate::gan::model::{AnyGenerator, GeneratorKind, PIXELS};
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
pub struct Sampler<'g> {
    gpu: &'g Gpu,
    generator: AnyGenerator<Recorder<'g>>,
    dispatches: Vec<Dispatch>,
}

/// Noise stream of sample batches (training steps use streams 0, 1, 2, ...).
pub const SAMPLE_STREAM: u32 = u32::MAX;

impl<'g> Sampler<'g> {
    pub fn new(
        gpu: &'g Gpu,
        kind: GeneratorKind,
        store: &ParamStore<Recorder<'g>>,
        count: usize,
        seed: u64,
    ) -> Result<Sampler<'g>> {
        let mut be = Recorder::new(gpu);
        let out = crate::gpu::Tensor::zeros(gpu, &[count, PIXELS])?;
        let generator = AnyGenerator::new(kind, &mut be, store, count, &out)?;
        crate::nn::Backend::randn(&mut be, generator.z(), seed, SAMPLE_STREAM)?;
        generator.forward(&mut be, BnMode::Inference)?;
        let (dispatches, _) = be.take();
        Ok(Sampler {
            gpu,
            generator,
            dispatches,
        })
    }

    /// Images [count, 784] in [-1, 1].
    pub fn generate(&self) -> Result<Vec<f32>> {
        self.gpu.run(&self.dispatches.iter().collect::<Vec<_>>())?;
        self.generator.out().read(self.gpu)
    }
}

/// A generator-only parameter store on the GPU (for `sample`).
pub fn generator_store<'g>(
    be: &mut Recorder<'g>,
    kind: GeneratorKind,
) -> Result<ParamStore<Recorder<'g>>> {
    ParamStore::new(be, kind.specs())
}
