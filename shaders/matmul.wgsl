// C[M, N] = op(A)[M, K] * op(B)[K, N] (+ C) (+ bias[N]), then an optional activation.
// op(A) = A, or A^T when A is stored [K, M] (TRANS_A); op(B) = B, or B^T when B is stored [N, K] (TRANS_B).
// A 64x64 tile of C per workgroup of 256 invocations, each owning a 4x4 register block; the K
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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tx = li % 16u;
    let ty = li / 16u;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    // Four named accumulators, not an array: an array indexed in a loop is kept in memory by
    // some compilers (llvmpipe), which costs a load and a store per multiply-add.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        // Each invocation stages one vec4 of A (4 consecutive rows) and one of B (4 consecutive cols).
        let kk = li / 16u;
        let q = (li % 16u) * 4u;
        a_tile[li] = vec4<f32>(
            load_a(row0 + q, k0 + kk),
            load_a(row0 + q + 1u, k0 + kk),
            load_a(row0 + q + 2u, k0 + kk),
            load_a(row0 + q + 3u, k0 + kk),
        );
        b_tile[li] = vec4<f32>(
            load_b(k0 + kk, col0 + q),
            load_b(k0 + kk, col0 + q + 1u),
            load_b(k0 + kk, col0 + q + 2u),
            load_b(k0 + kk, col0 + q + 3u),
        );
        workgroupBarrier();
        for (var t = 0u; t < TILE_K; t++) {
            let av = a_tile[t * 16u + ty];
            let bv = b_tile[t * 16u + tx];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }

    let row = row0 + ty * 4u;
    let col = col0 + tx * 4u;
    store_row(row, col, acc0);
    store_row(row + 1u, col, acc1);
    store_row(row + 2u, col, acc2);
    store_row(row + 3u, col, acc3);
}
