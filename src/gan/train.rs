//! The training loop: epochs of shuffled batches, progress, metrics, sample grids, checkpoints,
//! exact resume.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::data::{epoch_order, load_dataset};
use crate::error::{Error, Result};
use crate::gan::model::{GeneratorKind, discriminator_specs};
use crate::gan::step::{Noise, StepConfig, StepStats};
use crate::gan::trainer::{GpuTrainer, Sampler};
use crate::gpu::Gpu;
use crate::io::checkpoint::{self, Checkpoint};
use crate::io::{image, write_atomic};
use crate::nn::{ParamSpec, convert_layouts};
use crate::spec::AdamSpec;

/// Set (by the Ctrl-C handler) to stop training at the end of the current step.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Test hook: `WGSL_GAN_INJECT_NAN_AT_STEP=N` writes NaN into a generator weight after step N, to
/// exercise the divergence check (tests/reliability.rs).
const INJECT_NAN_ENV: &str = "WGSL_GAN_INJECT_NAN_AT_STEP";
pub const CHECKPOINT: &str = "checkpoint.safetensors";
const METRICS_HEADER: &str = "step,epoch,d_loss,g_loss,d_real,d_fake,fid,coverage";

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub model: GeneratorKind,
    pub epochs: u64,
    /// Stop after this many steps in all (counting steps before a resume).
    pub max_steps: Option<u64>,
    pub batch: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub resume: bool,
    pub data_dir: PathBuf,
    pub lr: f32,
    pub beta1: f32,
    pub checkpoint_every: Option<u64>,
    pub log_every: u64,
    pub progress: bool,
    /// Generated images scored (FID) at each epoch's end; 0 turns it off.
    pub fid_samples: usize,
    /// The evaluation classifier (see `wgsl-gan train-classifier`).
    pub classifier: PathBuf,
}

impl TrainOptions {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 1.0) {
            return bad(format!("--lr must be in (0, 1), got {}", self.lr));
        }
        if !(self.beta1.is_finite() && (0.0..1.0).contains(&self.beta1)) {
            return bad(format!("--beta1 must be in [0, 1), got {}", self.beta1));
        }
        if self.fid_samples > 65_536 {
            return bad(format!(
                "--fid-samples must be at most 65536, got {}",
                self.fid_samples
            ));
        }
        if self.max_steps == Some(0) || self.checkpoint_every == Some(0) || self.log_every == 0 {
            return bad(
                "--max-steps, --checkpoint-every and --log-every must be at least 1".into(),
            );
        }
        Ok(())
    }

    fn adam(&self) -> AdamSpec {
        AdamSpec {
            lr: self.lr,
            beta1: self.beta1,
            ..AdamSpec::GAN
        }
    }
}

/// Both networks' parameter specs: what a GAN checkpoint holds.
fn gan_specs(model: GeneratorKind) -> Vec<ParamSpec> {
    model
        .specs()
        .into_iter()
        .chain(discriminator_specs())
        .collect()
}

/// Seed of the fixed noise behind the per-epoch sample grids.
pub fn grid_seed(seed: u64) -> u64 {
    seed ^ 0x5a3d_1e00_9f11_0c0d
}

pub struct TrainSummary {
    /// Steps done in all (counting those before a resume).
    pub steps: u64,
    /// The last logged step's losses.
    pub last: Option<StepStats>,
    /// Stopped early by Ctrl-C (a checkpoint was written).
    pub interrupted: bool,
}

struct Run<'g> {
    opts: TrainOptions,
    trainer: GpuTrainer<'g>,
    sampler: Sampler<'g>,
    /// Scores a fixed batch of generated images at each epoch's end.
    fid: Option<(Sampler<'g>, crate::eval::Evaluator<'g>)>,
    steps_per_epoch: u64,
    count: usize,
    metrics: std::fs::File,
}

