//! Every GPU kernel against its CPU reference on seeded random inputs, at shapes that include 1,
//! primes and sizes that are not multiples of the tile. GPU outputs start as NaN.

mod common;

use common::*;
use wgsl_gan::gpu::plan::MatmulShape;
use wgsl_gan::gpu::plan::{self, MatmulKernel};
use wgsl_gan::gpu::tune;
use wgsl_gan::gpu::{Gpu, KernelStyle, Tensor, Words, ops};
use wgsl_gan::spec::{Activation, AdamSpec, ConvGeom, MatmulSpec, ParamGrads, Saved};
use wgsl_gan::{cpu, rng};

// Every activation, from the one table in src/activation.rs.
const ACTIVATIONS: &[Activation] = Activation::ALL;

#[test]
fn matmul_matches_cpu_at_odd_shapes_and_all_transposes() {
    for gpu in each_style() {
        let shapes = [
            (1, 1, 1),
            (7, 13, 5),
            (33, 65, 17),
            (64, 784, 128),
            (130, 257, 67),
            (64, 128, 100),
        ];
        for (si, &(m, n, k)) in shapes.iter().enumerate() {
            for (ti, (ta, tb)) in [(false, false), (true, false), (false, true), (true, true)]
                .into_iter()
                .enumerate()
            {
                let seed = (si * 10 + ti) as u64;
                let a_shape = if ta { [k, m] } else { [m, k] };
                let b_shape = if tb { [n, k] } else { [k, n] };
                let (ga, ca) = random_pair(&gpu, seed, &a_shape);
                let (gb, cb) = random_pair(&gpu, seed + 1000, &b_shape);
                let (gbias, cbias) = random_pair(&gpu, seed + 2000, &[n]);
                let spec = MatmulSpec {
                    trans_a: ta,
                    trans_b: tb,
                    ..MatmulSpec::PLAIN
                };

                let (gc, cc) = nan_pair(&gpu, &[m, n]);
                gpu.run(&[&ops::matmul(&gpu, &ga, &gb, None, &gc, spec).unwrap()])
                    .unwrap();
                cpu::ops::matmul(&ca, &cb, None, &cc, spec).unwrap();
                assert_close(
                    &gpu,
                    &gc,
                    &cc,
                    1e-5,
                    &format!("matmul {m}x{n}x{k} ta={ta} tb={tb}"),
                );

                // Bias + activation epilogue, then accumulate into an existing C.
                let act = ACTIVATIONS[(si + ti) % ACTIVATIONS.len()];
                let spec_act = MatmulSpec {
                    activation: act,
                    ..spec
                };
                let (gc, cc) = nan_pair(&gpu, &[m, n]);
                gpu.run(&[&ops::matmul(&gpu, &ga, &gb, Some(&gbias), &gc, spec_act).unwrap()])
                    .unwrap();
                cpu::ops::matmul(&ca, &cb, Some(&cbias), &cc, spec_act).unwrap();
                assert_close(
                    &gpu,
                    &gc,
                    &cc,
                    1e-5,
                    &format!("matmul+bias+{act:?} {m}x{n}x{k}"),
                );

                let (gc, cc) = random_pair(&gpu, seed + 3000, &[m, n]);
                let spec_acc = MatmulSpec {
                    accumulate: true,
                    ..spec
                };
                gpu.run(&[&ops::matmul(&gpu, &ga, &gb, Some(&gbias), &gc, spec_acc).unwrap()])
                    .unwrap();
                cpu::ops::matmul(&ca, &cb, Some(&cbias), &cc, spec_acc).unwrap();
                assert_close(
                    &gpu,
                    &gc,
                    &cc,
                    1e-5,
                    &format!("matmul accumulate {m}x{n}x{k}"),
                );
            }
        }
    }
}

/// Every matmul kernel this adapter can run.
fn kernels(gpu: &Gpu) -> Vec<MatmulKernel> {
    let mut all = Vec::new();
    for tile_m in [32, 64, 128] {
        for tile_n in [32, 64, 128] {
            all.push(MatmulKernel::Tiled { tile_m, tile_n });
        }
    }
    if gpu.subgroups_of_8() {
        all.push(MatmulKernel::Lanes);
        all.push(MatmulKernel::LanesPacked);
    }
    all
}

/// A tuned plan is what `ops::matmul` runs (and matches the CPU); a product the table does not
/// list, or a plan that does not fit, falls back to the built-in table.
#[test]
fn tuned_plans_are_used_where_they_fit() {
    let gpu = gpu();
    let spec = MatmulSpec {
        trans_a: true,
        ..MatmulSpec::PLAIN
    };
    let (m, n, k) = (37, 45, 700);
    let shape = MatmulShape::new(m, n, k, spec);
    let tuned = tune::tune_shape(&gpu, shape).unwrap();
    assert_eq!(tuned.builtin.0, plan::MatmulPlan::choose(&gpu, m, n, k));
    assert!(plan::plan_fits(&gpu, tuned.best.0, m, n, k));
    assert!(
        tuned.best.1 > 0.0 && tuned.best.1 <= tuned.builtin.1,
        "{}",
        shape
    );

    // A plan the built-in table never picks for this product, so that its use shows.
    let forced = plan::MatmulPlan::new(
        MatmulKernel::Tiled {
            tile_m: 32,
            tile_n: 128,
        },
        k,
        3,
    );
    let other = MatmulShape::new(m, n, k, MatmulSpec::PLAIN);
    let mut table = tune::PlanTable::default();
    table.plans.insert(shape, forced);
    let mut misfit = plan::MatmulPlan::new(MatmulKernel::Lanes, k, 1);
    misfit.k_chunk = 17;
    table.plans.insert(other, misfit);
    gpu.set_tuned_plans(Some(table));
    assert_eq!(gpu.matmul_plan(shape), forced);
    assert_eq!(
        gpu.matmul_plan(other),
        plan::MatmulPlan::choose(&gpu, m, n, k)
    );
    let untuned = MatmulShape::new(m + 1, n, k, spec);
    assert_eq!(
        gpu.matmul_plan(untuned),
        plan::MatmulPlan::choose(&gpu, m + 1, n, k)
    );

    let (ga, ca) = random_pair(&gpu, 71, &[k, m]);
    let (gb, cb) = random_pair(&gpu, 72, &[k, n]);
    let (gc, cc) = nan_pair(&gpu, &[m, n]);
    gpu.run(&[&ops::matmul(&gpu, &ga, &gb, None, &gc, spec).unwrap()])
        .unwrap();
    cpu::ops::matmul(&ca, &cb, None, &cc, spec).unwrap();
    assert_close(&gpu, &gc, &cc, 1e-5, "matmul with a tuned plan");
    assert!(gpu.matmul_shapes().contains(&shape));
}

