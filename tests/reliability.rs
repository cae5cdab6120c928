//! What wgsl-gan guarantees under kills, interrupts, bad files, bad numbers and resource faults,
//! each checked against the built binary (or the library where a process cannot show it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{idx_bytes, stderr, temp_dir, training_set};
use proptest::prelude::*;
use wgsl_gan::data::idx;
use wgsl_gan::io::checkpoint::{self, Checkpoint};
use wgsl_gan::rng::SplitMix64;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgsl-gan"));
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn train_args(data: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "8",
        "--log-every",
        "1",
        "--seed",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    bin().args(train_args(data, out, extra)).output().unwrap()
}

fn ckpt(out: &Path) -> PathBuf {
    out.join("checkpoint.safetensors")
}

fn same_tensors(a: &Checkpoint, b: &Checkpoint) -> bool {
    a.tensors.len() == b.tensors.len()
        && a.tensors
            .iter()
            .zip(&b.tensors)
            .all(|((n, s, x), (m, t, y))| {
                n == m && s == t && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
            })
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "the process did not finish in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn metrics_rows(out: &Path) -> usize {
    std::fs::read_to_string(out.join("metrics.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn sigkill_at_random_moments_never_loses_the_last_checkpoint_and_resume_is_exact() {
    let dir = temp_dir("kill");
    let data = training_set(&dir, 64); // 8 steps per epoch
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    let o = train(&data, &whole, &["--epochs", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let mut rng = SplitMix64::new(2024);
    let mut kills = 0;
    for _ in 0..12 {
        let resume = ckpt(&killed).exists();
        let done = if resume {
            let c = checkpoint::load(&ckpt(&killed)).unwrap();
            c.meta["step"].parse::<usize>().unwrap()
        } else {
            0
        };
        let mut args = train_args(
            &data,
            &killed,
            &["--epochs", "3", "--checkpoint-every", "1"],
        );
        if resume {
            args.push("--resume".into());
        }
        let mut child = bin().args(&args).spawn().unwrap();
        // Kill at a moment tied to the run's progress, not to the clock, so that it lands on
        // any adapter however fast: after 0-3 more logged steps (0: during start-up), then a
        // random few milliseconds into the next step or checkpoint write.
        let target = done + rng.below(4);
        let start = Instant::now();
        let mut finished = false;
        while metrics_rows(&killed) < target {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(300), "no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(rng.below(40) as u64));
        if finished || child.try_wait().unwrap().is_some() {
            break; // finished before the kill
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if ckpt(&killed).exists() {
            let c = checkpoint::load(&ckpt(&killed))
                .unwrap_or_else(|e| panic!("after kill {kills} the checkpoint does not load: {e}"));
            assert!(c.meta["step"].parse::<u64>().unwrap() <= 24);
        }
    }
    assert!(kills >= 2, "too few kills landed ({kills})");
    // Finish what is left.
    let resume = ckpt(&killed).exists();
    let mut extra = vec!["--epochs", "3"];
    if resume {
        extra.push("--resume");
    }
    let o = train(&data, &killed, &extra);
    assert!(
        o.status.success() || stderr(&o).contains("nothing to do"),
        "{}",
        stderr(&o)
    );
    let (a, b) = (
        checkpoint::load(&ckpt(&whole)).unwrap(),
        checkpoint::load(&ckpt(&killed)).unwrap(),
    );
    assert_eq!(b.meta["step"], "24");
    assert!(
        same_tensors(&a, &b),
        "the killed-and-resumed run differs from the uninterrupted one"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&killed)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_stops_after_the_step_with_a_checkpoint_and_says_how_to_resume() {
    let dir = temp_dir("sigint");
    let data = training_set(&dir, 64);
    let out = dir.join("out");
    let mut child = bin()
        .args(train_args(&data, &out, &["--epochs", "50"]))
        .spawn()
        .unwrap();
    let start = Instant::now();
    while metrics_rows(&out) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sends SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = wait_for(&mut child, Duration::from_secs(120));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "no resume hint: {err}");
    let c = checkpoint::load(&ckpt(&out)).unwrap();
    let step: usize = c.meta["step"].parse().unwrap();
    assert!((3..400).contains(&step), "checkpoint at step {step}");
    assert_eq!(
        metrics_rows(&out),
        step,
        "the checkpoint is not at the last finished step"
    );
    // The printed command names every option the run set away from its default, leaves the
    // defaults out, and continues the run (two more steps).
    let hint = err
        .lines()
        .skip_while(|l| !l.contains("continue with:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no resume command: {err}"));
    let words: Vec<&str> = hint.split_whitespace().collect();
    for flag in [
        "--data-dir",
        "--batch-size",
        "--seed",
        "--log-every",
        "--epochs",
    ] {
        assert!(words.contains(&flag), "{flag} missing from: {hint}");
    }
    for flag in [
        "--lr",
        "--beta1",
        "--model",
        "--classifier",
        "--fid-samples",
    ] {
        assert!(!words.contains(&flag), "{flag}, at its default, in: {hint}");
    }
    let more = (step + 2).to_string();
    let o = bin()
        .args(&words[1..])
        .args(["--max-steps", &more])
        .output()
        .unwrap();
    assert!(o.status.success(), "{hint}: {}", stderr(&o));
    let c = checkpoint::load(&ckpt(&out)).unwrap();
    assert_eq!(c.meta["step"], more);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
// It drives a hook that only `--features test-hooks` builds have (the README's test command).
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks")]
fn a_nan_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = temp_dir("nan");
    let data = training_set(&dir, 64);
    let out = dir.join("out");
    let o = bin()
        .args(train_args(
            &data,
            &out,
            &["--epochs", "2", "--checkpoint-every", "2"],
        ))
        .env("WGSL_GAN_INJECT_NAN_AT_STEP", "3")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "training went on after a NaN");
    assert!(err.contains("diverged") && err.contains("step 4"), "{err}");
    let c = checkpoint::load(&ckpt(&out)).expect("the last good checkpoint is still loadable");
    assert_eq!(c.meta["step"], "2");
    // The same with no readback on the bad steps: the check at checkpoint time catches it.
    let out2 = dir.join("out2");
    let mut args = train_args(&data, &out2, &["--epochs", "2", "--checkpoint-every", "2"]);
    let i = args.iter().position(|a| a == "--log-every").unwrap();
    args[i + 1] = "100".into();
    let o = bin()
        .args(&args)
        .env("WGSL_GAN_INJECT_NAN_AT_STEP", "3")
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("NaN"),
        "{}",
        stderr(&o)
    );
    assert_eq!(checkpoint::load(&ckpt(&out2)).unwrap().meta["step"], "2");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_during_a_checkpoint_write_keeps_the_previous_checkpoint() {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir("full");
    let data = training_set(&dir, 64);
    let out = dir.join("out");
    let o = train(&data, &out, &["--epochs", "2", "--max-steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(ckpt(&out)).unwrap();
    let mut cmd = bin();
    cmd.args(train_args(
        &data,
        &out,
        &["--epochs", "2", "--max-steps", "4", "--resume"],
    ));
    // SAFETY: only calls setrlimit (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "the write past the limit did not fail");
    assert!(
        err.contains("checkpoint.safetensors") && err.contains("cannot write"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(ckpt(&out)).unwrap(),
        before,
        "the previous checkpoint changed"
    );
    let leftovers = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count();
    assert_eq!(leftovers, 0, "the partial temporary file was left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resource_and_argument_faults_give_clear_errors() {
    let dir = temp_dir("faults");
    let data = training_set(&dir, 64);
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, b"x").unwrap();
    let o = train(&data, &a_file.join("sub"), &[]);
    assert!(
        !o.status.success() && stderr(&o).contains("cannot create the output folder"),
        "{}",
        stderr(&o)
    );

    let out = dir.join("out");
    let o = train(&data, &out, &["--max-steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut args = train_args(&data, &out, &["--resume"]);
    let i = args.iter().position(|a| a == "--batch-size").unwrap();
    args[i + 1] = "16".into();
    let o = bin().args(&args).output().unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("trained with --batch-size 8"),
        "{}",
        stderr(&o)
    );
    for (flags, want) in [
        (vec!["--checkpoint-every", "0"], "--checkpoint-every"),
        (vec!["--log-every", "0"], "--log-every"),
        (vec!["--beta1", "1.5"], "--beta1 must be in [0, 1)"),
        (vec!["--max-steps", "0"], "--max-steps"),
    ] {
        let o = train(&data, &dir.join("other"), &flags);
        assert!(
            !o.status.success() && stderr(&o).contains(want),
            "{flags:?}: {}",
            stderr(&o)
        );
        assert_eq!(o.status.code(), Some(2));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_too_large_for_the_adapter_is_a_clear_error() {
    let gpu = common::gpu();
    // im2col of the first convolution holds batch * 169 * 9 floats (the second's more).
    let limit = gpu
        .limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size) as usize;
    let batch = limit / (169 * 9 * 4) + 1;
    let images = vec![0u32; batch * 196];
    let config = wgsl_gan::gan::step::StepConfig::article(
        wgsl_gan::gan::generator::GeneratorKind::Mlp,
        batch,
        0,
    );
    let err = wgsl_gan::gan::trainer::GpuTrainer::new(&gpu, config, &images, &[], batch)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("use a smaller batch"), "{err}");
}

#[test]
// It drives a hook that only `--features test-hooks` builds have (the README's test command).
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks")]
fn a_gpu_that_stops_progressing_is_a_bounded_error_and_keeps_the_checkpoint() {
    let dir = temp_dir("hang");
    let data = training_set(&dir, 64);
    let out = dir.join("out");
    let o = train(&data, &out, &["--epochs", "2", "--max-steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(ckpt(&out)).unwrap();
    // A zero bound: no submission finishes within it, so every wait stands for a hung driver.
    let o = bin()
        .args(train_args(
            &data,
            &out,
            &["--epochs", "2", "--max-steps", "4", "--resume"],
        ))
        .env("WGSL_GAN_WAIT_LIMIT_MS", "0")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("made no progress") && err.contains("hung"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(ckpt(&out)).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_adapter_short_of_a_limit_is_refused_naming_the_limit() {
    let gpu = common::gpu();
    assert!(wgsl_gan::gpu::check_limits(&gpu.info, &gpu.limits).is_ok());
    // WebGPU's downlevel defaults: 16,352 bytes of workgroup storage, 16 bytes short.
    let short = wgpu::Limits {
        max_compute_workgroup_storage_size: 16352,
        ..gpu.limits.clone()
    };
    let err = wgsl_gan::gpu::check_limits(&gpu.info, &short)
        .expect_err("accepted")
        .to_string();
    assert!(
        err.contains("max_compute_workgroup_storage_size = 16352")
            && err.contains("16384")
            && err.contains(&gpu.info.name),
        "{err}"
    );
    let short = wgpu::Limits {
        max_compute_invocations_per_workgroup: 128,
        ..gpu.limits.clone()
    };
    let err = wgsl_gan::gpu::check_limits(&gpu.info, &short).expect_err("accepted");
    assert!(
        err.to_string()
            .contains("max_compute_invocations_per_workgroup = 128"),
        "{err}"
    );
}

#[test]
fn a_lost_device_is_an_error_not_a_panic() {
    let gpu = common::gpu();
    let t = wgsl_gan::gpu::Tensor::from_slice(&gpu, &[1.0, 2.0], &[2]).unwrap();
    gpu.device.destroy();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wgsl_gan::gpu::ops::fill(&gpu, &t, 0.0)
            .and_then(|d| gpu.run(&[&d]))
            .and_then(|_| t.read(&gpu))
    }));
    let r = r.expect("using a lost device panicked");
    assert!(r.is_err(), "using a destroyed device succeeded: {r:?}");
}

/// A small valid checkpoint, its bytes and its path: written once per process (tests that use
/// it run in parallel threads, and the fuzzers call it for every case).
fn good_checkpoint() -> (Checkpoint, Vec<u8>, PathBuf) {
    static GOOD: std::sync::OnceLock<(Checkpoint, Vec<u8>, PathBuf)> = std::sync::OnceLock::new();
    GOOD.get_or_init(|| {
        let dir = temp_dir("ckpt-bytes");
        let path = dir.join("c.safetensors");
        let mut meta = std::collections::BTreeMap::new();
        meta.insert("model".to_string(), "mlp-gan".to_string());
        let c = Checkpoint {
            tensors: vec![
                (
                    "a".into(),
                    vec![2, 3],
                    (0..6).map(|i| i as f32 * 0.5).collect(),
                ),
                ("b".into(), vec![4], vec![1.0, -1.0, 2.0, 0.25]),
            ],
            meta,
        };
        checkpoint::save(&path, &c).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (c, bytes, path)
    })
    .clone()
}

#[test]
fn corrupt_checkpoints_are_rejected_with_the_reason() {
    let (_, bytes, path) = good_checkpoint();
    assert!(checkpoint::parse(&path, &bytes).is_ok());
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (bytes[..bytes.len() - 3].to_vec(), "not a valid safetensors"),
        (bytes[..5].to_vec(), "not a valid safetensors"),
        (Vec::new(), "not a valid safetensors"),
        (
            {
                let mut b = bytes.clone();
                *b.last_mut().unwrap() ^= 0x10;
                b
            },
            "checksum mismatch",
        ),
        (
            {
                let mut b = bytes.clone();
                b[8 + header_len + 5] ^= 0x01;
                b
            },
            "checksum mismatch",
        ),
        (
            {
                let mut b = bytes.clone();
                // Inside the header's JSON: a key loses its name.
                b[12] ^= 0x20;
                b
            },
            "invalid JSON in header",
        ),
        // Found by the fuzzer below: a flipped bit in a metadata value ("mlp-gan" -> "mlp-g`n")
        // loaded as a valid checkpoint before the checksum covered the metadata.
        (
            {
                let mut b = bytes.clone();
                let at = b.windows(7).position(|w| w == b"mlp-gan").unwrap();
                b[at + 5] ^= 0x01;
                b
            },
            "checksum mismatch",
        ),
    ];
    for (i, (b, want)) in cases.into_iter().enumerate() {
        let e = checkpoint::parse(&path, &b)
            .err()
            .unwrap_or_else(|| panic!("case {i} loaded"));
        assert!(e.to_string().contains(want), "case {i}: {e}");
        assert!(
            e.to_string().contains("c.safetensors"),
            "case {i} does not name the file: {e}"
        );
    }
    // Wrong dtype: an F16 tensor written by another tool.
    let data = [0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![4], &data).unwrap();
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), checkpoint::FORMAT.to_string());
    let other = safetensors::serialize(vec![("a".to_string(), view)], Some(meta)).unwrap();
    let e = checkpoint::parse(&path, &other).unwrap_err();
    assert!(e.to_string().contains("expected F32"), "{e}");
    // A file that is not ours at all.
    let e = checkpoint::parse(
        &path,
        &safetensors::serialize(
            Vec::<(String, safetensors::tensor::TensorView)>::new(),
            None,
        )
        .unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a wgsl-gan checkpoint"), "{e}");
}

#[test]
fn a_checkpoint_with_wrong_shapes_is_refused_by_train_and_sample() {
    let dir = temp_dir("shapes");
    let data = training_set(&dir, 64);
    let out = dir.join("out");
    let o = train(&data, &out, &["--max-steps", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut c = checkpoint::load(&ckpt(&out)).unwrap();
    let t = c
        .tensors
        .iter_mut()
        .find(|(n, _, _)| n == "generator.0.weight")
        .unwrap();
    t.1 = vec![100, 128];
    checkpoint::save(&ckpt(&out), &c).unwrap();
    let before = std::fs::read(ckpt(&out)).unwrap();
    let png = dir.join("grid.png");
    let o = bin()
        .args([
            "sample",
            "--checkpoint",
            ckpt(&out).to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        !o.status.success()
            && stderr(&o).contains("generator.0.weight")
            && stderr(&o).contains("shape"),
        "{}",
        stderr(&o)
    );
    assert!(!png.exists(), "sample wrote output from a bad checkpoint");
    let o = train(&data, &out, &["--resume"]);
    assert!(
        !o.status.success() && stderr(&o).contains("generator.0.weight"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(ckpt(&out)).unwrap(),
        before,
        "a refused resume changed the checkpoint"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    /// Arbitrary bytes and damaged valid files: the IDX reader answers Ok or a clear error.
    #[test]
    fn idx_reader_never_panics(noise in proptest::collection::vec(any::<u8>(), 0..64), cut in 0usize..2000, flip in 0usize..2000, bit in 0u8..8) {
        let path = Path::new("fuzz-images-idx3-ubyte");
        let _ = idx::parse(path, &noise, idx::IMAGES_MAGIC);
        let mut valid = idx_bytes(idx::IMAGES_MAGIC, &[2, 28, 28], &[7u8; 2 * 784]);
        let i = flip % valid.len();
        valid[i] ^= 1 << bit;
        let valid = &valid[..cut.min(valid.len())];
        if let Err(e) = idx::parse(path, valid, idx::IMAGES_MAGIC) {
            prop_assert!(e.to_string().contains("fuzz-images-idx3-ubyte"));
        }
    }

    /// Damaged checkpoints: the loader answers Ok (only when undamaged) or a clear error.
    #[test]
    fn checkpoint_loader_never_panics(cut in 0usize..4000, flip in 0usize..4000, bit in 0u8..8, noise in proptest::collection::vec(any::<u8>(), 0..32)) {
        let (_, bytes, path) = good_checkpoint();
        let mut damaged = bytes.clone();
        let i = flip % damaged.len();
        damaged[i] ^= 1 << bit;
        prop_assert!(checkpoint::parse(&path, &damaged).is_err(), "a flipped bit at {} went unnoticed", i);
        let cut = &bytes[..cut.min(bytes.len())];
        if cut.len() < bytes.len() {
            prop_assert!(checkpoint::parse(&path, cut).is_err());
        }
        let mut tail = bytes[..8.min(bytes.len())].to_vec();
        tail.extend(&noise);
        let _ = checkpoint::parse(&path, &tail);
    }

    /// Valid IDX headers with any dimensions (zero, huge, overflowing) and payloads of the wrong
    /// length: parsed exactly when the payload matches the dimensions, else refused naming the
    /// file and the reason.
    #[test]
    fn idx_reader_checks_dimensions_against_the_payload(
        dims in proptest::collection::vec(prop_oneof![0u32..40, Just(u32::MAX), 1u32 << 20..1 << 31], 3),
        extra in -3i64..4,
    ) {
        let path = Path::new("fuzz-images-idx3-ubyte");
        let product = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(u64::from(d)));
        // Payloads are built only where they are small; big dimensions get a short one.
        let len = match product {
            Some(n) if n <= 40 * 40 * 40 => (n as i64 + extra).max(0) as usize,
            _ => (extra + 3) as usize,
        };
        let bytes = idx_bytes(idx::IMAGES_MAGIC, &dims, &vec![1u8; len]);
        match idx::parse(path, &bytes, idx::IMAGES_MAGIC) {
            Ok((shape, pixels)) => {
                prop_assert_eq!(Some(len as u64), product);
                prop_assert_eq!(shape, dims.iter().map(|&d| d as usize).collect::<Vec<_>>());
                prop_assert_eq!(pixels.len(), len);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(product != Some(len as u64), "refused a consistent file: {}", msg);
                prop_assert!(msg.contains("fuzz-images-idx3-ubyte"), "{}", msg);
                prop_assert!(msg.contains("truncated") || msg.contains("trailing") || msg.contains("overflow"), "{}", msg);
            }
        }
    }

    /// A training set with valid headers but wrong sizes or labels: loaded only when it is 28x28
    /// images, as many labels as images, labels 0..9; else one error naming the file.
    #[test]
    fn dataset_loader_checks_sizes_and_labels(
        count in 0u32..4, rows in prop_oneof![Just(28u32), 0u32..30], cols in prop_oneof![Just(28u32), 0u32..30],
        labels in proptest::collection::vec(prop_oneof![0u8..10, 10u8..=255], 0..5),
        case in 0u32..1_000_000,
    ) {
        let dir = std::env::temp_dir().join(format!("wgsl-gan-fuzz-{}-{case}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pixels = vec![9u8; (count * rows * cols) as usize];
        std::fs::write(dir.join("train-images-idx3-ubyte"), idx_bytes(idx::IMAGES_MAGIC, &[count, rows, cols], &pixels)).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_bytes(idx::LABELS_MAGIC, &[labels.len() as u32], &labels)).unwrap();
        let valid = rows == 28 && cols == 28 && count > 0 && labels.len() == count as usize && labels.iter().all(|&l| l <= 9);
        let result = idx::load_dataset(&dir, "train");
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(d) => {
                prop_assert!(valid);
                prop_assert_eq!(d.count, count as usize);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!valid, "refused a valid set: {}", msg);
                prop_assert!(msg.contains("-idx"), "the error names no file: {}", msg);
            }
        }
    }

    /// Well-formed safetensors headers with a wrong dtype, shape or offsets: refused with the
    /// reason (not a valid layout, not F32, or no checksum), never loaded, never a panic.
    #[test]
    fn checkpoint_loader_refuses_structured_damage(
        dtype in prop::sample::select(vec![("F32", 4usize), ("F16", 2), ("BF16", 2), ("I32", 4), ("U8", 1), ("F64", 8)]),
        shape in proptest::collection::vec(0usize..5, 0..3),
        begin in 0usize..8,
        len in 0usize..80,
        payload in 0usize..80,
    ) {
        let path = Path::new("fuzz.safetensors");
        let header = format!(
            r#"{{"__metadata__":{{"format":"{}"}},"w":{{"dtype":"{}","shape":{:?},"data_offsets":[{},{}]}}}}"#,
            checkpoint::FORMAT, dtype.0, shape, begin, begin + len
        );
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend(vec![0u8; payload]);
        let msg = checkpoint::parse(path, &bytes).expect_err("a checkpoint without a checksum loaded").to_string();
        prop_assert!(msg.contains("fuzz.safetensors"), "{}", msg);
        let elements: usize = shape.iter().product();
        let layout_ok = begin == 0 && len == payload && len == elements * dtype.1;
        let reason = if !layout_ok {
            "not a valid safetensors checkpoint"
        } else if dtype.0 != "F32" {
            "expected F32"
        } else {
            "no checksum in its metadata"
        };
        prop_assert!(msg.contains(reason), "expected '{}': {}", reason, msg);
    }
}

#[test]
fn temporary_files_are_never_written_through_a_planted_link() {
    let dir = temp_dir("planted");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // A link under the name the writer once used (.NAME.tmp-PID), planted before the write.
    let planted = dir.join(format!(".x.tmp-{}", std::process::id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    wgsl_gan::io::write_atomic(&dir.join("x"), b"new").unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(std::fs::read_to_string(dir.join("x")).unwrap(), "new");
    let temporaries = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .count();
    assert_eq!(temporaries, 1, "only the planted link is left");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_dead_processes_temporaries_are_swept_from_both_folders() {
    let dir = temp_dir("sweep");
    let data = training_set(&dir, 64);
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("samples")).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let dead_files = [
        out.join(format!(".checkpoint.safetensors.tmp-{dead}-00ff")),
        out.join("samples")
            .join(format!(".epoch_001.png.tmp-{dead}-00ff")),
    ];
    // This test process is alive: its file stands for a concurrent writer's.
    let live = out.join(format!(".metrics.csv.tmp-{}-00ff", std::process::id()));
    for f in dead_files.iter().chain([&live]) {
        std::fs::write(f, "partial").unwrap();
    }
    let o = train(&data, &out, &["--max-steps", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in &dead_files {
        assert!(!f.exists(), "{} was not swept", f.display());
    }
    assert!(
        live.exists(),
        "a running process's temporary file was removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_run_on_the_same_folder_is_refused_while_the_first_runs() {
    let dir = temp_dir("lock");
    let data = training_set(&dir, 64);
    let out = dir.join("out");
    let mut first = bin()
        .args(train_args(&data, &out, &["--epochs", "50"]))
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ckpt(&out).exists() && metrics_rows(&out) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = train(&data, &out, &["--epochs", "50", "--resume"]);
    let err = stderr(&second);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("in use by another training run"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_checkpoint_without_format_or_checksum_is_named_as_such() {
    let path = Path::new("foreign.safetensors");
    let file = |meta: &str| {
        let header = format!(
            r#"{{"__metadata__":{{{meta}}},"w":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#
        );
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend(1.0f32.to_le_bytes());
        bytes
    };
    let e = checkpoint::parse(path, &file(r#""model":"x""#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("its metadata has no format") && !e.contains("None"),
        "{e}"
    );
    let meta = format!(r#""format":"{}""#, checkpoint::FORMAT);
    let e = checkpoint::parse(path, &file(&meta))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no checksum") && !e.contains("mismatch"), "{e}");
}
