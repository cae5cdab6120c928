//! The CPU twin of `gpu::Tensor`: shared storage (so views and parameter stores behave as on the
//! GPU), an element offset and a shape.

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::{Result, ensure};

#[derive(Clone, Debug)]
/// A CPU tensor: a shared, reference-counted f32 buffer with a shape; views and reshapes
/// share the buffer, as GPU tensors share theirs.
pub struct Tensor {
    data: Rc<RefCell<Vec<f32>>>,
    offset: usize,
    shape: Vec<usize>,
}

impl Tensor {
    /// A tensor of `shape`, all zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor {
            data: Rc::new(RefCell::new(vec![0.0; shape.iter().product()])),
            offset: 0,
            shape: shape.to_vec(),
        }
    }

    /// A tensor of `shape` holding `data` (whose length must be the shape's product).
    pub fn from_slice(data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::zeros(shape);
        t.write(data)?;
        Ok(t)
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the elements (kernels read their inputs this way, so outputs may alias inputs).
    pub fn to_vec(&self) -> Vec<f32> {
        self.data.borrow()[self.offset..self.offset + self.len()].to_vec()
    }

    /// Overwrites the elements with `values` (as many as the tensor has).
    pub fn write(&self, values: &[f32]) -> Result<()> {
        ensure(values.len() == self.len(), || {
            format!("writing {} values into {:?}", values.len(), self.shape)
        })?;
        self.data.borrow_mut()[self.offset..self.offset + values.len()].copy_from_slice(values);
        Ok(())
    }

    /// Applies `f` to the elements in place.
    pub fn update(&self, f: impl FnOnce(&mut [f32])) {
        let n = self.len();
        f(&mut self.data.borrow_mut()[self.offset..self.offset + n]);
    }

    /// The same elements under another shape of as many elements.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        ensure(shape.iter().product::<usize>() == self.len(), || {
            format!("cannot reshape {:?} to {shape:?}", self.shape)
        })?;
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// A view of `shape`'s product elements starting at element `offset`, sharing the buffer.
    pub fn view(&self, offset: usize, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        ensure(offset + n <= self.len(), || {
            format!("view {offset}+{shape:?} outside {:?}", self.shape)
        })?;
        Ok(Tensor {
            data: self.data.clone(),
            offset: self.offset + offset,
            shape: shape.to_vec(),
        })
    }
}