#[test]
fn matmul_plans_all_agree_with_cpu() {
    let gpu = gpu();
    // Every tile shape, with and without split-K (whose chunk need not divide K).
    for (si, &(m, n, k)) in [
        (7usize, 13usize, 5usize),
        (33, 65, 17),
        (70, 40, 1000),
        (1, 9, 1300),
        // Several 128x128 tiles with ragged edges on both sides.
        (300, 270, 130),
    ]
    .iter()
    .enumerate()
    {
        for kernel in kernels(&gpu) {
            for splits in [1usize, 3] {
                let plan = plan::MatmulPlan::new(kernel, k, splits);
                let seed = 500 + si as u64;
                let (ga, ca) = random_pair(&gpu, seed, &[k, m]);
                let (gb, cb) = random_pair(&gpu, seed + 1, &[k, n]);
                let (gbias, cbias) = random_pair(&gpu, seed + 2, &[n]);
                let (gc, cc) = random_pair(&gpu, seed + 3, &[m, n]);
                let spec = MatmulSpec {
                    trans_a: true,
                    accumulate: true,
                    ..MatmulSpec::PLAIN
                };
                gpu.run(&[
                    &ops::matmul_planned(&gpu, &ga, &gb, Some(&gbias), &gc, spec, plan).unwrap(),
                ])
                .unwrap();
                cpu::ops::matmul(&ca, &cb, Some(&cbias), &cc, spec).unwrap();
                assert_close(
                    &gpu,
                    &gc,
                    &cc,
                    1e-5,
                    &format!("matmul {m}x{n}x{k} {plan:?}"),
                );
                let spec = MatmulSpec {
                    trans_b: true,
                    activation: Activation::Tanh,
                    ..MatmulSpec::PLAIN
                };
                let (gb, cb) = random_pair(&gpu, seed + 4, &[n, k]);
                let (ga, ca) = random_pair(&gpu, seed + 5, &[m, k]);
                let (gc, cc) = nan_pair(&gpu, &[m, n]);
                gpu.run(&[
                    &ops::matmul_planned(&gpu, &ga, &gb, Some(&gbias), &gc, spec, plan).unwrap(),
                ])
                .unwrap();
                cpu::ops::matmul(&ca, &cb, Some(&cbias), &cc, spec).unwrap();
                assert_close(
                    &gpu,
                    &gc,
                    &cc,
                    1e-5,
                    &format!("matmul+tanh {m}x{n}x{k} {plan:?}"),
                );
            }
        }
    }
}

#[test]
fn matmul_rejects_mismatched_shapes() {
    let gpu = gpu();
    let (a, _) = random_pair(&gpu, 1, &[3, 4]);
    let (b, _) = random_pair(&gpu, 2, &[5, 6]);
    let (c, _) = random_pair(&gpu, 3, &[3, 6]);
    let err = ops::matmul(&gpu, &a, &b, None, &c, MatmulSpec::PLAIN)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("shape mismatch"), "{err}");
}

#[test]
fn a_matmul_grid_past_the_adapter_limit_names_the_limit() {
    let gpu = gpu();
    let max = gpu.limits.max_compute_workgroups_per_dimension as usize;
    // One row, more tiles than one grid dimension holds for every plan's tile width (up to 128
    // columns: a GPU picks 64x64 tiles here, lavapipe 32-column lanes).
    let n = (max + 1) * 128;
    let (a, _) = random_pair(&gpu, 1, &[1, 1]);
    let (b, _) = random_pair(&gpu, 2, &[1, n]);
    let (c, _) = random_pair(&gpu, 3, &[1, n]);
    let err = ops::matmul(&gpu, &a, &b, None, &c, MatmulSpec::PLAIN)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("max_compute_workgroups_per_dimension") && err.contains(&max.to_string()),
        "{err}"
    );
}

fn geoms() -> Vec<ConvGeom> {
    let g = |batch, height, width, channels, kernel, stride, padding| {
        ConvGeom::new([batch, height, width, channels], kernel, stride, padding)
    };
    vec![
        g(1, 1, 1, 1, 1, 1, 0),
        g(2, 7, 5, 3, 3, 1, 0),
        g(2, 7, 5, 3, 3, 1, 1),
        g(3, 28, 28, 1, 3, 2, 1),
        g(2, 14, 14, 32, 3, 2, 1),
        g(1, 13, 11, 5, 3, 2, 0),
        g(2, 7, 7, 64, 3, 2, 1),
        g(1, 9, 9, 2, 4, 2, 1),
        // Channels in fours (the packed path's (tap, channel) order), rows off the texel.
        g(1, 5, 7, 8, 3, 1, 1),
        g(2, 7, 7, 8, 4, 2, 1),
        // Single-channel inputs (the first layer's case): the article's, with 8 outputs in the
        // convolution test, and one with padding, stride 3 and K = 5.
        g(3, 28, 28, 1, 3, 2, 0),
        g(1, 6, 6, 4, 2, 2, 0),
        g(2, 5, 5, 1, 3, 1, 1),
        g(2, 10, 9, 1, 5, 3, 2),
    ]
}

#[test]
fn im2col_and_col2im_match_cpu() {
    let gpu = gpu();
    for (i, geom) in geoms().into_iter().enumerate() {
        let (gx, cx) = random_pair(&gpu, i as u64, &geom.input_shape());
        let (gcols, ccols) = nan_pair(&gpu, &geom.cols_shape());
        gpu.run(&[&ops::im2col(&gpu, &gx, &gcols, geom).unwrap()])
            .unwrap();
        cpu::ops::im2col(&cx, &ccols, geom).unwrap();
        assert_close(&gpu, &gcols, &ccols, 1e-6, &format!("im2col {geom:?}"));

        let (gd, cd) = random_pair(&gpu, 100 + i as u64, &geom.cols_shape());
        // Plain, and through a LeakyReLU whose output was y (the fused backward).
        let (gy, cy) = random_pair(&gpu, 200 + i as u64, &geom.input_shape());
        for act in [None, Some(Activation::LeakyRelu(0.2))] {
            let (gdx, cdx) = nan_pair(&gpu, &geom.input_shape());
            gpu.run(&[&ops::col2im(&gpu, &gd, &gdx, geom, act.map(|a| (&gy, a))).unwrap()])
                .unwrap();
            cpu::ops::col2im(&cd, &cdx, geom, act.map(|a| (&cy, a))).unwrap();
            assert_close(
                &gpu,
                &gdx,
                &cdx,
                1e-5,
                &format!("col2im {geom:?} through {act:?}"),
            );
        }
    }
}

