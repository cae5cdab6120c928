//! The convolutional generator the article imports Conv2DTranspose for but never builds:
//! z(100) -> Linear(7*7*128) -> reshape [128, 7, 7] -> BN -> ReLU -> ConvTranspose(64, 4x4, s2, p1)
//! -> BN -> ReLU -> ConvTranspose(1, 4x4, s2, p1) -> tanh, 28x28. PyTorch numbering: 0 Linear,
//! 1 Unflatten, 2 BatchNorm2d, 3 ReLU, 4 ConvTranspose2d, 5 BatchNorm2d, 6 ReLU,
//! 7 ConvTranspose2d, 8 Tanh.

use crate::error::Result;
use crate::gan::model::{BN_MOMENTUM, PIXELS, generator_input};
use crate::nn::layers::{
    Backprop, batch_norm_specs, conv_transpose_specs, linear_before_unflatten_specs,
};
use crate::nn::trunk::BN_EPS;
use crate::nn::{Backend, BatchNorm, BnMode, ConvTranspose2d, Linear, ParamSpec, ParamStore};
use crate::spec::{Activation, ConvGeom, ParamGrads};

/// The first feature map: [7, 7, 128].
const SEED_MAP: [usize; 3] = [7, 7, 128];

pub fn dcgan_specs(conditional: bool) -> Vec<ParamSpec> {
    // Our NHWC seed map is PyTorch's Unflatten to [128, 7, 7] with the rows reordered.
    let mut s =
        linear_before_unflatten_specs("generator.0", generator_input(conditional), SEED_MAP);
    s.extend(batch_norm_specs("generator.2", 128));
    s.extend(conv_transpose_specs("generator.4", 128, 64, 4));
    s.extend(batch_norm_specs("generator.5", 64));
    s.extend(conv_transpose_specs("generator.7", 64, 1, 4));
    s
}

/// The convolution from a [side, side, channels] map down to half its side (4x4, s2, p1): the
/// adjoint of each upsampling step.
fn up(batch: usize, side: usize, channels: usize) -> ConvGeom {
    ConvGeom::new([batch, side, side, channels], 4, 2, 1)
}

pub struct DcganGenerator<B: Backend> {
    batch: usize,
    l0: Linear<B>,
    bn0: BatchNorm<B>,
    ct1: ConvTranspose2d<B>,
    bn1: BatchNorm<B>,
    ct2: ConvTranspose2d<B>,
    pub out: B::Tensor,
    lin: B::Tensor,
    a0: B::Tensor,
    ct1out: B::Tensor,
    a1: B::Tensor,
    ct2out: B::Tensor,
    dct2: B::Tensor,
    da1: B::Tensor,
    dct1: B::Tensor,
    da0: B::Tensor,
    dlin: B::Tensor,
}

impl<B: Backend> DcganGenerator<B> {
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        batch: usize,
        out: &B::Tensor,
        input: usize,
    ) -> Result<DcganGenerator<B>> {
        let seed: usize = SEED_MAP.iter().product();
        let (r7, r14, r28) = (batch * 49, batch * 196, batch * 784);
        Ok(DcganGenerator {
            batch,
            l0: Linear::new(be, store, "generator.0", input, seed)?,
            bn0: BatchNorm::new(be, store, "generator.2", 128, BN_MOMENTUM, BN_EPS)?,
            ct1: ConvTranspose2d::new(be, store, "generator.4", up(batch, 14, 64), 128)?,
            bn1: BatchNorm::new(be, store, "generator.5", 64, BN_MOMENTUM, BN_EPS)?,
            ct2: ConvTranspose2d::new(be, store, "generator.7", up(batch, 28, 1), 64)?,
            out: be.reshape(out, &[batch, PIXELS])?,
            lin: be.zeros(&[r7, 128])?,
            a0: be.zeros(&[r7, 128])?,
            ct1out: be.zeros(&[r14, 64])?,
            a1: be.zeros(&[r14, 64])?,
            ct2out: be.zeros(&[r28, 1])?,
            dct2: be.zeros(&[r28, 1])?,
            da1: be.zeros(&[r14, 64])?,
            dct1: be.zeros(&[r14, 64])?,
            da0: be.zeros(&[r7, 128])?,
            dlin: be.zeros(&[batch, seed])?,
        })
    }

    pub fn forward(&self, be: &mut B, z: &B::Tensor, mode: BnMode) -> Result<()> {
        let lin = be.reshape(&self.lin, &[self.batch, SEED_MAP.iter().product()])?;
        self.l0.forward(be, z, &lin, Activation::Identity)?;
        self.bn0
            .forward(be, &self.lin, &self.a0, Activation::Relu, mode)?;
        self.ct1.forward(be, &self.a0, &self.ct1out)?;
        self.bn1
            .forward(be, &self.ct1out, &self.a1, Activation::Relu, mode)?;
        self.ct2.forward(be, &self.a1, &self.ct2out)?;
        be.activation_forward(&self.ct2out, &self.out, Activation::Tanh)
    }

    pub fn backward(&self, be: &mut B, z: &B::Tensor, dout: &B::Tensor) -> Result<()> {
        let none = Activation::Identity;
        be.activation_backward(&self.out, dout, &self.dct2, Activation::Tanh)?;
        self.ct2
            .backward(be, &self.a1, &self.dct2, Backprop::Both(&self.da1))?;
        // The ReLUs after each batch norm are folded into its backward.
        self.bn1.backward(
            be,
            &self.ct1out,
            &self.da1,
            &self.dct1,
            ParamGrads::Accumulate,
            Some((&self.a1, Activation::Relu)),
            none,
        )?;
        self.ct1
            .backward(be, &self.a0, &self.dct1, Backprop::Both(&self.da0))?;
        let dlin = be.reshape(&self.dlin, &[self.batch * 49, 128])?;
        self.bn0.backward(
            be,
            &self.lin,
            &self.da0,
            &dlin,
            ParamGrads::Accumulate,
            Some((&self.a0, Activation::Relu)),
            none,
        )?;
        self.l0.backward(be, z, &self.dlin, Backprop::Params)
    }
}
