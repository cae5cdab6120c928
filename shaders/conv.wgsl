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
// col2im: dx *= ACT'(y), the derivative of the activation whose output y this input was (a
// constant, so that without one y is never read).
override ACT: u32 = 0u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// src = x, dst = cols; one invocation per (output pixel, input channel) writes its K*K entries.
@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    // Uniforms copied before any branch: read later, each is a per-lane load on llvmpipe.
    let h = p.h;
    let w = p.w;
    let c = p.c;
    let oh = p.oh;
    let ow = p.ow;
    if (idx >= p.total) {
        return;
    }
    let ci = idx % c;
    let r = idx / c;
    let ox = r % ow;
    let t = r / ow;
    let oy = t % oh;
    let bi = t / oh;
    let area = KERNEL * KERNEL;
    let out_base = r * c * area + ci * area;
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
// fixed order: deterministic, no atomics.
@group(0) @binding(0) var<storage, read> c2_dcols: array<f32>;
@group(0) @binding(1) var<storage, read_write> c2_dx: array<f32>;
@group(0) @binding(2) var<storage, read> c2_y: array<f32>;
@group(0) @binding(3) var<uniform> c2_p: Params;

@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    // Uniforms copied before any branch: read later, each is a per-lane load on llvmpipe.
    let h = c2_p.h;
    let w = c2_p.w;
    let c = c2_p.c;
    let oh = c2_p.oh;
    let ow = c2_p.ow;
    let alpha = c2_p.alpha;
    if (idx >= c2_p.total) {
        return;
    }
    let ci = idx % c;
    let pix = idx / c;
    let ix = pix % w;
    let t = pix / w;
    let iy = t % h;
    let bi = t / h;
    let area = KERNEL * KERNEL;
    let row_len = c * area;
    var sum = 0.0;
    for (var ky = 0u; ky < KERNEL; ky++) {
        let ty = iy + PAD;
        if (ty < ky || (ty - ky) % STRIDE != 0u || (ty - ky) / STRIDE >= oh) {
            continue;
        }
        let oy = (ty - ky) / STRIDE;
        for (var kx = 0u; kx < KERNEL; kx++) {
            let tx = ix + PAD;
            if (tx < kx || (tx - kx) % STRIDE != 0u || (tx - kx) / STRIDE >= ow) {
                continue;
            }
            let ox = (tx - kx) / STRIDE;
            let r = (bi * oh + oy) * ow + ox;
            sum += c2_dcols[r * row_len + ci * area + ky * KERNEL + kx];
        }
    }
    c2_dx[idx] = sum * derivative_from_output(c2_y[idx], ACT, alpha);
}
