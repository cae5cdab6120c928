//! The GPU context: adapter choice, device with the adapter's own limits, error capture.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::gpu::plan::{self, MatmulPlan, MatmulShape};
use crate::gpu::tune::{self, PlanTable};

/// Environment variable with the same meaning as `--adapter`.
pub const ADAPTER_ENV: &str = "WGSL_GAN_ADAPTER";

/// Environment variable that overrides the kernel style (`gpu` or `cpu`), to compare them.
pub const KERNELS_ENV: &str = "WGSL_GAN_KERNELS";

/// How long a wait for the GPU may see no progress. The slowest single submission here (a
/// training step on a software driver) takes about a second.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Test hook, only in builds with the `test-hooks` feature: `WGSL_GAN_WAIT_LIMIT_MS=N` lowers
/// the bound so that a test can make an ordinary step "hang".
const WAIT_LIMIT_ENV: &str = "WGSL_GAN_WAIT_LIMIT_MS";

fn wait_limit() -> Duration {
    std::env::var(WAIT_LIMIT_ENV)
        .ok()
        .filter(|_| cfg!(feature = "test-hooks"))
        .and_then(|v| v.parse().ok())
        .map_or(WAIT_LIMIT, Duration::from_millis)
}

/// The family of kernel variants a device runs (docs/PERFORMANCE.md has the measurements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelStyle {
    /// Workgroup-memory tiles and tree reductions: many threads, cheap barriers.
    Gpu,
    /// For CPU drivers (llvmpipe), where a storage load costs a loop over the SIMD lanes and a
    /// barrier a coroutine switch: the lanes matmul (where subgroups allow) and serial
    /// per-column reductions with vec4 loads (channels in fours).
    Cpu,
}

/// The GPU context: one adapter's device and queue, its limits and features, the kernel style
/// chosen for it, and the pipeline cache every launcher goes through.
///
/// One kernel, launched on the GPU and checked against its CPU reference (what
/// tests/kernels.rs does for every kernel):
///
/// ```
/// use wgsl_gan::{Activation, Gpu, cpu, gpu};
///
/// let g = Gpu::new(None)?;
/// let values = [-2.0, -0.5, 0.0, 0.5, 2.0];
/// let (x, y) = (gpu::Tensor::from_slice(&g, &values, &[5])?, gpu::Tensor::zeros(&g, &[5])?);
/// let dispatch = gpu::ops::activation_forward(&g, &x, &y, Activation::Tanh)?; // prepared once
/// g.run(&[&dispatch])?; // one submit; run it again as often as needed
///
/// let (cx, cy) = (cpu::Tensor::from_slice(&values, &[5])?, cpu::Tensor::zeros(&[5]));
/// cpu::ops::activation_forward(&cx, &cy, Activation::Tanh)?;
/// for (a, b) in y.read(&g)?.iter().zip(cy.to_vec()) {
///     assert!((a - b).abs() < 1e-6);
/// }
/// # Ok::<(), wgsl_gan::Error>(())
/// ```
pub struct Gpu {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// The device's queue.
    pub queue: wgpu::Queue,
    /// The adapter's name, driver and type.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (the adapter's own).
    pub limits: wgpu::Limits,
    /// Whether timestamp queries work (profiles then time kernels on the GPU).
    pub timestamps: bool,
    /// Whether shaders may use subgroup operations.
    pub subgroups: bool,
    /// Chosen from the adapter type, or by `WGSL_GAN_KERNELS`; tests set it to check both.
    pub style: KernelStyle,
    /// Bound where a kernel's optional input is absent (a binding cannot alias the output).
    pub(crate) placeholder: wgpu::Buffer,
    /// The same for an absent sampled texture.
    pub(crate) placeholder_texture: wgpu::TextureView,
    /// And for an absent written (storage) texture: one texture cannot be both in a dispatch.
    pub(crate) placeholder_written: wgpu::TextureView,
    pub(crate) pipelines: super::kernel::PipelineCache,
    /// Matmul plans from `wgsl-gan tune` for this adapter, and the file they came from.
    tuned: RefCell<Option<PlanTable>>,
    /// The plan file of this adapter (`wgsl-gan tune` writes it), if the platform has one.
    pub plan_file: Option<PathBuf>,
    /// Every product planned so far: what `tune` times.
    shapes: RefCell<BTreeSet<MatmulShape>>,
    errors: Arc<Mutex<Vec<String>>>,
    buffers_created: AtomicUsize,
    bind_groups_created: AtomicUsize,
}

