//! An MNIST classifier built from wgsl-gan's layers and trained on the GPU: Conv(1->16, 3x3, s2)
//! -> ReLU -> Conv(16->32, 3x3, s2) -> ReLU -> Linear(1568, 10), softmax cross-entropy, Adam.
//! A batch's work is written once over the `Backend` trait and recorded into a `Program`, which
//! then runs it every step as one submit: one program trains, a second scores the test set.
//!
//!     cargo run --release --example mnist_classifier        # two epochs: about 98% on the test set

use wgsl_gan::{
    Activation, AdamSpec, Backend, Backprop, Conv2d, ConvGeom, Dataset, Gpu, Linear, ParamStore,
    Program, Recorder, Result, Run, Schedule, asset_path, conv_specs, linear_specs, load_dataset,
};

const RELU: Activation = Activation::Relu;

/// Records one batch of `data` at the run's offset: gather, forward and the loss ([mean loss,
/// accuracy] as the output "stats"); with `adam`, the backward pass and the update too.
fn record<'g>(
    gpu: &'g Gpu,
    store: &ParamStore<Recorder<'g>>,
    data: &Dataset,
    batch: usize,
    adam: Option<AdamSpec>,
) -> Result<Program<'g>> {
    let mut be = Recorder::new(gpu);
    let geom = |size, channels| ConvGeom::new([batch, size, size, channels], 3, 2, 1);
    let conv1 = Conv2d::new(&mut be, store, "conv1", geom(28, 1), 16)?;
    let conv2 = Conv2d::new(&mut be, store, "conv2", geom(14, 16), 32)?;
    let fc = Linear::new(&be, store, "fc", 1568, 10)?;
    let (b, c1, c2) = (batch, 14 * 14 * 16, 1568);
    let fwd: [&[usize]; 6] = [&[b, 784], &[b, c1], &[b, c2], &[b, 10], &[b], &[2]];
    let bwd: [&[usize]; 4] = [&[b, 10], &[b, c2], &[b, c2], &[b, c1]];
    let t: Vec<_> = fwd
        .iter()
        .chain(&bwd)
        .map(|s| be.zeros(s))
        .collect::<Result<_>>()?;
    let [x, a1, a2, logits, labels, stats, dlogits, da2, dz2, dz1] = &t[..] else {
        unreachable!()
    };
    let order = be.words(&(0..data.count as u32).collect::<Vec<_>>())?;
    let (images, targets) = (
        be.words(&data.packed_images())?,
        be.words(&data.packed_labels())?,
    );
    be.gather_batch(&images, &order, x)?;
    be.gather_labels(&targets, &order, labels)?;
    conv1.forward(&mut be, x, a1, RELU)?;
    conv2.forward(&mut be, a1, a2, RELU)?;
    fc.forward(&mut be, a2, logits, Activation::Identity)?;
    be.softmax_cross_entropy(logits, labels, dlogits, stats, 0, 1.0)?;
    if let Some(adam) = adam {
        be.fill(&store.grads, 0.0)?;
        fc.backward(&mut be, a2, dlogits, Backprop::Both(da2))?;
        be.activation_backward(a2, da2, dz2, RELU)?;
        conv2.backward(&mut be, a1, dz2, Backprop::Both(dz1), Some((a1, RELU)))?;
        conv1.backward(&mut be, x, dz1, Backprop::Params, None)?;
        be.adam(&store.params, &store.grads, &store.m, &store.v, adam)?;
    }
    be.input_words("order", &order);
    be.output("stats", stats);
    Ok(Program::new(&mut be))
}

fn main() -> Result<()> {
    let gpu = Gpu::new(None)?;
    let mnist = asset_path("mnist");
    let train = load_dataset(&mnist, "train")?;
    let test = load_dataset(&mnist, "t10k")?;
    let mut specs = conv_specs("conv1", 1, 16, 3);
    specs.extend(conv_specs("conv2", 16, 32, 3));
    specs.extend(linear_specs("fc", 1568, 10));
    let store = ParamStore::new(&mut Recorder::new(&gpu), specs)?;
    store.initialize(&mut Recorder::new(&gpu), 0)?;

    // Two epochs of batch 64; the schedule says which batch each step reads.
    let mut training = record(&gpu, &store, &train, 64, Some(AdamSpec::PYTORCH))?;
    let schedule = Schedule::new(0, train.count, 64);
    for step in 0..2 * schedule.steps_per_epoch() {
        if let Some(order) = schedule.order_before(step, 0) {
            training.write_words("order", &order)?;
        }
        let place = schedule.place(step);
        let run = Run::new(step, place.offset);
        if place.epoch_end {
            let stats = training.run_and_read(&run, "stats")?;
            println!(
                "epoch {}: loss {:.4}, batch accuracy {:.1}%",
                place.epoch + 1,
                stats[0],
                100.0 * stats[1]
            );
        } else {
            training.run(&run)?;
        }
    }
    training.finish()?;

    // The test set in order, 500 images per run.
    let mut scoring = record(&gpu, &store, &test, 500, None)?;
    let mut correct = 0.0;
    for offset in (0..test.count).step_by(500) {
        correct += 500.0 * scoring.run_and_read(&Run::new(0, offset), "stats")?[1] as f64;
    }
    println!("test accuracy: {:.2}%", 100.0 * correct / test.count as f64);
    Ok(())
}
