//! Frechet distance between feature distributions, inception-style score and class coverage,
//! in f64 on the CPU. The covariance square root comes from a symmetric eigendecomposition
//! (cyclic Jacobi), small and exact enough for 128 x 128.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::checkpoint::Checkpoint;
use crate::nn::NamedValues;

/// Mean and covariance (unbiased) of n-dimensional features.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub dim: usize,
    pub mean: Vec<f64>,
    /// Row-major [dim, dim].
    pub cov: Vec<f64>,
}

impl Stats {
    pub fn from_features(features: &[Vec<f64>]) -> Stats {
        let n = features.len().max(1);
        let dim = features.first().map_or(0, Vec::len);
        let mut mean = vec![0.0; dim];
        for f in features {
            mean.iter_mut().zip(f).for_each(|(m, x)| *m += x / n as f64);
        }
        let mut cov = vec![0.0; dim * dim];
        for f in features {
            let d: Vec<f64> = f.iter().zip(&mean).map(|(x, m)| x - m).collect();
            for i in 0..dim {
                for j in i..dim {
                    cov[i * dim + j] += d[i] * d[j];
                }
            }
        }
        let denom = (n.max(2) - 1) as f64;
        for i in 0..dim {
            for j in i..dim {
                cov[i * dim + j] /= denom;
                cov[j * dim + i] = cov[i * dim + j];
            }
        }
        Stats { dim, mean, cov }
    }

    /// As checkpoint tensors `{prefix}.mean` [dim] and `{prefix}.cov` [dim, dim].
    pub fn tensors(&self, prefix: &str) -> NamedValues {
        vec![
            (
                format!("{prefix}.mean"),
                vec![self.dim],
                self.mean.iter().map(|&v| v as f32).collect(),
            ),
            (
                format!("{prefix}.cov"),
                vec![self.dim, self.dim],
                self.cov.iter().map(|&v| v as f32).collect(),
            ),
        ]
    }

    pub fn from_tensors(path: &Path, ckpt: &Checkpoint, prefix: &str, dim: usize) -> Result<Stats> {
        let get = |name: String, shape: Vec<usize>| -> Result<Vec<f64>> {
            let (_, s, v) = ckpt
                .tensors
                .iter()
                .find(|(n, _, _)| *n == name)
                .ok_or_else(|| {
                    Error::file(path, format!("lacks the cached statistics '{name}'"))
                })?;
            if *s != shape {
                return Err(Error::file(
                    path,
                    format!("'{name}' has shape {s:?}, expected {shape:?}"),
                ));
            }
            Ok(v.iter().map(|&x| x as f64).collect())
        };
        Ok(Stats {
            dim,
            mean: get(format!("{prefix}.mean"), vec![dim])?,
            cov: get(format!("{prefix}.cov"), vec![dim, dim])?,
        })
    }
}

/// Eigenvalues and eigenvectors (columns of the row-major result) of a symmetric matrix.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        let scale: f64 = (0..n)
            .map(|i| a[i * n + i].powi(2))
            .sum::<f64>()
            .max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

/// ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2). An error, never a score, for
/// statistics of different or zero dimension, or holding NaN or infinity.
pub fn frechet_distance(x: &Stats, y: &Stats) -> Result<f64> {
    let n = x.dim;
    if n == 0 || y.dim != n {
        return Err(Error::Invalid(format!(
            "Frechet distance between {}- and {}-dimensional features",
            x.dim, y.dim
        )));
    }
    let finite = |s: &Stats| s.mean.iter().chain(&s.cov).all(|v| v.is_finite());
    if !finite(x) || !finite(y) {
        return Err(Error::NonFinite(
            "the features hold NaN or infinity: no Frechet distance".into(),
        ));
    }
    let diff: f64 = x
        .mean
        .iter()
        .zip(&y.mean)
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    let (vals, vecs) = symmetric_eigen(&x.cov, n);
    // S1^1/2 = V diag(sqrt(l)) V^T
    let mut root = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            root[i * n + j] = (0..n)
                .map(|k| vecs[i * n + k] * vals[k].max(0.0).sqrt() * vecs[j * n + k])
                .sum();
        }
    }
    let m = matmul(&matmul(&root, &y.cov, n), &root, n);
    let sym: Vec<f64> = (0..n * n)
        .map(|k| 0.5 * (m[k] + m[(k % n) * n + k / n]))
        .collect();
    let (mvals, _) = symmetric_eigen(&sym, n);
    let tr_sqrt: f64 = mvals.iter().map(|&l| l.max(0.0).sqrt()).sum();
    let tr = |c: &[f64]| (0..n).map(|i| c[i * n + i]).sum::<f64>();
    let d = diff + tr(&x.cov) + tr(&y.cov) - 2.0 * tr_sqrt;
    if !d.is_finite() {
        return Err(Error::NonFinite(format!("the Frechet distance is {d}")));
    }
    // Rounding can take a distance of 0 slightly below it.
    Ok(d.max(0.0))
}

/// exp(E_x KL(p(y|x) || p(y))): between 1 and the number of classes.
pub fn inception_score(probs: &[Vec<f64>]) -> f64 {
    let classes = probs.first().map_or(0, Vec::len);
    let n = probs.len().max(1) as f64;
    let marginal: Vec<f64> = (0..classes)
        .map(|c| probs.iter().map(|p| p[c]).sum::<f64>() / n)
        .collect();
    let kl: f64 = probs
        .iter()
        .map(|p| {
            p.iter()
                .zip(&marginal)
                .filter(|(q, _)| **q > 0.0)
                .map(|(q, m)| q * (q.ln() - m.max(1e-300).ln()))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n;
    kl.exp()
}

/// Share of the samples predicted as each class.
pub fn class_shares(probs: &[Vec<f64>]) -> Vec<f64> {
    let classes = probs.first().map_or(0, Vec::len);
    let mut counts = vec![0.0; classes];
    for p in probs {
        let arg = (0..classes).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        counts[arg] += 1.0;
    }
    counts
        .iter()
        .map(|c| c / probs.len().max(1) as f64)
        .collect()
}

/// Classes that get at least `min_share` of the samples.
pub fn coverage(shares: &[f64], min_share: f64) -> usize {
    shares.iter().filter(|&&s| s >= min_share).count()
}
