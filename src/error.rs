//! One error type for the whole crate: every failure becomes one clear message and a non-zero exit.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
/// Every failure the engine and the program report; `Display` gives the one-line message.
pub enum Error {
    /// No adapter, or none matching the user's choice.
    NoAdapter(String),
    /// The GPU reported an error: validation, out of memory, device lost.
    Gpu(String),
    /// Tensor shapes do not fit the kernel.
    Shape(String),
    /// A data or checkpoint file is missing, unreadable or malformed.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Bad command-line arguments or configuration.
    Invalid(String),
    /// Training produced NaN or infinity.
    NonFinite(String),
    /// Stopped by the user (Ctrl-C) after writing a checkpoint.
    Interrupted,
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A problem with the file at `path`.
    pub fn file(path: &Path, problem: impl Into<String>) -> Error {
        Error::File {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter(m) => write!(f, "no usable GPU adapter: {m}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::Shape(m) => write!(f, "shape mismatch: {m}"),
            Error::File { path, problem } => write!(f, "{}: {problem}", path.display()),
            Error::Invalid(m) => write!(f, "{m}"),
            Error::NonFinite(m) => write!(f, "training diverged: {m}"),
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Error {}

/// A flag's value in `lo..=hi`, else the error naming the flag and the value given.
pub fn check_range<T: PartialOrd + fmt::Display>(flag: &str, value: T, lo: T, hi: T) -> Result<()> {
    if lo <= value && value <= hi {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{flag} must be between {lo} and {hi}, got {value}"
        )))
    }
}

/// Shape checks shared by the GPU launchers and the CPU references.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Shape(msg()))
    }
}
