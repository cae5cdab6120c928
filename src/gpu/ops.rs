//! One launcher per kernel. Each checks shapes (with the rules in `spec`, shared with the CPU
//! references in `cpu::ops`), then returns a prepared [`Dispatch`]; nothing runs until it is
//! recorded. Shapes are written next to each launcher.

use crate::error::{Result, ensure};
use crate::gpu::plan::{MatmulKernel, MatmulPlan, MatmulShape, plan_fits};
use crate::gpu::{Dispatch, Gpu, KernelStyle, PipelineKey, Shader, Tensor, Words};
use crate::spec::{self, Activation, AdamSpec, ConvGeom, MatmulSpec, ParamGrads};

fn key(shader: Shader, entry: &'static str) -> PipelineKey {
    PipelineKey {
        shader,
        entry,
        constants: Vec::new(),
    }
}

/// Whether per-channel kernels over `cols` channels run their CPU-style variants (`NAME4`): on
/// CPU-style adapters, for channels in fours, which they read as vec4s. Other channel counts
/// take the tree kernels there too.
fn by_fours(gpu: &Gpu, cols: usize) -> bool {
    gpu.style == KernelStyle::Cpu && cols.is_multiple_of(4)
}

/// Entry point and grid of a per-column reduction over `cols` columns: one 256-invocation
/// workgroup per column (tree), or where [`by_fours`] says so one invocation per four columns
/// (`serial`, 8 per workgroup).
fn per_column(
    gpu: &Gpu,
    entry: &'static str,
    serial: &'static str,
    cols: usize,
) -> (&'static str, [u32; 3]) {
    match by_fours(gpu, cols) {
        false => (entry, gpu.grid_of_groups(cols)),
        true => (serial, gpu.grid_of_groups((cols / 4).div_ceil(8))),
    }
}

fn f(v: f32) -> u32 {
    v.to_bits()
}

fn u(v: usize) -> u32 {
    v as u32
}

/// C [M, N] = op(A) op(B) (+ C) (+ bias `[N]`), then the activation.
/// A: [M, K] (or [K, M] with `trans_a`); B: [K, N] (or [N, K] with `trans_b`).
pub fn matmul(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: MatmulSpec,
) -> Result<Dispatch> {
    let (m, n, k) = spec.dims(a.shape(), b.shape(), bias.map(|t| t.shape()), c.shape())?;
    let plan = gpu.matmul_plan(MatmulShape::new(m, n, k, spec));
    matmul_planned(gpu, a, b, bias, c, spec, plan)
}

/// [`matmul`] with an explicit plan (tests and benchmarks compare plans).
pub fn matmul_planned(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
    spec: MatmulSpec,
    plan: MatmulPlan,
) -> Result<Dispatch> {
    let (m, n, k) = spec.dims(a.shape(), b.shape(), bias.map(|t| t.shape()), c.shape())?;
    ensure(plan_fits(gpu, plan, m, n, k), || {
        format!("invalid matmul plan {plan:?} for K = {k} on this adapter")
    })?;
    let product = Product {
        m,
        n,
        k,
        spec,
        plan,
    };
    match plan.kernel {
        // Packed operands: op(A) as [K, M] and op(B) as [K, N], four values per texel; the
        // packing dispatches apply the transposes.
        MatmulKernel::LanesPacked => {
            let (a_view, pack_a) = pack(gpu, a, k, m, !spec.trans_a)?;
            let (b_view, pack_b) = pack(gpu, b, k, n, spec.trans_b)?;
            let run = product.packed(gpu, &a_view, &b_view, bias, ProductOut::Buffer(c))?;
            Ok(after(pack_a.then(pack_b), run))
        }
        _ => product.dispatch(gpu, a.binding(), b.binding(), bias, ProductOut::Buffer(c)),
    }
}

/// `first` then `then`, named after `then` (profiles list dispatches by name).
fn after(first: Dispatch, then: Dispatch) -> Dispatch {
    let name = then.name;
    let mut all = first.then(then);
    all.name = name;
    all
}

