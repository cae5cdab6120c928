//! What changes from one run of a recorded program to the next: the kernels whose parameters
//! depend on it (noise, the batch's rows, Adam) read them from here.

use crate::spec::AdamSpec;

/// What changes from one run of a program to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Run {
    /// The run's index: the training step (Adam updates are step + 1 of their optimiser, noise
    /// streams move with it), or the chunk of a sampling program.
    pub step: u64,
    /// The first row of this run's batch in the current order.
    pub offset: usize,
    /// The learning rate of every Adam update in this run, where a schedule sets one.
    pub lr: Option<f32>,
}

impl Run {
    /// Step `step` on the batch at `offset`, at the learning rate the program was recorded with.
    pub fn new(step: u64, offset: usize) -> Run {
        Run {
            step,
            offset,
            lr: None,
        }
    }

    /// `spec` with this run's learning rate.
    pub fn adam(&self, spec: AdamSpec) -> AdamSpec {
        AdamSpec {
            lr: self.lr.unwrap_or(spec.lr),
            ..spec
        }
    }
}