/// The convolution ops against im2col + matmul (+ col2im) on the CPU, under every plan family
/// their products can take: each layout path (packed im2col, texture dcols, buffers, split-K).
#[test]
fn convolutions_match_cpu_under_every_plan() {
    for gpu in each_style() {
        let mut plans = vec![
            None,
            Some(MatmulKernel::Tiled {
                tile_m: 32,
                tile_n: 64,
            }),
        ];
        if gpu.subgroups_of_8() {
            plans.extend([Some(MatmulKernel::Lanes), Some(MatmulKernel::LanesPacked)]);
        }
        for (i, geom) in geoms().into_iter().enumerate() {
            let [rows, depth] = geom.cols_shape();
            let out = [5, 1, 8][i % 3];
            let seed = 300 + 10 * i as u64;
            let (gx, cx) = random_pair(&gpu, seed, &geom.input_shape());
            let (gw, cw) = random_pair(&gpu, seed + 1, &[out, depth]);
            let (gb, cb) = random_pair(&gpu, seed + 2, &[out]);
            let (gdy, cdy) = random_pair(&gpu, seed + 3, &[rows, out]);
            let (gyx, cyx) = random_pair(&gpu, seed + 4, &geom.input_shape());
            for &kernel in &plans {
                // Split-K where K is long enough to split, so the workspace path runs too.
                match kernel {
                    Some(kernel) => {
                        force_conv_plans(&gpu, geom, out, kernel, |k| if k >= 64 { 3 } else { 1 })
                    }
                    None => gpu.set_tuned_plans(Some(tune::PlanTable::default())),
                }
                let what = format!("{geom:?}, {out} out, {kernel:?}");

                let act = Activation::LeakyRelu(0.2);
                let (gy, cy) = nan_pair(&gpu, &[rows, out]);
                let d = ops::conv2d(&gpu, &gx, &gw, &gb, &gy, geom, act).unwrap();
                gpu.run(&[&d]).unwrap();
                cpu::ops::conv2d(&cx, &cw, &cb, &cy, geom, act).unwrap();
                assert_close(&gpu, &gy, &cy, 1e-5, &format!("conv2d {what}"));

                // The weight gradient accumulates.
                let (gdw, cdw) = random_pair(&gpu, seed + 5, &[out, depth]);
                let d = ops::conv2d_weight_grad(&gpu, &gdy, &gx, &gdw, geom).unwrap();
                gpu.run(&[&d]).unwrap();
                cpu::ops::conv2d_weight_grad(&cdy, &cx, &cdw, geom).unwrap();
                assert_close(&gpu, &gdw, &cdw, 1e-5, &format!("weight grad {what}"));

                for through in [None, Some(act)] {
                    let (gdx, cdx) = nan_pair(&gpu, &geom.input_shape());
                    let g_through = through.map(|a| (&gyx, a));
                    let d = ops::conv2d_input_grad(&gpu, &gdy, &gw, &gdx, geom, g_through);
                    gpu.run(&[&d.unwrap()]).unwrap();
                    let c_through = through.map(|a| (&cyx, a));
                    cpu::ops::conv2d_input_grad(&cdy, &cw, &cdx, geom, c_through).unwrap();
                    let what = format!("input grad {what} through {through:?}");
                    assert_close(&gpu, &gdx, &cdx, 1e-5, &what);
                }
            }
            gpu.set_tuned_plans(None);
        }
    }
}

/// Tunes the three products of a convolution with `out` output channels (forward, weight
/// gradient, input gradient) to `kernel` split `splits(K)` ways, where that plan fits.
fn force_conv_plans(
    gpu: &Gpu,
    geom: ConvGeom,
    out: usize,
    kernel: MatmulKernel,
    splits: impl Fn(usize) -> usize,
) {
    let [rows, depth] = geom.cols_shape();
    let fwd = MatmulSpec {
        trans_b: true,
        ..MatmulSpec::PLAIN
    };
    let wgrad = MatmulSpec {
        trans_a: true,
        ..MatmulSpec::PLAIN
    };
    let mut table = tune::PlanTable::default();
    table.plans.extend(
        [
            (rows, out, depth, fwd),
            (out, depth, rows, wgrad),
            (rows, depth, out, MatmulSpec::PLAIN),
        ]
        .into_iter()
        .map(|(m, n, k, spec)| {
            let plan = plan::MatmulPlan::new(kernel, k, splits(k));
            (MatmulShape::new(m, n, k, spec), plan)
        })
        .filter(|(s, p)| plan::plan_fits(gpu, *p, s.m, s.n, s.k)),
    );
    gpu.set_tuned_plans(Some(table));
}

/// A convolution with a small weight (C*K*K <= 16, output channels in fours) runs the direct
/// kernels on CPU-style adapters, the products elsewhere; both against the CPU reference, at
/// row counts that are not multiples of the workgroup, with padding, strides, several channels.
#[test]
fn small_convolutions_run_direct_kernels_and_match_cpu() {
    let g = |batch, height, width, channels, kernel, stride, padding| {
        ConvGeom::new([batch, height, width, channels], kernel, stride, padding)
    };
    let cases = [
        (g(3, 28, 28, 1, 3, 2, 0), 32),
        (g(2, 5, 5, 1, 3, 1, 1), 4),
        (g(1, 9, 7, 4, 2, 2, 0), 8),
        (g(2, 10, 9, 1, 4, 3, 2), 12),
        (g(1, 6, 6, 1, 3, 2, 0), 5),
    ];
    for gpu in each_style() {
        for (i, &(geom, out)) in cases.iter().enumerate() {
            let [rows, depth] = geom.cols_shape();
            let direct = gpu.style == KernelStyle::Cpu && out % 4 == 0;
            let seed = 900 + 10 * i as u64;
            let (gx, cx) = random_pair(&gpu, seed, &geom.input_shape());
            let (gw, cw) = random_pair(&gpu, seed + 1, &[out, depth]);
            let (gb, cb) = random_pair(&gpu, seed + 2, &[out]);
            let (gdy, cdy) = random_pair(&gpu, seed + 3, &[rows, out]);
            let (gyx, cyx) = random_pair(&gpu, seed + 4, &geom.input_shape());
            let what = format!("{:?}, {geom:?}, {out} out", gpu.style);
            for act in [
                Activation::Identity,
                Activation::LeakyRelu(0.2),
                Activation::Tanh,
            ] {
                let (gy, cy) = nan_pair(&gpu, &[rows, out]);
                let d = ops::conv2d(&gpu, &gx, &gw, &gb, &gy, geom, act).unwrap();
                let entries: Vec<&str> = d.parts().iter().map(|p| p.0).collect();
                assert_eq!(
                    entries.contains(&"conv_small"),
                    direct,
                    "{what}: {entries:?}"
                );
                gpu.run(&[&d]).unwrap();
                cpu::ops::conv2d(&cx, &cw, &cb, &cy, geom, act).unwrap();
                assert_close(&gpu, &gy, &cy, 1e-5, &format!("conv2d {what} {act:?}"));
            }
            for through in [None, Some(Activation::LeakyRelu(0.2))] {
                let (gdx, cdx) = nan_pair(&gpu, &geom.input_shape());
                let g_through = through.map(|a| (&gyx, a));
                let d = ops::conv2d_input_grad(&gpu, &gdy, &gw, &gdx, geom, g_through).unwrap();
                let entries: Vec<&str> = d.parts().iter().map(|p| p.0).collect();
                assert_eq!(
                    entries.contains(&"dcols_small"),
                    direct,
                    "{what}: {entries:?}"
                );
                gpu.run(&[&d]).unwrap();
                let c_through = through.map(|a| (&cyx, a));
                cpu::ops::conv2d_input_grad(&cdy, &cw, &cdx, geom, c_through).unwrap();
                assert_close(&gpu, &gdx, &cdx, 1e-5, &format!("input grad {what}"));
            }
        }
    }
}

