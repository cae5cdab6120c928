//! The training loop, as the article writes it: every step a batch, the discriminator's step and
//! the generator's step (one recorded program), the losses when logged; at each epoch's end a
//! summary line, a sample grid, FID, and a checkpoint. Resuming is exact: the epoch order and the
//! noise are functions of (seed, step), so a checkpoint needs no RNG state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::data::{Schedule, load_dataset};
use crate::error::{Error, Result};
use crate::eval::{Evaluator, Report};
use crate::gan::checkpoint::{CHECKPOINT, Resumed, RunMeta};
use crate::gan::diagnosis;
use crate::gan::objective::{Objective, StepStats};
use crate::gan::options::{MAX_STEPS, TrainOptions};
use crate::gan::trainer::{EpochScorer, GpuTrainer, Sampler, grid_seed};
use crate::gpu::Gpu;
use crate::io::metrics::{self, Metrics};
use crate::io::{FolderLock, image, remove_stale_temporaries};

/// Set (by the Ctrl-C handler) to stop training at the end of the current step.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Test hook, only in builds with the `test-hooks` feature: `WGSL_GAN_INJECT_NAN_AT_STEP=N` writes
/// NaN into the generator's weights after step N, to exercise the divergence check
/// (tests/reliability.rs).
const INJECT_NAN_ENV: &str = "WGSL_GAN_INJECT_NAN_AT_STEP";

pub struct TrainSummary {
    /// Steps done in all (counting those before a resume).
    pub steps: u64,
    /// The last logged step's losses.
    pub last: Option<StepStats>,
    /// Stopped early by Ctrl-C (a checkpoint was written).
    pub interrupted: bool,
}

/// The logged steps of the current epoch, for its summary line.
struct EpochLog {
    sums: [f64; 4],
    logged: u32,
    start: Instant,
    start_step: u64,
}

impl EpochLog {
    fn new(start_step: u64) -> EpochLog {
        EpochLog {
            sums: [0.0; 4],
            logged: 0,
            start: Instant::now(),
            start_step,
        }
    }

    fn add(&mut self, s: &StepStats) {
        for (sum, v) in self.sums.iter_mut().zip(s.values()) {
            *sum += v as f64;
        }
        self.logged += 1;
    }

    fn summary(&self, epoch: u64, step: u64, batch: usize, score: Option<&Report>) -> String {
        let n = self.logged.max(1) as f64;
        let [d, g, real, fake] = self.sums.map(|v| v / n);
        let images = (step - self.start_step) as f64 * batch as f64;
        let fid = score
            .map(|r| {
                let accuracy = r
                    .class_accuracy
                    .map(|a| format!("  class accuracy {:.1}%", 100.0 * a));
                format!(
                    "  FID {:.2}  coverage {}/10{}",
                    r.fid,
                    r.coverage,
                    accuracy.unwrap_or_default()
                )
            })
            .unwrap_or_default();
        format!(
            "epoch {epoch:>3}: D loss {d:.4}  G loss {g:.4}  D(x) {real:.3}  D(G(z)) {fake:.3}  {:.0} images/s{fid}",
            images / self.start.elapsed().as_secs_f64()
        )
    }
}

/// The epoch scorer, when asked for (`--fid-samples` > 0) and the classifier is at hand.
fn epoch_scorer<'g>(
    gpu: &'g Gpu,
    opts: &TrainOptions,
    trainer: &GpuTrainer<'g>,
) -> Result<Option<EpochScorer<'g>>> {
    if opts.fid_samples == 0 {
        return Ok(None);
    }
    match Evaluator::load(gpu, &opts.classifier) {
        Ok(evaluator) => {
            EpochScorer::new(gpu, opts, opts.fid_samples, trainer, evaluator).map(Some)
        }
        Err(e) => {
            eprintln!(
                "note: no FID per epoch ({e}); `wgsl-gan train-classifier` makes the classifier"
            );
            Ok(None)
        }
    }
}

