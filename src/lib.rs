//! wgsl-gan: a small GPU compute engine whose every kernel is a hand-written WGSL compute shader,
//! with a CPU reference for each, and a GAN trained on MNIST on top of it.
//!
//! - [`gpu`]: the runtime (adapter, tensors, pipelines, one launcher per kernel)
//! - [`cpu`]: the CPU reference of every launcher, same names and shapes
//! - [`spec`]: kernel options and shape rules shared by both
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

// What a program built on the engine needs, by name (examples/ use only these).
pub use data::{Dataset, PIXELS, Schedule, load_dataset};
pub use gpu::Gpu;
pub use io::assets::default_path as asset_path;
pub use io::image::write_grid;
pub use nn::layers::{Backprop, conv_specs, linear_specs};
pub use nn::{
    Backend, BatchNorm, BnMode, Conv2d, Cpu, Linear, ParamSpec, ParamStore, Program, Recorder, Run,
    Stream,
};
pub use spec::{Activation, AdamSpec, ConvGeom};
