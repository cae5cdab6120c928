#![warn(missing_docs)]
//! wgsl-gan: a small GPU compute engine whose every kernel is a hand-written WGSL compute shader,
//! with a CPU reference for each, and a GAN trained on MNIST on top of it.
//!
//! The API, by layer (the names at the crate root are the ones a model needs):
//!
//! - [`gpu`]: the runtime: the [`Gpu`] context (adapter, limits, pipeline cache), GPU tensors,
//!   and [`gpu::ops`], one launcher per kernel, each returning a prepared dispatch
//! - [`cpu`]: the CPU reference of every launcher ([`cpu::ops`]), same names and arguments
//! - [`spec`]: kernel options and the shape rules both call; [`activation`]: the activations,
//!   declared once for Rust and WGSL
//! - [`nn`]: what models are written in: the [`Backend`] trait with its two backends
//!   ([`Recorder`] for the GPU, [`Cpu`]), layers ([`Linear`], [`Conv2d`], [`BatchNorm`]),
//!   parameter stores with Adam ([`ParamStore`]), the recorded [`Program`] and its [`Run`]
//! - [`data`]: MNIST-format datasets and the step -> batch [`Schedule`]; checkpoints
//!   ([`Checkpoint`], [`load_checkpoint`], [`save_checkpoint`]), image grids ([`write_grid`])
//!
//! The GAN, its trainer and the `wgsl-gan` commands are the program built on this API; their
//! modules are public for the program's own binary and tests, not part of the library.
//!
//! A layer on the GPU: ops are recorded once into a [`Program`], which then runs them as one
//! submit per run (examples/mnist_classifier.rs trains a classifier this way, and
//! examples/custom_gan.rs a GAN the program does not ship):
//!
//! ```
//! use wgsl_gan::{Activation, Backend, Gpu, Linear, ParamStore, Program, Recorder, Run, linear_specs};
//!
//! let gpu = Gpu::new(None)?; // the best adapter wgpu finds (lavapipe on a machine without a GPU)
//! let mut be = Recorder::new(&gpu); // records each op as a prepared GPU dispatch
//! let store = ParamStore::new(&mut be, linear_specs("fc", 784, 10))?;
//! store.initialize(&mut be, 0)?;
//! let fc = Linear::new(&be, &store, "fc", 784, 10)?;
//! let (x, y) = (be.zeros(&[64, 784])?, be.zeros(&[64, 10])?);
//! fc.forward(&mut be, &x, &y, Activation::Relu)?; // y = relu(x W^T + b)
//! be.input("x", &x);
//! be.output("y", &y);
//! let mut program = Program::new(&mut be);
//! program.write("x", &vec![0.5; 64 * 784])?;
//! let y = program.run_and_read(&Run::default(), "y")?;
//! assert!(y.len() == 640 && y.iter().all(|v| *v >= 0.0));
//! # Ok::<(), wgsl_gan::Error>(())
//! ```

pub mod activation;
pub mod cpu;
pub mod data;
pub mod error;
pub mod gpu;
pub mod nn;
pub mod rng;
pub mod spec;

// The wgsl-gan program built on the engine: the GAN, its trainer and commands, the evaluation
// classifier and the file formats. Public only so that the program's binary, tests and benches
// reach them; not part of the library's API (hidden from its docs, no stability promise).
#[doc(hidden)]
pub mod eval;
#[doc(hidden)]
pub mod gan;
#[doc(hidden)]
pub mod io;
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};

// What a program built on the engine needs, by name (examples/ use only these).
pub use activation::{Activation, Saved};
pub use data::{Dataset, PIXELS, Schedule, load_dataset};
pub use gpu::Gpu;
pub use io::assets::default_path as asset_path;
pub use io::checkpoint::{Checkpoint, load as load_checkpoint, save as save_checkpoint};
pub use io::image::write_grid;
pub use nn::NamedValues;
pub use nn::layers::{Backprop, conv_specs, linear_specs};
pub use nn::{
    Backend, BatchNorm, BnMode, Conv2d, Cpu, Linear, ParamSpec, ParamStore, Program, Recorder, Run,
    Stream,
};
pub use spec::{AdamSpec, ConvGeom};
