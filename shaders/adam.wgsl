// Fused Adam over a whole network: params, grads, m and v are each one contiguous buffer.
// bias_correction1 = 1 - beta1^t and bias_correction2 = 1 - beta2^t come from the host in f64,
// so the shader needs no pow and no step counter.
// p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)   (PyTorch's placement of eps)

struct Params {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bias_correction1: f32,
    bias_correction2: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= p.n) {
        return;
    }
    let g = grads[i];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let m_hat = mi / p.bias_correction1;
    let v_hat = vi / p.bias_correction2;
    params[i] -= p.lr * m_hat / (sqrt(v_hat) + p.eps);
}

// ---- an exponential moving average of a network: its parameters and its state (batch-norm
// running statistics) in one dispatch; index i < n_params is a parameter, the rest are state.
// avg = decay * avg + (1 - decay) * value
struct EmaParams {
    n_params: u32,
    n_state: u32,
    decay: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> avg_params: array<f32>;
@group(0) @binding(1) var<storage, read> ema_params: array<f32>;
@group(0) @binding(2) var<storage, read_write> avg_state: array<f32>;
@group(0) @binding(3) var<storage, read> ema_state: array<f32>;
@group(0) @binding(4) var<uniform> e: EmaParams;

@compute @workgroup_size(256)
fn ema(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    let keep = e.decay;
    if (i < e.n_params) {
        avg_params[i] = keep * avg_params[i] + (1.0 - keep) * ema_params[i];
    } else if (i - e.n_params < e.n_state) {
        let j = i - e.n_params;
        avg_state[j] = keep * avg_state[j] + (1.0 - keep) * ema_state[j];
    }
}
