//! The training options, declared once: the `train` command's flags (clap derives them, with
//! their defaults and help), what [`train`](crate::gan::train) takes, and what the page builds
//! for its runs. Their ranges are checked in one place, [`TrainOptions::validate`].

use std::path::{Path, PathBuf};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gan::checkpoint::RunMeta;
use crate::gan::generator::GeneratorKind;
use crate::gan::model::cycled_labels;
use crate::gan::objective::Objective;
use crate::gan::step::StepConfig;
use crate::io::assets::default_path;
use crate::spec::AdamSpec;

/// The training options, declared once: the `train` command's flags (clap derives them from
/// these fields, with their defaults and help), and what [`train`](crate::gan::train::train)
/// takes. Ranges are checked by [`TrainOptions::validate`], whose errors name the flag.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct TrainOptions {
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: GeneratorKind,
    /// Class-conditional: G takes the digit (one-hot beside z), D scores it by projection
    #[arg(long)]
    pub conditional: bool,
    #[arg(long, value_parser = whole::<u64>, default_value_t = 5)]
    pub epochs: u64,
    /// Stop after this many steps in all, counting those before a resume (a checkpoint is
    /// written at the stop)
    #[arg(long, value_parser = whole::<u64>)]
    pub max_steps: Option<u64>,
    #[arg(long = "batch-size", value_name = "BATCH_SIZE", value_parser = whole::<usize>, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, value_parser = whole::<u64>, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: metrics.csv, samples/epoch_NNN.png, checkpoint.safetensors
    #[arg(long, default_value = "runs/gan")]
    pub out: PathBuf,
    /// Continue from OUT/checkpoint.safetensors (or start the run if there is none yet)
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Start afresh even if OUT already holds a run (its checkpoint and metrics are replaced)
    #[arg(long)]
    pub overwrite: bool,
    /// Folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] [default: ./assets/mnist if
    /// present, else the copy built into the binary]
    #[arg(long, default_value_os_t = default_path("mnist"), hide_default_value = true)]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 2e-4, allow_hyphen_values = true)]
    pub lr: f32,
    /// The discriminator's learning rate [default: --lr]
    #[arg(long, value_name = "LR", allow_hyphen_values = true)]
    pub lr_d: Option<f32>,
    /// The generator's learning rate [default: --lr]
    #[arg(long, value_name = "LR", allow_hyphen_values = true)]
    pub lr_g: Option<f32>,
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    pub beta1: f32,
    #[arg(long, value_enum, default_value = "bce")]
    pub loss: Objective,
    /// One-sided label smoothing: the discriminator's real targets are 1 - P (bce only)
    #[arg(
        long,
        value_name = "P",
        default_value_t = 0.0,
        allow_hyphen_values = true
    )]
    pub label_smoothing: f32,
    /// Keep an exponential moving average of the generator's weights with this decay (0.999,
    /// say); sample grids, FID, `sample` and `eval` then use it (`--no-ema` there to compare)
    #[arg(long, value_name = "DECAY", allow_hyphen_values = true)]
    pub ema: Option<f32>,
    /// Also checkpoint every STEPS steps (always at each epoch's end)
    #[arg(long, value_name = "STEPS", value_parser = whole::<u64>)]
    pub checkpoint_every: Option<u64>,
    /// Read the losses back every N steps (the only GPU->CPU transfer of training)
    #[arg(long, value_parser = whole::<u64>, default_value_t = 50)]
    pub log_every: u64,
    /// Draw a progress bar (on a terminal)
    #[arg(skip = true)]
    pub progress: bool,
    /// Generated images scored for FID at each epoch's end (0: off)
    #[arg(long, value_parser = whole::<usize>, default_value_t = 2000)]
    pub fid_samples: usize,
    /// Evaluation classifier for the FID [default: ./assets/mnist-classifier.safetensors if
    /// present, else the built-in copy]
    #[arg(long, default_value_os_t = default_path("mnist-classifier.safetensors"), hide_default_value = true)]
    pub classifier: PathBuf,
}

/// A count, step or seed from the command line: a clear word for a negative or a fraction
/// instead of Rust's parse error.
pub fn whole<T: std::str::FromStr>(s: &str) -> std::result::Result<T, String> {
    s.parse()
        .map_err(|_| match s.trim_start().starts_with('-') {
            true => format!("'{s}' is negative; expected a whole number from 0 up"),
            false if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                format!("'{s}' is too large for any run")
            }
            false => format!("expected a whole number, got '{s}'"),
        })
}