/// A `width` x `height` rgba32float texture that kernels write (storage) and read (sampled),
/// and that can be copied out (tensor twins' test hook).
pub(crate) fn rgba32_texture(
    device: &wgpu::Device,
    width: u32,
    height: u32,
    label: &str,
) -> wgpu::TextureView {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::STORAGE_BINDING
            | wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    texture.create_view(&Default::default())
}

/// One line describing an adapter, as `info` prints it.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    )
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    // Prefer the native APIs over GL, which lacks compute features on many drivers.
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 1,
        _ => 0,
    };
    (kind, backend)
}

fn matches(info: &wgpu::AdapterInfo, wanted: &str) -> bool {
    let wanted = wanted.to_lowercase();
    info.name.to_lowercase().contains(&wanted)
        || format!("{:?}", info.backend)
            .to_lowercase()
            .contains(&wanted)
}

const HOW_TO_GET_ONE: &str = "install a GPU driver with Vulkan, Metal or DX12 support, or Mesa's software \
Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`)";

/// Every adapter wgpu finds on `backends`.
#[cfg(not(target_arch = "wasm32"))]
pub fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Picks the adapter named by `wanted` (substring of its name or backend), else by
/// `WGSL_GAN_ADAPTER`, else the best: discrete > integrated > virtual > CPU.
pub fn choose(adapters: Vec<wgpu::Adapter>, wanted: Option<&str>) -> Result<wgpu::Adapter> {
    let env = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
    let wanted = wanted.map(str::to_string).or(env);
    if adapters.is_empty() {
        return Err(Error::NoAdapter(format!(
            "wgpu found none; {HOW_TO_GET_ONE}"
        )));
    }
    let names: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
    let mut candidates: Vec<wgpu::Adapter> = match &wanted {
        Some(w) => adapters
            .into_iter()
            .filter(|a| matches(&a.get_info(), w))
            .collect(),
        None => adapters,
    };
    candidates.sort_by_key(|a| std::cmp::Reverse(rank(&a.get_info())));
    match (candidates.into_iter().next(), wanted) {
        (Some(a), _) => Ok(a),
        (None, Some(w)) => Err(Error::NoAdapter(format!(
            "none matches '{w}'; found: {}",
            names.join("; ")
        ))),
        (None, None) => Err(Error::NoAdapter(HOW_TO_GET_ONE.to_string())),
    }
}

