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
