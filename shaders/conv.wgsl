// im2col / col2im for 2-D convolution on NHWC tensors.
// x: [B, H, W, C]; cols: [B * OH * OW, C * K * K] with the column order (c, ky, kx), which is
// PyTorch's flattening of a [C_out, C_in, K, K] weight, so conv = cols * W^T gives [B, OH, OW, C_out]
// (NHWC again) straight out of the matmul.
// Kernel size, stride and padding are pipeline constants: divisions by them compile to shifts and
// multiplies, where a division by a runtime value is slow on some drivers (llvmpipe).

struct Params {
    b: u32,
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    // invocations: B*OH*OW*C for im2col, B*H*W*C for col2im
    total: u32,
    _pad3: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override KERNEL: u32 = 3u;
override STRIDE: u32 = 1u;
override PAD: u32 = 0u;
// The image's and the output's sides and the channels, constants for the same reason: the index
// arithmetic divides by them (a few divisions per element otherwise dominate im2col on llvmpipe).
// The batch stays a runtime value (Params.b), so every batch size shares these pipelines.
override IN_H: u32 = 1u;
override IN_W: u32 = 1u;
override IN_C: u32 = 1u;
override OUT_H: u32 = 1u;
override OUT_W: u32 = 1u;
// col2im: dx *= ACT'(y), the derivative of the activation whose output y this input was (a
// constant, so that without one y is never read).
override ACT: u32 = 0u;
// The kernel also writes its output's texture twin (src/gpu/tensor.rs): conv_small, and col2im
// with DCOLS_TEXTURE.
override TWIN_OUT: bool = false;

// (a / b, a % b).
fn divmod_index(a: u32, b: u32) -> vec2<u32> {
    let q = a / b;
    return vec2<u32>(q, a - q * b);
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// src = x, dst = cols; one invocation per (output pixel, input channel) writes its K*K entries.
@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    // Uniforms copied before any branch: read later, each is a per-lane load on llvmpipe.
    let h = IN_H;
    let w = IN_W;
    let c = IN_C;
    let oh = OUT_H;
    let ow = OUT_W;
    if (idx >= p.total) {
        return;
    }
    let r = divmod_index(idx, c);
    let ci = r.y;
    let t = divmod_index(r.x, ow);
    let ox = t.y;
    let u = divmod_index(t.x, oh);
    let oy = u.y;
    let bi = u.x;
    let area = KERNEL * KERNEL;
    let out_base = r.x * c * area + ci * area;
    for (var ky = 0u; ky < KERNEL; ky++) {
        let iy = i32(oy * STRIDE + ky) - i32(PAD);
        for (var kx = 0u; kx < KERNEL; kx++) {
            let ix = i32(ox * STRIDE + kx) - i32(PAD);
            var v = 0.0;
            if (iy >= 0 && iy < i32(h) && ix >= 0 && ix < i32(w)) {
                v = src[((bi * h + u32(iy)) * w + u32(ix)) * c + ci];
            }
            dst[out_base + ky * KERNEL + kx] = v;
        }
    }
}

// The adjoint of im2col: dx = col2im(dcols), times act'(y) when an activation produced x (fused
// here to save a dispatch). Each input element gathers the window entries that read it, in a
// fixed order: deterministic, no atomics. dcols is a buffer, or with DCOLS_TEXTURE an rgba32float
// texture whose columns are in (tap, channel) order, four channels of one tap per texel (texel
// (tap * C/4 + c/4, r)), as matmul_lanes.wgsl writes it with TEXTURE_OUT after a `pack` with
// taps: an invocation then computes four channels of dx, and each fetch uses the whole texel
// (llvmpipe loads all four channels of a fetch lane by lane, used or not). C % 4 == 0 there.
override DCOLS_TEXTURE: bool = false;

// With DCOLS_TEXTURE (four channels per invocation) y may be read from its texture twin
// (Y_TEXTURE), and dx's twin written too (TWIN_OUT).
override Y_TEXTURE: bool = false;

@group(0) @binding(0) var<storage, read> c2_dcols: array<f32>;
@group(0) @binding(1) var<storage, read_write> c2_dx: array<f32>;
@group(0) @binding(2) var<storage, read> c2_y: array<f32>;
@group(0) @binding(3) var c2_dcols_texture: texture_2d<f32>;
@group(0) @binding(4) var c2_y_texture: texture_2d<f32>;
@group(0) @binding(5) var c2_dx_twin: texture_storage_2d<rgba32float, write>;
@group(0) @binding(6) var<uniform> c2_p: Params;


@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    // Uniforms copied before any branch: read later, each is a per-lane load on llvmpipe.
    let h = IN_H;
    let w = IN_W;
    let c = IN_C;
    let oh = OUT_H;
    let ow = OUT_W;
    let alpha = c2_p.alpha;
    // Channels per pixel, or groups of four channels.
    let groups = select(c, c / 4u, DCOLS_TEXTURE);
    if (idx >= select(c2_p.total, c2_p.total / 4u, DCOLS_TEXTURE)) {
        return;
    }
    let p = divmod_index(idx, groups);
    let ci = p.y;
    let q = divmod_index(p.x, w);
    let ix = q.y;
    let s = divmod_index(q.x, h);
    let iy = s.y;
    let bi = s.x;
    let area = KERNEL * KERNEL;
    let row_len = c * area;
    var sum = vec4<f32>(0.0);
    for (var ky = 0u; ky < KERNEL; ky++) {
        // Past the edges ty - ky wraps around; `valid` drops those taps, min keeps them in range.
        let ty = iy + PAD;
        let y_ok = ty >= ky && (ty - ky) % STRIDE == 0u && (ty - ky) / STRIDE < oh;
        let oy = min((ty - ky) / STRIDE, oh - 1u);
        for (var kx = 0u; kx < KERNEL; kx++) {
            let tx = ix + PAD;
            let valid = y_ok && tx >= kx && (tx - kx) % STRIDE == 0u && (tx - kx) / STRIDE < ow;
            let r = (bi * oh + oy) * ow + min((tx - kx) / STRIDE, ow - 1u);
            let tap = ky * KERNEL + kx;
            if (DCOLS_TEXTURE) {
                // Every tap fetched and the invalid ones dropped: llvmpipe would run a branch's
                // body under a mask anyway.
                let texel = textureLoad(c2_dcols_texture, vec2<u32>(tap * groups + ci, r), 0);
                sum += select(vec4<f32>(0.0), texel, valid);
            } else if (valid) {
                sum.x += c2_dcols[r * row_len + ci * area + tap];
            }
        }
    }
    if (DCOLS_TEXTURE) {
        let first = p.x * c + 4u * ci;
        var y: vec4<f32>;
        if (Y_TEXTURE) {
            y = textureLoad(c2_y_texture, vec2<u32>(ci, p.x), 0);
        } else {
            y = vec4<f32>(c2_y[first], c2_y[first + 1u], c2_y[first + 2u], c2_y[first + 3u]);
        }
        let dx = sum * derivative4(y, ACT, alpha);
        for (var i = 0u; i < 4u; i++) {
            c2_dx[first + i] = dx[i];
        }
        if (TWIN_OUT) {
            textureStore(c2_dx_twin, vec2<u32>(ci, p.x), dx);
        }
    } else {
        c2_dx[idx] = sum.x * derivative(c2_y[idx], ACT, alpha);
    }
}

