//! The article's GAN: model, objective, training step, GPU trainer, training loop, sampling,
//! checkpoints, the throughput benchmark and plan tuning.

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod checkpoint;
pub mod dcgan;
pub mod diagnosis;
pub mod ema;
#[cfg(not(target_arch = "wasm32"))]
pub mod export;
pub mod generator;
pub mod model;
pub mod objective;
pub mod options;
pub mod sample;
pub mod step;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod trainer;
pub mod tune;
