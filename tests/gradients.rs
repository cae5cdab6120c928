//! Backward passes against finite differences of the CPU forward references: each backward kernel,
//! each layer, and each whole network on small shapes. No GPU needed.

mod common;

use common::{random, rel_err};
use wgsl_gan::cpu::{Tensor, ops};
use wgsl_gan::gan::generator::{AnyGenerator, GeneratorKind};
use wgsl_gan::gan::model::{Discriminator, LATENT, PIXELS, discriminator_specs};
use wgsl_gan::nn::layers::{self, Backprop};
use wgsl_gan::nn::{Backend, BnMode, Conv2d, Cpu, Linear, ParamSpec, ParamStore, Stream};
use wgsl_gan::spec::{Activation, ConvGeom, MatmulSpec, ParamGrads, Saved};

fn t(data: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_slice(&data, shape).unwrap()
}

/// Central differences of `loss` w.r.t. the elements `indices` of `x`.
fn numeric(x: &Tensor, indices: &[usize], eps: f32, mut loss: impl FnMut() -> f64) -> Vec<f32> {
    indices
        .iter()
        .map(|&i| {
            let orig = x.to_vec()[i];
            x.update(|v| v[i] = orig + eps);
            let plus = loss();
            x.update(|v| v[i] = orig - eps);
            let minus = loss();
            x.update(|v| v[i] = orig);
            ((plus - minus) / (2.0 * eps as f64)) as f32
        })
        .collect()
}

fn pick(analytic: &[f32], indices: &[usize]) -> Vec<f32> {
    indices.iter().map(|&i| analytic[i]).collect()
}

/// A spread of indices into n elements (all of them when n is small).
fn sample_indices(n: usize, count: usize) -> Vec<usize> {
    if n <= count {
        return (0..n).collect();
    }
    (0..count).map(|i| (i * 7919 + 13) % n).collect()
}

fn assert_grad(what: &str, analytic: &[f32], numeric: &[f32], tol: f64) {
    let e = rel_err(analytic, numeric);
    assert!(
        e < tol,
        "{what}: relative error {e:e} between analytic {analytic:?} and numeric {numeric:?}"
    );
}

/// sum(w * y): a loss whose gradient w.r.t. y is w.
fn weighted(y: &Tensor, w: &[f32]) -> f64 {
    y.to_vec()
        .iter()
        .zip(w)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum()
}

#[test]
fn col2im_is_the_gradient_of_im2col() {
    for geom in [
        ConvGeom {
            batch: 2,
            height: 5,
            width: 6,
            channels: 3,
            kernel: 3,
            stride: 1,
            padding: 1,
        },
        ConvGeom {
            batch: 1,
            height: 7,
            width: 7,
            channels: 2,
            kernel: 3,
            stride: 2,
            padding: 1,
        },
        ConvGeom {
            batch: 2,
            height: 6,
            width: 5,
            channels: 1,
            kernel: 3,
            stride: 2,
            padding: 0,
        },
    ] {
        let x = t(
            random(1, geom.input_shape().iter().product(), -1.0, 1.0),
            &geom.input_shape(),
        );
        let cols = Tensor::zeros(&geom.cols_shape());
        let w = random(2, cols.len(), -1.0, 1.0);
        let dx = Tensor::zeros(&geom.input_shape());
        ops::col2im(&t(w.clone(), &geom.cols_shape()), &dx, geom, None).unwrap();
        let idx = sample_indices(x.len(), 60);
        let num = numeric(&x, &idx, 1e-2, || {
            ops::im2col(&x, &cols, geom).unwrap();
            weighted(&cols, &w)
        });
        assert_grad(
            &format!("col2im {geom:?}"),
            &pick(&dx.to_vec(), &idx),
            &num,
            1e-4,
        );
    }
}

#[test]
fn activation_backward_matches_finite_differences() {
    // Every activation, from the one table in src/activation.rs.
    for &act in Activation::ALL {
        // Keep inputs away from the kinks at 0.
        let xs: Vec<f32> = random(3, 50, 0.05, 3.0)
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 2 == 0 { *v } else { -v })
            .collect();
        let x = t(xs, &[50]);
        let y = Tensor::zeros(&[50]);
        let w = random(4, 50, -1.0, 1.0);
        ops::activation_forward(&x, &y, act).unwrap();
        let dx = Tensor::zeros(&[50]);
        let saved = match act.saves() {
            Saved::Output => &y,
            Saved::Input => &x,
        };
        ops::activation_backward(saved, &t(w.clone(), &[50]), &dx, act).unwrap();
        let idx: Vec<usize> = (0..50).collect();
        let num = numeric(&x, &idx, 1e-3, || {
            ops::activation_forward(&x, &y, act).unwrap();
            weighted(&y, &w)
        });
        assert_grad(&format!("{act:?}"), &dx.to_vec(), &num, 1e-3);
    }
}