// ---- im2col straight into a packed operand of matmul_lanes.wgsl's `main_packed`, so that a
// convolution's product reads texels and no cols matrix is written and then packed. Texel
// (x, kk) holds X[kk, 4x .. 4x + 3] of a logical X [KX, JX], zero past JX:
// COLS_MAJOR false: X = cols^T [C*K*K, B*OH*OW] (the forward's op(A): four windows per texel);
// COLS_MAJOR true: X = cols [B*OH*OW, C*K*K] (the weight gradient's op(B): four columns).
override COLS_MAJOR: bool = false;
// The packed texture's width in texels (a constant: idx is divided by it).
override TEX_W: u32 = 1u;

// With X_TEXTURE, x is read from its texture twin (src/gpu/tensor.rs: texel (q, pixel) holds
// channels 4q .. 4q + 3), a vectorised gather on llvmpipe, instead of the buffer.
override X_TEXTURE: bool = false;

@group(0) @binding(0) var<storage, read> ip_x: array<f32>;
@group(0) @binding(1) var ip_packed: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var ip_x_texture: texture_2d<f32>;
@group(0) @binding(3) var<uniform> ip_p: Params;

// Row r of cols: the window's image, top-left corner (may lie in the padding), and whether r is
// a row at all.
struct Window {
    bi: u32,
    y0: i32,
    x0: i32,
    live: bool,
}