impl Run<'_> {
    fn checkpoint(&mut self, step: u64) -> Result<()> {
        let (mut tensors, moments) = self.trainer.values()?;
        tensors.extend(moments);
        convert_layouts(&gan_specs(self.opts.model), &mut tensors, true);
        let o = &self.opts;
        let meta: BTreeMap<String, String> = [
            ("model", o.model.model_name().to_string()),
            ("step", step.to_string()),
            ("epoch", (step / self.steps_per_epoch).to_string()),
            ("seed", o.seed.to_string()),
            ("batch_size", o.batch.to_string()),
            ("lr", o.lr.to_string()),
            ("beta1", o.beta1.to_string()),
            ("dataset_size", self.count.to_string()),
            (
                "rng",
                "stateless: epoch order = shuffle(seed, epoch), noise = (seed, step)".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.metrics
            .sync_all()
            .map_err(|e| Error::file(&o.out.join("metrics.csv"), format!("cannot sync: {e}")))?;
        checkpoint::save(&o.out.join(CHECKPOINT), &Checkpoint { tensors, meta })
    }

    fn sample_grid(&mut self, epoch: u64) -> Result<()> {
        let images = self.sampler.generate()?;
        let path = self
            .opts
            .out
            .join("samples")
            .join(format!("epoch_{epoch:03}.png"));
        image::write_grid(&path, &images, 64, 8)
    }
}

/// Loads the checkpoint in `out` for `--resume`, checking it matches the options.
fn resume_from(trainer: &mut GpuTrainer<'_>, opts: &TrainOptions, count: usize) -> Result<u64> {
    let path = opts.out.join(CHECKPOINT);
    let ckpt = checkpoint::load(&path)?;
    let model = opts.model.model_name();
    if ckpt.meta(&path, "model")? != model {
        return Err(Error::file(
            &path,
            format!(
                "checkpoint of model '{}', this run trains '{model}' (--model)",
                ckpt.meta(&path, "model")?
            ),
        ));
    }
    for (key, want) in [
        ("batch_size", opts.batch.to_string()),
        ("seed", opts.seed.to_string()),
        ("dataset_size", count.to_string()),
    ] {
        let have = ckpt.meta(&path, key)?;
        if have != want {
            return Err(Error::Invalid(format!(
                "--resume: the checkpoint was trained with {key} {have}, this run asks for {want}; use the same value or another --out"
            )));
        }
    }
    let specs = gan_specs(opts.model);
    let trainable: Vec<_> = specs.iter().filter(|s| s.trainable).cloned().collect();
    let mut weights = ckpt.select(&path, &specs, "")?;
    let mut moments = ckpt.select(&path, &trainable, "adam_m.")?;
    moments.extend(ckpt.select(&path, &trainable, "adam_v.")?);
    convert_layouts(&specs, &mut weights, false);
    convert_layouts(&specs, &mut moments, false);
    trainer.load(&weights, &moments)?;
    ckpt.meta_parse(&path, "step")
}

/// Removes temporary files a killed run left behind (`write_atomic`'s `.NAME.tmp-PID`).
fn remove_stale_temporaries(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Keeps the metrics rows up to `step` (a resumed run rewrites what followed) and opens the file
/// for appending.
fn open_metrics(path: &Path, step: u64) -> Result<std::fs::File> {
    let kept: String = match std::fs::read_to_string(path) {
        Ok(text) if step > 0 => text
            .lines()
            .skip(1)
            .filter(|l| {
                l.split(',')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| s <= step)
            })
            .map(|l| format!("{l}\n"))
            .collect(),
        _ => String::new(),
    };
    write_atomic(path, format!("{METRICS_HEADER}\n{kept}").as_bytes())?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::file(path, format!("cannot open: {e}")))
}

