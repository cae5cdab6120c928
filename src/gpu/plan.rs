//! What a matmul plan is (the kernel that computes a product and how K is split), which plans
//! can run a product on an adapter, and the built-in choice ([`MatmulPlan::choose`]).
//! `wgsl-gan tune` (gpu/tune.rs) times the candidates and may store better ones.

use std::fmt;
use std::str::FromStr;

use crate::gpu::{Gpu, KernelStyle};
use crate::spec::MatmulSpec;

/// A product as the planner sees it: C [M, N] = op(A) op(B) over K.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatmulShape {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The summed dimension.
    pub k: usize,
    /// A is stored [K, M].
    pub trans_a: bool,
    /// B is stored [N, K].
    pub trans_b: bool,
}

impl MatmulShape {
    /// The product C [m, n] over k, transposed as `spec` says.
    pub fn new(m: usize, n: usize, k: usize, spec: MatmulSpec) -> MatmulShape {
        MatmulShape {
            m,
            n,
            k,
            trans_a: spec.trans_a,
            trans_b: spec.trans_b,
        }
    }

    /// A plain spec with this shape's transposes (no bias, accumulation or activation).
    pub fn spec(self) -> MatmulSpec {
        MatmulSpec {
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            ..MatmulSpec::PLAIN
        }
    }
}

impl fmt::Display for MatmulShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |b: bool| if b { "^T" } else { "" };
        write!(
            f,
            "{}x{}x{} (A{} B{})",
            self.m,
            self.n,
            self.k,
            t(self.trans_a),
            t(self.trans_b)
        )
    }
}

/// Which matmul kernel computes a product, and its output tile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MatmulKernel {
    /// shaders/matmul.wgsl: tiles staged in workgroup memory, an 8x8 register block per
    /// invocation; `tile_m`, `tile_n` in {32, 64, 128}. For GPUs.
    Tiled {
        /// Rows of C per workgroup.
        tile_m: usize,
        /// Columns of C per workgroup.
        tile_n: usize,
    },
    /// shaders/matmul_lanes.wgsl: one 8-lane subgroup per 32x32 tile, A shared by subgroup
    /// broadcasts, no workgroup memory. For CPU drivers with 8-wide subgroups (llvmpipe).
    Lanes,
    /// The lanes kernel reading both operands from rgba32float textures, packed by a dispatch
    /// each first: a texel fetch is far cheaper than storage loads on llvmpipe.
    LanesPacked,
}

impl MatmulKernel {
    /// Rows and columns of C one workgroup computes.
    pub fn tile(self) -> (usize, usize) {
        match self {
            MatmulKernel::Tiled { tile_m, tile_n } => (tile_m, tile_n),
            MatmulKernel::Lanes | MatmulKernel::LanesPacked => (32, 32),
        }
    }
}

impl fmt::Display for MatmulKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatmulKernel::Tiled { tile_m, tile_n } => write!(f, "tiled-{tile_m}x{tile_n}"),
            MatmulKernel::Lanes => write!(f, "lanes"),
            MatmulKernel::LanesPacked => write!(f, "lanes-packed"),
        }
    }
}

impl FromStr for MatmulKernel {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<MatmulKernel, String> {
        let tiled = |t: &str| -> Option<MatmulKernel> {
            let (m, n) = t.split_once('x')?;
            Some(MatmulKernel::Tiled {
                tile_m: m.parse().ok()?,
                tile_n: n.parse().ok()?,
            })
        };
        match s {
            "lanes" => Ok(MatmulKernel::Lanes),
            "lanes-packed" => Ok(MatmulKernel::LanesPacked),
            _ => s
                .strip_prefix("tiled-")
                .and_then(tiled)
                .ok_or_else(|| format!("unknown matmul kernel '{s}'")),
        }
    }
}

/// Kernel and split-K choice for one matmul.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulPlan {
    /// The kernel and its tile.
    pub kernel: MatmulKernel,
    /// Number of split-K parts (1: no split).
    pub splits: usize,
    /// K per split, a multiple of 16.
    pub k_chunk: usize,
}

