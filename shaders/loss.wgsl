// Binary cross-entropy with logits against one target for the whole batch (the GAN's case).
// loss = mean(max(x, 0) - x * t + log(1 + exp(-|x|))): finite for any finite logit.
// grad = (sigmoid(x) - t) * scale / n; stats[slot] = loss, stats[slot + 1] = mean(sigmoid(x)).
// One workgroup, fixed-order tree reduction: deterministic.

struct Params {
    n: u32,
    slot: u32,
    target_value: f32,
    scale: f32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn sigmoid(x: f32) -> f32 {
    // Both branches avoid exp of a large positive number.
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn bce_with_logits(@builtin(local_invocation_index) li: u32) {
    var acc = vec2<f32>(0.0, 0.0);
    let t = p.target_value;
    for (var i = li; i < p.n; i += 256u) {
        let x = logits[i];
        let s = sigmoid(x);
        acc += vec2<f32>(max(x, 0.0) - x * t + log(1.0 + exp(-abs(x))), s);
        grad[i] = (s - t) * p.scale / f32(p.n);
    }
    let total = tree_sum(li, acc);
    if (li == 0u) {
        stats[p.slot] = total.x / f32(p.n);
        stats[p.slot + 1u] = total.y / f32(p.n);
    }
}