#[test]
fn batch_norm_matches_cpu_for_dense_and_spatial_inputs() {
    for gpu in each_style() {
        let shapes: [&[usize]; 7] = [
            &[1, 1],
            &[7, 3],
            &[64, 128],
            // Channels in fours (the CPU style's vec4 kernels), 9 groups: a partial workgroup.
            &[13, 36],
            &[300, 5],
            &[2, 5, 5, 3],
            &[64, 7, 7, 64],
        ];
        for (i, shape) in shapes.into_iter().enumerate() {
            let seed = 50 * i as u64;
            let c = *shape.last().unwrap();
            let x: Vec<f32> = random(seed, shape.iter().product(), -2.0, 3.0);
            let (gx, cx) = pair(&gpu, &x, shape);
            let (ggamma, cgamma) = random_pair(&gpu, seed + 1, &[c]);
            let (gbeta, cbeta) = random_pair(&gpu, seed + 2, &[c]);
            let (grm, crm) = random_pair(&gpu, seed + 3, &[c]);
            let (grv, crv) = pair(&gpu, &random(seed + 4, c, 0.5, 2.0), &[c]);
            let (gmean, cmean) = nan_pair(&gpu, &[c]);
            let (ginv, cinv) = nan_pair(&gpu, &[c]);
            let (gy, cy) = nan_pair(&gpu, shape);
            let act = ACTIVATIONS[i % ACTIVATIONS.len()];
            gpu.run(&[
                &ops::batch_norm_stats(&gpu, &gx, &gmean, &ginv, &grm, &grv, 0.8, 1e-3, true)
                    .unwrap(),
                &ops::batch_norm_apply(&gpu, &gx, &gmean, &ginv, &ggamma, &gbeta, &gy, act)
                    .unwrap(),
            ])
            .unwrap();
            cpu::ops::batch_norm_stats(&cx, &cmean, &cinv, &crm, &crv, 0.8, 1e-3, true).unwrap();
            cpu::ops::batch_norm_apply(&cx, &cmean, &cinv, &cgamma, &cbeta, &cy, act).unwrap();
            let what = format!("batch norm {shape:?}");
            assert_close(&gpu, &gmean, &cmean, 1e-5, &format!("{what} mean"));
            assert_close(&gpu, &ginv, &cinv, 1e-5, &format!("{what} invstd"));
            assert_close(&gpu, &grm, &crm, 1e-5, &format!("{what} running mean"));
            assert_close(&gpu, &grv, &crv, 1e-5, &format!("{what} running var"));
            assert_close(&gpu, &gy, &cy, 1e-5, &format!("{what} y"));

            // Every gradient mode, and the fused activations on either side: after (dy w.r.t.
            // act(BN(x)) with output y) and before (x an activation's output).
            let leaky = Activation::LeakyRelu(0.2);
            let fusions = [
                (ParamGrads::Write, false, Activation::Identity),
                (ParamGrads::Accumulate, true, Activation::Identity),
                (ParamGrads::Skip, false, leaky),
                (ParamGrads::Accumulate, true, leaky),
            ];
            for (grads, after, before) in fusions {
                let (gdy, cdy) = random_pair(&gpu, seed + 5, shape);
                let (gdx, cdx) = nan_pair(&gpu, shape);
                let (gdg, cdg) = random_pair(&gpu, seed + 6, &[c]);
                let (gdb, cdb) = random_pair(&gpu, seed + 7, &[c]);
                let (gya, cya) = random_pair(&gpu, seed + 8, shape);
                let g_after = after.then_some((&gya, leaky));
                let c_after = after.then_some((&cya, leaky));
                gpu.run(&[&ops::batch_norm_backward(
                    &gpu, &gx, &gmean, &ginv, &ggamma, &gdy, &gdx, &gdg, &gdb, grads, g_after,
                    before,
                )
                .unwrap()])
                    .unwrap();
                cpu::ops::batch_norm_backward(
                    &cx, &cmean, &cinv, &cgamma, &cdy, &cdx, &cdg, &cdb, grads, c_after, before,
                )
                .unwrap();
                let how = format!("{grads:?} after={after} before={before:?}");
                assert_close(&gpu, &gdx, &cdx, 1e-4, &format!("{what} dx {how}"));
                assert_close(&gpu, &gdg, &cdg, 1e-4, &format!("{what} dgamma {how}"));
                assert_close(&gpu, &gdb, &cdb, 1e-5, &format!("{what} dbeta {how}"));
            }

            let (gmean, cmean) = nan_pair(&gpu, &[c]);
            let (ginv, cinv) = nan_pair(&gpu, &[c]);
            gpu.run(&[
                &ops::batch_norm_use_running(&gpu, &grm, &grv, &gmean, &ginv, 1e-3).unwrap(),
            ])
            .unwrap();
            cpu::ops::batch_norm_use_running(&crm, &crv, &cmean, &cinv, 1e-3).unwrap();
            assert_close(
                &gpu,
                &gmean,
                &cmean,
                1e-6,
                &format!("{what} inference mean"),
            );
            assert_close(
                &gpu,
                &ginv,
                &cinv,
                1e-6,
                &format!("{what} inference invstd"),
            );
        }
    }
}

#[test]
fn activations_match_cpu_forward_and_backward() {
    let gpu = gpu();
    for (i, n) in [1usize, 7, 1000, 65_537].into_iter().enumerate() {
        for &act in ACTIVATIONS {
            let x = random(i as u64, n, -4.0, 4.0);
            let (gx, cx) = pair(&gpu, &x, &[n]);
            let (gy, cy) = nan_pair(&gpu, &[n]);
            let (gdy, cdy) = random_pair(&gpu, 7 + i as u64, &[n]);
            let (gdx, cdx) = nan_pair(&gpu, &[n]);
            gpu.run(&[&ops::activation_forward(&gpu, &gx, &gy, act).unwrap()])
                .unwrap();
            cpu::ops::activation_forward(&cx, &cy, act).unwrap();
            assert_close(&gpu, &gy, &cy, 1e-5, &format!("{act:?} forward n={n}"));
            // The backward reads what the activation saves; for y, give both sides the same y
            // (1 - y^2 magnifies tanh's last ulp).
            gy.write(&gpu, &cy.to_vec()).unwrap();
            let (gs, cs) = match act.saves() {
                Saved::Output => (&gy, &cy),
                Saved::Input => (&gx, &cx),
            };
            gpu.run(&[&ops::activation_backward(&gpu, gs, &gdy, &gdx, act).unwrap()])
                .unwrap();
            cpu::ops::activation_backward(cs, &cdy, &cdx, act).unwrap();
            assert_close(&gpu, &gdx, &cdx, 1e-5, &format!("{act:?} backward n={n}"));
        }
    }
}

