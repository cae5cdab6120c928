//! The convolutional trunk the article's discriminator and the evaluation classifier share:
//! Conv(32, 3x3, s2) -> LeakyReLU -> Conv(64) -> BN -> LeakyReLU -> Conv(128) -> BN -> LeakyReLU
//! over images [B, 28, 28, 1], to NHWC features. PyTorch's `nn.Sequential` numbering:
//! `prefix`.{0, 2, 3, 5, 6} (1, 4, 7 are LeakyReLUs, 8 is the Flatten).

use crate::data::SIDE;
use crate::error::Result;
use crate::nn::layers::{Backprop, batch_norm_specs, conv_specs};
use crate::nn::{Backend, BatchNorm, BnMode, Conv2d, ParamSpec, ParamStore};
use crate::spec::{Activation, ConvGeom};

/// The article's LeakyReLU slope.
pub const LEAKY: Activation = Activation::LeakyRelu(0.2);
/// Keras' BatchNormalization epsilon.
pub const BN_EPS: f32 = 1e-3;
const CHANNELS: [usize; 4] = [1, 32, 64, 128];

/// Padding of the trunk's three convolutions: 0 is Keras' default 'valid' (the article's
/// discriminator: 28 -> 13 -> 6 -> 2, 512 features); 1 keeps more of the edges (28 -> 14 -> 7 -> 4,
/// 2048 features; the evaluation classifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrunkShape {
    /// Padding of each convolution.
    pub padding: usize,
}

impl TrunkShape {
    /// No padding: the article's discriminator.
    pub const VALID: TrunkShape = TrunkShape { padding: 0 };
    /// Padding 1: the evaluation classifier.
    pub const PADDED: TrunkShape = TrunkShape { padding: 1 };

    /// The three convolutions' geometries for a batch.
    fn geoms(self, batch: usize) -> [ConvGeom; 3] {
        let mut side = SIDE;
        std::array::from_fn(|i| {
            let g = ConvGeom::new([batch, side, side, CHANNELS[i]], 3, 2, self.padding);
            side = g.out_height();
            g
        })
    }

    /// The output feature map [h, w, 128] (NHWC).
    pub fn features(self) -> [usize; 3] {
        let g = self.geoms(1)[2];
        [g.out_height(), g.out_width(), CHANNELS[3]]
    }

    /// Number of output features (512 for VALID, 2048 for PADDED).
    pub fn feature_count(self) -> usize {
        self.features().iter().product()
    }
}

/// The trunk's parameters under `prefix` (`{prefix}.0` ... ), in PyTorch's names.
pub fn conv_trunk_specs(prefix: &str) -> Vec<ParamSpec> {
    let mut s = conv_specs(&format!("{prefix}.0"), 1, 32, 3);
    s.extend(conv_specs(&format!("{prefix}.2"), 32, 64, 3));
    s.extend(batch_norm_specs(&format!("{prefix}.3"), 64));
    s.extend(conv_specs(&format!("{prefix}.5"), 64, 128, 3));
    s.extend(batch_norm_specs(&format!("{prefix}.6"), 128));
    s
}

/// The trunk for one batch size.
pub struct ConvTrunk<B: Backend> {
    batch: usize,
    c1: Conv2d<B>,
    c2: Conv2d<B>,
    bn2: BatchNorm<B>,
    c3: Conv2d<B>,
    bn3: BatchNorm<B>,
    /// Input images [B, 28, 28, 1].
    pub input: B::Tensor,
    /// Output features [B, h*w*128] (NHWC order).
    pub features: B::Tensor,
    a1: B::Tensor,
    c2out: B::Tensor,
    a2: B::Tensor,
    c3out: B::Tensor,
    dc3: B::Tensor,
    da2: B::Tensor,
    dc2: B::Tensor,
    dc1: B::Tensor,
}

