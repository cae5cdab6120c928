// C[M, N] = op(A)[M, K] * op(B)[K, N] (+ C) (+ bias[N]), then an optional activation: the same
// product, parameters and split-K contract as matmul.wgsl, shaped for CPU drivers (llvmpipe).
//
// llvmpipe runs 8 invocations as the 8 lanes of one SIMD group and turns every storage-buffer
// load inside a loop into a loop over the lanes (about 25 cycles per element), while arithmetic
// and subgroup broadcasts are single vector instructions. So this kernel minimises loads per
// multiply-add: a workgroup is one subgroup of 8 lanes computing a 32 x 32 tile of C; each lane
// owns a 32-row x 4-column block (32 vec4 accumulators). Per 8 steps of k, lane j loads
// A[row, k0 + j] for the 32 rows and its own 4 columns of B for the 8 k; the A values reach
// every lane by `subgroupBroadcast` instead of 8 separate loads. No workgroup memory, no
// barriers, no early returns: out-of-range rows, columns and k are clamped or zeroed and
// dropped at the store.
//
// `main_packed` reads both operands from rgba32float textures that pack.wgsl fills (k-major,
// four consecutive rows of op(A) or columns of op(B) per texel): a texel fetch is a vectorised gather
// on llvmpipe, about a quarter of the cost of four storage loads, and one texel feeds 4 rows or
// columns. Packing costs one storage load per element, so it pays when each element is reused
// by several tiles (ops.rs chooses).
//
// With TEXTURE_OUT, C goes to an rgba32float texture instead (texel (x, row) = C[row, 4x .. 4x + 3]),
// one texel store per row of a lane's block where the buffer takes four scalar stores (each a loop
// over the lanes on llvmpipe), for a consumer that reads texels (conv.wgsl `col2im`).
//
// Needs subgroups of at least 8 invocations with the workgroup's 8 invocations in one subgroup
// (src/gpu/ops.rs `MatmulPlan::choose` picks it only there). Each accumulator sums k in order,
// so a run is deterministic, as with the tiled kernel.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad0: u32,
    alpha: f32,
    // K per split (a multiple of 8); k when not split
    k_chunk: u32,
    splits: u32,
    _pad: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override SPLIT: bool = false;
// The epilogue: pipeline constants, not uniform flags, so that llvmpipe compiles only the code a
// product needs (it runs both sides of every branch under a mask, loads included).
override BIAS: bool = false;
override ACCUMULATE: bool = false;
// Activation mode (common.wgsl).
override ACT: u32 = 0u;
// C into `c_texture` (no split, no accumulate); `c` is then unused.
override TEXTURE_OUT: bool = false;
// C's texture twin (src/gpu/tensor.rs) in `c_texture` too, besides the buffer (no split).
override TWIN_OUT: bool = false;

const ROWS: u32 = 32u;
const COLS: u32 = 32u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var c_texture: texture_storage_2d<rgba32float, write>;
@group(0) @binding(5) var<uniform> p: Params;

// main_packed's operands: texel (x, kk) holds op(A)[4x .. 4x + 3, kk] and op(B)[kk, 4x .. 4x + 3].
@group(0) @binding(0) var a_packed: texture_2d<f32>;
@group(0) @binding(1) var b_packed: texture_2d<f32>;

// op(A)[row, kk], or 0 where kk is past the chunk (`live` false); kk is in range, and rows past
// M read the last row (their results are never stored).
fn load_a(row_unclamped: u32, kk: u32, live: bool, m: u32, k: u32) -> f32 {
    let row = min(row_unclamped, m - 1u);
    var v: f32;
    if (TRANS_A) {
        v = a[kk * m + row];
    } else {
        v = a[row * k + kk];
    }
    return select(0.0, v, live);
}

// op(B)[kk, cols.x .. cols.w]; the columns are clamped into range.
fn load_b(kk: u32, cols: vec4<u32>, n: u32, k: u32) -> vec4<f32> {
    if (TRANS_B) {
        return vec4<f32>(b[cols.x * k + kk], b[cols.y * k + kk], b[cols.z * k + kk], b[cols.w * k + kk]);
    }
    let base = kk * n;
    return vec4<f32>(b[base + cols.x], b[base + cols.y], b[base + cols.z], b[base + cols.w]);
}

// op(A)[row .. row + 3, kk] (see load_a).
fn load_a4(row: u32, kk: u32, live: bool, m: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(load_a(row, kk, live, m, k), load_a(row + 1u, kk, live, m, k),
                     load_a(row + 2u, kk, live, m, k), load_a(row + 3u, kk, live, m, k));
}

// The 8 values of op(B) at k0 .. k0 + 7 for this lane's columns.
struct B8 {
    k0: vec4<f32>, k1: vec4<f32>, k2: vec4<f32>, k3: vec4<f32>,
    k4: vec4<f32>, k5: vec4<f32>, k6: vec4<f32>, k7: vec4<f32>,
}

