//! The examples a user copies, run as they are: built by `cargo test` next to the tests, each
//! run here and held to what its doc comment promises.

use std::path::PathBuf;
use std::process::Command;

/// target/<profile>/examples/NAME, beside this test's own binary in target/<profile>/deps. A
/// plain `cargo test` builds the examples; one run with `--test examples` alone does not.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the whole `cargo test` (it builds the examples) or `cargo build --examples` first",
        path.display()
    );
    path
}

#[test]
fn the_mnist_classifier_example_reaches_97_percent_on_the_test_set() {
    let o = Command::new(example("mnist_classifier")).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let accuracy: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy: "))
        .and_then(|a| a.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no test accuracy in: {out}"));
    assert!(accuracy >= 97.0, "test accuracy {accuracy}% < 97%: {out}");
}

#[test]
fn the_custom_gan_example_matches_its_cpu_run_and_draws() {
    // From an empty folder, as after `cargo install`: the built-in MNIST, the grid written here.
    let dir = std::env::temp_dir().join(format!("wgsl-gan-custom-gan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(example("custom_gan"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("step 3: GPU and CPU agree"), "{out}");
    let png = std::fs::read(dir.join("custom_gan.png")).unwrap();
    let reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    assert_eq!(
        (reader.info().width, reader.info().height),
        (8 * 28 + 9 * 2, 8 * 28 + 9 * 2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