/// The columns of metrics.csv filled at an epoch's end, and their values in a report.
fn score_columns(conditional: bool) -> Vec<&'static str> {
    let mut columns = vec!["fid", "coverage", "top_digit", "top_share"];
    if conditional {
        columns.push("class_accuracy");
    }
    columns
}

fn score_values(report: &Report) -> Vec<f64> {
    let (top_digit, top_share) = report
        .shares
        .iter()
        .copied()
        .enumerate()
        .fold((0, 0.0), |best, s| if s.1 > best.1 { s } else { best });
    let mut values = vec![
        report.fid,
        report.coverage as f64,
        top_digit as f64,
        top_share,
    ];
    values.extend(report.class_accuracy);
    values
}

/// The output folder of a run, created (with samples/) and locked for it. Until the first step,
/// a failure removes what this run created, so that a failed start leaves no trace.
struct RunFolder {
    _lock: FolderLock,
    /// What this run created, innermost first.
    created: Vec<PathBuf>,
}

impl RunFolder {
    fn open(out: &Path) -> Result<RunFolder> {
        let samples = out.join("samples");
        let mut created = Vec::new();
        for dir in [samples.as_path(), out] {
            if !dir.exists() {
                created.push(dir.to_path_buf());
            }
        }
        let lock_file = out.join(".lock");
        if !lock_file.exists() {
            created.insert(0, lock_file);
        }
        std::fs::create_dir_all(&samples)
            .map_err(|e| Error::file(out, format!("cannot create the output folder: {e}")))?;
        let folder = RunFolder {
            _lock: FolderLock::acquire(out)?,
            created,
        };
        remove_stale_temporaries(out);
        remove_stale_temporaries(&samples);
        Ok(folder)
    }

    /// `result`; if it is an error, first removes what [`RunFolder::open`] created.
    fn undo_on_error<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            for path in &self.created {
                let _ = match path.is_dir() {
                    true => std::fs::remove_dir_all(path),
                    false => std::fs::remove_file(path),
                };
            }
        }
        result
    }
}

/// Whether `out` holds a run that a fresh start would destroy: a checkpoint, or logged metrics.
fn holds_a_run(out: &Path) -> bool {
    let rows = std::fs::read_to_string(out.join("metrics.csv"))
        .map(|t| t.lines().count() > 1)
        .unwrap_or(false);
    out.join(CHECKPOINT).exists() || rows
}

/// Trains as `opts` say: the loop of steps; each step's outputs go through `RunOutputs`.
pub fn train(gpu: &Gpu, opts: TrainOptions) -> Result<TrainSummary> {
    let plan = Plan::check(&opts)?;
    let folder = RunFolder::open(&opts.out)?;
    let mut trainer = folder.undo_on_error(plan.trainer(gpu, &opts))?;
    let mut grid = folder.undo_on_error(grid_sampler(gpu, &opts, &trainer))?;
    let mut scorer = folder.undo_on_error(epoch_scorer(gpu, &opts, &trainer))?;
    let mut out = RunOutputs::open(folder, &opts, &plan)?;
    let (schedule, start, total) = (plan.schedule, plan.start(), plan.total);
    let poison_at = nan_test_hook();
    for step in start..total {
        if let Some(order) = schedule.order_before(step, start) {
            trainer.set_order(&order)?;
        }
        let place = schedule.place(step);
        let (done, last) = (step + 1, step + 1 == total);
        let stats =
            trainer.run_step(step, place.offset, out.logs(done, place.epoch_end || last))?;
        let scoring = scorer.as_mut().filter(|_| place.epoch_end);
        let score = scoring.map(EpochScorer::score).transpose()?;
        if let Some(s) = stats {
            out.record(done, place.epoch, s, score.as_ref())?;
            if !(place.epoch_end || last) {
                out.diagnose_step();
            }
        }
        if poison_at == Some(done) {
            trainer.poison_generator()?;
        }
        if place.epoch_end {
            trainer.finish()?;
            out.end_epoch(place.epoch, done, score.as_ref(), &grid.generate()?)?;
        } else if last {
            out.final_grid(&grid.generate()?)?;
        }
        let stopping = STOP.load(Ordering::SeqCst) && !last;
        out.checkpoint(done, place.epoch_end || last || stopping, &mut trainer)?;
        if stopping {
            return Ok(out.finish(done, true));
        }
    }
    Ok(out.finish(total, false))
}

