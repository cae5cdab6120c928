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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let tx = li % 16u;
    let ty = li / 16u;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    var acc: array<vec4<f32>, 4>;

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
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
        workgroupBarrier();
    }

    let act = (p.flags >> 4u) & 15u;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + tx * 4u + j;
            if (row < p.m && col < p.n) {
                let idx = row * p.n + col;
                var v = acc[i][j];
                if ((p.flags & 2u) != 0u) {
                    v += c[idx];
                }
                if ((p.flags & 1u) != 0u) {
                    v += bias[col];
                }
                c[idx] = activate(v, act, p.alpha);
            }
        }
    }
}