/// Where a product's C goes: a buffer, or (packed lanes kernel, no split, no accumulate) an
/// rgba32float texture of ceil(N / 4) x M texels, texel (x, row) = C[row, 4x .. 4x + 3].
enum ProductOut<'a> {
    Buffer(&'a Tensor),
    Texture(&'a wgpu::TextureView),
}

/// One planned product, its operands bound by the caller (buffers, or packed textures for
/// [`MatmulKernel::LanesPacked`]).
struct Product {
    m: usize,
    n: usize,
    k: usize,
    spec: MatmulSpec,
    plan: MatmulPlan,
}

impl Product {
    /// The product op(A) [M, K] x op(B) [K, N] with this adapter's plan for it.
    fn planned(gpu: &Gpu, m: usize, n: usize, k: usize, spec: MatmulSpec) -> Product {
        let plan = gpu.matmul_plan(MatmulShape::new(m, n, k, spec));
        Product {
            m,
            n,
            k,
            spec,
            plan,
        }
    }

    /// [`Product::dispatch`] with both operands packed.
    fn packed(
        &self,
        gpu: &Gpu,
        a: &wgpu::TextureView,
        b: &wgpu::TextureView,
        bias: Option<&Tensor>,
        out: ProductOut<'_>,
    ) -> Result<Dispatch> {
        let texture = wgpu::BindingResource::TextureView;
        self.dispatch(gpu, texture(a), texture(b), bias, out)
    }

    fn dispatch(
        &self,
        gpu: &Gpu,
        a: wgpu::BindingResource<'_>,
        b: wgpu::BindingResource<'_>,
        bias: Option<&Tensor>,
        out: ProductOut<'_>,
    ) -> Result<Dispatch> {
        let Product {
            m,
            n,
            k,
            spec,
            plan,
        } = *self;
        let split = plan.splits > 1;
        let texture_out = matches!(out, ProductOut::Texture(_));
        let lanes = matches!(plan.kernel, MatmulKernel::Lanes | MatmulKernel::LanesPacked);
        // C's texture twin written by the lanes kernels' own stores where they can; otherwise
        // refreshed after the product.
        let twin = match out {
            ProductOut::Buffer(c) => c.twin(),
            ProductOut::Texture(_) => None,
        };
        let twin_native = twin.is_some() && lanes && !split;
        ensure(
            !texture_out
                || (plan.kernel == MatmulKernel::LanesPacked && !split && !spec.accumulate),
            || format!("a {plan:?} product cannot write a texture"),
        )?;

        let epilogue = [
            ("BIAS", u32::from(bias.is_some())),
            ("ACCUMULATE", u32::from(spec.accumulate)),
            ("ACT", spec.activation.code()),
        ];
        let mut constants = vec![
            ("TRANS_A", u32::from(spec.trans_a)),
            ("TRANS_B", u32::from(spec.trans_b)),
            ("SPLIT", u32::from(split)),
        ];
        constants.extend(epilogue);
        let (shader, entry) = match plan.kernel {
            MatmulKernel::Tiled { tile_m, tile_n } => {
                constants.extend([
                    ("TM", u(tile_m)),
                    ("TN", u(tile_n)),
                    ("THREADS", u(tile_m * tile_n / 64)),
                ]);
                (Shader::Matmul, "main")
            }
            MatmulKernel::Lanes => {
                if twin_native {
                    constants.push(("TWIN_OUT", 1));
                }
                (Shader::MatmulLanes, "main")
            }
            // The operands are packed with their transposes applied.
            MatmulKernel::LanesPacked => {
                constants.retain(|&(name, _)| !name.starts_with("TRANS"));
                constants.push(("TEXTURE_OUT", u32::from(texture_out)));
                if twin_native {
                    constants.push(("TWIN_OUT", 1));
                }
                (Shader::MatmulLanes, "main_packed")
            }
        };
        let key = PipelineKey {
            shader,
            entry,
            constants,
        };
        let (tile_m, tile_n) = plan.kernel.tile();
        let groups = [n.div_ceil(tile_n), m.div_ceil(tile_m), plan.splits];
        let max = gpu.limits.max_compute_workgroups_per_dimension as usize;
        ensure(groups.iter().all(|&g| g <= max), || {
            format!(
                "matmul {m}x{n}x{k} needs a grid of {groups:?} workgroups; this adapter allows \
                 {max} per dimension (max_compute_workgroups_per_dimension)"
            )
        })?;
        let params = [
            u(m),
            u(n),
            u(k),
            0,
            f(spec.activation.alpha()),
            u(plan.k_chunk),
            u(plan.splits),
        ];
        let bias = bias.map_or(gpu.placeholder.as_entire_binding(), |t| t.binding());
        let grid = groups.map(|g| g as u32);
        let texture = wgpu::BindingResource::TextureView;
        // The lanes kernels bind C's texture too: the placeholder when C is a buffer, and then
        // the buffer is a stand-in (it may not alias the placeholder bound as the bias).
        let (c_buffer, c_texture) = match out {
            ProductOut::Texture(view) => (Tensor::zeros(gpu, &[1])?, texture(view)),
            // Split: every split writes its raw slice of a workspace, then `reduce_splits`.
            ProductOut::Buffer(_) if split => (
                Tensor::zeros(gpu, &[plan.splits, m, n])?,
                texture(&gpu.placeholder_written),
            ),
            ProductOut::Buffer(c) => match twin {
                Some(view) if twin_native => (c.clone(), texture(view)),
                _ => (c.clone(), texture(&gpu.placeholder_written)),
            },
        };
        let epilogue_bias = match split {
            true => gpu.placeholder.as_entire_binding(),
            false => bias.clone(),
        };
        let mut bindings = vec![a, b, epilogue_bias, c_buffer.binding()];
        if shader == Shader::MatmulLanes {
            bindings.push(c_texture);
        }
        let products = gpu.dispatch(key, &bindings, &params, grid)?;
        let ProductOut::Buffer(c) = out else {
            return Ok(products);
        };
        if !split {
            return match twin_native {
                true => Ok(products),
                false => refresh_twin(gpu, products, c),
            };
        }
        let reduce = gpu.dispatch(
            PipelineKey {
                shader: Shader::Matmul,
                entry: "reduce_splits",
                constants: epilogue.to_vec(),
            },
            &[c_buffer.binding(), bias, c.binding()],
            &params,
            gpu.grid(m * n),
        )?;
        refresh_twin(gpu, products.then(reduce), c)
    }
}

/// `t`'s texture twin (src/gpu/tensor.rs) for a kernel that may read it instead of the buffer:
/// whether there is one (the kernel's `*_TEXTURE` constant), and what to bind (it, or the
/// placeholder).
fn twin_in<'a>(gpu: &'a Gpu, t: &'a Tensor) -> (u32, wgpu::BindingResource<'a>) {
    match t.twin() {
        Some(view) => (1, wgpu::BindingResource::TextureView(view)),
        None => (
            0,
            wgpu::BindingResource::TextureView(&gpu.placeholder_texture),
        ),
    }
}

/// `t`'s texture twin for a kernel that writes it with its output (`TWIN_OUT`), as [`twin_in`].
fn twin_out<'a>(gpu: &'a Gpu, t: &'a Tensor) -> (u32, wgpu::BindingResource<'a>) {
    match t.twin() {
        Some(view) => (1, wgpu::BindingResource::TextureView(view)),
        None => (
            0,
            wgpu::BindingResource::TextureView(&gpu.placeholder_written),
        ),
    }
}

/// `d`, which wrote `t` but not its texture twin, then the copy that brings the twin up to
/// date (nothing more without a twin).
fn refresh_twin(gpu: &Gpu, d: Dispatch, t: &Tensor) -> Result<Dispatch> {
    let Some(view) = t.twin() else {
        return Ok(d);
    };
    let c = t.shape().last().copied().unwrap_or(1);
    Ok(d.then(pack_into(gpu, t, t.len() / c, c, false, 0, view)?))
}

/// A texture holding X [K, J] four values per texel (texel (x, kk) = X[kk, 4x .. 4x + 3], zero
/// past J), and the dispatch that fills it from `src`: X itself ([K, J]), or with `transpose`
/// the transpose of `src` ([J, K]).
fn pack(
    gpu: &Gpu,
    src: &Tensor,
    k: usize,
    j: usize,
    transpose: bool,
) -> Result<(wgpu::TextureView, Dispatch)> {
    pack_with(gpu, src, k, j, transpose, 0)
}

/// [`pack`] of a convolution weight [C_out = K, C * taps = J] with its columns reordered from
/// (channel, tap) to (tap, channel).
fn pack_taps_major(
    gpu: &Gpu,
    weight: &Tensor,
    k: usize,
    j: usize,
    taps: usize,
) -> Result<(wgpu::TextureView, Dispatch)> {
    pack_with(gpu, weight, k, j, false, taps)
}

/// [`pack`]; with `taps` > 0, X's columns are a convolution weight's reordered from (channel,
/// tap) to (tap, channel). Where X is `src` as stored and `src` has a texture twin, the twin is
/// the packed operand and nothing is dispatched.
fn pack_with(
    gpu: &Gpu,
    src: &Tensor,
    k: usize,
    j: usize,
    transpose: bool,
    taps: usize,
) -> Result<(wgpu::TextureView, Dispatch)> {
    // A tensor's texture twin already is X when X is the tensor as stored: nothing to pack.
    let as_stored = !transpose && taps == 0 && src.len() == k * j;
    if let Some(twin) = src
        .twin()
        .filter(|_| as_stored && src.shape().last() == Some(&j))
    {
        return Ok((twin.clone(), Dispatch::nothing()));
    }
    let view = texture_of_rows(gpu, k, j, "packed matmul operand")?;
    let fill = pack_into(gpu, src, k, j, transpose, taps, &view)?;
    Ok((view, fill))
}

