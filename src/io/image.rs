//! Sample grids as PNG.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Pixels in [-1, 1] to bytes.
pub fn to_bytes(images: &[f32]) -> Vec<u8> {
    images
        .iter()
        .map(|&v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8)
        .collect()
}

/// A grid of `count` 28x28 images (bytes), `columns` wide, 2-pixel gaps, as grey PNG bytes.
pub fn grid_png(pixels: &[u8], count: usize, columns: usize) -> Result<Vec<u8>> {
    const SIDE: usize = 28;
    const GAP: usize = 2;
    let columns = columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns);
    let (w, h) = (columns * (SIDE + GAP) + GAP, rows * (SIDE + GAP) + GAP);
    let mut canvas = vec![40u8; w * h];
    for i in 0..count {
        let (ox, oy) = (
            GAP + (i % columns) * (SIDE + GAP),
            GAP + (i / columns) * (SIDE + GAP),
        );
        for y in 0..SIDE {
            let src = &pixels[i * SIDE * SIDE + y * SIDE..][..SIDE];
            canvas[(oy + y) * w + ox..][..SIDE].copy_from_slice(src);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w as u32, h as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::Invalid(format!("PNG encoding failed: {e}")))?;
        writer
            .write_image_data(&canvas)
            .map_err(|e| Error::Invalid(format!("PNG encoding failed: {e}")))?;
    }
    Ok(out)
}

pub fn write_grid(path: &Path, images: &[f32], count: usize, columns: usize) -> Result<()> {
    write_atomic(path, &grid_png(&to_bytes(images), count, columns)?)
}
