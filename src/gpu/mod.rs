//! The thin runtime over wgpu: context, tensors, pipelines and one launcher per kernel.

mod context;
mod kernel;
pub mod ops;
pub mod plan;
mod tensor;
pub mod timing;
pub mod tune;

#[cfg(not(target_arch = "wasm32"))]
pub use context::enumerate;
pub use context::{
    ADAPTER_ENV, Gpu, KERNELS_ENV, KernelStyle, check_limits, choose, describe, map_and_read,
    map_and_read_async, ready_now,
};
pub use kernel::{COMMON, Dispatch, PipelineKey, Shader};
pub use tensor::{Readback, Tensor, Words};