/// [`pack_with`] into an existing texture of [`texture_of_rows`]' layout.
fn pack_into(
    gpu: &Gpu,
    src: &Tensor,
    k: usize,
    j: usize,
    transpose: bool,
    taps: usize,
    view: &wgpu::TextureView,
) -> Result<Dispatch> {
    // Transposing a tensor [J, K] with a texture twin: from the twin's texels.
    let twin = src
        .twin()
        .filter(|_| transpose && taps == 0 && src.len() == k * j && src.shape().last() == Some(&k));
    let (entry, source) = match twin {
        Some(twin) => ("pack_twin", wgpu::BindingResource::TextureView(twin)),
        None => ("pack", src.binding()),
    };
    gpu.dispatch(
        key(Shader::Pack, entry),
        &[source, wgpu::BindingResource::TextureView(view)],
        &[u(k), u(j), u32::from(transpose), u(taps)],
        if transpose {
            [u(k.div_ceil(8)), u(j.div_ceil(4).div_ceil(8)), 1]
        } else {
            [u(j.div_ceil(4).div_ceil(8)), u(k.div_ceil(8)), 1]
        },
    )
}

fn fits_texture(gpu: &Gpu, rows: usize, cols: usize) -> bool {
    let max = gpu.limits.max_texture_dimension_2d as usize;
    rows <= max && cols.div_ceil(4) <= max
}

/// An rgba32float texture of `rows` rows of `cols` values (four per texel, the last texel
/// zero-padded): the layout of packed operands and texture outputs.
fn texture_of_rows(gpu: &Gpu, rows: usize, cols: usize, label: &str) -> Result<wgpu::TextureView> {
    ensure(fits_texture(gpu, rows, cols), || {
        format!(
            "a {rows} x {cols} texture passes this adapter's max_texture_dimension_2d ({})",
            gpu.limits.max_texture_dimension_2d
        )
    })?;
    let view = super::context::rgba32_texture(&gpu.device, u(cols.div_ceil(4)), u(rows), label);
    Ok(view)
}

fn conv_key(entry: &'static str, g: &ConvGeom, act: Activation) -> PipelineKey {
    PipelineKey {
        shader: Shader::Conv,
        entry,
        constants: vec![
            ("KERNEL", u(g.kernel)),
            ("STRIDE", u(g.stride)),
            ("PAD", u(g.padding)),
            ("IN_H", u(g.height)),
            ("IN_W", u(g.width)),
            ("IN_C", u(g.channels)),
            ("OUT_H", u(g.out_height())),
            ("OUT_W", u(g.out_width())),
            ("ACT", act.code()),
        ],
    }
}

fn conv_params(g: &ConvGeom, total: usize, act: Activation) -> Vec<u32> {
    let mut p = [
        g.batch,
        g.height,
        g.width,
        g.channels,
        g.out_height(),
        g.out_width(),
        total,
    ]
    .map(u)
    .to_vec();
    p.extend([0, f(act.alpha())]);
    p
}

/// cols [B*OH*OW, C*K*K] = im2col(x [B, H, W, C]).
pub fn im2col(gpu: &Gpu, x: &Tensor, cols: &Tensor, geom: ConvGeom) -> Result<Dispatch> {
    geom.check(x.shape(), cols.shape())?;
    let total = geom.cols_shape()[0] * geom.channels;
    let d = gpu.dispatch(
        conv_key("im2col", &geom, Activation::Identity),
        &[x.binding(), cols.binding()],
        &conv_params(&geom, total, Activation::Identity),
        gpu.grid(total),
    )?;
    refresh_twin(gpu, d, cols)
}

/// dx [B, H, W, C] = col2im(dcols [B*OH*OW, C*K*K]): the adjoint of im2col; with `through` =
/// (y, act), where x = act(..) had output y, dx is also multiplied by act'(y).
pub fn col2im(
    gpu: &Gpu,
    dcols: &Tensor,
    dx: &Tensor,
    geom: ConvGeom,
    through: Option<(&Tensor, Activation)>,
) -> Result<Dispatch> {
    let through_y = through.map(|(y, act)| (y.shape(), act));
    spec::col2im_dims(&geom, dcols.shape(), dx.shape(), through_y)?;
    col2im_from(gpu, Dcols::Buffer(dcols), dx, geom, through)
}