#[test]
fn an_activation_that_saves_its_input_is_refused_where_a_kernel_keeps_only_the_output() {
    let silu = Activation::Silu;
    assert_eq!(silu.saves(), Saved::Input);
    let mut be = Cpu::default();
    let store = ParamStore::new(&mut be, layers::linear_specs("fc", 4, 3)).unwrap();
    let fc = Linear::new(&be, &store, "fc", 4, 3).unwrap();
    let (x, y) = (Tensor::zeros(&[2, 4]), Tensor::zeros(&[2, 3]));
    let err = fc.forward(&mut be, &x, &y, silu).unwrap_err().to_string();
    assert!(err.contains("Linear") && err.contains("Silu"), "{err}");
    // The way that works: the layer without activation, then the activation op on its output.
    fc.forward(&mut be, &x, &y, Activation::Identity).unwrap();
    ops::activation_forward(&y, &Tensor::zeros(&[2, 3]), silu).unwrap();

    let geom = ConvGeom::new([1, 5, 5, 2], 3, 2, 0);
    let dcols = Tensor::zeros(&geom.cols_shape());
    let dx = Tensor::zeros(&geom.input_shape());
    let err = ops::col2im(&dcols, &dx, geom, Some((&dx, silu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("col2im"), "{err}");
}

#[test]
fn bce_gradient_matches_finite_differences() {
    for target in [0.0, 1.0, 0.25] {
        let x = t(random(5, 9, -4.0, 4.0), &[9, 1]);
        let grad = Tensor::zeros(&[9, 1]);
        let stats = Tensor::zeros(&[2]);
        ops::bce_with_logits(&x, &grad, &stats, 0, target, 0.5).unwrap();
        let analytic = grad.to_vec();
        let idx: Vec<usize> = (0..9).collect();
        let num = numeric(&x, &idx, 1e-3, || {
            ops::bce_with_logits(&x, &Tensor::zeros(&[9, 1]), &stats, 0, target, 0.5).unwrap();
            0.5 * stats.to_vec()[0] as f64
        });
        assert_grad(&format!("bce target {target}"), &analytic, &num, 1e-3);
    }
}

#[test]
fn hinge_gradient_matches_finite_differences() {
    // Logits away from the kinks at +-1, where the hinge has no derivative.
    let mut values = random(6, 9, -3.0, 3.0);
    for v in &mut values {
        if (v.abs() - 1.0).abs() < 0.05 {
            *v += 0.2;
        }
    }
    let x = t(values, &[9, 1]);
    for (sign, margin) in [(1.0, true), (-1.0, true), (1.0, false), (-1.0, false)] {
        let grad = Tensor::zeros(&[9, 1]);
        let stats = Tensor::zeros(&[2]);
        ops::hinge(&x, &grad, &stats, 0, sign, margin, 0.5).unwrap();
        let analytic = grad.to_vec();
        let idx: Vec<usize> = (0..9).collect();
        let num = numeric(&x, &idx, 1e-3, || {
            ops::hinge(&x, &Tensor::zeros(&[9, 1]), &stats, 0, sign, margin, 0.5).unwrap();
            0.5 * stats.to_vec()[0] as f64
        });
        let what = format!("hinge sign {sign} margin {margin}");
        assert_grad(&what, &analytic, &num, 1e-3);
    }
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let (rows, c) = (5, 4);
    let x = t(random(31, rows * c, -3.0, 3.0), &[rows, c]);
    let labels = t(vec![0.0, 3.0, 1.0, 2.0, 3.0], &[rows]);
    let (grad, stats) = (Tensor::zeros(&[rows, c]), Tensor::zeros(&[2]));
    ops::softmax_cross_entropy(&x, &labels, &grad, &stats, 0, 1.0).unwrap();
    let analytic = grad.to_vec();
    let idx: Vec<usize> = (0..rows * c).collect();
    let num = numeric(&x, &idx, 1e-3, || {
        ops::softmax_cross_entropy(&x, &labels, &Tensor::zeros(&[rows, c]), &stats, 0, 1.0)
            .unwrap();
        stats.to_vec()[0] as f64
    });
    assert_grad("softmax cross-entropy", &analytic, &num, 1e-3);
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    for (rows, c) in [(6, 3), (20, 2)] {
        let x = t(random(6, rows * c, -2.0, 2.0), &[rows, c]);
        let gamma = t(random(7, c, 0.5, 1.5), &[c]);
        let beta = t(random(8, c, -0.5, 0.5), &[c]);
        let (mean, invstd, rm, rv) = (
            Tensor::zeros(&[c]),
            Tensor::zeros(&[c]),
            Tensor::zeros(&[c]),
            Tensor::zeros(&[c]),
        );
        let y = Tensor::zeros(&[rows, c]);
        let w = random(9, rows * c, -1.0, 1.0);
        let mut forward = || {
            ops::batch_norm_stats(&x, &mean, &invstd, &rm, &rv, 0.8, 1e-3, false).unwrap();
            ops::batch_norm_apply(&x, &mean, &invstd, &gamma, &beta, &y, Activation::Identity)
                .unwrap();
            weighted(&y, &w)
        };
        forward();
        let (dx, dg, db) = (
            Tensor::zeros(&[rows, c]),
            Tensor::zeros(&[c]),
            Tensor::zeros(&[c]),
        );
        ops::batch_norm_backward(
            &x,
            &mean,
            &invstd,
            &gamma,
            &t(w.clone(), &[rows, c]),
            &dx,
            &dg,
            &db,
            ParamGrads::Write,
            None,
            Activation::Identity,
        )
        .unwrap();
        let all: Vec<usize> = (0..rows * c).collect();
        let ch: Vec<usize> = (0..c).collect();
        assert_grad(
            "bn dx",
            &dx.to_vec(),
            &numeric(&x, &all, 1e-2, &mut forward),
            2e-3,
        );
        assert_grad(
            "bn dgamma",
            &dg.to_vec(),
            &numeric(&gamma, &ch, 1e-2, &mut forward),
            2e-3,
        );
        assert_grad(
            "bn dbeta",
            &db.to_vec(),
            &numeric(&beta, &ch, 1e-2, &mut forward),
            2e-3,
        );
    }
}

fn store(specs: Vec<ParamSpec>, seed: u64) -> ParamStore<Cpu> {
    let s = ParamStore::new(&mut Cpu::default(), specs).unwrap();
    s.initialize(&mut Cpu::default(), seed).unwrap();
    s
}

/// Biases followed directly by batch norm: batch norm subtracts the batch mean, so their true
/// gradient is 0 and a relative error means nothing; both sides must be about 0 instead.
const D_ZERO_GRADIENT: [&str; 2] = ["discriminator.2.bias", "discriminator.5.bias"];
/// (The first Linear's bias is per position, not per channel: BatchNorm2d does not cancel it.)
const DCGAN_ZERO_GRADIENT: [&str; 1] = ["generator.4.bias"];

/// Checks every parameter of `s` (a sample of each) against finite differences of `loss`, after
/// `backward` filled s.grads; `zero` names the parameters whose gradient is 0.
fn check_params(
    what: &str,
    s: &ParamStore<Cpu>,
    zero: &[&str],
    eps: f32,
    tol: f64,
    mut loss: impl FnMut() -> f64,
) {
    for spec in s.specs.iter().filter(|p| p.trainable) {
        let view = s.get(&Cpu::default(), &spec.name, &[spec.len()]).unwrap();
        let analytic = pick(
            &s.grad(&Cpu::default(), &spec.name, &[spec.len()])
                .unwrap()
                .to_vec(),
            &sample_indices(spec.len(), 12),
        );
        let num = numeric(&view, &sample_indices(spec.len(), 12), eps, &mut loss);
        if zero.contains(&spec.name.as_str()) {
            let worst = analytic
                .iter()
                .chain(&num)
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(
                worst < 1e-2,
                "{what} {}: expected a zero gradient, got {analytic:?} / {num:?}",
                spec.name
            );
            continue;
        }
        assert_grad(&format!("{what} {}", spec.name), &analytic, &num, tol);
    }
}

#[test]
fn linear_layer_gradients_match_finite_differences() {
    let s = store(layers::linear_specs("l", 5, 3), 1);
    // Non-zero bias so the check covers it.
    let b = s.get(&Cpu::default(), "l.bias", &[3]).unwrap();
    b.write(&[0.1, -0.2, 0.3]).unwrap();
    let layer = Linear::new(&Cpu::default(), &s, "l", 5, 3).unwrap();
    let x = t(random(2, 20, -1.0, 1.0), &[4, 5]);
    let y = Tensor::zeros(&[4, 3]);
    let w = random(3, 12, -1.0, 1.0);
    let mut loss = || {
        layer
            .forward(&mut Cpu::default(), &x, &y, Activation::Identity)
            .unwrap();
        weighted(&y, &w)
    };
    loss();
    let dx = Tensor::zeros(&[4, 5]);
    ops::fill(&s.grads, 0.0).unwrap();
    layer
        .backward(
            &mut Cpu::default(),
            &x,
            &t(w.clone(), &[4, 3]),
            Backprop::Both(&dx),
        )
        .unwrap();
    check_params("linear", &s, &[], 1e-2, 1e-3, &mut loss);
    let idx: Vec<usize> = (0..20).collect();
    assert_grad(
        "linear dx",
        &dx.to_vec(),
        &numeric(&x, &idx, 1e-2, &mut loss),
        1e-3,
    );
}

#[test]
fn conv_layer_gradients_match_finite_differences() {
    let geom = ConvGeom {
        batch: 2,
        height: 7,
        width: 6,
        channels: 3,
        kernel: 3,
        stride: 2,
        padding: 1,
    };
    let out = 4;
    let s = store(layers::conv_specs("c", 3, out, 3), 2);
    let layer = Conv2d::new(&mut Cpu::default(), &s, "c", geom, out).unwrap();
    let x = t(
        random(4, geom.input_shape().iter().product(), -1.0, 1.0),
        &geom.input_shape(),
    );
    let rows = geom.cols_shape()[0];
    let y = Tensor::zeros(&[rows, out]);
    let w = random(5, rows * out, -1.0, 1.0);
    let mut loss = || {
        layer
            .forward(&mut Cpu::default(), &x, &y, Activation::Identity)
            .unwrap();
        weighted(&y, &w)
    };
    loss();
    let dx = Tensor::zeros(&geom.input_shape());
    ops::fill(&s.grads, 0.0).unwrap();
    layer
        .backward(
            &mut Cpu::default(),
            &x,
            &t(w.clone(), &[rows, out]),
            Backprop::Both(&dx),
            None,
        )
        .unwrap();
    check_params("conv", &s, &[], 1e-2, 1e-3, &mut loss);
    let idx = sample_indices(x.len(), 40);
    assert_grad(
        "conv dx",
        &pick(&dx.to_vec(), &idx),
        &numeric(&x, &idx, 1e-2, &mut loss),
        1e-3,
    );
}

#[test]
fn matmul_transposes_are_consistent_with_their_gradients() {
    // d/dA sum(W * (A B)) = W B^T and d/dB = A^T W, computed with the transpose flags.
    let (m, n, k) = (3, 4, 5);
    let a = t(random(1, m * k, -1.0, 1.0), &[m, k]);
    let b = t(random(2, k * n, -1.0, 1.0), &[k, n]);
    let w = random(3, m * n, -1.0, 1.0);
    let c = Tensor::zeros(&[m, n]);
    let mut loss = || {
        ops::matmul(&a, &b, None, &c, MatmulSpec::PLAIN).unwrap();
        weighted(&c, &w)
    };
    let (da, db) = (Tensor::zeros(&[m, k]), Tensor::zeros(&[k, n]));
    let wt = t(w.clone(), &[m, n]);
    ops::matmul(
        &wt,
        &b,
        None,
        &da,
        MatmulSpec {
            trans_b: true,
            ..MatmulSpec::PLAIN
        },
    )
    .unwrap();
    ops::matmul(
        &a,
        &wt,
        None,
        &db,
        MatmulSpec {
            trans_a: true,
            ..MatmulSpec::PLAIN
        },
    )
    .unwrap();
    assert_grad(
        "dA",
        &da.to_vec(),
        &numeric(&a, &(0..m * k).collect::<Vec<_>>(), 1e-2, &mut loss),
        1e-4,
    );
    assert_grad(
        "dB",
        &db.to_vec(),
        &numeric(&b, &(0..k * n).collect::<Vec<_>>(), 1e-2, &mut loss),
        1e-4,
    );
}

/// A whole generator (training mode) against finite differences of sum(w * G(z)).
fn check_generator(
    kind: GeneratorKind,
    batch: usize,
    seed: u64,
    zero: &[&str],
    eps: f32,
    tol: f64,
) {
    let s = store(kind.specs(false), seed);
    let out = Tensor::zeros(&[batch, PIXELS]);
    let g = AnyGenerator::new(kind, &mut Cpu::default(), &s, batch, &out, false).unwrap();
    let z = Tensor::zeros(&[batch, LATENT]);
    Cpu::default()
        .randn(
            &z,
            seed,
            Stream {
                base: 0,
                per_run: 0,
            },
        )
        .unwrap();
    let w = random(seed + 1, batch * PIXELS, -1.0, 1.0);
    let mode = BnMode::Train {
        update_running: false,
    };
    let mut loss = || {
        g.forward(&mut Cpu::default(), &z, mode).unwrap();
        weighted(g.out(), &w)
    };
    loss();
    ops::fill(&s.grads, 0.0).unwrap();
    g.backward(&mut Cpu::default(), &z, &t(w.clone(), &[batch, PIXELS]))
        .unwrap();
    check_params(
        &format!("{kind:?} generator"),
        &s,
        zero,
        eps,
        tol,
        &mut loss,
    );
}

#[test]
fn whole_generator_gradients_match_finite_differences() {
    check_generator(GeneratorKind::Mlp, 4, 11, &[], 1e-3, 2e-2);
}

#[test]
fn whole_dcgan_generator_gradients_match_finite_differences() {
    // ReLU kinks, as LeakyReLU's in the discriminator: a few percent at most.
    check_generator(
        GeneratorKind::Dcgan,
        2,
        13,
        &DCGAN_ZERO_GRADIENT,
        3e-4,
        5e-2,
    );
}

#[test]
fn whole_discriminator_gradients_match_finite_differences() {
    check_discriminator(false);
}

/// With the projection term (class-conditional): its embedding's gradient and its share of the
/// input gradient.
#[test]
fn whole_conditional_discriminator_gradients_match_finite_differences() {
    check_discriminator(true);
}

fn check_discriminator(conditional: bool) {
    let batch = 3;
    let s = store(discriminator_specs(conditional), 21);
    let input = t(random(22, batch * PIXELS, -1.0, 1.0), &[batch, PIXELS]);
    let labels = t(vec![7.0, 0.0, 7.0], &[batch]);
    let labels = conditional.then_some(&labels);
    let d = Discriminator::new(&mut Cpu::default(), &s, batch, &input, conditional).unwrap();
    let w = random(23, batch, -1.0, 1.0);
    let mode = BnMode::Train {
        update_running: false,
    };
    let mut loss = || {
        d.forward(&mut Cpu::default(), mode, labels).unwrap();
        weighted(&d.logits, &w)
    };
    loss();
    ops::fill(&s.grads, 0.0).unwrap();
    let dinput = Tensor::zeros(&[batch, PIXELS]);
    d.backward(
        &mut Cpu::default(),
        &t(w.clone(), &[batch, 1]),
        Backprop::Both(&dinput),
        labels,
    )
    .unwrap();
    // LeakyReLU's kinks: a step of eps flips a few of the 3 * 196 * 32 first-layer units, which
    // bends the finite difference by a few percent; a wrong backward is off by far more.
    check_params("discriminator", &s, &D_ZERO_GRADIENT, 3e-4, 5e-2, &mut loss);
    let idx = sample_indices(batch * PIXELS, 40);
    assert_grad(
        "discriminator input",
        &pick(&dinput.to_vec(), &idx),
        &numeric(&input, &idx, 1e-3, &mut loss),
        2e-2,
    );
}

#[test]
fn projection_gradients_match_finite_differences() {
    let (rows, f) = (6, 9);
    let x = t(random(1, rows * f, -1.0, 1.0), &[rows, f]);
    let e = t(random(2, 10 * f, -1.0, 1.0), &[10, f]);
    let y = t((0..rows).map(|b| ((b * 3) % 10) as f32).collect(), &[rows]);
    let w = random(3, rows, -1.0, 1.0);
    let loss = || {
        let out = t(vec![0.0; rows], &[rows, 1]);
        ops::projection(&x, &e, &y, &out).unwrap();
        weighted(&out, &w)
    };
    let dlogits = t(w.clone(), &[rows, 1]);
    let dx = t(vec![0.0; rows * f], &[rows, f]);
    ops::projection_backward_input(&dlogits, &e, &y, &dx).unwrap();
    let de = t(vec![0.0; 10 * f], &[10, f]);
    ops::projection_backward_params(&dlogits, &x, &y, &de).unwrap();
    let ix = sample_indices(rows * f, 40);
    assert_grad(
        "projection dx",
        &pick(&dx.to_vec(), &ix),
        &numeric(&x, &ix, 1e-2, loss),
        1e-3,
    );
    let ie = sample_indices(10 * f, 90);
    assert_grad(
        "projection dembed",
        &pick(&de.to_vec(), &ie),
        &numeric(&e, &ie, 1e-2, loss),
        1e-3,
    );
}
