//! The evaluation classifier: the discriminator's conv trunk (with padding 1, 2048 features),
//! then Linear(2048, 128) -> LeakyReLU -> Linear(128, 10). Its 128 penultimate features are what the Frechet distance
//! compares. Trained with wgsl-gan's kernels (`wgsl-gan train-classifier`), deterministic from
//! its seed; shipped as assets/mnist-classifier.safetensors with the test set's feature
//! statistics.

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::{Dataset, PIXELS, Schedule};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::checkpoint::{self, Checkpoint};
use crate::nn::layers::{Backprop, linear_after_flatten_specs, linear_specs};
use crate::nn::trunk::{LEAKY, conv_trunk_specs};
use crate::nn::{
    Backend, BnMode, ConvTrunk, Linear, ParamSpec, ParamStore, Program, Recorder, Run, TrunkShape,
    convert_layouts,
};
use crate::spec::{Activation, AdamSpec};

pub const MODEL: &str = "mnist-classifier";
pub const FEATURES: usize = 128;
pub const CLASSES: usize = 10;
/// Batch-norm running statistics average over about 10 batches (PyTorch's default momentum 0.1):
/// the GAN's Keras-style 0.8 follows the last few batches, too noisy for inference here.
const RUNNING_MOMENTUM: f32 = 0.9;
/// The classifier's own trunk geometry (it was trained with padded convolutions).
const TRUNK: TrunkShape = TrunkShape::PADDED;

pub fn classifier_specs() -> Vec<ParamSpec> {
    let mut s = conv_trunk_specs("classifier");
    s.extend(linear_after_flatten_specs(
        "classifier.9",
        TRUNK.features(),
        FEATURES,
    ));
    s.extend(linear_specs("classifier.11", FEATURES, CLASSES));
    s
}

/// The classifier for one batch size.
pub struct Classifier<B: Backend> {
    trunk: ConvTrunk<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    /// Penultimate features [B, 128] (after the LeakyReLU).
    pub hidden: B::Tensor,
    /// Logits [B, 10].
    pub logits: B::Tensor,
    dhidden: B::Tensor,
    dpre: B::Tensor,
    dfeatures: B::Tensor,
}

impl<B: Backend> Classifier<B> {
    /// `input`: images [batch, 784] in [-1, 1].
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        batch: usize,
        input: &B::Tensor,
    ) -> Result<Classifier<B>> {
        let flat = TRUNK.feature_count();
        Ok(Classifier {
            trunk: ConvTrunk::new(
                be,
                store,
                "classifier",
                TRUNK,
                batch,
                input,
                RUNNING_MOMENTUM,
            )?,
            fc1: Linear::new(be, store, "classifier.9", flat, FEATURES)?,
            fc2: Linear::new(be, store, "classifier.11", FEATURES, CLASSES)?,
            hidden: be.zeros(&[batch, FEATURES])?,
            logits: be.zeros(&[batch, CLASSES])?,
            dhidden: be.zeros(&[batch, FEATURES])?,
            dpre: be.zeros(&[batch, FEATURES])?,
            dfeatures: be.zeros(&[batch, flat])?,
        })
    }

    pub fn forward(&self, be: &mut B, mode: BnMode) -> Result<()> {
        self.trunk.forward(be, mode)?;
        self.fc1
            .forward(be, &self.trunk.features, &self.hidden, LEAKY)?;
        self.fc2
            .forward(be, &self.hidden, &self.logits, Activation::Identity)
    }

    /// Accumulates parameter gradients from dlogits [B, 10].
    pub fn backward(&self, be: &mut B, dlogits: &B::Tensor) -> Result<()> {
        self.fc2
            .backward(be, &self.hidden, dlogits, Backprop::Both(&self.dhidden))?;
        be.activation_backward(&self.hidden, &self.dhidden, &self.dpre, LEAKY)?;
        let features = &self.trunk.features;
        self.fc1
            .backward(be, features, &self.dpre, Backprop::Both(&self.dfeatures))?;
        self.trunk.backward(be, &self.dfeatures, Backprop::Params)
    }
}

/// Training on a labelled set, written once over a backend (recorded once on the GPU).
pub struct ClassifierTraining<B: Backend> {
    pub store: ParamStore<B>,
    pub net: Classifier<B>,
    images: B::Words,
    labels: B::Words,
    pub order: B::Words,
    input: B::Tensor,
    targets: B::Tensor,
    dlogits: B::Tensor,
    /// [mean loss, accuracy] of the last step.
    pub stats: B::Tensor,
    adam: AdamSpec,
}