#[test]
fn bce_with_logits_matches_cpu_and_stays_finite_at_extreme_logits() {
    let gpu = gpu();
    for (i, n) in [1usize, 7, 64, 1000, 4097].into_iter().enumerate() {
        let mut x = random(i as u64, n, -8.0, 8.0);
        x[0] = 100.0;
        if n > 1 {
            x[1] = -100.0;
        }
        for target in [0.0, 1.0, 0.3] {
            let (gx, cx) = pair(&gpu, &x, &[n, 1]);
            let (gg, cg) = nan_pair(&gpu, &[n, 1]);
            let (gs, cs) = pair(&gpu, &[f32::NAN; 6], &[6]);
            cs.write(&[0.0; 6]).unwrap();
            gpu.run(&[&ops::bce_with_logits(&gpu, &gx, &gg, &gs, 2, target, 0.5).unwrap()])
                .unwrap();
            cpu::ops::bce_with_logits(&cx, &cg, &cs, 2, target, 0.5).unwrap();
            assert_close(&gpu, &gg, &cg, 1e-5, &format!("bce grad n={n} t={target}"));
            let stats = gs.read(&gpu).unwrap();
            let want = cs.to_vec();
            for s in 2..4 {
                assert!(stats[s].is_finite(), "bce stat {s} not finite: {stats:?}");
                assert!(
                    (stats[s] - want[s]).abs() <= 1e-5 * want[s].abs().max(1.0),
                    "bce stat {s}: {stats:?} vs {want:?}"
                );
            }
        }
    }
}

#[test]
fn reductions_match_cpu() {
    for gpu in each_style() {
        for (i, (rows, cols)) in [
            (1, 1),
            (7, 13),
            (300, 5),
            (5, 300),
            (1000, 3),
            (12544, 32),
            (9, 44),
        ]
        .into_iter()
        .enumerate()
        {
            let (gx, cx) = random_pair(&gpu, i as u64, &[rows, cols]);
            for accumulate in [false, true] {
                let (gr, cr) = random_pair(&gpu, 10 + i as u64, &[cols]);
                let (gc, cc) = random_pair(&gpu, 20 + i as u64, &[rows]);
                if !accumulate {
                    ops::fill(&gpu, &gr, f32::NAN)
                        .and_then(|d| gpu.run(&[&d]))
                        .unwrap();
                    ops::fill(&gpu, &gc, f32::NAN)
                        .and_then(|d| gpu.run(&[&d]))
                        .unwrap();
                }
                gpu.run(&[
                    &ops::sum_over_rows(&gpu, &gx, &gr, accumulate).unwrap(),
                    &ops::sum_over_cols(&gpu, &gx, &gc, accumulate).unwrap(),
                ])
                .unwrap();
                cpu::ops::sum_over_rows(&cx, &cr, accumulate).unwrap();
                cpu::ops::sum_over_cols(&cx, &cc, accumulate).unwrap();
                assert_close(
                    &gpu,
                    &gr,
                    &cr,
                    1e-5,
                    &format!("sum over rows {rows}x{cols} acc={accumulate}"),
                );
                assert_close(
                    &gpu,
                    &gc,
                    &cc,
                    1e-5,
                    &format!("sum over cols {rows}x{cols} acc={accumulate}"),
                );
            }
            let (gm, cm) = nan_pair(&gpu, &[1]);
            gpu.run(&[&ops::mean_all(&gpu, &gx, &gm).unwrap()]).unwrap();
            cpu::ops::mean_all(&cx, &cm).unwrap();
            assert_close(&gpu, &gm, &cm, 1e-5, &format!("mean {rows}x{cols}"));
        }
    }
}

#[test]
fn hinge_matches_cpu_for_every_term() {
    let gpu = gpu();
    for (i, n) in [1usize, 7, 64, 1000, 4097].into_iter().enumerate() {
        let mut x = random(40 + i as u64, n, -3.0, 3.0);
        // Exactly at the margin: the kernel and the reference take the same side of the kink.
        x[0] = 1.0;
        for (sign, margin) in [(1.0, true), (-1.0, true), (1.0, false), (-1.0, false)] {
            let (gx, cx) = pair(&gpu, &x, &[n, 1]);
            let (gg, cg) = nan_pair(&gpu, &[n, 1]);
            let (gs, cs) = pair(&gpu, &[f32::NAN; 6], &[6]);
            cs.write(&[0.0; 6]).unwrap();
            let what = format!("hinge n={n} sign={sign} margin={margin}");
            let d = ops::hinge(&gpu, &gx, &gg, &gs, 2, sign, margin, 0.5).unwrap();
            gpu.run(&[&d]).unwrap();
            cpu::ops::hinge(&cx, &cg, &cs, 2, sign, margin, 0.5).unwrap();
            assert_close(&gpu, &gg, &cg, 1e-6, &what);
            let (stats, want) = (gs.read(&gpu).unwrap(), cs.to_vec());
            for s in 2..4 {
                assert!(
                    (stats[s] - want[s]).abs() <= 1e-5 * want[s].abs().max(1.0),
                    "{what} stat {s}: {stats:?} vs {want:?}"
                );
            }
        }
    }
    let (gx, _) = pair(&gpu, &[0.0; 4], &[4, 1]);
    let (gs, _) = pair(&gpu, &[0.0; 2], &[2]);
    let err = ops::hinge(&gpu, &gx, &gx, &gs, 0, 0.5, true, 1.0)
        .err()
        .expect("a sign of 0.5 is refused");
    assert!(err.to_string().contains("sign"), "{err}");
}

#[test]
fn ema_matches_cpu_over_parameters_and_state() {
    let gpu = gpu();
    for (i, (n, ns)) in [(1usize, 1usize), (7, 3), (1000, 257), (95_105, 640)]
        .into_iter()
        .enumerate()
    {
        let seed = 60 + 4 * i as u64;
        let (gap, cap) = random_pair(&gpu, seed, &[n]);
        let (gp, cp) = random_pair(&gpu, seed + 1, &[n]);
        let (gas, cas) = random_pair(&gpu, seed + 2, &[ns]);
        let (gs, cs) = random_pair(&gpu, seed + 3, &[ns]);
        for decay in [0.999, 0.5] {
            let d = ops::ema(&gpu, &gap, &gp, &gas, &gs, decay).unwrap();
            gpu.run(&[&d]).unwrap();
            cpu::ops::ema(&cap, &cp, &cas, &cs, decay).unwrap();
        }
        assert_close(&gpu, &gap, &cap, 1e-6, &format!("ema params n={n}"));
        assert_close(&gpu, &gas, &cas, 1e-6, &format!("ema state n={ns}"));
        // The averaged values are untouched.
        assert_eq!(gp.read(&gpu).unwrap(), cp.to_vec(), "ema source");
    }
    let (a, _) = random_pair(&gpu, 1, &[4]);
    let (b, _) = random_pair(&gpu, 2, &[5]);
    let err = ops::ema(&gpu, &a, &b, &a, &a, 0.9)
        .err()
        .expect("lengths differ");
    assert!(err.to_string().contains("moving average"), "{err}");
    let err = ops::ema(&gpu, &a, &a, &a, &a, 1.5)
        .err()
        .expect("decay above 1");
    assert!(err.to_string().contains("decay"), "{err}");
}

