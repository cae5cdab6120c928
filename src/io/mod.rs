//! Files the tool writes: checkpoints, PNG grids, metrics; all written atomically, and the lock
//! that keeps two runs out of one output folder.

pub mod assets;
pub mod checkpoint;
pub mod image;
pub mod metrics;
pub mod npy;
#[cfg(not(target_arch = "wasm32"))]
pub mod plot;

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An unpredictable suffix (std's hasher keys come from the OS's random source).
fn random_suffix() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`: a
/// crash leaves either the old file or the new one, never a torn one. The temporary file is
/// `.NAME.tmp-PID-RANDOM`, created exclusively: a file or symbolic link planted under a guessed
/// name is never written through.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Staged::write(path, bytes)?.commit()
}

/// Several files, all or none: each is written beside its destination first, and only when all
/// are written are they renamed into place. A failed write leaves every destination as it was.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut staged = Vec::new();
    for (path, bytes) in files {
        match Staged::write(path, bytes) {
            Ok(s) => staged.push(s),
            Err(e) => {
                staged.into_iter().for_each(Staged::discard);
                return Err(e);
            }
        }
    }
    staged.into_iter().try_for_each(Staged::commit)
}

/// A file written and synced beside its destination, not yet renamed into place.
struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
}

impl Staged {
    fn write(path: &Path, bytes: &[u8]) -> Result<Staged> {
        if path.is_dir() {
            return Err(Error::file(path, "is a folder, not a file"));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| Error::file(path, "not a file path"))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{:016x}",
            name.to_string_lossy(),
            std::process::id(),
            random_suffix()
        ));
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        let staged = Staged {
            tmp,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        };
        match written {
            Ok(()) => Ok(staged),
            Err(e) => {
                staged.discard();
                Err(Error::file(path, format!("cannot write: {e}")))
            }
        }
    }

    fn commit(self) -> Result<()> {
        if let Err(e) = std::fs::rename(&self.tmp, &self.path) {
            let path = self.path.clone();
            self.discard();
            return Err(Error::file(&path, format!("cannot write: {e}")));
        }
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Whether process `pid` is running (on Unix; elsewhere every process counts as running, so
/// nothing is swept).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes the temporary files `write_atomic` left in `dir` when its process was killed:
/// `.NAME.tmp-PID-RANDOM` of processes that no longer run. A running process's files are kept.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, tail)| tail.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !process_alive(pid)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// An exclusive lock on an output folder (`DIR/.lock`), held while the value lives: a second run
/// on the same folder is refused instead of interleaving its writes with the first's.
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::file(&path, format!("cannot open the lock file: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor we own; released when the file is closed.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r != 0 {
                return Err(Error::Invalid(format!(
                    "{} is in use by another training run (it holds {}); wait for it or choose another --out",
                    dir.display(),
                    path.display()
                )));
            }
        }
        Ok(FolderLock { _file: file })
    }
}
