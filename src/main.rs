//! The command line: parse, dispatch to the library, print one clear error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wgsl_gan::data::MAX_IMAGES;
use wgsl_gan::gan::checkpoint::is_conditional;
use wgsl_gan::gan::export::{GENERATOR, describe, export_generator};
use wgsl_gan::gan::generator::GeneratorKind;
use wgsl_gan::gan::options::{TrainOptions, whole};
use wgsl_gan::gan::sample::Digits;
use wgsl_gan::gan::train;
use wgsl_gan::gpu::{self, Gpu};
use wgsl_gan::io::assets::default_path as asset;
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
    #[command(allow_negative_numbers = true)]
    Train(TrainOptions),
    /// Measure training throughput (steady-state ms/step and images/s) and start-up time
    #[command(allow_negative_numbers = true)]
    Bench {
        #[arg(long, value_enum, default_value = "mlp")]
        model: GeneratorKind,
        #[arg(long, value_parser = whole::<u64>, default_value_t = 200)]
        steps: u64,
        #[arg(long, value_parser = whole::<u64>, default_value_t = 20)]
        warmup: u64,
        #[arg(long, value_parser = whole::<usize>, default_value_t = 64)]
        batch_size: usize,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Find the fastest matmul plan for each product of the model's training step on this
    /// adapter and store them in its plan file, which later runs use (WGSL_GAN_TUNED=off: don't)
    #[command(allow_negative_numbers = true)]
    Tune {
        #[arg(long, value_enum, default_value = "mlp")]
        model: GeneratorKind,
        #[arg(long, value_parser = whole::<usize>, default_value_t = 64)]
        batch_size: usize,
        /// Then time this many training steps per round with the built-in and the tuned plans
        /// (0: skip)
        #[arg(long, value_parser = whole::<u64>, default_value_t = 10)]
        steps: u64,
    },
    /// Train the evaluation classifier on MNIST and save it with the test set's feature statistics
    #[command(allow_negative_numbers = true)]
    TrainClassifier {
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value = "assets/mnist-classifier.safetensors")]
        out: PathBuf,
        #[arg(long, value_parser = whole::<u64>, default_value_t = 6)]
        epochs: u64,
        #[arg(long, value_parser = whole::<u64>, default_value_t = 0)]
        seed: u64,
    },
    /// Score generated images: FID against the MNIST test set, inception score, digit coverage
    #[command(allow_negative_numbers = true)]
    Eval {
        /// A GAN checkpoint: its generator makes --count images
        #[arg(long, conflicts_with = "idx", required_unless_present = "idx")]
        checkpoint: Option<PathBuf>,
        /// An IDX file of 28x28 images (e.g. from `sample --idx`)
        #[arg(long)]
        idx: Option<PathBuf>,
        /// How many images: generated from --checkpoint [default: 2000], or the first of --idx
        /// [default: all, up to 65536]
        #[arg(long, value_parser = whole::<usize>)]
        count: Option<usize>,
        #[arg(long, value_parser = whole::<u64>, default_value_t = 0)]
        seed: u64,
        /// [default: ./assets/mnist-classifier.safetensors if present, else the built-in copy]
        #[arg(long)]
        classifier: Option<PathBuf>,
        /// Print the scores as one JSON object
        #[arg(long)]
        json: bool,
        /// Draw with the generator's own weights even when the checkpoint holds their moving
        /// average (`train --ema`), which is used by default
        #[arg(long)]
        no_ema: bool,
    },
    /// Write a checkpoint's generator alone (its moving average if the run kept one), scored,
    /// with the command that trained it in its metadata: the file `sample` uses by default
    #[command(allow_negative_numbers = true)]
    ExportGenerator {
        /// A training checkpoint (`train --out`'s checkpoint.safetensors)
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, default_value = "assets/generator.safetensors")]
        out: PathBuf,
        /// Images scored for the metadata's FID, coverage and class accuracy
        #[arg(long, value_parser = whole::<usize>, default_value_t = 10_000)]
        count: usize,
        /// [default: ./assets/mnist-classifier.safetensors if present, else the built-in copy]
        #[arg(long)]
        classifier: Option<PathBuf>,
    },
    /// Redraw a run folder's pictures: OUT/samples/progress.png (the animated grids) and
    /// OUT/metrics.png (losses, D's beliefs, FID per epoch)
    #[command(allow_negative_numbers = true)]
    Plot {
        /// The run folder (`train --out`)
        out: PathBuf,
    },
    /// Generate images with a checkpoint's generator, or with the built-in class-conditional one
    #[command(allow_negative_numbers = true)]
    Sample {
        /// A training checkpoint or an exported generator [default: the built-in class-conditional
        /// DCGAN generator (./assets/generator.safetensors if present)]
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// How many images [default: 64, or as many as --noise holds]
        #[arg(long, value_parser = whole::<usize>)]
        count: Option<usize>,
        #[arg(long, value_parser = whole::<u64>, default_value_t = 0)]
        seed: u64,
        /// Write a PNG grid
        #[arg(long)]
        png: Option<PathBuf>,
        /// Write the images as an IDX ubyte file (MNIST's format)
        #[arg(long)]
        idx: Option<PathBuf>,
        /// Write the images unquantised: float32 [N, 28, 28] in [-1, 1] (.npy)
        #[arg(long)]
        npy: Option<PathBuf>,
        /// A latent walk instead of independent samples: 8 rows, each 10 steps between two random
        /// points (spherical interpolation)
        #[arg(long)]
        interpolate: bool,
        /// Generate from these latent vectors (.npy, float32 [N, 100]) instead of drawing them
        #[arg(long)]
        noise: Option<PathBuf>,
        /// Write the latent vectors used (.npy, float32 [N, 100]), e.g. to feed PyTorch
        #[arg(long)]
        noise_out: Option<PathBuf>,
        /// A class-conditional checkpoint's digit: 0..9, or `all` for a 10x10 grid, one row per
        /// digit [default: 0..9 in turn]
        #[arg(long, value_parser = parse_digits)]
        digit: Option<Digits>,
        /// Draw with the generator's own weights even when the checkpoint holds their moving
        /// average (`train --ema`), which is used by default
        #[arg(long)]
        no_ema: bool,
    },
}