/// Where col2im reads dcols [B*OH*OW, C*K*K]: a buffer, or a texture as [`texture_of_rows`]
/// lays it out.
enum Dcols<'a> {
    Buffer(&'a Tensor),
    Texture(&'a wgpu::TextureView),
}

/// [`col2im`] after the shapes are checked.
fn col2im_from(
    gpu: &Gpu,
    dcols: Dcols<'_>,
    dx: &Tensor,
    geom: ConvGeom,
    through: Option<(&Tensor, Activation)>,
) -> Result<Dispatch> {
    let total = dx.len();
    let texture = wgpu::BindingResource::TextureView;
    let (buffer, view, from_texture) = match dcols {
        Dcols::Buffer(t) => (t.binding(), texture(&gpu.placeholder_texture), false),
        Dcols::Texture(v) => (gpu.placeholder.as_entire_binding(), texture(v), true),
    };
    let (y_tensor, act) = through.unwrap_or((dx, Activation::Identity));
    // Without an activation the derivative is 1 and y is never read; dcols' buffer stands in.
    let y = match through {
        Some(_) => y_tensor.binding(),
        None => buffer.clone(),
    };
    // Four channels per invocation (from the texture): y's and dx's twins can be used.
    let (y_texture, y_view) = match (through, from_texture) {
        (Some(_), true) => twin_in(gpu, y_tensor),
        _ => (0, texture(&gpu.placeholder_texture)),
    };
    let (twin_native, dx_twin) = match from_texture {
        true => twin_out(gpu, dx),
        false => (0, texture(&gpu.placeholder_written)),
    };
    // From the texture, an invocation computes four channels.
    ensure(!from_texture || geom.channels.is_multiple_of(4), || {
        format!(
            "col2im from a texture needs channels in fours, not {}",
            geom.channels
        )
    })?;
    let mut key = conv_key("col2im", &geom, act);
    key.constants.extend([
        ("DCOLS_TEXTURE", u32::from(from_texture)),
        ("Y_TEXTURE", y_texture),
        ("TWIN_OUT", twin_native),
    ]);
    let invocations = if from_texture { total / 4 } else { total };
    let d = gpu.dispatch(
        key,
        &[buffer, dx.binding(), y, view, y_view, dx_twin],
        &conv_params(&geom, total, act),
        gpu.grid(invocations),
    )?;
    match twin_native {
        1 => Ok(d),
        _ => refresh_twin(gpu, d, dx),
    }
}

/// im2col of x [B, H, W, C] straight into a packed operand of the lanes kernel: cols^T
/// ([C*K*K, B*OH*OW], a convolution's op(A)) or with `cols_major` cols itself ([B*OH*OW,
/// C*K*K], a weight gradient's op(B)), four values per texel. x is read from its texture twin
/// where it has one.
fn im2col_packed(
    gpu: &Gpu,
    x: &Tensor,
    geom: ConvGeom,
    cols_major: bool,
) -> Result<(wgpu::TextureView, Dispatch)> {
    let [rows, depth] = geom.cols_shape();
    let (k, j) = if cols_major {
        (rows, depth)
    } else {
        (depth, rows)
    };
    let view = texture_of_rows(gpu, k, j, "im2col, packed")?;
    let texels = k * j.div_ceil(4);
    let (x_texture, x_view) = twin_in(gpu, x);
    let mut key = conv_key("im2col_packed", &geom, Activation::Identity);
    key.constants.extend([
        ("COLS_MAJOR", u32::from(cols_major)),
        // The texture's width (texture_of_rows), which the kernel divides by.
        ("TEX_W", u(j.div_ceil(4))),
        ("X_TEXTURE", x_texture),
    ]);
    let fill = gpu.dispatch(
        key,
        &[
            x.binding(),
            wgpu::BindingResource::TextureView(&view),
            x_view,
        ],
        &conv_params(&geom, texels, Activation::Identity),
        gpu.grid(texels),
    )?;
    Ok((view, fill))
}

/// Columns of im2col (C*K*K) up to which a convolution may run the direct kernels, and the
/// floats of their staged weight and bias (`SMALL_DEPTH_MAX`, `4 * SMALL_STAGE` in
/// shaders/conv.wgsl).
const SMALL_DEPTH_MAX: usize = 16;
const SMALL_STAGE_FLOATS: usize = 4096;

/// Whether a convolution with `out` output channels runs the direct kernels (`conv_small`,
/// `dcols_small`) instead of a product: on CPU-style adapters, for a weight of at most
/// `SMALL_DEPTH_MAX` columns (the first layer's 1 x 3 x 3), output channels in fours.
fn small_weight(gpu: &Gpu, geom: &ConvGeom, out: usize) -> bool {
    let depth = geom.cols_shape()[1];
    gpu.style == KernelStyle::Cpu
        && depth <= SMALL_DEPTH_MAX
        && out.is_multiple_of(4)
        && out * (depth + 1) <= SMALL_STAGE_FLOATS
}

/// The direct kernels' pipeline: the convolution's constants and its output channels.
fn small_key(entry: &'static str, geom: &ConvGeom, out: usize, act: Activation) -> PipelineKey {
    let mut key = conv_key(entry, geom, act);
    key.constants.push(("OUT_C", u(out)));
    key
}

/// A uniform buffer for the direct kernels, filled on the GPU with the weight (and the bias):
/// uniform loads are cheap where storage loads in a loop are not (llvmpipe).
fn stage_small(
    gpu: &Gpu,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geom: &ConvGeom,
    out: usize,
) -> Result<(wgpu::Buffer, Dispatch)> {
    let staged = gpu.create_buffer(&wgpu::BufferDescriptor {
        label: Some("small convolution weight"),
        size: (SMALL_STAGE_FLOATS * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
        mapped_at_creation: false,
    });
    let key = small_key("stage_small", geom, out, Activation::Identity);
    let n = out * (geom.cols_shape()[1] + 1);
    let fill = gpu.dispatch(
        key,
        &[
            weight.binding(),
            bias.unwrap_or(weight).binding(),
            staged.as_entire_binding(),
        ],
        &conv_params(geom, n, Activation::Identity),
        gpu.grid(n),
    )?;
    Ok((staged, fill))
}

/// y [B*OH*OW, C_out] = act(im2col(x) W^T + b): a convolution of x [B, H, W, C] with weight
/// [C_out, C*K*K] and bias `[C_out]`, NHWC out. The layout is chosen here, once, from the
/// product's plan: with the packed lanes kernel im2col writes the packed operand itself (no
/// cols matrix to write and pack again); otherwise im2col into a cols buffer, then the product.
/// A small weight (C*K*K <= 16, output channels in fours) on a CPU-style adapter skips both:
/// one direct kernel, `conv_small`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    gpu: &Gpu,
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    y: &Tensor,
    geom: ConvGeom,
    act: Activation,
) -> Result<Dispatch> {
    let [rows, depth] = geom.cols_shape();
    let out = spec::conv2d_dims(&geom, x.shape(), weight.shape(), bias.shape(), y.shape())?;
    let spec = MatmulSpec::by_weight(act);
    let product = Product::planned(gpu, rows, out, depth, spec);
    let mut d = if small_weight(gpu, &geom, out) {
        let (staged, fill) = stage_small(gpu, weight, Some(bias), &geom, out)?;
        let (twin, twin_view) = twin_out(gpu, y);
        let mut key = small_key("conv_small", &geom, out, act);
        key.constants.push(("TWIN_OUT", twin));
        fill.then(gpu.dispatch(
            key,
            &[
                x.binding(),
                staged.as_entire_binding(),
                y.binding(),
                twin_view,
            ],
            &conv_params(&geom, rows, act),
            gpu.grid(rows),
        )?)
    } else if product.plan.kernel == MatmulKernel::LanesPacked {
        let (a_view, fill) = im2col_packed(gpu, x, geom, false)?;
        let (b_view, pack_b) = pack(gpu, weight, depth, out, true)?;
        let run = product.packed(gpu, &a_view, &b_view, Some(bias), ProductOut::Buffer(y))?;
        fill.then(pack_b).then(run)
    } else {
        let cols = Tensor::zeros(gpu, &[rows, depth])?;
        let run = matmul_planned(gpu, &cols, weight, Some(bias), y, spec, product.plan)?;
        im2col(gpu, x, &cols, geom)?.then(run)
    };
    d.name = "conv2d";
    Ok(d)
}

/// dweight [C_out, C*K*K] += dy^T im2col(x), dy [B*OH*OW, C_out]: a convolution's weight
/// gradient, its layout chosen as in [`conv2d`] (the packed path packs cols, not cols^T).
pub fn conv2d_weight_grad(
    gpu: &Gpu,
    dy: &Tensor,
    x: &Tensor,
    dweight: &Tensor,
    geom: ConvGeom,
) -> Result<Dispatch> {
    let [rows, depth] = geom.cols_shape();
    let out = spec::conv2d_grad_dims(&geom, dy.shape(), dweight.shape(), x.shape())?;
    let spec = MatmulSpec::WEIGHT_GRAD;
    let product = Product::planned(gpu, out, depth, rows, spec);
    let mut d = if product.plan.kernel == MatmulKernel::LanesPacked {
        let (a_view, pack_a) = pack(gpu, dy, rows, out, false)?;
        let (b_view, fill) = im2col_packed(gpu, x, geom, true)?;
        let run = product.packed(gpu, &a_view, &b_view, None, ProductOut::Buffer(dweight))?;
        pack_a.then(fill).then(run)
    } else {
        let cols = Tensor::zeros(gpu, &[rows, depth])?;
        let run = matmul_planned(gpu, dy, &cols, None, dweight, spec, product.plan)?;
        im2col(gpu, x, &cols, geom)?.then(run)
    };
    d.name = "conv2d_weight_grad";
    Ok(d)
}

/// dx [B, H, W, C] = col2im(dy W), dy [B*OH*OW, C_out], weight [C_out, C*K*K]: a convolution's
/// input gradient; with `through` = (x, act), x was act's output and dx is taken through act.
/// With the packed lanes kernel (no split, channels in fours) the product writes dcols as a
/// texture, its columns in (tap, channel) order, that col2im reads four channels at a time;
/// otherwise through a dcols buffer. A small weight on a CPU-style adapter computes dcols with a
/// direct kernel, `dcols_small`.
pub fn conv2d_input_grad(
    gpu: &Gpu,
    dy: &Tensor,
    weight: &Tensor,
    dx: &Tensor,
    geom: ConvGeom,
    through: Option<(&Tensor, Activation)>,
) -> Result<Dispatch> {
    let [rows, depth] = geom.cols_shape();
    let out = spec::conv2d_grad_dims(&geom, dy.shape(), weight.shape(), dx.shape())?;
    if let Some((y, act)) = through {
        spec::col2im_dims(&geom, &[rows, depth], dx.shape(), Some((y.shape(), act)))?;
    }
    let spec = MatmulSpec::PLAIN;
    let product = Product::planned(gpu, rows, depth, out, spec);
    let plan = product.plan;
    let texture_out = plan.kernel == MatmulKernel::LanesPacked
        && plan.splits == 1
        && geom.channels.is_multiple_of(4)
        && fits_texture(gpu, rows, depth);
    let mut d = if small_weight(gpu, &geom, out) {
        let dcols = Tensor::zeros(gpu, &[rows, depth])?;
        let (staged, fill) = stage_small(gpu, weight, None, &geom, out)?;
        let run = gpu.dispatch(
            small_key("dcols_small", &geom, out, Activation::Identity),
            &[dy.binding(), staged.as_entire_binding(), dcols.binding()],
            &conv_params(&geom, rows, Activation::Identity),
            gpu.grid(rows),
        )?;
        fill.then(run)
            .then(col2im_from(gpu, Dcols::Buffer(&dcols), dx, geom, through)?)
    } else if texture_out {
        let (a_view, pack_a) = pack(gpu, dy, out, rows, true)?;
        let (b_view, pack_b) = pack_taps_major(gpu, weight, out, depth, geom.kernel * geom.kernel)?;
        let dcols = texture_of_rows(gpu, rows, depth, "dcols")?;
        let run = product.packed(gpu, &a_view, &b_view, None, ProductOut::Texture(&dcols))?;
        let gather = col2im_from(gpu, Dcols::Texture(&dcols), dx, geom, through)?;
        pack_a.then(pack_b).then(run).then(gather)
    } else {
        let dcols = Tensor::zeros(gpu, &[rows, depth])?;
        let run = matmul_planned(gpu, dy, weight, None, &dcols, spec, plan)?;
        run.then(col2im_from(gpu, Dcols::Buffer(&dcols), dx, geom, through)?)
    };
    d.name = "conv2d_input_grad";
    Ok(d)
}

fn bn_params(
    rows: usize,
    c: usize,
    flags: u32,
    momentum: f32,
    eps: f32,
    act: Activation,
) -> Vec<u32> {
    vec![u(rows), u(c), flags, f(momentum), f(eps), f(act.alpha())]
}

/// Per-channel mean and 1/sqrt(var + eps) of x [rows.., C]; with `update_running`,
/// running = momentum * running + (1 - momentum) * batch (Keras' convention, biased variance).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_stats(
    gpu: &Gpu,
    x: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    momentum: f32,
    eps: f32,
    update_running: bool,
) -> Result<Dispatch> {
    let (rows, c) = spec::batch_norm_stats_dims(
        x.shape(),
        [
            mean.shape(),
            invstd.shape(),
            running_mean.shape(),
            running_var.shape(),
        ],
    )?;
    let (entry, grid) = per_column(gpu, "stats", "stats_serial4", c);
    let mut key = key(Shader::BatchNorm, entry);
    let mut bindings = vec![
        x.binding(),
        mean.binding(),
        invstd.binding(),
        running_mean.binding(),
        running_var.binding(),
    ];
    if by_fours(gpu, c) {
        let (x_texture, x_view) = twin_in(gpu, x);
        key.constants.push(("X_TEXTURE", x_texture));
        bindings.push(x_view);
    }
    gpu.dispatch(
        key,
        &bindings,
        &bn_params(
            rows,
            c,
            u32::from(update_running),
            momentum,
            eps,
            Activation::Identity,
        ),
        grid,
    )
}

