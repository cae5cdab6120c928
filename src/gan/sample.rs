//! Images from a checkpoint's generator: `sample` (PNG grid, IDX file) and `eval --checkpoint`.

use std::path::Path;

use crate::data::MAX_IMAGES;
use crate::error::{Error, Result};
use crate::gan::checkpoint::{has_ema, is_conditional};
use crate::gan::ema::{averaged_name, ema_specs};
use crate::gan::generator::GeneratorKind;
use crate::gan::model::cycled_labels;
use crate::gan::model::{CLASSES, LATENT};
use crate::gan::trainer::{SampleNoise, Sampler, generator_store};
use crate::gpu::{Gpu, ready_now};
use crate::io::{checkpoint, image, npy};
use crate::nn::{Recorder, convert_layouts};

/// Which digits a class-conditional generator draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digits {
    /// 0, 1, ..., 9, 0, 1, ...: every digit alike (the default).
    Cycled,
    /// Only this one.
    One(u8),
    /// A 10x10 grid: row r is digit r (100 images).
    All,
}

impl Digits {
    /// The labels of `count` images.
    pub fn labels(self, count: usize) -> Vec<f32> {
        match self {
            Digits::Cycled => cycled_labels(count),
            Digits::One(d) => vec![f32::from(d); count],
            Digits::All => (0..count).map(|i| (i / 10 % 10) as f32).collect(),
        }
    }
}

/// What to generate from a checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub count: usize,
    /// Noise seed, when `z` is not given.
    pub seed: u64,
    /// The latent vectors [count, 100], instead of drawn ones.
    pub z: Option<&'a [f32]>,
    /// Also return the latent vectors used.
    pub keep_latents: bool,
    /// A class-conditional checkpoint's digits (default: 0..9 in turn).
    pub digits: Option<Digits>,
    /// Draw with the generator's moving average when the checkpoint holds one (`train --ema`);
    /// `false` (`--no-ema`): with the generator's own weights.
    pub ema: bool,
}

/// What [`generate_with`] made.
pub struct Generated {
    /// Images [count, 784] in [-1, 1].
    pub images: Vec<f32>,
    /// The latent vectors [count, 100] used, when asked for (`keep_latents`); else empty.
    pub latents: Vec<f32>,
    /// Whether they come from the generator's moving average.
    pub averaged: bool,
}

/// What `sample` and `eval` say about the weights they drew with, when it is the average.
pub fn averaged_note(path: &Path) -> String {
    format!(
        "generator: the moving average of the weights in {} (generator_ema.*; --no-ema for the generator's own)",
        path.display()
    )
}

impl Request<'_> {
    /// `count` images from noise drawn from `seed`.
    pub fn drawn(count: usize, seed: u64) -> Request<'static> {
        Request {
            count,
            seed,
            z: None,
            keep_latents: false,
            digits: None,
            ema: true,
        }
    }
}

/// `count` images from a checkpoint's generator (inference mode; its moving average if it has
/// one and `ema`); a class-conditional one draws the digits 0..9 in turn.
pub fn generate(gpu: &Gpu, path: &Path, count: usize, seed: u64, ema: bool) -> Result<Generated> {
    generate_with(
        gpu,
        path,
        &Request {
            ema,
            ..Request::drawn(count, seed)
        },
    )
}

/// Images, and with `keep_latents` the latent vectors [count, 100] they came from: `z` when
/// given (count = its rows), else drawn from `seed`.
pub fn generate_with(gpu: &Gpu, path: &Path, request: &Request<'_>) -> Result<Generated> {
    let count = request.count;
    crate::error::check_range("--count", count, 1, MAX_IMAGES)?;
    let ckpt = checkpoint::load(path)?;
    let (images, z) = ready_now(generate_from_checkpoint(gpu, path, &ckpt, request))?;
    // Huge latent values (or weights) can overflow to infinity and NaN inside the generator:
    // that is an error, not a black image.
    let bad = images.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        let source = match request.z {
            Some(_) => "the latent vectors given (--noise)",
            None => "the generator's weights",
        };
        return Err(Error::file(
            path,
            format!(
                "{bad} of the {} generated values are not finite (NaN or infinite): {source} \
                 are out of range for this generator; nothing was written",
                images.len()
            ),
        ));
    }
    Ok(Generated {
        images,
        latents: z,
        averaged: request.ema && has_ema(&ckpt),
    })
}

