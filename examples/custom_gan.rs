//! A GAN that wgsl-gan does not ship, built in one file from the engine's layers: G is a
//! two-layer MLP without batch norm (z 64 -> 256 -> LeakyReLU -> 784 -> tanh) and D a two-layer
//! MLP (784 -> 256 -> LeakyReLU -> logit), trained with binary cross-entropy and Adam(2e-4, 0.5).
//! The step is written once over `Backend`: recorded once for the GPU, and run on the CPU
//! reference, which it must match for its first steps before it trains on the GPU.
//!
//!     cargo run --release --example custom_gan             # writes custom_gan.png

use wgsl_gan::{
    Activation, AdamSpec, Backend, Backprop, Cpu, Dataset, Error, Gpu, Linear, ParamStore, Program,
    Recorder, Result, Run, Schedule, Stream, asset_path, linear_specs, load_dataset, write_grid,
};

const BATCH: usize = 64;
const LATENT: usize = 64;
const HIDDEN: usize = 256;
const LEAKY: Activation = Activation::LeakyRelu(0.2);
const ADAM: AdamSpec = AdamSpec::GAN;

/// Zeroed tensors [BATCH, width], one per width.
fn rows<B: Backend, const N: usize>(be: &mut B, widths: [usize; N]) -> Result<[B::Tensor; N]> {
    let v: Vec<_> = widths
        .iter()
        .map(|&n| be.zeros(&[BATCH, n]))
        .collect::<Result<_>>()?;
    Ok(v.try_into()
        .unwrap_or_else(|_| unreachable!("one tensor per width")))
}

/// The two networks, their stores, and every buffer one step uses.
struct Gan<B: Backend> {
    g: (Linear<B>, Linear<B>, ParamStore<B>),
    d: (Linear<B>, Linear<B>, ParamStore<B>),
    data: (B::Words, B::Words),
    /// z, G's hidden and output (the fake images), the real images, D's hidden and logit.
    act: [B::Tensor; 6],
    /// Their gradients in the same order (dz unused), and pre-activation gradients of G's
    /// output, G's hidden and D's hidden.
    grad: [B::Tensor; 9],
    /// [D loss on real, mean D(x), D loss on fake, mean D(G(z)), G loss, mean D(G(z'))].
    stats: B::Tensor,
}

impl<B: Backend> Gan<B> {
    fn new(be: &mut B, data: &Dataset) -> Result<Self> {
        let g_store = ParamStore::new(
            be,
            [
                linear_specs("g.0", LATENT, HIDDEN),
                linear_specs("g.2", HIDDEN, 784),
            ]
            .concat(),
        )?;
        let d_store = ParamStore::new(
            be,
            [
                linear_specs("d.0", 784, HIDDEN),
                linear_specs("d.2", HIDDEN, 1),
            ]
            .concat(),
        )?;
        g_store.initialize(be, 1)?;
        d_store.initialize(be, 2)?;
        let act = rows(be, [LATENT, HIDDEN, 784, 784, HIDDEN, 1])?;
        let grad = rows(
            be,
            [LATENT, HIDDEN, 784, 784, HIDDEN, 1, 784, HIDDEN, HIDDEN],
        )?;
        Ok(Gan {
            g: (
                Linear::new(be, &g_store, "g.0", LATENT, HIDDEN)?,
                Linear::new(be, &g_store, "g.2", HIDDEN, 784)?,
                g_store,
            ),
            d: (
                Linear::new(be, &d_store, "d.0", 784, HIDDEN)?,
                Linear::new(be, &d_store, "d.2", HIDDEN, 1)?,
                d_store,
            ),
            data: (
                be.words(&data.packed_images())?,
                be.words(&(0..data.count as u32).collect::<Vec<_>>())?,
            ),
            act,
            grad,
            stats: be.zeros(&[6])?,
        })
    }

    /// fake = G(z) with fresh noise from `stream`.
    fn generate(&self, be: &mut B, stream: u32) -> Result<()> {
        let [z, gh, fake, ..] = &self.act;
        be.randn(
            z,
            7,
            Stream {
                base: stream,
                per_run: 2,
            },
        )?;
        self.g.0.forward(be, z, gh, LEAKY)?;
        self.g.1.forward(be, gh, fake, Activation::Tanh)
    }