/// The sampler of the epoch grids: 64 images from the same noise every time.
fn grid_sampler<'g>(
    gpu: &'g Gpu,
    opts: &TrainOptions,
    trainer: &GpuTrainer<'g>,
) -> Result<Sampler<'g>> {
    let (g, labels) = (trainer.sampling_store(), opts.sample_labels(64));
    Sampler::new(gpu, opts.model, g, 64, grid_seed(opts.seed), labels)
}

/// `WGSL_GAN_INJECT_NAN_AT_STEP`, in builds with the `test-hooks` feature.
fn nan_test_hook() -> Option<u64> {
    std::env::var(INJECT_NAN_ENV)
        .ok()
        .filter(|_| cfg!(feature = "test-hooks"))
        .and_then(|v| v.parse().ok())
}

/// A run as checked before anything is written: its data and schedule, its identity, its length,
/// and the checkpoint it resumes from.
struct Plan {
    data: crate::data::Dataset,
    schedule: Schedule,
    total: u64,
    meta: RunMeta,
    resumed: Option<Resumed>,
}

impl Plan {
    /// Everything the options, the data and the checkpoint can refuse, checked before the disk
    /// changes: a refused command leaves the output folder as it found it.
    fn check(opts: &TrainOptions) -> Result<Plan> {
        opts.validate()?;
        if !opts.resume && !opts.overwrite && holds_a_run(&opts.out) {
            return Err(Error::Invalid(format!(
                "{} already holds a training run (checkpoint.safetensors or metrics.csv): continue it with --resume, start it afresh with --overwrite, or choose another --out",
                opts.out.display()
            )));
        }
        let data = load_dataset(&opts.data_dir, "train")?;
        opts.validate_for(data.count)?;
        let schedule = Schedule::new(opts.seed, data.count, opts.batch);
        let total = opts
            .epochs
            .saturating_mul(schedule.steps_per_epoch())
            .min(opts.max_steps.unwrap_or(u64::MAX));
        if total > MAX_STEPS {
            return Err(Error::Invalid(format!(
                "this run would take {total} steps; at most {MAX_STEPS} (use fewer --epochs or --max-steps)"
            )));
        }
        let meta = opts.run_meta(&data);
        // --resume before the first checkpoint (a run stopped early) starts the run: one
        // command serves a job that may be killed at any moment.
        let checkpoint = opts.out.join(CHECKPOINT);
        let resumed = match opts.resume && checkpoint.exists() {
            true => Some(meta.read_resume(&checkpoint)?),
            false => None,
        };
        let plan = Plan {
            data,
            schedule,
            total,
            meta,
            resumed,
        };
        if plan.start() >= total {
            return Err(Error::Invalid(format!(
                "nothing to do: the checkpoint in {} is at step {}, this run ends at step {total} (raise --epochs or --max-steps)",
                opts.out.display(),
                plan.start()
            )));
        }
        if opts.resume && plan.resumed.is_none() {
            eprintln!(
                "no checkpoint in {} yet: starting the run from step 0",
                opts.out.display()
            );
        }
        Ok(plan)
    }

    /// The step after the checkpoint resumed from, or 0.
    fn start(&self) -> u64 {
        self.resumed.as_ref().map_or(0, |r| r.step)
    }

    /// The GPU trainer, initialised or loaded from the checkpoint.
    fn trainer<'g>(&self, gpu: &'g Gpu, opts: &TrainOptions) -> Result<GpuTrainer<'g>> {
        let start_up = Instant::now();
        let (images, labels) = (self.data.packed_images(), self.data.packed_labels());
        let config = opts.step_config();
        let mut trainer = GpuTrainer::new(gpu, config, &images, &labels, self.data.count)?;
        match &self.resumed {
            Some(r) => r.load(&mut trainer)?,
            None => trainer.initialize()?,
        }
        trainer.finish()?;
        log::info!(
            "start-up {:.2} s; {} dispatches per step; {} + {} parameters",
            start_up.elapsed().as_secs_f64(),
            trainer.dispatch_count(),
            trainer.gan.g_store.parameter_count(),
            trainer.gan.d_store.parameter_count()
        );
        Ok(trainer)
    }
}