/// [`generate_with`] on a checkpoint already read (`path` names it in errors); awaitable, for the
/// browser build.
pub async fn generate_from_checkpoint(
    gpu: &Gpu,
    path: &Path,
    ckpt: &checkpoint::Checkpoint,
    request: &Request<'_>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let conditional = is_conditional(ckpt);
    if request.digits.is_some() && !conditional {
        return Err(Error::file(
            path,
            "not a class-conditional checkpoint (`train --conditional` makes one): --digit needs one",
        ));
    }
    let model = ckpt.meta(path, "model")?;
    let kind = GeneratorKind::from_model_name(model).ok_or_else(|| {
        Error::file(
            path,
            format!("checkpoint of model '{model}', expected a GAN ('mlp-gan' or 'dcgan')"),
        )
    })?;
    let specs = kind.specs(conditional);
    let mut weights = match request.ema && has_ema(ckpt) {
        true => ckpt
            .select(path, &ema_specs(&specs), "")?
            .into_iter()
            .map(|(n, s, v)| (averaged_name(&n).unwrap_or(n), s, v))
            .collect(),
        false => ckpt.select(path, &specs, "")?,
    };
    convert_layouts(&specs, &mut weights, false);
    let mut be = Recorder::new(gpu);
    let store = generator_store(&mut be, kind, conditional)?;
    store.load(&mut be, &weights)?;
    let noise = match request.z {
        Some(_) => SampleNoise::Given,
        None => SampleNoise::Drawn { seed: request.seed },
    };
    let count = request.count;
    let labels = conditional.then(|| request.digits.unwrap_or(Digits::Cycled).labels(count));
    Sampler::with_noise(gpu, kind, &store, count, noise, labels)?
        .generate_from_async(request.z, request.keep_latents)
        .await
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
    /// Instead of independent samples: rows walking the latent space between random points.
    pub interpolate: bool,
    /// The digits of a class-conditional checkpoint (`--digit`).
    pub digits: Option<Digits>,
    /// Use the generator's moving average when the checkpoint has one (not `--no-ema`).
    pub ema: bool,
}

/// Rows and steps of `sample --interpolate`.
pub const WALK_ROWS: usize = 8;
pub const WALK_STEPS: usize = 10;

/// Latent vectors [WALK_ROWS * WALK_STEPS, 100]: row r walks from point r to point r + 1 of
/// WALK_ROWS + 1 standard normal points (drawn from `seed`) by spherical interpolation, which
/// keeps the intermediate vectors at the norm typical of the prior (a straight line would pass
/// through shorter, atypical ones).
pub fn latent_walk(seed: u64) -> Vec<f32> {
    let points: Vec<Vec<f64>> = (0..=WALK_ROWS as u32)
        .map(|p| {
            (0..LATENT as u32)
                .map(|i| f64::from(crate::rng::normal_at(seed, u32::MAX - 1 - p, i)))
                .collect()
        })
        .collect();
    let mut z = Vec::with_capacity(WALK_ROWS * WALK_STEPS * LATENT);
    for r in 0..WALK_ROWS {
        let (a, b) = (&points[r], &points[r + 1]);
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cos = a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (norm(a) * norm(b));
        let omega = cos.clamp(-1.0, 1.0).acos();
        for s in 0..WALK_STEPS {
            let t = s as f64 / (WALK_STEPS - 1) as f64;
            let (wa, wb) = if omega < 1e-6 {
                (1.0 - t, t)
            } else {
                (
                    ((1.0 - t) * omega).sin() / omega.sin(),
                    (t * omega).sin() / omega.sin(),
                )
            };
            z.extend(a.iter().zip(b).map(|(x, y)| (wa * x + wb * y) as f32));
        }
    }
    z
}