/// Inference mode: mean = running_mean, invstd = 1/sqrt(running_var + eps), all `[C]`.
pub fn batch_norm_use_running(
    gpu: &Gpu,
    running_mean: &Tensor,
    running_var: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    eps: f32,
) -> Result<Dispatch> {
    let c = spec::batch_norm_running_dims([
        running_mean.shape(),
        running_var.shape(),
        mean.shape(),
        invstd.shape(),
    ])?;
    gpu.dispatch(
        key(Shader::BatchNorm, "use_running"),
        &[
            running_mean.binding(),
            running_var.binding(),
            mean.binding(),
            invstd.binding(),
        ],
        &bn_params(1, c, 0, 0.0, eps, Activation::Identity),
        gpu.grid(c),
    )
}

/// Rows of one channel each invocation of the batch-norm apply and dx kernels handles (their
/// `APPLY_ROWS`).
const BN_APPLY_ROWS: usize = 8;

/// y [rows.., C] = act(gamma * (x - mean) * invstd + beta).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_apply(
    gpu: &Gpu,
    x: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    y: &Tensor,
    act: Activation,
) -> Result<Dispatch> {
    let (rows, c) = spec::batch_norm_apply_dims(
        x.shape(),
        [mean.shape(), invstd.shape(), gamma.shape(), beta.shape()],
        y.shape(),
    )?;
    // Channels per invocation.
    let (entry, channels) = match by_fours(gpu, c) {
        false => ("apply", 1),
        true => ("apply4", 4),
    };
    let mut key = PipelineKey {
        shader: Shader::BatchNorm,
        entry,
        constants: vec![
            ("ACT_AFTER", act.code()),
            ("APPLY_ROWS", BN_APPLY_ROWS as u32),
        ],
    };
    let mut bindings = vec![
        x.binding(),
        mean.binding(),
        invstd.binding(),
        gamma.binding(),
        beta.binding(),
        y.binding(),
    ];
    let mut twin_native = 0;
    if channels == 4 {
        let (x_texture, x_view) = twin_in(gpu, x);
        let (twin, twin_view) = twin_out(gpu, y);
        key.constants
            .extend([("X_TEXTURE", x_texture), ("TWIN_OUT", twin)]);
        bindings.extend([x_view, twin_view]);
        twin_native = twin;
    }
    let d = gpu.dispatch(
        key,
        &bindings,
        &bn_params(rows, c, 0, 0.0, 0.0, act),
        gpu.grid(rows.div_ceil(BN_APPLY_ROWS) * c / channels),
    )?;
    match twin_native {
        1 => Ok(d),
        _ => refresh_twin(gpu, d, y),
    }
}

