// Class conditioning: the generator's input with the label appended one-hot, and the projection
// discriminator's class term (Miyato & Koyama 2018): logit += <embed[y], phi(x)>.
// Labels are f32 tensors holding 0..CLASSES-1 (as gather_labels and rand_labels write them).

struct Params {
    // rows of the batch
    rows: u32,
    // columns of z (one_hot_concat) or of the features and embedding (projection)
    cols: u32,
    classes: u32,
    _pad: u32,
}

// out [B, L + C] = [z | one_hot(label)], z [B, L].
@group(0) @binding(0) var<storage, read> oh_z: array<f32>;
@group(0) @binding(1) var<storage, read> oh_labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> oh_out: array<f32>;
@group(0) @binding(3) var<uniform> oh_p: Params;

@compute @workgroup_size(256)
fn one_hot_concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let cols = oh_p.cols;
    let width = cols + oh_p.classes;
    if (i >= oh_p.rows * width) {
        return;
    }
    let b = i / width;
    let k = i % width;
    if (k < cols) {
        oh_out[i] = oh_z[b * cols + k];
    } else {
        oh_out[i] = select(0.0, 1.0, u32(oh_labels[b]) == k - cols);
    }
}

// logits [B, 1] += <embed[label_b], features_b>; features [B, F], embed [C, F]. One invocation
// per row, summing in order.
@group(0) @binding(0) var<storage, read> pf_features: array<f32>;
@group(0) @binding(1) var<storage, read> pf_embed: array<f32>;
@group(0) @binding(2) var<storage, read> pf_labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> pf_logits: array<f32>;
@group(0) @binding(4) var<uniform> pf_p: Params;

@compute @workgroup_size(64)
fn projection(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    let f = pf_p.cols;
    if (b >= pf_p.rows) {
        return;
    }
    let e = u32(pf_labels[b]) * f;
    var sum = 0.0;
    for (var j = 0u; j < f; j++) {
        sum += pf_embed[e + j] * pf_features[b * f + j];
    }
    pf_logits[b] += sum;
}

// dfeatures [B, F] += dlogits_b * embed[label_b].
@group(0) @binding(0) var<storage, read> pi_dlogits: array<f32>;
@group(0) @binding(1) var<storage, read> pi_embed: array<f32>;
@group(0) @binding(2) var<storage, read> pi_labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> pi_dfeatures: array<f32>;
@group(0) @binding(4) var<uniform> pi_p: Params;

@compute @workgroup_size(256)
fn projection_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let f = pi_p.cols;
    if (i >= pi_p.rows * f) {
        return;
    }
    let b = i / f;
    pi_dfeatures[i] += pi_dlogits[b] * pi_embed[u32(pi_labels[b]) * f + i % f];
}

// dembed [C, F] += sum over the rows b with label c of dlogits_b * features_b, in row order:
// deterministic, no atomics.
@group(0) @binding(0) var<storage, read> pp_dlogits: array<f32>;
@group(0) @binding(1) var<storage, read> pp_features: array<f32>;
@group(0) @binding(2) var<storage, read> pp_labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> pp_dembed: array<f32>;
@group(0) @binding(4) var<uniform> pp_p: Params;

@compute @workgroup_size(256)
fn projection_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let f = pp_p.cols;
    let rows = pp_p.rows;
    if (i >= pp_p.classes * f) {
        return;
    }
    let c = f32(i / f);
    let j = i % f;
    var sum = 0.0;
    for (var b = 0u; b < rows; b++) {
        sum += select(0.0, pp_dlogits[b] * pp_features[b * f + j], pp_labels[b] == c);
    }
    pp_dembed[i] += sum;
}
