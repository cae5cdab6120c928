//! Sample quality measured by wgsl-gan itself: an MNIST classifier trained with its own kernels,
//! and the Frechet distance / inception score / class coverage of generated images under it.

pub mod classifier;
pub mod fid;

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// What `eval` reports for a set of images.
#[derive(Clone, Debug)]
pub struct Report {
    /// Images scored.
    pub count: usize,
    /// Images in the file they were read from (`eval --idx`), when known.
    pub read: Option<usize>,
    /// Frechet distance to the MNIST test set in the classifier's feature space.
    pub fid: f64,
    pub inception_score: f64,
    /// Share of the images predicted as each digit.
    pub shares: Vec<f64>,
    /// Digits that get at least 5% of the images.
    pub coverage: usize,
    /// For images generated for requested digits (a class-conditional model): the share the
    /// classifier assigns to the digit asked for.
    pub class_accuracy: Option<f64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "images: {} scored", self.count)?;
        match self.read {
            Some(read) if read > self.count => writeln!(
                f,
                " (the first {} of the {read} in the file; --count sets how many, up to {})",
                self.count,
                crate::data::MAX_IMAGES
            )?,
            Some(read) => writeln!(f, " (all {read} in the file)")?,
            None => writeln!(f)?,
        }
        if !self.fid_reliable() {
            writeln!(f, "note: {}", FEW_IMAGES)?;
        }
        writeln!(
            f,
            "FID (classifier features, vs MNIST test set): {:.3}  (lower is better: real \
             training digits score under 10, uniform noise about 2,000)",
            self.fid
        )?;
        writeln!(
            f,
            "inception score (classifier): {:.3}  (1 to 10: 10 means confident and all digits)",
            self.inception_score
        )?;
        // One bar per digit, the longest 40 characters: a missing digit or one that takes over
        // shows at a glance.
        writeln!(f, "predicted digits (share of the images):")?;
        let top = self.shares.iter().cloned().fold(0.0, f64::max).max(1e-12);
        for (digit, share) in self.shares.iter().enumerate() {
            let bar = "#".repeat((40.0 * share / top).round() as usize);
            writeln!(f, "  {digit} {bar:<40} {:5.1}%", 100.0 * share)?;
        }
        write!(
            f,
            "coverage: {} of 10 digits get at least 5% of the images",
            self.coverage
        )?;
        if let Some(a) = self.class_accuracy {
            write!(
                f,
                "\nclass accuracy: {:.2}% of the images are classified as the digit asked for",
                a * 100.0
            )?;
        }
        Ok(())
    }
}

/// Why a FID from few images is not to be trusted.
const FEW_IMAGES: &str = "FID from fewer than 256 images (twice the classifier's 128 features) \
is dominated by the estimate's own noise and bias; score 2,000 or more to compare models";

impl Report {
    /// Whether enough images were scored for the FID to mean something (see [`FEW_IMAGES`]).
    pub fn fid_reliable(&self) -> bool {
        self.count >= 2 * classifier::FEATURES
    }

    /// The report as one JSON object, for scripts and notebooks.
    pub fn to_json(&self) -> String {
        let shares: Vec<String> = self.shares.iter().map(|s| format!("{s}")).collect();
        let note = match self.fid_reliable() {
            true => "null".to_string(),
            false => format!("\"{FEW_IMAGES}\""),
        };
        format!(
            "{{\"images\": {}, \"images_read\": {}, \"fid\": {}, \"fid_reliable\": {}, \"note\": {note}, \"inception_score\": {}, \"coverage\": {}, \"digit_shares\": [{}], \"class_accuracy\": {}}}",
            self.count,
            self.read.map_or("null".to_string(), |r| r.to_string()),
            self.fid,
            self.fid_reliable(),
            self.inception_score,
            self.coverage,
            shares.join(", "),
            self.class_accuracy
                .map_or("null".to_string(), |a| a.to_string())
        )
    }
}

/// A loaded evaluation classifier and the MNIST test set's cached feature statistics.
pub struct Evaluator<'g> {
    gpu: &'g Gpu,
    store: crate::nn::ParamStore<crate::nn::Recorder<'g>>,
    test: fid::Stats,
}

impl<'g> Evaluator<'g> {
    pub fn load(gpu: &'g Gpu, classifier: &Path) -> Result<Evaluator<'g>> {
        let (store, test, _) = classifier::load(gpu, classifier)?;
        Ok(Evaluator { gpu, store, test })
    }

    /// [`Evaluator::load`] of a classifier checkpoint already read (`path` names it in errors).
    pub fn from_checkpoint(
        gpu: &'g Gpu,
        path: &Path,
        classifier: crate::io::checkpoint::Checkpoint,
    ) -> Result<Evaluator<'g>> {
        let (store, test, _) = classifier::load_parsed(gpu, path, classifier)?;
        Ok(Evaluator { gpu, store, test })
    }

    /// Scores images [N, 784] in [-1, 1] (N >= 2).
    pub fn evaluate(&self, images: &[f32]) -> Result<Report> {
        self.evaluate_requested(images, None)
    }

    /// [`Evaluator::evaluate`], and with `requested` (the digit each image was generated for)
    /// the class accuracy.
    pub fn evaluate_requested(&self, images: &[f32], requested: Option<&[f32]>) -> Result<Report> {
        crate::gpu::ready_now(self.evaluate_requested_async(images, requested))
    }

    /// [`Evaluator::evaluate_requested`], awaitable (the browser build).
    pub async fn evaluate_requested_async(
        &self,
        images: &[f32],
        requested: Option<&[f32]>,
    ) -> Result<Report> {
        let (features, probs) = self.classify_async(images).await?;
        let mut report = self.report(&features, &probs)?;
        if let Some(y) = requested {
            let hits = probs
                .iter()
                .zip(y)
                .filter(|&(p, &y)| {
                    let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]));
                    best == Some(y as usize)
                })
                .count();
            report.class_accuracy = Some(hits as f64 / y.len().max(1) as f64);
        }
        Ok(report)
    }

    /// The classifier's penultimate features and class probabilities of images [N, 784].
    pub fn classify(&self, images: &[f32]) -> Result<(classifier::Rows, classifier::Rows)> {
        crate::gpu::ready_now(self.classify_async(images))
    }

    /// [`Evaluator::classify`], awaitable (the browser build).
    pub async fn classify_async(
        &self,
        images: &[f32],
    ) -> Result<(classifier::Rows, classifier::Rows)> {
        let count = images.len() / crate::data::PIXELS;
        if count < 2 || !images.len().is_multiple_of(crate::data::PIXELS) {
            return Err(Error::Invalid(format!(
                "scoring needs at least 2 whole 28x28 images, got {} values ({count} images)",
                images.len()
            )));
        }
        classifier::classify_async(self.gpu, &self.store, images, 500).await
    }

    /// The report on images from their features and probabilities (see [`Evaluator::classify`]).
    pub fn report(&self, features: &[Vec<f64>], probs: &[Vec<f64>]) -> Result<Report> {
        if probs.iter().flatten().any(|p| !p.is_finite()) {
            return Err(Error::Invalid(
                "the classifier's outputs hold NaN or infinity: the images are not finite".into(),
            ));
        }
        let fid = fid::frechet_distance(&fid::Stats::from_features(features), &self.test)?;
        let shares = fid::class_shares(probs);
        Ok(Report {
            count: features.len(),
            read: None,
            fid,
            inception_score: fid::inception_score(probs),
            coverage: fid::coverage(&shares, 0.05),
            shares,
            class_accuracy: None,
        })
    }
}
