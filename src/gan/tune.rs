//! `tune`: the fastest matmul plan for every product of a model's training step on this adapter,
//! saved in the adapter's plan file (see [`crate::gpu::tune`]), and the step timed with the
//! built-in plans against the tuned ones.

use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, Result, check_range};
use crate::gan::generator::GeneratorKind;
use crate::gan::step::StepConfig;
use crate::gan::trainer::GpuTrainer;
use crate::gpu::Gpu;
use crate::gpu::tune::{self, PlanTable, Tuned};

pub struct TuneSummary {
    pub path: PathBuf,
    pub tuned: Vec<Tuned>,
    /// ms per training step with the built-in plans and with the tuned ones, when measured.
    pub step_ms: Option<(f64, f64)>,
}

/// Tunes the products of `model`'s training step at `batch`, merges the winners into the
/// adapter's plan file (products tuned before for other models or batches stay), and, when
/// `check_steps` > 0, times that many steps per round with either table, alternating, three
/// rounds (the best round of each counts). `progress` sees each product as it is done.
pub fn tune(
    gpu: &Gpu,
    model: GeneratorKind,
    batch: usize,
    check_steps: u64,
    mut progress: impl FnMut(&Tuned),
) -> Result<TuneSummary> {
    check_range("--batch-size", batch, 2, 4096)?;
    check_range("--steps", check_steps, 0, 10_000)?;
    let mut table = gpu.tuned_plans().unwrap_or_default();
    gpu.set_tuned_plans(None);
    // Recording a step plans every product it runs; nothing is submitted. The images only need
    // the right size: timing does not depend on pixel values.
    let (images, labels) = (vec![0u32; batch * 196], vec![0u32; batch.div_ceil(4)]);
    let config = StepConfig::article(model, batch, 0);
    let before = gpu.matmul_shapes();
    drop(GpuTrainer::new(gpu, config, &images, &labels, batch)?);
    let shapes: Vec<_> = gpu
        .matmul_shapes()
        .into_iter()
        .filter(|s| !before.contains(s))
        .collect();
    let mut tuned = Vec::new();
    for shape in shapes {
        let t = tune::tune_shape(gpu, shape)?;
        progress(&t);
        table.plans.insert(shape, t.best.0);
        tuned.push(t);
    }
    let path = save(gpu, &table)?;
    let step_ms = match check_steps {
        0 => None,
        n => Some(compare_steps(gpu, config, &images, &labels, &table, n)?),
    };
    gpu.set_tuned_plans(Some(table));
    Ok(TuneSummary {
        path,
        tuned,
        step_ms,
    })
}

/// Writes the adapter's plan file (atomically), creating the cache folder. The runtime only reads
/// it (when a [`Gpu`] is opened); writing files is this layer's job.
fn save(gpu: &Gpu, table: &PlanTable) -> Result<PathBuf> {
    let path = tune::plan_path(&gpu.info, gpu.style).ok_or_else(|| {
        Error::Invalid(format!(
            "no cache folder: set {} (or HOME) to where plans may be stored",
            tune::CACHE_DIR_ENV
        ))
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e.to_string()))?;
    }
    let text = table.to_text(&tune::adapter_key(&gpu.info, gpu.style));
    crate::io::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// (built-in, tuned) ms per step.
fn compare_steps(
    gpu: &Gpu,
    config: StepConfig,
    images: &[u32],
    labels: &[u32],
    table: &PlanTable,
    steps: u64,
) -> Result<(f64, f64)> {
    let count = config.batch;
    let trainer = |plans: Option<PlanTable>| -> Result<GpuTrainer<'_>> {
        gpu.set_tuned_plans(plans);
        let mut t = GpuTrainer::new(gpu, config, images, labels, count)?;
        t.initialize()?;
        t.set_order(&(0..count as u32).collect::<Vec<_>>())?;
        Ok(t)
    };
    let mut pair = [trainer(None)?, trainer(Some(table.clone()))?];
    let mut best = [f64::INFINITY; 2];
    for round in 0..4 {
        for (t, best) in pair.iter_mut().zip(&mut best) {
            let start = Instant::now();
            for step in 0..steps {
                t.run_step(step, 0, false)?;
            }
            t.finish()?;
            // The first round warms caches and compiles nothing new: it is not counted.
            if round > 0 {
                *best = best.min(start.elapsed().as_secs_f64() * 1e3 / steps as f64);
            }
        }
    }
    Ok((best[0], best[1]))
}
