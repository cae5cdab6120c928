//! The operations layers are written in, implemented twice: [`Recorder`] prepares GPU dispatches
//! (once, to be recorded every step) and [`Cpu`] runs the CPU references at once. The networks and
//! the training step are written once, generic over the backend, so the CPU run is a reference for
//! the GPU run kernel by kernel.

use crate::cpu;
use crate::error::Result;
use crate::gpu::{self, Dispatch, Gpu, ops};
use crate::spec::{Activation, AdamSpec, ConvGeom, MatmulSpec, ParamGrads};

pub trait Backend {
    type Tensor: Clone;
    /// u32 data: the dataset's packed bytes and the epoch's index order.
    type Words;

    fn zeros(&mut self, shape: &[usize]) -> Result<Self::Tensor>;
    fn words(&mut self, data: &[u32]) -> Result<Self::Words>;
    fn write(&mut self, t: &Self::Tensor, data: &[f32]) -> Result<()>;
    fn write_words(&mut self, w: &Self::Words, data: &[u32]) -> Result<()>;
    fn read(&mut self, t: &Self::Tensor) -> Result<Vec<f32>>;
    fn view(&self, t: &Self::Tensor, offset: usize, shape: &[usize]) -> Result<Self::Tensor>;
    fn reshape(&self, t: &Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;
    /// Alignment, in elements, of views into a buffer.
    fn alignment(&self) -> usize;

    fn matmul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        c: &Self::Tensor,
        spec: MatmulSpec,
    ) -> Result<()>;
    fn im2col(&mut self, x: &Self::Tensor, cols: &Self::Tensor, geom: ConvGeom) -> Result<()>;
    fn col2im(
        &mut self,
        dcols: &Self::Tensor,
        dx: &Self::Tensor,
        geom: ConvGeom,
        through: Option<(&Self::Tensor, Activation)>,
    ) -> Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_stats(
        &mut self,
        x: &Self::Tensor,
        mean: &Self::Tensor,
        invstd: &Self::Tensor,
        running_mean: &Self::Tensor,
        running_var: &Self::Tensor,
        momentum: f32,
        eps: f32,
        update_running: bool,
    ) -> Result<()>;
    fn batch_norm_use_running(
        &mut self,
        running_mean: &Self::Tensor,
        running_var: &Self::Tensor,
        mean: &Self::Tensor,
        invstd: &Self::Tensor,
        eps: f32,
    ) -> Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_apply(
        &mut self,
        x: &Self::Tensor,
        mean: &Self::Tensor,
        invstd: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        y: &Self::Tensor,
        act: Activation,
    ) -> Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward(
        &mut self,
        x: &Self::Tensor,
        mean: &Self::Tensor,
        invstd: &Self::Tensor,
        gamma: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &Self::Tensor,
        dgamma: &Self::Tensor,
        dbeta: &Self::Tensor,
        grads: ParamGrads,
        after: Option<(&Self::Tensor, Activation)>,
        before: Activation,
    ) -> Result<()>;
    fn activation_backward(
        &mut self,
        y: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &Self::Tensor,
        act: Activation,
    ) -> Result<()>;
    fn bce_with_logits(
        &mut self,
        logits: &Self::Tensor,
        grad: &Self::Tensor,
        stats: &Self::Tensor,
        slot: usize,
        target: f32,
        scale: f32,
    ) -> Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn softmax_cross_entropy(
        &mut self,
        logits: &Self::Tensor,
        labels: &Self::Tensor,
        grad: &Self::Tensor,
        stats: &Self::Tensor,
        slot: usize,
        scale: f32,
    ) -> Result<()>;
    fn sum_over_rows(
        &mut self,
        x: &Self::Tensor,
        out: &Self::Tensor,
        accumulate: bool,
    ) -> Result<()>;
    fn fill(&mut self, dst: &Self::Tensor, value: f32) -> Result<()>;
    fn add_bias(&mut self, x: &Self::Tensor, bias: &Self::Tensor) -> Result<()>;
    fn activation_forward(
        &mut self,
        x: &Self::Tensor,
        y: &Self::Tensor,
        act: Activation,
    ) -> Result<()>;
    // The three operations whose parameters change every step (see `Recorder::dynamic`).
    fn randn(&mut self, dst: &Self::Tensor, seed: u64, stream: u32) -> Result<()>;
    fn gather_batch(
        &mut self,
        images: &Self::Words,
        order: &Self::Words,
        dst: &Self::Tensor,
        offset: usize,
    ) -> Result<()>;
    fn gather_labels(
        &mut self,
        labels: &Self::Words,
        order: &Self::Words,
        dst: &Self::Tensor,
        offset: usize,
    ) -> Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn adam(
        &mut self,
        params: &Self::Tensor,
        grads: &Self::Tensor,
        m: &Self::Tensor,
        v: &Self::Tensor,
        spec: AdamSpec,
        t: u64,
    ) -> Result<()>;
}

