//! Sanity of the quality metrics with the shipped classifier (assets/mnist-classifier.safetensors):
//! the test set against its own cached statistics is about 0, the training set close, uniform
//! noise far; one digit only covers one class.

mod common;

use std::path::Path;

use wgsl_gan::data::load_dataset;
use wgsl_gan::eval::Evaluator;
use wgsl_gan::eval::classifier::{self, scaled};
use wgsl_gan::rng::SplitMix64;

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets"))
}

#[test]
fn metrics_separate_real_digits_from_noise() {
    let gpu = common::gpu();
    let evaluator = Evaluator::load(&gpu, &assets().join("mnist-classifier.safetensors")).unwrap();
    let test = load_dataset(&assets().join("mnist"), "t10k").unwrap();
    let train = load_dataset(&assets().join("mnist"), "train").unwrap();

    let (features, probs) = evaluator.classify(&scaled(&test)).unwrap();
    // The shipped classifier's accuracy, recomputed from the file: what its metadata claims.
    let correct = probs
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| (0..10).fold(0, |b, j| if p[j] > p[b] { j } else { b }) == **l as usize)
        .count();
    let accuracy = correct as f64 / test.count as f64;
    let (_, _, ckpt) =
        classifier::load(&gpu, &assets().join("mnist-classifier.safetensors")).unwrap();
    let claimed: f64 = ckpt.meta["test_accuracy"].parse().unwrap();
    assert!(
        accuracy >= 0.992 && (accuracy - claimed).abs() < 5e-4,
        "test accuracy {accuracy}, metadata says {claimed}"
    );
    let own = evaluator.report(&features, &probs).unwrap();
    assert!(
        own.fid < 0.01,
        "test set vs its cached statistics: {}",
        own.fid
    );
    assert_eq!(own.coverage, 10);
    assert!(own.inception_score > 9.0, "{}", own.inception_score);

    let train_images = scaled(&train);
    let train_part = evaluator.evaluate(&train_images[..10_000 * 784]).unwrap();
    // Real digits the classifier was trained on: close to the test set (generators score 25-500).
    assert!(
        train_part.fid > own.fid && train_part.fid < 10.0,
        "training set: {}",
        train_part.fid
    );

    let mut r = SplitMix64::new(1);
    let noise: Vec<f32> = (0..2000 * 784)
        .map(|_| r.next_f64() as f32 * 2.0 - 1.0)
        .collect();
    let noise = evaluator.evaluate(&noise).unwrap();
    assert!(
        noise.fid > 100.0 && noise.fid > 20.0 * train_part.fid,
        "noise {} vs training {}",
        noise.fid,
        train_part.fid
    );

    // A "generator" that only makes threes.
    let threes: Vec<f32> = test
        .labels
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == 3)
        .flat_map(|(i, _)| {
            test.images[i * 784..(i + 1) * 784]
                .iter()
                .map(|&p| p as f32 / 127.5 - 1.0)
        })
        .collect();
    let one = evaluator.evaluate(&threes).unwrap();
    eprintln!(
        "test {:.4}, train {:.3}, noise {:.1}, threes {:.1}",
        own.fid, train_part.fid, noise.fid, one.fid
    );
    assert_eq!(one.coverage, 1, "{one}");
    assert!(one.fid > train_part.fid, "one digit: {}", one.fid);
}

#[test]
fn scoring_refuses_too_few_or_non_finite_images() {
    let gpu = common::gpu();
    let evaluator = Evaluator::load(&gpu, &assets().join("mnist-classifier.safetensors")).unwrap();
    for images in [vec![], vec![0.0; 784], vec![0.0; 784 * 2 + 5]] {
        let err = evaluator.evaluate(&images).unwrap_err().to_string();
        assert!(err.contains("at least 2 whole"), "{err}");
    }
    let mut nan = vec![0.0; 784 * 4];
    nan[900] = f32::NAN;
    let err = evaluator.evaluate(&nan).unwrap_err().to_string();
    assert!(err.contains("NaN"), "{err}");
}
