//! `bench`: steady-state training throughput, and start-up measured apart.

use std::path::Path;
use std::time::Instant;

use crate::data::{Schedule, load_dataset};
use crate::error::{Result, check_range};
use crate::gan::generator::GeneratorKind;
use crate::gan::step::StepConfig;
use crate::gan::trainer::GpuTrainer;
use crate::gpu::Gpu;

/// What `bench` measured.
pub struct BenchReport {
    pub adapter: String,
    /// Where the matmul plans came from (built-in table or tuned file).
    pub plans: String,
    /// Reading and decoding the dataset on the CPU.
    pub data_load_s: f64,
    /// Adapter and device, buffers, pipelines, dataset upload, up to an idle GPU.
    pub start_up_s: f64,
    pub dispatches_per_step: usize,
    pub steps: u64,
    pub ms_per_step: f64,
    pub images_per_s: f64,
}

/// Training throughput: `warmup` steps, then `steps` timed steps with no readback but the last.
pub fn bench(
    adapter: Option<&str>,
    model: GeneratorKind,
    data_dir: &Path,
    batch: usize,
    steps: u64,
    warmup: u64,
) -> Result<BenchReport> {
    check_range("--steps", steps, 1, 1_000_000)?;
    check_range("--warmup", warmup, 0, 1_000_000)?;
    // The training step's batch norm needs two images (see `train`).
    check_range("--batch-size", batch, 2, 65_536)?;
    let t = Instant::now();
    let data = load_dataset(data_dir, "train")?;
    let images = data.packed_images();
    let data_load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gpu = Gpu::new(adapter)?;
    let config = StepConfig::article(model, batch, 0);
    let labels = data.packed_labels();
    let mut trainer = GpuTrainer::new(&gpu, config, &images, &labels, data.count)?;
    trainer.initialize()?;
    trainer.finish()?;
    let start_up_s = t.elapsed().as_secs_f64();
    let schedule = Schedule::new(0, data.count, batch);
    let mut run = |from: u64, n: u64| -> Result<()> {
        for step in from..from + n {
            if let Some(order) = schedule.order_before(step, 0) {
                trainer.set_order(&order)?;
            }
            let offset = schedule.place(step).offset;
            trainer.run_step(step, offset, step + 1 == from + n)?;
        }
        Ok(())
    };
    run(0, warmup.max(1))?;
    let t = Instant::now();
    run(warmup.max(1), steps)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(BenchReport {
        adapter: crate::gpu::describe(&gpu.info),
        plans: gpu.plans_description(),
        data_load_s,
        start_up_s,
        dispatches_per_step: trainer.dispatch_count(),
        steps,
        ms_per_step: secs / steps as f64 * 1e3,
        images_per_s: (steps as usize * batch) as f64 / secs,
    })
}
