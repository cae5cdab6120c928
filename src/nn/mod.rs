//! Layers, parameter stores and the backend they are written over.

mod backend;
pub mod layers;
mod params;
mod program;
mod run;
pub mod trunk;

pub use backend::{Backend, Cpu, Recorder, Stream};
pub use layers::{BatchNorm, BnMode, Conv2d, ConvTranspose2d, Linear};
pub use params::{
    Init, Layout, MOMENT_PREFIXES, NamedValues, ParamSpec, ParamStore, convert_layouts,
};
pub use program::Program;
pub use run::Run;
pub use trunk::{ConvTrunk, TrunkShape};
