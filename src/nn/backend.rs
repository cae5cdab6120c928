//! The operations layers are written in, implemented twice: [`Recorder`] prepares GPU dispatches
//! (once, to be replayed by a [`Program`](crate::nn::Program)) and [`Cpu`] runs the CPU
//! references at once. Networks and training steps are written once, generic over the backend, so
//! the CPU run is a reference for the GPU run kernel by kernel.
//!
//! The trait and both implementations come from one declaration (the `backend!` macro): each kernel is a
//! line in its `kernels` list, whose arguments are those of its launcher in `gpu::ops` and of its
//! CPU twin in `cpu::ops`. Operations whose parameters change from run to run (the noise stream,
//! the batch offset, Adam's step and learning rate) take them from the [`Run`].

use std::cell::RefCell;

use crate::cpu;
use crate::error::Result;
use crate::gpu::{self, Dispatch, Gpu, ops};
use crate::nn::run::Run;
use crate::spec::{Activation, AdamSpec, ConvGeom, MatmulSpec, ParamGrads};

/// A noise stream that moves with the run: `base + per_run * run.step` (wrapping), so every
/// step draws fresh noise and a resumed run draws the same noise again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// The stream number at step 0.
    pub base: u32,
    /// Added to the stream number at each step.
    pub per_run: u32,
}

impl Stream {
    /// The stream number at `step`.
    pub fn at(self, step: u64) -> u32 {
        self.base
            .wrapping_add(self.per_run.wrapping_mul(step as u32))
    }
}

/// A recorded dispatch whose parameters come from the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Dynamic {
    Randn { n: usize, seed: u64, stream: Stream },
    Gather { batch: usize, pixels: usize },
    Adam { n: usize, spec: AdamSpec },
}

impl Dynamic {
    /// The uniform words of this dispatch for `run`.
    pub(crate) fn params(&self, run: &Run) -> Vec<u32> {
        match *self {
            Dynamic::Randn { n, seed, stream } => ops::randn_params(n, seed, stream.at(run.step)),
            Dynamic::Gather { batch, pixels } => ops::gather_params(batch, pixels, run.offset),
            Dynamic::Adam { n, spec } => ops::adam_params(n, run.adam(spec), run.step + 1),
        }
    }
}

