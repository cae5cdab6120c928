//! A training run's checkpoint: both networks and Adam's moments in PyTorch's names and layouts,
//! and the run's metadata, which `--resume` checks against the options before loading.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::gan::ema::{averaged_name, ema_specs};
use crate::gan::generator::GeneratorKind;
use crate::gan::model::discriminator_specs;
use crate::gan::objective::Objective;
use crate::gan::trainer::GpuTrainer;
use crate::gpu::ready_now;
use crate::io::checkpoint::{self, Checkpoint};
use crate::nn::{MOMENT_PREFIXES, NamedValues, ParamSpec, convert_layouts};

pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// A checkpoint read by [`RunMeta::read_resume`]: the state to load and the step it was at.
pub struct Resumed {
    weights: NamedValues,
    moments: NamedValues,
    pub step: u64,
}

impl Resumed {
    /// Loads the state into the trainer.
    pub fn load(&self, trainer: &mut GpuTrainer<'_>) -> Result<()> {
        trainer.load(&self.weights, &self.moments)
    }
}

/// What defines a run: a checkpoint records it, and a resumed run must match it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunMeta {
    pub model: GeneratorKind,
    pub seed: u64,
    pub batch: usize,
    /// The discriminator's and the generator's learning rates.
    pub lr_d: f32,
    pub lr_g: f32,
    pub beta1: f32,
    pub loss: Objective,
    pub label_smoothing: f32,
    /// The decay of G's moving average, if the run keeps one.
    pub ema: Option<f32>,
    pub dataset_size: usize,
    /// `Dataset::digest` of the training set.
    pub data_digest: String,
    /// Class-conditional (`train --conditional`).
    pub conditional: bool,
}

/// Whether a checkpoint holds a moving average of its generator.
pub fn has_ema(ckpt: &Checkpoint) -> bool {
    ckpt.tensors
        .iter()
        .any(|(n, _, _)| averaged_name(n).is_some())
}

/// The checkpoint's spelling of a moving average's decay, or of none.
fn ema_text(decay: Option<f32>) -> String {
    decay.map_or("off".into(), |d| d.to_string())
}

/// Whether a checkpoint is of a class-conditional model (absent in older checkpoints: no).
pub fn is_conditional(ckpt: &Checkpoint) -> bool {
    ckpt.meta.get("conditional").is_some_and(|v| v == "true")
}

impl RunMeta {
    /// The tensors a checkpoint of this run holds (without Adam's moments): both networks', then
    /// the generator's moving average if the run keeps one.
    fn specs(&self) -> Vec<ParamSpec> {
        let g = self.model.specs(self.conditional);
        let ema = match self.ema {
            Some(_) => ema_specs(&g),
            None => Vec::new(),
        };
        g.into_iter()
            .chain(discriminator_specs(self.conditional))
            .chain(ema)
            .collect()
    }

    /// The tensors Adam updates (and has moments of): both networks' parameters.
    fn trained_specs(&self) -> Vec<ParamSpec> {
        let mut specs = self.model.specs(self.conditional);
        specs.extend(discriminator_specs(self.conditional));
        specs.retain(|s| s.trainable);
        specs
    }