impl<B: Backend> ClassifierTraining<B> {
    pub fn new(
        be: &mut B,
        data: &Dataset,
        batch: usize,
        adam: AdamSpec,
    ) -> Result<ClassifierTraining<B>> {
        let store = ParamStore::new(be, classifier_specs())?;
        let input = be.zeros(&[batch, PIXELS])?;
        let net = Classifier::new(be, &store, batch, &input)?;
        let mut labels = data.labels.clone();
        labels.resize(labels.len().div_ceil(4) * 4, 0);
        let order: Vec<u32> = (0..data.count as u32).collect();
        Ok(ClassifierTraining {
            images: be.words(&data.packed_images())?,
            labels: be.words(&bytemuck::pod_collect_to_vec(&labels))?,
            order: be.words(&order)?,
            targets: be.zeros(&[batch])?,
            dlogits: be.zeros(&[batch, CLASSES])?,
            stats: be.zeros(&[2])?,
            input,
            net,
            store,
            adam,
        })
    }

    /// One step on the batch at the run's offset, at the run's learning rate.
    pub fn step(&self, be: &mut B) -> Result<()> {
        let s = &self.store;
        be.fill(&s.grads, 0.0)?;
        be.gather_batch(&self.images, &self.order, &self.input)?;
        be.gather_labels(&self.labels, &self.order, &self.targets)?;
        self.net.forward(
            be,
            BnMode::Train {
                update_running: true,
            },
        )?;
        be.softmax_cross_entropy(
            &self.net.logits,
            &self.targets,
            &self.dlogits,
            &self.stats,
            0,
            1.0,
        )?;
        self.net.backward(be, &self.dlogits)?;
        be.adam(&s.params, &s.grads, &s.m, &s.v, self.adam)
    }
}

/// Learning rate of `epoch` (0-based) of `epochs`: 1e-3, then 3e-4 and 1e-4 for the last two.
fn learning_rate(epoch: u64, epochs: u64) -> f32 {
    match epochs - epoch {
        1 if epochs > 2 => 1e-4,
        2 if epochs > 2 => 3e-4,
        _ => 1e-3,
    }
}

/// Trains the classifier on `train` for `epochs` (batch 64, Adam with a step-decayed learning
/// rate) and returns its store.
pub fn train<'g>(
    gpu: &'g Gpu,
    train: &Dataset,
    epochs: u64,
    seed: u64,
    mut progress: impl FnMut(u64, f32, f32),
) -> Result<(Recorder<'g>, ClassifierTraining<Recorder<'g>>)> {
    let batch = 64;
    let adam = AdamSpec {
        lr: learning_rate(0, epochs),
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-7,
    };
    let mut be = Recorder::new(gpu);
    let training = ClassifierTraining::new(&mut be, train, batch, adam)?;
    training.store.initialize(&mut be, seed)?;
    training.step(&mut be)?;
    be.input_words("order", &training.order);
    be.output("stats", &training.stats);
    let mut program = Program::new(&mut be);
    let schedule = Schedule::new(seed, train.count, batch);
    for step in 0..epochs * schedule.steps_per_epoch() {
        if let Some(order) = schedule.order_before(step, 0) {
            program.write_words("order", &order)?;
        }
        let place = schedule.place(step);
        let run = Run {
            step,
            offset: place.offset,
            lr: Some(learning_rate(place.epoch, epochs)),
        };
        if (place.in_epoch + 1).is_multiple_of(100) || place.epoch_end {
            let s = program.run_and_read(&run, "stats")?;
            progress(run.step + 1, s[0], s[1]);
        } else {
            program.run(&run)?;
        }
    }
    program.finish()?;
    Ok((be, training))
}

/// One row of f64 per image.
pub type Rows = Vec<Vec<f64>>;

/// Runs the classifier (inference mode) over images in [-1, 1], `chunk` at a time: returns the
/// penultimate features [N, 128] and the class probabilities [N, 10].
pub fn classify<'g>(
    gpu: &'g Gpu,
    store: &ParamStore<Recorder<'g>>,
    images: &[f32],
    chunk: usize,
) -> Result<(Rows, Rows)> {
    crate::gpu::ready_now(classify_async(gpu, store, images, chunk))
}

