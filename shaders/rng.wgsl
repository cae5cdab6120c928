// Counter-based standard normal noise: element i of stream s under seed k is a pure function of
// (k, s, i), so noise needs no state on the GPU, and the CPU reference (src/cpu/rng.rs) makes
// the same bits. Hash: Chris Wellons' lowbias32, chained over the key words.
// Box-Muller over two uniforms in (0, 1].

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    stream: u32,
}

@group(0) @binding(0) var<storage, read_write> dst: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;

fn lowbias32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn unit(bits: u32) -> f32 {
    return f32((bits >> 8u) + 1u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(256)
fn randn(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    let key = lowbias32(p.seed_lo ^ lowbias32(p.seed_hi ^ lowbias32(p.stream)));
    let u1 = unit(lowbias32(key ^ lowbias32(2u * i)));
    let u2 = unit(lowbias32(key ^ lowbias32(2u * i + 1u)));
    dst[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// Uniform class labels 0..CLASSES-1, as f32: element i of stream s under seed k draws one hash of
// (k, s, i), like randn; the CPU twin is src/rng.rs `label_at`.
const CLASSES: u32 = 10u;

@compute @workgroup_size(256)
fn rand_labels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    let key = lowbias32(p.seed_lo ^ lowbias32(p.seed_hi ^ lowbias32(p.stream)));
    let u = unit(lowbias32(key ^ lowbias32(i)));
    dst[i] = min(floor(u * f32(CLASSES)), f32(CLASSES - 1u));
}
