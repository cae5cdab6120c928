//! The command line as a property: for `sample`, `eval` and `train`, random combinations of
//! flags with valid and invalid values (negative, zero, huge, fractional, NaN, infinite, extreme
//! finite; missing, folder, unwritable and shared paths). An oracle computed from the inputs
//! alone says which flags or files are at fault; then each run is one of two outcomes:
//! - no fault: exit 0, and every file it wrote is valid (PNGs decode, IDX headers and sizes
//!   right, .npy finite and of the right shape, checkpoints load);
//! - a fault: a non-zero exit, exactly one `error:` line naming one of the flags or files at
//!   fault, no panic, and the output folder exactly as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{idx_bytes, temp_dir, training_set};
use proptest::prelude::*;
use wgsl_gan::data::idx;
use wgsl_gan::io::{checkpoint, npy};

/// Inputs shared by every case: a training set, a checkpoint of it, IDX files and junk.
struct Fixtures {
    data: PathBuf,
    checkpoint: PathBuf,
    idx40: PathBuf,
    idx_one: PathBuf,
    idx_empty: PathBuf,
    garbage: PathBuf,
    folder: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = temp_dir("cli-properties");
        let data = training_set(&dir, 32);
        let run = dir.join("run");
        let o = Command::new(env!("CARGO_BIN_EXE_wgsl-gan"))
            .args([
                "train",
                "--max-steps",
                "1",
                "--batch-size",
                "16",
                "--fid-samples",
                "0",
            ])
            .arg("--data-dir")
            .arg(&data)
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", common::stderr(&o));
        let idx_file = |name: &str, count: u32| {
            let path = dir.join(name);
            let pixels = vec![128u8; count as usize * 784];
            std::fs::write(
                &path,
                idx_bytes(idx::IMAGES_MAGIC, &[count, 28, 28], &pixels),
            )
            .unwrap();
            path
        };
        let garbage = dir.join("garbage.bin");
        std::fs::write(&garbage, b"not a file any command reads").unwrap();
        let folder = dir.join("a-folder");
        std::fs::create_dir_all(&folder).unwrap();
        Fixtures {
            data,
            checkpoint: run.join("checkpoint.safetensors"),
            idx40: idx_file("forty-idx3-ubyte", 40),
            idx_one: idx_file("one-idx3-ubyte", 1),
            idx_empty: idx_file("empty-idx3-ubyte", 0),
            garbage,
            folder,
        }
    })
}

/// A flag's value: what is passed, and whether it is at fault.
#[derive(Clone, Debug)]
struct Value {
    text: String,
    bad: bool,
}

fn good(text: impl ToString) -> Value {
    Value {
        text: text.to_string(),
        bad: false,
    }
}

fn bad(text: &str) -> Value {
    Value {
        text: text.into(),
        bad: true,
    }
}

/// A whole-number flag valid in `lo..=hi`, with `valid` drawing the valid values tried.
fn whole(lo: u64, hi: u64, valid: impl Strategy<Value = u64> + 'static) -> BoxedStrategy<Value> {
    let judged = move |n: u64| Value {
        text: n.to_string(),
        bad: !(lo..=hi).contains(&n),
    };
    let awkward = prop_oneof![
        Just(0u64).prop_map(judged),
        Just(1u64).prop_map(judged),
        Just(70_000u64).prop_map(judged),
        Just(u64::MAX).prop_map(judged),
        prop::sample::select(vec![
            "-1",
            "-0",
            "2.5",
            "nan",
            "99999999999999999999999",
            ""
        ])
        .prop_map(bad),
    ];
    prop_oneof![4 => valid.prop_map(good), 1 => awkward].boxed()
}

/// A float flag valid in (lo, hi) or [lo, hi).
fn float(valid: f32, lo_open: bool, lo: f32, hi: f32) -> BoxedStrategy<Value> {
    let judged = move |text: &'static str| {
        let v: f32 = text.parse().unwrap();
        let above = if lo_open { v > lo } else { v >= lo };
        Value {
            text: text.into(),
            bad: !(v.is_finite() && above && v < hi),
        }
    };
    let awkward = prop_oneof![
        10 => prop::sample::select(vec!["0", "-1", "-0.5", "1", "NaN", "inf", "-inf", "1e30", "1e-30", "1e400"]).prop_map(judged),
        1 => Just(bad("x")),
    ];
    prop_oneof![4 => Just(good(valid)), 1 => awkward].boxed()
}