/// [`classify`], awaitable (the browser build).
pub async fn classify_async<'g>(
    gpu: &'g Gpu,
    store: &ParamStore<Recorder<'g>>,
    images: &[f32],
    chunk: usize,
) -> Result<(Rows, Rows)> {
    let count = images.len() / PIXELS;
    let chunk = chunk.min(count).max(1);
    let mut be = Recorder::new(gpu);
    let input = be.zeros(&[chunk, PIXELS])?;
    let net = Classifier::new(&mut be, store, chunk, &input)?;
    net.forward(&mut be, BnMode::Inference)?;
    be.input("images", &input);
    be.output("hidden", &net.hidden);
    be.output("logits", &net.logits);
    let mut program = Program::new(&mut be);
    let (mut features, mut probs) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for start in (0..count).step_by(chunk) {
        // The last chunk is padded with zeros; the extra rows are dropped.
        let n = chunk.min(count - start);
        let mut batch = images[start * PIXELS..(start + n) * PIXELS].to_vec();
        batch.resize(chunk * PIXELS, 0.0);
        program.write("images", &batch)?;
        let h = program
            .run_and_read_async(&Run::default(), "hidden")
            .await?;
        let l = program.read_async("logits").await?;
        for r in 0..n {
            features.push(
                h[r * FEATURES..(r + 1) * FEATURES]
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
            );
            let row = &l[r * CLASSES..(r + 1) * CLASSES];
            let top = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - top).exp()).collect();
            let z: f64 = e.iter().sum();
            probs.push(e.iter().map(|v| v / z).collect());
        }
    }
    Ok((features, probs))
}

/// Images of a dataset as floats in [-1, 1].
pub fn scaled(data: &Dataset) -> Vec<f32> {
    data.images
        .iter()
        .map(|&p| p as f32 / 127.5 - 1.0)
        .collect()
}

/// Saves the classifier and the test set's feature statistics (PyTorch layouts).
pub fn save<'g>(
    path: &Path,
    be: &mut Recorder<'g>,
    store: &ParamStore<Recorder<'g>>,
    meta: BTreeMap<String, String>,
    test_stats: &crate::eval::fid::Stats,
) -> Result<()> {
    let mut tensors = store.values(be)?;
    convert_layouts(&store.specs, &mut tensors, true);
    tensors.extend(test_stats.tensors("test_features"));
    let mut meta = meta;
    meta.insert("model".into(), MODEL.into());
    checkpoint::save(path, &Checkpoint { tensors, meta })
}

/// Loads a saved classifier into a GPU store, with the cached test-set statistics.
pub fn load<'g>(
    gpu: &'g Gpu,
    path: &Path,
) -> Result<(
    ParamStore<Recorder<'g>>,
    crate::eval::fid::Stats,
    Checkpoint,
)> {
    load_parsed(gpu, path, checkpoint::load(path)?)
}

/// [`load`] of a checkpoint already read (`path` names it in errors).
pub fn load_parsed<'g>(
    gpu: &'g Gpu,
    path: &Path,
    ckpt: Checkpoint,
) -> Result<(
    ParamStore<Recorder<'g>>,
    crate::eval::fid::Stats,
    Checkpoint,
)> {
    if ckpt.meta(path, "model")? != MODEL {
        return Err(Error::file(
            path,
            format!(
                "not a classifier checkpoint (model '{}')",
                ckpt.meta(path, "model")?
            ),
        ));
    }
    let specs = classifier_specs();
    let mut weights = ckpt.select(path, &specs, "")?;
    convert_layouts(&specs, &mut weights, false);
    let mut be = Recorder::new(gpu);
    let store = ParamStore::new(&mut be, specs)?;
    store.load(&mut be, &weights)?;
    let stats = crate::eval::fid::Stats::from_tensors(path, &ckpt, "test_features", FEATURES)?;
    Ok((store, stats, ckpt))
}

/// `train-classifier`: trains on `dir`'s training set, measures the test set, saves to `out`.
/// Returns the test accuracy.
pub fn train_and_save(gpu: &Gpu, dir: &Path, out: &Path, epochs: u64, seed: u64) -> Result<f64> {
    if epochs == 0 || epochs > 1000 {
        return Err(Error::Invalid(format!(
            "--epochs must be between 1 and 1000, got {epochs}"
        )));
    }
    let train_set = crate::data::load_dataset(dir, "train")?;
    let test_set = crate::data::load_dataset(dir, "t10k")?;
    let (mut be, training) = train(gpu, &train_set, epochs, seed, |step, loss, acc| {
        eprintln!(
            "step {step}: loss {loss:.4}, batch accuracy {:.1}%",
            acc * 100.0
        );
    })?;
    let (features, probs) = classify(gpu, &training.store, &scaled(&test_set), 500)?;
    let correct = probs
        .iter()
        .zip(&test_set.labels)
        .filter(|(p, l)| {
            (0..CLASSES).fold(0, |b, j| if p[j] > p[b] { j } else { b }) == **l as usize
        })
        .count();
    let accuracy = correct as f64 / test_set.count as f64;
    let stats = crate::eval::fid::Stats::from_features(&features);
    let meta: BTreeMap<String, String> = [
        ("epochs", epochs.to_string()),
        ("seed", seed.to_string()),
        ("test_accuracy", format!("{accuracy:.4}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    save(out, &mut be, &training.store, meta, &stats)?;
    Ok(accuracy)
}
