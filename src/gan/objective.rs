//! The GAN's loss as one value the step is built with: which kernel scores D's logits against a
//! target, which statistics slots each term writes, and how the slots read as a step's figures
//! and metrics columns. Another loss (least squares, say) is another variant here.

use crate::error::Result;
use crate::nn::Backend;

/// What D's output on a batch is scored against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Real,
    Fake,
}

/// Whose loss a term belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// The discriminator's: the mean of its real and fake terms.
    D,
    /// The generator's.
    G,
}

/// The GAN's loss (`train --loss`). Each term writes its mean loss and the mean of
/// sigmoid(logits): D(x) under bce, and under hinge the same monotone view of the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Objective {
    /// Binary cross-entropy on D's logits (the article's)
    Bce,
    /// Hinge loss on D's logits: D minimises mean(max(0, 1 - D(x))) + mean(max(0, 1 + D(G(z)))),
    /// G minimises -mean(D(G(z)))
    Hinge,
}

/// Losses and mean discriminator outputs of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    pub d_loss: f32,
    pub g_loss: f32,
    /// Mean D(x) on the real batch.
    pub d_real: f32,
    /// Mean D(G(z)) on the fake batch of the discriminator step.
    pub d_fake: f32,
}

impl StepStats {
    pub fn is_finite(&self) -> bool {
        self.values().iter().all(|v| v.is_finite())
    }

    /// The figures in the order of [`Objective::columns`].
    pub fn values(&self) -> [f32; 4] {
        [self.d_loss, self.g_loss, self.d_real, self.d_fake]
    }
}

impl Objective {
    /// Statistics slots a step writes (the buffer read back when losses are logged).
    pub const SLOTS: usize = 8;

    /// The first of the two slots (loss, mean D output) of a term.
    fn slot(self, term: Term, target: Target) -> usize {
        match (term, target) {
            (Term::D, Target::Real) => 0,
            (Term::D, Target::Fake) => 2,
            (Term::G, _) => 4,
        }
    }

    /// Scores `logits` against `target`: the loss and mean output go into the term's slots of
    /// `stats`, the gradient of the term's share of its network's loss into `dlogits`.
    /// `real_label` is the target of D's real term under bce (1, or 1 - p with one-sided label
    /// smoothing p).
    #[allow(clippy::too_many_arguments)]
    pub fn score<B: Backend>(
        self,
        be: &mut B,
        term: Term,
        target: Target,
        real_label: f32,
        logits: &B::Tensor,
        dlogits: &B::Tensor,
        stats: &B::Tensor,
    ) -> Result<()> {
        let slot = self.slot(term, target);
        let share = match term {
            Term::D => 0.5,
            Term::G => 1.0,
        };
        let real = target == Target::Real;
        match self {
            Objective::Bce => {
                let label = match (term, real) {
                    (Term::D, true) => real_label,
                    (Term::G, true) => 1.0,
                    (_, false) => 0.0,
                };
                be.bce_with_logits(logits, dlogits, stats, slot, label, share)
            }
            Objective::Hinge => {
                let sign = if real { 1.0 } else { -1.0 };
                let margin = term == Term::D;
                be.hinge(logits, dlogits, stats, slot, sign, margin, share)
            }
        }
    }

    /// What the losses are, for the legend of the epoch lines.
    pub fn describe(self) -> &'static str {
        match self {
            Objective::Bce => "binary cross-entropy",
            Objective::Hinge => "hinge loss on D's logits",
        }
    }

    /// The name `--loss` takes.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Bce => "bce",
            Objective::Hinge => "hinge",
        }
    }

    /// A step's figures from its statistics slots.
    pub fn stats(self, slots: &[f32]) -> StepStats {
        let at = |term, target| slots[self.slot(term, target)];
        let output = |term, target| slots[self.slot(term, target) + 1];
        StepStats {
            d_loss: 0.5 * (at(Term::D, Target::Real) + at(Term::D, Target::Fake)),
            g_loss: at(Term::G, Target::Real),
            d_real: output(Term::D, Target::Real),
            d_fake: output(Term::D, Target::Fake),
        }
    }

    /// Metrics columns of [`StepStats::values`].
    pub fn columns(self) -> [&'static str; 4] {
        ["d_loss", "g_loss", "d_real", "d_fake"]
    }
}