/// dx [rows.., C] from dy through a training-mode batch norm of x; dgamma, dbeta `[C]` per `grads`.
/// Fused activations: with `after` = (y, act), the layer was act(BN(x)) with output y and dy is
/// w.r.t. y; with `before` = act, x itself was act's output and dx is w.r.t. act's input.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    gpu: &Gpu,
    x: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    gamma: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dgamma: &Tensor,
    dbeta: &Tensor,
    grads: ParamGrads,
    after: Option<(&Tensor, Activation)>,
    before: Activation,
) -> Result<Dispatch> {
    let (rows, c, alpha) = spec::batch_norm_backward_dims(
        x.shape(),
        [
            mean.shape(),
            invstd.shape(),
            gamma.shape(),
            dgamma.shape(),
            dbeta.shape(),
        ],
        dy.shape(),
        dx.shape(),
        after.map(|(y, act)| (y.shape(), act)),
        before,
    )?;
    // Without an activation after, y is never read; dy stands in for it.
    let (y, act_after) = after.unwrap_or((dy, Activation::Identity));
    let flags = match grads {
        ParamGrads::Skip => 0,
        ParamGrads::Write => 1,
        ParamGrads::Accumulate => 3,
    };
    let key = |entry, rows_each: usize| PipelineKey {
        shader: Shader::BatchNorm,
        entry,
        constants: vec![
            ("ACT_AFTER", act_after.code()),
            ("ACT_BEFORE", before.code()),
            ("APPLY_ROWS", rows_each as u32),
        ],
    };
    // The `*4` kernels read x, dy and y from their texture twins where they have them.
    let (x_texture, x_view) = twin_in(gpu, x);
    let (dy_texture, dy_view) = twin_in(gpu, dy);
    let (y_texture, y_view) = twin_in(gpu, y);
    let twins = |entry, twin_out: Option<u32>| {
        let mut k = key(entry, BN_APPLY_ROWS);
        k.constants.extend([
            ("X_TEXTURE", x_texture),
            ("DY_TEXTURE", dy_texture),
            ("Y_TEXTURE", y_texture),
        ]);
        if let Some(t) = twin_out {
            k.constants.push(("TWIN_OUT", t));
        }
        k
    };
    let params = [u(rows), u(c), flags, 0, 0, f(alpha)];
    if by_fours(gpu, c) {
        // Two barrier-free dispatches: per-channel sums in row order, then dx row-parallel.
        let sums = Tensor::zeros(gpu, &[2, c])?;
        let reduce = gpu.dispatch(
            twins("backward_sums4", None),
            &[
                x.binding(),
                mean.binding(),
                invstd.binding(),
                dy.binding(),
                y.binding(),
                sums.binding(),
                dgamma.binding(),
                dbeta.binding(),
                x_view.clone(),
                dy_view.clone(),
                y_view.clone(),
            ],
            &params,
            gpu.grid_of_groups((c / 4).div_ceil(8)),
        )?;
        let (twin, twin_view) = twin_out(gpu, dx);
        let dx_pass = gpu.dispatch(
            twins("backward_dx4", Some(twin)),
            &[
                x.binding(),
                mean.binding(),
                invstd.binding(),
                gamma.binding(),
                dy.binding(),
                y.binding(),
                sums.binding(),
                dx.binding(),
                x_view,
                dy_view,
                y_view,
                twin_view,
            ],
            &params,
            gpu.grid(rows.div_ceil(BN_APPLY_ROWS) * c / 4),
        )?;
        let mut d = reduce.then(dx_pass);
        d.name = "batch_norm_backward";
        return Ok(d);
    }
    let d = gpu.dispatch(
        key("backward", BN_APPLY_ROWS),
        &[
            x.binding(),
            mean.binding(),
            invstd.binding(),
            gamma.binding(),
            dy.binding(),
            dx.binding(),
            dgamma.binding(),
            dbeta.binding(),
            y.binding(),
        ],
        &params,
        gpu.grid_of_groups(c),
    )?;
    refresh_twin(gpu, d, dx)
}

fn activation_key(entry: &'static str, act: Activation) -> PipelineKey {
    PipelineKey {
        shader: Shader::Activation,
        entry,
        constants: vec![("ACT", act.code())],
    }
}

/// y = act(x), any shape.
pub fn activation_forward(gpu: &Gpu, x: &Tensor, y: &Tensor, act: Activation) -> Result<Dispatch> {
    let n = spec::elementwise_dims("activation", x.shape(), &[y.shape()])?;
    let d = gpu.dispatch(
        activation_key("forward", act),
        &[x.binding(), y.binding()],
        &[u(n), 0, f(act.alpha())],
        gpu.grid(n),
    )?;
    refresh_twin(gpu, d, y)
}

/// dx = dy * act'(x), computed from `saved`: the forward's output y, or its input x where the
/// activation saves its input ([`Activation::saves`]).
pub fn activation_backward(
    gpu: &Gpu,
    saved: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    act: Activation,
) -> Result<Dispatch> {
    let n = spec::elementwise_dims(
        "activation backward",
        saved.shape(),
        &[dy.shape(), dx.shape()],
    )?;
    let d = gpu.dispatch(
        activation_key("backward", act),
        &[saved.binding(), dy.binding(), dx.binding()],
        &[u(n), 0, f(act.alpha())],
        gpu.grid(n),
    )?;
    refresh_twin(gpu, d, dx)
}

