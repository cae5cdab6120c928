//! Sample grids as PNG, and the animated PNG of a run's grids.

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

/// `samples/progress.png`: an animated PNG of the run's grids in `samples` (every
/// `epoch_NNN.png`, then `final.png` if there is one), 0.6 s a frame, the last held 2 s. Browsers
/// and README renderers play it; other viewers show the first frame. Returns the number of
/// frames (0: no grids yet, nothing written).
pub fn write_progress(samples: &Path) -> Result<usize> {
    let mut names: Vec<String> = std::fs::read_dir(samples)
        .map_err(|e| Error::file(samples, e.to_string()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("epoch_") && n.ends_with(".png"))
        .collect();
    names.sort();
    if samples.join("final.png").is_file() {
        names.push("final.png".into());
    }
    let mut frames = Vec::new();
    let mut size = None;
    for name in &names {
        let path = samples.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::file(&path, e.to_string()))?;
        let bad = |e: png::DecodingError| Error::file(&path, format!("not a readable PNG: {e}"));
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .map_err(bad)?;
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader.next_frame(&mut buf).map_err(bad)?;
        if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Eight {
            return Err(Error::file(&path, "not an 8-bit grey grid"));
        }
        if *size.get_or_insert((info.width, info.height)) != (info.width, info.height) {
            return Err(Error::file(&path, "its size differs from the other grids'"));
        }
        buf.truncate(info.buffer_size());
        frames.push(buf);
    }
    let Some((w, h)) = size else {
        return Ok(0);
    };
    let encode = |e: png::EncodingError| Error::Invalid(format!("APNG encoding failed: {e}"));
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .set_animated(frames.len() as u32, 0)
            .map_err(encode)?;
        let mut writer = encoder.write_header().map_err(encode)?;
        for (i, frame) in frames.iter().enumerate() {
            let tenths = if i + 1 == frames.len() { 20 } else { 6 };
            writer.set_frame_delay(tenths, 10).map_err(encode)?;
            writer.write_image_data(frame).map_err(encode)?;
        }
        writer.finish().map_err(encode)?;
    }
    write_atomic(&samples.join("progress.png"), &out)?;
    Ok(frames.len())
}