/// What every kernel needs of an adapter, checked when it is opened so that a short adapter is
/// one message naming the limit, not a pipeline error in the middle of a run.
pub fn check_limits(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Result<()> {
    let needs = [
        // The batch-norm backward (with its fused activations) binds 9 storage buffers.
        (
            "max_storage_buffers_per_shader_stage",
            limits.max_storage_buffers_per_shader_stage,
            9,
        ),
        // Reductions and elementwise kernels run 256 invocations per workgroup.
        (
            "max_compute_invocations_per_workgroup",
            limits.max_compute_invocations_per_workgroup,
            256,
        ),
        (
            "max_compute_workgroup_size_x",
            limits.max_compute_workgroup_size_x,
            256,
        ),
        // The tiled matmul stages 2 x 8 KiB of tiles in workgroup memory.
        (
            "max_compute_workgroup_storage_size",
            limits.max_compute_workgroup_storage_size,
            16384,
        ),
    ];
    for (name, has, needs) in needs {
        if has < needs {
            return Err(Error::NoAdapter(format!(
                "{} has {name} = {has}; wgsl-gan needs at least {needs}",
                describe(info)
            )));
        }
    }
    Ok(())
}

impl Gpu {
    /// Opens the chosen adapter (see [`choose`]) with all the limits it offers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(wanted: Option<&str>) -> Result<Gpu> {
        // GL only when no Vulkan, Metal or DX12 adapter serves: opening GL through EGL is slow,
        // and where several threads open adapters at once it can hang (every kernel test of a
        // parallel `cargo test` blocked on an NVIDIA H200 that also offers GL).
        let adapter = match choose(enumerate(wgpu::Backends::PRIMARY), wanted) {
            Ok(adapter) => adapter,
            Err(_) => choose(enumerate(wgpu::Backends::all()), wanted)?,
        };
        Gpu::from_adapter(adapter)
    }

    #[cfg(not(target_arch = "wasm32"))]
    /// Opens a device on `adapter` (for callers that choose their adapter themselves).
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Gpu> {
        pollster::block_on(Gpu::open(adapter))
    }

    /// The browser's WebGPU adapter (WebGL has no compute shaders).
    #[cfg(target_arch = "wasm32")]
    pub async fn browser() -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::BROWSER_WEBGPU,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "this browser offers no WebGPU adapter ({e}); use a browser with WebGPU \
                     (Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows), or enable it \
                     (chrome://flags/#enable-unsafe-webgpu)"
                ))
            })?;
        Gpu::open(adapter).await
    }

    /// The device on `adapter`, with all the limits it offers.
    pub async fn open(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let style = match std::env::var(KERNELS_ENV).ok().as_deref() {
            None | Some("") => match info.device_type {
                wgpu::DeviceType::Cpu => KernelStyle::Cpu,
                _ => KernelStyle::Gpu,
            },
            Some("gpu") => KernelStyle::Gpu,
            Some("cpu") => KernelStyle::Cpu,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "{KERNELS_ENV}={other}: expected `gpu` or `cpu`"
                )));
            }
        };
        check_limits(&info, &limits)?;
        // Subgroups for the CPU-driver matmul (shaders/matmul_lanes.wgsl).
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgsl-gan"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", describe(&info))))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let msg = match &e {
                wgpu::Error::OutOfMemory { .. } => format!("out of GPU memory: {e}"),
                _ => e.to_string(),
            };
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(msg);
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("device lost: {msg}"));
            }
        });
        log::info!("using adapter {}", describe(&info));
        let placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("placeholder"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let placeholder_texture = rgba32_texture(&device, 1, 1, "placeholder texture");
        let placeholder_written = rgba32_texture(&device, 1, 1, "placeholder written texture");
        let (plan_file, tuned) = tune::load(&info, style).unzip();
        Ok(Gpu {
            tuned: RefCell::new(tuned),
            plan_file,
            shapes: Default::default(),
            placeholder,
            placeholder_texture,
            placeholder_written,
            device,
            queue,
            info,
            limits,
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            style,
            pipelines: Default::default(),
            errors,
            buffers_created: AtomicUsize::new(0),
            bind_groups_created: AtomicUsize::new(0),
        })
    }

    /// Whether every subgroup has at least 8 invocations, so that a workgroup of 8 is one
    /// subgroup (what shaders/matmul_lanes.wgsl relies on).
    pub fn subgroups_of_8(&self) -> bool {
        self.subgroups && self.info.subgroup_min_size >= 8
    }

    /// The plan for a product: the tuned one where the plan file lists it (and it fits this
    /// adapter), else the built-in table's.
    pub fn matmul_plan(&self, shape: MatmulShape) -> MatmulPlan {
        self.shapes.borrow_mut().insert(shape);
        let MatmulShape { m, n, k, .. } = shape;
        self.tuned
            .borrow()
            .as_ref()
            .and_then(|t| t.plans.get(&shape).copied())
            .filter(|&plan| plan::plan_fits(self, plan, m, n, k))
            .unwrap_or_else(|| MatmulPlan::choose(self, m, n, k))
    }

    /// Every product planned on this device so far, in order.
    pub fn matmul_shapes(&self) -> Vec<MatmulShape> {
        self.shapes.borrow().iter().copied().collect()
    }

    /// The matmul plans read from this adapter's plan file, if there was one.
    pub fn tuned_plans(&self) -> Option<PlanTable> {
        self.tuned.borrow().clone()
    }

    /// Replaces the tuned plans (`None`: the built-in table) for the dispatches prepared next.
    pub fn set_tuned_plans(&self, plans: Option<PlanTable>) {
        *self.tuned.borrow_mut() = plans;
    }

    /// Where the matmul plans come from, in words.
    pub fn plans_description(&self) -> String {
        match (&*self.tuned.borrow(), &self.plan_file) {
            (Some(t), Some(path)) => {
                format!("tuned for {} products ({})", t.plans.len(), path.display())
            }
            (Some(t), None) => format!("tuned for {} products", t.plans.len()),
            (None, _) => "built-in table (`wgsl-gan tune` may find faster ones)".into(),
        }
    }

    /// Returns the first GPU error reported since the last check, if any.
    pub fn check(&self) -> Result<()> {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.is_empty() {
            return Ok(());
        }
        let all = errors.join("; ");
        errors.clear();
        Err(Error::Gpu(all))
    }

    /// Blocks until the queue is idle, then reports any GPU error.
    pub fn wait(&self) -> Result<()> {
        self.wait_until(None)
    }

    /// Blocks until the submission `index` has finished, then reports any GPU error.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        self.wait_until(Some(index))
    }

    /// Every wait is bounded: a hung driver becomes an error (the caller stops; checkpoints on
    /// disk are only ever replaced whole) instead of a process that never returns.
    fn wait_until(&self, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        let limit = wait_limit();
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: index,
                timeout: Some(limit),
            })
            .map_err(|e| match e {
                wgpu::PollError::Timeout => Error::Gpu(format!(
                    "{} made no progress for {:.0} s: the driver may be hung",
                    describe(&self.info),
                    limit.as_secs_f64()
                )),
                e => Error::Gpu(format!("waiting for the GPU failed: {e}")),
            })?;
        self.check()
    }

    /// A storage buffer of `bytes`, checked against the device's limits first.
    pub fn storage_buffer(&self, bytes: u64, label: &str) -> Result<wgpu::Buffer> {
        let max = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > max {
            return Err(Error::Gpu(format!(
                "{label}: {bytes} bytes exceeds this adapter's storage buffer limit of {max} bytes; use a smaller batch"
            )));
        }
        let bytes = bytes.max(4).div_ceil(4) * 4;
        // In a browser an error scope resolves on the event loop: an out-of-memory there is
        // reported by the next check instead.
        #[cfg(not(target_arch = "wasm32"))]
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "{label}: out of GPU memory allocating {bytes} bytes: {e}"
            )));
        }
        Ok(buffer)
    }

    /// A uniform buffer holding `words` (padded to 16 bytes).
    pub(crate) fn uniform_buffer(&self, words: &[u32]) -> wgpu::Buffer {
        let mut padded = words.to_vec();
        padded.resize(words.len().div_ceil(4).max(1) * 4, 0);
        let buffer = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (padded.len() * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(&padded));
        buffer
    }

    /// Every buffer the crate makes goes through here, so that creations can be counted.
    pub fn create_buffer(&self, desc: &wgpu::BufferDescriptor<'_>) -> wgpu::Buffer {
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer(desc)
    }

    pub(crate) fn count_bind_group(&self) {
        self.bind_groups_created.fetch_add(1, Ordering::Relaxed);
    }

    /// (buffers, bind groups) created so far: lets tests prove a training step allocates nothing.
    pub fn creation_counts(&self) -> (usize, usize) {
        (
            self.buffers_created.load(Ordering::Relaxed),
            self.bind_groups_created.load(Ordering::Relaxed),
        )
    }

    /// Copies `bytes` of `src` from `offset` back to the host.
    pub fn read_bytes(&self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        ready_now(self.read_bytes_async(src, offset, bytes))
    }

    /// [`Gpu::read_bytes`] for callers that can await (the browser build).
    pub async fn read_bytes_async(
        &self,
        src: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        let staging = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(src, offset, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        map_and_read_async(self, &staging, bytes).await
    }

    /// Minimum alignment, in f32 elements, of a tensor view's offset inside a buffer.
    pub fn view_alignment(&self) -> usize {
        (self.limits.min_storage_buffer_offset_alignment as usize / 4).max(1)
    }
}

