//! wgsl-gan: a small GPU compute engine whose every kernel is a hand-written WGSL compute shader,
//! with a CPU reference for each, and a GAN trained on MNIST on top of it.
//!
//! - [`gpu`]: the runtime (adapter, tensors, pipelines, one launcher per kernel)
//! - [`cpu`]: the CPU reference of every launcher, same names and shapes
//! - [`spec`]: kernel options and shape rules shared by both

pub mod cpu;
pub mod data;
pub mod error;
pub mod eval;
pub mod gan;
pub mod gpu;
pub mod io;
pub mod nn;
pub mod rng;
pub mod spec;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