// acc + sum over j of A[row, k0 + j] * B[k0 + j, cols], where lane j holds A[row, k0 + j] in `a_lane`.
fn row_step(acc: vec4<f32>, a_lane: f32, bs: B8) -> vec4<f32> {
    var s = acc;
    s += subgroupBroadcast(a_lane, 0u) * bs.k0;
    s += subgroupBroadcast(a_lane, 1u) * bs.k1;
    s += subgroupBroadcast(a_lane, 2u) * bs.k2;
    s += subgroupBroadcast(a_lane, 3u) * bs.k3;
    s += subgroupBroadcast(a_lane, 4u) * bs.k4;
    s += subgroupBroadcast(a_lane, 5u) * bs.k5;
    s += subgroupBroadcast(a_lane, 6u) * bs.k6;
    s += subgroupBroadcast(a_lane, 7u) * bs.k7;
    return s;
}

// Four rows of a lane's block.
struct Rows4 {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
}

// row_step for four rows, whose A values (this lane's k) are a4.x .. a4.w.
fn rows4_step(acc: Rows4, a4: vec4<f32>, bs: B8) -> Rows4 {
    return Rows4(row_step(acc.r0, a4.x, bs), row_step(acc.r1, a4.y, bs),
                 row_step(acc.r2, a4.z, bs), row_step(acc.r3, a4.w, bs));
}

// Bias, accumulate and activation, applied where C is finally written.
fn epilogue(idx: u32, col: u32, v: f32) -> f32 {
    var x = v;
    if (ACCUMULATE) {
        x += c[idx];
    }
    if (BIAS) {
        x += bias[col];
    }
    return activate(x, ACT, p.alpha);
}

// Writes the 32 x 4 block of a lane (rows from row0, columns from col); the staging array keeps
// one copy of the epilogue in the compiled code.
fn store_block(row0: u32, col: u32, split: u32, block: array<Rows4, 8>) {
    for (var q = 0u; q < 8u; q++) {
        let rows = block[q];
        store_row(row0 + 4u * q, col, split, rows.r0);
        store_row(row0 + 4u * q + 1u, col, split, rows.r1);
        store_row(row0 + 4u * q + 2u, col, split, rows.r2);
        store_row(row0 + 4u * q + 3u, col, split, rows.r3);
    }
}

// Writes one row of a lane's block (4 columns from col): through the epilogue, or raw into a
// split's slice of the workspace.
fn store_row(row: u32, col: u32, split: u32, v: vec4<f32>) {
    let m = p.m;
    let n = p.n;
    if (TEXTURE_OUT) {
        // Columns past N hold what zero-padded B gave them; the texture's width ends there.
        if (row < m && col < n) {
            let last = vec4<u32>(n - 1u);
            let cols = min(vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u), last);
            let out = vec4<f32>(epilogue(0u, cols.x, v.x), epilogue(0u, cols.y, v.y),
                                epilogue(0u, cols.z, v.z), epilogue(0u, cols.w, v.w));
            textureStore(c_texture, vec2<u32>(col / 4u, row), out);
        }
        return;
    }
    var out = v;
    for (var j = 0u; j < 4u; j++) {
        if (row < m && col + j < n) {
            let idx = row * n + col + j;
            if (SPLIT) {
                c[split * m * n + idx] = v[j];
            } else {
                out[j] = epilogue(idx, col + j, v[j]);
                c[idx] = out[j];
            }
        }
    }
    if (TWIN_OUT && row < m && col < n) {
        textureStore(c_texture, vec2<u32>(col / 4u, row), out);
    }
}