impl<B: Backend> ConvTrunk<B> {
    /// `momentum`: of the batch-norm running statistics (Keras' convention).
    pub fn new(
        be: &mut B,
        store: &ParamStore<B>,
        prefix: &str,
        shape: TrunkShape,
        batch: usize,
        input: &B::Tensor,
        momentum: f32,
    ) -> Result<ConvTrunk<B>> {
        let [g1, g2, g3] = shape.geoms(batch);
        let rows = |g: ConvGeom| g.cols_shape()[0];
        let name = |i: usize| format!("{prefix}.{i}");
        Ok(ConvTrunk {
            batch,
            c1: Conv2d::new(be, store, &name(0), g1, 32)?,
            c2: Conv2d::new(be, store, &name(2), g2, 64)?,
            bn2: BatchNorm::new(be, store, &name(3), 64, momentum, BN_EPS)?,
            c3: Conv2d::new(be, store, &name(5), g3, 128)?,
            bn3: BatchNorm::new(be, store, &name(6), 128, momentum, BN_EPS)?,
            input: be.reshape(input, &[batch, SIDE, SIDE, 1])?,
            features: be.zeros(&[batch, shape.feature_count()])?,
            a1: be.activation(&[rows(g1), 32])?,
            c2out: be.activation(&[rows(g2), 64])?,
            a2: be.activation(&[rows(g2), 64])?,
            c3out: be.activation(&[rows(g3), 128])?,
            dc3: be.activation(&[rows(g3), 128])?,
            da2: be.activation(&[batch, g3.height, g3.width, 64])?,
            dc2: be.activation(&[rows(g2), 64])?,
            dc1: be.activation(&[rows(g1), 32])?,
        })
    }

    /// Runs the three convolutions on the trunk's input, batch norm in `mode`.
    pub fn forward(&self, be: &mut B, mode: BnMode) -> Result<()> {
        // Kernels check element counts, so NHWC maps pass as their [rows, C] matrices.
        let none = Activation::Identity;
        self.c1.forward(be, &self.input, &self.a1, LEAKY)?;
        self.c2.forward(be, &self.a1, &self.c2out, none)?;
        self.bn2.forward(be, &self.c2out, &self.a2, LEAKY, mode)?;
        self.c3.forward(be, &self.a2, &self.c3out, none)?;
        self.bn3
            .forward(be, &self.c3out, &self.features, LEAKY, mode)
    }

    /// From dfeatures [B, h*w*128]; an input gradient is [B, 28, 28, 1] (or [B, 784]).
    pub fn backward(
        &self,
        be: &mut B,
        dfeatures: &B::Tensor,
        mode: Backprop<B::Tensor>,
    ) -> Result<()> {
        let dinput = mode
            .input()
            .map(|d| be.reshape(d, &[self.batch, SIDE, SIDE, 1]))
            .transpose()?;
        let none = Activation::Identity;
        let grads = mode.param_grads();
        // The LeakyReLUs' derivatives are folded into the batch-norm backwards and into col2im.
        self.bn3.backward(
            be,
            &self.c3out,
            dfeatures,
            &self.dc3,
            grads,
            Some((&self.features, LEAKY)),
            none,
        )?;
        self.c3
            .backward(be, &self.a2, &self.dc3, mode.with_input(&self.da2), None)?;
        self.bn2.backward(
            be,
            &self.c2out,
            &self.da2,
            &self.dc2,
            grads,
            Some((&self.a2, LEAKY)),
            none,
        )?;
        // col2im takes the gradient through conv1's LeakyReLU: dc1 is w.r.t. conv1's output.
        self.c2.backward(
            be,
            &self.a1,
            &self.dc2,
            mode.with_input(&self.dc1),
            Some((&self.a1, LEAKY)),
        )?;
        let first = match &dinput {
            Some(d) => mode.with_input(d),
            None => Backprop::Params,
        };
        self.c1.backward(be, &self.input, &self.dc1, first, None)
    }
}