pub fn train(gpu: &Gpu, opts: TrainOptions) -> Result<TrainSummary> {
    opts.validate()?;
    let data = load_dataset(&opts.data_dir, "train")?;
    if opts.batch > data.count {
        return Err(Error::Invalid(format!(
            "--batch-size {} is larger than the dataset ({} images)",
            opts.batch, data.count
        )));
    }
    std::fs::create_dir_all(opts.out.join("samples"))
        .map_err(|e| Error::file(&opts.out, format!("cannot create the output folder: {e}")))?;
    remove_stale_temporaries(&opts.out);
    let config = StepConfig {
        model: opts.model,
        batch: opts.batch,
        seed: opts.seed,
        adam: opts.adam(),
        noise: Noise::Drawn,
    };
    let start_up = Instant::now();
    let mut trainer = GpuTrainer::new(gpu, config, &data.packed_images(), data.count)?;
    let start = if opts.resume {
        resume_from(&mut trainer, &opts, data.count)?
    } else {
        trainer.gan.initialize(&mut trainer.be)?;
        0
    };
    let sampler = Sampler::new(
        gpu,
        opts.model,
        &trainer.gan.g_store,
        64,
        grid_seed(opts.seed),
    )?;
    let fid = if opts.fid_samples == 0 {
        None
    } else {
        match crate::eval::Evaluator::load(gpu, &opts.classifier) {
            Ok(e) => Some((
                Sampler::new(
                    gpu,
                    opts.model,
                    &trainer.gan.g_store,
                    opts.fid_samples,
                    grid_seed(opts.seed) ^ 1,
                )?,
                e,
            )),
            Err(e) => {
                eprintln!(
                    "note: no FID per epoch ({e}); `wgsl-gan train-classifier` makes the classifier"
                );
                None
            }
        }
    };
    let steps_per_epoch = (data.count / opts.batch) as u64;
    let total = (opts.epochs * steps_per_epoch).min(opts.max_steps.unwrap_or(u64::MAX));
    let metrics = open_metrics(&opts.out.join("metrics.csv"), start)?;
    let mut run = Run {
        opts,
        trainer,
        sampler,
        fid,
        steps_per_epoch,
        count: data.count,
        metrics,
    };
    gpu.wait()?;
    log::info!(
        "start-up {:.2} s; {} dispatches per step; {} + {} parameters",
        start_up.elapsed().as_secs_f64(),
        run.trainer.dispatch_count(),
        run.trainer.gan.g_store.parameter_count(),
        run.trainer.gan.d_store.parameter_count()
    );
    if start >= total {
        return Err(Error::Invalid(format!(
            "nothing to do: the checkpoint is at step {start}, this run ends at step {total}"
        )));
    }

    let inject_nan: Option<u64> = std::env::var(INJECT_NAN_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let bar = progress_bar(run.opts.progress, total, start);
    let mut last = None;
    let mut epoch_sums = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0u32);
    let mut epoch_start = (Instant::now(), start);
    for step in start..total {
        let epoch = step / steps_per_epoch;
        let in_epoch = step % steps_per_epoch;
        if in_epoch == 0 || step == start {
            run.trainer
                .set_order(&epoch_order(run.opts.seed, epoch, data.count))?;
        }
        let epoch_end = in_epoch + 1 == steps_per_epoch;
        let read = (step + 1) % run.opts.log_every == 0 || epoch_end || step + 1 == total;
        let slots = run
            .trainer
            .run_step(step, in_epoch as usize * run.opts.batch, read)?;
        let fid = match (&run.fid, epoch_end) {
            (Some((sampler, evaluator)), true) => Some(evaluator.evaluate(&sampler.generate()?)?),
            _ => None,
        };
        if let Some(slots) = slots {
            let s = StepStats::from_slots(&slots);
            if !s.is_finite() {
                return Err(Error::NonFinite(format!(
                    "at step {} the losses are not finite ({s:?}); the last good checkpoint in {} was kept",
                    step + 1,
                    run.opts.out.display()
                )));
            }
            let fid_column = fid
                .as_ref()
                .map(|r| format!("{},{}", r.fid, r.coverage))
                .unwrap_or_else(|| ",".into());
            writeln!(
                run.metrics,
                "{},{},{},{},{},{},{fid_column}",
                step + 1,
                epoch + 1,
                s.d_loss,
                s.g_loss,
                s.d_real,
                s.d_fake
            )
            .map_err(|e| {
                Error::file(
                    &run.opts.out.join("metrics.csv"),
                    format!("cannot write: {e}"),
                )
            })?;
            epoch_sums = (
                epoch_sums.0 + s.d_loss as f64,
                epoch_sums.1 + s.g_loss as f64,
                epoch_sums.2 + s.d_real as f64,
                epoch_sums.3 + s.d_fake as f64,
                epoch_sums.4 + 1,
            );
            bar.set_message(format!(
                "epoch {} | D {:.3} G {:.3}",
                epoch + 1,
                s.d_loss,
                s.g_loss
            ));
            last = Some(s);
        }
        bar.set_position(step + 1);
        let done = step + 1;
        if inject_nan == Some(done) {
            run.trainer
                .gan
                .g_store
                .params
                .write(gpu, &[f32::NAN; 1].repeat(run.trainer.gan.g_store.len()))?;
        }
        if epoch_end {
            run.trainer.finish()?;
            let secs = epoch_start.0.elapsed().as_secs_f64();
            let images = (done - epoch_start.1) as f64 * run.opts.batch as f64;
            let n = epoch_sums.4.max(1) as f64;
            say(
                &bar,
                format!(
                    "epoch {:>3}: D loss {:.4}  G loss {:.4}  D(x) {:.3}  D(G(z)) {:.3}  {:.0} images/s{}",
                    epoch + 1,
                    epoch_sums.0 / n,
                    epoch_sums.1 / n,
                    epoch_sums.2 / n,
                    epoch_sums.3 / n,
                    images / secs,
                    fid.as_ref()
                        .map(|r| format!("  FID {:.2}  coverage {}/10", r.fid, r.coverage))
                        .unwrap_or_default()
                ),
            );
            run.sample_grid(epoch + 1)?;
            run.checkpoint(done)?;
            epoch_sums = (0.0, 0.0, 0.0, 0.0, 0);
            epoch_start = (Instant::now(), done);
        } else if done == total || run.opts.checkpoint_every.is_some_and(|k| done % k == 0) {
            run.checkpoint(done)?;
        }
        if STOP.load(Ordering::SeqCst) && done < total {
            if !epoch_end {
                run.checkpoint(done)?;
            }
            bar.finish_and_clear();
            return Ok(TrainSummary {
                steps: done,
                last,
                interrupted: true,
            });
        }
    }
    bar.finish_and_clear();
    Ok(TrainSummary {
        steps: total,
        last,
        interrupted: false,
    })
}

