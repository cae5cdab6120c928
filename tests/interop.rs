//! Models handed to Python: `sample --noise-out` / `--noise` / `--npy` (.npy files), checked
//! against a NumPy forward of the article's generator read straight from the checkpoint
//! (tests/numpy_forward.py; needs python3 with numpy, which `.ci/run` installs).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{stderr, temp_dir, training_set};
use wgsl_gan::io::npy;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgsl-gan"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Trains 3 steps at batch 16 on `data` into `out` (with `extra` flags) and returns the
/// checkpoint's path.
fn train_briefly(data: &Path, out: &Path, extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["train", "--data-dir", s(data), "--out", s(out)];
    args.extend([
        "--batch-size",
        "16",
        "--max-steps",
        "3",
        "--fid-samples",
        "0",
    ]);
    args.extend(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    out.join("checkpoint.safetensors")
}

#[test]
fn the_generator_matches_a_numpy_forward_from_the_checkpoint_and_noise_files_round_trip() {
    let dir = temp_dir("interop");
    let data = training_set(&dir, 64);
    let out = dir.join("run");
    let ckpt = train_briefly(&data, &out, &[]);
    // Stopped mid-epoch: a final grid ends the (one-frame) animation.
    assert!(out.join("samples/final.png").is_file() && out.join("samples/progress.png").is_file());
    let (z, a, b) = (dir.join("z.npy"), dir.join("a.npy"), dir.join("b.npy"));
    // 37 images: not a multiple of anything the sampler chunks by.
    let o = run(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--count",
        "37",
        "--seed",
        "5",
        "--noise-out",
        s(&z),
        "--npy",
        s(&a),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (rows, values) = npy::read_f32_2d(&z, 100).unwrap();
    assert_eq!((rows, values.len()), (37, 3700));
    // The same noise read back gives the same images, bit for bit.
    let o = run(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--noise",
        s(&z),
        "--npy",
        s(&b),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // NumPy, from the checkpoint file alone, computes the same images.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/numpy_forward.py");
    let py = Command::new("python3")
        .args([script, s(&ckpt), s(&z), s(&a)])
        .output()
        .expect("python3 is needed for this test (with numpy: apt-get install python3-numpy)");
    assert!(
        py.status.success(),
        "{}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
    assert!(String::from_utf8_lossy(&py.stdout).contains("37 images"));

    // --interpolate: 8 rows of 10 steps, each row ending where the next begins.
    let (walk, grid) = (dir.join("walk.npy"), dir.join("walk.png"));
    let o = run(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--interpolate",
        "--png",
        s(&grid),
        "--noise-out",
        s(&walk),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (rows, walk_z) = npy::read_f32_2d(&walk, 100).unwrap();
    assert_eq!(rows, 80);
    let v = |i: usize| &walk_z[i * 100..(i + 1) * 100];
    for r in 0..7 {
        let (end, start) = (v(r * 10 + 9), v((r + 1) * 10));
        assert!(
            end.iter().zip(start).all(|(a, b)| (a - b).abs() < 1e-5),
            "row {r}"
        );
    }
    for i in 0..80 {
        let norm = v(i).iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((7.0..13.0).contains(&norm), "latent {i} has norm {norm}");
    }
    let o = run(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--interpolate",
        "--count",
        "4",
        "--png",
        s(&grid),
    ]);
    assert!(
        stderr(&o).contains("drop --noise and --count"),
        "{}",
        stderr(&o)
    );

    // A count that contradicts the noise file is refused.
    let o = run(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--noise",
        s(&z),
        "--count",
        "5",
        "--npy",
        s(&b),
    ]);
    assert!(stderr(&o).contains("--noise holds 37"), "{}", stderr(&o));
    // Noise files that are not float32 [N, 100] in C order: one error naming the file.
    let bad = dir.join("bad.npy");
    let header = |descr: &str, order: &str, shape: &str| {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((h.len() as u16).to_le_bytes());
        bytes.extend(h.as_bytes());
        bytes
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            header("<f8", "False", "(2, 100)"),
            "expected little-endian float32",
        ),
        (header("<f4", "True", "(2, 100)"), "Fortran order"),
        (header("<f4", "False", "(2, 99)"), "expected (N, 100)"),
        (header("<f4", "False", "(200,)"), "expected (N, 100)"),
        (header("<f4", "False", "(2, 100)"), "data bytes"),
        (b"PK\x03\x04 a zip file".to_vec(), "no NumPy magic"),
        (
            {
                let mut b = header("<f4", "False", "(1, 100)");
                b.extend(f32::NAN.to_le_bytes());
                b.extend([0u8; 396]);
                b
            },
            "not finite",
        ),
    ];
    for (bytes, want) in cases {
        std::fs::write(&bad, &bytes).unwrap();
        let o = run(&[
            "sample",
            "--checkpoint",
            s(&ckpt),
            "--noise",
            s(&bad),
            "--npy",
            s(&b),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{want}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.npy"),
            "{want}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A class-conditional checkpoint: the generator with [z | one_hot(y)] in NumPy, for a chosen
/// digit and for the default 0..9 in turn.
#[test]
fn the_conditional_generator_matches_a_numpy_forward() {
    let dir = temp_dir("interop-conditional");
    let data = training_set(&dir, 64);
    let ckpt = train_briefly(&data, &dir.join("run"), &["--conditional"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/numpy_forward.py");
    for digit in [Some("4"), None] {
        let (z, a) = (dir.join("z.npy"), dir.join("a.npy"));
        let mut args = vec!["sample", "--checkpoint", s(&ckpt), "--count", "23"];
        args.extend(["--noise-out", s(&z), "--npy", s(&a)]);
        if let Some(d) = digit {
            args.extend(["--digit", d]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut py = Command::new("python3");
        py.args([script, s(&ckpt), s(&z), s(&a)]);
        if let Some(d) = digit {
            py.arg(d);
        }
        let py = py.output().expect("python3 with numpy");
        assert!(
            py.status.success(),
            "digit {digit:?}: {}{}",
            String::from_utf8_lossy(&py.stdout),
            String::from_utf8_lossy(&py.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
