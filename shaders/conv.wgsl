// im2col / col2im for 2-D convolution on NHWC tensors.
// x: [B, H, W, C]; cols: [B * OH * OW, C * KH * KW] with the column order (c, ky, kx), which is
// PyTorch's flattening of a [C_out, C_in, KH, KW] weight, so conv = cols * W^T gives [B, OH, OW, C_out]
// (NHWC again) straight out of the matmul.

struct Params {
    b: u32,
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    total: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// src = x, dst = cols; one invocation per element of cols.
@compute @workgroup_size(256)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.total) {
        return;
    }
    let kk = p.c * p.kh * p.kw;
    let r = idx / kk;
    let q = idx % kk;
    let ci = q / (p.kh * p.kw);
    let ky = (q / p.kw) % p.kh;
    let kx = q % p.kw;
    let ox = r % p.ow;
    let oy = (r / p.ow) % p.oh;
    let bi = r / (p.ow * p.oh);
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let ix = i32(ox * p.stride + kx) - i32(p.pad);
    var v = 0.0;
    if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
        v = src[((bi * p.h + u32(iy)) * p.w + u32(ix)) * p.c + ci];
    }
    dst[idx] = v;
}

// src = cols (gradient), dst = dx; the adjoint of im2col. Each input element gathers the window
// entries that read it, in a fixed order: deterministic, no atomics.
@compute @workgroup_size(256)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= p.total) {
        return;
    }
    let ci = idx % p.c;
    let ix = (idx / p.c) % p.w;
    let iy = (idx / (p.c * p.w)) % p.h;
    let bi = idx / (p.c * p.w * p.h);
    let kk = p.c * p.kh * p.kw;
    var sum = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let ty = i32(iy + p.pad) - i32(ky);
        if (ty < 0 || ty % i32(p.stride) != 0) {
            continue;
        }
        let oy = u32(ty) / p.stride;
        if (oy >= p.oh) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let tx = i32(ix + p.pad) - i32(kx);
            if (tx < 0 || tx % i32(p.stride) != 0) {
                continue;
            }
            let ox = u32(tx) / p.stride;
            if (ox >= p.ow) {
                continue;
            }
            let r = (bi * p.oh + oy) * p.ow + ox;
            sum += src[r * kk + (ci * p.kh + ky) * p.kw + kx];
        }
    }
    dst[idx] = sum;
}