/// Where an output goes.
#[derive(Clone, Copy, Debug)]
enum Dest {
    Fresh,
    MissingFolder,
    IsAFolder,
    Unwritable,
    SameAsPrevious,
}

fn dest() -> impl Strategy<Value = Option<Dest>> {
    let awkward = prop::sample::select(vec![
        Dest::MissingFolder,
        Dest::IsAFolder,
        Dest::Unwritable,
        Dest::SameAsPrevious,
    ]);
    prop_oneof![
        5 => Just(None),
        6 => Just(Some(Dest::Fresh)),
        1 => awkward.prop_map(Some),
    ]
}

/// An input file.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Input {
    Valid,
    Missing,
    Folder,
    Garbage,
}

fn input() -> impl Strategy<Value = Input> {
    let awkward = prop::sample::select(vec![Input::Missing, Input::Folder, Input::Garbage]);
    prop_oneof![8 => Just(Input::Valid), 1 => awkward]
}

/// One command line being built: its arguments and what is at fault in it.
#[derive(Default)]
struct Case {
    args: Vec<String>,
    /// Flags and paths at fault; the error must name one of them.
    faults: Vec<String>,
}

impl Case {
    fn flag(&mut self, flag: &str, value: &Value) {
        self.args.push(flag.into());
        self.args.push(value.text.clone());
        if value.bad {
            self.faults.push(flag.into());
        }
    }

    fn path(&mut self, flag: &str, path: &Path, bad: bool) {
        self.args.push(flag.into());
        self.args.push(path.to_str().unwrap().into());
        if bad {
            self.faults.push(path.to_str().unwrap().into());
            self.faults.push(flag.into());
        }
    }

    fn input(&mut self, flag: &str, which: Input, valid: &Path) {
        let f = fixtures();
        let (path, bad) = match which {
            Input::Valid => (valid.to_path_buf(), false),
            Input::Missing => (f.folder.join("no-such-file"), true),
            Input::Folder => (f.folder.clone(), true),
            Input::Garbage => (f.garbage.clone(), true),
        };
        self.path(flag, &path, bad);
    }

    /// Runs the case with OUT as the output folder; checks the outcome class.
    fn check(&self, out: &Path, valid_outputs: impl FnOnce()) -> Result<(), TestCaseError> {
        let before = listing(out);
        let o = Command::new(env!("CARGO_BIN_EXE_wgsl-gan"))
            .args(&self.args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        prop_assert!(
            !err.contains("panicked"),
            "{:?} panicked: {}",
            self.args,
            err
        );
        if self.faults.is_empty() {
            prop_assert!(o.status.success(), "{:?} failed: {}", self.args, err);
            valid_outputs();
        } else {
            prop_assert!(
                !o.status.success(),
                "{:?} succeeded; faults {:?}",
                self.args,
                self.faults
            );
            let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
            prop_assert_eq!(lines.len(), 1, "{:?}: {}", self.args, err);
            prop_assert!(
                self.faults.iter().any(|f| lines[0].contains(f.as_str())),
                "{:?}: the error names none of {:?}: {}",
                self.args,
                self.faults,
                lines[0]
            );
            prop_assert_eq!(
                listing(out),
                before,
                "{:?} changed the output folder",
                self.args
            );
        }
        Ok(())
    }
}

/// Every path under `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    out
}

/// A fresh output folder for one case (holding one folder that outputs may collide with).
fn case_dir(tag: &str, case: u64) -> PathBuf {
    let out = temp_dir(&format!("cli-prop-{tag}-{case}"));
    std::fs::create_dir_all(out.join("taken")).unwrap();
    out
}