/// Mean BCE of logits [N..] against `target`, into stats`[slot]`; mean sigmoid into stats[slot + 1];
/// grad = (sigmoid(x) - target) * scale / N.
pub fn bce_with_logits(
    gpu: &Gpu,
    logits: &Tensor,
    grad: &Tensor,
    stats: &Tensor,
    slot: usize,
    target: f32,
    scale: f32,
) -> Result<Dispatch> {
    let n = spec::bce_dims(logits.shape(), grad.shape(), stats.len(), slot)?;
    gpu.dispatch(
        key(Shader::Loss, "bce_with_logits"),
        &[logits.binding(), grad.binding(), stats.binding()],
        &[u(n), u(slot), f(target), f(scale)],
        [1, 1, 1],
    )
}

/// Hinge loss of logits against `sign` (+1: real, -1: fake): with `margin` (the
/// discriminator's terms) mean(max(0, 1 - sign * x)), without (the generator's) mean(-sign * x),
/// into stats`[slot]`, and mean sigmoid(x) into stats[slot + 1]; grad = scale * d(loss)/dx.
#[allow(clippy::too_many_arguments)]
pub fn hinge(
    gpu: &Gpu,
    logits: &Tensor,
    grad: &Tensor,
    stats: &Tensor,
    slot: usize,
    sign: f32,
    margin: bool,
    scale: f32,
) -> Result<Dispatch> {
    let n = spec::hinge_dims(logits.shape(), grad.shape(), stats.len(), slot, sign)?;
    gpu.dispatch(
        key(Shader::Loss, "hinge"),
        &[logits.binding(), grad.binding(), stats.binding()],
        &[u(n), u(slot), f(sign), f(scale), u(margin as usize)],
        [1, 1, 1],
    )
}

/// Mean softmax cross-entropy of logits [B, C] against class indices `labels` `[B]` (as f32) into
/// stats`[slot]`, accuracy into stats[slot + 1]; grad [B, C] = (softmax - onehot) * scale / B.
pub fn softmax_cross_entropy(
    gpu: &Gpu,
    logits: &Tensor,
    labels: &Tensor,
    grad: &Tensor,
    stats: &Tensor,
    slot: usize,
    scale: f32,
) -> Result<Dispatch> {
    let (rows, classes) = spec::cross_entropy_dims(
        logits.shape(),
        labels.shape(),
        grad.shape(),
        stats.len(),
        slot,
    )?;
    gpu.dispatch(
        key(Shader::Loss, "softmax_cross_entropy"),
        &[
            logits.binding(),
            labels.binding(),
            grad.binding(),
            stats.binding(),
        ],
        &[u(rows), u(classes), u(slot), f(scale)],
        [1, 1, 1],
    )
}

/// out `[cols]` (+)= column sums of x [rows, cols].
pub fn sum_over_rows(gpu: &Gpu, x: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    let (rows, cols) = spec::sum_dims(x.shape(), out.shape(), true)?;
    let (entry, grid) = per_column(gpu, "sum_over_rows", "sum_over_rows_serial4", cols);
    let mut key = key(Shader::Reduce, entry);
    let mut bindings = vec![x.binding(), out.binding()];
    if by_fours(gpu, cols) {
        let (x_texture, x_view) = twin_in(gpu, x);
        key.constants.push(("X_TEXTURE", x_texture));
        bindings.push(x_view);
    }
    gpu.dispatch(
        key,
        &bindings,
        &[u(rows), u(cols), u32::from(accumulate)],
        grid,
    )
}

/// out `[rows]` (+)= row sums of x [rows, cols].
pub fn sum_over_cols(gpu: &Gpu, x: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    let (rows, cols) = spec::sum_dims(x.shape(), out.shape(), false)?;
    gpu.dispatch(
        key(Shader::Reduce, "sum_over_cols"),
        &[x.binding(), out.binding()],
        &[u(rows), u(cols), u32::from(accumulate)],
        gpu.grid_of_groups(rows),
    )
}

/// out `[1]` = mean of every element of x.
pub fn mean_all(gpu: &Gpu, x: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let n = spec::mean_all_dims(x.shape(), out.shape())?;
    gpu.dispatch(
        key(Shader::Reduce, "mean_all"),
        &[x.binding(), out.binding()],
        &[u(n), 1, 0],
        [1, 1, 1],
    )
}

/// The uniform words of an Adam dispatch for step `t` (>= 1); rewrite them each step with
/// `Dispatch::set_params`.
pub fn adam_params(n: usize, spec: AdamSpec, t: u64) -> Vec<u32> {
    let (bc1, bc2) = spec.bias_corrections(t);
    vec![
        u(n),
        f(spec.lr),
        f(spec.beta1),
        f(spec.beta2),
        f(spec.eps),
        f(bc1),
        f(bc2),
    ]
}

/// One fused Adam step over params, grads, m, v (all the same size) at step t.
pub fn adam(
    gpu: &Gpu,
    params: &Tensor,
    grads: &Tensor,
    m: &Tensor,
    v: &Tensor,
    spec: AdamSpec,
    t: u64,
) -> Result<Dispatch> {
    let n = spec::elementwise_dims(
        "adam",
        params.shape(),
        &[grads.shape(), m.shape(), v.shape()],
    )?;
    gpu.dispatch(
        key(Shader::Adam, "adam"),
        &[params.binding(), grads.binding(), m.binding(), v.binding()],
        &adam_params(n, spec, t.max(1)),
        gpu.grid(n),
    )
}

/// avg = decay * avg + (1 - decay) * value, for a network's parameters and its state (batch-norm
/// running statistics) in one dispatch: the exponential moving average of its weights.
pub fn ema(
    gpu: &Gpu,
    avg_params: &Tensor,
    params: &Tensor,
    avg_state: &Tensor,
    state: &Tensor,
    decay: f32,
) -> Result<Dispatch> {
    let (n, ns) = spec::ema_dims(
        avg_params.shape(),
        params.shape(),
        avg_state.shape(),
        state.shape(),
        decay,
    )?;
    gpu.dispatch(
        key(Shader::Adam, "ema"),
        &[
            avg_params.binding(),
            params.binding(),
            avg_state.binding(),
            state.binding(),
        ],
        &[u(n), u(ns), f(decay)],
        gpu.grid(n + ns),
    )
}

/// dst = value.
pub fn fill(gpu: &Gpu, dst: &Tensor, value: f32) -> Result<Dispatch> {
    let n = dst.len();
    let d = gpu.dispatch(
        key(Shader::Elementwise, "fill"),
        &[dst.binding()],
        &[u(n), 1, f(value)],
        gpu.grid(n),
    )?;
    refresh_twin(gpu, d, dst)
}

/// dst = alpha * src.
pub fn scale(gpu: &Gpu, src: &Tensor, dst: &Tensor, alpha: f32) -> Result<Dispatch> {
    let n = spec::elementwise_dims("scale", src.shape(), &[dst.shape()])?;
    let d = gpu.dispatch(
        key(Shader::Elementwise, "scale"),
        &[src.binding(), dst.binding()],
        &[u(n), 1, f(alpha)],
        gpu.grid(n),
    )?;
    refresh_twin(gpu, d, dst)
}

