//! `OUT/metrics.png`: a run's curves from its metrics.csv (losses, the discriminator's beliefs,
//! FID, coverage and a class-conditional model's class accuracy per epoch), drawn by plotters
//! into a pixel buffer and saved with the png crate. The font is compiled into the binary
//! (assets/fonts, DejaVu Sans), so a server without any installed font draws the same picture.

use std::path::Path;
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::io::metrics::{Mark, MetricsLog};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 300;

const MARK: RGBColor = RGBColor(214, 39, 40);

/// A red dashed line across the panel at each mark's x, its label at the top; labels of marks
/// close enough to overlap stack (a mark within an epoch can sit near that epoch's end).
fn draw_marks<'a, DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    marks: impl Iterator<Item = (f64, &'a str)>,
    xs: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<()> {
    // About a label's width, as a share of the panel's x range.
    let near = 0.1 * (xs.end - xs.start);
    let mut placed: Vec<(f64, usize)> = Vec::new();
    for (x, label) in marks {
        if !placed.iter().any(|(at, _)| *at == x) {
            let line = vec![(x, y.start), (x, y.end)];
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, MARK.stroke_width(1)))
                .map_err(drawing)?;
        }
        let row = (0..)
            .find(|r| !placed.iter().any(|(at, n)| n == r && (at - x).abs() < near))
            .unwrap_or_default();
        placed.push((x, row));
        // Labels go right of their line, or left of it near the right edge.
        let width = 7 * label.len() as i32;
        let dx = if x > xs.start + 0.85 * (xs.end - xs.start) {
            -width - 4
        } else {
            4
        };
        let offset = (dx, 4 + 14 * row as i32);
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x, y.end))
                    + Text::new(
                        label.to_string(),
                        offset,
                        ("sans-serif", 13).into_font().color(&MARK),
                    ),
            ))
            .map_err(drawing)?;
    }
    Ok(())
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is a fixed, known-good file: failing to parse it is a build defect.
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            log::warn!("the bundled font did not load; metrics.png will have no text");
        }
    });
}

fn drawing<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::Invalid(format!("drawing metrics.png failed: {e}"))
}

/// The y range that holds every finite value and 0 (5% headroom above and below).
fn y_range(values: &[&[f64]]) -> std::ops::Range<f64> {
    let finite = || {
        values
            .iter()
            .flat_map(|v| v.iter())
            .filter(|v| v.is_finite())
    };
    let max = finite().copied().fold(0.0, f64::max);
    let min = finite().copied().fold(0.0, f64::min);
    if max <= min {
        return min..max + 1.0;
    }
    let span = max - min;
    let low = if min < 0.0 { min - 0.05 * span } else { 0.0 };
    low..max + 0.05 * span
}

