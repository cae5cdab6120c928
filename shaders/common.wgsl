// Helpers prepended to every shader file (src/gpu/kernel.rs).

// Element index for 1-D work launched on a grid that may be 2-D (src/gpu/kernel.rs `grid`).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Activation modes: 0 identity, 1 LeakyReLU(alpha), 2 ReLU, 3 tanh, 4 sigmoid.
fn activate(v: f32, act: u32, alpha: f32) -> f32 {
    switch act {
        case 1u: { return select(alpha * v, v, v > 0.0); }
        case 2u: { return max(v, 0.0); }
        case 3u: { return tanh(v); }
        case 4u: { return 1.0 / (1.0 + exp(-v)); }
        default: { return v; }
    }
}

// Derivative as a function of the activation's OUTPUT y: LeakyReLU with alpha > 0 keeps the sign,
// so fused forward kernels need not keep their input.
fn derivative_from_output(y: f32, act: u32, alpha: f32) -> f32 {
    switch act {
        case 1u: { return select(alpha, 1.0, y > 0.0); }
        case 2u: { return select(0.0, 1.0, y > 0.0); }
        case 3u: { return 1.0 - y * y; }
        case 4u: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}

// Sum over the 256 invocations of a workgroup in a fixed tree order: deterministic, no atomics.
// Must be called in uniform control flow.
var<workgroup> tree: array<vec2<f32>, 256>;

fn tree_sum(li: u32, v: vec2<f32>) -> vec2<f32> {
    tree[li] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            tree[li] += tree[li + s];
        }
        workgroupBarrier();
    }
    let r = tree[0];
    workgroupBarrier();
    return r;
}
