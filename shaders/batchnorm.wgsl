// Batch normalisation over the rows of x: [rows, C], one statistic per channel (column). A dense
// layer's output is [N, C]; an NHWC feature map is [N * H * W, C]: the same kernel serves both.
// Reductions run one workgroup per channel through a fixed-order tree in workgroup memory, or,
// on CPU drivers with channels in fours, one invocation per four channels in row order (the
// `*4` kernels): both deterministic, no atomics.

// Activations as pipeline constants (llvmpipe runs every case of a runtime switch, loads
// included): ACT_AFTER is applied after the normalisation (apply; in backward, dy is multiplied by
// its derivative at y first); ACT_BEFORE produced x (backward: dx is multiplied by its derivative
// at x).
override ACT_AFTER: u32 = 0u;
override ACT_BEFORE: u32 = 0u;
// The `*4` kernels (channels in fours) read x, dy and y from their texture twins
// (src/gpu/tensor.rs: texel (q, row) holds channels 4q .. 4q + 3 of a row), vectorised gathers
// on llvmpipe, where these say so; apply4 and backward_dx4 write their output's twin with
// TWIN_OUT.
override X_TEXTURE: bool = false;
override DY_TEXTURE: bool = false;
override Y_TEXTURE: bool = false;
override TWIN_OUT: bool = false;

struct Params {
    rows: u32,
    c: u32,
    // bit 0: update running statistics (stats) / write dgamma, dbeta (backward);
    // bit 1: accumulate into dgamma, dbeta
    flags: u32,
    momentum: f32,
    eps: f32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

// ---- training statistics: mean and 1/sqrt(biased var + eps) per channel; optional running update
@group(0) @binding(0) var<storage, read> st_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> st_mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> st_invstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> st_running_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> st_running_var: array<f32>;
@group(0) @binding(5) var<uniform> st_p: Params;

@compute @workgroup_size(256)
fn stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    // The grid folds into y past the adapter's per-dimension limit (src/gpu/kernel.rs `grid`);
    // the whole workgroup leaves together, so the barriers stay in uniform control flow.
    let ch = wg.x + wg.y * nwg.x;
    // Uniforms copied once: read inside a loop, each would be a per-lane load on llvmpipe.
    let n = st_p.rows;
    let c = st_p.c;
    if (ch >= c) {
        return;
    }
    var s = 0.0;
    for (var r = li; r < n; r += 256u) {
        s += st_x[r * c + ch];
    }
    let mean = tree_sum(li, vec2<f32>(s, 0.0)).x / f32(n);
    var sq = 0.0;
    for (var r = li; r < n; r += 256u) {
        let d = st_x[r * c + ch] - mean;
        sq += d * d;
    }
    let variance = tree_sum(li, vec2<f32>(sq, 0.0)).x / f32(n);
    if (li == 0u) {
        st_mean[ch] = mean;
        st_invstd[ch] = inverseSqrt(variance + st_p.eps);
        // Keras convention: running = momentum * running + (1 - momentum) * batch, biased variance.
        if ((st_p.flags & 1u) != 0u) {
            let m = st_p.momentum;
            st_running_mean[ch] = m * st_running_mean[ch] + (1.0 - m) * mean;
            st_running_var[ch] = m * st_running_var[ch] + (1.0 - m) * variance;
        }
    }
}

// The same statistics for CPU drivers, channels in fours: one invocation per four channels walks
// their rows in order with vec4 loads (a storage load is a loop over the lanes on llvmpipe, so
// one vec4 load costs what one f32 load does), no workgroup memory or barriers (see
// sum_over_rows_serial4 in reduce.wgsl); lanes take neighbouring groups of four. Lanes past the
// last group read it again and store nothing. Each channel's sums run in row order.
@group(0) @binding(0) var<storage, read> s4_x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> s4_mean: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> s4_invstd: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> s4_running_mean: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s4_running_var: array<vec4<f32>>;
@group(0) @binding(5) var s4_x_texture: texture_2d<f32>;
@group(0) @binding(6) var<uniform> s4_p: Params;

fn s4_x_at(r: u32, q: u32, groups: u32) -> vec4<f32> {
    if (X_TEXTURE) {
        return textureLoad(s4_x_texture, vec2<u32>(q, r), 0);
    }
    return s4_x[r * groups + q];
}

