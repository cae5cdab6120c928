//! Images from a checkpoint's generator: `sample` (PNG grid, IDX file) and `eval --checkpoint`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::gan::model::{GeneratorKind, LATENT};
use crate::gan::trainer::{SampleNoise, Sampler, generator_store};
use crate::gpu::Gpu;
use crate::io::{checkpoint, image, npy};
use crate::nn::{Recorder, convert_layouts};

/// `count` images [count, 784] in [-1, 1] from a checkpoint's generator (inference mode).
pub fn generate(gpu: &Gpu, path: &Path, count: usize, seed: u64) -> Result<Vec<f32>> {
    Ok(generate_with(gpu, path, count, seed, None)?.0)
}

/// Images and the latent vectors [count, 100] they came from: `z` when given (count = its
/// rows), else drawn from `seed`.
pub fn generate_with(
    gpu: &Gpu,
    path: &Path,
    count: usize,
    seed: u64,
    z: Option<&[f32]>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    if count == 0 || count > 65_536 {
        return Err(Error::Invalid(format!(
            "--count must be between 1 and 65536, got {count}"
        )));
    }
    let ckpt = checkpoint::load(path)?;
    let model = ckpt.meta(path, "model")?;
    let kind = GeneratorKind::from_model_name(model).ok_or_else(|| {
        Error::file(
            path,
            format!("checkpoint of model '{model}', expected a GAN ('mlp-gan' or 'dcgan')"),
        )
    })?;
    let specs = kind.specs();
    let mut weights = ckpt.select(path, &specs, "")?;
    convert_layouts(&specs, &mut weights, false);
    let mut be = Recorder::new(gpu);
    let store = generator_store(&mut be, kind)?;
    store.load(&mut be, &weights)?;
    let noise = match z {
        Some(_) => SampleNoise::Given,
        None => SampleNoise::Drawn { seed },
    };
    Sampler::with_noise(gpu, kind, &store, count, noise)?.generate_from(z)
}

/// Where `sample` writes, and the noise it reads.
pub struct SampleFiles<'a> {
    pub png: Option<&'a Path>,
    pub idx: Option<&'a Path>,
    /// Latent vectors to use (.npy, float32 [N, 100]) instead of drawing `count` from the seed.
    pub noise: Option<&'a Path>,
    /// Where to write the latent vectors used (.npy).
    pub noise_out: Option<&'a Path>,
    /// Where to write the images as float32 [N, 28, 28] in [-1, 1] (.npy), unquantised.
    pub npy: Option<&'a Path>,
}

/// `sample`: a PNG grid and/or an IDX file of a checkpoint's generated images.
pub fn sample(
    gpu: &Gpu,
    path: &Path,
    count: Option<usize>,
    seed: u64,
    files: &SampleFiles<'_>,
) -> Result<()> {
    if files.png.is_none()
        && files.idx.is_none()
        && files.npy.is_none()
        && files.noise_out.is_none()
    {
        return Err(Error::Invalid(
            "give --png FILE, --idx FILE, --npy FILE and/or --noise-out FILE".into(),
        ));
    }
    let given = files
        .noise
        .map(|p| npy::read_f32_2d(p, LATENT))
        .transpose()?;
    let count = match (&given, count) {
        (Some((rows, _)), Some(c)) if c != *rows => {
            return Err(Error::Invalid(format!(
                "--count {c} but --noise holds {rows} latent vectors; drop --count"
            )));
        }
        (Some((rows, _)), _) => *rows,
        (None, c) => c.unwrap_or(64),
    };
    let (images, z) = generate_with(gpu, path, count, seed, given.as_ref().map(|g| &g.1[..]))?;
    if let Some(png) = files.png {
        image::write_grid(png, &images, count, (count as f64).sqrt().ceil() as usize)?;
    }
    if let Some(idx) = files.idx {
        crate::data::write_images(idx, &image::to_bytes(&images), count)?;
    }
    if let Some(out) = files.npy {
        npy::write_f32(out, &images, &[count, 28, 28])?;
    }
    if let Some(out) = files.noise_out {
        npy::write_f32(out, &z, &[count, LATENT])?;
    }
    Ok(())
}
