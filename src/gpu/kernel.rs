//! Shaders, the pipeline cache and prepared dispatches ("prepare once, record many times").

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::Result;
use crate::gpu::Gpu;

/// The shader registry, one line per file: the variant and its file under shaders/.
macro_rules! shaders {
    ($($variant:ident => $file:literal,)*) => {
        /// Every shader file; `common.wgsl` (helpers) is prepended to each.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Shader {
            $(#[doc = concat!("shaders/", $file)] $variant,)*
        }

        impl Shader {
            /// Every shader file, in registry order.
            pub const ALL: &[Shader] = &[$(Shader::$variant,)*];

            /// The file's name under shaders/.
            pub fn file_name(self) -> &'static str {
                match self {
                    $(Shader::$variant => $file,)*
                }
            }

            fn body(self) -> &'static str {
                match self {
                    $(Shader::$variant => include_str!(concat!("../../shaders/", $file)),)*
                }
            }
        }
    };
}

shaders! {
    Matmul => "matmul.wgsl",
    MatmulLanes => "matmul_lanes.wgsl",
    Pack => "pack.wgsl",
    Conv => "conv.wgsl",
    BatchNorm => "batchnorm.wgsl",
    Activation => "activation.wgsl",
    Loss => "loss.wgsl",
    Reduce => "reduce.wgsl",
    Adam => "adam.wgsl",
    Elementwise => "elementwise.wgsl",
    Rng => "rng.wgsl",
    Batch => "batch.wgsl",
    Conditional => "conditional.wgsl",
}

/// shaders/common.wgsl: helpers prepended to every shader.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");

impl Shader {
    /// The WGSL source as compiled: the common helpers, the activations, then the file.
    pub fn source(self) -> String {
        format!("{COMMON}\n{}\n{}", crate::activation::WGSL, self.body())
    }
}

/// A pipeline is one entry point of one shader with its override constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    /// The shader file.
    pub shader: Shader,
    /// The entry point.
    pub entry: &'static str,
    /// Values of the shader's `override` constants, by name.
    pub constants: Vec<(&'static str, u32)>,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: RefCell<HashMap<Shader, wgpu::ShaderModule>>,
    pipelines: RefCell<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

impl Gpu {
    /// The compute pipeline for `key`, compiled on first use.
    pub fn pipeline(&self, key: &PipelineKey) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.pipelines.borrow().get(key) {
            return Ok(p.clone());
        }
        let module = self
            .pipelines
            .modules
            .borrow_mut()
            .entry(key.shader)
            .or_insert_with(|| {
                self.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(key.shader.file_name()),
                        source: wgpu::ShaderSource::Wgsl(key.shader.source().into()),
                    })
            })
            .clone();
        let constants: Vec<(&str, f64)> =
            key.constants.iter().map(|&(n, v)| (n, v as f64)).collect();
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key.entry),
                layout: None,
                module: &module,
                entry_point: Some(key.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
                cache: None,
            });
        self.check()?;
        self.pipelines
            .pipelines
            .borrow_mut()
            .insert(key.clone(), pipeline.clone());
        Ok(pipeline)
    }

    /// Prepares one dispatch: the pipeline, a uniform buffer for `params` (bound last) and a bind
    /// group over `bindings` (bound 0, 1, ... in order).
    pub fn dispatch(
        &self,
        key: PipelineKey,
        bindings: &[wgpu::BindingResource<'_>],
        params: &[u32],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        let pipeline = self.pipeline(&key)?;
        let params = self.uniform_buffer(params);
        let mut entries: Vec<wgpu::BindGroupEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: r.clone(),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: bindings.len() as u32,
            resource: params.as_entire_binding(),
        });
        self.count_bind_group();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(key.entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.check()?;
        Ok(Dispatch {
            parts: vec![Part {
                pipeline,
                bind_group,
                params,
                workgroups,
                entry: key.entry,
            }],
            name: key.entry,
        })
    }

    /// Records `dispatches` into one compute pass, submits once and waits.
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.queue.submit([encoder.finish()]);
        self.wait()
    }

    /// Workgroup grid for `n` invocations of 256: 2-D when 1-D would pass the per-dimension limit.
    pub fn grid(&self, n: usize) -> [u32; 3] {
        self.grid_of_groups(n.div_ceil(256))
    }

    /// Workgroup grid for `groups` workgroups (the shaders flatten x + y * num_workgroups.x).
    pub fn grid_of_groups(&self, groups: usize) -> [u32; 3] {
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as usize;
        let groups = groups.max(1);
        if groups <= max {
            [groups as u32, 1, 1]
        } else {
            [max as u32, groups.div_ceil(max) as u32, 1]
        }
    }
}

/// A prepared dispatch: pipeline, bind group, uniform parameters and grid, made once and
/// recorded any number of times. A few kernels need two passes (split-K matmul): their parts are
/// recorded in order.
pub struct Dispatch {
    parts: Vec<Part>,
    /// The kernel's name, for profiles and error messages.
    pub name: &'static str,
}

struct Part {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    workgroups: [u32; 3],
    /// The shader entry point, for profiles.
    entry: &'static str,
}

impl Dispatch {
    /// A dispatch that records nothing (work a launcher found already done).
    pub(crate) fn nothing() -> Dispatch {
        Dispatch {
            parts: Vec::new(),
            name: "nothing",
        }
    }

    /// Records every part into `pass`, in order.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for part in &self.parts {
            pass.set_pipeline(&part.pipeline);
            pass.set_bind_group(0, &part.bind_group, &[]);
            let [x, y, z] = part.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
    }

    /// Appends `next`, recorded after this one.
    pub fn then(mut self, next: Dispatch) -> Dispatch {
        self.parts.extend(next.parts);
        self
    }

    /// The entry point and workgroup grid of each part, in recording order (profiles show them).
    pub fn parts(&self) -> Vec<(&'static str, [u32; 3])> {
        self.parts.iter().map(|p| (p.entry, p.workgroups)).collect()
    }

    /// Each part as a dispatch of its own, named after its entry point (profiles time them one
    /// by one).
    pub fn split(&self) -> Vec<Dispatch> {
        self.parts
            .iter()
            .map(|p| Dispatch {
                parts: vec![Part {
                    pipeline: p.pipeline.clone(),
                    bind_group: p.bind_group.clone(),
                    params: p.params.clone(),
                    workgroups: p.workgroups,
                    entry: p.entry,
                }],
                name: p.entry,
            })
            .collect()
    }

    /// Number of GPU dispatches this records.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether this records no dispatch.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Rewrites the uniform parameters of the first part (same layout as at creation); takes
    /// effect at the next submit.
    pub fn set_params(&self, gpu: &Gpu, params: &[u32]) {
        gpu.queue
            .write_buffer(&self.parts[0].params, 0, bytemuck::cast_slice(params));
    }
}
