//! `export-generator`: a training checkpoint's generator alone (its moving average when the run
//! kept one), with the command that trained it and its scores in its metadata. The class-
//! conditional DCGAN exported this way is `assets/generator.safetensors`, built into the binary:
//! what `sample` draws with when no checkpoint is given, and what the page draws on load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::load_dataset;
use crate::error::{Error, Result};
use crate::eval::{Evaluator, Report};
use crate::gan::checkpoint::{has_ema, is_conditional};
use crate::gan::ema::ema_specs;
use crate::gan::generator::GeneratorKind;
use crate::gan::model::cycled_labels;
use crate::gan::objective::Objective;
use crate::gan::options::TrainOptions;
use crate::gan::sample::generate;
use crate::gpu::Gpu;
use crate::io::assets::default_path;
use crate::io::checkpoint::{self, Checkpoint};
use crate::nn::NamedValues;

/// The built-in generator's file name under assets/.
pub const GENERATOR: &str = "generator.safetensors";

/// Where the command recorded in an exported generator trains its run.
const RUN_FOLDER: &str = "runs/generator";

/// The seed of the images an export is scored on.
const SCORE_SEED: u64 = 0;

/// What [`export_generator`] wrote.
pub struct Exported {
    /// The scores of the exported weights.
    pub report: Report,
    /// The commands that make the same file again.
    pub command: String,
    /// Whether the weights are the run's moving average.
    pub averaged: bool,
}

/// The options of the run a checkpoint records, training into `RUN_FOLDER`: what `train` needs
/// to make it again.
fn run_options(ckpt: &Checkpoint, path: &Path) -> Result<TrainOptions> {
    let text = |key: &str| ckpt.meta(path, key);
    let number = |key: &str| -> Result<f32> { ckpt.meta_parse(path, key) };
    let model = text("model")?;
    let model = GeneratorKind::from_model_name(model)
        .ok_or_else(|| Error::file(path, format!("checkpoint of model '{model}', not a GAN")))?;
    let d = TrainOptions::defaults();
    // Checkpoints from before the two learning rates record one.
    let (lr_d, lr_g) = match ckpt.meta.get("lr") {
        Some(_) => (number("lr")?, number("lr")?),
        None => (number("lr_d")?, number("lr_g")?),
    };
    let loss = match ckpt.meta.get("loss").map(String::as_str) {
        None | Some("bce") => Objective::Bce,
        Some("hinge") => Objective::Hinge,
        Some(other) => return Err(Error::file(path, format!("unknown loss '{other}'"))),
    };
    let (step, batch): (u64, usize) = (ckpt.meta_parse(path, "step")?, number("batch_size")? as _);
    let dataset_size: u64 = ckpt.meta_parse(path, "dataset_size")?;
    let per_epoch = (dataset_size / batch.max(1) as u64).max(1);
    let ema = match ckpt.meta.get("ema").map(String::as_str) {
        None | Some("off") => None,
        Some(_) => Some(number("ema")?),
    };
    // The run trained on the built-in MNIST unless its data digest says otherwise.
    let mnist = load_dataset(&default_path("mnist"), "train")?.digest();
    let data_dir = match ckpt.meta.get("data_digest") {
        Some(digest) if *digest != mnist => {
            PathBuf::from(format!("<the training set of data digest {digest}>"))
        }
        _ => d.data_dir.clone(),
    };
    Ok(TrainOptions {
        model,
        data_dir,
        conditional: is_conditional(ckpt),
        epochs: step.div_ceil(per_epoch),
        max_steps: (!step.is_multiple_of(per_epoch)).then_some(step),
        batch,
        seed: ckpt.meta_parse(path, "seed")?,
        out: PathBuf::from(RUN_FOLDER),
        lr: if lr_d == lr_g { lr_d } else { d.lr },
        lr_d: (lr_d != lr_g).then_some(lr_d),
        lr_g: (lr_d != lr_g).then_some(lr_g),
        beta1: number("beta1")?,
        loss,
        label_smoothing: ckpt
            .meta
            .get("label_smoothing")
            .map_or(Ok(0.0), |_| number("label_smoothing"))?,
        ema,
        ..d
    })
}

/// Writes the generator of the checkpoint at `from` to `to` (its moving average if it has one),
/// scored on `count` images by the classifier at `classifier`.
pub fn export_generator(
    gpu: &Gpu,
    from: &Path,
    to: &Path,
    count: usize,
    classifier: &Path,
) -> Result<Exported> {
    crate::error::check_range("--count", count, 256, crate::data::MAX_IMAGES)?;
    let ckpt = checkpoint::load(from)?;
    let options = run_options(&ckpt, from)?;
    let specs = options.model.specs(options.conditional);
    let averaged = has_ema(&ckpt);
    let stored = match averaged {
        true => ema_specs(&specs),
        false => specs.clone(),
    };
    // Saved under the generator's own names, so that it loads like any checkpoint's generator.
    let tensors: NamedValues = ckpt
        .select(from, &stored, "")?
        .into_iter()
        .zip(&specs)
        .map(|((_, shape, v), spec)| (spec.name.clone(), shape, v))
        .collect();

    let images = generate(gpu, from, count, SCORE_SEED, true)?.images;
    let labels = options.conditional.then(|| cycled_labels(count));
    let report =
        Evaluator::load(gpu, classifier)?.evaluate_requested(&images, labels.as_deref())?;

    let command = format!(
        "wgsl-gan {} && wgsl-gan export-generator --checkpoint {RUN_FOLDER}/checkpoint.safetensors",
        options.train_command()
    );
    let mut meta: BTreeMap<String, String> = [
        "model",
        "conditional",
        "step",
        "epoch",
        "seed",
        "batch_size",
        "dataset_size",
        "data_digest",
    ]
    .iter()
    .filter_map(|k| ckpt.meta.get(*k).map(|v| (k.to_string(), v.clone())))
    .collect();
    let weights = match averaged {
        true => "the generator's moving average",
        false => "the generator",
    };
    let accuracy = report
        .class_accuracy
        .map(|a| format!(", class accuracy {:.1}%", 100.0 * a))
        .unwrap_or_default();
    let scores = format!(
        "FID {:.2}, coverage {}/10{accuracy}, inception score {:.2} over {count} images (seed {SCORE_SEED})",
        report.fid, report.coverage, report.inception_score
    );
    for (key, value) in [
        ("command", command.clone()),
        ("weights", weights.to_string()),
        ("scores", scores),
        ("fid", report.fid.to_string()),
        ("coverage", report.coverage.to_string()),
        ("scored_images", count.to_string()),
    ] {
        meta.insert(key.into(), value);
    }
    if let Some(a) = report.class_accuracy {
        meta.insert("class_accuracy".into(), a.to_string());
    }
    checkpoint::save(to, &Checkpoint { tensors, meta })?;
    Ok(Exported {
        report,
        command,
        averaged,
    })
}

/// One line on an exported generator (`export-generator`'s metadata), for `sample`'s note of
/// which model it drew with; `None` for a training checkpoint.
pub fn describe(ckpt: &Checkpoint) -> Option<String> {
    let (command, scores) = (ckpt.meta.get("command")?, ckpt.meta.get("scores")?);
    let kind = match is_conditional(ckpt) {
        true => "class-conditional ",
        false => "",
    };
    let model = ckpt.meta.get("model").map_or("GAN", String::as_str);
    Some(format!(
        "a {kind}{model} generator trained by `{command}`: {scores}"
    ))
}
