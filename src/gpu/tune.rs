//! Tuned matmul plans: `wgsl-gan tune` times the candidate plans for every product a model runs
//! and stores the winners in a small text file per adapter, under the user's cache folder, named
//! and keyed by the adapter's name, backend, driver and the kernel style. A [`Gpu`] opened on that
//! adapter plans its matmuls from the file; products it does not list, and every run when there
//! is no file, use the built-in table ([`MatmulPlan::choose`]).
//!
//! A plan changes only the order of the additions (tile, split-K), so a tuned run differs from an
//! untuned one within the tolerance every plan is tested to; the same file gives the same run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::gpu::ops;
use crate::gpu::plan::{MatmulKernel, MatmulPlan, MatmulShape, plan_fits};
use crate::gpu::timing::time_dispatches;
use crate::gpu::{Gpu, KernelStyle, Tensor};
use crate::rng::SplitMix64;

/// Folder of the plan files (default: `$XDG_CACHE_HOME/wgsl-gan`, else `~/.cache/wgsl-gan`;
/// `%LOCALAPPDATA%\wgsl-gan` on Windows).
pub const CACHE_DIR_ENV: &str = "WGSL_GAN_CACHE_DIR";

/// `WGSL_GAN_TUNED=off` ignores the plan file (to compare against the built-in table).
pub const TUNED_ENV: &str = "WGSL_GAN_TUNED";

const HEADER: &str = "# wgsl-gan matmul plans, written by `wgsl-gan tune`";

/// The plans of one adapter, by product.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanTable {
    /// The plan of each product the file names.
    pub plans: BTreeMap<MatmulShape, MatmulPlan>,
}

impl PlanTable {
    /// The file's text: a header, the adapter key, then `M N K TRANS_A TRANS_B KERNEL SPLITS`.
    pub fn to_text(&self, adapter_key: &str) -> String {
        let mut s =
            format!("{HEADER}\nadapter {adapter_key}\n# m n k trans_a trans_b kernel splits\n");
        for (shape, plan) in &self.plans {
            s += &format!(
                "{} {} {} {} {} {} {}\n",
                shape.m,
                shape.n,
                shape.k,
                u8::from(shape.trans_a),
                u8::from(shape.trans_b),
                plan.kernel,
                plan.splits
            );
        }
        s
    }

    /// Reads a plan file written for `adapter_key`; `Ok(None)` when it was written for another.
    pub fn parse(text: &str, adapter_key: &str) -> std::result::Result<Option<PlanTable>, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
        match lines.next() {
            Some((_, l)) if l.strip_prefix("adapter ") == Some(adapter_key) => {}
            Some((_, l)) if l.starts_with("adapter ") => return Ok(None),
            _ => return Err("no `adapter` line".into()),
        }
        let mut table = PlanTable::default();
        for (i, line) in lines {
            let bad = |why: &str| format!("line {}: {why}: '{line}'", i + 1);
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 7 {
                return Err(bad("expected 7 fields"));
            }
            let num = |s: &str| s.parse::<usize>().map_err(|_| bad("not a number"));
            let flag = |s: &str| match s {
                "0" => Ok(false),
                "1" => Ok(true),
                _ => Err(bad("transpose flags are 0 or 1")),
            };
            let shape = MatmulShape {
                m: num(f[0])?,
                n: num(f[1])?,
                k: num(f[2])?,
                trans_a: flag(f[3])?,
                trans_b: flag(f[4])?,
            };
            let kernel: MatmulKernel = f[5].parse().map_err(|e: String| bad(&e))?;
            let splits = num(f[6])?;
            if shape.m * shape.n * shape.k == 0 || splits == 0 {
                return Err(bad("dimensions and splits must be at least 1"));
            }
            table
                .plans
                .insert(shape, MatmulPlan::new(kernel, shape.k, splits));
        }
        Ok(Some(table))
    }
}

/// What identifies an adapter for tuning: its name, backend, device, driver and kernel style.
pub fn adapter_key(info: &wgpu::AdapterInfo, style: KernelStyle) -> String {
    format!(
        "{} | {:?} | {:04x}:{:04x} | {} {} | {style:?} kernels",
        info.name, info.backend, info.vendor, info.device, info.driver, info.driver_info
    )
}

