//! Which images each training step reads: step -> (epoch, place in the epoch, batch offset), and
//! the epoch's order when a step needs it. Every loop over a dataset (train, the page, bench, the
//! classifier, the web reference) takes its batches from here, so a run resumed at any step reads
//! the very batches an uninterrupted run reads.

use super::epoch_order;

/// Epochs of `count` images in batches of `batch`, each epoch in the order `epoch_order(seed,
/// epoch)`; the last `count % batch` images of an epoch's order are skipped.
///
/// ```
/// use wgsl_gan::Schedule;
///
/// let schedule = Schedule::new(0, 1000, 64); // 15 whole batches per epoch
/// assert_eq!(schedule.steps_per_epoch(), 15);
/// let place = schedule.place(16); // the second step of the second epoch
/// assert_eq!((place.epoch, place.in_epoch, place.offset), (1, 1, 64));
/// assert!(schedule.place(14).epoch_end);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Seed of the epochs' shuffled orders.
    pub seed: u64,
    /// Images in the dataset.
    pub count: usize,
    /// Images per step.
    pub batch: usize,
}

/// Where a step falls in its [`Schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepPlace {
    /// 0-based epoch.
    pub epoch: u64,
    /// 0-based step within the epoch.
    pub in_epoch: u64,
    /// The batch's first row in the epoch's order.
    pub offset: usize,
    /// This step ends its epoch.
    pub epoch_end: bool,
}

impl Schedule {
    /// The schedule of `count` images in batches of `batch`, shuffled by `seed`.
    pub fn new(seed: u64, count: usize, batch: usize) -> Schedule {
        Schedule { seed, count, batch }
    }

    /// Whole batches per epoch (at least 1).
    pub fn steps_per_epoch(&self) -> u64 {
        (self.count / self.batch.max(1)).max(1) as u64
    }

    /// Where `step` (0-based, counted from the start of training) falls.
    pub fn place(&self, step: u64) -> StepPlace {
        let per_epoch = self.steps_per_epoch();
        let in_epoch = step % per_epoch;
        StepPlace {
            epoch: step / per_epoch,
            in_epoch,
            offset: in_epoch as usize * self.batch,
            epoch_end: in_epoch + 1 == per_epoch,
        }
    }

    /// The order to load before `step`: at each epoch's start, and at `first`, the first step this
    /// process runs (a resumed run starts mid-epoch with that epoch's order); else none.
    pub fn order_before(&self, step: u64, first: u64) -> Option<Vec<u32>> {
        let place = self.place(step);
        (place.in_epoch == 0 || step == first)
            .then(|| epoch_order(self.seed, place.epoch, self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_reads_the_batches_of_an_uninterrupted_one() {
        let s = Schedule::new(3, 50, 16); // 3 steps per epoch, 2 images left out
        assert_eq!(s.steps_per_epoch(), 3);
        let batches = |from: u64, to: u64| {
            let mut order = Vec::new();
            (from..to)
                .map(|step| {
                    if let Some(o) = s.order_before(step, from) {
                        order = o;
                    }
                    let p = s.place(step);
                    order[p.offset..p.offset + 16].to_vec()
                })
                .collect::<Vec<_>>()
        };
        let whole = batches(0, 7);
        let resumed = [batches(0, 4), batches(4, 7)].concat();
        assert_eq!(whole, resumed);
        assert_ne!(whole[0], whole[3], "epochs are shuffled anew");
        let p = s.place(5);
        assert_eq!(
            (p.epoch, p.in_epoch, p.offset, p.epoch_end),
            (1, 2, 32, true)
        );
        assert_eq!(s.order_before(4, 0), None);
    }
}
