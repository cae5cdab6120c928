// C[M, N] = op(A)[M, K] * op(B)[K, N] (+ C) (+ bias[N]), then an optional activation.
// op(A) = A, or A^T when A is stored [K, M] (TRANS_A); op(B) = B, or B^T when B is stored [N, K] (TRANS_B).
// A 64x64 tile of C per workgroup of 64 invocations, each owning an 8x8 register block; the K
// dimension is walked 16 at a time through workgroup memory. Out-of-range loads read 0 instead of
// returning early, so every invocation reaches every barrier.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    // bit 0: add bias[col]; bit 1: accumulate into C; bits 4..7: activation (see activation.wgsl)
    flags: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

// [TILE_K][TILE / 4] of vec4: one k row of the A tile (over m) and of the B tile (over n).
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

// Writes one row of the 4x4 block through the epilogue (bias, accumulate, activation).
fn store_row(row: u32, col0: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    let act = (p.flags >> 4u) & 15u;
    for (var j = 0u; j < 4u; j++) {
        let col = col0 + j;
        if (col < p.n) {
            let idx = row * p.n + col;
            var x = v[j];
            if ((p.flags & 2u) != 0u) {
                x += c[idx];
            }
            if ((p.flags & 1u) != 0u) {
                x += bias[col];
            }
            c[idx] = activate(x, act, p.alpha);
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // 8x8 invocations, each owning an 8x8 block: two vec4 of A and two of B feed 64 multiply-adds.
    let tx = li % 8u;
    let ty = li / 8u;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    // Named accumulators, not an array: an array indexed in a loop is kept in memory by some
    // compilers (llvmpipe), which costs a load and a store per multiply-add.
    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0);
    var acc4_1 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc5_1 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc6_1 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    var acc7_1 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        // The tiles hold 256 vec4 each: every invocation stages four of A (4 consecutive rows at
        // one k) and four of B (4 consecutive columns at one k).
        for (var r = 0u; r < 4u; r++) {
            let e = li + r * 64u;
            let kk = e / 16u;
            let q = (e % 16u) * 4u;
            a_tile[e] = vec4<f32>(
                load_a(row0 + q, k0 + kk),
                load_a(row0 + q + 1u, k0 + kk),
                load_a(row0 + q + 2u, k0 + kk),
                load_a(row0 + q + 3u, k0 + kk),
            );
            b_tile[e] = vec4<f32>(
                load_b(k0 + kk, col0 + q),
                load_b(k0 + kk, col0 + q + 1u),
                load_b(k0 + kk, col0 + q + 2u),
                load_b(k0 + kk, col0 + q + 3u),
            );
        }
        workgroupBarrier();
        for (var t = 0u; t < TILE_K; t++) {
            let a0 = a_tile[t * 16u + ty * 2u];
            let a1 = a_tile[t * 16u + ty * 2u + 1u];
            let b0 = b_tile[t * 16u + tx * 2u];
            let b1 = b_tile[t * 16u + tx * 2u + 1u];
            acc0_0 += a0.x * b0;
            acc0_1 += a0.x * b1;
            acc1_0 += a0.y * b0;
            acc1_1 += a0.y * b1;
            acc2_0 += a0.z * b0;
            acc2_1 += a0.z * b1;
            acc3_0 += a0.w * b0;
            acc3_1 += a0.w * b1;
            acc4_0 += a1.x * b0;
            acc4_1 += a1.x * b1;
            acc5_0 += a1.y * b0;
            acc5_1 += a1.y * b1;
            acc6_0 += a1.z * b0;
            acc6_1 += a1.z * b1;
            acc7_0 += a1.w * b0;
            acc7_1 += a1.w * b1;
        }
        workgroupBarrier();
    }

    let row = row0 + ty * 8u;
    let col = col0 + tx * 8u;
    store_row(row + 0u, col + 0u, acc0_0);
    store_row(row + 0u, col + 4u, acc0_1);
    store_row(row + 1u, col + 0u, acc1_0);
    store_row(row + 1u, col + 4u, acc1_1);
    store_row(row + 2u, col + 0u, acc2_0);
    store_row(row + 2u, col + 4u, acc2_1);
    store_row(row + 3u, col + 0u, acc3_0);
    store_row(row + 3u, col + 4u, acc3_1);
    store_row(row + 4u, col + 0u, acc4_0);
    store_row(row + 4u, col + 4u, acc4_1);
    store_row(row + 5u, col + 0u, acc5_0);
    store_row(row + 5u, col + 4u, acc5_1);
    store_row(row + 6u, col + 0u, acc6_0);
    store_row(row + 6u, col + 4u, acc6_1);
    store_row(row + 7u, col + 0u, acc7_0);
    store_row(row + 7u, col + 4u, acc7_1);
}