fn cache_dir() -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env(CACHE_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    let base = if cfg!(windows) {
        env("LOCALAPPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| Path::new(&h).join("Library/Caches"))
    } else {
        env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache")))
    };
    base.map(|b| b.join("wgsl-gan"))
}

/// The plan file of an adapter: `matmul-plans-NAME-DRIVER.txt` in the cache folder.
pub fn plan_path(info: &wgpu::AdapterInfo, style: KernelStyle) -> Option<PathBuf> {
    let name = format!(
        "{}-{:?}-{}-{:?}",
        info.name, info.backend, info.driver_info, style
    );
    let mut safe = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            safe.push(c.to_ascii_lowercase());
        } else if !safe.ends_with('-') {
            safe.push('-');
        }
    }
    Some(cache_dir()?.join(format!("matmul-plans-{}.txt", safe.trim_matches('-'))))
}

/// The adapter's plan file, if there is one for it (and `WGSL_GAN_TUNED` is not `off`). A file
/// that cannot be read is a warning, not an error: it only ever makes runs faster.
pub fn load(info: &wgpu::AdapterInfo, style: KernelStyle) -> Option<(PathBuf, PlanTable)> {
    if std::env::var(TUNED_ENV).is_ok_and(|v| v == "off") {
        return None;
    }
    let path = plan_path(info, style)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            eprintln!(
                "warning: {}: {e}; using the built-in matmul plans",
                path.display()
            );
            return None;
        }
    };
    match PlanTable::parse(&text, &adapter_key(info, style)) {
        Ok(Some(table)) => Some((path, table)),
        Ok(None) => None,
        Err(e) => {
            eprintln!(
                "warning: {}: {e}; using the built-in matmul plans (rerun `wgsl-gan tune`)",
                path.display()
            );
            None
        }
    }
}

/// One product's tuning: the built-in plan and the winner, with their times in seconds.
pub struct Tuned {
    /// The product.
    pub shape: MatmulShape,
    /// The plan the built-in table picks, and its time.
    pub builtin: (MatmulPlan, f64),
    /// The fastest plan timed, and its time.
    pub best: (MatmulPlan, f64),
}

/// Every kernel that can run `shape` on this adapter, less tiles larger than the product needs
/// (they only add padding work).
fn kernels(gpu: &Gpu, shape: MatmulShape) -> Vec<MatmulKernel> {
    let sides = |d: usize| {
        [32, 64, 128]
            .into_iter()
            .filter(move |&t| t < d.max(32) * 2)
    };
    let mut all: Vec<MatmulKernel> = sides(shape.m)
        .flat_map(|tile_m| sides(shape.n).map(move |tile_n| MatmulKernel::Tiled { tile_m, tile_n }))
        .collect();
    all.extend([MatmulKernel::Lanes, MatmulKernel::LanesPacked]);
    all.retain(|&kernel| {
        plan_fits(
            gpu,
            MatmulPlan::new(kernel, shape.k, 1),
            shape.m,
            shape.n,
            shape.k,
        )
    });
    all
}