@compute @workgroup_size(8)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // Uniforms copied once: a uniform read inside the loop would be a per-lane load too.
    let m = p.m;
    let n = p.n;
    let k = p.k;
    let k_begin = wg.z * p.k_chunk;
    let k_end = min(k, k_begin + p.k_chunk);
    let row0 = wg.y * ROWS;
    let col = wg.x * COLS + lid.x * 4u;
    let cols = min(vec4<u32>(col) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(n - 1u));
    // Named accumulators, not an array: llvmpipe keeps a loop-indexed array in memory.
    let zero = Rows4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var c0 = zero; var c1 = zero; var c2 = zero; var c3 = zero;
    var c4 = zero; var c5 = zero; var c6 = zero; var c7 = zero;
    for (var k0 = k_begin; k0 < k_end; k0 += 8u) {
        // k past the chunk: B reads a valid row, A gives 0, so the product adds nothing.
        let last = k_end - 1u;
        let bs = B8(
            load_b(min(k0, last), cols, n, k), load_b(min(k0 + 1u, last), cols, n, k),
            load_b(min(k0 + 2u, last), cols, n, k), load_b(min(k0 + 3u, last), cols, n, k),
            load_b(min(k0 + 4u, last), cols, n, k), load_b(min(k0 + 5u, last), cols, n, k),
            load_b(min(k0 + 6u, last), cols, n, k), load_b(min(k0 + 7u, last), cols, n, k),
        );
        let kl = min(k0 + lane, last);
        let live = k0 + lane < k_end;
        c0 = rows4_step(c0, load_a4(row0, kl, live, m, k), bs);
        c1 = rows4_step(c1, load_a4(row0 + 4u, kl, live, m, k), bs);
        c2 = rows4_step(c2, load_a4(row0 + 8u, kl, live, m, k), bs);
        c3 = rows4_step(c3, load_a4(row0 + 12u, kl, live, m, k), bs);
        c4 = rows4_step(c4, load_a4(row0 + 16u, kl, live, m, k), bs);
        c5 = rows4_step(c5, load_a4(row0 + 20u, kl, live, m, k), bs);
        c6 = rows4_step(c6, load_a4(row0 + 24u, kl, live, m, k), bs);
        c7 = rows4_step(c7, load_a4(row0 + 28u, kl, live, m, k), bs);
    }
    store_block(row0, col, wg.z, array<Rows4, 8>(c0, c1, c2, c3, c4, c5, c6, c7));
}

// The same product from the packed textures. Texel columns past the texture repeat its last
// one (their results are never stored); `pack` (pack.wgsl) zero-fills rows and columns past M and N.
@compute @workgroup_size(8)
fn main_packed(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let k_begin = wg.z * p.k_chunk;
    let k_end = min(p.k, k_begin + p.k_chunk);
    let a_last = textureDimensions(a_packed).x - 1u;
    let row0 = wg.y * ROWS;
    let q0 = row0 / 4u;
    let col = wg.x * COLS + lid.x * 4u;
    let b_x = min(col / 4u, textureDimensions(b_packed).x - 1u);
    let zero = Rows4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var c0 = zero; var c1 = zero; var c2 = zero; var c3 = zero;
    var c4 = zero; var c5 = zero; var c6 = zero; var c7 = zero;
    for (var k0 = k_begin; k0 < k_end; k0 += 8u) {
        let last = k_end - 1u;
        let bs = b8_packed(b_x, k0, last);
        let kl = min(k0 + lane, last);
        let live = k0 + lane < k_end;
        c0 = rows4_step(c0, a_texel(q0, a_last, kl, live), bs);
        c1 = rows4_step(c1, a_texel(q0 + 1u, a_last, kl, live), bs);
        c2 = rows4_step(c2, a_texel(q0 + 2u, a_last, kl, live), bs);
        c3 = rows4_step(c3, a_texel(q0 + 3u, a_last, kl, live), bs);
        c4 = rows4_step(c4, a_texel(q0 + 4u, a_last, kl, live), bs);
        c5 = rows4_step(c5, a_texel(q0 + 5u, a_last, kl, live), bs);
        c6 = rows4_step(c6, a_texel(q0 + 6u, a_last, kl, live), bs);
        c7 = rows4_step(c7, a_texel(q0 + 7u, a_last, kl, live), bs);
    }
    store_block(row0, col, wg.z, array<Rows4, 8>(c0, c1, c2, c3, c4, c5, c6, c7));
}

// op(B)[k0 .. k0 + 7, 4 b_x .. 4 b_x + 3] from the packed texture; k past `last` repeats it.
fn b8_packed(b_x: u32, k0: u32, last: u32) -> B8 {
    return B8(
        textureLoad(b_packed, vec2<u32>(b_x, min(k0, last)), 0),
        textureLoad(b_packed, vec2<u32>(b_x, min(k0 + 1u, last)), 0),
        textureLoad(b_packed, vec2<u32>(b_x, min(k0 + 2u, last)), 0),
        textureLoad(b_packed, vec2<u32>(b_x, min(k0 + 3u, last)), 0),
        textureLoad(b_packed, vec2<u32>(b_x, min(k0 + 4u, last)), 0),
        textureLoad(b_packed, vec2<u32>(b_x, min(k0 + 5u, last)), 0),
        textureLoad(b_packed, vec2<u32>(b_x, min(k0 + 6u, last)), 0),
        textureLoad(b_packed, vec2<u32>(b_x, min(k0 + 7u, last)), 0),
    );
}

// op(A)[4x .. 4x + 3, kk] from the packed texture, or 0 where kk is past the chunk.
fn a_texel(x: u32, x_last: u32, kk: u32, live: bool) -> vec4<f32> {
    return select(vec4<f32>(0.0), textureLoad(a_packed, vec2<u32>(min(x, x_last), kk), 0), live);
}
