//! CPU references: every GPU launcher in `gpu::ops` has a twin in [`ops`] with the same name,
//! arguments and shape rules, written as plain loops (accumulating in f64 where it matters).

pub mod ops;
mod tensor;

pub use tensor::Tensor;
