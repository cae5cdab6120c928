// Reductions of a [rows, cols] matrix, one workgroup per output, fixed-order trees: deterministic.
// sum_over_rows -> [cols] (bias gradients), sum_over_cols -> [rows], mean_all -> [1].
// sum_over_rows has a serial variant for CPU drivers (src/gpu/ops.rs `KernelStyle`), for columns
// in fours.

struct Params {
    rows: u32,
    cols: u32,
    // bit 0: accumulate into dst
    flags: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn store(i: u32, v: f32) {
    if ((p.flags & 1u) != 0u) {
        dst[i] += v;
    } else {
        dst[i] = v;
    }
}

fn output_index(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

@compute @workgroup_size(256)
fn sum_over_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let col = output_index(wg, nwg);
    // Uniforms copied once: read inside the loop, each would be a per-lane load on llvmpipe.
    let rows = p.rows;
    let cols = p.cols;
    var s = 0.0;
    if (col < cols) {
        for (var r = li; r < rows; r += 256u) {
            s += src[r * cols + col];
        }
    }
    let total = tree_sum(li, vec2<f32>(s, 0.0)).x;
    if (li == 0u && col < p.cols) {
        store(col, total);
    }
}

// The same sum for CPU drivers, columns in fours: each invocation sums four columns' rows in
// order with vec4 loads, with no workgroup memory or barriers (a barrier is a coroutine switch on
// llvmpipe, which runs 8 invocations as the lanes of one SIMD group and makes each storage load a
// loop over the lanes, so a vec4 load costs what an f32 load does; lanes take neighbouring groups).
// With X_TEXTURE, src is read from its texture twin (src/gpu/tensor.rs).
override X_TEXTURE: bool = false;

@group(0) @binding(0) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(2) var src_texture: texture_2d<f32>;
@group(0) @binding(3) var<uniform> p4: Params;

@compute @workgroup_size(8)
fn sum_over_rows_serial4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) li: u32) {
    let rows = p4.rows;
    let groups = p4.cols / 4u;
    let accumulate = (p4.flags & 1u) != 0u;
    let q = output_index(wg, nwg) * 8u + li;
    // Lanes past the last group read it again and store nothing: no branch around the loop.
    let read_q = min(q, groups - 1u);
    var s = vec4<f32>(0.0);
    for (var r = 0u; r < rows; r++) {
        if (X_TEXTURE) {
            s += textureLoad(src_texture, vec2<u32>(read_q, r), 0);
        } else {
            s += src4[r * groups + read_q];
        }
    }
    if (q < groups) {
        if (accumulate) {
            dst4[q] += s;
        } else {
            dst4[q] = s;
        }
    }
}

@compute @workgroup_size(256)
fn sum_over_cols(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let row = output_index(wg, nwg);
    let rows = p.rows;
    let cols = p.cols;
    var s = 0.0;
    if (row < rows) {
        for (var c = li; c < cols; c += 256u) {
            s += src[row * cols + c];
        }
    }
    let total = tree_sum(li, vec2<f32>(s, 0.0)).x;
    if (li == 0u && row < p.rows) {
        store(row, total);
    }
}

@compute @workgroup_size(256)
fn mean_all(@builtin(local_invocation_index) li: u32) {
    let n = p.rows * p.cols;
    var s = 0.0;
    for (var i = li; i < n; i += 256u) {
        s += src[i];
    }
    let total = tree_sum(li, vec2<f32>(s, 0.0)).x;
    if (li == 0u) {
        store(0u, total / f32(n));
    }
}
