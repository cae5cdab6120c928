//! Checkpoints as safetensors: both networks (PyTorch names and layouts), batch-norm running
//! statistics, Adam's moments ("adam_m." / "adam_v." + name), and the run's state and config as
//! string metadata. Loading checks the format, the model, and every tensor's dtype and shape.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::nn::{NamedValues, ParamSpec};

pub const FORMAT: &str = "wgsl-gan-checkpoint-1";

/// FNV-1a (64-bit) over the metadata and every tensor's name, shape and bytes, in name order:
/// safetensors has no checksum of its own, and a flipped bit in the data would otherwise load as a
/// valid float.
fn checksum(tensors: &NamedValues, meta: &BTreeMap<String, String>) -> String {
    let mut sorted: Vec<&(String, Vec<usize>, Vec<f32>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &byte in bytes {
            h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (k, v) in meta.iter().filter(|(k, _)| *k != "checksum") {
        eat(k.as_bytes());
        eat(v.as_bytes());
    }
    for (name, shape, values) in sorted {
        eat(name.as_bytes());
        eat(format!("{shape:?}").as_bytes());
        eat(bytemuck::cast_slice(values));
    }
    format!("{h:016x}")
}

/// A checkpoint's contents: named tensors in PyTorch's layouts (a [`ParamStore`]'s
/// `values` and `moments`, by name) and string metadata.
///
/// [`ParamStore`]: crate::ParamStore
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// (name, shape, values) of every tensor.
    pub tensors: NamedValues,
    /// The run's state and configuration, as strings.
    pub meta: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The metadata value `key`; an error naming `path` (the file it came from) if absent.
    pub fn meta(&self, path: &Path, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::file(path, format!("checkpoint lacks '{key}'")))
    }

    /// The metadata value `key` parsed as a `T`; an error naming `path` and `key` if bad.
    pub fn meta_parse<T: std::str::FromStr>(&self, path: &Path, key: &str) -> Result<T> {
        let v = self.meta(path, key)?;
        v.parse().map_err(|_| {
            Error::file(
                path,
                format!("checkpoint field '{key}' has a bad value '{v}'"),
            )
        })
    }

    /// The tensors named by `specs` (with `prefix`), each checked against its spec's shape.
    pub fn select(&self, path: &Path, specs: &[ParamSpec], prefix: &str) -> Result<NamedValues> {
        specs
            .iter()
            .map(|s| {
                let name = format!("{prefix}{}", s.name);
                let (_, shape, v) = self
                    .tensors
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .ok_or_else(|| {
                        Error::file(
                            path,
                            format!(
                                "checkpoint lacks tensor '{name}' (not a checkpoint of this model?)"
                            ),
                        )
                    })?;
                if *shape != s.shape {
                    return Err(Error::file(
                        path,
                        format!(
                            "tensor '{name}' has shape {shape:?}, this model needs {:?}",
                            s.shape
                        ),
                    ));
                }
                Ok((name, shape.clone(), v.clone()))
            })
            .collect()
    }
}

/// Writes `ckpt` to `path` as safetensors with a checksum, atomically (a temporary file, then a
/// rename): a crash leaves the old file or the new one, never half of one.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    write_atomic(path, &to_bytes(path, ckpt)?)
}

/// The checkpoint as safetensors bytes (what [`save`] writes); `path` names it in errors.
pub fn to_bytes(path: &Path, ckpt: &Checkpoint) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = ckpt
        .tensors
        .iter()
        .map(|(_, _, v)| bytemuck::cast_slice(v).to_vec())
        .collect();
    let views = ckpt
        .tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Invalid(format!("tensor {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some((name, _, _)) = ckpt
        .tensors
        .iter()
        .find(|(_, _, v)| v.iter().any(|x| !x.is_finite()))
    {
        return Err(Error::NonFinite(format!(
            "tensor '{name}' holds NaN or infinity; {} was not overwritten",
            path.display()
        )));
    }
    let mut meta = ckpt.meta.clone();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("checksum".into(), checksum(&ckpt.tensors, &meta));
    let meta: HashMap<String, String> = meta.into_iter().collect();
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::file(path, format!("cannot serialise: {e}")))
}

/// Reads and checks the checkpoint at `path`: format, checksum, every tensor's dtype and shape.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = crate::io::assets::read(path)
        .map_err(|e| Error::file(path, format!("cannot read checkpoint: {e}")))?;
    parse(path, &bytes)
}

/// Parses checkpoint bytes read from `path` (named in errors).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
    let bad = |e: safetensors::SafeTensorError| {
        Error::file(path, format!("not a valid safetensors checkpoint: {e}"))
    };
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let mut meta: BTreeMap<String, String> = metadata
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    match meta.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(Error::file(
                path,
                format!("not a wgsl-gan checkpoint (format '{other}', expected '{FORMAT}')"),
            ));
        }
        None => {
            return Err(Error::file(
                path,
                format!(
                    "not a wgsl-gan checkpoint (its metadata has no format, expected '{FORMAT}')"
                ),
            ));
        }
    }
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::file(
                path,
                format!("tensor '{name}' is {:?}, expected F32", view.dtype()),
            ));
        }
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(view.data());
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::file(
                path,
                format!("tensor '{name}' holds a non-finite value at {i}"),
            ));
        }
        tensors.push((name, view.shape().to_vec(), values));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let Some(want) = meta.remove("checksum") else {
        return Err(Error::file(
            path,
            "no checksum in its metadata: not written by wgsl-gan, or edited since",
        ));
    };
    if checksum(&tensors, &meta) != want {
        return Err(Error::file(
            path,
            "checksum mismatch: the checkpoint is corrupt (a partial copy or a flipped bit?)",
        ));
    }
    meta.remove("format");
    Ok(Checkpoint { tensors, meta })
}
