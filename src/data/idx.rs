//! IDX files (MNIST's format): big-endian magic 0x0000_08_NN (u8 data, NN dimensions), then the
//! dimensions as u32, then the bytes. Every check names the file and the problem.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Magic number of an IDX file of u8 data in 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 data in 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Refuse to inflate past this (the MNIST training images are 47 MB).
const MAX_BYTES: u64 = 1 << 30;

/// Images [count, rows * cols] as bytes 0..=255 and labels 0..=9.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Pixels, `count * rows * cols` bytes, image after image, row by row.
    pub images: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Number of images.
    pub count: usize,
    /// Rows of each image (28 for MNIST).
    pub rows: usize,
    /// Columns of each image (28 for MNIST).
    pub cols: usize,
}

impl Dataset {
    /// The pixels packed 4 per u32 (little-endian), as the GPU gathers them.
    /// A digest of the images and labels (64-bit FNV-1a, hex): what identifies the training set
    /// in a checkpoint, so that a resume on other data (Fashion-MNIST has 60,000 images too) is
    /// refused. Not a cryptographic hash: it tells datasets apart, it does not authenticate them.
    pub fn digest(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in self.images.iter().chain(&self.labels) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The pixels packed 4 per u32 (little-endian), as the GPU gathers them.
    pub fn packed_images(&self) -> Vec<u32> {
        pack_bytes(&self.images)
    }

    /// The labels packed 4 per u32 (little-endian, zero-padded), as the GPU gathers them.
    pub fn packed_labels(&self) -> Vec<u32> {
        pack_bytes(&self.labels)
    }
}

fn pack_bytes(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// Reads a file, inflating it when it is gzipped (by its magic bytes, not its name).
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let raw = crate::io::assets::read(path)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    inflate_if_gzipped(path, raw)
}

/// `raw` inflated when it is gzipped; `path` names it in errors.
pub fn inflate_if_gzipped(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::file(path, format!("corrupt gzip data: {e}")))?;
        if out.len() as u64 > MAX_BYTES {
            return Err(Error::file(path, "inflates to more than 1 GiB"));
        }
        return Ok(out);
    }
    Ok(raw)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Parses an IDX file of u8 data with `dims` dimensions; returns (dimensions, data).
pub fn parse(path: &Path, bytes: &[u8], magic: u32) -> Result<(Vec<usize>, Vec<u8>)> {
    let dims = (magic & 0xff) as usize;
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(Error::file(
            path,
            format!(
                "truncated: {} bytes, shorter than the IDX header",
                bytes.len()
            ),
        ));
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(Error::file(
            path,
            format!("wrong magic number 0x{found:08x}, expected 0x{magic:08x}"),
        ));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|i| be_u32(bytes, 4 + 4 * i) as usize)
        .collect();
    let expected = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_add(header));
    match expected {
        Some(n) if n == bytes.len() => Ok((shape, bytes[header..].to_vec())),
        Some(n) => Err(Error::file(
            path,
            format!(
                "{} bytes, but dimensions {shape:?} need {n} ({})",
                bytes.len(),
                if bytes.len() < n {
                    "truncated"
                } else {
                    "trailing data"
                }
            ),
        )),
        None => Err(Error::file(path, format!("dimensions {shape:?} overflow"))),
    }
}

/// `dir/name` or `dir/name.gz`, whichever exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if crate::io::assets::is_file(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::file(
        &dir.join(format!("{name}.gz")),
        format!("missing (looked for {name} and {name}.gz)"),
    ))
}

/// Loads `split` ("train" or "t10k") from `dir`: `{split}-images-idx3-ubyte[.gz]` and
/// `{split}-labels-idx1-ubyte[.gz]`, 28x28 images, labels 0..9, equal counts.
pub fn load_dataset(dir: &Path, split: &str) -> Result<Dataset> {
    let images_path = find(dir, &format!("{split}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{split}-labels-idx1-ubyte"))?;
    let images = read_maybe_gzipped(&images_path)?;
    let labels = read_maybe_gzipped(&labels_path)?;
    parse_dataset(&images_path, &images, &labels_path, &labels)
}

/// A dataset from the bytes of its images and labels files (inflated); the paths name them in
/// errors. 28x28 images, labels 0..9, equal counts.
pub fn parse_dataset(
    images_path: &Path,
    images: &[u8],
    labels_path: &Path,
    labels: &[u8],
) -> Result<Dataset> {
    let (shape, images) = parse(images_path, images, IMAGES_MAGIC)?;
    if shape[1] != 28 || shape[2] != 28 {
        return Err(Error::file(
            images_path,
            format!("images are {}x{}, expected 28x28", shape[1], shape[2]),
        ));
    }
    if shape[0] == 0 {
        return Err(Error::file(images_path, "holds no images"));
    }
    let (lshape, labels) = parse(labels_path, labels, LABELS_MAGIC)?;
    if lshape[0] != shape[0] {
        return Err(Error::file(
            labels_path,
            format!("{} labels for {} images", lshape[0], shape[0]),
        ));
    }
    if let Some(i) = labels.iter().position(|&l| l > 9) {
        return Err(Error::file(
            labels_path,
            format!("label {} at index {i} is outside 0..9", labels[i]),
        ));
    }
    Ok(Dataset {
        images,
        labels,
        count: shape[0],
        rows: 28,
        cols: 28,
    })
}

/// The number of 28x28 images in an IDX file (gzipped or not), and the first `limit` of them
/// scaled to [-1, 1].
pub fn read_images(path: &Path, limit: usize) -> Result<(usize, Vec<f32>)> {
    let (shape, pixels) = parse(path, &read_maybe_gzipped(path)?, IMAGES_MAGIC)?;
    if shape[1] != 28 || shape[2] != 28 {
        return Err(Error::file(
            path,
            format!("images are {}x{}, expected 28x28", shape[1], shape[2]),
        ));
    }
    if shape[0] == 0 {
        return Err(Error::file(path, "holds no images"));
    }
    let n = shape[0].min(limit);
    let images = pixels[..n * 784]
        .iter()
        .map(|&p| p as f32 / 127.5 - 1.0)
        .collect();
    Ok((shape[0], images))
}

/// `count` 28x28 images (bytes) as an IDX ubyte file in MNIST's own format.
pub fn encode_images(pixels: &[u8], count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC, count as u32, 28, 28] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}
