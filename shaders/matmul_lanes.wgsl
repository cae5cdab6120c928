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
// Needs subgroups of at least 8 invocations with the workgroup's 8 invocations in one subgroup
// (src/gpu/ops.rs `MatmulPlan::choose` picks it only there). Each accumulator sums k in order,
// so a run is deterministic, as with the tiled kernel.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    // bit 0: add bias[col]; bit 1: accumulate into C; bits 4..7: activation (common.wgsl)
    flags: u32,
    alpha: f32,
    // K per split (a multiple of 8); k when not split
    k_chunk: u32,
    splits: u32,
    _pad: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override SPLIT: bool = false;

const ROWS: u32 = 32u;
const COLS: u32 = 32u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

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

// Bias, accumulate and activation, applied where C is finally written.
fn epilogue(idx: u32, col: u32, v: f32) -> f32 {
    var x = v;
    if ((p.flags & 2u) != 0u) {
        x += c[idx];
    }
    if ((p.flags & 1u) != 0u) {
        x += bias[col];
    }
    return activate(x, (p.flags >> 4u) & 15u, p.alpha);
}

// Writes one row of a lane's block (4 columns from col): through the epilogue, or raw into a
// split's slice of the workspace.
fn store_row(row: u32, col: u32, split: u32, v: vec4<f32>) {
    let m = p.m;
    let n = p.n;
    for (var j = 0u; j < 4u; j++) {
        if (row < m && col + j < n) {
            let idx = row * n + col + j;
            if (SPLIT) {
                c[split * m * n + idx] = v[j];
            } else {
                c[idx] = epilogue(idx, col + j, v[j]);
            }
        }
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
    var c0 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0);
    var c8 = vec4<f32>(0.0); var c9 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var c12 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0);
    var c16 = vec4<f32>(0.0); var c17 = vec4<f32>(0.0); var c18 = vec4<f32>(0.0); var c19 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0); var c22 = vec4<f32>(0.0); var c23 = vec4<f32>(0.0);
    var c24 = vec4<f32>(0.0); var c25 = vec4<f32>(0.0); var c26 = vec4<f32>(0.0); var c27 = vec4<f32>(0.0);
    var c28 = vec4<f32>(0.0); var c29 = vec4<f32>(0.0); var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);

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
        c0 = row_step(c0, load_a(row0, kl, live, m, k), bs);
        c1 = row_step(c1, load_a(row0 + 1u, kl, live, m, k), bs);
        c2 = row_step(c2, load_a(row0 + 2u, kl, live, m, k), bs);
        c3 = row_step(c3, load_a(row0 + 3u, kl, live, m, k), bs);
        c4 = row_step(c4, load_a(row0 + 4u, kl, live, m, k), bs);
        c5 = row_step(c5, load_a(row0 + 5u, kl, live, m, k), bs);
        c6 = row_step(c6, load_a(row0 + 6u, kl, live, m, k), bs);
        c7 = row_step(c7, load_a(row0 + 7u, kl, live, m, k), bs);
        c8 = row_step(c8, load_a(row0 + 8u, kl, live, m, k), bs);
        c9 = row_step(c9, load_a(row0 + 9u, kl, live, m, k), bs);
        c10 = row_step(c10, load_a(row0 + 10u, kl, live, m, k), bs);
        c11 = row_step(c11, load_a(row0 + 11u, kl, live, m, k), bs);
        c12 = row_step(c12, load_a(row0 + 12u, kl, live, m, k), bs);
        c13 = row_step(c13, load_a(row0 + 13u, kl, live, m, k), bs);
        c14 = row_step(c14, load_a(row0 + 14u, kl, live, m, k), bs);
        c15 = row_step(c15, load_a(row0 + 15u, kl, live, m, k), bs);
        c16 = row_step(c16, load_a(row0 + 16u, kl, live, m, k), bs);
        c17 = row_step(c17, load_a(row0 + 17u, kl, live, m, k), bs);
        c18 = row_step(c18, load_a(row0 + 18u, kl, live, m, k), bs);
        c19 = row_step(c19, load_a(row0 + 19u, kl, live, m, k), bs);
        c20 = row_step(c20, load_a(row0 + 20u, kl, live, m, k), bs);
        c21 = row_step(c21, load_a(row0 + 21u, kl, live, m, k), bs);
        c22 = row_step(c22, load_a(row0 + 22u, kl, live, m, k), bs);
        c23 = row_step(c23, load_a(row0 + 23u, kl, live, m, k), bs);
        c24 = row_step(c24, load_a(row0 + 24u, kl, live, m, k), bs);
        c25 = row_step(c25, load_a(row0 + 25u, kl, live, m, k), bs);
        c26 = row_step(c26, load_a(row0 + 26u, kl, live, m, k), bs);
        c27 = row_step(c27, load_a(row0 + 27u, kl, live, m, k), bs);
        c28 = row_step(c28, load_a(row0 + 28u, kl, live, m, k), bs);
        c29 = row_step(c29, load_a(row0 + 29u, kl, live, m, k), bs);
        c30 = row_step(c30, load_a(row0 + 30u, kl, live, m, k), bs);
        c31 = row_step(c31, load_a(row0 + 31u, kl, live, m, k), bs);
    }

    // One store loop (one copy of the epilogue) over the block, staged in a private array.
    var block = array<vec4<f32>, 32>(
        c0, c1, c2, c3,
        c4, c5, c6, c7,
        c8, c9, c10, c11,
        c12, c13, c14, c15,
        c16, c17, c18, c19,
        c20, c21, c22, c23,
        c24, c25, c26, c27,
        c28, c29, c30, c31,
    );
    for (var i = 0u; i < ROWS; i++) {
        store_row(row0 + i, col, wg.z, block[i]);
    }
}
