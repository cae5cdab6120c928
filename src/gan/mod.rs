//! The article's GAN: model, training step, GPU trainer.

pub mod dcgan;
pub mod model;
pub mod step;
pub mod train;
pub mod trainer;
