// Packed operands: a matrix as an rgba32float texture, four values per texel, k-major, the layout
// matmul_lanes.wgsl `main_packed` reads (and a tensor's texture twin, src/gpu/tensor.rs, has).
// No subgroups here, so adapters without them can pack too (texture twins).

// pack: dst texel (x, kk) = X[kk, 4x .. 4x + 3] of a logical X [K, J], zero past J.
// X is `src` as stored [K, J], or its transpose when src is stored [J, K] (`transpose` = 1).
// With `taps` > 0, X's columns are a convolution weight's (channel, tap) columns reordered to
// (tap, channel), so that a product's output holds four channels of one tap per texel (what
// conv.wgsl `col2im` reads with DCOLS_TEXTURE).
struct PackParams {
    k: u32,
    j: u32,
    transpose: u32,
    taps: u32,
}

@group(0) @binding(0) var<storage, read> pk_src: array<f32>;
@group(0) @binding(1) var pk_dst: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> pk_p: PackParams;

fn pack_element(kk: u32, jj: u32, k: u32, j: u32, transpose: bool) -> f32 {
    var clamped = min(jj, j - 1u);
    let taps = pk_p.taps;
    if (taps > 0u) {
        let channels = j / taps;
        clamped = (clamped % channels) * taps + clamped / channels;
    }
    var v: f32;
    if (transpose) {
        v = pk_src[clamped * k + kk];
    } else {
        v = pk_src[kk * j + clamped];
    }
    return select(0.0, v, jj < j);
}

// Invocation (x, kk) writes texel (x, kk); when transposing, gid is (kk, x) instead, so that the
// 8 lanes of a SIMD group read neighbouring addresses of src either way.
@compute @workgroup_size(8, 8)
fn pack(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = pk_p.k;
    let j = pk_p.j;
    let transpose = pk_p.transpose != 0u;
    let at = select(gid.xy, gid.yx, transpose);
    let x = at.x;
    let kk = min(at.y, k - 1u);
    let j0 = 4u * x;
    let v = vec4<f32>(pack_element(kk, j0, k, j, transpose), pack_element(kk, j0 + 1u, k, j, transpose),
                      pack_element(kk, j0 + 2u, k, j, transpose), pack_element(kk, j0 + 3u, k, j, transpose));
    if (at.y < k && j0 < j) {
        textureStore(pk_dst, vec2<u32>(x, kk), v);
    }
}

// ---- pack_twin: `pack` with `transpose` of a src [J, K] that has a texture twin
// (src/gpu/tensor.rs: texel (q, jj) holds src[jj, 4q .. 4q + 3]), from texel fetches instead of
// storage loads: dst texel (x, kk) = src[4x .. 4x + 3, kk], zero past J.
@group(0) @binding(0) var pt_src: texture_2d<f32>;
@group(0) @binding(1) var pt_dst: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> pt_p: PackParams;

@compute @workgroup_size(8, 8)
fn pack_twin(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = pt_p.k;
    let j = pt_p.j;
    let kk = min(gid.x, k - 1u);
    let x = gid.y;
    let j0 = 4u * x;
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        let t = textureLoad(pt_src, vec2<u32>(kk / 4u, min(j0 + i, j - 1u)), 0)[kk % 4u];
        v[i] = select(0.0, t, j0 + i < j);
    }
    if (gid.x < k && j0 < j) {
        textureStore(pt_dst, vec2<u32>(x, kk), v);
    }
}
