// Small elementwise kernels: fill, copy, scale, add, per-channel bias add.

struct Params {
    n: u32,
    // add_bias: number of channels (the last dimension)
    c: u32,
    value: f32,
    _pad: u32,
}

// ---- dst = value
@group(0) @binding(0) var<storage, read_write> fl_dst: array<f32>;
@group(0) @binding(1) var<uniform> fl_p: Params;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < fl_p.n) {
        fl_dst[i] = fl_p.value;
    }
}

// ---- dst = value * src (copy is value = 1)
@group(0) @binding(0) var<storage, read> sc_src: array<f32>;
@group(0) @binding(1) var<storage, read_write> sc_dst: array<f32>;
@group(0) @binding(2) var<uniform> sc_p: Params;

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < sc_p.n) {
        sc_dst[i] = sc_p.value * sc_src[i];
    }
}

// ---- dst = a + b
@group(0) @binding(0) var<storage, read> ad_a: array<f32>;
@group(0) @binding(1) var<storage, read> ad_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> ad_dst: array<f32>;
@group(0) @binding(3) var<uniform> ad_p: Params;

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < ad_p.n) {
        ad_dst[i] = ad_a[i] + ad_b[i];
    }
}

// ---- x[.., c] += bias[c] in place, x: [n / C, C]
@group(0) @binding(0) var<storage, read_write> ab_x: array<f32>;
@group(0) @binding(1) var<storage, read> ab_bias: array<f32>;
@group(0) @binding(2) var<uniform> ab_p: Params;

@compute @workgroup_size(256)
fn add_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i < ab_p.n) {
        ab_x[i] += ab_bias[i % ab_p.c];
    }
}