#[test]
fn adam_matches_cpu_over_several_steps() {
    let gpu = gpu();
    let spec = AdamSpec::GAN;
    for (i, n) in [1usize, 7, 1000, 95_105].into_iter().enumerate() {
        let (gp, cp) = random_pair(&gpu, i as u64, &[n]);
        let (gm, cm) = pair(&gpu, &vec![0.0; n], &[n]);
        let (gv, cv) = pair(&gpu, &vec![0.0; n], &[n]);
        let (gg, cg) = random_pair(&gpu, 9 + i as u64, &[n]);
        let step = ops::adam(&gpu, &gp, &gg, &gm, &gv, spec, 1).unwrap();
        for t in 1..=3u64 {
            step.set_params(&gpu, &ops::adam_params(n, spec, t));
            gpu.run(&[&step]).unwrap();
            cpu::ops::adam(&cp, &cg, &cm, &cv, spec, t).unwrap();
        }
        assert_close(&gpu, &gp, &cp, 1e-6, &format!("adam params n={n}"));
        assert_close(&gpu, &gm, &cm, 1e-6, &format!("adam m n={n}"));
        assert_close(&gpu, &gv, &cv, 1e-6, &format!("adam v n={n}"));
    }
}

#[test]
fn elementwise_kernels_match_cpu() {
    let gpu = gpu();
    for (i, shape) in [&[1usize][..], &[7, 3], &[33, 65], &[1000, 13]]
        .into_iter()
        .enumerate()
    {
        let seed = 100 * i as u64;
        let c = *shape.last().unwrap();
        let (ga, ca) = random_pair(&gpu, seed, shape);
        let (gb, cb) = random_pair(&gpu, seed + 1, shape);
        let (gbias, cbias) = random_pair(&gpu, seed + 2, &[c]);
        let (gf, cf) = nan_pair(&gpu, shape);
        let (gs, cs) = nan_pair(&gpu, shape);
        let (gc, cc) = nan_pair(&gpu, shape);
        let (gsum, csum) = nan_pair(&gpu, shape);
        gpu.run(&[
            &ops::fill(&gpu, &gf, 0.25).unwrap(),
            &ops::scale(&gpu, &ga, &gs, -1.5).unwrap(),
            &ops::copy(&gpu, &ga, &gc).unwrap(),
            &ops::add(&gpu, &ga, &gb, &gsum).unwrap(),
            &ops::add_bias(&gpu, &gb, &gbias).unwrap(),
        ])
        .unwrap();
        cpu::ops::fill(&cf, 0.25).unwrap();
        cpu::ops::scale(&ca, &cs, -1.5).unwrap();
        cpu::ops::copy(&ca, &cc).unwrap();
        cpu::ops::add(&ca, &cb, &csum).unwrap();
        cpu::ops::add_bias(&cb, &cbias).unwrap();
        for (g, c, what) in [
            (&gf, &cf, "fill"),
            (&gs, &cs, "scale"),
            (&gc, &cc, "copy"),
            (&gsum, &csum, "add"),
            (&gb, &cb, "add_bias"),
        ] {
            assert_close(&gpu, g, c, 1e-6, &format!("{what} {shape:?}"));
        }
    }
}

#[test]
fn fill_covers_a_two_dimensional_grid() {
    let gpu = gpu();
    // More than 65535 * 256 elements: the launcher must switch to a 2-D grid.
    let n = 65_535 * 256 + 1000;
    let (g, _) = nan_pair(&gpu, &[n]);
    gpu.run(&[&ops::fill(&gpu, &g, 3.0).unwrap()]).unwrap();
    let v = g.read(&gpu).unwrap();
    assert!(
        v.iter().all(|&x| x == 3.0),
        "some elements were not written"
    );
}

#[test]
fn randn_matches_cpu_and_is_standard_normal() {
    let gpu = gpu();
    let n = 100_000;
    let seed = 0x1234_5678_9abc;
    let mut ks_sum = 0.0;
    for stream in 0..8 {
        let (g, c) = nan_pair(&gpu, &[n]);
        gpu.run(&[&ops::randn(&gpu, &g, seed, stream).unwrap()])
            .unwrap();
        cpu::ops::randn(&c, seed, stream).unwrap();
        assert_close(&gpu, &g, &c, 1e-5, "randn");
        let v = g.read(&gpu).unwrap();
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.015 && (var - 1.0).abs() < 0.02,
            "stream {stream}: mean {mean}, var {var}"
        );
        // Kolmogorov-Smirnov against the normal CDF, scaled by sqrt(n).
        let mut sorted = v.clone();
        sorted.sort_by(f32::total_cmp);
        let cdf = |x: f32| 0.5 * (1.0 + erf(x as f64 / std::f64::consts::SQRT_2));
        let d = sorted
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                (cdf(x) - i as f64 / n as f64)
                    .abs()
                    .max((cdf(x) - (i + 1) as f64 / n as f64).abs())
            })
            .fold(0.0, f64::max)
            * (n as f64).sqrt();
        // 1.95 is the 0.1% critical value of one KS statistic.
        assert!(d < 1.95, "stream {stream}: KS statistic {d}");
        ks_sum += d;
    }
    // Under the null hypothesis the statistic averages about 0.87.
    assert!(ks_sum / 8.0 < 1.2, "mean KS statistic {}", ks_sum / 8.0);
    assert_ne!(
        rng::normal_at(seed, 8, 0),
        rng::normal_at(seed, 9, 0),
        "streams must differ"
    );
}

/// Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), enough for a KS test.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

#[test]
fn gather_batch_matches_cpu() {
    let gpu = gpu();
    let (images, pixels) = (50usize, 784usize);
    let bytes: Vec<u8> = (0..images * pixels).map(|i| (i * 31 % 256) as u8).collect();
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
    let order: Vec<u32> = (0..images as u32).rev().collect();
    let gimages = Words::from_slice(&gpu, &words).unwrap();
    let gorder = Words::from_slice(&gpu, &order).unwrap();
    for (batch, offset) in [(1, 0), (7, 3), (16, 34)] {
        let (g, c) = nan_pair(&gpu, &[batch, pixels]);
        gpu.run(&[&ops::gather_batch(&gpu, &gimages, &gorder, &g, offset).unwrap()])
            .unwrap();
        cpu::ops::gather_batch(&words, &order, &c, offset).unwrap();
        assert_close(&gpu, &g, &c, 1e-7, &format!("gather {batch} at {offset}"));
    }
    let (g, _) = nan_pair(&gpu, &[8, pixels]);
    assert!(
        ops::gather_batch(&gpu, &gimages, &gorder, &g, 45).is_err(),
        "reading past the indices must fail"
    );
}

