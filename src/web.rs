//! The browser build's entry points (wasm-bindgen; web/ holds the page): the very trainer,
//! sampler and checkpoint format of the native CLI over the browser's WebGPU adapter, awaited
//! where the CLI blocks. A run here is the native run of the same seed, batch and data: the same
//! epoch orders, noise streams and initial weights.

use std::path::Path;

use wasm_bindgen::prelude::*;

use crate::data::{Schedule, idx};
use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::gan::checkpoint::{CHECKPOINT, RunMeta};
use crate::gan::generator::GeneratorKind;
use crate::gan::options::TrainOptions;
use crate::gan::sample::{
    Digits, Request, WALK_ROWS, WALK_STEPS, generate_from_checkpoint, latent_walk,
};
use crate::gan::trainer::{EpochScorer, GpuTrainer, Sampler, generator_checksum, grid_seed};
use crate::gpu::{Gpu, describe};
use crate::io::checkpoint;

fn js(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

/// One training run in the page.
#[wasm_bindgen]
pub struct WebGan {
    gpu: &'static Gpu,
    trainer: GpuTrainer<'static>,
    grid: Sampler<'static>,
    /// Scores the generator at each epoch's end, once the page gives it the classifier.
    scorer: Option<EpochScorer<'static>>,
    opts: TrainOptions,
    meta: RunMeta,
    step: u64,
}

#[wasm_bindgen]
impl WebGan {
    /// Opens the browser's WebGPU adapter and prepares a run of `model` ("mlp" or "dcgan"),
    /// class-conditional or not, on the training images and labels (IDX files, gzipped or not),
    /// initialised from `seed`.
    pub async fn create(
        model: String,
        conditional: bool,
        batch: usize,
        seed: u32,
        images: Vec<u8>,
        labels: Vec<u8>,
    ) -> std::result::Result<WebGan, JsError> {
        WebGan::open(&model, conditional, batch, seed.into(), images, labels)
            .await
            .map_err(js)
    }

    async fn open(
        model: &str,
        conditional: bool,
        batch: usize,
        seed: u64,
        images: Vec<u8>,
        labels: Vec<u8>,
    ) -> Result<WebGan> {
        let model = <GeneratorKind as clap::ValueEnum>::from_str(model, false)
            .map_err(|_| Error::Invalid(format!("unknown model '{model}' (mlp or dcgan)")))?;
        // The native run's options with the page's choices: the same defaults and range rules.
        let opts = TrainOptions {
            model,
            conditional,
            batch,
            seed,
            ..TrainOptions::defaults()
        };
        let (images_path, labels_path) = (
            Path::new("train-images-idx3-ubyte.gz"),
            Path::new("train-labels-idx1-ubyte.gz"),
        );
        let data = idx::parse_dataset(
            images_path,
            &idx::inflate_if_gzipped(images_path, images)?,
            labels_path,
            &idx::inflate_if_gzipped(labels_path, labels)?,
        )?;
        opts.validate_for(data.count)?;
        // The page keeps one run for its lifetime; the trainer borrows the device.
        let gpu: &'static Gpu = Box::leak(Box::new(Gpu::browser().await?));
        let config = opts.step_config();
        let (images, labels) = (data.packed_images(), data.packed_labels());
        let mut trainer = GpuTrainer::new(gpu, config, &images, &labels, data.count)?;
        trainer.initialize()?;
        let store = &trainer.gan.g_store;
        let labels = opts.sample_labels(64);
        let grid = Sampler::new(gpu, model, store, 64, grid_seed(seed), labels)?;
        let meta = opts.run_meta(&data);
        Ok(WebGan {
            gpu,
            trainer,
            grid,
            scorer: None,
            opts,
            meta,
            step: 0,
        })
    }

    /// Scores `count` generated images at each call of [`WebGan::score`] with the evaluation
    /// classifier in `classifier` (the bytes of `mnist-classifier.safetensors`), as `train`
    /// scores them at each epoch's end.
    pub fn enable_scoring(
        &mut self,
        classifier: Vec<u8>,
        count: usize,
    ) -> std::result::Result<(), JsError> {
        let path = Path::new("mnist-classifier.safetensors");
        let run = || -> Result<EpochScorer<'static>> {
            crate::error::check_range("the scored image count", count, 2, 65_536)?;
            let evaluator =
                Evaluator::from_checkpoint(self.gpu, path, checkpoint::parse(path, &classifier)?)?;
            EpochScorer::new(self.gpu, &self.opts, count, &self.trainer, evaluator)
        };
        self.scorer = Some(run().map_err(js)?);
        Ok(())
    }

    /// The generator's scores now: FID, coverage, class accuracy (NaN for an unconditional
    /// run) and the images scored.
    pub async fn score(&mut self) -> std::result::Result<Vec<f64>, JsError> {
        let scorer = self
            .scorer
            .as_mut()
            .ok_or_else(|| js(Error::Invalid("call enable_scoring first".into())))?;
        let r = scorer.score_async().await.map_err(js)?;
        Ok(vec![
            r.fid,
            r.coverage as f64,
            r.class_accuracy.unwrap_or(f64::NAN),
            r.count as f64,
        ])
    }

    /// The seed of the scored images' noise, in decimal: `eval --checkpoint --seed` with it
    /// scores the same images.
    pub fn score_seed(&self) -> String {
        EpochScorer::noise_seed(self.opts.seed).to_string()
    }

    /// The adapter, as `wgsl-gan info` describes it.
    pub fn adapter(&self) -> String {
        describe(&self.gpu.info)
    }

    /// Training steps done.
    pub fn step(&self) -> f64 {
        self.step as f64
    }

    pub fn steps_per_epoch(&self) -> f64 {
        self.schedule().steps_per_epoch() as f64
    }

    fn schedule(&self) -> Schedule {
        Schedule::new(self.meta.seed, self.meta.dataset_size, self.meta.batch)
    }

    /// Runs `steps` training steps and returns the last one's D loss, G loss, mean D(x) and
    /// mean D(G(z)) (the only readback).
    pub async fn train(&mut self, steps: u32) -> std::result::Result<Vec<f32>, JsError> {
        self.train_steps(steps.max(1)).await.map_err(js)
    }

    async fn train_steps(&mut self, steps: u32) -> Result<Vec<f32>> {
        let schedule = self.schedule();
        let mut stats = None;
        for i in 0..steps {
            // A page's run always starts at step 0.
            if let Some(order) = schedule.order_before(self.step, 0) {
                self.trainer.set_order(&order)?;
            }
            let read = i + 1 == steps;
            let offset = schedule.place(self.step).offset;
            stats = self.trainer.run_step_async(self.step, offset, read).await?;
            self.step += 1;
        }
        let stats = stats.ok_or_else(|| Error::Gpu("no statistics were read".into()))?;
        if !stats.is_finite() {
            return Err(Error::NonFinite(format!(
                "non-finite losses at step {}",
                self.step
            )));
        }
        Ok(stats.values().to_vec())
    }

    /// 64 images [64 * 784] in [-1, 1] from the run's fixed grid noise (inference mode), the
    /// grid `train` writes to samples/.
    pub async fn samples(&mut self) -> std::result::Result<Vec<f32>, JsError> {
        let (images, _) = self
            .grid
            .generate_from_async(None, false)
            .await
            .map_err(js)?;
        Ok(images)
    }

    /// The checkpoint `train` would write at this step (`.safetensors`, read by `train
    /// --resume`, `sample`, `eval` and PyTorch).
    pub async fn checkpoint(&mut self) -> std::result::Result<Vec<u8>, JsError> {
        self.meta
            .to_bytes(Path::new(CHECKPOINT), &mut self.trainer, self.step)
            .await
            .map_err(js)
    }

    /// The generator's parameters and batch-norm state, for the page's test mode: (count, sum
    /// of absolute values, sum of squares), in f64.
    pub async fn generator_checksum(&mut self) -> std::result::Result<Vec<f64>, JsError> {
        let (weights, _) = self.trainer.values_async().await.map_err(js)?;
        Ok(generator_checksum(&weights).to_vec())
    }
}