/// `sample`: a PNG grid and/or an IDX file of a checkpoint's generated images.
pub fn sample(
    gpu: &Gpu,
    path: &Path,
    mut count: Option<usize>,
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
    let outputs = [
        ("--png", files.png),
        ("--idx", files.idx),
        ("--npy", files.npy),
        ("--noise-out", files.noise_out),
    ];
    for (i, (flag, a)) in outputs.iter().enumerate() {
        for (other, b) in &outputs[i + 1..] {
            if let (Some(a), Some(b)) = (a, b)
                && same_file(a, b)
            {
                return Err(Error::Invalid(format!(
                    "{flag} and {other} name the same file ({}): give each output its own path",
                    a.display()
                )));
            }
        }
        if let (Some(a), Some(noise)) = (a, files.noise)
            && same_file(a, noise)
        {
            return Err(Error::Invalid(format!(
                "{flag} would overwrite --noise ({}): give it another path",
                a.display()
            )));
        }
    }
    let mut given = files
        .noise
        .map(|p| npy::read_f32_2d(p, LATENT))
        .transpose()?;
    if let (Some(path), Some((rows, _))) = (files.noise, &given)
        && *rows > MAX_IMAGES
    {
        return Err(Error::file(
            path,
            format!("holds {rows} latent vectors (--noise); sample takes at most {MAX_IMAGES}"),
        ));
    }
    if files.interpolate {
        if given.is_some() || count.is_some() {
            return Err(Error::Invalid(
                "--interpolate makes its own latent walk: drop --noise and --count".into(),
            ));
        }
        given = Some((WALK_ROWS * WALK_STEPS, latent_walk(seed)));
    }
    if files.digits == Some(Digits::All) {
        if given.is_some() || count.is_some_and(|c| c != 100) {
            return Err(Error::Invalid(
                "--digit all makes a 10x10 grid of 100 images: drop --count, --noise and --interpolate".into(),
            ));
        }
        count = Some(100);
    }
    let count = match (&given, count) {
        (Some((rows, _)), Some(c)) if c != *rows => {
            return Err(Error::Invalid(format!(
                "--count {c} but --noise holds {rows} latent vectors; drop --count"
            )));
        }
        (Some((rows, _)), _) => *rows,
        (None, c) => c.unwrap_or(64),
    };
    let given = given.as_ref().map(|g| &g.1[..]);
    let request = Request {
        count,
        seed,
        z: given,
        keep_latents: files.noise_out.is_some(),
        digits: files.digits,
        ema: files.ema,
    };
    let generated = generate_with(gpu, path, &request)?;
    if generated.averaged {
        eprintln!("{}", averaged_note(path));
    }
    let (images, z) = (generated.images, generated.latents);
    // Every file is encoded first and written all or none.
    let mut files_out: Vec<(&Path, Vec<u8>, String)> = Vec::new();
    if let Some(png) = files.png {
        let columns = if files.interpolate {
            WALK_STEPS
        } else if files.digits == Some(Digits::All) {
            CLASSES
        } else {
            (count as f64).sqrt().ceil() as usize
        };
        let bytes = image::grid_png(&image::to_bytes(&images), count, columns)?;
        files_out.push((png, bytes, format!("{count} images, {columns} per row")));
    }
    if let Some(idx) = files.idx {
        let bytes = crate::data::encode_images(&image::to_bytes(&images), count);
        files_out.push((idx, bytes, format!("{count} images, IDX")));
    }
    if let Some(out) = files.npy {
        let bytes = npy::encode_f32(&images, &[count, 28, 28]);
        files_out.push((out, bytes, format!("float32 [{count}, 28, 28]")));
    }
    if let Some(out) = files.noise_out {
        let bytes = npy::encode_f32(&z, &[count, LATENT]);
        files_out.push((out, bytes, format!("float32 [{count}, {LATENT}]")));
    }
    let writes: Vec<(&Path, &[u8])> = files_out.iter().map(|(p, b, _)| (*p, &b[..])).collect();
    crate::io::write_all_atomic(&writes)?;
    for (path, _, what) in &files_out {
        println!("wrote {} ({what})", path.display());
    }
    Ok(())
}

/// Whether two paths name one file: the same name in the same folder, however spelled.
fn same_file(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = std::fs::canonicalize(parent.unwrap_or(Path::new("."))).ok()?;
        Some(dir.join(p.file_name()?))
    };
    a == b || resolved(a).is_some_and(|r| Some(r) == resolved(b))
}
