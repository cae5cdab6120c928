//! A GPU tensor: an f32 storage buffer (or a view into one) and its shape.

use crate::error::{Error, Result, ensure};
use crate::gpu::context::rgba32_texture;
use crate::gpu::{Gpu, KernelStyle, map_and_read_async, ready_now};

#[derive(Clone, Debug)]
/// A GPU tensor: a view of `shape` into an f32 storage buffer (clones share the buffer), and
/// optionally its texture twin (see [`Tensor::zeros_with_twin`]).
pub struct Tensor {
    buffer: wgpu::Buffer,
    /// Offset of the first element, in elements.
    offset: usize,
    shape: Vec<usize>,
    twin: Option<wgpu::TextureView>,
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
            twin: None,
        })
    }

    /// [`Tensor::zeros`], with a texture twin where it pays: on CPU-style adapters (llvmpipe),
    /// where a texel fetch is a vectorised gather and a storage load a loop over the SIMD lanes,
    /// for an activation [rows.., C] with C in fours that fits a texture. The twin is an
    /// rgba32float texture of C/4 x rows texels, texel (q, row) = elements row * C + 4q .. + 3.
    /// The launchers of [`crate::gpu::ops`] that write activations (products, convolutions,
    /// im2col and col2im, batch norm, activations, the elementwise ops) keep the twin equal to
    /// the buffer, by writing both or by a copy after the kernel; those that read activations
    /// (packed im2col, col2im's activation derivative, batch norm, bias-gradient sums, the
    /// packing of a product's operand) read the twin; where the operand is the tensor as stored,
    /// the twin is the packed operand. Such a tensor is written by kernels only (no
    /// [`Tensor::write`]) and cannot be viewed at an offset or reshaped to another C.
    pub fn zeros_with_twin(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let mut t = Tensor::zeros(gpu, shape)?;
        let c = shape.last().copied().unwrap_or(0);
        let max = gpu.limits.max_texture_dimension_2d as usize;
        let pays = gpu.style == KernelStyle::Cpu && c > 0 && c.is_multiple_of(4);
        if pays && t.len() / c <= max && c / 4 <= max {
            let rows = t.len() / c;
            let label = format!("texture twin of {shape:?}");
            t.twin = Some(rgba32_texture(
                &gpu.device,
                (c / 4) as u32,
                rows as u32,
                &label,
            ));
        }
        Ok(t)
    }

    /// The texture twin (see [`Tensor::zeros_with_twin`]), if the tensor has one.
    pub fn twin(&self) -> Option<&wgpu::TextureView> {
        self.twin.as_ref()
    }

    /// The texture twin's values in the buffer's order, or `None` without a twin: a test hook
    /// (builds with the `test-hooks` feature), to check that kernels keep the twin equal to the
    /// buffer.
    #[cfg(feature = "test-hooks")]
    pub fn read_twin(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        let Some(view) = &self.twin else {
            return Ok(None);
        };
        let texture = view.texture();
        let (width, rows) = (texture.width() as usize, texture.height() as usize);
        // Rows of a texture copy are padded to 256 bytes.
        let padded = (width * 16).div_ceil(256) * 256;
        let staging = gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("texture twin readback"),
            size: (padded * rows) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded as u32),
                    rows_per_image: None,
                },
            },
            texture.size(),
        );
        gpu.queue.submit([encoder.finish()]);
        let bytes = crate::gpu::map_and_read(gpu, &staging, (padded * rows) as u64)?;
        let values = bytes
            .chunks(padded)
            .flat_map(|row| bytemuck::pod_collect_to_vec::<u8, f32>(&row[..width * 16]))
            .collect();
        Ok(Some(values))
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
        ensure(
            self.twin.is_none() || shape.last() == self.shape.last(),
            || {
                format!(
                    "cannot reshape {:?} to {shape:?}: its texture twin has {:?} channels",
                    self.shape,
                    self.shape.last()
                )
            },
        )?;
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// A view of `shape` starting `offset` elements into this tensor; the offset must respect the
    /// adapter's storage offset alignment (see `Gpu::view_alignment`).
    pub fn view(&self, gpu: &Gpu, offset: usize, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        ensure(self.twin.is_none(), || {
            format!("{:?} has a texture twin and cannot be viewed", self.shape)
        })?;
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
            twin: None,
        })
    }

    /// Queues a write of `data` (as many values as the tensor has), seen by the next submit.
    pub fn write(&self, gpu: &Gpu, data: &[f32]) -> Result<()> {
        ensure(data.len() == self.len(), || {
            format!("writing {} values into {:?}", data.len(), self.shape)
        })?;
        ensure(self.twin.is_none(), || {
            format!("{:?} has a texture twin: kernels write it", self.shape)
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
