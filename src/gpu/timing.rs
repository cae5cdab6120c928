//! Times prepared dispatches: GPU timestamps where the adapter has them, else wall time around
//! submit-and-wait.

use std::time::Instant;

use crate::error::Result;
use crate::gpu::{Dispatch, Gpu};

/// How a time was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clock {
    /// Timestamp queries around the pass: the GPU's own time.
    GpuTimestamps,
    /// Wall time from submit to completion (no timestamp queries on this adapter).
    WallTime,
}

/// Seconds per run of `dispatches` (all recorded in one pass), the median of `samples` timings of
/// `repeats` back-to-back runs each, after one warm-up.
pub fn time_dispatches(
    gpu: &Gpu,
    dispatches: &[&Dispatch],
    repeats: usize,
    samples: usize,
) -> Result<(f64, Clock)> {
    let repeats = repeats.max(1);
    gpu.run(dispatches)?;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        let t = if gpu.timestamps {
            timed_on_gpu(gpu, dispatches, repeats)?
        } else {
            timed_on_host(gpu, dispatches, repeats)?
        };
        times.push(t / repeats as f64);
    }
    times.sort_by(f64::total_cmp);
    let clock = if gpu.timestamps {
        Clock::GpuTimestamps
    } else {
        Clock::WallTime
    };
    Ok((times[times.len() / 2], clock))
}

fn record(
    encoder: &mut wgpu::CommandEncoder,
    dispatches: &[&Dispatch],
    repeats: usize,
    ts: Option<&wgpu::QuerySet>,
) {
    let timestamp_writes = ts.map(|q| wgpu::ComputePassTimestampWrites {
        query_set: q,
        beginning_of_pass_write_index: Some(0),
        end_of_pass_write_index: Some(1),
    });
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("timed"),
        timestamp_writes,
    });
    for _ in 0..repeats {
        for d in dispatches {
            d.record(&mut pass);
        }
    }
}

fn timed_on_host(gpu: &Gpu, dispatches: &[&Dispatch], repeats: usize) -> Result<f64> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    record(&mut encoder, dispatches, repeats, None);
    let start = Instant::now();
    gpu.queue.submit([encoder.finish()]);
    gpu.wait()?;
    Ok(start.elapsed().as_secs_f64())
}

fn timed_on_gpu(gpu: &Gpu, dispatches: &[&Dispatch], repeats: usize) -> Result<f64> {
    let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let resolved = gpu.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    record(&mut encoder, dispatches, repeats, Some(&queries));
    encoder.resolve_query_set(&queries, 0..2, &resolved, 0);
    gpu.queue.submit([encoder.finish()]);
    let bytes = gpu.read_bytes(&resolved, 0, 16)?;
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
    let period_ns = gpu.queue.get_timestamp_period() as f64;
    Ok(ticks[1].saturating_sub(ticks[0]) as f64 * period_ns * 1e-9)
}
