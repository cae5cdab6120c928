//! wgsl-gan's training step against PyTorch's: three steps of both GANs from the same initial
//! weights, real batches and noise, on the GPU and on the CPU reference, compared with the values
//! `benches/compare/golden.py` computed in PyTorch (tests/golden/*.safetensors; the command and the
//! PyTorch version are in each file's metadata).

mod common;

use std::collections::HashMap;

use common::*;
use safetensors::{Dtype, SafeTensors};
use wgsl_gan::gan::ema::{averaged_name, ema_name, ema_specs};
use wgsl_gan::gan::generator::GeneratorKind;
use wgsl_gan::gan::model::{PIXELS, discriminator_specs};
use wgsl_gan::gan::objective::{Objective, StepStats};
use wgsl_gan::gan::step::{Gan, Noise, StepConfig};
use wgsl_gan::gan::trainer::GpuTrainer;
use wgsl_gan::nn::{Backend, Cpu, MOMENT_PREFIXES, NamedValues, ParamSpec, Run, convert_layouts};
use wgsl_gan::spec::AdamSpec;

/// Relative error allowed on losses and mean outputs.
const STATS_TOL: f32 = 1e-4;
/// A tensor passes when ||ours - PyTorch's|| <= TENSOR_TOL ||PyTorch's|| + ADAM_STEP_TOL lr sqrt(n):
/// 1e-4 relative, or 1% of one Adam step per element. The second term is for tensors that Adam moved
/// from zero (biases, batch norm's beta) whose gradients are small differences of large sums (the
/// MLP generator's first beta: the batch norm after it cancels most of its gradient): rounding
/// there is a larger share of the gradient, and Adam scales every gradient to a step of about lr.
const TENSOR_TOL: f64 = 1e-4;
const ADAM_STEP_TOL: f64 = 1e-2;

struct Golden {
    model: GeneratorKind,
    /// Both networks' parameter specs (and the generator's moving average's, if kept).
    specs: Vec<ParamSpec>,
    /// The run's remedies (golden.py --ema, --label-smoothing, --lr-d, --lr-g).
    ema: Option<f32>,
    label_smoothing: f32,
    lr_d: f32,
    lr_g: f32,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    real: Vec<u8>,
    batch: usize,
    steps: u64,
}