#[test]
fn softmax_cross_entropy_matches_cpu() {
    let gpu = gpu();
    for (i, (rows, classes)) in [(1usize, 2usize), (7, 10), (64, 10), (300, 3)]
        .into_iter()
        .enumerate()
    {
        let mut logits = random(i as u64, rows * classes, -5.0, 5.0);
        logits[0] = 80.0; // large logits stay finite
        let labels: Vec<f32> = (0..rows).map(|r| ((r * 7 + i) % classes) as f32).collect();
        let (gx, cx) = pair(&gpu, &logits, &[rows, classes]);
        let (gl, cl) = pair(&gpu, &labels, &[rows]);
        let (gg, cg) = nan_pair(&gpu, &[rows, classes]);
        let (gs, cs) = pair(&gpu, &[0.0; 4], &[4]);
        gpu.run(&[&ops::softmax_cross_entropy(&gpu, &gx, &gl, &gg, &gs, 2, 1.0).unwrap()])
            .unwrap();
        cpu::ops::softmax_cross_entropy(&cx, &cl, &cg, &cs, 2, 1.0).unwrap();
        assert_close(
            &gpu,
            &gg,
            &cg,
            1e-5,
            &format!("cross-entropy grad {rows}x{classes}"),
        );
        let (got, want) = (gs.read(&gpu).unwrap(), cs.to_vec());
        assert!(
            (got[2] - want[2]).abs() <= 1e-5 * want[2].abs().max(1.0),
            "loss {got:?} vs {want:?}"
        );
        assert_eq!(got[3], want[3], "accuracy");
    }
}

#[test]
fn gather_labels_matches_cpu() {
    let gpu = gpu();
    let bytes: Vec<u8> = (0..103u32).map(|i| (i * 7 % 10) as u8).chain([0]).collect();
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
    let order: Vec<u32> = (0..103).rev().collect();
    let (gw, go) = (
        Words::from_slice(&gpu, &words).unwrap(),
        Words::from_slice(&gpu, &order).unwrap(),
    );
    for (batch, offset) in [(1, 0), (13, 5), (64, 39)] {
        let (g, c) = nan_pair(&gpu, &[batch]);
        gpu.run(&[&ops::gather_labels(&gpu, &gw, &go, &g, offset).unwrap()])
            .unwrap();
        cpu::ops::gather_labels(&words, &order, &c, offset).unwrap();
        assert_close(
            &gpu,
            &g,
            &c,
            0.0 + 1e-12,
            &format!("labels {batch} at {offset}"),
        );
    }
}

#[test]
fn rand_labels_match_cpu_and_are_uniform_digits() {
    let gpu = gpu();
    let n = 50_000;
    for stream in [0u32, 1, 77] {
        let (g, c) = nan_pair(&gpu, &[n]);
        gpu.run(&[&ops::rand_labels(&gpu, &g, 0xfeed_beef_1234, stream).unwrap()])
            .unwrap();
        cpu::ops::rand_labels(&c, 0xfeed_beef_1234, stream).unwrap();
        assert_close(&gpu, &g, &c, 1e-12, "rand_labels");
        let mut counts = [0usize; 10];
        for v in g.read(&gpu).unwrap() {
            assert!(v.fract() == 0.0 && (0.0..10.0).contains(&v), "label {v}");
            counts[v as usize] += 1;
        }
        // Each digit near n / 10 (5,000, sd 67): within 5%.
        assert!(
            counts.iter().all(|&k| k.abs_diff(n / 10) < n / 200),
            "stream {stream}: {counts:?}"
        );
    }
}

/// Labels 0..classes in a scrambled order, as f32.
fn labels_pair(gpu: &Gpu, rows: usize, seed: u64) -> (wgsl_gan::gpu::Tensor, cpu::Tensor) {
    let labels: Vec<f32> = (0..rows)
        .map(|b| ((b as u64 * 7 + seed) % 10) as f32)
        .collect();
    pair(gpu, &labels, &[rows])
}

#[test]
fn conditioning_kernels_match_cpu() {
    let gpu = gpu();
    for (si, &(rows, cols)) in [(1usize, 1usize), (7, 100), (64, 512), (300, 33)]
        .iter()
        .enumerate()
    {
        let seed = 900 + si as u64 * 10;
        let (gz, cz) = random_pair(&gpu, seed, &[rows, cols]);
        let (gy, cy) = labels_pair(&gpu, rows, seed);
        let (go, co) = nan_pair(&gpu, &[rows, cols + 10]);
        gpu.run(&[&ops::one_hot_concat(&gpu, &gz, &gy, &go).unwrap()])
            .unwrap();
        cpu::ops::one_hot_concat(&cz, &cy, &co).unwrap();
        assert_close(
            &gpu,
            &go,
            &co,
            1e-12,
            &format!("one_hot_concat {rows}x{cols}"),
        );

        let (ge, ce) = random_pair(&gpu, seed + 1, &[10, cols]);
        let (gl, cl) = random_pair(&gpu, seed + 2, &[rows, 1]);
        gpu.run(&[&ops::projection(&gpu, &gz, &ge, &gy, &gl).unwrap()])
            .unwrap();
        cpu::ops::projection(&cz, &ce, &cy, &cl).unwrap();
        assert_close(&gpu, &gl, &cl, 1e-5, &format!("projection {rows}x{cols}"));

        let (gd, cd) = random_pair(&gpu, seed + 3, &[rows, cols]);
        gpu.run(&[&ops::projection_backward_input(&gpu, &gl, &ge, &gy, &gd).unwrap()])
            .unwrap();
        cpu::ops::projection_backward_input(&cl, &ce, &cy, &cd).unwrap();
        assert_close(
            &gpu,
            &gd,
            &cd,
            1e-5,
            &format!("projection dx {rows}x{cols}"),
        );

        let (gde, cde) = random_pair(&gpu, seed + 4, &[10, cols]);
        gpu.run(&[&ops::projection_backward_params(&gpu, &gl, &gz, &gy, &gde).unwrap()])
            .unwrap();
        cpu::ops::projection_backward_params(&cl, &cz, &cy, &cde).unwrap();
        assert_close(
            &gpu,
            &gde,
            &cde,
            1e-5,
            &format!("projection dembed {rows}x{cols}"),
        );
    }
}