impl TrainOptions {
    /// The labels of a conditional model's sample grid and FID images: every digit alike.
    pub(crate) fn sample_labels(&self, count: usize) -> Option<Vec<f32>> {
        self.conditional.then(|| cycled_labels(count))
    }

    /// Each option in its range; an error names the flag and the value given.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        let counts = [
            ("--epochs", Some(self.epochs), 100_000),
            ("--max-steps", self.max_steps, MAX_STEPS),
            ("--checkpoint-every", self.checkpoint_every, MAX_STEPS),
            ("--log-every", Some(self.log_every), MAX_STEPS),
        ];
        for (flag, value, max) in counts {
            if let Some(v) = value
                && !(1..=max).contains(&v)
            {
                return bad(format!("{flag} must be between 1 and {max}, got {v}"));
            }
        }
        // Batch norm over one image per batch subtracts each value from itself: the layers
        // before it get no gradient at all (PyTorch refuses it too).
        if self.batch < 2 {
            return bad(format!(
                "--batch-size must be at least 2 (batch norm needs two images to normalise over), got {}",
                self.batch
            ));
        }
        for (flag, lr) in [
            ("--lr", Some(self.lr)),
            ("--lr-d", self.lr_d),
            ("--lr-g", self.lr_g),
        ] {
            if let Some(lr) = lr
                && !(lr.is_finite() && lr > 0.0 && lr < 1.0)
            {
                return bad(format!("{flag} must be in (0, 1), got {lr}"));
            }
        }
        let p = self.label_smoothing;
        if !(p.is_finite() && (0.0..0.5).contains(&p)) {
            return bad(format!(
                "--label-smoothing must be in [0, 0.5) (real targets 1 - P stay above the fakes' 0), got {p}"
            ));
        }
        if p > 0.0 && self.loss != Objective::Bce {
            return bad(format!(
                "--label-smoothing applies to --loss bce; --loss {} has no targets to smooth",
                self.loss.name()
            ));
        }
        if let Some(decay) = self.ema
            && !(decay.is_finite() && decay > 0.0 && decay < 1.0)
        {
            return bad(format!(
                "--ema must be in (0, 1) (0.999 keeps the last ~1000 steps), got {decay}"
            ));
        }
        if !(self.beta1.is_finite() && (0.0..1.0).contains(&self.beta1)) {
            return bad(format!("--beta1 must be in [0, 1), got {}", self.beta1));
        }
        if self.fid_samples == 1 || self.fid_samples > 65_536 {
            return bad(format!(
                "--fid-samples must be 0 (off) or between 2 and 65536, got {}",
                self.fid_samples
            ));
        }
        Ok(())
    }

    /// [`TrainOptions::validate`], and the batch within a dataset of `count` images.
    pub fn validate_for(&self, count: usize) -> Result<()> {
        self.validate()?;
        if self.batch > count {
            return Err(Error::Invalid(format!(
                "--batch-size {} is larger than the dataset ({count} images)",
                self.batch
            )));
        }
        Ok(())
    }

    /// What a checkpoint of a run with these options on `data` records (and a resume checks).
    pub fn run_meta(&self, data: &Dataset) -> RunMeta {
        RunMeta {
            model: self.model,
            seed: self.seed,
            batch: self.batch,
            lr_d: self.lr_d(),
            lr_g: self.lr_g(),
            beta1: self.beta1,
            loss: self.loss,
            label_smoothing: self.label_smoothing,
            ema: self.ema,
            dataset_size: data.count,
            data_digest: data.digest(),
            conditional: self.conditional,
        }
    }

    /// The options with every flag at its default.
    pub fn defaults() -> TrainOptions {
        #[derive(clap::Parser)]
        struct Train {
            #[command(flatten)]
            options: TrainOptions,
        }
        <Train as clap::Parser>::parse_from(["train"]).options
    }

    /// The `train` arguments that continue this run: --out, and every option the run set away
    /// from its default (spelled out, so that the command continues the same run).
    pub fn resume_command(&self) -> String {
        format!(
            "train --resume --out {}{}",
            quote(&self.out),
            self.changed_flags()
        )
    }

    /// The `train` arguments that make this run from the start.
    pub fn train_command(&self) -> String {
        format!("train --out {}{}", quote(&self.out), self.changed_flags())
    }

    /// Every option set away from its default, as flags (each with a leading space).
    fn changed_flags(&self) -> String {
        let d = TrainOptions::defaults();
        let opt = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_default();
        let model = match self.model {
            GeneratorKind::Mlp => "mlp",
            GeneratorKind::Dcgan => "dcgan",
        };
        let flags = [
            ("--model", model.to_string(), self.model != d.model),
            ("--conditional", String::new(), self.conditional),
            (
                "--data-dir",
                quote(&self.data_dir),
                self.data_dir != d.data_dir,
            ),
            ("--epochs", self.epochs.to_string(), self.epochs != d.epochs),
            (
                "--batch-size",
                self.batch.to_string(),
                self.batch != d.batch,
            ),
            ("--seed", self.seed.to_string(), self.seed != d.seed),
            ("--lr", self.lr.to_string(), self.lr != d.lr),
            ("--lr-d", opt(self.lr_d), self.lr_d.is_some()),
            ("--lr-g", opt(self.lr_g), self.lr_g.is_some()),
            ("--beta1", self.beta1.to_string(), self.beta1 != d.beta1),
            ("--loss", self.loss.name().to_string(), self.loss != d.loss),
            (
                "--label-smoothing",
                self.label_smoothing.to_string(),
                self.label_smoothing != d.label_smoothing,
            ),
            ("--ema", opt(self.ema), self.ema.is_some()),
            (
                "--log-every",
                self.log_every.to_string(),
                self.log_every != d.log_every,
            ),
            (
                "--fid-samples",
                self.fid_samples.to_string(),
                self.fid_samples != d.fid_samples,
            ),
            (
                "--classifier",
                quote(&self.classifier),
                self.classifier != d.classifier,
            ),
            (
                "--max-steps",
                self.max_steps.map(|n| n.to_string()).unwrap_or_default(),
                self.max_steps.is_some(),
            ),
            (
                "--checkpoint-every",
                self.checkpoint_every
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                self.checkpoint_every.is_some(),
            ),
        ];
        let mut args = String::new();
        for (flag, value, set) in flags {
            if set {
                args += &format!(" {flag}");
                if !value.is_empty() {
                    args += &format!(" {value}");
                }
            }
        }
        args
    }

    /// The discriminator's learning rate: --lr-d, else --lr.
    pub fn lr_d(&self) -> f32 {
        self.lr_d.unwrap_or(self.lr)
    }

    /// The generator's learning rate: --lr-g, else --lr.
    pub fn lr_g(&self) -> f32 {
        self.lr_g.unwrap_or(self.lr)
    }

    /// The article's step with these options' batch size, seed, Adam settings, loss and
    /// remedies.
    pub(crate) fn step_config(&self) -> StepConfig {
        let adam = |lr| AdamSpec {
            lr,
            beta1: self.beta1,
            ..AdamSpec::GAN
        };
        StepConfig {
            adam_d: adam(self.lr_d()),
            adam_g: adam(self.lr_g()),
            objective: self.loss,
            label_smoothing: self.label_smoothing,
            ema: self.ema,
            conditional: self.conditional,
            ..StepConfig::article(self.model, self.batch, self.seed)
        }
    }
}

/// `p` as a shell word: as it is when that is safe, else in single quotes.
fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The most steps a run may take: noise streams are 32-bit, two per step.
pub(crate) const MAX_STEPS: u64 = 1 << 31;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_articles_and_a_resume_command_names_only_what_differs() {
        let d = TrainOptions::defaults();
        assert!(d.validate().is_ok());
        assert_eq!(
            (d.epochs, d.batch, d.seed, d.lr, d.beta1),
            (5, 64, 0, 2e-4, 0.5)
        );
        assert_eq!(
            (d.model, d.log_every, d.fid_samples),
            (GeneratorKind::Mlp, 50, 2000)
        );
        assert_eq!(d.resume_command(), "train --resume --out runs/gan");
        let o = TrainOptions {
            seed: 3,
            max_steps: Some(9),
            out: "my run".into(),
            ..d
        };
        assert_eq!(
            o.resume_command(),
            "train --resume --out 'my run' --seed 3 --max-steps 9"
        );
    }
}