@compute @workgroup_size(8)
fn stats_serial4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let n = s4_p.rows;
    let groups = s4_p.c / 4u;
    let eps = s4_p.eps;
    let update = (s4_p.flags & 1u) != 0u;
    let m = s4_p.momentum;
    let q = (wg.x + wg.y * nwg.x) * 8u + li;
    let read_q = min(q, groups - 1u);
    var s = vec4<f32>(0.0);
    for (var r = 0u; r < n; r++) {
        s += s4_x_at(r, read_q, groups);
    }
    let mean = s / f32(n);
    var sq = vec4<f32>(0.0);
    for (var r = 0u; r < n; r++) {
        let d = s4_x_at(r, read_q, groups) - mean;
        sq += d * d;
    }
    let variance = sq / f32(n);
    if (q < groups) {
        s4_mean[q] = mean;
        s4_invstd[q] = inverseSqrt(variance + eps);
        if (update) {
            s4_running_mean[q] = m * s4_running_mean[q] + (1.0 - m) * mean;
            s4_running_var[q] = m * s4_running_var[q] + (1.0 - m) * variance;
        }
    }
}

// ---- inference: take the running statistics as the batch statistics
@group(0) @binding(0) var<storage, read> ru_running_mean: array<f32>;
@group(0) @binding(1) var<storage, read> ru_running_var: array<f32>;
@group(0) @binding(2) var<storage, read_write> ru_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> ru_invstd: array<f32>;
@group(0) @binding(4) var<uniform> ru_p: Params;

@compute @workgroup_size(256)
fn use_running(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = gid.x;
    if (ch < ru_p.c) {
        ru_mean[ch] = ru_running_mean[ch];
        ru_invstd[ch] = inverseSqrt(ru_running_var[ch] + ru_p.eps);
    }
}

// ---- y = act(gamma * (x - mean) * invstd + beta)
@group(0) @binding(0) var<storage, read> ap_x: array<f32>;
@group(0) @binding(1) var<storage, read> ap_mean: array<f32>;
@group(0) @binding(2) var<storage, read> ap_invstd: array<f32>;
@group(0) @binding(3) var<storage, read> ap_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> ap_beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> ap_y: array<f32>;
@group(0) @binding(6) var<uniform> ap_p: Params;

// Rows per invocation: the four per-channel loads are made once for them (on llvmpipe every
// load is a loop over the lanes, so they cost as much as x's). Set by the launcher, which sizes
// the grid by it (src/gpu/ops.rs BN_APPLY_ROWS).
override APPLY_ROWS: u32 = 8u;

@compute @workgroup_size(256)
fn apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    // Uniforms copied before the branch: read after it, each is a per-lane load on llvmpipe.
    let c = ap_p.c;
    let rows = ap_p.rows;
    let alpha = ap_p.alpha;
    // Invocation idx: channel idx % c of the APPLY_ROWS rows from APPLY_ROWS * (idx / c).
    let ch = idx % c;
    let row0 = (idx / c) * APPLY_ROWS;
    if (row0 >= rows) {
        return;
    }
    let mean = ap_mean[ch];
    let invstd = ap_invstd[ch];
    let gamma = ap_gamma[ch];
    let beta = ap_beta[ch];
    for (var r = row0; r < min(row0 + APPLY_ROWS, rows); r++) {
        let i = r * c + ch;
        ap_y[i] = activate((ap_x[i] - mean) * invstd * gamma + beta, ACT_AFTER, alpha);
    }
}

// apply for CPU drivers, channels in fours: APPLY_ROWS rows of four channels per invocation.
@group(0) @binding(0) var<storage, read> a4_x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> a4_mean: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a4_invstd: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> a4_gamma: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> a4_beta: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> a4_y: array<vec4<f32>>;
@group(0) @binding(6) var a4_x_texture: texture_2d<f32>;
@group(0) @binding(7) var a4_twin: texture_storage_2d<rgba32float, write>;
@group(0) @binding(8) var<uniform> a4_p: Params;

@compute @workgroup_size(256)
fn apply4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    let groups = a4_p.c / 4u;
    let rows = a4_p.rows;
    let alpha = a4_p.alpha;
    let q = idx % groups;
    let row0 = (idx / groups) * APPLY_ROWS;
    if (row0 >= rows) {
        return;
    }
    let mean = a4_mean[q];
    let invstd = a4_invstd[q];
    let gamma = a4_gamma[q];
    let beta = a4_beta[q];
    for (var r = row0; r < min(row0 + APPLY_ROWS, rows); r++) {
        let i = r * groups + q;
        var x: vec4<f32>;
        if (X_TEXTURE) {
            x = textureLoad(a4_x_texture, vec2<u32>(q, r), 0);
        } else {
            x = a4_x[i];
        }
        let y = activate4((x - mean) * invstd * gamma + beta, ACT_AFTER, alpha);
        a4_y[i] = y;
        if (TWIN_OUT) {
            textureStore(a4_twin, vec2<u32>(q, r), y);
        }
    }
}