/// Activations with texture twins (CPU-style adapters, src/gpu/tensor.rs): every op that reads
/// a twin gives the CPU reference's result, and every op that writes one leaves it equal to its
/// buffer, at odd shapes and through each path: twins written by the kernel itself, and the copy
/// after a kernel that cannot (a tiled or split product).
#[test]
fn texture_twins_match_cpu_and_their_buffers() {
    let mut gpu = gpu();
    gpu.style = KernelStyle::Cpu;
    let gpu = gpu;
    // A twinned tensor holding seeded random values (written by `copy`, which keeps the twin).
    let twinned = |seed: u64, shape: &[usize]| {
        let (g, c) = random_pair(&gpu, seed, shape);
        let t = Tensor::zeros_with_twin(&gpu, shape).unwrap();
        assert!(t.twin().is_some(), "{shape:?} has no twin");
        gpu.run(&[&ops::copy(&gpu, &g, &t).unwrap()]).unwrap();
        (t, c)
    };
    let empty = |shape: &[usize]| {
        let t = Tensor::zeros_with_twin(&gpu, shape).unwrap();
        (t, cpu::Tensor::zeros(shape))
    };
    let same_twin = |t: &Tensor, what: &str| {
        let twin = t.read_twin(&gpu).unwrap().expect("a twin");
        assert!(
            twin == t.read(&gpu).unwrap(),
            "{what}: the texture twin differs from its buffer"
        );
    };
    let leaky = Activation::LeakyRelu(0.2);

    // Batch norm and the bias-gradient sum, their inputs from twins.
    for (i, shape) in [[13usize, 36], [2304, 64], [9, 4]].into_iter().enumerate() {
        let seed = 900 + 20 * i as u64;
        let c = shape[1];
        let (gx, cx) = twinned(seed, &shape);
        same_twin(&gx, "copy");
        let (ggamma, cgamma) = random_pair(&gpu, seed + 1, &[c]);
        let (gbeta, cbeta) = random_pair(&gpu, seed + 2, &[c]);
        let (grm, crm) = random_pair(&gpu, seed + 3, &[c]);
        let (grv, crv) = pair(&gpu, &random(seed + 4, c, 0.5, 2.0), &[c]);
        let (gmean, cmean) = nan_pair(&gpu, &[c]);
        let (ginv, cinv) = nan_pair(&gpu, &[c]);
        let (gy, cy) = empty(&shape);
        gpu.run(&[
            &ops::batch_norm_stats(&gpu, &gx, &gmean, &ginv, &grm, &grv, 0.8, 1e-3, true).unwrap(),
            &ops::batch_norm_apply(&gpu, &gx, &gmean, &ginv, &ggamma, &gbeta, &gy, leaky).unwrap(),
        ])
        .unwrap();
        cpu::ops::batch_norm_stats(&cx, &cmean, &cinv, &crm, &crv, 0.8, 1e-3, true).unwrap();
        cpu::ops::batch_norm_apply(&cx, &cmean, &cinv, &cgamma, &cbeta, &cy, leaky).unwrap();
        let what = format!("twinned batch norm {shape:?}");
        assert_close(&gpu, &ginv, &cinv, 1e-5, &format!("{what} invstd"));
        assert_close(&gpu, &gy, &cy, 1e-5, &format!("{what} y"));
        same_twin(&gy, &format!("{what} y"));

        let (gdy, cdy) = twinned(seed + 5, &shape);
        let (gdx, cdx) = empty(&shape);
        let (gdg, cdg) = random_pair(&gpu, seed + 6, &[c]);
        let (gdb, cdb) = random_pair(&gpu, seed + 7, &[c]);
        let grads = ParamGrads::Accumulate;
        gpu.run(&[&ops::batch_norm_backward(
            &gpu,
            &gx,
            &gmean,
            &ginv,
            &ggamma,
            &gdy,
            &gdx,
            &gdg,
            &gdb,
            grads,
            Some((&gy, leaky)),
            leaky,
        )
        .unwrap()])
            .unwrap();
        cpu::ops::batch_norm_backward(
            &cx,
            &cmean,
            &cinv,
            &cgamma,
            &cdy,
            &cdx,
            &cdg,
            &cdb,
            grads,
            Some((&cy, leaky)),
            leaky,
        )
        .unwrap();
        assert_close(&gpu, &gdx, &cdx, 1e-4, &format!("{what} dx"));
        assert_close(&gpu, &gdg, &cdg, 1e-4, &format!("{what} dgamma"));
        assert_close(&gpu, &gdb, &cdb, 1e-5, &format!("{what} dbeta"));
        same_twin(&gdx, &format!("{what} dx"));

        let (gs, cs) = nan_pair(&gpu, &[c]);
        gpu.run(&[&ops::sum_over_rows(&gpu, &gdy, &gs, false).unwrap()])
            .unwrap();
        cpu::ops::sum_over_rows(&cdy, &cs, false).unwrap();
        assert_close(&gpu, &gs, &cs, 1e-5, &format!("{what} sum over rows"));
    }

    // Convolutions: x, dy and y from twins; y and dx written with their twins.
    let geoms = [
        (ConvGeom::new([2, 7, 7, 8], 3, 2, 1), 12),
        (ConvGeom::new([1, 5, 6, 4], 3, 1, 0), 4),
        // The first layer's direct kernel, its output twinned.
        (ConvGeom::new([2, 9, 9, 1], 3, 2, 0), 8),
    ];
    for (i, (geom, out)) in geoms.into_iter().enumerate() {
        let [rows, depth] = geom.cols_shape();
        let seed = 1000 + 20 * i as u64;
        let input = geom.input_shape();
        let (gx, cx) = match geom.channels % 4 {
            0 => twinned(seed, &input),
            _ => random_pair(&gpu, seed, &input),
        };
        let (gw, cw) = random_pair(&gpu, seed + 1, &[out, depth]);
        let (gb, cb) = random_pair(&gpu, seed + 2, &[out]);
        let (gdy, cdy) = twinned(seed + 3, &[rows, out]);
        let plans = [
            MatmulKernel::LanesPacked,
            MatmulKernel::Lanes,
            MatmulKernel::Tiled {
                tile_m: 32,
                tile_n: 64,
            },
        ];
        for (pi, kernel) in plans.into_iter().enumerate() {
            // The lanes kernel split in two: its twin is copied after the reduction.
            let splits = if pi == 1 && depth >= 16 { 2 } else { 1 };
            force_conv_plans(
                &gpu,
                geom,
                out,
                kernel,
                |k| if k >= 16 { splits } else { 1 },
            );
            let what = format!("twinned {geom:?}, {out} out, {kernel:?}, {splits} splits");

            let (gy, cy) = empty(&[rows, out]);
            gpu.run(&[&ops::conv2d(&gpu, &gx, &gw, &gb, &gy, geom, leaky).unwrap()])
                .unwrap();
            cpu::ops::conv2d(&cx, &cw, &cb, &cy, geom, leaky).unwrap();
            assert_close(&gpu, &gy, &cy, 1e-5, &format!("conv2d {what}"));
            same_twin(&gy, &format!("conv2d {what}"));

            let (gdw, cdw) = random_pair(&gpu, seed + 5, &[out, depth]);
            gpu.run(&[&ops::conv2d_weight_grad(&gpu, &gdy, &gx, &gdw, geom).unwrap()])
                .unwrap();
            cpu::ops::conv2d_weight_grad(&cdy, &cx, &cdw, geom).unwrap();
            assert_close(&gpu, &gdw, &cdw, 1e-5, &format!("weight grad {what}"));

            if geom.channels % 4 == 0 {
                // Through the activation whose output x was (its twin read by col2im).
                let (gdx, cdx) = empty(&input);
                let through = Some((&gx, leaky));
                gpu.run(&[&ops::conv2d_input_grad(&gpu, &gdy, &gw, &gdx, geom, through).unwrap()])
                    .unwrap();
                cpu::ops::conv2d_input_grad(&cdy, &cw, &cdx, geom, Some((&cx, leaky))).unwrap();
                assert_close(&gpu, &gdx, &cdx, 1e-5, &format!("input grad {what}"));
                same_twin(&gdx, &format!("input grad {what}"));
            }
        }
        gpu.set_tuned_plans(None);
    }
}