impl Golden {
    /// tests/golden/`<model name><suffix>`.safetensors.
    fn load(model: GeneratorKind, suffix: &str) -> Golden {
        let path = format!(
            "{}/tests/golden/{}{suffix}.safetensors",
            env!("CARGO_MANIFEST_DIR"),
            model.model_name()
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap_or_default();
        assert_eq!(meta["model"], model.model_name());
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors = HashMap::new();
        let mut real = Vec::new();
        for (name, view) in st.tensors() {
            match view.dtype() {
                Dtype::F32 => {
                    let v: Vec<f32> = bytemuck::pod_collect_to_vec(view.data());
                    tensors.insert(name, (view.shape().to_vec(), v));
                }
                Dtype::U8 if name == "real" => real = view.data().to_vec(),
                other => panic!("{path}: unexpected dtype {other:?} of {name}"),
            }
        }
        // Files from before the remedies record one "lr" and none of the others.
        let number = |key: &str, default: f32| -> f32 {
            let value = meta.get(key).or(meta.get("lr"));
            value.map_or(default, |v| v.parse().unwrap())
        };
        let ema = meta
            .get("ema")
            .filter(|v| *v != "off")
            .map(|v| v.parse().unwrap());
        let mut specs = model.specs(false);
        if ema.is_some() {
            specs.extend(ema_specs(&specs));
        }
        specs.extend(discriminator_specs(false));
        Golden {
            model,
            specs,
            ema,
            label_smoothing: meta
                .get("label_smoothing")
                .map_or(0.0, |v| v.parse().unwrap()),
            lr_d: number("lr_d", AdamSpec::GAN.lr),
            lr_g: number("lr_g", AdamSpec::GAN.lr),
            tensors,
            real,
            batch: meta["batch_size"].parse().unwrap(),
            steps: meta["steps"].parse().unwrap(),
        }
    }

    fn get(&self, name: &str) -> &[f32] {
        &self
            .tensors
            .get(name)
            .unwrap_or_else(|| panic!("golden file lacks {name}"))
            .1
    }

    /// `prefix`.NAME for every spec, in our layouts. The initial values (`init.`) have no
    /// moving average: it starts as a copy of the generator.
    fn values(&self, prefix: &str) -> NamedValues {
        let mut v: NamedValues = self
            .specs
            .iter()
            .map(|s| {
                let name = match (prefix, averaged_name(&s.name)) {
                    ("init.", Some(g)) => g,
                    _ => s.name.clone(),
                };
                let (shape, data) = &self.tensors[&format!("{prefix}{name}")];
                (s.name.clone(), shape.clone(), data.clone())
            })
            .collect();
        convert_layouts(&self.specs, &mut v, false);
        v
    }

    /// The step golden.py took: its noise given, its remedies.
    fn config(&self) -> StepConfig {
        let article = StepConfig::article(self.model, self.batch, 0);
        StepConfig {
            noise: Noise::Given,
            adam_d: AdamSpec {
                lr: self.lr_d,
                ..article.adam_d
            },
            adam_g: AdamSpec {
                lr: self.lr_g,
                ..article.adam_g
            },
            label_smoothing: self.label_smoothing,
            ema: self.ema,
            ..article
        }
    }

    /// Noise of step `t` (0-based): the D step's and the G step's.
    fn noise(&self, t: u64) -> (&[f32], &[f32]) {
        let n = self.batch * 100;
        let all = &self.get("noise")[2 * t as usize * n..];
        (&all[..n], &all[n..2 * n])
    }
}

/// Checks our tensors (our layouts, converted here) against `step{t}.NAME` of the golden file,
/// after `steps` Adam steps.
fn compare(what: &str, golden: &Golden, ours: &NamedValues, steps: u64, zero_gradient: &[&str]) {
    let mut ours = ours.clone();
    convert_layouts(&golden.specs, &mut ours, true);
    let lr = golden.lr_d.max(golden.lr_g);
    for (name, _, a) in &ours {
        let golden_name = format!("step{steps}.{name}");
        let want = golden.get(&golden_name);
        let base = MOMENT_PREFIXES
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        let averaged = averaged_name(base);
        let network_name = averaged.as_deref().unwrap_or(base);
        if zero_gradient.iter().any(|z| network_name.ends_with(z)) {
            if name != base {
                continue; // the moments of rounding noise
            }
            // Batch norm subtracts the mean, so these biases' true gradient is 0: both sides see
            // rounding noise, which Adam turns into steps of up to lr of either sign (the
            // running means hold the bias, so they inherit the difference).
            let worst = a
                .iter()
                .zip(want)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 2.0 * steps as f32 * lr * 1.01,
                "{what} {golden_name}: differs by {worst}"
            );
            continue;
        }
        let e = rel_err(a, want);
        let norm = want.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let adam_steps = if name != base {
            0.0 // moments are compared relatively
        } else {
            ADAM_STEP_TOL * lr as f64 * (want.len() as f64).sqrt()
        };
        assert!(
            e * norm <= TENSOR_TOL * norm + adam_steps,
            "{what} {golden_name}: relative error {e:e}"
        );
    }
}

/// Biases followed by batch norm, and the running means that carry them.
fn zero_gradient(model: GeneratorKind) -> Vec<&'static str> {
    let mut z = vec![
        "discriminator.2.bias",
        "discriminator.5.bias",
        "discriminator.3.running_mean",
        "discriminator.6.running_mean",
    ];
    if model == GeneratorKind::Dcgan {
        z.extend(["generator.4.bias", "generator.5.running_mean"]);
    }
    z
}

/// Our step's figures against PyTorch's statistics (golden.py writes them in the order of
/// wgsl-gan's statistics slots).
fn check_stats(what: &str, t: u64, got: &StepStats, golden_slots: &[f32]) {
    let want = Objective::Bce.stats(golden_slots);
    let names = Objective::Bce.columns();
    for ((name, a), b) in names.iter().zip(got.values()).zip(want.values()) {
        assert!(
            (a - b).abs() <= STATS_TOL * b.abs().max(1.0),
            "{what} step {}: {name} {a}, PyTorch {b}",
            t + 1
        );
    }
}

/// What one backend's step produced: its figures, parameters and running statistics, and Adam's
/// moments.
type StepResult = (StepStats, NamedValues, NamedValues);

/// Runs the golden file's steps through `step` (step index, the D step's and the G step's noise)
/// and compares every result with PyTorch's.
fn check(
    golden: &Golden,
    what: &str,
    mut step: impl FnMut(&Golden, u64, &[f32], &[f32]) -> StepResult,
) {
    let (golden, model) = (golden, golden.model);
    let zero = zero_gradient(model);
    for t in 0..golden.steps {
        let (zd, zg) = golden.noise(t);
        let (stats, weights, moments) = step(golden, t, zd, zg);
        check_stats(what, t, &stats, golden.get(&format!("step{}.stats", t + 1)));
        compare(what, golden, &weights, t + 1, &zero);
        if t + 1 == golden.steps {
            compare(what, golden, &moments, t + 1, &zero);
        }
    }
}