impl MatmulPlan {
    /// A plan with `kernel` and K cut into about `splits` chunks (fewer if K is short).
    pub fn new(kernel: MatmulKernel, k: usize, splits: usize) -> MatmulPlan {
        let k_chunk = k.div_ceil(splits.max(1)).div_ceil(16).max(1) * 16;
        MatmulPlan {
            kernel,
            splits: k.div_ceil(k_chunk).max(1),
            k_chunk,
        }
    }

    /// The table keyed by adapter (figures in docs/PERFORMANCE.md, from `cargo bench`'s
    /// "matmul plans" rows):
    /// - the lanes kernel in the CPU style where subgroups have at least 8 lanes (lavapipe on
    ///   the 2-core CI machine: 3.5-5x the tiled kernel at every shape of the GAN), with packed
    ///   operands for the larger products (another 1.3-1.5x there, 3x at 1024^3);
    /// - else 32-wide tiles where a dimension is at most 32 (less padding work);
    /// - 128x128 tiles (256 invocations) for large products: from 512 on a CPU driver, from 2048
    ///   on a GPU (H100: 21.2 against 11.2 TFLOP/s at 4096^3, but 8.1 against 9.6 at 1024^3),
    ///   else 64x64;
    /// - K split when the output has fewer tiles than it takes to keep the adapter busy (a CPU
    ///   driver runs one workgroup per core at a time, a GPU wants several per multiprocessor)
    ///   and K is long.
    pub fn choose(gpu: &Gpu, m: usize, n: usize, k: usize) -> MatmulPlan {
        let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
        let busy = match gpu.info.device_type {
            wgpu::DeviceType::Cpu => 8,
            wgpu::DeviceType::DiscreteGpu => 256,
            _ => 64,
        };
        let kernel = if gpu.style == KernelStyle::Cpu && gpu.subgroups_of_8() {
            // Packing costs two dispatches and a pass over both operands: it paid at every
            // GAN shape with >= 8M multiply-adds and M, N >= 64, and lost at every other.
            if m * n * k >= 1 << 23 && m.min(n) >= 64 && packable(gpu, m, n, k) {
                MatmulKernel::LanesPacked
            } else {
                MatmulKernel::Lanes
            }
        } else {
            let large = if cpu { 512 } else { 2048 };
            let side = |d: usize| match d {
                0..=32 => 32,
                _ if m >= large && n >= large => 128,
                _ => 64,
            };
            MatmulKernel::Tiled {
                tile_m: side(m),
                tile_n: side(n),
            }
        };
        let (tile_m, tile_n) = kernel.tile();
        let tiles = m.div_ceil(tile_m) * n.div_ceil(tile_n);
        let mut splits = 1;
        if tiles < busy && k >= 512 {
            splits = busy.div_ceil(tiles).min(k / 256).clamp(1, 64);
        }
        MatmulPlan::new(kernel, k, splits)
    }
}

impl fmt::Display for MatmulPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} split {}", self.kernel, self.splits)
    }
}

/// Whether `plan` can compute an M x N x K product on this adapter.
pub fn plan_fits(gpu: &Gpu, plan: MatmulPlan, m: usize, n: usize, k: usize) -> bool {
    let kernel = match plan.kernel {
        MatmulKernel::Tiled { tile_m, tile_n } => {
            [32, 64, 128].contains(&tile_m) && [32, 64, 128].contains(&tile_n)
        }
        MatmulKernel::Lanes => gpu.subgroups_of_8(),
        MatmulKernel::LanesPacked => gpu.subgroups_of_8() && packable(gpu, m, n, k),
    };
    kernel && plan.k_chunk.is_multiple_of(16) && plan.splits * plan.k_chunk >= k
}

/// Whether op(A) [K, M] and op(B) [K, N] fit textures of four floats per texel.
pub(crate) fn packable(gpu: &Gpu, m: usize, n: usize, k: usize) -> bool {
    let max = gpu.limits.max_texture_dimension_2d as usize;
    k <= max && m.div_ceil(4) <= max && n.div_ceil(4) <= max
}