/// Noise streams a training step draws (stream = NOISE_STREAMS_PER_STEP * step + k).
pub const NOISE_STREAMS_PER_STEP: u32 = 2;

/// A recorded dispatch whose parameters change every step, as recorded for step 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dynamic {
    Randn { n: usize, seed: u64, stream: u32 },
    Gather { batch: usize, pixels: usize },
    Adam { n: usize, spec: AdamSpec },
}

impl Dynamic {
    /// The uniform words for training step `step` (0-based) whose batch starts at `offset`.
    pub fn params_at(&self, step: u64, offset: usize) -> Vec<u32> {
        match *self {
            Dynamic::Randn { n, seed, stream } => ops::randn_params(
                n,
                seed,
                stream.wrapping_add(NOISE_STREAMS_PER_STEP.wrapping_mul(step as u32)),
            ),
            Dynamic::Gather { batch, pixels } => ops::gather_params(batch, pixels, offset),
            Dynamic::Adam { n, spec } => ops::adam_params(n, spec, step + 1),
        }
    }
}

/// GPU backend: every operation becomes a prepared [`Dispatch`], appended in order.
pub struct Recorder<'g> {
    pub gpu: &'g Gpu,
    pub dispatches: Vec<Dispatch>,
    /// (index in `dispatches`, kind) of every dispatch whose parameters change per step.
    pub dynamic: Vec<(usize, Dynamic)>,
}

impl<'g> Recorder<'g> {
    pub fn new(gpu: &'g Gpu) -> Recorder<'g> {
        Recorder {
            gpu,
            dispatches: Vec::new(),
            dynamic: Vec::new(),
        }
    }

    /// Hands over what was recorded so far.
    pub fn take(&mut self) -> (Vec<Dispatch>, Vec<(usize, Dynamic)>) {
        (
            std::mem::take(&mut self.dispatches),
            std::mem::take(&mut self.dynamic),
        )
    }

    fn push(&mut self, d: Result<Dispatch>) -> Result<()> {
        self.dispatches.push(d?);
        Ok(())
    }

    fn push_dynamic(&mut self, d: Result<Dispatch>, kind: Dynamic) -> Result<()> {
        self.dynamic.push((self.dispatches.len(), kind));
        self.push(d)
    }
}

impl Backend for Recorder<'_> {
    type Tensor = gpu::Tensor;
    type Words = gpu::Words;

