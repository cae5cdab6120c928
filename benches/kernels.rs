//! `cargo bench`: kernel throughput at the GAN's shapes and at squares, next to the CPU
//! reference on the same shapes, then where the time of one training step goes.
//! GPU times come from timestamp queries where the adapter has them, else from wall time around
//! submit-and-wait. `cargo bench -- NAME` runs only the rows whose name contains NAME.

use std::time::Instant;

use wgsl_gan::gan::step::StepConfig;
use wgsl_gan::gan::trainer::GpuTrainer;
use wgsl_gan::gpu::plan::{self, MatmulKernel};
use wgsl_gan::gpu::timing::{Clock, time_dispatches};
use wgsl_gan::gpu::{Dispatch, Gpu, Tensor, ops};
use wgsl_gan::rng::SplitMix64;
use wgsl_gan::spec::{Activation, AdamSpec, ConvGeom, MatmulSpec, ParamGrads};
use wgsl_gan::{Result, cpu};

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| r.next_f64() as f32 * 2.0 - 1.0).collect()
}

fn pair(gpu: &Gpu, shape: &[usize], seed: u64) -> Result<(Tensor, cpu::Tensor)> {
    let v = random(shape.iter().product(), seed);
    Ok((
        Tensor::from_slice(gpu, &v, shape)?,
        cpu::Tensor::from_slice(&v, shape)?,
    ))
}

