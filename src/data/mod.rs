//! MNIST-format datasets: IDX files, gzipped or not, validated before use.

pub mod idx;

pub use idx::{Dataset, load_dataset, write_images};
