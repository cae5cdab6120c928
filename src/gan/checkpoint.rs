//! A training run's checkpoint: both networks and Adam's moments in PyTorch's names and layouts,
//! and the run's metadata, which `--resume` checks against the options before loading.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::gan::generator::GeneratorKind;
use crate::gan::model::discriminator_specs;
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
    pub lr: f32,
    pub beta1: f32,
    pub dataset_size: usize,
    /// `Dataset::digest` of the training set.
    pub data_digest: String,
    /// Class-conditional (`train --conditional`).
    pub conditional: bool,
}

/// Whether a checkpoint is of a class-conditional model (absent in older checkpoints: no).
pub fn is_conditional(ckpt: &Checkpoint) -> bool {
    ckpt.meta.get("conditional").is_some_and(|v| v == "true")
}

impl RunMeta {
    fn specs(&self) -> Vec<ParamSpec> {
        self.model
            .specs(self.conditional)
            .into_iter()
            .chain(discriminator_specs(self.conditional))
            .collect()
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
            ("lr", self.lr.to_string()),
            ("beta1", self.beta1.to_string()),
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
        for (key, flag, want) in [
            ("batch_size", "--batch-size", self.batch.to_string()),
            ("seed", "--seed", self.seed.to_string()),
            ("lr", "--lr", self.lr.to_string()),
            ("beta1", "--beta1", self.beta1.to_string()),
        ] {
            let have = ckpt.meta(path, key)?;
            if have != want {
                return Err(Error::Invalid(format!(
                    "--resume: the checkpoint in {} was trained with {flag} {have}, this run asks for {flag} {want}; give {flag} {have} or another --out",
                    path.display()
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
        let trainable: Vec<_> = specs.iter().filter(|s| s.trainable).cloned().collect();
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
