//! A network's parameters in contiguous buffers: params, grads and Adam's m and v (one fused Adam
//! dispatch updates them all), plus non-trainable state (batch-norm running statistics). Each
//! named tensor is a view at an offset aligned for binding.

use crate::error::{Error, Result};
use crate::nn::Backend;
use crate::rng::SplitMix64;

#[derive(Clone, Copy, Debug, PartialEq)]
/// How a parameter starts.
pub enum Init {
    /// Keras' Glorot uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
    GlorotUniform {
        /// Inputs per output unit (times the kernel's area for a convolution).
        fan_in: usize,
        /// Outputs per input unit (times the kernel's area for a convolution).
        fan_out: usize,
    },
    /// All zeros (biases, beta, running means).
    Zeros,
    /// All ones (gamma, running variances).
    Ones,
}

#[derive(Clone, Debug, PartialEq)]
/// One parameter or state tensor of a model: its PyTorch name, shape and layout, and how it starts.
pub struct ParamSpec {
    /// PyTorch's name, e.g. `generator.0.weight`.
    pub name: String,
    /// PyTorch's layout, e.g. [out, in] or [out, in, kh, kw].
    pub shape: Vec<usize>,
    /// Non-trainable state (running statistics) lives outside params/grads/m/v.
    pub trainable: bool,
    /// How it starts.
    pub init: Init,
    /// How PyTorch lays the same values out (checkpoints hold PyTorch's layout).
    pub layout: Layout,
}

/// How a tensor's layout here differs from PyTorch's. Our feature maps are NHWC; PyTorch's are
/// NCHW, so a dense layer at a flatten/unflatten boundary sees its features in another order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    /// The same in both.
    Same,
    /// A weight [rows, h*w*c] whose columns read an NHWC map [h, w, c] that PyTorch's Flatten
    /// orders (c, h, w).
    NhwcColumns([usize; 3]),
    /// A tensor [h*w*c, ...] (weight or bias) whose rows form an NHWC map [h, w, c] that
    /// PyTorch's Unflatten reads in (c, h, w) order.
    NhwcRows([usize; 3]),
}

impl Layout {
    /// Reorders `v` from our layout to PyTorch's (`to_pytorch`) or back.
    pub fn convert(self, v: &mut [f32], to_pytorch: bool) {
        let (map, columns) = match self {
            Layout::Same => return,
            Layout::NhwcColumns(map) => (map, true),
            Layout::NhwcRows(map) => (map, false),
        };
        let [h, w, c] = map;
        let n = h * w * c;
        // Our index (y, x, ch) -> PyTorch's (ch, y, x).
        let theirs = |i: usize| (i % c) * h * w + (i / c / w) * w + (i / c) % w;
        let old = v.to_vec();
        // Moves element groups: a column entry of each row, or a whole row.
        let (groups, width) = if columns {
            (v.len() / n, 1)
        } else {
            (1, v.len() / n)
        };
        for g in 0..groups {
            for i in 0..n {
                let (ours, pt) = (i, theirs(i));
                let (dst, src) = if to_pytorch { (pt, ours) } else { (ours, pt) };
                let at = |k: usize| g * n * width + k * width;
                v[at(dst)..at(dst) + width].copy_from_slice(&old[at(src)..at(src) + width]);
            }
        }
    }
}

/// Prefixes of Adam's moments in checkpoints: `adam_m.NAME`, `adam_v.NAME`.
pub const MOMENT_PREFIXES: [&str; 2] = ["adam_m.", "adam_v."];

/// Converts named values (parameters, state, or Adam moments of them) between our layouts and
/// PyTorch's, by each spec's [`Layout`]; names no spec has are left as they are.
pub fn convert_layouts(specs: &[ParamSpec], values: &mut NamedValues, to_pytorch: bool) {
    for (name, _, v) in values.iter_mut() {
        let base = MOMENT_PREFIXES
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        if let Some(spec) = specs.iter().find(|s| s.name == base) {
            spec.layout.convert(v, to_pytorch);
        }
    }
}

impl ParamSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Values by name, in the store's order: what checkpoints hold.
pub type NamedValues = Vec<(String, Vec<usize>, Vec<f32>)>;

/// A model's parameters, their gradients and Adam's moments, each in one buffer (so that one Adam
/// dispatch updates them all), and the non-trainable state in another; by name, in PyTorch's
/// layouts when saved or loaded.
pub struct ParamStore<B: Backend> {
    /// The specs, in the buffers' order.
    pub specs: Vec<ParamSpec>,
    /// Offset of each spec inside `params` (trainable) or `state` (not).
    offsets: Vec<usize>,
    /// Padded lengths of the trainable buffers and of the state buffer.
    len: usize,
    state_len: usize,
    /// The trainable parameters.
    pub params: B::Tensor,
    /// Their gradients, same layout.
    pub grads: B::Tensor,
    /// Adam's first moments, same layout.
    pub m: B::Tensor,
    /// Adam's second moments, same layout.
    pub v: B::Tensor,
    /// The non-trainable state (batch norm's running statistics).
    pub state: B::Tensor,
}

fn layout(specs: &[ParamSpec], align: usize, trainable: bool, offsets: &mut [usize]) -> usize {
    let mut end = 0;
    for (i, s) in specs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.trainable == trainable)
    {
        offsets[i] = end;
        end = (end + s.len()).div_ceil(align) * align;
    }
    end.max(align)
}