fn window(r: u32, g: Params) -> Window {
    let rows = g.b * OUT_H * OUT_W;
    let t = divmod_index(min(r, rows - 1u), OUT_W);
    let u = divmod_index(t.x, OUT_H);
    return Window(u.x, i32(u.y * STRIDE) - i32(PAD), i32(t.y * STRIDE) - i32(PAD), r < rows);
}

// cols[r, j] for r's window, or 0 where it reads padding or (r, j) is past the matrix; the load
// itself is clamped into x, so no branch holds it.
fn cols_at(win: Window, j: u32, g: Params) -> f32 {
    let area = KERNEL * KERNEL;
    let jj = min(j, IN_C * area - 1u);
    let ci = jj / area;
    let tap = jj % area;
    let iy = win.y0 + i32(tap / KERNEL);
    let ix = win.x0 + i32(tap % KERNEL);
    let inside = iy >= 0 && iy < i32(IN_H) && ix >= 0 && ix < i32(IN_W) && win.live && j < IN_C * area;
    let sy = u32(clamp(iy, 0, i32(IN_H) - 1));
    let sx = u32(clamp(ix, 0, i32(IN_W) - 1));
    let pixel = (win.bi * IN_H + sy) * IN_W + sx;
    var v: f32;
    if (X_TEXTURE) {
        v = textureLoad(ip_x_texture, vec2<u32>(ci / 4u, pixel), 0)[ci % 4u];
    } else {
        v = ip_x[pixel * IN_C + ci];
    }
    return select(0.0, v, inside);
}

@compute @workgroup_size(256)
fn im2col_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let g = ip_p;
    let at = divmod_index(idx, TEX_W);
    let x = at.y;
    let kk = at.x;
    var v: vec4<f32>;
    if (COLS_MAJOR) {
        let win = window(kk, g);
        v = vec4<f32>(cols_at(win, 4u * x, g), cols_at(win, 4u * x + 1u, g),
                      cols_at(win, 4u * x + 2u, g), cols_at(win, 4u * x + 3u, g));
    } else {
        v = vec4<f32>(cols_at(window(4u * x, g), kk, g), cols_at(window(4u * x + 1u, g), kk, g),
                      cols_at(window(4u * x + 2u, g), kk, g), cols_at(window(4u * x + 3u, g), kk, g));
    }
    if (idx < g.total) {
        textureStore(ip_packed, vec2<u32>(x, kk), v);
    }
}

// ---- Direct kernels for a convolution whose weight is small (the first layer's: 1 channel,
// 3x3, so C*K*K = 9), where the GEMM is degenerate (K = 9 in the forward, N = 9 in the input
// gradient) and its cost is the output's stores. One invocation per output pixel. The weight
// (and bias) are read from a uniform buffer, which `stage_small` fills from the parameters: on
// llvmpipe a uniform load is a branchless gather, where a storage load is a loop over the lanes.
// OUT_C is the convolution's output channels (a multiple of 4); IN_C * K * K <= SMALL_DEPTH_MAX
// and OUT_C * (IN_C * K * K + 1) <= 4 * SMALL_STAGE.
override OUT_C: u32 = 4u;
const SMALL_DEPTH_MAX: u32 = 16u;
const SMALL_STAGE: u32 = 1024u;

@group(0) @binding(0) var<storage, read> st_w: array<f32>;
@group(0) @binding(1) var<storage, read> st_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> st_out: array<f32>;
@group(0) @binding(3) var<uniform> st_p: Params;

// The staged operand: W [OUT_C, IN_C*K*K] row-major, then the bias [OUT_C] (for dcols_small,
// which has none, the weight's first OUT_C values stand in and are never read).

@compute @workgroup_size(256)
fn stage_small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let nw = OUT_C * IN_C * KERNEL * KERNEL;
    if (idx < nw) {
        st_out[idx] = st_w[idx];
    } else if (idx < st_p.total) {
        st_out[idx] = st_b[idx - nw];
    }
}

