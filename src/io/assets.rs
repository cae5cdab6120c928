//! The data the defaults need, compiled into the binary: the four gzipped MNIST files, the
//! evaluation classifier and the class-conditional generator `sample` draws with by default. A
//! binary from `cargo install` then trains, scores and draws from any folder.
//! They live under the path `<built-in>/`, which every reader here resolves before the file
//! system; `--data-dir` and `--classifier` point elsewhere.

use std::path::{Path, PathBuf};

/// The folder name of the built-in files, as paths and messages show it.
pub const BUILT_IN: &str = "<built-in>";

const FILES: &[(&str, &[u8])] = &[
    (
        "mnist/train-images-idx3-ubyte.gz",
        include_bytes!("../../assets/mnist/train-images-idx3-ubyte.gz"),
    ),
    (
        "mnist/train-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/mnist/train-labels-idx1-ubyte.gz"),
    ),
    (
        "mnist/t10k-images-idx3-ubyte.gz",
        include_bytes!("../../assets/mnist/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "mnist/t10k-labels-idx1-ubyte.gz",
        include_bytes!("../../assets/mnist/t10k-labels-idx1-ubyte.gz"),
    ),
    (
        "mnist-classifier.safetensors",
        include_bytes!("../../assets/mnist-classifier.safetensors"),
    ),
    (
        "generator.safetensors",
        include_bytes!("../../assets/generator.safetensors"),
    ),
];

/// `assets/NAME` when the current folder has it (a checkout, where `train-classifier` may have
/// rebuilt it), else the built-in copy.
pub fn default_path(name: &str) -> PathBuf {
    let local = Path::new("assets").join(name);
    if local.exists() {
        local
    } else {
        Path::new(BUILT_IN).join(name)
    }
}

/// The bytes of a built-in file, if `path` names one.
pub fn built_in(path: &Path) -> Option<&'static [u8]> {
    let rest = path.strip_prefix(BUILT_IN).ok()?;
    FILES
        .iter()
        .find(|(name, _)| Path::new(name) == rest)
        .map(|(_, bytes)| *bytes)
}

/// Whether `path` is a built-in file or a file on disk.
pub fn is_file(path: &Path) -> bool {
    built_in(path).is_some() || path.is_file()
}

/// The bytes at `path`: built in, or read from disk.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    match built_in(path) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => std::fs::read(path),
    }
}
