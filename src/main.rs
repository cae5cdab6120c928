//! The command line: parse, dispatch to the library, print one clear error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wgsl_gan::gan::train::{self, TrainOptions};
use wgsl_gan::gpu::{self, Gpu};
use wgsl_gan::{Error, Result};

#[derive(Parser)]
#[command(
    name = "wgsl-gan",
    version,
    about = "A GPU compute engine in WGSL, and a GAN trained on MNIST with it"
)]
struct Cli {
    /// Use the adapter whose name or backend contains this (also: WGSL_GAN_ADAPTER)
    #[arg(long, global = true, value_name = "NAME")]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every adapter wgpu finds and the one wgsl-gan would use
    Info,
    /// Train the GAN on MNIST (or any folder of MNIST-format IDX files)
    Train {
        #[arg(long, default_value_t = 5)]
        epochs: u64,
        /// Stop after this many steps in all (a checkpoint is written at the stop)
        #[arg(long)]
        max_steps: Option<u64>,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder: metrics.csv, samples/epoch_NNN.png, checkpoint.safetensors
        #[arg(long, default_value = "runs/gan")]
        out: PathBuf,
        /// Continue from OUT/checkpoint.safetensors
        #[arg(long)]
        resume: bool,
        /// Folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] [default: assets/mnist]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value_t = 2e-4)]
        lr: f32,
        #[arg(long, default_value_t = 0.5)]
        beta1: f32,
        /// Also checkpoint every STEPS steps (always at each epoch's end)
        #[arg(long, value_name = "STEPS")]
        checkpoint_every: Option<u64>,
        /// Read the losses back every N steps (the only GPU->CPU transfer of training)
        #[arg(long, default_value_t = 50)]
        log_every: u64,
    },
    /// Measure training throughput (steady-state ms/step and images/s) and start-up time
    Bench {
        #[arg(long, default_value_t = 200)]
        steps: u64,
        #[arg(long, default_value_t = 20)]
        warmup: u64,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Train the evaluation classifier on MNIST and save it with the test set's feature statistics
    TrainClassifier {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value = "assets/mnist-classifier.safetensors")]
        out: PathBuf,
        #[arg(long, default_value_t = 3)]
        epochs: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Score generated images: FID against the MNIST test set, inception score, digit coverage
    Eval {
        /// A GAN checkpoint: its generator makes --count images
        #[arg(long, conflicts_with = "idx", required_unless_present = "idx")]
        checkpoint: Option<PathBuf>,
        /// An IDX file of 28x28 images (e.g. from `sample --idx`)
        #[arg(long)]
        idx: Option<PathBuf>,
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "assets/mnist-classifier.safetensors")]
        classifier: PathBuf,
    },
    /// Generate images with a checkpoint's generator
    Sample {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 64)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write a PNG grid
        #[arg(long)]
        png: Option<PathBuf>,
        /// Write the images as an IDX ubyte file (MNIST's format)
        #[arg(long)]
        idx: Option<PathBuf>,
    },
}

fn default_data_dir() -> PathBuf {
    let local = PathBuf::from("assets/mnist");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/mnist"))
    }
}