/// dst = src.
pub fn copy(gpu: &Gpu, src: &Tensor, dst: &Tensor) -> Result<Dispatch> {
    scale(gpu, src, dst, 1.0)
}

/// dst = a + b.
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor, dst: &Tensor) -> Result<Dispatch> {
    let n = spec::elementwise_dims("add", a.shape(), &[b.shape(), dst.shape()])?;
    let d = gpu.dispatch(
        key(Shader::Elementwise, "add"),
        &[a.binding(), b.binding(), dst.binding()],
        &[u(n), 1, 0],
        gpu.grid(n),
    )?;
    refresh_twin(gpu, d, dst)
}

/// x [rows.., C] += bias `[C]`, in place.
pub fn add_bias(gpu: &Gpu, x: &Tensor, bias: &Tensor) -> Result<Dispatch> {
    let (n, c) = spec::add_bias_dims(x.shape(), bias.shape())?;
    let d = gpu.dispatch(
        key(Shader::Elementwise, "add_bias"),
        &[x.binding(), bias.binding()],
        &[u(n), u(c), 0],
        gpu.grid(n),
    )?;
    refresh_twin(gpu, d, x)
}

/// dst `[B]` = labels[order[offset + b]] as f32; labels: bytes packed 4 per u32.
pub fn gather_labels(
    gpu: &Gpu,
    labels: &Words,
    order: &Words,
    dst: &Tensor,
    offset: usize,
) -> Result<Dispatch> {
    let batch = spec::gather_labels_dims(dst.shape(), order.len, offset)?;
    gpu.dispatch(
        key(Shader::Batch, "gather_labels"),
        &[
            labels.buffer.as_entire_binding(),
            order.buffer.as_entire_binding(),
            dst.binding(),
        ],
        &gather_params(batch, 1, offset),
        gpu.grid(batch),
    )
}

/// The uniform words of a randn dispatch.
pub fn randn_params(n: usize, seed: u64, stream: u32) -> Vec<u32> {
    vec![u(n), seed as u32, (seed >> 32) as u32, stream]
}

/// dst = standard normal noise, a pure function of (seed, stream, element index).
pub fn randn(gpu: &Gpu, dst: &Tensor, seed: u64, stream: u32) -> Result<Dispatch> {
    let n = dst.len();
    gpu.dispatch(
        key(Shader::Rng, "randn"),
        &[dst.binding()],
        &randn_params(n, seed, stream),
        gpu.grid(n),
    )
}

/// dst = uniform class labels 0..9 (as f32), a pure function of (seed, stream, element index);
/// its parameters are randn's.
pub fn rand_labels(gpu: &Gpu, dst: &Tensor, seed: u64, stream: u32) -> Result<Dispatch> {
    let n = dst.len();
    gpu.dispatch(
        key(Shader::Rng, "rand_labels"),
        &[dst.binding()],
        &randn_params(n, seed, stream),
        gpu.grid(n),
    )
}

/// out [B, L + C] = [z | one_hot(labels)], z [B, L], labels `[B]`.
pub fn one_hot_concat(gpu: &Gpu, z: &Tensor, labels: &Tensor, out: &Tensor) -> Result<Dispatch> {
    let (rows, cols, classes) = spec::one_hot_concat_dims(z.shape(), labels.shape(), out.shape())?;
    gpu.dispatch(
        key(Shader::Conditional, "one_hot_concat"),
        &[z.binding(), labels.binding(), out.binding()],
        &[u(rows), u(cols), u(classes)],
        gpu.grid(out.len()),
    )
}

/// logits [B, 1] += <embed`[labels_b]`, features_b>; features [B, F], embed [C, F].
pub fn projection(
    gpu: &Gpu,
    features: &Tensor,
    embed: &Tensor,
    labels: &Tensor,
    logits: &Tensor,
) -> Result<Dispatch> {
    let (rows, f, classes) = spec::projection_dims(
        features.shape(),
        embed.shape(),
        labels.shape(),
        logits.shape(),
    )?;
    gpu.dispatch(
        key(Shader::Conditional, "projection"),
        &[
            features.binding(),
            embed.binding(),
            labels.binding(),
            logits.binding(),
        ],
        &[u(rows), u(f), u(classes)],
        [u(rows.div_ceil(64)), 1, 1],
    )
}

/// dfeatures [B, F] += dlogits_b * embed`[labels_b]`.
pub fn projection_backward_input(
    gpu: &Gpu,
    dlogits: &Tensor,
    embed: &Tensor,
    labels: &Tensor,
    dfeatures: &Tensor,
) -> Result<Dispatch> {
    let (rows, f, classes) = spec::projection_dims(
        dfeatures.shape(),
        embed.shape(),
        labels.shape(),
        dlogits.shape(),
    )?;
    gpu.dispatch(
        key(Shader::Conditional, "projection_backward_input"),
        &[
            dlogits.binding(),
            embed.binding(),
            labels.binding(),
            dfeatures.binding(),
        ],
        &[u(rows), u(f), u(classes)],
        gpu.grid(rows * f),
    )
}

/// dembed [C, F] += sum over the rows with label c of dlogits_b * features_b.
pub fn projection_backward_params(
    gpu: &Gpu,
    dlogits: &Tensor,
    features: &Tensor,
    labels: &Tensor,
    dembed: &Tensor,
) -> Result<Dispatch> {
    let (rows, f, classes) = spec::projection_dims(
        features.shape(),
        dembed.shape(),
        labels.shape(),
        dlogits.shape(),
    )?;
    gpu.dispatch(
        key(Shader::Conditional, "projection_backward_params"),
        &[
            dlogits.binding(),
            features.binding(),
            labels.binding(),
            dembed.binding(),
        ],
        &[u(rows), u(f), u(classes)],
        gpu.grid(classes * f),
    )
}

/// The uniform words of a gather dispatch.
pub fn gather_params(batch: usize, pixels: usize, offset: usize) -> Vec<u32> {
    vec![u(batch), u(pixels), u(offset)]
}

/// dst [B, pixels] = images[order[offset + b]] / 127.5 - 1; images: bytes packed 4 per u32.
pub fn gather_batch(
    gpu: &Gpu,
    images: &Words,
    order: &Words,
    dst: &Tensor,
    offset: usize,
) -> Result<Dispatch> {
    let (batch, pixels) = spec::gather_dims(dst.shape(), order.len, offset)?;
    gpu.dispatch(
        key(Shader::Batch, "gather"),
        &[
            images.buffer.as_entire_binding(),
            order.buffer.as_entire_binding(),
            dst.binding(),
        ],
        &gather_params(batch, pixels, offset),
        gpu.grid(dst.len()),
    )
}
