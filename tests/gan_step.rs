//! The whole training step: the GPU trainer against the CPU reference (the same step over the CPU
//! kernels) for three steps from the same weights, batches and noise.

mod common;

use common::*;
use wgsl_gan::gan::ema::{averaged_name, ema_name};
use wgsl_gan::gan::generator::GeneratorKind;
use wgsl_gan::gan::objective::Objective;
use wgsl_gan::gan::step::{Gan, StepConfig};
use wgsl_gan::gan::trainer::GpuTrainer;
use wgsl_gan::nn::{Cpu, Run};
use wgsl_gan::rng::SplitMix64;
use wgsl_gan::spec::AdamSpec;

/// `count` synthetic 28x28 images: blobs at random places, packed 4 bytes per u32.
pub fn synthetic_images(count: usize, seed: u64) -> Vec<u32> {
    let mut r = SplitMix64::new(seed);
    let mut bytes = vec![0u8; count * 784];
    for img in bytes.chunks_mut(784) {
        let (cy, cx) = (6.0 + 16.0 * r.next_f64(), 6.0 + 16.0 * r.next_f64());
        for (i, px) in img.iter_mut().enumerate() {
            let d2 = ((i / 28) as f64 - cy).powi(2) + ((i % 28) as f64 - cx).powi(2);
            *px = (255.0 * (-d2 / 18.0).exp()) as u8;
        }
    }
    bytemuck::pod_collect_to_vec(&bytes)
}

/// Conv biases followed by batch norm, and the running means that carry them.
const BIASES_BEFORE_BATCH_NORM: [&str; 4] = [
    "discriminator.2.bias",
    "discriminator.5.bias",
    "discriminator.3.running_mean",
    "discriminator.6.running_mean",
];
/// The same in the convolutional generator.
const DCGAN_BIASES_BEFORE_BATCH_NORM: [&str; 2] = ["generator.4.bias", "generator.5.running_mean"];

/// Labels 0..9 for `count` images, packed 4 per u32 as the GPU gathers them.
pub fn synthetic_labels(count: usize, seed: u64) -> Vec<u32> {
    let mut r = SplitMix64::new(seed);
    let mut bytes: Vec<u8> = (0..count).map(|_| r.below(10) as u8).collect();
    bytes.resize(count.div_ceil(4) * 4, 0);
    bytemuck::pod_collect_to_vec(&bytes)
}

fn config(model: GeneratorKind, conditional: bool) -> StepConfig {
    StepConfig {
        conditional,
        ..StepConfig::article(model, 16, 42)
    }
}

#[test]
fn gpu_step_matches_cpu_reference_for_three_steps() {
    for model in [GeneratorKind::Mlp, GeneratorKind::Dcgan] {
        check_three_steps(config(model, false));
    }
}

/// The remedies (`train --ema --label-smoothing --lr-d --lr-g --loss hinge`): the moving
/// average, the smoothed real targets, the two learning rates and the hinge loss, against the
/// same on the CPU.
#[test]
fn gpu_step_with_the_remedies_matches_cpu_reference_for_three_steps() {
    let two_rates = |c: StepConfig| StepConfig {
        adam_d: AdamSpec {
            lr: 1e-4,
            ..c.adam_d
        },
        adam_g: AdamSpec {
            lr: 4e-4,
            ..c.adam_g
        },
        ..c
    };
    let mlp = config(GeneratorKind::Mlp, false);
    check_three_steps(StepConfig {
        ema: Some(0.9),
        label_smoothing: 0.1,
        ..two_rates(mlp)
    });
    check_three_steps(StepConfig {
        objective: Objective::Hinge,
        ..mlp
    });
    check_three_steps(StepConfig {
        objective: Objective::Hinge,
        ema: Some(0.5),
        ..two_rates(config(GeneratorKind::Dcgan, true))
    });
}

/// The class-conditional step: labels gathered with the batch, fake labels drawn on the device,
/// the one-hot input and the projection term, against the same on the CPU.
#[test]
fn conditional_gpu_step_matches_cpu_reference_for_three_steps() {
    for model in [GeneratorKind::Mlp, GeneratorKind::Dcgan] {
        check_three_steps(config(model, true));
    }
}