fn info(adapter: Option<&str>) -> Result<()> {
    let adapters = gpu::enumerate();
    if adapters.is_empty() {
        println!("no adapters found");
    }
    for a in &adapters {
        let l = a.limits();
        println!("{}", gpu::describe(&a.get_info()));
        println!(
            "    max storage binding {} MiB, workgroup storage {} KiB, invocations/workgroup {}, storage buffers/stage {}, timestamps {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_storage_buffers_per_shader_stage,
            a.features().contains(wgpu::Features::TIMESTAMP_QUERY)
        );
    }
    let chosen = gpu::choose(adapters, adapter)?;
    println!("chosen: {}", gpu::describe(&chosen.get_info()));
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let adapter = cli.adapter.as_deref();
    match cli.command {
        Command::Info => info(adapter),
        Command::Train {
            epochs,
            max_steps,
            batch_size,
            seed,
            out,
            resume,
            data_dir,
            lr,
            beta1,
            checkpoint_every,
            log_every,
        } => {
            let opts = TrainOptions {
                epochs,
                max_steps,
                batch: batch_size,
                seed,
                out,
                resume,
                data_dir: data_dir.unwrap_or_else(default_data_dir),
                lr,
                beta1,
                checkpoint_every,
                log_every,
                progress: true,
            };
            opts.validate()?;
            let gpu = Gpu::new(adapter)?;
            eprintln!("adapter: {}", gpu::describe(&gpu.info));
            let out = opts.out.clone();
            // Ctrl-C (or SIGTERM) finishes the step, writes a checkpoint and stops.
            let _ =
                ctrlc::set_handler(|| train::STOP.store(true, std::sync::atomic::Ordering::SeqCst));
            let resume_hint = format!(
                "{} train --resume --out {} --epochs {epochs} --batch-size {batch_size} --seed {seed}",
                env!("CARGO_PKG_NAME"),
                opts.out.display()
            );
            let summary = train::train(&gpu, opts)?;
            if summary.interrupted {
                eprintln!(
                    "interrupted after step {}; checkpoint written; continue with:\n    {resume_hint}",
                    summary.steps
                );
                return Err(Error::Interrupted);
            }
            eprintln!(
                "trained to step {}; outputs in {}",
                summary.steps,
                out.display()
            );
            Ok(())
        }
        Command::Bench {
            steps,
            warmup,
            batch_size,
            data_dir,
        } => {
            let r = train::bench(
                adapter,
                &data_dir.unwrap_or_else(default_data_dir),
                batch_size,
                steps,
                warmup,
            )?;
            println!("adapter: {}", r.adapter);
            println!("data load (CPU decode): {:.2} s", r.data_load_s);
            println!(
                "start-up (adapter, pipelines, upload): {:.2} s",
                r.start_up_s
            );
            println!("dispatches per step: {}", r.dispatches_per_step);
            println!(
                "batch {batch_size}, {} timed steps: {:.2} ms/step, {:.0} images/s",
                r.steps, r.ms_per_step, r.images_per_s
            );
            Ok(())
        }
        Command::TrainClassifier { data_dir, out, epochs, seed } => {
            let gpu = Gpu::new(adapter)?;
            eprintln!("adapter: {}", gpu::describe(&gpu.info));
            let accuracy = wgsl_gan::eval::classifier::train_and_save(&gpu, &data_dir.unwrap_or_else(default_data_dir), &out, epochs, seed)?;
            println!("test accuracy {:.2}%; saved {}", accuracy * 100.0, out.display());
            Ok(())
        }
        Command::Eval { checkpoint, idx, count, seed, classifier } => {
            let gpu = Gpu::new(adapter)?;
            let images = match (checkpoint, idx) {
                (Some(c), _) => train::generate(&gpu, &c, count, seed)?,
                (None, Some(i)) => wgsl_gan::data::idx::read_images(&i, count)?,
                (None, None) => return Err(Error::Invalid("give --checkpoint FILE or --idx FILE".into())),
            };
            let evaluator = wgsl_gan::eval::Evaluator::load(&gpu, &classifier)?;
            println!("{}", evaluator.evaluate(&images)?);
            Ok(())
        }
        Command::Sample {
            checkpoint,
            count,
            seed,
            png,
            idx,
        } => {
            let gpu = Gpu::new(adapter)?;
            train::sample(
                &gpu,
                &checkpoint,
                count,
                seed,
                png.as_deref(),
                idx.as_deref(),
            )
        }
    }
}

fn main() -> ExitCode {
    // Past a file-size limit, writes then fail with EFBIG (reported, nothing lost) instead of the
    // default SIGXFSZ killing the process mid-write.
    // SAFETY: installs the "ignore" disposition for one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // 130: stopped by Ctrl-C (the message with the resume command is already out).
        Err(Error::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, Error::Invalid(_)) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