/// Maps a MAP_READ buffer (after the copy into it was submitted) and returns its first `bytes`.
pub fn map_and_read(gpu: &Gpu, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    ready_now(map_and_read_async(gpu, staging, bytes))
}

/// The one path of every GPU->CPU read. Natively the wait for the GPU delivers the mapping, so
/// the future is ready when first polled; in a browser it resolves when the page's event loop
/// delivers it.
pub async fn map_and_read_async(gpu: &Gpu, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let slice = staging.slice(..bytes);
    let (tx, rx) = oneshot();
    slice.map_async(wgpu::MapMode::Read, tx);
    gpu.wait()?;
    rx.await
        .map_err(|e| Error::Gpu(format!("cannot map buffer for reading: {e}")))?;
    let data = slice
        .get_mapped_range()
        .map_err(|e| Error::Gpu(format!("cannot read mapped buffer: {e}")))?
        .to_vec();
    staging.unmap();
    Ok(data)
}

/// The result of a read whose data has arrived; an error where it would have to wait for an
/// event loop (a synchronous read in a browser: that caller needs the async twin).
pub fn ready_now<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(Error::Gpu(
            "a synchronous GPU read cannot complete here (in a browser, reads must be awaited)"
                .into(),
        )),
    }
}

/// A one-value channel whose receiver is a future (the map callback may run on another thread).
fn oneshot<T: Send + 'static>() -> (impl FnOnce(T) + Send + 'static, impl Future<Output = T>) {
    type Slot<T> = Arc<Mutex<(Option<T>, Option<std::task::Waker>)>>;
    let slot: Slot<T> = Arc::new(Mutex::new((None, None)));
    let sender = slot.clone();
    let send = move |value: T| {
        let mut s = sender.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = Some(value);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    };
    let receive = std::future::poll_fn(move |cx| {
        let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
        match s.0.take() {
            Some(v) => std::task::Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    });
    (send, receive)
}