/// Runs of consecutive finite points: a NaN or an infinity breaks the line instead of being
/// drawn as 0 or as a spike.
fn finite_runs(xs: &[f64], ys: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut current = Vec::new();
    for (&x, &y) in xs.iter().zip(ys) {
        if y.is_finite() {
            current.push((x, y));
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// A caption's note on the values that could not be drawn.
fn not_drawn(values: &[&[f64]]) -> String {
    let bad = values
        .iter()
        .flat_map(|v| v.iter())
        .filter(|v| !v.is_finite())
        .count();
    match bad {
        0 => String::new(),
        n => format!(" ({n} non-finite values not drawn)"),
    }
}

/// The curves of `run` (read from `csv`, named in errors) as PNG bytes, each of `marks` a red
/// dashed line with its label on every panel.
pub fn metrics_png(run: &MetricsLog, csv: &Path, marks: &[Mark]) -> Result<Vec<u8>> {
    if run.steps.is_empty() {
        return Err(Error::file(
            csv,
            "no logged steps yet: nothing to draw (metrics.png not written)",
        ));
    }
    register_font();
    let height = PANEL_HEIGHT * 3;
    let mut pixels = vec![0u8; (WIDTH * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let panels = root.split_evenly((3, 1));
        let last_step = run.steps.last().copied().unwrap_or(1.0).max(1.0);
        // Whole steps: no more tick labels than there are steps, so none repeats.
        let step_labels = (last_step as usize + 1).min(10);
        let series = |panel: &DrawingArea<_, _>,
                      title: &str,
                      y: std::ops::Range<f64>,
                      lines: &[(&str, &[f64], RGBColor)]|
         -> Result<()> {
            let values: Vec<&[f64]> = lines.iter().map(|l| l.1).collect();
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{title}{}", not_drawn(&values)), ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..last_step, y.clone())
                .map_err(drawing)?;
            chart
                .configure_mesh()
                .x_desc("step")
                .x_labels(step_labels)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(drawing)?;
            for &(name, values, color) in lines {
                let runs = finite_runs(&run.steps, values);
                // A lone point (a run shorter than --log-every) is a dot, not an empty line.
                let dots = runs.iter().filter(|r| r.len() == 1).map(|r| r[0]);
                chart
                    .draw_series(dots.map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(drawing)?;
                let mut drawn = None;
                for points in runs {
                    drawn = Some(
                        chart
                            .draw_series(LineSeries::new(points, color.stroke_width(2)))
                            .map_err(drawing)?,
                    );
                }
                if let Some(drawn) = drawn {
                    drawn.label(name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
            }
            let at = marks.iter().map(|m| (m.step, m.label.as_str()));
            draw_marks(&mut chart, at, 0.0..last_step, y.clone())?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(drawing)?;
            Ok(())
        };
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        series(
            &panels[0],
            "losses (binary cross-entropy)",
            y_range(&[&run.d_loss, &run.g_loss]),
            &[
                ("D loss", &run.d_loss, blue),
                ("G loss", &run.g_loss, orange),
            ],
        )?;
        series(
            &panels[1],
            "the discriminator's mean belief that images are real",
            0.0..1.0,
            &[
                ("D(x), real", &run.d_real, blue),
                ("D(G(z)), generated", &run.d_fake, orange),
            ],
        )?;
        let last_epoch = run.scores.last().map_or(1.0, |s| s.epoch).max(1.0);
        let fids: Vec<f64> = run.scores.iter().map(|s| s.fid).collect();
        let fid_range = y_range(&[&fids]);
        let title = if run.scores.is_empty() {
            "FID per epoch: none logged (--fid-samples 0)"
        } else if run.scores.iter().any(|s| s.class_accuracy.is_some()) {
            "FID per epoch, lower is better (labels: digits covered of 10, class accuracy)"
        } else {
            "FID per epoch, lower is better (labels: digits covered of 10)"
        };
        let mut chart = ChartBuilder::on(&panels[2])
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.5..last_epoch + 0.5, fid_range.clone())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(last_epoch as usize + 1)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(drawing)?;
        let epochs: Vec<f64> = run.scores.iter().map(|s| s.epoch).collect();
        for points in finite_runs(&epochs, &fids) {
            chart
                .draw_series(LineSeries::new(points, blue.stroke_width(2)))
                .map_err(drawing)?;
        }
        chart
            .draw_series(run.scores.iter().filter(|s| s.fid.is_finite()).map(|s| {
                let accuracy = s.class_accuracy.map(|a| format!(", {:.0}%", 100.0 * a));
                let label = format!("{:.0}{}", s.coverage, accuracy.unwrap_or_default());
                EmptyElement::at((s.epoch, s.fid))
                    + Circle::new((0, 0), 4, blue.filled())
                    + Text::new(label, (6, -16), ("sans-serif", 14))
            }))
            .map_err(drawing)?;
        let at = marks
            .iter()
            .filter_map(|m| Some((m.epoch?, m.label.as_str())));
        draw_marks(&mut chart, at, 0.5..last_epoch + 0.5, fid_range)?;
        root.present().map_err(drawing)?;
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, WIDTH, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let encode = |e: png::EncodingError| Error::Invalid(format!("PNG encoding failed: {e}"));
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&pixels).map_err(encode)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_neither_stretch_the_axis_nor_join_the_line() {
        let y = y_range(&[&[0.5, f64::INFINITY, -0.5, f64::NAN, 540_000.0_f64.recip()]]);
        assert!(y.start < -0.5 && y.start > -0.6, "{y:?}");
        assert!(y.end > 0.5 && y.end < 0.6, "{y:?}");
        assert_eq!(y_range(&[&[]]), 0.0..1.0);
        let runs = finite_runs(&[1.0, 2.0, 3.0, 4.0], &[0.1, f64::NAN, 0.3, 0.4]);
        assert_eq!(runs, vec![vec![(1.0, 0.1)], vec![(3.0, 0.3), (4.0, 0.4)]]);
        assert!(finite_runs(&[1.0], &[f64::INFINITY]).is_empty());
        assert_eq!(
            not_drawn(&[&[1.0, f64::NAN], &[f64::NEG_INFINITY]]),
            " (2 non-finite values not drawn)"
        );
    }
}
