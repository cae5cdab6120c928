//! A GPU tensor: an f32 storage buffer (or a view into one) and its shape.

use crate::error::{Error, Result, ensure};
use crate::gpu::{Gpu, map_and_read_async, ready_now};

#[derive(Clone, Debug)]
/// A GPU tensor: a view of `shape` into an f32 storage buffer (clones share the buffer).
pub struct Tensor {
    buffer: wgpu::Buffer,
    /// Offset of the first element, in elements.
    offset: usize,
    shape: Vec<usize>,
}

impl Tensor {
    /// A new buffer of `shape`, all zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let buffer = gpu.storage_buffer((n * 4) as u64, &format!("tensor {shape:?}"))?;
        Ok(Tensor {
            buffer,
            offset: 0,
            shape: shape.to_vec(),
        })
    }

    /// A new buffer of `shape` holding `data` (queued; visible to the next submit).
    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::zeros(gpu, shape)?;
        t.write(gpu, data)?;
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

    /// The storage buffer the tensor views.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    fn byte_offset(&self) -> u64 {
        (self.offset * 4) as u64
    }

    /// The tensor's range of its buffer, for a bind group.
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.byte_offset(),
            size: wgpu::BufferSize::new((self.len().max(1) * 4) as u64),
        })
    }

    /// The same elements under another shape of equal size.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        ensure(shape.iter().product::<usize>() == self.len(), || {
            format!("cannot reshape {:?} to {shape:?}", self.shape)
        })?;
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// A view of `shape` starting `offset` elements into this tensor; the offset must respect the
    /// adapter's storage offset alignment (see `Gpu::view_alignment`).
    pub fn view(&self, gpu: &Gpu, offset: usize, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        ensure(offset + n <= self.len(), || {
            format!("view {offset}+{shape:?} outside {:?}", self.shape)
        })?;
        ensure(
            (self.offset + offset).is_multiple_of(gpu.view_alignment()),
            || {
                format!(
                    "view offset {offset} is not aligned to {} elements",
                    gpu.view_alignment()
                )
            },
        )?;
        Ok(Tensor {
            buffer: self.buffer.clone(),
            offset: self.offset + offset,
            shape: shape.to_vec(),
        })
    }

    /// Queues a write of `data` (as many values as the tensor has), seen by the next submit.
    pub fn write(&self, gpu: &Gpu, data: &[f32]) -> Result<()> {
        ensure(data.len() == self.len(), || {
            format!("writing {} values into {:?}", data.len(), self.shape)
        })?;
        gpu.queue
            .write_buffer(&self.buffer, self.byte_offset(), bytemuck::cast_slice(data));
        Ok(())
    }

    /// Copies the tensor back and waits for it (native only; the browser uses `read_async`).
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        ready_now(self.read_async(gpu))
    }

    /// Copies the tensor back once the work submitted so far has run.
    pub async fn read_async(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let bytes = gpu
            .read_bytes_async(&self.buffer, self.byte_offset(), (self.len() * 4) as u64)
            .await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

/// A u32 storage buffer (indices, packed bytes) with its length in words.
#[derive(Clone, Debug)]
pub struct Words {
    /// The storage buffer.
    pub buffer: wgpu::Buffer,
    /// Its length in u32 words.
    pub len: usize,
}

impl Words {
    /// A new buffer holding `data`.
    pub fn from_slice(gpu: &Gpu, data: &[u32]) -> Result<Words> {
        let buffer = gpu.storage_buffer((data.len() * 4) as u64, "u32 data")?;
        gpu.queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
        Ok(Words {
            buffer,
            len: data.len(),
        })
    }

    /// Queues a write of `data` (as many words as the buffer has).
    pub fn write(&self, gpu: &Gpu, data: &[u32]) -> Result<()> {
        if data.len() != self.len {
            return Err(Error::Shape(format!(
                "writing {} words into a buffer of {}",
                data.len(),
                self.len
            )));
        }
        gpu.queue
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }
}

/// A staging buffer for reading one tensor back, made once so that reads inside a training loop
/// allocate nothing: record the copy into a command encoder, submit, then [`Readback::read`].
pub struct Readback {
    tensor: Tensor,
    staging: wgpu::Buffer,
}

impl Readback {
    /// A staging buffer for `tensor`.
    pub fn new(gpu: &Gpu, tensor: &Tensor) -> Readback {
        let staging = gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (tensor.len().max(1) * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Readback {
            tensor: tensor.clone(),
            staging,
        }
    }

    /// Copies the tensor into the staging buffer when the encoder's work runs.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let t = &self.tensor;
        encoder.copy_buffer_to_buffer(
            &t.buffer,
            t.byte_offset(),
            &self.staging,
            0,
            (t.len() * 4) as u64,
        );
    }

    /// Waits for the submitted copy and returns the values.
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        ready_now(self.read_async(gpu))
    }

    /// Waits for the submitted copy (without blocking, for the browser) and returns the values.
    pub async fn read_async(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let bytes = map_and_read_async(gpu, &self.staging, (self.tensor.len() * 4) as u64).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
