//! metrics.csv: one row per logged step, and the epoch's scores (FID, coverage, and for a
//! class-conditional model class accuracy) on its last row.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::write_atomic;

pub struct Metrics {
    path: PathBuf,
    file: std::fs::File,
    score_columns: usize,
}

impl Metrics {
    /// Opens `path` for appending rows of `columns` after "step,epoch", then `scores` (filled
    /// only at an epoch's end). A resumed run (`step` > 0) keeps the rows up to its checkpoint's
    /// step and rewrites what followed; a new run starts the file afresh.
    pub fn open(path: &Path, columns: &[&str], scores: &[&str], step: u64) -> Result<Metrics> {
        let kept: String = match std::fs::read_to_string(path) {
            Ok(text) if step > 0 => text
                .lines()
                .skip(1)
                .filter(|l| {
                    l.split(',')
                        .next()
                        .and_then(|s| s.parse::<u64>().ok())
                        .is_some_and(|s| s <= step)
                })
                .map(|l| format!("{l}\n"))
                .collect(),
            _ => String::new(),
        };
        let header = ["step", "epoch"]
            .iter()
            .chain(columns)
            .chain(scores)
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        write_atomic(path, format!("{header}\n{kept}").as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
        Ok(Metrics {
            path: path.to_path_buf(),
            file,
            score_columns: scores.len(),
        })
    }

    /// One row: the step's figures, and the epoch's scores (one per score column) when it ends
    /// one.
    pub fn row(
        &mut self,
        step: u64,
        epoch: u64,
        values: &[f32],
        scores: Option<&[f64]>,
    ) -> Result<()> {
        if let Some(s) = scores.filter(|s| s.len() != self.score_columns) {
            return Err(Error::Invalid(format!(
                "metrics.csv: {} scores for {} score columns",
                s.len(),
                self.score_columns
            )));
        }
        let empty = vec![String::new(); self.score_columns];
        let scores = scores.map_or(empty, |s| s.iter().map(f64::to_string).collect());
        let fields: Vec<String> = values.iter().map(f32::to_string).chain(scores).collect();
        writeln!(self.file, "{step},{epoch},{}", fields.join(","))
            .map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))
    }

    /// Flushes the rows to disk (before a checkpoint, so the file never trails it).
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::file(&self.path, format!("cannot sync: {e}")))
    }
}

/// What a metrics.csv holds: the logged steps' figures, and each scored epoch's scores.
pub struct MetricsLog {
    /// The logged steps.
    pub steps: Vec<f64>,
    /// The 1-based epoch of each logged step.
    pub epochs: Vec<f64>,
    /// D's loss at each logged step.
    pub d_loss: Vec<f64>,
    /// G's loss at each logged step.
    pub g_loss: Vec<f64>,
    /// Mean D(x) over the real batch at each logged step.
    pub d_real: Vec<f64>,
    /// Mean D(G(z)) over the generated batch at each logged step.
    pub d_fake: Vec<f64>,
    /// Each epoch's end that was scored.
    pub scores: Vec<EpochScore>,
}

/// One epoch's scores (its last row).
pub struct EpochScore {
    /// The 1-based epoch.
    pub epoch: f64,
    /// The step the epoch ended at.
    pub step: f64,
    /// FID of the generated images.
    pub fid: f64,
    /// Digits with at least 5% of the generated images.
    pub coverage: f64,
    /// The most frequent digit and its share (absent in files written before these columns).
    pub top_digit: Option<(f64, f64)>,
    /// Logged for class-conditional models only.
    pub class_accuracy: Option<f64>,
}

/// Reads a metrics.csv (a missing score column is read as absent).
pub fn read(csv: &Path) -> Result<MetricsLog> {
    let text = std::fs::read_to_string(csv).map_err(|e| Error::file(csv, e.to_string()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| Error::file(csv, format!("no column '{name}'")))
    };
    let [step, epoch, d_loss, g_loss, d_real, d_fake, fid, coverage] = [
        "step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "fid", "coverage",
    ]
    .map(col);
    let (step, epoch, d_loss, g_loss) = (step?, epoch?, d_loss?, g_loss?);
    let (d_real, d_fake, fid, coverage) = (d_real?, d_fake?, fid?, coverage?);
    let accuracy = col("class_accuracy").ok();
    let top = col("top_digit").ok().zip(col("top_share").ok());
    let mut run = MetricsLog {
        steps: Vec::new(),
        epochs: Vec::new(),
        d_loss: Vec::new(),
        g_loss: Vec::new(),
        d_real: Vec::new(),
        d_fake: Vec::new(),
        scores: Vec::new(),
    };
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let num = |c: usize| -> Result<Option<f64>> {
            match cells.get(c).map(|s| s.trim()) {
                None | Some("") => Ok(None),
                Some(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::file(csv, format!("row {}: '{s}' is not a number", i + 2))),
            }
        };
        let need = |c: usize| {
            num(c)?.ok_or_else(|| Error::file(csv, format!("row {}: a value is missing", i + 2)))
        };
        run.steps.push(need(step)?);
        run.epochs.push(need(epoch)?);
        run.d_loss.push(need(d_loss)?);
        run.g_loss.push(need(g_loss)?);
        run.d_real.push(need(d_real)?);
        run.d_fake.push(need(d_fake)?);
        if let (Some(fid), Some(coverage)) = (num(fid)?, num(coverage)?) {
            let top_digit = match top {
                Some((d, s)) => num(d)?.zip(num(s)?),
                None => None,
            };
            run.scores.push(EpochScore {
                epoch: need(epoch)?,
                step: need(step)?,
                fid,
                coverage,
                top_digit,
                class_accuracy: accuracy.map(num).transpose()?.flatten(),
            });
        }
    }
    Ok(run)
}

/// A moment marked on the curves: the step and epoch it was seen at, and a short label.
pub struct Mark {
    /// The step (x of the step panels).
    pub step: f64,
    /// The 1-based epoch (x of the epoch panel) when it was seen at an epoch's end; a moment
    /// within an epoch is marked on the step panels only.
    pub epoch: Option<f64>,
    /// A word or two ("D wins").
    pub label: String,
}