    fn zeros(&mut self, shape: &[usize]) -> Result<gpu::Tensor> {
        gpu::Tensor::zeros(self.gpu, shape)
    }
    fn words(&mut self, data: &[u32]) -> Result<gpu::Words> {
        gpu::Words::from_slice(self.gpu, data)
    }
    fn write(&mut self, t: &gpu::Tensor, data: &[f32]) -> Result<()> {
        t.write(self.gpu, data)
    }
    fn write_words(&mut self, w: &gpu::Words, data: &[u32]) -> Result<()> {
        w.write(self.gpu, data)
    }
    fn read(&mut self, t: &gpu::Tensor) -> Result<Vec<f32>> {
        t.read(self.gpu)
    }
    fn view(&self, t: &gpu::Tensor, offset: usize, shape: &[usize]) -> Result<gpu::Tensor> {
        t.view(self.gpu, offset, shape)
    }
    fn reshape(&self, t: &gpu::Tensor, shape: &[usize]) -> Result<gpu::Tensor> {
        t.reshape(shape)
    }
    fn alignment(&self) -> usize {
        self.gpu.view_alignment()
    }
    fn matmul(
        &mut self,
        a: &gpu::Tensor,
        b: &gpu::Tensor,
        bias: Option<&gpu::Tensor>,
        c: &gpu::Tensor,
        spec: MatmulSpec,
    ) -> Result<()> {
        let d = ops::matmul(self.gpu, a, b, bias, c, spec);
        self.push(d)
    }
    fn im2col(&mut self, x: &gpu::Tensor, cols: &gpu::Tensor, geom: ConvGeom) -> Result<()> {
        let d = ops::im2col(self.gpu, x, cols, geom);
        self.push(d)
    }
    fn col2im(
        &mut self,
        dcols: &gpu::Tensor,
        dx: &gpu::Tensor,
        geom: ConvGeom,
        through: Option<(&gpu::Tensor, Activation)>,
    ) -> Result<()> {
        let d = ops::col2im(self.gpu, dcols, dx, geom, through);
        self.push(d)
    }
    fn batch_norm_stats(
        &mut self,
        x: &gpu::Tensor,
        mean: &gpu::Tensor,
        invstd: &gpu::Tensor,
        running_mean: &gpu::Tensor,
        running_var: &gpu::Tensor,
        momentum: f32,
        eps: f32,
        update_running: bool,
    ) -> Result<()> {
        let d = ops::batch_norm_stats(
            self.gpu,
            x,
            mean,
            invstd,
            running_mean,
            running_var,
            momentum,
            eps,
            update_running,
        );
        self.push(d)
    }
    fn batch_norm_use_running(
        &mut self,
        running_mean: &gpu::Tensor,
        running_var: &gpu::Tensor,
        mean: &gpu::Tensor,
        invstd: &gpu::Tensor,
        eps: f32,
    ) -> Result<()> {
        let d = ops::batch_norm_use_running(self.gpu, running_mean, running_var, mean, invstd, eps);
        self.push(d)
    }
    fn batch_norm_apply(
        &mut self,
        x: &gpu::Tensor,
        mean: &gpu::Tensor,
        invstd: &gpu::Tensor,
        gamma: &gpu::Tensor,
        beta: &gpu::Tensor,
        y: &gpu::Tensor,
        act: Activation,
    ) -> Result<()> {
        let d = ops::batch_norm_apply(self.gpu, x, mean, invstd, gamma, beta, y, act);
        self.push(d)
    }
    fn batch_norm_backward(
        &mut self,
        x: &gpu::Tensor,
        mean: &gpu::Tensor,
        invstd: &gpu::Tensor,
        gamma: &gpu::Tensor,
        dy: &gpu::Tensor,
        dx: &gpu::Tensor,
        dgamma: &gpu::Tensor,
        dbeta: &gpu::Tensor,
        grads: ParamGrads,
        after: Option<(&gpu::Tensor, Activation)>,
        before: Activation,
    ) -> Result<()> {
        let d = ops::batch_norm_backward(
            self.gpu, x, mean, invstd, gamma, dy, dx, dgamma, dbeta, grads, after, before,
        );
        self.push(d)
    }
    fn activation_backward(
        &mut self,
        y: &gpu::Tensor,
        dy: &gpu::Tensor,
        dx: &gpu::Tensor,
        act: Activation,
    ) -> Result<()> {
        let d = ops::activation_backward(self.gpu, y, dy, dx, act);
        self.push(d)
    }
    fn bce_with_logits(
        &mut self,
        logits: &gpu::Tensor,
        grad: &gpu::Tensor,
        stats: &gpu::Tensor,
        slot: usize,
        target: f32,
        scale: f32,
    ) -> Result<()> {
        let d = ops::bce_with_logits(self.gpu, logits, grad, stats, slot, target, scale);
        self.push(d)
    }
    fn softmax_cross_entropy(
        &mut self,
        logits: &gpu::Tensor,
        labels: &gpu::Tensor,
        grad: &gpu::Tensor,
        stats: &gpu::Tensor,
        slot: usize,
        scale: f32,
    ) -> Result<()> {
        let d = ops::softmax_cross_entropy(self.gpu, logits, labels, grad, stats, slot, scale);
        self.push(d)
    }
    fn gather_labels(
        &mut self,
        labels: &gpu::Words,
        order: &gpu::Words,
        dst: &gpu::Tensor,
        offset: usize,
    ) -> Result<()> {
        let d = ops::gather_labels(self.gpu, labels, order, dst, offset);
        self.push_dynamic(
            d,
            Dynamic::Gather {
                batch: dst.len(),
                pixels: 1,
            },
        )
    }
    fn sum_over_rows(
        &mut self,
        x: &gpu::Tensor,
        out: &gpu::Tensor,
        accumulate: bool,
    ) -> Result<()> {
        let d = ops::sum_over_rows(self.gpu, x, out, accumulate);
        self.push(d)
    }
    fn fill(&mut self, dst: &gpu::Tensor, value: f32) -> Result<()> {
        let d = ops::fill(self.gpu, dst, value);
        self.push(d)
    }
    fn add_bias(&mut self, x: &gpu::Tensor, bias: &gpu::Tensor) -> Result<()> {
        let d = ops::add_bias(self.gpu, x, bias);
        self.push(d)
    }
    fn activation_forward(
        &mut self,
        x: &gpu::Tensor,
        y: &gpu::Tensor,
        act: Activation,
    ) -> Result<()> {
        let d = ops::activation_forward(self.gpu, x, y, act);
        self.push(d)
    }
    fn randn(&mut self, dst: &gpu::Tensor, seed: u64, stream: u32) -> Result<()> {
        let d = ops::randn(self.gpu, dst, seed, stream);
        self.push_dynamic(
            d,
            Dynamic::Randn {
                n: dst.len(),
                seed,
                stream,
            },
        )
    }
    fn gather_batch(
        &mut self,
        images: &gpu::Words,
        order: &gpu::Words,
        dst: &gpu::Tensor,
        offset: usize,
    ) -> Result<()> {
        let d = ops::gather_batch(self.gpu, images, order, dst, offset);
        let batch = dst.shape()[0];
        self.push_dynamic(
            d,
            Dynamic::Gather {
                batch,
                pixels: dst.len() / batch,
            },
        )
    }
    fn adam(
        &mut self,
        params: &gpu::Tensor,
        grads: &gpu::Tensor,
        m: &gpu::Tensor,
        v: &gpu::Tensor,
        spec: AdamSpec,
        t: u64,
    ) -> Result<()> {
        let d = ops::adam(self.gpu, params, grads, m, v, spec, t);
        self.push_dynamic(
            d,
            Dynamic::Adam {
                n: params.len(),
                spec,
            },
        )
    }
}

