// Batch normalisation over the rows of x: [rows, C], one statistic per channel (column). A dense
// layer's output is [N, C]; an NHWC feature map is [N * H * W, C]: the same kernel serves both.
// Reductions run one workgroup per channel through a fixed-order tree in workgroup memory:
// deterministic, no atomics.

struct Params {
    rows: u32,
    c: u32,
    // bit 0: update running statistics (stats) / write dgamma, dbeta (backward);
    // bit 1: accumulate into dgamma, dbeta; bits 4..7: activation applied after (apply; in
    // backward, dy is multiplied by its derivative at y first); bits 8..11 (backward): activation
    // that produced x (dx is multiplied by its derivative at x)
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
fn stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let ch = wg.x;
    let n = st_p.rows;
    var s = 0.0;
    for (var r = li; r < n; r += 256u) {
        s += st_x[r * st_p.c + ch];
    }
    let mean = tree_sum(li, vec2<f32>(s, 0.0)).x / f32(n);
    var sq = 0.0;
    for (var r = li; r < n; r += 256u) {
        let d = st_x[r * st_p.c + ch] - mean;
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

@compute @workgroup_size(256)
fn apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= ap_p.rows * ap_p.c) {
        return;
    }
    let ch = idx % ap_p.c;
    let v = (ap_x[idx] - ap_mean[ch]) * ap_invstd[ch] * ap_gamma[ch] + ap_beta[ch];
    ap_y[idx] = activate(v, (ap_p.flags >> 4u) & 15u, ap_p.alpha);
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

fn bw_dy_at(i: u32) -> f32 {
    return bw_dy[i] * derivative_from_output(bw_y[i], (bw_p.flags >> 4u) & 15u, bw_p.alpha);
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let ch = wg.x;
    let n = bw_p.rows;
    let mean = bw_mean[ch];
    let invstd = bw_invstd[ch];
    var s = vec2<f32>(0.0, 0.0);
    for (var r = li; r < n; r += 256u) {
        let i = r * bw_p.c + ch;
        let dy = bw_dy_at(i);
        s += vec2<f32>(dy, dy * (bw_x[i] - mean) * invstd);
    }
    let sums = tree_sum(li, s);
    let k = bw_gamma[ch] * invstd;
    let inv_n = 1.0 / f32(n);
    for (var r = li; r < n; r += 256u) {
        let i = r * bw_p.c + ch;
        let x = bw_x[i];
        let xhat = (x - mean) * invstd;
        let dx = k * (bw_dy_at(i) - sums.x * inv_n - xhat * sums.y * inv_n);
        bw_dx[i] = dx * derivative_from_output(x, (bw_p.flags >> 8u) & 15u, bw_p.alpha);
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
