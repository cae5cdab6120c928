//! The quality metrics' arithmetic on the CPU: eigendecomposition, Frechet distance, inception
//! score, coverage.

use wgsl_gan::eval::fid::{
    Stats, class_shares, coverage, frechet_distance, inception_score, symmetric_eigen,
};
use wgsl_gan::rng::SplitMix64;

fn features(n: usize, dim: usize, seed: u64, shift: f64, scale: f64) -> Vec<Vec<f64>> {
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let z: Vec<f64> = (0..dim).map(|_| r.next_f64() * 2.0 - 1.0).collect();
            // Correlated features: x_i = z_i + 0.5 z_{i-1}.
            (0..dim)
                .map(|i| scale * (z[i] + if i > 0 { 0.5 * z[i - 1] } else { 0.0 }) + shift)
                .collect()
        })
        .collect()
}

#[test]
fn jacobi_reconstructs_a_symmetric_matrix() {
    let n = 12;
    let s = Stats::from_features(&features(200, n, 1, 0.0, 1.0));
    let (vals, vecs) = symmetric_eigen(&s.cov, n);
    for i in 0..n {
        for j in 0..n {
            let r: f64 = (0..n)
                .map(|k| vecs[i * n + k] * vals[k] * vecs[j * n + k])
                .sum();
            assert!(
                (r - s.cov[i * n + j]).abs() < 1e-9,
                "({i},{j}): {r} vs {}",
                s.cov[i * n + j]
            );
        }
    }
    assert!(
        vals.iter().all(|&v| v > 0.0),
        "a covariance of 200 samples in 12 dims is positive definite"
    );
}

#[test]
fn frechet_distance_behaves() {
    let dim = 16;
    let a = Stats::from_features(&features(4000, dim, 2, 0.0, 1.0));
    assert!(
        frechet_distance(&a, &a).unwrap().abs() < 1e-8,
        "a distribution against itself"
    );
    let b = Stats::from_features(&features(4000, dim, 3, 0.0, 1.0));
    let same_law = frechet_distance(&a, &b).unwrap();
    assert!(
        same_law > 0.0 && same_law < 0.1,
        "two samples of one law: {same_law}"
    );
    // The same samples shifted by 1 in every dimension: exactly dim apart.
    let c = Stats::from_features(&features(4000, dim, 2, 1.0, 1.0));
    let shifted = frechet_distance(&a, &c).unwrap();
    assert!(
        (shifted - dim as f64).abs() < 1e-6,
        "shift: {shifted} vs {dim}"
    );
    let d = Stats::from_features(&features(4000, dim, 4, 0.0, 3.0));
    assert!(
        frechet_distance(&a, &d).unwrap() > 10.0 * same_law.max(0.01),
        "a wider law is far away"
    );
    // Symmetric up to rounding.
    assert!((frechet_distance(&a, &d).unwrap() - frechet_distance(&d, &a).unwrap()).abs() < 1e-6);
}

#[test]
fn inception_score_and_coverage_behave() {
    let confident_all: Vec<Vec<f64>> = (0..1000)
        .map(|i| {
            (0..10)
                .map(|c| if c == i % 10 { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    assert!((inception_score(&confident_all) - 10.0).abs() < 1e-9);
    assert_eq!(coverage(&class_shares(&confident_all), 0.05), 10);
    let one_digit: Vec<Vec<f64>> = (0..1000)
        .map(|_| {
            (0..10)
                .map(|c| if c == 3 { 0.9 } else { 0.1 / 9.0 })
                .collect()
        })
        .collect();
    assert!((inception_score(&one_digit) - 1.0).abs() < 1e-9);
    assert_eq!(coverage(&class_shares(&one_digit), 0.05), 1);
    assert_eq!(class_shares(&one_digit)[3], 1.0);
}

#[test]
fn frechet_distance_refuses_what_it_cannot_measure() {
    let a = Stats::from_features(&features(50, 4, 1, 0.0, 1.0));
    let other_dim = Stats::from_features(&features(50, 3, 2, 0.0, 1.0));
    let err = frechet_distance(&a, &other_dim).unwrap_err().to_string();
    assert!(err.contains("4- and 3-dimensional"), "{err}");
    // No features at all: dimension 0, not a perfect score.
    let empty = Stats::from_features(&[]);
    let err = frechet_distance(&empty, &empty).unwrap_err().to_string();
    assert!(err.contains("0- and 0-dimensional"), "{err}");
    // NaN features: an error, never 0 (f64::max(NaN, 0) is 0).
    let mut nan = features(50, 4, 3, 0.0, 1.0);
    nan[7][2] = f64::NAN;
    let err = frechet_distance(&Stats::from_features(&nan), &a)
        .unwrap_err()
        .to_string();
    assert!(err.contains("NaN"), "{err}");
}
