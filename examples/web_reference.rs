//! The native CPU reference for web/test.sh: the article's GAN trained STEPS steps by the CPU
//! kernels (the reference every shader is tested against) from the seed, batch size and MNIST
//! files the page uses; prints the statistics of each step and the generator's checksum as JSON.
//!
//!     cargo run --release --example web_reference -- STEPS BATCH SEED

use std::path::Path;

use wgsl_gan::Result;
use wgsl_gan::data::{Schedule, idx::load_dataset};
use wgsl_gan::gan::generator::GeneratorKind;
use wgsl_gan::gan::step::{Gan, StepConfig};
use wgsl_gan::gan::trainer::generator_checksum;
use wgsl_gan::nn::{Backend, Cpu, Run};

fn main() -> Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("usage: web_reference STEPS BATCH SEED"))
        .collect();
    let [steps, batch, seed] = args[..] else {
        panic!("usage: web_reference STEPS BATCH SEED");
    };
    let data = load_dataset(Path::new("assets/mnist"), "train")?;
    let config = StepConfig::article(GeneratorKind::Mlp, batch as usize, seed);
    let mut cpu = Cpu::default();
    let (images, labels) = (data.packed_images(), data.packed_labels());
    let gan = Gan::new(&mut cpu, config, &images, &labels, data.count)?;
    gan.initialize(&mut cpu)?;
    let schedule = Schedule::new(seed, data.count, batch as usize);
    let mut stats = Vec::new();
    for step in 0..steps {
        if let Some(order) = schedule.order_before(step, 0) {
            cpu.write_words(&gan.order, &order)?;
        }
        cpu.run = Run {
            step,
            offset: schedule.place(step).offset,
            lr: None,
        };
        gan.step(&mut cpu)?;
        stats.push(config.objective.stats(&gan.stats.to_vec()).values());
    }
    let checksum = generator_checksum(&gan.g_store.values(&mut cpu)?);
    let rows: Vec<String> = stats
        .iter()
        .map(|s| format!("[{}]", s.map(|v| v.to_string()).join(", ")))
        .collect();
    println!(
        "{{\"losses\": [{}], \"checksum\": [{}, {}, {}]}}",
        rows.join(", "),
        checksum[0],
        checksum[1],
        checksum[2]
    );
    Ok(())
}
