//! MNIST-format datasets: IDX files, gzipped or not, validated before use.

pub mod idx;
mod schedule;

/// MNIST images are 28x28, one channel.
pub const SIDE: usize = 28;
/// Pixels of one image (784).
pub const PIXELS: usize = SIDE * SIDE;
/// The most images one command generates or scores (`sample`, `eval`).
pub const MAX_IMAGES: usize = 65_536;

pub use idx::{Dataset, encode_images, load_dataset};
pub use schedule::{Schedule, StepPlace};

/// The epoch's image order: a shuffle seeded by (seed, epoch), so resuming needs no RNG state.
pub fn epoch_order(seed: u64, epoch: u64, count: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..count as u32).collect();
    crate::rng::SplitMix64::new(seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .shuffle(&mut order);
    order
}