/// What a run leaves in its folder, and what it prints: metrics rows, the epoch lines and the
/// progress bar, the sample grids and their animation, metrics.png, and checkpoints at their
/// cadence.
struct RunOutputs {
    _folder: RunFolder,
    out: PathBuf,
    metrics: Metrics,
    bar: indicatif::ProgressBar,
    epoch_log: EpochLog,
    /// The legend goes out once, before the first epoch line.
    legend_said: bool,
    last: Option<StepStats>,
    meta: RunMeta,
    log_every: u64,
    checkpoint_every: Option<u64>,
    batch: usize,
}

impl RunOutputs {
    fn open(folder: RunFolder, opts: &TrainOptions, plan: &Plan) -> Result<RunOutputs> {
        let columns = opts.step_config().objective.columns();
        let scores = score_columns(opts.conditional);
        let csv = opts.out.join("metrics.csv");
        let metrics = folder.undo_on_error(Metrics::open(&csv, &columns, &scores, plan.start()))?;
        let bar = progress_bar(opts.progress, plan.total, plan.start());
        Ok(RunOutputs {
            _folder: folder,
            out: opts.out.clone(),
            metrics,
            bar,
            epoch_log: EpochLog::new(plan.start()),
            legend_said: false,
            last: None,
            meta: plan.meta.clone(),
            log_every: opts.log_every,
            checkpoint_every: opts.checkpoint_every,
            batch: opts.batch,
        })
    }

    /// Whether step `done` reads its losses back: every --log-every steps and at `also`.
    fn logs(&self, done: u64, also: bool) -> bool {
        done.is_multiple_of(self.log_every) || also
    }

    /// A logged step's figures (and at an epoch's end its scores): refused if not finite, else
    /// a metrics row, the epoch's running sums and the bar's message.
    fn record(
        &mut self,
        done: u64,
        epoch: u64,
        s: StepStats,
        score: Option<&Report>,
    ) -> Result<()> {
        if !s.is_finite() {
            return Err(Error::NonFinite(format!(
                "at step {done} the losses are not finite (D loss {}, G loss {}, D(x) {}, D(G(z)) {}); the last good checkpoint in {} was kept",
                s.d_loss,
                s.g_loss,
                s.d_real,
                s.d_fake,
                self.out.display()
            )));
        }
        let score_values = score.map(score_values);
        let values = s.values();
        self.metrics
            .row(done, epoch + 1, &values, score_values.as_deref())?;
        self.epoch_log.add(&s);
        let message = format!("epoch {} | D {:.3} G {:.3}", epoch + 1, s.d_loss, s.g_loss);
        self.bar.set_message(message);
        self.last = Some(s);
        Ok(())
    }

    /// The epoch's summary line, its grid, and the animation of all grids so far.
    fn end_epoch(
        &mut self,
        epoch: u64,
        done: u64,
        score: Option<&Report>,
        images: &[f32],
    ) -> Result<()> {
        if !std::mem::replace(&mut self.legend_said, true) {
            say(
                &self.bar,
                legend(score, self.meta.loss, self.meta.ema.is_some()),
            );
        }
        let line = self.epoch_log.summary(epoch + 1, done, self.batch, score);
        say(&self.bar, line);
        self.diagnose(epoch + 1);
        let samples = self.out.join("samples");
        image::write_grid(
            &samples.join(format!("epoch_{:03}.png", epoch + 1)),
            images,
            64,
            8,
        )?;
        // A final grid from an earlier stop mid-epoch is behind this one now.
        let _ = std::fs::remove_file(samples.join("final.png"));
        write_progress(&samples);
        self.epoch_log = EpochLog::new(done);
        Ok(())
    }

