//! What a run's curves say, in words: the common ways a GAN fails, recognised from its own
//! metrics.csv at each epoch's end, and at a logged step when the discriminator's win is
//! clear-cut before its epoch ends. `train` prints a line for each finding as it is made;
//! metrics.png marks every finding (`wgsl-gan plot` prints them too). A pure function of the
//! file, so a run, its resumption and a later `plot` say the same.

use std::path::Path;

use crate::error::Result;
use crate::io::metrics::{self, Mark, MetricsLog};

/// Mean D(G(z)) over an epoch below this: the discriminator is sure every generated image is
/// fake (if G's loss is rising too, it is winning).
pub const D_WINS_BELOW: f64 = 0.05;
/// Logged steps in a row, within one epoch, each with D(G(z)) under `D_WINS_BELOW` while G's loss
/// rises across them: the discriminator's win is clear-cut before the epoch ends.
pub const CLEAR_CUT_ROWS: usize = 4;
/// Digits with at least 5% of the scored images: this many or fewer is mode collapse.
pub const COLLAPSE_COVERAGE: f64 = 3.0;
/// One digit above this share of the scored images is mode collapse.
pub const COLLAPSE_SHARE: f64 = 0.5;
/// Collapse is judged only on images that look like digits: at an FID above this (noise scores
/// about 2,000) the classifier's shares mean little (at epoch 1 it calls noise one digit).
pub const COLLAPSE_FID_UNDER: f64 = 1000.0;
/// Epochs without a better FID than the best before them: the generator has stalled.
pub const STALLED_EPOCHS: usize = 2;

/// A failure shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// D(G(z)) near 0 while G's loss rises.
    DiscriminatorWins,
    /// A few digits, or one, make up the generated images.
    ModeCollapse,
    /// FID no longer improves.
    Stalled,
}

/// One finding: where it was seen and what it means.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The 1-based epoch it was seen in.
    pub epoch: u64,
    /// The step it was seen at: the epoch's end, or a logged step within it.
    pub step: f64,
    /// Seen at a logged step before its epoch ended, not at the epoch's end.
    pub within_epoch: bool,
    /// Which failure shape.
    pub kind: Kind,
    /// One line: what is seen, and what it means.
    pub text: String,
}

impl Finding {
    /// Its mark on metrics.png.
    pub fn mark(&self) -> Mark {
        let label = match self.kind {
            Kind::DiscriminatorWins => "D wins",
            Kind::ModeCollapse => "collapse",
            Kind::Stalled => "stalled",
        };
        Mark {
            step: self.step,
            // The epoch panel has one x per epoch end.
            epoch: (!self.within_epoch).then_some(self.epoch as f64),
            label: label.to_string(),
        }
    }
}

/// One epoch's logged figures.
struct Epoch {
    number: u64,
    steps: Vec<f64>,
    g_loss: Vec<f64>,
    d_fake: Vec<f64>,
}

