//! Shared test helpers: the GPU (a test fails with the adapter error when there is none), seeded
//! random data, NaN-filled outputs and the relative-error comparison.
#![allow(dead_code)]

use wgsl_gan::cpu;
use wgsl_gan::gpu::{Gpu, KernelStyle, Tensor};
use wgsl_gan::rng::SplitMix64;

pub fn gpu() -> Gpu {
    match Gpu::new(None) {
        Ok(g) => g,
        Err(e) => panic!("these tests need a GPU adapter: {e}"),
    }
}

/// One device per kernel style, so each test checks both families of variants (the CPU style
/// is what lavapipe runs by default; the GPU style must stay correct there too).
pub fn each_style() -> Vec<Gpu> {
    [KernelStyle::Gpu, KernelStyle::Cpu]
        .into_iter()
        .map(|style| {
            let mut g = gpu();
            g.style = style;
            eprintln!("kernel style {style:?}");
            g
        })
        .collect()
}

pub fn random(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..n)
        .map(|_| lo + (hi - lo) * r.next_f64() as f32)
        .collect()
}

/// The same data as a GPU tensor and a CPU tensor.
pub fn pair(gpu: &Gpu, data: &[f32], shape: &[usize]) -> (Tensor, cpu::Tensor) {
    (
        Tensor::from_slice(gpu, data, shape).unwrap(),
        cpu::Tensor::from_slice(data, shape).unwrap(),
    )
}

pub fn random_pair(gpu: &Gpu, seed: u64, shape: &[usize]) -> (Tensor, cpu::Tensor) {
    pair(gpu, &random(seed, shape.iter().product(), -1.0, 1.0), shape)
}

/// An output pair whose GPU side is filled with NaN, so an element the shader never writes fails.
pub fn nan_pair(gpu: &Gpu, shape: &[usize]) -> (Tensor, cpu::Tensor) {
    let n = shape.iter().product();
    (
        Tensor::from_slice(gpu, &vec![f32::NAN; n], shape).unwrap(),
        cpu::Tensor::zeros(shape),
    )
}

/// ||a - b|| / ||b|| (or ||a - b|| when b is all zeros); NaN anywhere gives infinity.
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return f64::INFINITY;
    }
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 { diff } else { diff / norm }
}

pub fn assert_close(gpu: &Gpu, g: &Tensor, c: &cpu::Tensor, tol: f64, what: &str) {
    let gv = g.read(gpu).unwrap();
    let cv = c.to_vec();
    let e = rel_err(&gv, &cv);
    assert!(e < tol, "{what}: relative error {e:e} >= {tol:e}");
}

/// A fresh folder under the system's temporary directory, unique to this test process.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgsl-gan-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A finished process's standard error as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An IDX file's bytes: magic, dimensions, data.
pub fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A small MNIST-format training set of `count` images in `dir/data` (images gzipped, labels
/// plain, as both forms must load); returns that folder.
pub fn training_set(dir: &std::path::Path, count: usize) -> std::path::PathBuf {
    training_set_variant(dir, count, 0)
}

/// Another training set of the same size for each `variant` (other pixels, same labels).
pub fn training_set_variant(
    dir: &std::path::Path,
    count: usize,
    variant: usize,
) -> std::path::PathBuf {
    use wgsl_gan::data::idx;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let pixels: Vec<u8> = (0..count * 784)
        .map(|i| ((i * 37 + i / 784 * 11 + variant * 101) % 256) as u8)
        .collect();
    let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
    let images = idx_bytes(idx::IMAGES_MAGIC, &[count as u32, 28, 28], &pixels);
    std::fs::write(data.join("train-images-idx3-ubyte.gz"), gzip(&images)).unwrap();
    std::fs::write(
        data.join("train-labels-idx1-ubyte"),
        idx_bytes(idx::LABELS_MAGIC, &[count as u32], &labels),
    )
    .unwrap();
    data
}