fn zero_moments(weights: &NamedValues) -> NamedValues {
    MOMENT_PREFIXES
        .iter()
        .flat_map(|p| {
            weights
                .iter()
                .filter(|(n, _, _)| averaged_name(n).is_none())
                .map(move |(n, s, v)| (format!("{p}{n}"), s.clone(), vec![0.0; v.len()]))
        })
        .collect()
}

fn check_gpu(model: GeneratorKind, suffix: &str) {
    let golden = Golden::load(model, suffix);
    let gpu = gpu();
    let images: Vec<u32> = bytemuck::pod_collect_to_vec(&golden.real);
    let count = golden.real.len() / PIXELS;
    let mut trainer = GpuTrainer::new(&gpu, golden.config(), &images, &[], count).unwrap();
    let init = golden.values("init.");
    trainer.load(&init, &zero_moments(&init)).unwrap();
    trainer
        .set_order(&(0..count as u32).collect::<Vec<_>>())
        .unwrap();
    check(
        &golden,
        &format!("{model:?}{suffix} on the GPU"),
        |golden, t, zd, zg| {
            trainer.set_noise(zd, zg).unwrap();
            let offset = t as usize * golden.batch;
            let stats = trainer.run_step(t, offset, true).unwrap().unwrap();
            let (weights, moments) = trainer.values().unwrap();
            (stats, weights, moments)
        },
    );
}

fn check_cpu(model: GeneratorKind, suffix: &str) {
    let golden = Golden::load(model, suffix);
    let images: Vec<u32> = bytemuck::pod_collect_to_vec(&golden.real);
    let count = golden.real.len() / PIXELS;
    let mut be = Cpu::default();
    let gan = Gan::new(&mut be, golden.config(), &images, &[], count).unwrap();
    let init = golden.values("init.");
    for store in [&gan.g_store, &gan.d_store] {
        store.load(&mut be, &init).unwrap();
    }
    if let Some(avg) = &gan.g_ema {
        let g = gan.g_store.values(&mut be).unwrap();
        avg.load(&mut be, &g).unwrap();
    }
    check(
        &golden,
        &format!("{model:?}{suffix} on the CPU reference"),
        |golden, t, zd, zg| {
            be.write(&gan.noise[0], zd).unwrap();
            be.write(&gan.noise[1], zg).unwrap();
            be.run = Run {
                step: t,
                offset: t as usize * golden.batch,
                lr: None,
            };
            gan.step(&mut be).unwrap();
            let mut weights = gan.g_store.values(&mut be).unwrap();
            weights.extend(gan.d_store.values(&mut be).unwrap());
            if let Some(avg) = &gan.g_ema {
                let values = avg.values(&mut be).unwrap();
                weights.extend(values.into_iter().map(|(n, s, v)| (ema_name(&n), s, v)));
            }
            let mut moments = gan.g_store.moments(&mut be).unwrap();
            moments.extend(gan.d_store.moments(&mut be).unwrap());
            (Objective::Bce.stats(&gan.stats.to_vec()), weights, moments)
        },
    );
}

#[test]
fn mlp_gan_steps_match_pytorch_on_the_gpu() {
    check_gpu(GeneratorKind::Mlp, "");
}

#[test]
fn mlp_gan_steps_match_pytorch_on_the_cpu_reference() {
    check_cpu(GeneratorKind::Mlp, "");
}

#[test]
fn dcgan_steps_match_pytorch_on_the_gpu() {
    check_gpu(GeneratorKind::Dcgan, "");
}

#[test]
fn dcgan_steps_match_pytorch_on_the_cpu_reference() {
    check_cpu(GeneratorKind::Dcgan, "");
}

/// The remedies as PyTorch users write them (golden.py --ema 0.9 --label-smoothing 0.1 --lr-d
/// 1e-4 --lr-g 3e-4): a deep-copied G lerped after each step, smoothed real targets, two Adams.
#[test]
fn mlp_gan_steps_with_the_remedies_match_pytorch_on_the_gpu() {
    check_gpu(GeneratorKind::Mlp, "-remedies");
}

#[test]
fn mlp_gan_steps_with_the_remedies_match_pytorch_on_the_cpu_reference() {
    check_cpu(GeneratorKind::Mlp, "-remedies");
}
