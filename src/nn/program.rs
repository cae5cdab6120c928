//! A recorded program: operations recorded once over the GPU [`Recorder`], then run any number
//! of times with typed per-run inputs ([`Run`]). Named inputs are written before a run and named
//! outputs read after it; nothing else reaches into the program's buffers or dispatches.
//!
//! A run is one compute pass and one submit. At most one run is in flight: the next run waits for
//! the previous one before submitting, so the CPU records run N+1's parameters while run N works.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu, Readback, ready_now};
use crate::nn::backend::{Buffer, Dynamic, Recorder};
use crate::nn::run::Run;

/// A recorded sequence of dispatches with named inputs and outputs, run as one compute pass and
/// one submit per [`Program::run`]; made once from a [`Recorder`], run many times.
pub struct Program<'g> {
    gpu: &'g Gpu,
    dispatches: Vec<Dispatch>,
    dynamic: Vec<(usize, Dynamic)>,
    inputs: Vec<(&'static str, Buffer)>,
    outputs: Vec<(&'static str, Readback)>,
    in_flight: Option<wgpu::SubmissionIndex>,
}

impl<'g> Program<'g> {
    /// Takes what `be` recorded (and its named inputs and outputs); `be` can record another.
    pub fn new(be: &mut Recorder<'g>) -> Program<'g> {
        let gpu = be.gpu;
        let outputs = std::mem::take(&mut be.outputs)
            .into_iter()
            .map(|(name, t)| (name, Readback::new(gpu, &t)))
            .collect();
        Program {
            gpu,
            dispatches: std::mem::take(&mut be.dispatches),
            dynamic: std::mem::take(&mut be.dynamic),
            inputs: std::mem::take(&mut be.inputs),
            outputs,
            in_flight: None,
        }
    }

    fn input(&self, name: &str) -> Result<&Buffer> {
        self.inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b)
            .ok_or_else(|| Error::Invalid(format!("the program has no input '{name}'")))
    }

    fn output(&self, name: &str) -> Result<usize> {
        self.outputs
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| Error::Invalid(format!("the program has no output '{name}'")))
    }

    /// Writes the f32 input `name`; the next run sees it.
    pub fn write(&self, name: &str, data: &[f32]) -> Result<()> {
        match self.input(name)? {
            Buffer::F32(t) => t.write(self.gpu, data),
            Buffer::Words(_) => Err(Error::Invalid(format!("input '{name}' holds u32 words"))),
        }
    }

    /// Writes the u32 input `name`.
    pub fn write_words(&self, name: &str, data: &[u32]) -> Result<()> {
        match self.input(name)? {
            Buffer::Words(w) => w.write(self.gpu, data),
            Buffer::F32(_) => Err(Error::Invalid(format!("input '{name}' holds f32 values"))),
        }
    }

    /// Submits one run (after the previous one finished) without waiting for it.
    pub fn run(&mut self, run: &Run) -> Result<()> {
        self.submit(run, None)?;
        self.gpu.check()
    }

    /// Runs once and returns the output `name` as it stands after the run.
    pub fn run_and_read(&mut self, run: &Run, name: &str) -> Result<Vec<f32>> {
        ready_now(self.run_and_read_async(run, name))
    }

    /// [`Program::run_and_read`] without blocking (the browser's way).
    pub async fn run_and_read_async(&mut self, run: &Run, name: &str) -> Result<Vec<f32>> {
        let i = self.output(name)?;
        self.submit(run, Some(i))?;
        self.in_flight = None;
        self.outputs[i].1.read_async(self.gpu).await
    }

    /// The output `name` after the last run (waits for it).
    pub fn read(&mut self, name: &str) -> Result<Vec<f32>> {
        ready_now(self.read_async(name))
    }

    /// [`Program::read`] without blocking (the browser's way).
    pub async fn read_async(&mut self, name: &str) -> Result<Vec<f32>> {
        self.finish()?;
        let readback = &self.outputs[self.output(name)?].1;
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        readback.record(&mut encoder);
        self.gpu.queue.submit([encoder.finish()]);
        readback.read_async(self.gpu).await
    }

    /// Waits for the last run.
    pub fn finish(&mut self) -> Result<()> {
        self.in_flight = None;
        self.gpu.wait()
    }

    fn submit(&mut self, run: &Run, read: Option<usize>) -> Result<()> {
        // Queue writes land between submissions, so the previous run keeps its parameters.
        for (i, d) in &self.dynamic {
            self.dispatches[*i].set_params(self.gpu, &d.params(run));
        }
        let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in &self.dispatches {
                d.record(&mut pass);
            }
        }
        if let Some(i) = read {
            self.outputs[i].1.record(&mut encoder);
        }
        if let Some(previous) = self.in_flight.take() {
            self.gpu.wait_for(previous)?;
        }
        self.in_flight = Some(self.gpu.queue.submit([encoder.finish()]));
        Ok(())
    }

    /// GPU dispatches per run (split-K matmuls count twice).
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.iter().map(Dispatch::len).sum()
    }

    /// The recorded dispatches, for profiling (`cargo bench` times each alone).
    pub fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }
}
