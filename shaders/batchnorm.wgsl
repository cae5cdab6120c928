// Batch normalisation over the rows of x: [rows, C], one statistic per channel (column). A dense
// layer's output is [N, C]; an NHWC feature map is [N * H * W, C]: the same kernel serves both.
// Reductions run one workgroup per channel through a fixed-order tree in workgroup memory, or,
// for the statistics on CPU drivers, one invocation per channel in row order (`stats_serial`):
// both deterministic, no atomics.

// Activations as pipeline constants (llvmpipe runs every case of a runtime switch, loads
// included): ACT_AFTER is applied after the normalisation (apply; in backward, dy is multiplied by
// its derivative at y first); ACT_BEFORE produced x (backward: dx is multiplied by its derivative
// at x).
override ACT_AFTER: u32 = 0u;
override ACT_BEFORE: u32 = 0u;

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

// The same statistics for CPU drivers: one invocation per channel walks its rows in order, with
// no workgroup memory or barriers (see sum_over_rows_serial in reduce.wgsl); lanes take
// neighbouring channels. Lanes past the last channel read it again and store nothing.
@compute @workgroup_size(8)
fn stats_serial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let n = st_p.rows;
    let c = st_p.c;
    let eps = st_p.eps;
    let update = (st_p.flags & 1u) != 0u;
    let m = st_p.momentum;
    let ch = (wg.x + wg.y * nwg.x) * 8u + li;
    let read_ch = min(ch, c - 1u);
    var s = 0.0;
    for (var r = 0u; r < n; r++) {
        s += st_x[r * c + read_ch];
    }
    let mean = s / f32(n);
    var sq = 0.0;
    for (var r = 0u; r < n; r++) {
        let d = st_x[r * c + read_ch] - mean;
        sq += d * d;
    }
    let variance = sq / f32(n);
    if (ch < c) {
        st_mean[ch] = mean;
        st_invstd[ch] = inverseSqrt(variance + eps);
        if (update) {
            st_running_mean[ch] = m * st_running_mean[ch] + (1.0 - m) * mean;
            st_running_var[ch] = m * st_running_var[ch] + (1.0 - m) * variance;
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

// dx of one element from its x and dy (already through ACT_AFTER) and its channel's statistics
// and sums (sum(dy), sum(dy * xhat)); k = gamma * invstd. Shared by both backward variants.
fn bn_dx(x: f32, dy: f32, mean: f32, invstd: f32, k: f32, sums: vec2<f32>, inv_n: f32,
         alpha: f32) -> f32 {
    let xhat = (x - mean) * invstd;
    let dx = k * (dy - sums.x * inv_n - xhat * sums.y * inv_n);
    return dx * derivative(x, ACT_BEFORE, alpha);
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
        bw_dx[i] = bn_dx(bw_x[i], bw_dy_at(i, alpha), mean, invstd, k, sums, inv_n, alpha);
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

// ---- the same backward for CPU drivers, in two dispatches without workgroup memory or barriers
// (a barrier is a coroutine switch on llvmpipe). backward_sums: one invocation per channel walks
// its rows in order (deterministic, like stats_serial) and writes sum(dy) and sum(dy * xhat) into
// sums[ch] and sums[c + ch] (and dgamma, dbeta per the flags); backward_dx: APPLY_ROWS rows of
// one channel per invocation, like apply.
@group(0) @binding(0) var<storage, read> bs_x: array<f32>;
@group(0) @binding(1) var<storage, read> bs_mean: array<f32>;
@group(0) @binding(2) var<storage, read> bs_invstd: array<f32>;
@group(0) @binding(3) var<storage, read> bs_dy: array<f32>;
@group(0) @binding(4) var<storage, read> bs_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> bs_sums: array<f32>;
@group(0) @binding(6) var<storage, read_write> bs_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> bs_dbeta: array<f32>;
@group(0) @binding(8) var<uniform> bs_p: Params;

@compute @workgroup_size(8)
fn backward_sums(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let n = bs_p.rows;
    let c = bs_p.c;
    let alpha = bs_p.alpha;
    let flags = bs_p.flags;
    let ch = (wg.x + wg.y * nwg.x) * 8u + li;
    // Lanes past the last channel read it again and store nothing.
    let read_ch = min(ch, c - 1u);
    let mean = bs_mean[read_ch];
    let invstd = bs_invstd[read_ch];
    var s = vec2<f32>(0.0, 0.0);
    for (var r = 0u; r < n; r++) {
        let i = r * c + read_ch;
        let dy = bs_dy[i] * derivative(bs_y[i], ACT_AFTER, alpha);
        s += vec2<f32>(dy, dy * (bs_x[i] - mean) * invstd);
    }
    if (ch < c) {
        bs_sums[ch] = s.x;
        bs_sums[c + ch] = s.y;
        if ((flags & 1u) != 0u) {
            if ((flags & 2u) != 0u) {
                bs_dgamma[ch] += s.y;
                bs_dbeta[ch] += s.x;
            } else {
                bs_dgamma[ch] = s.y;
                bs_dbeta[ch] = s.x;
            }
        }
    }
}

@group(0) @binding(0) var<storage, read> bd_x: array<f32>;
@group(0) @binding(1) var<storage, read> bd_mean: array<f32>;
@group(0) @binding(2) var<storage, read> bd_invstd: array<f32>;
@group(0) @binding(3) var<storage, read> bd_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> bd_dy: array<f32>;
@group(0) @binding(5) var<storage, read> bd_y: array<f32>;
@group(0) @binding(6) var<storage, read> bd_sums: array<f32>;
@group(0) @binding(7) var<storage, read_write> bd_dx: array<f32>;
@group(0) @binding(8) var<uniform> bd_p: Params;

@compute @workgroup_size(256)
fn backward_dx(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    // Uniforms copied before the branch: read after it, each is a per-lane load on llvmpipe.
    let c = bd_p.c;
    let rows = bd_p.rows;
    let alpha = bd_p.alpha;
    let ch = idx % c;
    let row0 = (idx / c) * APPLY_ROWS;
    if (row0 >= rows) {
        return;
    }
    let mean = bd_mean[ch];
    let invstd = bd_invstd[ch];
    let k = bd_gamma[ch] * invstd;
    let inv_n = 1.0 / f32(rows);
    let sums = vec2<f32>(bd_sums[ch], bd_sums[c + ch]);
    for (var r = row0; r < min(row0 + APPLY_ROWS, rows); r++) {
        let i = r * c + ch;
        let dy = bd_dy[i] * derivative(bd_y[i], ACT_AFTER, alpha);
        bd_dx[i] = bn_dx(bd_x[i], dy, mean, invstd, k, sums, inv_n, alpha);
    }
}