fn check_three_steps(config: StepConfig) {
    let (model, conditional) = (config.model, config.conditional);
    let gpu = gpu();
    let count = 48;
    let images = synthetic_images(count, 5);
    let labels = synthetic_labels(count, 6);
    let mut order: Vec<u32> = (0..count as u32).collect();
    SplitMix64::new(9).shuffle(&mut order);

    let mut trainer = GpuTrainer::new(&gpu, config, &images, &labels, count).unwrap();
    let mut cpu = Cpu::default();
    let reference = Gan::new(&mut cpu, config, &images, &labels, count).unwrap();
    reference.initialize(&mut cpu).unwrap();
    // Both start from the same weights: the CPU's initialisation, loaded into the GPU.
    let (g, d) = (
        reference.g_store.values(&mut cpu).unwrap(),
        reference.d_store.values(&mut cpu).unwrap(),
    );
    let zeros = |v: &wgsl_gan::nn::NamedValues, p: &str| -> wgsl_gan::nn::NamedValues {
        v.iter()
            .map(|(n, s, x)| (format!("{p}{n}"), s.clone(), vec![0.0; x.len()]))
            .collect()
    };
    let mut weights = g.clone();
    weights.extend(d.clone());
    let mut moments = zeros(&weights, "adam_m.");
    moments.extend(zeros(&weights, "adam_v."));
    let averaged = |cpu: &mut Cpu| -> wgsl_gan::nn::NamedValues {
        let Some(avg) = &reference.g_ema else {
            return Vec::new();
        };
        let values = avg.values(cpu).unwrap();
        values
            .into_iter()
            .map(|(n, s, v)| (ema_name(&n), s, v))
            .collect()
    };
    weights.extend(averaged(&mut cpu));
    trainer.load(&weights, &moments).unwrap();
    trainer.set_order(&order).unwrap();
    wgsl_gan::nn::Backend::write_words(&mut cpu, &reference.order, &order).unwrap();

    for step in 0..3u64 {
        let offset = step as usize * config.batch;
        let got = trainer.run_step(step, offset, true).unwrap().unwrap();
        cpu.run = Run {
            step,
            offset,
            lr: None,
        };
        reference.step(&mut cpu).unwrap();
        let want = config.objective.stats(&reference.stats.to_vec());
        for (name, a, b) in [
            ("d_loss", got.d_loss, want.d_loss),
            ("g_loss", got.g_loss, want.g_loss),
            ("d_real", got.d_real, want.d_real),
            ("d_fake", got.d_fake, want.d_fake),
        ] {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{model:?} conditional {conditional} step {step} {name}: gpu {a} cpu {b}"
            );
        }
    }

    let (gw, gm) = trainer.values().unwrap();
    let mut cw = reference.g_store.values(&mut cpu).unwrap();
    cw.extend(reference.d_store.values(&mut cpu).unwrap());
    cw.extend(averaged(&mut cpu));
    assert_eq!(
        gw.iter().any(|(n, _, _)| n.starts_with("generator_ema.")),
        config.ema.is_some()
    );
    let mut cm = reference.g_store.moments(&mut cpu).unwrap();
    cm.extend(reference.d_store.moments(&mut cpu).unwrap());
    assert_eq!(gw.len(), cw.len());
    for ((name, _, a), (other, _, b)) in gw.iter().zip(&cw).chain(gm.iter().zip(&cm)) {
        assert_eq!(name, other);
        let name = &averaged_name(name).unwrap_or(name.clone());
        let dcgan_zero = model == GeneratorKind::Dcgan
            && DCGAN_BIASES_BEFORE_BATCH_NORM
                .iter()
                .any(|p| name.ends_with(p));
        if dcgan_zero || BIASES_BEFORE_BATCH_NORM.iter().any(|p| name.ends_with(p)) {
            // Batch norm subtracts the mean, so these biases' true gradient is 0: both sides see
            // rounding noise, and Adam turns noise of either sign into steps of about lr (the
            // running means include the bias, so they inherit the difference).
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(
                worst <= 2.0 * 3.0 * config.adam_d.lr.max(config.adam_g.lr) * 1.01,
                "{model:?} conditional {conditional} {name}: differs by {worst}"
            );
            continue;
        }
        // Three Adam steps: each parameter moves by about lr * sign(gradient), so a rounding
        // difference in a small gradient shows at the 1e-4 level in parameters that started at 0.
        let e = rel_err(a, b);
        assert!(e < 2e-4, "{config:?} {name}: relative error {e:e}");
    }
    // The weights did move.
    let moved = gw
        .iter()
        .zip(&weights)
        .any(|((_, _, a), (_, _, b))| rel_err(a, b) > 1e-4);
    assert!(moved, "three steps left the weights unchanged");
}

#[test]
fn training_steps_allocate_nothing_after_set_up() {
    let gpu = gpu();
    let count = 64;
    let images = synthetic_images(count, 3);
    let config = StepConfig::article(GeneratorKind::Dcgan, 8, 1);
    let labels = synthetic_labels(count, 4);
    let mut trainer = GpuTrainer::new(&gpu, config, &images, &labels, count).unwrap();
    trainer.initialize().unwrap();
    trainer.run_step(0, 0, true).unwrap();
    let before = gpu.creation_counts();
    assert!(
        before.0 > 0 && before.1 > 0,
        "the counters count nothing: {before:?}"
    );
    for step in 1..11u64 {
        // Losses read back on some steps, as training logs them.
        trainer
            .run_step(step, (step as usize % 8) * 8, step % 5 == 0)
            .unwrap();
    }
    trainer.finish().unwrap();
    assert_eq!(
        gpu.creation_counts(),
        before,
        "buffers or bind groups were created during steps 2..11"
    );
    // One prepared dispatch list, recorded into one pass per step.
    assert!(trainer.dispatch_count() > 50);
}
