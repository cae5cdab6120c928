//! Images from a checkpoint's generator: `sample` (PNG grid, IDX file) and `eval --checkpoint`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::gan::model::GeneratorKind;
use crate::gan::trainer::{Sampler, generator_store};
use crate::gpu::Gpu;
use crate::io::{checkpoint, image};
use crate::nn::{Recorder, convert_layouts};

/// `count` images [count, 784] in [-1, 1] from a checkpoint's generator (inference mode).
pub fn generate(gpu: &Gpu, path: &Path, count: usize, seed: u64) -> Result<Vec<f32>> {
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
    Sampler::new(gpu, kind, &store, count, seed)?.generate()
}

/// `sample`: a PNG grid and/or an IDX file of a checkpoint's generated images.
pub fn sample(
    gpu: &Gpu,
    path: &Path,
    count: usize,
    seed: u64,
    png: Option<&Path>,
    idx: Option<&Path>,
) -> Result<()> {
    if png.is_none() && idx.is_none() {
        return Err(Error::Invalid("give --png FILE and/or --idx FILE".into()));
    }
    let images = generate(gpu, path, count, seed)?;
    if let Some(png) = png {
        image::write_grid(png, &images, count, (count as f64).sqrt().ceil() as usize)?;
    }
    if let Some(idx) = idx {
        crate::data::write_images(idx, &image::to_bytes(&images), count)?;
    }
    Ok(())
}