    /// D's logit on `x`; its loss against `target` goes into stats[slot..slot + 2] and its
    /// gradient (times `share`) back through D: into D's parameters, or into dx.
    fn discriminate(
        &self,
        be: &mut B,
        x: &B::Tensor,
        target: f32,
        slot: usize,
        share: f32,
        dx: Option<&B::Tensor>,
    ) -> Result<()> {
        let [.., dh, logit] = &self.act;
        let [_, _, _, _, ddh, dlogit, _, _, dhpre] = &self.grad;
        self.d.0.forward(be, x, dh, LEAKY)?;
        self.d.1.forward(be, dh, logit, Activation::Identity)?;
        be.bce_with_logits(logit, dlogit, &self.stats, slot, target, share)?;
        // D's own step accumulates its gradients; G's step only passes them through D to dx.
        let mode = dx.map_or(Backprop::Both(ddh), |_| Backprop::Input(ddh));
        self.d.1.backward(be, dh, dlogit, mode)?;
        be.activation_backward(dh, ddh, dhpre, LEAKY)?;
        self.d
            .0
            .backward(be, x, dhpre, dx.map_or(Backprop::Params, Backprop::Input))
    }

    /// One step: D on a real and a fake batch, then G through D.
    fn step(&self, be: &mut B) -> Result<()> {
        let ([z, gh, fake, real, ..], (g0, g1, gs), (_, _, ds)) = (&self.act, &self.g, &self.d);
        let [_, dgh, dfake, _, _, _, dfakepre, dghpre, _] = &self.grad;
        be.fill(&ds.grads, 0.0)?;
        be.gather_batch(&self.data.0, &self.data.1, real)?;
        self.discriminate(be, real, 1.0, 0, 0.5, None)?;
        self.generate(be, 0)?;
        self.discriminate(be, fake, 0.0, 2, 0.5, None)?;
        be.adam(&ds.params, &ds.grads, &ds.m, &ds.v, ADAM)?;
        be.fill(&gs.grads, 0.0)?;
        self.generate(be, 1)?;
        self.discriminate(be, fake, 1.0, 4, 1.0, Some(dfake))?;
        be.activation_backward(fake, dfake, dfakepre, Activation::Tanh)?;
        g1.backward(be, gh, dfakepre, Backprop::Both(dgh))?;
        be.activation_backward(gh, dgh, dghpre, LEAKY)?;
        g0.backward(be, z, dghpre, Backprop::Params)?;
        be.adam(&gs.params, &gs.grads, &gs.m, &gs.v, ADAM)
    }
}

fn main() -> Result<()> {
    let train = load_dataset(&asset_path("mnist"), "train")?;
    let gpu = Gpu::new(None)?;
    let mut be = Recorder::new(&gpu);
    let gan = Gan::new(&mut be, &train)?;
    gan.step(&mut be)?;
    be.input_words("order", &gan.data.1);
    be.output("stats", &gan.stats);
    be.output("fake", &gan.act[2]);
    let mut program = Program::new(&mut be);
    let mut cpu = Cpu::default();
    let reference = Gan::new(&mut cpu, &train)?;

    // The schedule's batches; the first three steps also on the CPU reference, compared.
    let schedule = Schedule::new(0, train.count, BATCH);
    for step in 0..600 {
        let run = Run::new(step, schedule.place(step).offset);
        if let Some(order) = schedule.order_before(step, 0) {
            program.write_words("order", &order)?;
            cpu.write_words(&reference.data.1, &order)?;
        }
        if step < 3 {
            let gpu_stats = program.run_and_read(&run, "stats")?;
            cpu.run = run;
            reference.step(&mut cpu)?;
            let cpu_stats = cpu.read(&reference.stats)?;
            if gpu_stats
                .iter()
                .zip(&cpu_stats)
                .any(|(a, b)| (a - b).abs() > 1e-3 * (1.0 + b.abs()))
            {
                let differ = format!("step {step}: GPU {gpu_stats:?}, CPU {cpu_stats:?}");
                return Err(Error::Invalid(format!(
                    "the GPU step differs from the CPU's: {differ}"
                )));
            }
            println!("step {}: GPU and CPU agree: {gpu_stats:.4?}", step + 1);
        } else if (step + 1) % 200 == 0 {
            let s = program.run_and_read(&run, "stats")?;
            println!(
                "step {}: D loss {:.4}, G loss {:.4}, D(G(z)) {:.3}",
                step + 1,
                0.5 * (s[0] + s[2]),
                s[4],
                s[3]
            );
        } else {
            program.run(&run)?;
        }
    }
    write_grid(
        std::path::Path::new("custom_gan.png"),
        &program.read("fake")?,
        BATCH,
        8,
    )?;
    println!("wrote custom_gan.png ({BATCH} generated digits)");
    Ok(())
}