fn decodes_as_png(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 16, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn sample_does_the_right_thing_or_names_the_fault(
        checkpoint in input(),
        count in prop::option::weighted(0.6, whole(1, 65_536, 1u64..10)),
        seed in prop::option::weighted(0.5, whole(0, u64::MAX, any::<u64>())),
        outputs in prop::collection::vec(dest(), 4),
        digit in prop::option::weighted(0.1, prop::sample::select(vec!["3", "all", "-1", "x"])),
        case in any::<u64>(),
    ) {
        let f = fixtures();
        let out = case_dir("sample", case);
        let mut c = Case::default();
        c.args.push("sample".into());
        c.input("--checkpoint", checkpoint, &f.checkpoint);
        if let Some(v) = &count {
            c.flag("--count", v);
        }
        if let Some(v) = &seed {
            c.flag("--seed", v);
        }
        if let Some(d) = digit {
            // The checkpoint is unconditional: any --digit is at fault.
            c.flag("--digit", &bad(d));
        }
        let flags = ["--png", "--idx", "--npy", "--noise-out"];
        let mut written: Vec<(&str, PathBuf)> = Vec::new();
        let mut previous: Option<PathBuf> = None;
        for (flag, d) in flags.iter().zip(&outputs) {
            let Some(d) = d else { continue };
            let fresh = out.join(format!("out{}", &flag[2..]));
            let (path, bad) = match d {
                Dest::Fresh => (fresh, false),
                Dest::MissingFolder => (out.join("missing").join("x"), true),
                Dest::IsAFolder => (out.join("taken"), true),
                Dest::Unwritable => (PathBuf::from("/proc/self/wgsl-gan-out"), true),
                Dest::SameAsPrevious => match &previous {
                    Some(p) => (p.clone(), true),
                    None => (fresh, false),
                },
            };
            c.path(flag, &path, bad);
            if !bad {
                written.push((flag, path.clone()));
            }
            previous = Some(path);
        }
        if written.is_empty() && outputs.iter().all(Option::is_none) {
            c.faults.push("--png".into());
        }
        let n: usize = count.as_ref().map_or(64, |v| v.text.parse().unwrap_or(0));
        let result = c.check(&out, || {
            for (flag, path) in &written {
                match *flag {
                    "--png" => assert!(decodes_as_png(path), "{}", path.display()),
                    "--idx" => {
                        let (read, _) = idx::read_images(path, usize::MAX).unwrap();
                        assert_eq!(read, n);
                    }
                    "--npy" => {
                        // float32 [n, 28, 28]: the header, then n * 784 values in [-1, 1].
                        let bytes = std::fs::read(path).unwrap();
                        let start = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
                        let header = String::from_utf8_lossy(&bytes[10..start]);
                        assert!(header.contains(&format!("'shape': ({n}, 28, 28)")), "{header}");
                        assert_eq!(bytes.len() - start, n * 784 * 4);
                        assert!(bytes[start..].chunks_exact(4).all(|c| {
                            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                            x.is_finite() && x.abs() <= 1.0
                        }));
                    }
                    _ => {
                        let bytes = std::fs::read(path).unwrap();
                        let (rows, _) = npy::parse_f32_2d(path, &bytes, 100).unwrap();
                        assert_eq!(rows, n);
                    }
                }
            }
        });
        let _ = std::fs::remove_dir_all(&out);
        result?;
    }

    #[test]
    fn eval_does_the_right_thing_or_names_the_fault(
        source in prop_oneof![
            4 => Just("idx40"), 3 => Just("checkpoint"),
            1 => prop::sample::select(vec!["idx-one", "idx-empty", "both", "neither"]),
        ],
        file in input(),
        count in prop::option::weighted(0.7, whole(2, 65_536, 2u64..30)),
        json in any::<bool>(),
        case in any::<u64>(),
    ) {
        let f = fixtures();
        let out = case_dir("eval", case);
        let mut c = Case::default();
        c.args.push("eval".into());
        match source {
            "checkpoint" => c.input("--checkpoint", file, &f.checkpoint),
            "both" => {
                c.input("--checkpoint", file, &f.checkpoint);
                c.path("--idx", &f.idx40, false);
                c.faults.extend(["--checkpoint".to_string(), "--idx".to_string()]);
            }
            "neither" => c.faults.push("--checkpoint".into()),
            "idx-one" => c.path("--idx", &f.idx_one, true),
            "idx-empty" => c.path("--idx", &f.idx_empty, true),
            _ => c.input("--idx", file, &f.idx40),
        }
        // A checkpoint without --count generates 2,000 images: kept to small counts here.
        let count = match (source, count) {
            ("checkpoint", None) => Some(good(16)),
            (_, count) => count,
        };
        if let Some(v) = &count {
            c.flag("--count", v);
        }
        if json {
            c.args.push("--json".into());
        }
        let result = c.check(&out, || {});
        prop_assert_eq!(listing(&out).len(), 1, "eval wrote into the folder");
        let _ = std::fs::remove_dir_all(&out);
        result?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 8, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn train_does_the_right_thing_or_names_the_fault(
        batch in prop_oneof![8 => Just(good(16)), 1 => prop::sample::select(vec!["1", "0", "-16", "33"]).prop_map(bad)],
        lr in float(2e-4, true, 0.0, 1.0),
        beta1 in float(0.5, false, 0.0, 1.0),
        max_steps in prop_oneof![8 => Just(good(1)), 1 => prop::sample::select(vec!["0", "-1", "99999999999"]).prop_map(bad)],
        epochs in prop::option::weighted(0.2, prop_oneof![Just(good(3)), Just(bad("0")), Just(bad("100001")), Just(bad("1e3"))]),
        every in prop::option::weighted(0.2, prop_oneof![Just(good(5)), Just(bad("0")), Just(bad("-5"))]),
        fid in prop_oneof![8 => Just(good(0)), 1 => prop::sample::select(vec!["1", "70000"]).prop_map(bad)],
        out_kind in prop_oneof![8 => Just("fresh"), 1 => prop::sample::select(vec!["file", "unwritable"])],
        data_ok in prop::bool::weighted(0.9),
        case in any::<u64>(),
    ) {
        let f = fixtures();
        let dir = case_dir("train", case);
        let mut c = Case::default();
        c.args.push("train".into());
        c.flag("--batch-size", &batch);
        c.flag("--lr", &lr);
        c.flag("--beta1", &beta1);
        c.flag("--max-steps", &max_steps);
        if let Some(v) = &epochs {
            c.flag("--epochs", v);
        }
        if let Some(v) = &every {
            c.flag("--log-every", v);
        }
        c.flag("--fid-samples", &fid);
        let garbage_copy = dir.join("a-file");
        std::fs::write(&garbage_copy, b"x").unwrap();
        let run = match out_kind {
            "fresh" => dir.join("run"),
            "file" => garbage_copy.join("run"),
            _ => PathBuf::from("/proc/self/wgsl-gan-run"),
        };
        c.path("--out", &run, out_kind != "fresh");
        match data_ok {
            true => c.path("--data-dir", &f.data, false),
            false => c.path("--data-dir", &f.folder, true),
        }
        // Batch 33 is refused only against this 32-image set, naming --batch-size.
        let result = c.check(&dir, || {
            let ckpt = checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
            assert_eq!(ckpt.meta["step"], "1");
            let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
            assert_eq!(metrics.lines().count(), 2, "{metrics}");
            assert!(decodes_as_png(&run.join("samples/final.png")));
        });
        let _ = std::fs::remove_dir_all(&dir);
        result?;
    }
}

/// The commands whose successful runs are long (bench, tune, train-classifier) or covered
/// elsewhere (plot, info): each invalid value is refused with one line naming its flag or file.
#[test]
fn the_other_commands_name_the_fault() {
    let f = fixtures();
    let missing = f.folder.join("no-such-file");
    let (m, folder, garbage) = (
        missing.to_str().unwrap(),
        f.folder.to_str().unwrap(),
        f.garbage.to_str().unwrap(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["bench", "--steps", "0"], "--steps"),
        (vec!["bench", "--steps", "-1"], "--steps"),
        (vec!["bench", "--steps", "nan"], "--steps"),
        (vec!["bench", "--warmup", "-1"], "--warmup"),
        (vec!["bench", "--warmup", "2000000"], "--warmup"),
        (vec!["bench", "--batch-size", "1"], "--batch-size"),
        (vec!["bench", "--batch-size", "0"], "--batch-size"),
        (vec!["bench", "--model", "gpt"], "--model"),
        (vec!["bench", "--data-dir", folder], folder),
        (vec!["tune", "--batch-size", "1"], "--batch-size"),
        (vec!["tune", "--batch-size", "5000"], "--batch-size"),
        (vec!["tune", "--steps", "20000"], "--steps"),
        (vec!["tune", "--steps", "-3"], "--steps"),
        (vec!["train-classifier", "--epochs", "0"], "--epochs"),
        (vec!["train-classifier", "--epochs", "-1"], "--epochs"),
        (vec!["train-classifier", "--epochs", "1001"], "--epochs"),
        (vec!["train-classifier", "--seed", "-7"], "--seed"),
        (vec!["train-classifier", "--data-dir", m], m),
        (vec!["plot", m], m),
        (vec!["plot", garbage], garbage),
        (vec!["plot", folder], folder),
        (
            vec!["info", "--adapter", "no-such-adapter"],
            "no-such-adapter",
        ),
        (vec!["sample", "--checkpoint", garbage, "--png"], "--png"),
        (vec!["eval", "--idx", garbage, "--count", "1e9"], "--count"),
        (vec!["train", "--epochs", "0", "--epochs", "1"], "--epochs"),
    ];
    for (args, names) in cases {
        let o = Command::new(env!("CARGO_BIN_EXE_wgsl-gan"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(
            lines[0].contains(names),
            "{args:?}: expected '{names}' in {}",
            lines[0]
        );
    }
}
