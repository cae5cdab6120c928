// Helpers prepended to every shader file (src/gpu/kernel.rs).

// Element index for 1-D work launched on a grid that may be 2-D (src/gpu/kernel.rs `grid`).
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// `activate` and `derivative` (and `activate4`, `derivative4`) are generated from
// src/activation.rs and prepended too.

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