/// Declares the [`Backend`] trait and its two implementations from one list: the trait items and
/// each implementation's own items as written, then every kernel once (`kernels { fn name(args); }`)
/// to become a trait method, a GPU recording of `gpu::ops::name(gpu, args)` and a CPU call of
/// `cpu::ops::name(args)`.
macro_rules! backend {
    (
        $(#[$doc:meta])*
        pub trait Backend { $($trait_items:tt)* }
        impl for $recorder:ty { $($recorder_items:tt)* }
        impl for $cpu:ty { $($cpu_items:tt)* }
        kernels { $( $(#[$kdoc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?); )* }
    ) => {
        $(#[$doc])*
        pub trait Backend {
            $($trait_items)*
            $(
                $(#[$kdoc])*
                #[doc = concat!(
                    "\n\nRecorded as [`gpu::ops::", stringify!($name), "`](crate::gpu::ops::",
                    stringify!($name), "); on the CPU, [`cpu::ops::", stringify!($name),
                    "`](crate::cpu::ops::", stringify!($name), ")."
                )]
                #[allow(clippy::too_many_arguments)]
                fn $name(&mut self, $($arg: $ty),*) -> Result<()>;
            )*
        }

        impl Backend for $recorder {
            $($recorder_items)*
            $(
                #[allow(clippy::too_many_arguments)]
                fn $name(&mut self, $($arg: $ty),*) -> Result<()> {
                    let d = ops::$name(self.gpu, $($arg),*);
                    self.push(d)
                }
            )*
        }

        impl Backend for $cpu {
            $($cpu_items)*
            $(
                #[allow(clippy::too_many_arguments)]
                fn $name(&mut self, $($arg: $ty),*) -> Result<()> {
                    cpu::ops::$name($($arg),*)
                }
            )*
        }
    };
}

backend! {
    /// Storage, the kernels, and the per-run operations.
    pub trait Backend {
        /// The backend's tensor: `gpu::Tensor` or `cpu::Tensor`.
        type Tensor: Clone;
        /// u32 data: the dataset's packed bytes and the epoch's index order.
        type Words;

        /// A new tensor of `shape`, all zeros.
        fn zeros(&mut self, shape: &[usize]) -> Result<Self::Tensor>;
        /// [`Backend::zeros`] for an activation [rows.., C] that kernels write and read many
        /// times: on the GPU with a texture twin where the adapter reads textures faster
        /// ([`gpu::Tensor::zeros_with_twin`]); written by kernels only.
        fn activation(&mut self, shape: &[usize]) -> Result<Self::Tensor>;
        /// A new u32 buffer holding `data`.
        fn words(&mut self, data: &[u32]) -> Result<Self::Words>;
        /// Overwrites `t` with `data` (before the program runs, on the GPU).
        fn write(&mut self, t: &Self::Tensor, data: &[f32]) -> Result<()>;
        /// Overwrites `w` with `data`.
        fn write_words(&mut self, w: &Self::Words, data: &[u32]) -> Result<()>;
        /// Reads `t` back (on the GPU, what the work submitted so far left in it).
        fn read(&mut self, t: &Self::Tensor) -> Result<Vec<f32>>;
        /// A view of `shape` into `t` from element `offset` (a multiple of `alignment`).
        fn view(&self, t: &Self::Tensor, offset: usize, shape: &[usize]) -> Result<Self::Tensor>;
        /// `t` under another shape of as many elements.
        fn reshape(&self, t: &Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;
        /// Alignment, in elements, of views into a buffer.
        fn alignment(&self) -> usize;

        /// dst = standard normal noise from (seed, the stream at this run's step).
        fn randn(&mut self, dst: &Self::Tensor, seed: u64, stream: Stream) -> Result<()>;
        /// dst = uniform class labels 0..9 from (seed, the stream at this run's step).
        fn rand_labels(&mut self, dst: &Self::Tensor, seed: u64, stream: Stream) -> Result<()>;
        /// dst [B, pixels] = images[order[run.offset + b]] scaled to [-1, 1].
        fn gather_batch(
            &mut self,
            images: &Self::Words,
            order: &Self::Words,
            dst: &Self::Tensor,
        ) -> Result<()>;
        /// dst `[B]` = labels[order[run.offset + b]].
        fn gather_labels(
            &mut self,
            labels: &Self::Words,
            order: &Self::Words,
            dst: &Self::Tensor,
        ) -> Result<()>;
        /// One Adam update at step run.step + 1 (with the run's learning rate, if it sets one).
        fn adam(
            &mut self,
            params: &Self::Tensor,
            grads: &Self::Tensor,
            m: &Self::Tensor,
            v: &Self::Tensor,
            spec: AdamSpec,
        ) -> Result<()>;
    }

    impl for Recorder<'_> {
        type Tensor = gpu::Tensor;
        type Words = gpu::Words;

        fn zeros(&mut self, shape: &[usize]) -> Result<gpu::Tensor> {
            gpu::Tensor::zeros(self.gpu, shape)
        }
        fn activation(&mut self, shape: &[usize]) -> Result<gpu::Tensor> {
            gpu::Tensor::zeros_with_twin(self.gpu, shape)
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
        fn randn(&mut self, dst: &gpu::Tensor, seed: u64, stream: Stream) -> Result<()> {
            let d = ops::randn(self.gpu, dst, seed, stream.at(0));
            let n = dst.len();
            self.push_dynamic(d, Dynamic::Randn { n, seed, stream })
        }
        fn rand_labels(&mut self, dst: &gpu::Tensor, seed: u64, stream: Stream) -> Result<()> {
            let d = ops::rand_labels(self.gpu, dst, seed, stream.at(0));
            let n = dst.len();
            // Its parameters are randn's.
            self.push_dynamic(d, Dynamic::Randn { n, seed, stream })
        }
        fn gather_batch(
            &mut self,
            images: &gpu::Words,
            order: &gpu::Words,
            dst: &gpu::Tensor,
        ) -> Result<()> {
            let d = ops::gather_batch(self.gpu, images, order, dst, 0);
            let batch = dst.shape()[0];
            let pixels = dst.len() / batch.max(1);
            self.push_dynamic(d, Dynamic::Gather { batch, pixels })
        }
        fn gather_labels(
            &mut self,
            labels: &gpu::Words,
            order: &gpu::Words,
            dst: &gpu::Tensor,
        ) -> Result<()> {
            let d = ops::gather_labels(self.gpu, labels, order, dst, 0);
            let batch = dst.len();
            self.push_dynamic(d, Dynamic::Gather { batch, pixels: 1 })
        }
        fn adam(
            &mut self,
            params: &gpu::Tensor,
            grads: &gpu::Tensor,
            m: &gpu::Tensor,
            v: &gpu::Tensor,
            spec: AdamSpec,
        ) -> Result<()> {
            let d = ops::adam(self.gpu, params, grads, m, v, spec, 1);
            let n = params.len();
            self.push_dynamic(d, Dynamic::Adam { n, spec })
        }
    }

    impl for Cpu {
        type Tensor = cpu::Tensor;
        type Words = RefCell<Vec<u32>>;

        fn zeros(&mut self, shape: &[usize]) -> Result<cpu::Tensor> {
            Ok(cpu::Tensor::zeros(shape))
        }
        fn activation(&mut self, shape: &[usize]) -> Result<cpu::Tensor> {
            Ok(cpu::Tensor::zeros(shape))
        }
        fn words(&mut self, data: &[u32]) -> Result<Self::Words> {
            Ok(RefCell::new(data.to_vec()))
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
        fn randn(&mut self, dst: &cpu::Tensor, seed: u64, stream: Stream) -> Result<()> {
            cpu::ops::randn(dst, seed, stream.at(self.run.step))
        }
        fn rand_labels(&mut self, dst: &cpu::Tensor, seed: u64, stream: Stream) -> Result<()> {
            cpu::ops::rand_labels(dst, seed, stream.at(self.run.step))
        }
        fn gather_batch(
            &mut self,
            images: &Self::Words,
            order: &Self::Words,
            dst: &cpu::Tensor,
        ) -> Result<()> {
            cpu::ops::gather_batch(&images.borrow(), &order.borrow(), dst, self.run.offset)
        }
        fn gather_labels(
            &mut self,
            labels: &Self::Words,
            order: &Self::Words,
            dst: &cpu::Tensor,
        ) -> Result<()> {
            cpu::ops::gather_labels(&labels.borrow(), &order.borrow(), dst, self.run.offset)
        }
        fn adam(
            &mut self,
            params: &cpu::Tensor,
            grads: &cpu::Tensor,
            m: &cpu::Tensor,
            v: &cpu::Tensor,
            spec: AdamSpec,
        ) -> Result<()> {
            let run = self.run;
            cpu::ops::adam(params, grads, m, v, run.adam(spec), run.step + 1)
        }
    }

    kernels {
        /// out [B, L + 10] = [z | one_hot(labels)].
        fn one_hot_concat(z: &Self::Tensor, labels: &Self::Tensor, out: &Self::Tensor);
        /// logits [B, 1] += <embed`[labels_b]`, features_b>.
        fn projection(
            features: &Self::Tensor,
            embed: &Self::Tensor,
            labels: &Self::Tensor,
            logits: &Self::Tensor,
        );
        /// dfeatures += dlogits_b * embed`[labels_b]`.
        fn projection_backward_input(
            dlogits: &Self::Tensor,
            embed: &Self::Tensor,
            labels: &Self::Tensor,
            dfeatures: &Self::Tensor,
        );
        /// `dembed[c]` += sum over rows labelled c of dlogits_b * features_b.
        fn projection_backward_params(
            dlogits: &Self::Tensor,
            features: &Self::Tensor,
            labels: &Self::Tensor,
            dembed: &Self::Tensor,
        );
        /// c = op(a) op(b) (+ c) (+ bias), then the activation.
        fn matmul(
            a: &Self::Tensor,
            b: &Self::Tensor,
            bias: Option<&Self::Tensor>,
            c: &Self::Tensor,
            spec: MatmulSpec,
        );
        /// y = act(im2col(x) W^T + b): a convolution, x [B, H, W, C] NHWC, y [B*OH*OW, C_out].
        fn conv2d(
            x: &Self::Tensor,
            weight: &Self::Tensor,
            bias: &Self::Tensor,
            y: &Self::Tensor,
            geom: ConvGeom,
            act: Activation,
        );
        /// dweight += dy^T im2col(x).
        fn conv2d_weight_grad(
            dy: &Self::Tensor,
            x: &Self::Tensor,
            dweight: &Self::Tensor,
            geom: ConvGeom,
        );
        /// dx = col2im(dy W), times act'(y) with `through` = (y, act).
        fn conv2d_input_grad(
            dy: &Self::Tensor,
            weight: &Self::Tensor,
            dx: &Self::Tensor,
            geom: ConvGeom,
            through: Option<(&Self::Tensor, Activation)>,
        );
        fn im2col(x: &Self::Tensor, cols: &Self::Tensor, geom: ConvGeom);
        fn col2im(
            dcols: &Self::Tensor,
            dx: &Self::Tensor,
            geom: ConvGeom,
            through: Option<(&Self::Tensor, Activation)>,
        );
        fn batch_norm_stats(
            x: &Self::Tensor,
            mean: &Self::Tensor,
            invstd: &Self::Tensor,
            running_mean: &Self::Tensor,
            running_var: &Self::Tensor,
            momentum: f32,
            eps: f32,
            update_running: bool,
        );
        fn batch_norm_use_running(
            running_mean: &Self::Tensor,
            running_var: &Self::Tensor,
            mean: &Self::Tensor,
            invstd: &Self::Tensor,
            eps: f32,
        );
        fn batch_norm_apply(
            x: &Self::Tensor,
            mean: &Self::Tensor,
            invstd: &Self::Tensor,
            gamma: &Self::Tensor,
            beta: &Self::Tensor,
            y: &Self::Tensor,
            act: Activation,
        );
        fn batch_norm_backward(
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
        );
        fn activation_forward(x: &Self::Tensor, y: &Self::Tensor, act: Activation);
        fn activation_backward(
            saved: &Self::Tensor,
            dy: &Self::Tensor,
            dx: &Self::Tensor,
            act: Activation,
        );
        fn bce_with_logits(
            logits: &Self::Tensor,
            grad: &Self::Tensor,
            stats: &Self::Tensor,
            slot: usize,
            target: f32,
            scale: f32,
        );
        /// Hinge loss against `sign` (+1 real, -1 fake); `margin`: D's max(0, 1 - sign x),
        /// else G's -sign x.
        fn hinge(
            logits: &Self::Tensor,
            grad: &Self::Tensor,
            stats: &Self::Tensor,
            slot: usize,
            sign: f32,
            margin: bool,
            scale: f32,
        );
        fn softmax_cross_entropy(
            logits: &Self::Tensor,
            labels: &Self::Tensor,
            grad: &Self::Tensor,
            stats: &Self::Tensor,
            slot: usize,
            scale: f32,
        );
        /// avg = decay * avg + (1 - decay) * value over a network's parameters and state.
        fn ema(
            avg_params: &Self::Tensor,
            params: &Self::Tensor,
            avg_state: &Self::Tensor,
            state: &Self::Tensor,
            decay: f32,
        );
        fn sum_over_rows(x: &Self::Tensor, out: &Self::Tensor, accumulate: bool);
        fn fill(dst: &Self::Tensor, value: f32);
        fn add_bias(x: &Self::Tensor, bias: &Self::Tensor);
    }
}

/// A named buffer of a recorded program.
#[derive(Clone)]
pub(crate) enum Buffer {
    F32(gpu::Tensor),
    Words(gpu::Words),
}

/// GPU backend: every operation becomes a prepared [`Dispatch`], appended in order; named
/// inputs and outputs are declared for the [`Program`](crate::nn::Program) made from it.
pub struct Recorder<'g> {
    /// The GPU the dispatches are prepared for.
    pub gpu: &'g Gpu,
    pub(crate) dispatches: Vec<Dispatch>,
    /// (index in `dispatches`, kind) of every dispatch whose parameters come from the run.
    pub(crate) dynamic: Vec<(usize, Dynamic)>,
    pub(crate) inputs: Vec<(&'static str, Buffer)>,
    pub(crate) outputs: Vec<(&'static str, gpu::Tensor)>,
}

impl<'g> Recorder<'g> {
    /// An empty recording on `gpu`.
    pub fn new(gpu: &'g Gpu) -> Recorder<'g> {
        Recorder {
            gpu,
            dispatches: Vec::new(),
            dynamic: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Names `t` as an input the program's user writes before a run.
    pub fn input(&mut self, name: &'static str, t: &gpu::Tensor) {
        self.inputs.push((name, Buffer::F32(t.clone())));
    }

    /// Names `w` as a u32 input (an index order, say).
    pub fn input_words(&mut self, name: &'static str, w: &gpu::Words) {
        self.inputs.push((name, Buffer::Words(w.clone())));
    }

    /// Names `t` as an output the program's user reads after a run.
    pub fn output(&mut self, name: &'static str, t: &gpu::Tensor) {
        self.outputs.push((name, t.clone()));
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

/// CPU backend: every operation runs its CPU reference at once, with `run`'s per-run values.
///
/// The same layer code as on the GPU (the crate's example), run at once on the CPU: the
/// reference a GPU program is checked against.
///
/// ```
/// use wgsl_gan::{Activation, Backend, Cpu, Linear, ParamStore, linear_specs};
///
/// let mut be = Cpu::default();
/// let store = ParamStore::new(&mut be, linear_specs("fc", 3, 2))?;
/// store.initialize(&mut be, 0)?; // Keras' Glorot uniform, seeded
/// let fc = Linear::new(&be, &store, "fc", 3, 2)?;
/// let (x, y) = (be.zeros(&[4, 3])?, be.zeros(&[4, 2])?);
/// be.write(&x, &[1.0; 12])?;
/// fc.forward(&mut be, &x, &y, Activation::Relu)?;
/// let y = be.read(&y)?;
/// assert!(y.len() == 8 && y.iter().all(|v| *v >= 0.0));
/// # Ok::<(), wgsl_gan::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    /// The per-run values (step, batch offset, Adam's learning rate) the run-dependent ops use.
    pub run: Run,
}