/// A line above the progress bar, or on stdout when there is no bar (not a terminal).
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress_bar(enabled: bool, total: u64, start: u64) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_position(start);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] step {pos}/{len} ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `count` images [count, 784] in [-1, 1] from a checkpoint's generator (inference mode).
pub fn generate(gpu: &Gpu, path: &Path, count: usize, seed: u64) -> Result<Vec<f32>> {
    if count == 0 || count > 65_536 {
        return Err(Error::Invalid(format!(
            "--count must be between 1 and 65536, got {count}"
        )));
    }
    let ckpt = checkpoint::load(path)?;
    let model = ckpt.meta(path, "model")?;
    let kind = GeneratorKind::from_model_name(model).ok_or_else(|| {
        Error::file(
            path,
            format!("checkpoint of model '{model}', expected a GAN ('mlp-gan' or 'dcgan')"),
        )
    })?;
    let specs = kind.specs();
    let mut weights = ckpt.select(path, &specs, "")?;
    convert_layouts(&specs, &mut weights, false);
    let mut be = crate::nn::Recorder::new(gpu);
    let store = crate::gan::trainer::generator_store(&mut be, kind)?;
    store.load(&mut be, &weights)?;
    Sampler::new(gpu, kind, &store, count, seed)?.generate()
}

/// `sample`: a PNG grid and/or an IDX file of a checkpoint's generated images.
pub fn sample(
    gpu: &Gpu,
    path: &Path,
    count: usize,
    seed: u64,
    png: Option<&Path>,
    idx: Option<&Path>,
) -> Result<()> {
    if png.is_none() && idx.is_none() {
        return Err(Error::Invalid("give --png FILE and/or --idx FILE".into()));
    }
    let images = generate(gpu, path, count, seed)?;
    if let Some(png) = png {
        image::write_grid(png, &images, count, (count as f64).sqrt().ceil() as usize)?;
    }
    if let Some(idx) = idx {
        crate::data::write_images(idx, &image::to_bytes(&images), count)?;
    }
    Ok(())
}

/// What `bench` measured.
pub struct BenchReport {
    pub adapter: String,
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
    if steps == 0 || batch == 0 {
        return Err(Error::Invalid(
            "--steps and --batch-size must be at least 1".into(),
        ));
    }
    let t = Instant::now();
    let data = load_dataset(data_dir, "train")?;
    let images = data.packed_images();
    let data_load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let gpu = Gpu::new(adapter)?;
    let config = StepConfig {
        model,
        batch,
        seed: 0,
        adam: AdamSpec::GAN,
        noise: Noise::Drawn,
    };
    let mut trainer = GpuTrainer::new(&gpu, config, &images, data.count)?;
    trainer.gan.initialize(&mut trainer.be)?;
    trainer.set_order(&epoch_order(0, 0, data.count))?;
    gpu.wait()?;
    let start_up_s = t.elapsed().as_secs_f64();
    let steps_per_epoch = (data.count / batch) as u64;
    let mut run = |from: u64, n: u64| -> Result<()> {
        for step in from..from + n {
            let offset = (step % steps_per_epoch) as usize * batch;
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
        data_load_s,
        start_up_s,
        dispatches_per_step: trainer.dispatch_count(),
        steps,
        ms_per_step: secs / steps as f64 * 1e3,
        images_per_s: (steps as usize * batch) as f64 / secs,
    })
}