/// Seconds per call of `f`, the median of a few runs (at least `min_runs`, about 0.3 s in all).
fn time_cpu(min_runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_runs || (start.elapsed().as_secs_f64() < 0.3 && times.len() < 50) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

struct Row {
    name: String,
    shape: String,
    gpu_s: f64,
    cpu_s: Option<f64>,
    /// Work per call: FLOPs (compute-bound kernels) or bytes moved (memory-bound ones).
    work: f64,
    unit: &'static str,
}

fn print(rows: &[Row], clock: Clock) {
    println!(
        "\nGPU times from {}",
        if clock == Clock::GpuTimestamps {
            "timestamp queries"
        } else {
            "wall time around submit-and-wait"
        }
    );
    println!("| kernel | shape | GPU ms | GPU rate | CPU ref ms | CPU ref rate |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in rows {
        let rate = |s: f64| format!("{:.2} {}", r.work / s / 1e9, r.unit);
        let (cms, crate_) = match r.cpu_s {
            Some(c) => (format!("{:.3}", c * 1e3), rate(c)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {:.3} | {} | {} | {} |",
            r.name,
            r.shape,
            r.gpu_s * 1e3,
            rate(r.gpu_s),
            cms,
            crate_
        );
    }
}

/// Median seconds per run; repeats sized so that each timed sample takes about 50 ms.
fn gpu_time(gpu: &Gpu, d: &[&Dispatch]) -> Result<(f64, Clock)> {
    let (once, _) = time_dispatches(gpu, d, 1, 1)?;
    let repeats = (0.05 / once.max(1e-6)).clamp(1.0, 20.0) as usize;
    time_dispatches(gpu, d, repeats, 5)
}

/// (label, M, N, K, spec): the GAN's products at batch 64, then squares.
fn cases() -> Vec<(&'static str, usize, usize, usize, MatmulSpec)> {
    let t = |ta, tb| MatmulSpec {
        trans_a: ta,
        trans_b: tb,
        ..MatmulSpec::PLAIN
    };
    vec![
        ("G dense1 x W^T", 64, 128, 100, t(false, true)),
        ("G dense3 x W^T", 64, 784, 128, t(false, true)),
        ("G dense3 dW = dY^T x", 784, 128, 64, t(true, false)),
        // The article's discriminator at batch 64: 28 -> 13 -> 6 -> 2.
        ("D conv1 cols W^T", 10816, 32, 9, t(false, true)),
        ("D conv2 cols W^T", 2304, 64, 288, t(false, true)),
        ("D conv3 cols W^T", 256, 128, 576, t(false, true)),
        ("D conv1 dW = dY^T cols", 32, 9, 10816, t(true, false)),
        ("D conv2 dW = dY^T cols", 64, 288, 2304, t(true, false)),
        ("D conv3 dW = dY^T cols", 128, 576, 256, t(true, false)),
        ("D conv2 dcols = dY W", 2304, 288, 64, t(false, false)),
        ("D conv3 dcols = dY W", 256, 576, 128, t(false, false)),
        ("square 256", 256, 256, 256, t(false, false)),
        ("square 512", 512, 512, 512, t(false, false)),
        ("square 1024", 1024, 1024, 1024, t(false, false)),
        ("square 4096", 4096, 4096, 4096, t(false, false)),
    ]
}

fn matmul_rows(gpu: &Gpu, filter: &str, rows: &mut Vec<Row>, clock: &mut Clock) -> Result<()> {
    let cases = cases();
    for (i, (label, m, n, k, spec)) in cases.into_iter().enumerate() {
        let name = format!("matmul {label}");
        // 4096^3 takes about 10 s a run on a CPU driver: GPUs only.
        if !name.contains(filter) || (m == 4096 && gpu.info.device_type == wgpu::DeviceType::Cpu) {
            continue;
        }
        let a_shape = if spec.trans_a { [k, m] } else { [m, k] };
        let b_shape = if spec.trans_b { [n, k] } else { [k, n] };
        let (ga, ca) = pair(gpu, &a_shape, i as u64)?;
        let (gb, cb) = pair(gpu, &b_shape, 100 + i as u64)?;
        let (gc, cc) = pair(gpu, &[m, n], 200 + i as u64)?;
        let d = ops::matmul(gpu, &ga, &gb, None, &gc, spec)?;
        let (gpu_s, c) = gpu_time(gpu, &[&d])?;
        *clock = c;
        // The f64 CPU reference is slow: skip it past 10^8 multiply-adds.
        let cpu_s = if m * n * k <= 100_000_000 {
            Some(time_cpu(1, || cpu::ops::matmul(&ca, &cb, None, &cc, spec))?)
        } else {
            None
        };
        rows.push(Row {
            name,
            shape: format!("{m}x{n}x{k}"),
            gpu_s,
            cpu_s,
            work: 2.0 * (m * n * k) as f64,
            unit: "GFLOP/s",
        });
    }
    Ok(())
}

/// Every matmul kernel the adapter runs, at each product of `cases` (split-K as chosen): the
/// data behind `MatmulPlan::choose`, printed as its own table (ms per product).
fn plan_table(gpu: &Gpu, filter: &str) -> Result<()> {
    if !"matmul plans".contains(filter) && !filter.is_empty() {
        return Ok(());
    }
    let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    // On a CPU driver the tiled kernels are 3-10x behind; one of them stands for all.
    let tiles: &[usize] = if cpu { &[64] } else { &[32, 64, 128] };
    let mut kernels: Vec<MatmulKernel> = tiles
        .iter()
        .map(|&t| MatmulKernel::Tiled {
            tile_m: t,
            tile_n: t,
        })
        .collect();
    if gpu.subgroups_of_8() {
        kernels.extend([MatmulKernel::Lanes, MatmulKernel::LanesPacked]);
    }
    let name = |k: &MatmulKernel| match k {
        MatmulKernel::Tiled { tile_m, tile_n } => format!("tiled {tile_m}x{tile_n}"),
        MatmulKernel::Lanes => "lanes".to_string(),
        MatmulKernel::LanesPacked => "lanes, packed".to_string(),
    };
    println!("\nmatmul plans: ms per product, chosen plan marked *");
    let header: Vec<String> = kernels.iter().map(name).collect();
    println!("| product | shape | {} |", header.join(" | "));
    println!("|---|---|{}", "---:|".repeat(kernels.len()));
    for (i, (label, m, n, k, spec)) in cases().into_iter().enumerate() {
        // The tiled kernel takes seconds at 1024^3 on a CPU driver; 4096^3 is for GPUs.
        if (cpu && m * n * k >= 1 << 30) || m == 4096 {
            continue;
        }
        let a_shape = if spec.trans_a { [k, m] } else { [m, k] };
        let b_shape = if spec.trans_b { [n, k] } else { [k, n] };
        let (ga, _) = pair(gpu, &a_shape, i as u64)?;
        let (gb, _) = pair(gpu, &b_shape, 100 + i as u64)?;
        let (gc, _) = pair(gpu, &[m, n], 200 + i as u64)?;
        let chosen = plan::MatmulPlan::choose(gpu, m, n, k);
        let mut cells = Vec::new();
        for &kernel in &kernels {
            let plan = plan::MatmulPlan::new(kernel, k, chosen.splits);
            let d = ops::matmul_planned(gpu, &ga, &gb, None, &gc, spec, plan)?;
            let mark = if kernel == chosen.kernel { "*" } else { "" };
            cells.push(format!("{:.3}{mark}", gpu_time(gpu, &[&d])?.0 * 1e3));
        }
        println!("| {label} | {m}x{n}x{k} | {} |", cells.join(" | "));
    }
    Ok(())
}

fn other_rows(gpu: &Gpu, filter: &str, rows: &mut Vec<Row>) -> Result<()> {
    let geom = ConvGeom {
        batch: 64,
        height: 13,
        width: 13,
        channels: 32,
        kernel: 3,
        stride: 2,
        padding: 0,
    };
    let (gx, cx) = pair(gpu, &geom.input_shape(), 1)?;
    let (gcols, ccols) = pair(gpu, &geom.cols_shape(), 2)?;
    let cols_bytes = (geom.cols_shape().iter().product::<usize>() * 4) as f64;
    let x_bytes = (geom.input_shape().iter().product::<usize>() * 4) as f64;
    let shape = format!("{:?} <-> {:?}", geom.input_shape(), geom.cols_shape());
    if "im2col".contains(filter) || filter.is_empty() {
        let d = ops::im2col(gpu, &gx, &gcols, geom)?;
        let cpu_s = time_cpu(3, || cpu::ops::im2col(&cx, &ccols, geom))?;
        rows.push(Row {
            name: "im2col (D conv2)".into(),
            shape: shape.clone(),
            gpu_s: gpu_time(gpu, &[&d])?.0,
            cpu_s: Some(cpu_s),
            work: cols_bytes + x_bytes,
            unit: "GB/s",
        });
    }
    if "col2im".contains(filter) || filter.is_empty() {
        let d = ops::col2im(gpu, &gcols, &gx, geom, None)?;
        let cpu_s = time_cpu(3, || cpu::ops::col2im(&ccols, &cx, geom, None))?;
        rows.push(Row {
            name: "col2im (D conv2)".into(),
            shape,
            gpu_s: gpu_time(gpu, &[&d])?.0,
            cpu_s: Some(cpu_s),
            work: cols_bytes + x_bytes,
            unit: "GB/s",
        });
    }
    let (r, c) = (64 * 36, 64);
    let bytes = (r * c * 4) as f64;
    let (gx, cx) = pair(gpu, &[r, c], 3)?;
    let (gy, cy) = pair(gpu, &[r, c], 4)?;
    let (gdy, cdy) = pair(gpu, &[r, c], 5)?;
    let per: Vec<(Tensor, cpu::Tensor)> = (0..8)
        .map(|i| pair(gpu, &[c], 10 + i))
        .collect::<Result<_>>()?;
    let [mean, inv, g, b, rm, rv, dg, db] = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| &per[i]);
    if "batch norm forward".contains(filter) || filter.is_empty() {
        let s = ops::batch_norm_stats(gpu, &gx, &mean.0, &inv.0, &rm.0, &rv.0, 0.8, 1e-3, true)?;
        let a = ops::batch_norm_apply(
            gpu,
            &gx,
            &mean.0,
            &inv.0,
            &g.0,
            &b.0,
            &gy,
            Activation::LeakyRelu(0.2),
        )?;
        let cpu_s = time_cpu(3, || {
            cpu::ops::batch_norm_stats(&cx, &mean.1, &inv.1, &rm.1, &rv.1, 0.8, 1e-3, true)?;
            cpu::ops::batch_norm_apply(
                &cx,
                &mean.1,
                &inv.1,
                &g.1,
                &b.1,
                &cy,
                Activation::LeakyRelu(0.2),
            )
        })?;
        // stats reads x twice, apply reads x and writes y.
        rows.push(Row {
            name: "batch norm forward (stats + apply)".into(),
            shape: format!("[{r}, {c}]"),
            gpu_s: gpu_time(gpu, &[&s, &a])?.0,
            cpu_s: Some(cpu_s),
            work: 4.0 * bytes,
            unit: "GB/s",
        });
    }
    if "batch norm backward".contains(filter) || filter.is_empty() {
        let d = ops::batch_norm_backward(
            gpu,
            &gx,
            &mean.0,
            &inv.0,
            &g.0,
            &gdy,
            &gy,
            &dg.0,
            &db.0,
            ParamGrads::Accumulate,
            None,
            Activation::Identity,
        )?;
        let cpu_s = time_cpu(3, || {
            cpu::ops::batch_norm_backward(
                &cx,
                &mean.1,
                &inv.1,
                &g.1,
                &cdy,
                &cy,
                &dg.1,
                &db.1,
                ParamGrads::Accumulate,
                None,
                Activation::Identity,
            )
        })?;
        rows.push(Row {
            name: "batch norm backward".into(),
            shape: format!("[{r}, {c}]"),
            gpu_s: gpu_time(gpu, &[&d])?.0,
            cpu_s: Some(cpu_s),
            work: 5.0 * bytes,
            unit: "GB/s",
        });
    }
    if "adam".contains(filter) || filter.is_empty() {
        // Both networks' trainable parameters.
        let n: usize = wgsl_gan::gan::model::generator_specs(false)
            .iter()
            .chain(&wgsl_gan::gan::model::discriminator_specs(false))
            .filter(|s| s.trainable)
            .map(|s| s.len())
            .sum();
        let spec = AdamSpec::GAN;
        let t: Vec<(Tensor, cpu::Tensor)> = (0..4)
            .map(|i| pair(gpu, &[n], 20 + i))
            .collect::<Result<_>>()?;
        let d = ops::adam(gpu, &t[0].0, &t[1].0, &t[2].0, &t[3].0, spec, 1)?;
        let cpu_s = time_cpu(3, || {
            cpu::ops::adam(&t[0].1, &t[1].1, &t[2].1, &t[3].1, spec, 1)
        })?;
        rows.push(Row {
            name: "adam (G + D parameters)".into(),
            shape: format!("[{n}]"),
            gpu_s: gpu_time(gpu, &[&d])?.0,
            cpu_s: Some(cpu_s),
            work: 7.0 * 4.0 * n as f64,
            unit: "GB/s",
        });
    }
    Ok(())
}

/// Times every dispatch of the GAN's training step alone, and each of its parts (the GPU
/// dispatches an operation records: a convolution's im2col, packs and product, say), and sums
/// them by operation and by kernel entry point. WGSL_GAN_PROFILE_EACH=1 lists every dispatch.
fn step_profile(gpu: &Gpu) -> Result<()> {
    let count = 1024;
    let images: Vec<u32> = (0..count * 196) // 784 bytes per image, 4 per word
        .map(|i| (i as u32).wrapping_mul(2_654_435_761))
        .collect();
    let config = StepConfig::article(wgsl_gan::gan::generator::GeneratorKind::Mlp, 64, 1);
    let labels = vec![0u32; count / 4];
    let mut trainer = GpuTrainer::new(gpu, config, &images, &labels, count)?;
    trainer.initialize()?;
    let dispatches = trainer.dispatches();
    let all: Vec<&Dispatch> = dispatches.iter().collect();
    let (whole, _) = time_dispatches(gpu, &all, 3, 3)?;
    let verbose = std::env::var_os("WGSL_GAN_PROFILE_EACH").is_some();
    let add = |table: &mut Vec<(&'static str, f64, usize)>, name, s| match table
        .iter_mut()
        .find(|(n, _, _)| *n == name)
    {
        Some(e) => {
            e.1 += s;
            e.2 += 1;
        }
        None => table.push((name, s, 1)),
    };
    let (mut by_op, mut by_entry) = (Vec::new(), Vec::new());
    for (i, d) in dispatches.iter().enumerate() {
        let (s, _) = time_dispatches(gpu, &[d], 3, 3)?;
        add(&mut by_op, d.name, s);
        let mut parts = Vec::new();
        for (part, (entry, grid)) in d.split().iter().zip(d.parts()) {
            let (s, _) = time_dispatches(gpu, &[part], 3, 3)?;
            add(&mut by_entry, entry, s);
            parts.push(format!("{entry} {grid:?} {:.3}", s * 1e3));
        }
        if verbose {
            println!(
                "{i:3} {:20} {:8.3} ms: {}",
                d.name,
                s * 1e3,
                parts.join(", ")
            );
        }
    }
    let parts: usize = by_entry.iter().map(|e| e.2).sum();
    println!(
        "\nTraining step at batch 64: {} operations, {parts} GPU dispatches, {:.2} ms in one pass",
        dispatches.len(),
        whole * 1e3
    );
    for (what, mut table) in [("operation", by_op), ("kernel entry point", by_entry)] {
        table.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("\n| {what} | dispatches | ms (each timed alone) |");
        println!("|---|---:|---:|");
        for (n, s, c) in table {
            println!("| {n} | {c} | {:.3} |", s * 1e3);
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes "--bench"; anything else is a name filter.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let gpu = Gpu::new(None)?;
    println!("adapter: {}", wgsl_gan::gpu::describe(&gpu.info));
    let mut rows = Vec::new();
    let mut clock = Clock::WallTime;
    matmul_rows(&gpu, &filter, &mut rows, &mut clock)?;
    other_rows(&gpu, &filter, &mut rows)?;
    print(
        &rows,
        if gpu.timestamps {
            Clock::GpuTimestamps
        } else {
            clock
        },
    );
    plan_table(&gpu, &filter)?;
    if filter.is_empty() || "step".contains(&filter) {
        step_profile(&gpu)?;
    }
    Ok(())
}
