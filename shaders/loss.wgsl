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

// ---- hinge loss on the logits against a sign t (+1: real, -1: fake), one workgroup, same
// statistics layout as the cross-entropy above (loss, then mean sigmoid(x): a monotone view of the
// logit on the same scale as D(x) there).
// margin = 1 (the discriminator's terms): loss = mean(max(0, 1 - t * x)), grad = -t [t x < 1] * scale / n
// margin = 0 (the generator's term):      loss = mean(-t * x),            grad = -t * scale / n
struct HingeParams {
    n: u32,
    slot: u32,
    sign: f32,
    scale: f32,
    margin: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> h_logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> h_grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> h_stats: array<f32>;
@group(0) @binding(3) var<uniform> h_p: HingeParams;

@compute @workgroup_size(256)
fn hinge(@builtin(local_invocation_index) li: u32) {
    var acc = vec2<f32>(0.0, 0.0);
    let t = h_p.sign;
    let step = h_p.scale / f32(h_p.n);
    for (var i = li; i < h_p.n; i += 256u) {
        let x = h_logits[i];
        var loss = -t * x;
        var g = -t * step;
        if (h_p.margin != 0u) {
            loss = max(0.0, 1.0 - t * x);
            g = select(0.0, g, t * x < 1.0);
        }
        acc += vec2<f32>(loss, sigmoid(x));
        h_grad[i] = g;
    }
    let total = tree_sum(li, acc);
    if (li == 0u) {
        h_stats[h_p.slot] = total.x / f32(h_p.n);
        h_stats[h_p.slot + 1u] = total.y / f32(h_p.n);
    }
}

// ---- softmax cross-entropy over C classes, per row of logits [B, C], class indices as f32 [B].
// grad = (softmax - onehot) * scale / B; stats[slot] = mean loss, stats[slot + 1] = accuracy
// (share of rows whose largest logit is the label's; ties go to the lowest class).
struct CeParams {
    rows: u32,
    classes: u32,
    slot: u32,
    scale: f32,
}

@group(0) @binding(0) var<storage, read> ce_logits: array<f32>;
@group(0) @binding(1) var<storage, read> ce_labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> ce_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> ce_stats: array<f32>;
@group(0) @binding(4) var<uniform> ce_p: CeParams;

@compute @workgroup_size(256)
fn softmax_cross_entropy(@builtin(local_invocation_index) li: u32) {
    var acc = vec2<f32>(0.0, 0.0);
    let c = ce_p.classes;
    for (var r = li; r < ce_p.rows; r += 256u) {
        let base = r * c;
        let label = u32(ce_labels[r]);
        var top = ce_logits[base];
        var arg = 0u;
        for (var j = 1u; j < c; j++) {
            let v = ce_logits[base + j];
            if (v > top) {
                top = v;
                arg = j;
            }
        }
        var total = 0.0;
        for (var j = 0u; j < c; j++) {
            total += exp(ce_logits[base + j] - top);
        }
        let lse = top + log(total);
        for (var j = 0u; j < c; j++) {
            let prob = exp(ce_logits[base + j] - lse);
            ce_grad[base + j] = (prob - select(0.0, 1.0, j == label)) * ce_p.scale / f32(ce_p.rows);
        }
        acc += vec2<f32>(lse - ce_logits[base + label], select(0.0, 1.0, arg == label));
    }
    let sums = tree_sum(li, acc);
    if (li == 0u) {
        ce_stats[ce_p.slot] = sums.x / f32(ce_p.rows);
        ce_stats[ce_p.slot + 1u] = sums.y / f32(ce_p.rows);
    }
}