fn parse_digits(s: &str) -> std::result::Result<Digits, String> {
    match s {
        "all" => Ok(Digits::All),
        _ => s
            .parse::<u8>()
            .ok()
            .filter(|&d| d <= 9)
            .map(Digits::One)
            .ok_or_else(|| format!("expected a digit 0..9 or `all`, got '{s}'")),
    }
}

fn default_data_dir() -> PathBuf {
    asset("mnist")
}

fn info(adapter: Option<&str>) -> Result<()> {
    let adapters = gpu::enumerate(wgpu::Backends::all());
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
    let gpu = Gpu::from_adapter(chosen)?;
    println!("matmul plans: {}", gpu.plans_description());
    Ok(())
}

fn tune(adapter: Option<&str>, model: GeneratorKind, batch: usize, steps: u64) -> Result<()> {
    let gpu = Gpu::new(adapter)?;
    println!("adapter: {}", gpu::describe(&gpu.info));
    println!("| product M x N x K | built-in plan | ms | tuned plan | ms | speed-up |");
    println!("|---|---|---:|---|---:|---:|");
    let summary = wgsl_gan::gan::tune::tune(&gpu, model, batch, steps, |t| {
        println!(
            "| {} | {} | {:.3} | {} | {:.3} | {:.2}x |",
            t.shape,
            t.builtin.0,
            t.builtin.1 * 1e3,
            t.best.0,
            t.best.1 * 1e3,
            t.builtin.1 / t.best.1
        );
    })?;
    let changed = summary
        .tuned
        .iter()
        .filter(|t| t.best.0 != t.builtin.0)
        .count();
    println!(
        "{changed} of {} plans changed; saved {} (runs on this adapter use it; delete it, or \
         set WGSL_GAN_TUNED=off, for the built-in table)",
        summary.tuned.len(),
        summary.path.display()
    );
    if let Some((builtin, tuned)) = summary.step_ms {
        println!(
            "training step (batch {batch}): {builtin:.2} ms with the built-in plans, {tuned:.2} ms tuned ({:.2}x)",
            builtin / tuned
        );
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let adapter = cli.adapter.as_deref();
    match cli.command {
        Command::Info => info(adapter),
        Command::Train(opts) => {
            opts.validate()?;
            let gpu = Gpu::new(adapter)?;
            eprintln!("adapter: {}", gpu::describe(&gpu.info));
            eprintln!("matmul plans: {}", gpu.plans_description());
            let out = opts.out.clone();
            // Ctrl-C (or SIGTERM) finishes the step, writes a checkpoint and stops.
            let _ =
                ctrlc::set_handler(|| train::STOP.store(true, std::sync::atomic::Ordering::SeqCst));
            let resume_hint = format!("{} {}", env!("CARGO_PKG_NAME"), opts.resume_command());
            let summary = train::train(&gpu, opts)?;
            if summary.interrupted {
                eprintln!(
                    "interrupted after step {}; checkpoint written; continue with:\n    {resume_hint}",
                    summary.steps
                );
                return Err(Error::Interrupted);
            }
            let losses = summary
                .last
                .map(|s| format!(" (D loss {:.4}, G loss {:.4})", s.d_loss, s.g_loss))
                .unwrap_or_default();
            eprintln!(
                "trained to step {}{losses}; outputs in {}",
                summary.steps,
                out.display()
            );
            Ok(())
        }
        Command::Bench {
            model,
            steps,
            warmup,
            batch_size,
            data_dir,
        } => {
            let r = wgsl_gan::gan::bench::bench(
                adapter,
                model,
                &data_dir.unwrap_or_else(default_data_dir),
                batch_size,
                steps,
                warmup,
            )?;
            println!("adapter: {}", r.adapter);
            println!("matmul plans: {}", r.plans);
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
        Command::Tune {
            model,
            batch_size,
            steps,
        } => tune(adapter, model, batch_size, steps),
        Command::TrainClassifier {
            data_dir,
            out,
            epochs,
            seed,
        } => {
            let gpu = Gpu::new(adapter)?;
            eprintln!("adapter: {}", gpu::describe(&gpu.info));
            let accuracy = wgsl_gan::eval::classifier::train_and_save(
                &gpu,
                &data_dir.unwrap_or_else(default_data_dir),
                &out,
                epochs,
                seed,
            )?;
            println!(
                "test accuracy {:.2}%; saved {}",
                accuracy * 100.0,
                out.display()
            );
            Ok(())
        }
        Command::Eval {
            checkpoint,
            idx,
            count,
            seed,
            classifier,
            json,
            no_ema,
        } => {
            if let Some(count) = count {
                wgsl_gan::error::check_range("--count", count, 2, MAX_IMAGES)?;
            }
            let gpu = Gpu::new(adapter)?;
            // A class-conditional generator draws 0..9 in turn: those are the digits asked for.
            let mut requested = None;
            let mut read = None;
            let images = match (checkpoint, idx) {
                (Some(c), _) => {
                    let count = count.unwrap_or(2000);
                    if is_conditional(&wgsl_gan::io::checkpoint::load(&c)?) {
                        requested = Some(Digits::Cycled.labels(count));
                    }
                    let generated =
                        wgsl_gan::gan::sample::generate(&gpu, &c, count, seed, !no_ema)?;
                    if generated.averaged {
                        eprintln!("{}", wgsl_gan::gan::sample::averaged_note(&c));
                    }
                    generated.images
                }
                (None, Some(i)) => {
                    let (in_file, images) =
                        wgsl_gan::data::idx::read_images(&i, count.unwrap_or(MAX_IMAGES))?;
                    if in_file < 2 {
                        return Err(Error::file(&i, "holds 1 image; scoring needs at least 2"));
                    }
                    read = Some(in_file);
                    images
                }
                (None, None) => {
                    return Err(Error::Invalid(
                        "give --checkpoint FILE or --idx FILE".into(),
                    ));
                }
            };
            let classifier = classifier.unwrap_or_else(|| asset("mnist-classifier.safetensors"));
            let evaluator = wgsl_gan::eval::Evaluator::load(&gpu, &classifier)?;
            let mut report = evaluator.evaluate_requested(&images, requested.as_deref())?;
            report.read = read;
            if json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            Ok(())
        }
        Command::ExportGenerator {
            checkpoint,
            out,
            count,
            classifier,
        } => {
            let gpu = Gpu::new(adapter)?;
            let classifier = classifier.unwrap_or_else(|| asset("mnist-classifier.safetensors"));
            let e = export_generator(&gpu, &checkpoint, &out, count, &classifier)?;
            let weights = match e.averaged {
                true => "the moving average of the generator's weights",
                false => "the generator's weights",
            };
            println!("{}", e.report);
            println!(
                "wrote {} ({weights}); made by:\n    {}",
                out.display(),
                e.command
            );
            Ok(())
        }
        Command::Plot { out } => {
            let samples = out.join("samples");
            if !samples.is_dir() {
                return Err(Error::file(
                    &samples,
                    "no samples folder: is this a `train --out` folder?",
                ));
            }
            // Both pictures are drawn before either is written: a bad metrics.csv changes nothing.
            let csv = out.join("metrics.csv");
            let (metrics, findings) = wgsl_gan::gan::diagnosis::curves(&csv)?;
            let progress = samples.join("progress.png");
            match wgsl_gan::io::image::write_progress(&samples)? {
                0 => println!(
                    "no sample grids in {} yet: {} not written",
                    samples.display(),
                    progress.display()
                ),
                n => println!("wrote {} ({n} grids)", progress.display()),
            }
            wgsl_gan::io::write_atomic(&out.join("metrics.png"), &metrics)?;
            println!("wrote {}", out.join("metrics.png").display());
            // The failure shapes the curves show, as train said them at each epoch's end.
            for finding in findings {
                println!("diagnosis: {}", finding.text);
            }
            Ok(())
        }
        Command::Sample {
            checkpoint,
            count,
            seed,
            png,
            idx,
            npy,
            interpolate,
            noise,
            noise_out,
            digit,
            no_ema,
        } => {
            let gpu = Gpu::new(adapter)?;
            let checkpoint = match checkpoint {
                Some(c) => c,
                None => {
                    let built_in = asset(GENERATOR);
                    let ckpt = wgsl_gan::io::checkpoint::load(&built_in)?;
                    let what = describe(&ckpt).unwrap_or_default();
                    eprintln!(
                        "generator: {} ({what}); --checkpoint FILE draws with another",
                        built_in.display()
                    );
                    built_in
                }
            };
            let files = wgsl_gan::gan::sample::SampleFiles {
                png: png.as_deref(),
                idx: idx.as_deref(),
                noise: noise.as_deref(),
                noise_out: noise_out.as_deref(),
                npy: npy.as_deref(),
                interpolate,
                digits: digit,
                ema: !no_ema,
            };
            wgsl_gan::gan::sample::sample(&gpu, &checkpoint, count, seed, &files)
        }
    }
}

/// Help and version as clap prints them; a bad command line as one line (clap's message up to
/// its first blank line, which names the flag and the value) and exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(e.exit_code() as u8);
    }
    let text = e.to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!("error: {message} (see --help)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // Past a file-size limit, writes then fail with EFBIG (reported, nothing lost) instead of the
    // default SIGXFSZ killing the process mid-write.
    // SAFETY: installs the "ignore" disposition for one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // Mesa's Vulkan device-select layer connects to Wayland to order the devices, and without a
    // display prints "XDG_RUNTIME_DIR is invalid" twice; wgsl-gan orders adapters itself.
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
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