/// CPU backend: every operation runs its CPU reference at once.
pub struct Cpu;

impl Backend for Cpu {
    type Tensor = cpu::Tensor;
    type Words = std::cell::RefCell<Vec<u32>>;

    fn zeros(&mut self, shape: &[usize]) -> Result<cpu::Tensor> {
        Ok(cpu::Tensor::zeros(shape))
    }
    fn words(&mut self, data: &[u32]) -> Result<Self::Words> {
        Ok(std::cell::RefCell::new(data.to_vec()))
    }
    fn write(&mut self, t: &cpu::Tensor, data: &[f32]) -> Result<()> {
        t.write(data)
    }
    fn write_words(&mut self, w: &Self::Words, data: &[u32]) -> Result<()> {
        *w.borrow_mut() = data.to_vec();
        Ok(())
    }
    fn read(&mut self, t: &cpu::Tensor) -> Result<Vec<f32>> {
        Ok(t.to_vec())
    }
    fn view(&self, t: &cpu::Tensor, offset: usize, shape: &[usize]) -> Result<cpu::Tensor> {
        t.view(offset, shape)
    }
    fn reshape(&self, t: &cpu::Tensor, shape: &[usize]) -> Result<cpu::Tensor> {
        t.reshape(shape)
    }
    fn alignment(&self) -> usize {
        1
    }
    fn matmul(
        &mut self,
        a: &cpu::Tensor,
        b: &cpu::Tensor,
        bias: Option<&cpu::Tensor>,
        c: &cpu::Tensor,
        spec: MatmulSpec,
    ) -> Result<()> {
        cpu::ops::matmul(a, b, bias, c, spec)
    }
    fn im2col(&mut self, x: &cpu::Tensor, cols: &cpu::Tensor, geom: ConvGeom) -> Result<()> {
        cpu::ops::im2col(x, cols, geom)
    }
    fn col2im(
        &mut self,
        dcols: &cpu::Tensor,
        dx: &cpu::Tensor,
        geom: ConvGeom,
        through: Option<(&cpu::Tensor, Activation)>,
    ) -> Result<()> {
        cpu::ops::col2im(dcols, dx, geom, through)
    }
    fn batch_norm_stats(
        &mut self,
        x: &cpu::Tensor,
        mean: &cpu::Tensor,
        invstd: &cpu::Tensor,
        running_mean: &cpu::Tensor,
        running_var: &cpu::Tensor,
        momentum: f32,
        eps: f32,
        update_running: bool,
    ) -> Result<()> {
        cpu::ops::batch_norm_stats(
            x,
            mean,
            invstd,
            running_mean,
            running_var,
            momentum,
            eps,
            update_running,
        )
    }
    fn batch_norm_use_running(
        &mut self,
        running_mean: &cpu::Tensor,
        running_var: &cpu::Tensor,
        mean: &cpu::Tensor,
        invstd: &cpu::Tensor,
        eps: f32,
    ) -> Result<()> {
        cpu::ops::batch_norm_use_running(running_mean, running_var, mean, invstd, eps)
    }
    fn batch_norm_apply(
        &mut self,
        x: &cpu::Tensor,
        mean: &cpu::Tensor,
        invstd: &cpu::Tensor,
        gamma: &cpu::Tensor,
        beta: &cpu::Tensor,
        y: &cpu::Tensor,
        act: Activation,
    ) -> Result<()> {
        cpu::ops::batch_norm_apply(x, mean, invstd, gamma, beta, y, act)
    }
    fn batch_norm_backward(
        &mut self,
        x: &cpu::Tensor,
        mean: &cpu::Tensor,
        invstd: &cpu::Tensor,
        gamma: &cpu::Tensor,
        dy: &cpu::Tensor,
        dx: &cpu::Tensor,
        dgamma: &cpu::Tensor,
        dbeta: &cpu::Tensor,
        grads: ParamGrads,
        after: Option<(&cpu::Tensor, Activation)>,
        before: Activation,
    ) -> Result<()> {
        cpu::ops::batch_norm_backward(
            x, mean, invstd, gamma, dy, dx, dgamma, dbeta, grads, after, before,
        )
    }
    fn activation_backward(
        &mut self,
        y: &cpu::Tensor,
        dy: &cpu::Tensor,
        dx: &cpu::Tensor,
        act: Activation,
    ) -> Result<()> {
        cpu::ops::activation_backward(y, dy, dx, act)
    }
    fn bce_with_logits(
        &mut self,
        logits: &cpu::Tensor,
        grad: &cpu::Tensor,
        stats: &cpu::Tensor,
        slot: usize,
        target: f32,
        scale: f32,
    ) -> Result<()> {
        cpu::ops::bce_with_logits(logits, grad, stats, slot, target, scale)
    }
    fn softmax_cross_entropy(
        &mut self,
        logits: &cpu::Tensor,
        labels: &cpu::Tensor,
        grad: &cpu::Tensor,
        stats: &cpu::Tensor,
        slot: usize,
        scale: f32,
    ) -> Result<()> {
        cpu::ops::softmax_cross_entropy(logits, labels, grad, stats, slot, scale)
    }
    fn gather_labels(
        &mut self,
        labels: &Self::Words,
        order: &Self::Words,
        dst: &cpu::Tensor,
        offset: usize,
    ) -> Result<()> {
        cpu::ops::gather_labels(&labels.borrow(), &order.borrow(), dst, offset)
    }
    fn sum_over_rows(
        &mut self,
        x: &cpu::Tensor,
        out: &cpu::Tensor,
        accumulate: bool,
    ) -> Result<()> {
        cpu::ops::sum_over_rows(x, out, accumulate)
    }
    fn fill(&mut self, dst: &cpu::Tensor, value: f32) -> Result<()> {
        cpu::ops::fill(dst, value)
    }
    fn add_bias(&mut self, x: &cpu::Tensor, bias: &cpu::Tensor) -> Result<()> {
        cpu::ops::add_bias(x, bias)
    }
    fn activation_forward(
        &mut self,
        x: &cpu::Tensor,
        y: &cpu::Tensor,
        act: Activation,
    ) -> Result<()> {
        cpu::ops::activation_forward(x, y, act)
    }
    fn randn(&mut self, dst: &cpu::Tensor, seed: u64, stream: u32) -> Result<()> {
        cpu::ops::randn(dst, seed, stream)
    }
    fn gather_batch(
        &mut self,
        images: &Self::Words,
        order: &Self::Words,
        dst: &cpu::Tensor,
        offset: usize,
    ) -> Result<()> {
        cpu::ops::gather_batch(&images.borrow(), &order.borrow(), dst, offset)
    }
    fn adam(
        &mut self,
        params: &cpu::Tensor,
        grads: &cpu::Tensor,
        m: &cpu::Tensor,
        v: &cpu::Tensor,
        spec: AdamSpec,
        t: u64,
    ) -> Result<()> {
        cpu::ops::adam(params, grads, m, v, spec, t)
    }
}