/// Images in [-1, 1] from the generator of a checkpoint file's bytes (any GAN checkpoint `train`
/// or the page wrote, or an exported generator such as the built-in one), as `sample --seed`
/// draws them: 64 independent ones, or with `walk` the 80 of `sample --interpolate` (8 rows of 10
/// steps). A class-conditional checkpoint draws all of `digit` (`sample --digit`), or 0..9 in turn
/// without one.
#[wasm_bindgen]
pub async fn sample_checkpoint(
    bytes: Vec<u8>,
    seed: u32,
    digit: Option<u8>,
    walk: bool,
) -> std::result::Result<Vec<f32>, JsError> {
    let path = Path::new("the checkpoint");
    let run = async {
        if digit.is_some_and(|d| d > 9) {
            return Err(Error::Invalid(format!("digit {digit:?}: expected 0..9")));
        }
        let ckpt = checkpoint::parse(path, &bytes)?;
        let gpu = Gpu::browser().await?;
        let z = walk.then(|| latent_walk(seed.into()));
        let request = Request {
            digits: digit.map(Digits::One),
            z: z.as_deref(),
            count: if walk { WALK_ROWS * WALK_STEPS } else { 64 },
            ..Request::drawn(64, seed.into())
        };
        let (images, _) = generate_from_checkpoint(&gpu, path, &ckpt, &request).await?;
        Ok(images)
    };
    run.await.map_err(js)
}
