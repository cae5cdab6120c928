// Elementwise activations, forward and backward; `activate` and `derivative` are generated from
// src/activation.rs (shared with the matmul and batch-norm epilogues). The backward takes what
// the activation saves: the forward's output y, or its input x.

// The mode is a pipeline constant: llvmpipe would run every case of a runtime switch.
override ACT: u32 = 0u;

struct Params {
    n: u32,
    _pad0: u32,
    alpha: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> fw_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> fw_y: array<f32>;
@group(0) @binding(2) var<uniform> fw_p: Params;

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < fw_p.n) {
        fw_y[i] = activate(fw_x[i], ACT, fw_p.alpha);
    }
}

@group(0) @binding(0) var<storage, read> bw_saved: array<f32>;
@group(0) @binding(1) var<storage, read> bw_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bw_dx: array<f32>;
@group(0) @binding(3) var<uniform> bw_p: Params;

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < bw_p.n) {
        bw_dx[i] = bw_dy[i] * derivative(bw_saved[i], ACT, bw_p.alpha);
    }
}