// ---- backward, one workgroup per channel:
// dbeta = sum(dy), dgamma = sum(dy * xhat), dx = gamma * invstd * (dy - dbeta / N - xhat * dgamma / N)
// The activations on either side are folded in (one dispatch instead of three): dy is first
// multiplied by act_after'(y), and dx by act_before'(x).
@group(0) @binding(0) var<storage, read> bw_x: array<f32>;
@group(0) @binding(1) var<storage, read> bw_mean: array<f32>;
@group(0) @binding(2) var<storage, read> bw_invstd: array<f32>;
@group(0) @binding(3) var<storage, read> bw_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> bw_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> bw_dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> bw_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> bw_dbeta: array<f32>;
@group(0) @binding(8) var<storage, read> bw_y: array<f32>;
@group(0) @binding(9) var<uniform> bw_p: Params;

fn bw_dy_at(i: u32, alpha: f32) -> f32 {
    return bw_dy[i] * derivative(bw_y[i], ACT_AFTER, alpha);
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let ch = wg.x + wg.y * nwg.x;
    // Uniforms copied once: read inside a loop, each would be a per-lane load on llvmpipe.
    let n = bw_p.rows;
    let c = bw_p.c;
    if (ch >= c) {
        return;
    }
    let alpha = bw_p.alpha;
    let mean = bw_mean[ch];
    let invstd = bw_invstd[ch];
    var s = vec2<f32>(0.0, 0.0);
    for (var r = li; r < n; r += 256u) {
        let i = r * c + ch;
        let dy = bw_dy_at(i, alpha);
        s += vec2<f32>(dy, dy * (bw_x[i] - mean) * invstd);
    }
    let sums = tree_sum(li, s);
    let k = bw_gamma[ch] * invstd;
    let inv_n = 1.0 / f32(n);
    for (var r = li; r < n; r += 256u) {
        let i = r * c + ch;
        let x = bw_x[i];
        let xhat = (x - mean) * invstd;
        let dx = k * (bw_dy_at(i, alpha) - sums.x * inv_n - xhat * sums.y * inv_n);
        bw_dx[i] = dx * derivative(x, ACT_BEFORE, alpha);
    }
    if (li == 0u && (bw_p.flags & 1u) != 0u) {
        if ((bw_p.flags & 2u) != 0u) {
            bw_dgamma[ch] += sums.y;
            bw_dbeta[ch] += sums.x;
        } else {
            bw_dgamma[ch] = sums.y;
            bw_dbeta[ch] = sums.x;
        }
    }
}

// ---- the same backward for CPU drivers, channels in fours, in two dispatches without workgroup
// memory or barriers (a barrier is a coroutine switch on llvmpipe), with vec4 loads.
// backward_sums4: one invocation per four channels walks their rows in order (deterministic, like
// stats_serial4) and writes sum(dy) and sum(dy * xhat) into sums[ch] and sums[c + ch] (and dgamma,
// dbeta per the flags); backward_dx4: APPLY_ROWS rows of four channels per invocation, like apply4.
@group(0) @binding(0) var<storage, read> bs_x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> bs_mean: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bs_invstd: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bs_dy: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bs_y: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> bs_sums: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> bs_dgamma: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> bs_dbeta: array<vec4<f32>>;
@group(0) @binding(8) var bs_x_texture: texture_2d<f32>;
@group(0) @binding(9) var bs_dy_texture: texture_2d<f32>;
@group(0) @binding(10) var bs_y_texture: texture_2d<f32>;
@group(0) @binding(11) var<uniform> bs_p: Params;

// x, dy (through ACT_AFTER) of row r, channels 4q ..
fn bs_x_at(r: u32, q: u32, groups: u32) -> vec4<f32> {
    if (X_TEXTURE) {
        return textureLoad(bs_x_texture, vec2<u32>(q, r), 0);
    }
    return bs_x[r * groups + q];
}

fn bs_dy_at(r: u32, q: u32, groups: u32, alpha: f32) -> vec4<f32> {
    var dy: vec4<f32>;
    var y: vec4<f32>;
    if (DY_TEXTURE) {
        dy = textureLoad(bs_dy_texture, vec2<u32>(q, r), 0);
    } else {
        dy = bs_dy[r * groups + q];
    }
    if (ACT_AFTER == 0u) {
        return dy;
    }
    if (Y_TEXTURE) {
        y = textureLoad(bs_y_texture, vec2<u32>(q, r), 0);
    } else {
        y = bs_y[r * groups + q];
    }
    return dy * derivative4(y, ACT_AFTER, alpha);
}

