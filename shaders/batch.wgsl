// Gathers a training batch on the GPU from the whole dataset uploaded once as bytes.
// images: the dataset's pixels, 4 per u32 (little-endian); order: the epoch's shuffled indices.
// dst[b, p] = pixel / 127.5 - 1, images scaled to [-1, 1].

struct Params {
    batch: u32,
    pixels: u32,
    // position of the batch's first index in `order`
    offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> images: array<u32>;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.batch * p.pixels) {
        return;
    }
    let b = i / p.pixels;
    let px = i % p.pixels;
    let byte_index = order[p.offset + b] * p.pixels + px;
    let word = images[byte_index / 4u];
    let value = (word >> ((byte_index % 4u) * 8u)) & 255u;
    dst[i] = f32(value) / 127.5 - 1.0;
}

// ---- labels of the same batch: dst[b] = labels[order[offset + b]] as f32 (bytes packed 4 per u32)
@group(0) @binding(0) var<storage, read> gl_labels: array<u32>;
@group(0) @binding(1) var<storage, read> gl_order: array<u32>;
@group(0) @binding(2) var<storage, read_write> gl_dst: array<f32>;
@group(0) @binding(3) var<uniform> gl_p: Params;

@compute @workgroup_size(256)
fn gather_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = flat_index(gid, nwg);
    if (b >= gl_p.batch) {
        return;
    }
    let index = gl_order[gl_p.offset + b];
    gl_dst[b] = f32((gl_labels[index / 4u] >> ((index % 4u) * 8u)) & 255u);
}
