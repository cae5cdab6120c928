//! NumPy's `.npy` format for float32 arrays: `sample --noise` reads latent vectors [N, 100],
//! `--noise-out` and `--npy` write them and the images. Version 1.0 to 3.0 headers are read;
//! little-endian `<f4`, C order only.

use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The array [rows, cols] in `bytes`, row-major; `cols` must be `want_cols`.
pub fn parse_f32_2d(path: &Path, bytes: &[u8], want_cols: usize) -> Result<(usize, Vec<f32>)> {
    let bad = |problem: String| Error::file(path, format!("not a usable .npy file: {problem}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("no NumPy magic string".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start.saturating_add(header_len))
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated or non-text header".into()))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[at..].trim_start())
    };
    let descr = field("descr").ok_or_else(|| bad("no 'descr' in the header".into()))?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
        return Err(bad(format!(
            "dtype {}, expected little-endian float32 ('<f4')",
            descr.split(',').next().unwrap_or(descr)
        )));
    }
    if !field("fortran_order").is_some_and(|v| v.starts_with("False")) {
        return Err(bad("Fortran order; write the array in C order".into()));
    }
    let shape = field("shape").ok_or_else(|| bad("no 'shape' in the header".into()))?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(format!("malformed shape {shape}")))?;
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse()
                .map_err(|_| bad(format!("malformed shape ({inner})")))
        })
        .collect::<Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad(format!("shape ({inner}), expected (N, {want_cols})")));
    };
    if cols != want_cols || rows == 0 {
        return Err(bad(format!(
            "shape ({inner}), expected (N, {want_cols}) with N >= 1"
        )));
    }
    let data = &bytes[start + header_len..];
    let want = rows.checked_mul(cols).and_then(|n| n.checked_mul(4));
    if want != Some(data.len()) {
        return Err(bad(format!(
            "{} data bytes for shape ({rows}, {cols})",
            data.len()
        )));
    }
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!("value {i} is not finite")));
    }
    Ok((rows, values))
}

/// Reads a [rows, `want_cols`] float32 array.
pub fn read_f32_2d(path: &Path, want_cols: usize) -> Result<(usize, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e.to_string()))?;
    parse_f32_2d(path, &bytes, want_cols)
}

/// The .npy bytes (version 1.0) of `values` as a float32 array of `shape` (C order).
pub fn encode_f32(values: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let dims = if shape.len() == 1 {
        format!("{},", dims[0])
    } else {
        dims.join(", ")
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic, version, length and header (ending in a newline) fill a multiple of 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in values {
        out.extend(v.to_le_bytes());
    }
    out
}