@compute @workgroup_size(8)
fn backward_sums4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) li: u32) {
    let n = bs_p.rows;
    let groups = bs_p.c / 4u;
    let alpha = bs_p.alpha;
    let flags = bs_p.flags;
    let q = (wg.x + wg.y * nwg.x) * 8u + li;
    // Lanes past the last group read it again and store nothing.
    let read_q = min(q, groups - 1u);
    let mean = bs_mean[read_q];
    let invstd = bs_invstd[read_q];
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    for (var r = 0u; r < n; r++) {
        let dy = bs_dy_at(r, read_q, groups, alpha);
        s0 += dy;
        s1 += dy * (bs_x_at(r, read_q, groups) - mean) * invstd;
    }
    if (q < groups) {
        bs_sums[q] = s0;
        bs_sums[groups + q] = s1;
        if ((flags & 1u) != 0u) {
            if ((flags & 2u) != 0u) {
                bs_dgamma[q] += s1;
                bs_dbeta[q] += s0;
            } else {
                bs_dgamma[q] = s1;
                bs_dbeta[q] = s0;
            }
        }
    }
}

@group(0) @binding(0) var<storage, read> bd_x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> bd_mean: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bd_invstd: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bd_gamma: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bd_dy: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bd_y: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bd_sums: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> bd_dx: array<vec4<f32>>;
@group(0) @binding(8) var bd_x_texture: texture_2d<f32>;
@group(0) @binding(9) var bd_dy_texture: texture_2d<f32>;
@group(0) @binding(10) var bd_y_texture: texture_2d<f32>;
@group(0) @binding(11) var bd_twin: texture_storage_2d<rgba32float, write>;
@group(0) @binding(12) var<uniform> bd_p: Params;

@compute @workgroup_size(256)
fn backward_dx4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    // Uniforms copied before the branch: read after it, each is a per-lane load on llvmpipe.
    let groups = bd_p.c / 4u;
    let rows = bd_p.rows;
    let alpha = bd_p.alpha;
    let q = idx % groups;
    let row0 = (idx / groups) * APPLY_ROWS;
    if (row0 >= rows) {
        return;
    }
    let mean = bd_mean[q];
    let invstd = bd_invstd[q];
    let k = bd_gamma[q] * invstd;
    let inv_n = 1.0 / f32(rows);
    let sum_dy = bd_sums[q];
    let sum_dy_xhat = bd_sums[groups + q];
    for (var r = row0; r < min(row0 + APPLY_ROWS, rows); r++) {
        let i = r * groups + q;
        var x: vec4<f32>;
        var dy: vec4<f32>;
        if (X_TEXTURE) {
            x = textureLoad(bd_x_texture, vec2<u32>(q, r), 0);
        } else {
            x = bd_x[i];
        }
        if (DY_TEXTURE) {
            dy = textureLoad(bd_dy_texture, vec2<u32>(q, r), 0);
        } else {
            dy = bd_dy[i];
        }
        if (ACT_AFTER != 0u) {
            var y: vec4<f32>;
            if (Y_TEXTURE) {
                y = textureLoad(bd_y_texture, vec2<u32>(q, r), 0);
            } else {
                y = bd_y[i];
            }
            dy *= derivative4(y, ACT_AFTER, alpha);
        }
        let xhat = (x - mean) * invstd;
        let dx = k * (dy - sum_dy * inv_n - xhat * sum_dy_xhat * inv_n) * derivative4(x, ACT_BEFORE, alpha);
        bd_dx[i] = dx;
        if (TWIN_OUT) {
            textureStore(bd_twin, vec2<u32>(q, r), dx);
        }
    }
}

@group(0) @binding(0) var xt_tex: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> xt_mean: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> xt_p: Params;

@compute @workgroup_size(8)
fn stats_tex(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let n = xt_p.rows;
    let groups = xt_p.c / 4u;
    let q = (wg.x + wg.y * nwg.x) * 8u + li;
    let read_q = min(q, groups - 1u);
    var s = vec4<f32>(0.0);
    for (var r = 0u; r < n; r++) {
        s += textureLoad(xt_tex, vec2<u32>(read_q, r), 0);
    }
    let mean = s / f32(n);
    var sq = vec4<f32>(0.0);
    for (var r = 0u; r < n; r++) {
        let d = textureLoad(xt_tex, vec2<u32>(read_q, r), 0) - mean;
        sq += d * d;
    }
    if (q < groups) {
        xt_mean[q] = mean + sq;
    }
}
