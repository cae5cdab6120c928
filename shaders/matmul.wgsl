// C[M, N] = op(A)[M, K] * op(B)[K, N] (+ C) (+ bias[N]), then an optional activation.
// op(A) = A, or A^T when A is stored [K, M] (TRANS_A); op(B) = B, or B^T when B is stored [N, K] (TRANS_B).
//
// Each workgroup computes a TM x TN tile of C (TM, TN in {32, 64, 128}) with (TM/8) x (TN/8)
// invocations, each owning an 8x8 register block: per k, two vec4 of A and two of B from
// workgroup memory feed 64 multiply-adds. K is walked TILE_K at a time. Out-of-range loads read 0
// instead of returning early, so every invocation reaches every barrier.
//
// Split-K (SPLIT): workgroup z covers k in [z * k_chunk, (z + 1) * k_chunk) and writes its raw
// partial product to `c` = a [splits, M, N] workspace; `reduce_splits` then sums the partials in
// a fixed order (deterministic) and applies the epilogue. This gives long-K, small-output products
// (weight gradients: K = batch * pixels) more than one workgroup.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad0: u32,
    alpha: f32,
    // K per split (a multiple of TILE_K); k when not split
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
override TM: u32 = 64u;
override TN: u32 = 64u;
// Must equal (TM / 8) * (TN / 8).
override THREADS: u32 = 64u;

const TILE_K: u32 = 16u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// [TILE_K][TM / 4] and [TILE_K][TN / 4] vec4, sized for the largest tile (16 KiB in all).
var<workgroup> a_tile: array<vec4<f32>, 512>;
var<workgroup> b_tile: array<vec4<f32>, 512>;

fn load_a(row: u32, kk: u32, k_end: u32) -> f32 {
    if (row >= p.m || kk >= k_end) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

fn load_b(kk: u32, col: u32, k_end: u32) -> f32 {
    if (kk >= k_end || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
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

// Writes one row of an invocation's block (two vec4, at columns lo_col.. and hi_col..): through
// the epilogue, or raw into a split's slice.
fn store_row(row: u32, lo_col: u32, hi_col: u32, split: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    for (var j = 0u; j < 8u; j++) {
        var col = lo_col + j;
        var v = lo[j & 3u];
        if (j >= 4u) {
            col = hi_col + j - 4u;
            v = hi[j & 3u];
        }
        if (col < p.n) {
            let idx = row * p.n + col;
            if (SPLIT) {
                c[split * p.m * p.n + idx] = v;
            } else {
                c[idx] = epilogue(idx, col, v);
            }
        }
    }
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let quads_m = TM / 4u;
    let quads_n = TN / 4u;
    let tx = li % (TN / 8u);
    let ty = li / (TN / 8u);
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let k_begin = wg.z * p.k_chunk;
    let k_end = min(p.k, k_begin + p.k_chunk);
    // Named accumulators, not an array: an array indexed in a loop is kept in memory by some
    // compilers (llvmpipe), which costs a load and a store per multiply-add.
    var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);

    for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        // Stage the tiles: each vec4 holds 4 consecutive rows (A) or columns (B) at one k.
        for (var e = li; e < TILE_K * quads_m; e += THREADS) {
            let kk = k0 + e / quads_m;
            let r = row0 + (e % quads_m) * 4u;
            a_tile[e] = vec4<f32>(load_a(r, kk, k_end), load_a(r + 1u, kk, k_end), load_a(r + 2u, kk, k_end), load_a(r + 3u, kk, k_end));
        }
        for (var e = li; e < TILE_K * quads_n; e += THREADS) {
            let kk = k0 + e / quads_n;
            let col = col0 + (e % quads_n) * 4u;
            b_tile[e] = vec4<f32>(load_b(kk, col, k_end), load_b(kk, col + 1u, k_end), load_b(kk, col + 2u, k_end), load_b(kk, col + 3u, k_end));
        }
        workgroupBarrier();
        for (var t = 0u; t < TILE_K; t++) {
            let a0 = a_tile[t * quads_m + ty];
            let a1 = a_tile[t * quads_m + ty + quads_m / 2u];
            let b0 = b_tile[t * quads_n + tx];
            let b1 = b_tile[t * quads_n + tx + quads_n / 2u];
            c00 += a0.x * b0; c01 += a0.x * b1;
            c10 += a0.y * b0; c11 += a0.y * b1;
            c20 += a0.z * b0; c21 += a0.z * b1;
            c30 += a0.w * b0; c31 += a0.w * b1;
            c40 += a1.x * b0; c41 += a1.x * b1;
            c50 += a1.y * b0; c51 += a1.y * b1;
            c60 += a1.z * b0; c61 += a1.z * b1;
            c70 += a1.w * b0; c71 += a1.w * b1;
        }
        workgroupBarrier();
    }

    // Rows ty*4.. and (ty + TM/8)*4..; columns tx*4.. and (tx + TN/8)*4..: neighbouring
    // invocations read neighbouring vec4 of the tiles.
    let row = row0 + ty * 4u;
    let row_hi = row + TM / 2u;
    let col = col0 + tx * 4u;
    let col_hi = col + TN / 2u;
    store_row(row, col, col_hi, wg.z, c00, c01);
    store_row(row + 1u, col, col_hi, wg.z, c10, c11);
    store_row(row + 2u, col, col_hi, wg.z, c20, c21);
    store_row(row + 3u, col, col_hi, wg.z, c30, c31);
    store_row(row_hi, col, col_hi, wg.z, c40, c41);
    store_row(row_hi + 1u, col, col_hi, wg.z, c50, c51);
    store_row(row_hi + 2u, col, col_hi, wg.z, c60, c61);
    store_row(row_hi + 3u, col, col_hi, wg.z, c70, c71);
}

// ---- C = epilogue(sum over splits of partial[s]), the second pass of a split-K product
@group(0) @binding(0) var<storage, read> rs_partial: array<f32>;
@group(0) @binding(1) var<storage, read> rs_bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> rs_c: array<f32>;
@group(0) @binding(3) var<uniform> rs_p: Params;

@compute @workgroup_size(256)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let size = rs_p.m * rs_p.n;
    if (idx >= size) {
        return;
    }
    var v = 0.0;
    for (var s = 0u; s < rs_p.splits; s++) {
        v += rs_partial[s * size + idx];
    }
    if (ACCUMULATE) {
        v += rs_c[idx];
    }
    if (BIAS) {
        v += rs_bias[idx % rs_p.n];
    }
    rs_c[idx] = activate(v, ACT, rs_p.alpha);
}