/// Times the candidate plans for `shape` and returns the fastest. Kernels are compared at the
/// built-in split count, then the best one at every split count; the winner replaces the built-in
/// plan only if it still wins, by 3% or more, a final head-to-head of alternating timings (the
/// machines this runs on are noisy).
pub fn tune_shape(gpu: &Gpu, shape: MatmulShape) -> Result<Tuned> {
    let MatmulShape { m, n, k, .. } = shape;
    let spec = shape.spec();
    let mut rng = SplitMix64::new((m * 31 + n * 17 + k) as u64);
    let mut random = |dims: [usize; 2]| -> Result<Tensor> {
        let data: Vec<f32> = (0..dims[0] * dims[1])
            .map(|_| rng.next_f64() as f32 - 0.5)
            .collect();
        Tensor::from_slice(gpu, &data, &dims)
    };
    let a = random(if shape.trans_a { [k, m] } else { [m, k] })?;
    let b = random(if shape.trans_b { [n, k] } else { [k, n] })?;
    let c = random([m, n])?;
    let time = |plan: MatmulPlan, samples: usize| -> Result<f64> {
        let d = ops::matmul_planned(gpu, &a, &b, None, &c, spec, plan)?;
        let (once, _) = time_dispatches(gpu, &[&d], 1, 1)?;
        let repeats = (0.02 / once.max(1e-6)).clamp(1.0, 20.0) as usize;
        Ok(time_dispatches(gpu, &[&d], repeats, samples)?.0)
    };
    let builtin = MatmulPlan::choose(gpu, m, n, k);
    let mut timed = Vec::new();
    for kernel in kernels(gpu, shape) {
        let plan = MatmulPlan::new(kernel, k, builtin.splits);
        timed.push((plan, time(plan, 3)?));
    }
    timed.sort_by(|x, y| x.1.total_cmp(&y.1));
    let leader = timed[0].0.kernel;
    for splits in [1, 2, 4, 8, 16, 32] {
        let plan = MatmulPlan::new(leader, k, splits);
        if plan.splits == splits && plan.splits != builtin.splits && k / splits >= 16 {
            timed.push((plan, time(plan, 3)?));
        }
    }
    timed.sort_by(|x, y| x.1.total_cmp(&y.1));
    let challenger = timed[0].0;
    if challenger == builtin {
        let t = time(builtin, 5)?;
        return Ok(Tuned {
            shape,
            builtin: (builtin, t),
            best: (builtin, t),
        });
    }
    let (mut t_builtin, mut t_challenger) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        t_builtin = t_builtin.min(time(builtin, 3)?);
        t_challenger = t_challenger.min(time(challenger, 3)?);
    }
    let best = if t_challenger < 0.97 * t_builtin {
        (challenger, t_challenger)
    } else {
        (builtin, t_builtin)
    };
    Ok(Tuned {
        shape,
        builtin: (builtin, t_builtin),
        best,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> MatmulShape {
        MatmulShape {
            m,
            n,
            k,
            trans_a,
            trans_b,
        }
    }

    #[test]
    fn plan_files_round_trip() {
        let mut table = PlanTable::default();
        table.plans.insert(
            shape(64, 128, 100, false, true),
            MatmulPlan::new(MatmulKernel::Lanes, 100, 1),
        );
        table.plans.insert(
            shape(32, 9, 10816, true, false),
            MatmulPlan::new(
                MatmulKernel::Tiled {
                    tile_m: 32,
                    tile_n: 64,
                },
                10816,
                8,
            ),
        );
        table.plans.insert(
            shape(2304, 288, 64, false, false),
            MatmulPlan::new(MatmulKernel::LanesPacked, 64, 1),
        );
        let text = table.to_text("llvmpipe | Vulkan");
        assert_eq!(
            PlanTable::parse(&text, "llvmpipe | Vulkan"),
            Ok(Some(table))
        );
        // Another adapter's file is not an error, only not ours.
        assert_eq!(PlanTable::parse(&text, "NVIDIA H100 | Vulkan"), Ok(None));
    }

    #[test]
    fn bad_plan_files_name_the_line() {
        let key = "a";
        let cases = [
            ("", "no `adapter` line"),
            (
                "adapter a\n64 128 100 0 1 lanes\n",
                "line 2: expected 7 fields",
            ),
            ("adapter a\n64 128 x 0 1 lanes 1\n", "line 2: not a number"),
            (
                "adapter a\n# c\n64 128 9 0 2 lanes 1\n",
                "line 3: transpose flags",
            ),
            (
                "adapter a\n64 128 9 0 1 tiled-7 1\n",
                "unknown matmul kernel 'tiled-7'",
            ),
            ("adapter a\n64 0 9 0 1 lanes 1\n", "at least 1"),
        ];
        for (text, want) in cases {
            let err = PlanTable::parse(text, key).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn kernel_names_parse_back() {
        for kernel in [
            MatmulKernel::Lanes,
            MatmulKernel::LanesPacked,
            MatmulKernel::Tiled {
                tile_m: 128,
                tile_n: 32,
            },
        ] {
            assert_eq!(kernel.to_string().parse(), Ok(kernel));
        }
    }
}