    fn meta(&self, step: u64) -> BTreeMap<String, String> {
        let steps_per_epoch = (self.dataset_size / self.batch).max(1) as u64;
        [
            ("model", self.model.model_name().to_string()),
            ("conditional", self.conditional.to_string()),
            ("step", step.to_string()),
            ("epoch", (step / steps_per_epoch).to_string()),
            ("seed", self.seed.to_string()),
            ("batch_size", self.batch.to_string()),
            ("lr_d", self.lr_d.to_string()),
            ("lr_g", self.lr_g.to_string()),
            ("beta1", self.beta1.to_string()),
            ("loss", self.loss.name().to_string()),
            ("label_smoothing", self.label_smoothing.to_string()),
            ("ema", ema_text(self.ema)),
            ("dataset_size", self.dataset_size.to_string()),
            ("data_digest", self.data_digest.clone()),
            (
                "rng",
                "stateless: epoch order = shuffle(seed, epoch), noise = (seed, step)".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Refuses a checkpoint of another model, seed, batch size, training set or Adam setting.
    fn check(&self, ckpt: &Checkpoint, path: &Path) -> Result<()> {
        let model = ckpt.meta(path, "model")?;
        if model != self.model.model_name() {
            return Err(Error::file(
                path,
                format!(
                    "checkpoint of model '{model}', this run trains '{}' (--model)",
                    self.model.model_name()
                ),
            ));
        }
        if is_conditional(ckpt) != self.conditional {
            let (have, flag) = match self.conditional {
                true => ("an unconditional", "drop --conditional"),
                false => ("a class-conditional", "add --conditional"),
            };
            return Err(Error::Invalid(format!(
                "--resume: the checkpoint is of {have} model; {flag} or use another --out"
            )));
        }
        // A key recorded only by newer versions has, in an older checkpoint, the value it implies:
        // one --lr for both networks, bce, no smoothing, no average.
        let recorded = |key: &str, before: Option<&str>| -> Result<String> {
            match (ckpt.meta.get(key), before) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(v)) => Ok(v.to_string()),
                (None, None) => ckpt.meta(path, key).map(str::to_string),
            }
        };
        let lr = ckpt.meta.get("lr").map(String::as_str);
        let rates = (recorded("lr_d", lr)?, recorded("lr_g", lr)?);
        let asked = (self.lr_d.to_string(), self.lr_g.to_string());
        if rates != asked {
            // One rate for both is spelled as --lr, the way it was most likely given.
            let spell = |(d, g): &(String, String)| match d == g {
                true => format!("--lr {d}"),
                false => format!("--lr-d {d} --lr-g {g}"),
            };
            return Err(Error::Invalid(format!(
                "--resume: the checkpoint in {} was trained with {}, this run asks for {}; give {} or another --out",
                path.display(),
                spell(&rates),
                spell(&asked),
                spell(&rates)
            )));
        }
        for (flag, want, have) in [
            (
                "--batch-size",
                self.batch.to_string(),
                recorded("batch_size", None)?,
            ),
            ("--seed", self.seed.to_string(), recorded("seed", None)?),
            ("--beta1", self.beta1.to_string(), recorded("beta1", None)?),
            (
                "--loss",
                self.loss.name().into(),
                recorded("loss", Some("bce"))?,
            ),
            (
                "--label-smoothing",
                self.label_smoothing.to_string(),
                recorded("label_smoothing", Some("0"))?,
            ),
            ("--ema", ema_text(self.ema), recorded("ema", Some("off"))?),
        ] {
            if have != want {
                let spell = |v: &str| match v {
                    "off" => format!("no {flag}"),
                    v => format!("{flag} {v}"),
                };
                let remedy = match have.as_str() {
                    "off" => format!("drop {flag}"),
                    v => format!("give {flag} {v}"),
                };
                return Err(Error::Invalid(format!(
                    "--resume: the checkpoint in {} was trained with {}, this run asks for {}; {remedy} or another --out",
                    path.display(),
                    spell(&have),
                    spell(&want)
                )));
            }
        }
        let have = ckpt.meta(path, "dataset_size")?;
        if have != self.dataset_size.to_string() {
            return Err(Error::Invalid(format!(
                "--resume: the checkpoint in {} was trained on {have} images, the training set in --data-dir has {}; use the same --data-dir or another --out",
                path.display(),
                self.dataset_size
            )));
        }
        // Checkpoints from before the digest was recorded have none to compare.
        if let Some(have) = ckpt.meta.get("data_digest")
            && *have != self.data_digest
        {
            return Err(Error::Invalid(format!(
                "--resume: the checkpoint was trained on other images (data digest {have}); the \
                 training set in --data-dir has digest {}; use the same --data-dir or another --out",
                self.data_digest
            )));
        }
        Ok(())
    }

    /// Writes the trainer's state after `step` steps to `path`, atomically.
    pub fn save(&self, path: &Path, trainer: &mut GpuTrainer<'_>, step: u64) -> Result<()> {
        let bytes = ready_now(self.to_bytes(path, trainer, step))?;
        crate::io::write_atomic(path, &bytes)
    }

    /// The checkpoint [`RunMeta::save`] writes, as bytes (the browser offers them for download);
    /// `path` names it in errors.
    pub async fn to_bytes(
        &self,
        path: &Path,
        trainer: &mut GpuTrainer<'_>,
        step: u64,
    ) -> Result<Vec<u8>> {
        let (mut tensors, moments) = trainer.values_async().await?;
        tensors.extend(moments);
        convert_layouts(&self.specs(), &mut tensors, true);
        let meta = self.meta(step);
        checkpoint::to_bytes(path, &Checkpoint { tensors, meta })
    }

    /// Reads the checkpoint at `path` and checks that it belongs to this run, touching nothing:
    /// a refused resume leaves the run folder as it was.
    pub fn read_resume(&self, path: &Path) -> Result<Resumed> {
        let ckpt = checkpoint::load(path)?;
        self.check(&ckpt, path)?;
        let specs = self.specs();
        let trainable = self.trained_specs();
        let mut weights = ckpt.select(path, &specs, "")?;
        let mut moments = Vec::new();
        for prefix in MOMENT_PREFIXES {
            moments.extend(ckpt.select(path, &trainable, prefix)?);
        }
        convert_layouts(&specs, &mut weights, false);
        convert_layouts(&specs, &mut moments, false);
        Ok(Resumed {
            weights,
            moments,
            step: ckpt.meta_parse(path, "step")?,
        })
    }
}