impl Epoch {
    fn last_step(&self) -> f64 {
        self.steps.last().copied().unwrap_or(f64::NAN)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The logged rows grouped by epoch, in order.
fn epochs(log: &MetricsLog) -> Vec<Epoch> {
    let mut out: Vec<Epoch> = Vec::new();
    for i in 0..log.steps.len() {
        let number = log.epochs[i] as u64;
        if out.last().is_none_or(|e| e.number != number) {
            out.push(Epoch {
                number,
                steps: Vec::new(),
                g_loss: Vec::new(),
                d_fake: Vec::new(),
            });
        }
        let e = out.last_mut().expect("pushed above");
        e.steps.push(log.steps[i]);
        e.g_loss.push(log.g_loss[i]);
        e.d_fake.push(log.d_fake[i]);
    }
    out
}

/// Every finding of the run, epoch by epoch (a last epoch cut short is judged on its rows).
pub fn diagnose(log: &MetricsLog) -> Vec<Finding> {
    let epochs = epochs(log);
    let mut found = Vec::new();
    for (i, e) in epochs.iter().enumerate() {
        let at = |kind, text: String| Finding {
            epoch: e.number,
            step: e.last_step(),
            within_epoch: false,
            kind,
            text: format!("epoch {}: {text}", e.number),
        };
        // A clear-cut win at the epoch's last logged step is the epoch's own finding.
        let early = clear_cut_win(&epochs, i).filter(|f| f.step < e.last_step());
        found.extend(early);
        if let Some(text) = discriminator_wins(e, previous(&epochs, i)) {
            found.push(at(Kind::DiscriminatorWins, text));
        }
        let scored: Vec<_> = log
            .scores
            .iter()
            .filter(|s| s.epoch as u64 <= e.number)
            .collect();
        if let Some(s) = scored.last().filter(|s| s.epoch as u64 == e.number) {
            let digit_like = s.fid < COLLAPSE_FID_UNDER;
            if let Some(text) = mode_collapse(s.coverage, s.top_digit).filter(|_| digit_like) {
                found.push(at(Kind::ModeCollapse, text));
            }
            let fids: Vec<(f64, f64)> = scored.iter().map(|s| (s.epoch, s.fid)).collect();
            if let Some(text) = stalled(&fids) {
                found.push(at(Kind::Stalled, text));
            }
        }
    }
    found
}

/// The finding of the step just logged, when it is the one at which the discriminator's win
/// became clear-cut (`train` asks after each logged step that does not end an epoch).
pub fn clear_cut_now(log: &MetricsLog) -> Option<Finding> {
    let epochs = epochs(log);
    let last = epochs.len().checked_sub(1)?;
    clear_cut_win(&epochs, last).filter(|f| f.step == epochs[last].last_step())
}

fn previous(epochs: &[Epoch], i: usize) -> Option<&Epoch> {
    i.checked_sub(1).map(|p| &epochs[p])
}

/// The first logged step of epoch `i` that ends `CLEAR_CUT_ROWS` rows with D(G(z)) under the
/// threshold at each while G's loss rose across them (the mean of the later half above that of
/// the earlier). Only news: not when the previous epoch already ended with D winning.
fn clear_cut_win(epochs: &[Epoch], i: usize) -> Option<Finding> {
    let e = &epochs[i];
    let already = previous(epochs, i)
        .is_some_and(|p| discriminator_wins(p, previous(epochs, i - 1)).is_some());
    if already {
        return None;
    }
    let half = CLEAR_CUT_ROWS / 2;
    let j = (CLEAR_CUT_ROWS - 1..e.steps.len()).find(|&j| {
        let rows = j + 1 - CLEAR_CUT_ROWS..=j;
        let (g, fake) = (&e.g_loss[rows.clone()], &e.d_fake[rows]);
        fake.iter().all(|&f| f < D_WINS_BELOW) && mean(&g[half..]) > mean(&g[..half])
    })?;
    let (step, fake) = (e.steps[j], e.d_fake[j]);
    let g = &e.g_loss[j + 1 - CLEAR_CUT_ROWS..=j];
    let (from, to) = (mean(&g[..half]), mean(&g[half..]));
    Some(Finding {
        epoch: e.number,
        step,
        within_epoch: true,
        kind: Kind::DiscriminatorWins,
        text: format!(
            "step {step:.0} (epoch {}): the discriminator is winning: D(G(z)) under \
             {D_WINS_BELOW} at the last {CLEAR_CUT_ROWS} logged steps ({fake:.3} now) while G's \
             loss rose {from:.2} -> {to:.2} (means of their halves). {WINNING}",
            e.number
        ),
    })
}

/// What a winning discriminator means, and what to do about it.
const WINNING: &str = "D rejects every generated image so surely that G's gradient carries \
little; the article's model does this from its first epochs. What counters it best here: a \
slower D (--lr-d 0.0001 --lr-g 0.0004); also --label-smoothing 0.1, --loss hinge (README, \
\"Getting better samples\")";

/// D(G(z)) under the threshold for the epoch while G's loss rises: against the previous epoch's
/// mean, or, for the first epoch, from its first half to its second.
fn discriminator_wins(e: &Epoch, previous: Option<&Epoch>) -> Option<String> {
    let fake = mean(&e.d_fake);
    // NaN (no logged steps) is not a finding either.
    if fake.is_nan() || fake >= D_WINS_BELOW {
        return None;
    }
    let (from, to) = match previous {
        Some(p) => (mean(&p.g_loss), mean(&e.g_loss)),
        None if e.g_loss.len() >= 2 => {
            let (a, b) = e.g_loss.split_at(e.g_loss.len() / 2);
            (mean(a), mean(b))
        }
        None => return None,
    };
    (to > from).then(|| {
        format!(
            "the discriminator is winning: mean D(G(z)) {fake:.3} (under {D_WINS_BELOW}) while G's \
             loss rose {from:.2} -> {to:.2}. {WINNING}"
        )
    })
}

/// Coverage of 3 digits or fewer, or one digit over half of the scored images.
fn mode_collapse(coverage: f64, top: Option<(f64, f64)>) -> Option<String> {
    let top = top.filter(|(_, share)| *share > COLLAPSE_SHARE);
    if coverage > COLLAPSE_COVERAGE && top.is_none() {
        return None;
    }
    let what = match top {
        Some((digit, share)) => format!(
            "digit {digit:.0} is {:.0}% of the scored images (coverage {coverage:.0}/10)",
            100.0 * share
        ),
        None => format!("only {coverage:.0} of 10 digits have 5% of the scored images"),
    };
    Some(format!(
        "mode collapse: {what}. G has found a few images D accepts and draws little else"
    ))
}

/// The best FID is at least `STALLED_EPOCHS` scored epochs old.
fn stalled(fids: &[(f64, f64)]) -> Option<String> {
    let finite: Vec<(f64, f64)> = fids.iter().copied().filter(|f| f.1.is_finite()).collect();
    if finite.len() <= STALLED_EPOCHS {
        return None;
    }
    let (recent, before) = (
        &finite[finite.len() - STALLED_EPOCHS..],
        &finite[..finite.len() - STALLED_EPOCHS],
    );
    let best = before
        .iter()
        .copied()
        .fold((0.0, f64::INFINITY), |b, f| if f.1 < b.1 { f } else { b });
    let now = finite[finite.len() - 1].1;
    recent.iter().all(|f| f.1 >= best.1).then(|| {
        format!(
            "the generator has stalled: FID {now:.1}, no better than {:.1} at epoch {:.0} for \
             {STALLED_EPOCHS} epochs. More epochs of this run are unlikely to help",
            best.1, best.0
        )
    })
}

/// The findings of `csv` (a metrics.csv).
pub fn diagnose_file(csv: &Path) -> Result<Vec<Finding>> {
    Ok(diagnose(&metrics::read(csv)?))
}

/// metrics.png of `csv` with every finding marked, and the findings: one read of the file.
#[cfg(not(target_arch = "wasm32"))]
pub fn curves(csv: &Path) -> Result<(Vec<u8>, Vec<Finding>)> {
    let log = metrics::read(csv)?;
    let found = diagnose(&log);
    let marks: Vec<Mark> = found.iter().map(Finding::mark).collect();
    Ok((crate::io::plot::metrics_png(&log, csv, &marks)?, found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::metrics::EpochScore;

    /// A log of one epoch per value of `g`, 4 logged steps each: G's loss and D(G(z)) per epoch
    /// (flat within it), and (FID, coverage, digit 1's share) for the first `scores.len()`.
    fn log(g: &[f64], fake: &[f64], scores: &[(f64, f64, f64)]) -> MetricsLog {
        let mut m = MetricsLog {
            steps: vec![],
            epochs: vec![],
            d_loss: vec![],
            g_loss: vec![],
            d_real: vec![],
            d_fake: vec![],
            scores: vec![],
        };
        for (e, (&g, &f)) in g.iter().zip(fake).enumerate() {
            for s in 0..4 {
                m.steps.push((e * 100 + (s + 1) * 25) as f64);
                m.epochs.push(e as f64 + 1.0);
                m.d_loss.push(0.1);
                m.g_loss.push(g);
                m.d_real.push(0.9);
                m.d_fake.push(f);
            }
            if let Some(&(fid, coverage, share)) = scores.get(e) {
                m.scores.push(EpochScore {
                    epoch: e as f64 + 1.0,
                    step: (e * 100 + 100) as f64,
                    fid,
                    coverage,
                    top_digit: Some((1.0, share)),
                    class_accuracy: None,
                });
            }
        }
        m
    }

    fn kinds(found: &[Finding]) -> Vec<(u64, Kind)> {
        found.iter().map(|f| (f.epoch, f.kind)).collect()
    }

    #[test]
    fn the_discriminator_wins_only_when_d_g_z_is_low_and_g_loss_rises() {
        let s = [(90.0, 10.0, 0.12), (85.0, 10.0, 0.12), (80.0, 10.0, 0.12)];
        // Low D(G(z)) and rising G loss from epoch 2 on.
        let found = diagnose(&log(&[2.0, 3.0, 3.5], &[0.1, 0.03, 0.02], &s));
        assert_eq!(
            kinds(&found),
            [(2, Kind::DiscriminatorWins), (3, Kind::DiscriminatorWins)]
        );
        assert!(found[0].text.contains("0.030") && found[0].text.contains("2.00 -> 3.00"));
        // Low D(G(z)) but G's loss falling: not winning.
        assert!(diagnose(&log(&[3.0, 2.0, 1.5], &[0.02; 3], &s)).is_empty());
        // G's loss rising but D(G(z)) at 0.05 or above: not winning.
        assert!(diagnose(&log(&[1.0, 2.0, 3.0], &[0.05; 3], &s)).is_empty());
        // The first epoch compares its halves.
        let mut first = log(&[1.0], &[0.01], &s);
        first.g_loss = vec![1.0, 1.0, 2.0, 2.0];
        assert_eq!(kinds(&diagnose(&first)), [(1, Kind::DiscriminatorWins)]);
        first.g_loss.reverse();
        assert!(diagnose(&first).is_empty());
    }

    #[test]
    fn mode_collapse_is_three_digits_or_fewer_or_one_over_half() {
        let g = [1.0, 1.0];
        let fake = [0.3, 0.3];
        let collapsed = diagnose(&log(&g, &fake, &[(80.0, 9.0, 0.2), (90.0, 3.0, 0.4)]));
        assert_eq!(kinds(&collapsed), [(2, Kind::ModeCollapse)]);
        assert!(
            collapsed[0].text.contains("only 3 of 10"),
            "{}",
            collapsed[0].text
        );
        let one = diagnose(&log(&g, &fake, &[(80.0, 9.0, 0.51), (70.0, 9.0, 0.5)]));
        assert_eq!(kinds(&one), [(1, Kind::ModeCollapse)]);
        assert!(one[0].text.contains("digit 1 is 51%"), "{}", one[0].text);
        assert!(diagnose(&log(&g, &fake, &[(80.0, 4.0, 0.5), (70.0, 10.0, 0.1)])).is_empty());
        // Noise (FID 1,000 or more) that the classifier calls one digit is not collapse.
        let noise = diagnose(&log(&g, &fake, &[(1750.0, 1.0, 1.0), (1000.0, 2.0, 0.9)]));
        assert!(noise.is_empty());
    }

    #[test]
    fn the_generator_stalls_when_fid_has_not_improved_for_two_epochs() {
        let g = [1.0; 5];
        let fake = [0.3; 5];
        let fid = |f: [f64; 5]| f.map(|f| (f, 10.0, 0.1));
        let found = diagnose(&log(&g, &fake, &fid([100.0, 80.0, 85.0, 80.0, 90.0])));
        assert_eq!(kinds(&found), [(4, Kind::Stalled), (5, Kind::Stalled)]);
        assert!(found[0].text.contains("no better than 80.0 at epoch 2"));
        assert!(diagnose(&log(&g, &fake, &fid([100.0, 80.0, 85.0, 79.0, 90.0]))).is_empty());
        // Unscored epochs (--fid-samples 0) say nothing about FID.
        assert!(diagnose(&log(&g, &fake, &[])).is_empty());
    }

    /// A log of one epoch per (G's loss, D(G(z))) pair of rows, a logged step every 50 steps,
    /// no scores.
    fn rows(epochs: &[(&[f64], &[f64])]) -> MetricsLog {
        let mut m = log(&[], &[], &[]);
        for (e, (g, fake)) in epochs.iter().enumerate() {
            for (&g, &f) in g.iter().zip(fake.iter()) {
                m.steps.push(50.0 * (m.steps.len() + 1) as f64);
                m.epochs.push(e as f64 + 1.0);
                m.d_loss.push(0.1);
                m.g_loss.push(g);
                m.d_real.push(0.9);
                m.d_fake.push(f);
            }
        }
        m
    }

    /// The first `n` rows of `m`.
    fn first(m: &MetricsLog, n: usize) -> MetricsLog {
        let cut = |v: &Vec<f64>| v[..n].to_vec();
        MetricsLog {
            steps: cut(&m.steps),
            epochs: cut(&m.epochs),
            d_loss: cut(&m.d_loss),
            g_loss: cut(&m.g_loss),
            d_real: cut(&m.d_real),
            d_fake: cut(&m.d_fake),
            scores: vec![],
        }
    }

    #[test]
    fn a_clear_cut_win_is_said_at_the_logged_step_it_becomes_clear_once_per_run_of_wins() {
        let g: &[f64] = &[1.0, 2.0, 2.5, 3.0, 3.2, 3.4, 3.6, 3.8];
        let fake: &[f64] = &[0.1, 0.04, 0.03, 0.03, 0.02, 0.02, 0.02, 0.02];
        let healthy: (&[f64], &[f64]) = (&[1.0; 8], &[0.4; 8]);
        // Epoch 1 wins from its second row on; epoch 2 goes on with D(G(z)) as low (no news,
        // and G's loss no higher than epoch 1's: no verdict); epoch 3 is healthy; epoch 4 wins
        // again.
        let m = rows(&[(g, fake), (g, fake), healthy, (g, fake)]);
        let found = diagnose(&m);
        let within: Vec<(u64, f64)> = found
            .iter()
            .filter(|f| f.within_epoch)
            .map(|f| (f.epoch, f.step))
            .collect();
        // Rows 2 to 5 of an epoch are the first window under 0.05 with G's loss rising.
        assert_eq!(within, [(1, 250.0), (4, 1450.0)]);
        let first_win = &found[0];
        assert_eq!(first_win.kind, Kind::DiscriminatorWins);
        assert!(
            first_win
                .text
                .starts_with("step 250 (epoch 1): the discriminator is winning")
                && first_win.text.contains("(0.020 now)")
                && first_win
                    .text
                    .contains("rose 2.25 -> 3.10 (means of their halves)"),
            "{}",
            first_win.text
        );
        assert_eq!(first_win.mark().epoch, None);
        // The epochs' own verdicts are unchanged beside them.
        let ends: Vec<u64> = found
            .iter()
            .filter(|f| !f.within_epoch)
            .map(|f| f.epoch)
            .collect();
        assert_eq!(ends, [1, 4]);

        // Live: said at the step that makes it clear, not before, not again after.
        assert_eq!(clear_cut_now(&first(&m, 4)), None);
        assert_eq!(clear_cut_now(&first(&m, 5)).map(|f| f.step), Some(250.0));
        assert_eq!(clear_cut_now(&first(&m, 6)), None);
        assert_eq!(clear_cut_now(&first(&m, 12)), None);
        assert_eq!(clear_cut_now(&first(&m, 29)).map(|f| f.step), Some(1450.0));

        // One row at 0.05 breaks the window; a falling G loss is not a win; windows do not
        // reach back into the previous epoch.
        let noisy: &[f64] = &[0.3, 0.04, 0.03, 0.05, 0.02, 0.02, 0.02, 0.3];
        let late = diagnose(&rows(&[(g, noisy)]));
        assert_eq!(late.iter().filter(|f| f.within_epoch).count(), 0);
        let falling: Vec<f64> = g.iter().rev().copied().collect();
        assert!(diagnose(&rows(&[(&falling, fake)])).is_empty());
        let split = rows(&[
            (&[1.0, 2.0, 3.0], &[0.02; 3]),
            (&[3.5, 4.0, 4.5], &[0.02; 3]),
        ]);
        assert!(diagnose(&split).iter().all(|f| !f.within_epoch));
    }

    #[test]
    fn each_finding_is_marked_at_its_epoch_end() {
        let marks: Vec<Mark> = diagnose(&log(&[1.0, 3.0], &[0.3, 0.01], &[(80.0, 10.0, 0.1); 2]))
            .iter()
            .map(Finding::mark)
            .collect();
        assert_eq!((marks[0].step, marks[0].epoch), (200.0, Some(2.0)));
        assert_eq!(marks[0].label, "D wins");
    }
}