// The staged weight and bias, bound at 1 by both direct kernels.
@group(0) @binding(1) var<uniform> small_wb: array<vec4<f32>, SMALL_STAGE>;

fn staged(m: u32) -> f32 {
    return small_wb[m / 4u][m % 4u];
}

// W[4g .. 4g + 3, j] of the staged W [OUT_C, depth].
fn staged_column(g: u32, j: u32, depth: u32) -> vec4<f32> {
    return vec4<f32>(staged((4u * g) * depth + j), staged((4u * g + 1u) * depth + j),
                     staged((4u * g + 2u) * depth + j), staged((4u * g + 3u) * depth + j));
}

@group(0) @binding(0) var<storage, read> sm_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> sm_out4: array<vec4<f32>>;
@group(0) @binding(3) var sm_twin: texture_storage_2d<rgba32float, write>;
@group(0) @binding(4) var<uniform> sm_p: Params;

// y [B*OH*OW, OUT_C] = act(im2col(x) W^T + b), x [B, H, W, IN_C], W [OUT_C, IN_C*K*K]: each
// output is its window's sum in column order, then the bias, as the matmul sums.
@compute @workgroup_size(256)
fn conv_small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let alpha = sm_p.alpha;
    let rows = sm_p.total;
    let area = KERNEL * KERNEL;
    let depth = IN_C * area;
    let t = divmod_index(min(idx, rows - 1u), OUT_W);
    let u = divmod_index(t.x, OUT_H);
    let y0 = i32(u.y * STRIDE) - i32(PAD);
    let x0 = i32(t.y * STRIDE) - i32(PAD);
    var win: array<f32, SMALL_DEPTH_MAX>;
    for (var j = 0u; j < depth; j++) {
        let ci = j / area;
        let tap = j % area;
        let iy = y0 + i32(tap / KERNEL);
        let ix = x0 + i32(tap % KERNEL);
        let inside = iy >= 0 && iy < i32(IN_H) && ix >= 0 && ix < i32(IN_W);
        let sy = u32(clamp(iy, 0, i32(IN_H) - 1));
        let sx = u32(clamp(ix, 0, i32(IN_W) - 1));
        win[j] = select(0.0, sm_in[((u.x * IN_H + sy) * IN_W + sx) * IN_C + ci], inside);
    }
    for (var g = 0u; g < OUT_C / 4u; g++) {
        var acc = vec4<f32>(0.0);
        for (var j = 0u; j < depth; j++) {
            acc += win[j] * staged_column(g, j, depth);
        }
        let nw = OUT_C * depth;
        let b = vec4<f32>(staged(nw + 4u * g), staged(nw + 4u * g + 1u), staged(nw + 4u * g + 2u),
                          staged(nw + 4u * g + 3u));
        let v = acc + b;
        let y = activate4(v, ACT, alpha);
        if (idx < rows) {
            sm_out4[idx * (OUT_C / 4u) + g] = y;
            if (TWIN_OUT) {
                textureStore(sm_twin, vec2<u32>(g, idx), y);
            }
        }
    }
}

@group(0) @binding(0) var<storage, read> sd_dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sd_dcols: array<f32>;
@group(0) @binding(3) var<uniform> sd_p: Params;

// dcols [B*OH*OW, IN_C*K*K] = dy W, dy [B*OH*OW, OUT_C]: the input gradient's product, each
// entry summed over the output channels in order; col2im then gathers dcols into dx.
@compute @workgroup_size(256)
fn dcols_small(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let rows = sd_p.total;
    let depth = IN_C * KERNEL * KERNEL;
    let r = min(idx, rows - 1u);
    var acc: array<f32, SMALL_DEPTH_MAX>;
    for (var g = 0u; g < OUT_C / 4u; g++) {
        let dy = sd_dy4[r * (OUT_C / 4u) + g];
        for (var j = 0u; j < depth; j++) {
            let w = staged_column(g, j, depth);
            // In channel order, as the product sums.
            acc[j] += dy.x * w.x;
            acc[j] += dy.y * w.y;
            acc[j] += dy.z * w.z;
            acc[j] += dy.w * w.w;
        }
    }
    for (var j = 0u; j < depth; j++) {
        if (idx < rows) {
            sd_dcols[idx * depth + j] = acc[j];
        }
    }
}
