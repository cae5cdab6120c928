//! The thin runtime over wgpu: context, tensors, pipelines and one launcher per kernel.

mod context;
mod kernel;
pub mod ops;
mod tensor;
pub mod timing;
pub mod tune;

pub use context::{
    ADAPTER_ENV, Gpu, KERNELS_ENV, KernelStyle, check_limits, choose, describe, enumerate,
    map_and_read,
};
pub use kernel::{COMMON, Dispatch, PipelineKey, Shader};
pub use tensor::{Readback, Tensor, Words};