impl<B: Backend> ParamStore<B> {
    /// Zeroed buffers for `specs` (call [`ParamStore::initialize`] or [`ParamStore::load`] next).
    pub fn new(be: &mut B, specs: Vec<ParamSpec>) -> Result<ParamStore<B>> {
        let align = be.alignment();
        let mut offsets = vec![0; specs.len()];
        let n = layout(&specs, align, true, &mut offsets);
        let ns = layout(&specs, align, false, &mut offsets);
        Ok(ParamStore {
            params: be.zeros(&[n])?,
            grads: be.zeros(&[n])?,
            m: be.zeros(&[n])?,
            v: be.zeros(&[n])?,
            state: be.zeros(&[ns])?,
            len: n,
            state_len: ns,
            specs,
            offsets,
        })
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| Error::Invalid(format!("no parameter {name}")))
    }

    /// The tensor `name` (a parameter or running statistic), viewed as `shape`.
    pub fn get(&self, be: &B, name: &str, shape: &[usize]) -> Result<B::Tensor> {
        let i = self.index(name)?;
        let base = if self.specs[i].trainable {
            &self.params
        } else {
            &self.state
        };
        be.view(base, self.offsets[i], shape)
    }

    /// The gradient of parameter `name`, viewed as `shape`.
    pub fn grad(&self, be: &B, name: &str, shape: &[usize]) -> Result<B::Tensor> {
        let i = self.index(name)?;
        be.view(&self.grads, self.offsets[i], shape)
    }

    /// One Adam update of every trainable parameter from the accumulated gradients (at the
    /// run's step, see [`Backend::adam`]).
    pub fn adam(&self, be: &mut B, spec: crate::spec::AdamSpec) -> Result<()> {
        be.adam(&self.params, &self.grads, &self.m, &self.v, spec)
    }

    /// Keras-style initial values from `seed`.
    pub fn initialize(&self, be: &mut B, seed: u64) -> Result<()> {
        let mut rng = SplitMix64::new(seed);
        let values: NamedValues = self
            .specs
            .iter()
            .map(|s| {
                let v = match s.init {
                    Init::GlorotUniform { fan_in, fan_out } => {
                        let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
                        (0..s.len())
                            .map(|_| ((rng.next_f64() * 2.0 - 1.0) * limit) as f32)
                            .collect()
                    }
                    Init::Zeros => vec![0.0; s.len()],
                    Init::Ones => vec![1.0; s.len()],
                };
                (s.name.clone(), s.shape.clone(), v)
            })
            .collect();
        self.load(be, &values)
    }

    fn flatten(&self, values: &NamedValues, trainable: bool, len: usize) -> Result<Vec<f32>> {
        let mut flat = vec![0.0; len];
        for (i, s) in self
            .specs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.trainable == trainable)
        {
            let (_, shape, v) = values
                .iter()
                .find(|(n, _, _)| *n == s.name)
                .ok_or_else(|| Error::Invalid(format!("missing tensor {}", s.name)))?;
            if *shape != s.shape || v.len() != s.len() {
                return Err(Error::Invalid(format!(
                    "tensor {} has shape {shape:?}, expected {:?}",
                    s.name, s.shape
                )));
            }
            flat[self.offsets[i]..self.offsets[i] + v.len()].copy_from_slice(v);
        }
        Ok(flat)
    }

    fn split(&self, flat: &[f32], trainable: bool) -> NamedValues {
        self.specs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.trainable == trainable)
            .map(|(i, s)| {
                (
                    s.name.clone(),
                    s.shape.clone(),
                    flat[self.offsets[i]..self.offsets[i] + s.len()].to_vec(),
                )
            })
            .collect()
    }

    /// Writes parameters and state from named values (every spec must be present).
    pub fn load(&self, be: &mut B, values: &NamedValues) -> Result<()> {
        let params = self.flatten(values, true, self.len)?;
        let state = self.flatten(values, false, self.state_len)?;
        be.write(&self.params, &params)?;
        be.write(&self.state, &state)
    }

    /// Parameters then state, by name.
    pub fn values(&self, be: &mut B) -> Result<NamedValues> {
        Ok(self.values_from(&be.read(&self.params)?, &be.read(&self.state)?))
    }

    /// [`ParamStore::values`] from the flat `params` and `state` already read.
    pub fn values_from(&self, params: &[f32], state: &[f32]) -> NamedValues {
        let mut out = self.split(params, true);
        out.extend(self.split(state, false));
        out
    }

    /// Adam's moments by parameter name, with `prefix` ("adam_m." / "adam_v.") on each name.
    pub fn moments(&self, be: &mut B) -> Result<NamedValues> {
        Ok(self.moments_from(&be.read(&self.m)?, &be.read(&self.v)?))
    }

    /// [`ParamStore::moments`] from the flat first and second moments already read.
    pub fn moments_from(&self, m: &[f32], v: &[f32]) -> NamedValues {
        let mut out = Vec::new();
        for (prefix, flat) in MOMENT_PREFIXES.into_iter().zip([m, v]) {
            out.extend(
                self.split(flat, true)
                    .into_iter()
                    .map(|(n, s, v)| (format!("{prefix}{n}"), s, v)),
            );
        }
        out
    }

    /// Restores Adam's moments saved by [`ParamStore::moments`].
    pub fn load_moments(&self, be: &mut B, values: &NamedValues) -> Result<()> {
        for (prefix, t) in MOMENT_PREFIXES.into_iter().zip([&self.m, &self.v]) {
            let renamed: NamedValues = values
                .iter()
                .filter_map(|(n, s, v)| {
                    n.strip_prefix(prefix)
                        .map(|n| (n.to_string(), s.clone(), v.clone()))
                })
                .collect();
            let flat = self.flatten(&renamed, true, self.len)?;
            be.write(t, &flat)?;
        }
        Ok(())
    }

    /// Length of the trainable buffers (with alignment padding).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the store has no trainable values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trainable scalars (without padding).
    pub fn parameter_count(&self) -> usize {
        self.specs
            .iter()
            .filter(|s| s.trainable)
            .map(ParamSpec::len)
            .sum()
    }
}