    /// One line for each failure shape the run's curves show at the end of `epoch` (1-based).
    fn diagnose(&mut self, epoch: u64) {
        let csv = self.out.join("metrics.csv");
        match self
            .metrics
            .sync()
            .and_then(|()| diagnosis::diagnose_file(&csv))
        {
            Ok(found) => found
                .into_iter()
                .filter(|f| f.epoch == epoch && !f.within_epoch)
                .for_each(|f| say(&self.bar, format!("  diagnosis: {}", f.text))),
            Err(e) => say(&self.bar, format!("warning: no diagnosis this epoch: {e}")),
        }
    }

    /// A line when the step just logged makes the discriminator's win clear-cut mid-epoch.
    fn diagnose_step(&mut self) {
        // Rows are written unbuffered: the file holds this step's row without a sync.
        match metrics::read(&self.out.join("metrics.csv")) {
            Ok(log) => {
                if let Some(f) = diagnosis::clear_cut_now(&log) {
                    say(&self.bar, format!("  diagnosis: {}", f.text));
                }
            }
            Err(e) => say(
                &self.bar,
                format!("warning: no diagnosis at this step: {e}"),
            ),
        }
    }

    /// A run that stops mid-epoch (--max-steps) ends its animation with a final grid.
    fn final_grid(&mut self, images: &[f32]) -> Result<()> {
        let samples = self.out.join("samples");
        image::write_grid(&samples.join("final.png"), images, 64, 8)?;
        write_progress(&samples);
        Ok(())
    }

    /// A checkpoint (and metrics.png) when `due`, and every --checkpoint-every steps.
    fn checkpoint(&mut self, done: u64, due: bool, trainer: &mut GpuTrainer<'_>) -> Result<()> {
        self.bar.set_position(done);
        if due
            || self
                .checkpoint_every
                .is_some_and(|k| done.is_multiple_of(k))
        {
            self.metrics.sync()?;
            self.meta.save(&self.out.join(CHECKPOINT), trainer, done)?;
        }
        if due {
            write_metrics_png(&self.out);
        }
        Ok(())
    }

    fn finish(self, steps: u64, interrupted: bool) -> TrainSummary {
        self.bar.finish_and_clear();
        TrainSummary {
            steps,
            last: self.last,
            interrupted,
        }
    }
}

/// OUT/metrics.png from OUT/metrics.csv; like progress.png, never a reason to fail a run.
fn write_metrics_png(out: &Path) {
    let png = diagnosis::curves(&out.join("metrics.csv"));
    if let Err(e) = png.and_then(|(png, _)| crate::io::write_atomic(&out.join("metrics.png"), &png))
    {
        eprintln!("warning: metrics.png not written: {e}");
    }
}

/// What an epoch line's numbers mean, in two lines, for what that line shows.
fn legend(score: Option<&Report>, loss: Objective, ema: bool) -> String {
    let beliefs = match loss {
        Objective::Bce => "the discriminator's mean belief that real and generated images are real",
        Objective::Hinge => {
            "the mean sigmoid of the discriminator's logits on real and generated images"
        }
    };
    let mut legend = format!(
        "D loss, G loss: {}; D(x), D(G(z)): {beliefs} (both near 0.5 when neither side wins)",
        loss.describe()
    );
    if let Some(report) = score {
        legend += "\nFID: generated images against the MNIST test set (lower is better: real \
digits under 10, noise about 2,000); coverage: digits with at least 5% of them";
        if ema {
            legend += "; scored on the generator's moving average (--ema)";
        }
        if report.class_accuracy.is_some() {
            legend += "; class accuracy: the share drawn as the digit asked for";
        }
    }
    legend
}

/// samples/progress.png; a run never fails for it (its grids are all on disk anyway).
fn write_progress(samples: &Path) {
    if let Err(e) = image::write_progress(samples) {
        eprintln!("warning: progress.png not written: {e}");
    }
}

/// A progress line (stderr, like every status line of `train`): above the progress bar, or
/// alone when there is no bar.
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
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
