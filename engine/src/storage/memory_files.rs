//! A server's memory files (`-e PATH`) as one set: `PATH.<core>` holds
//! core *core*'s segments, `PATH.<core>.meta` what its last graceful stop
//! saved, and `PATH.lock` says which server uses them.
//!
//! A shard alone can only judge its own save, and that is not enough: a
//! run with fewer cores leaves the other cores' files behind, and a later
//! run with the old core count would take those back beside newer data
//! (values overwritten since, served again). So before any core starts,
//! the server looks at the set: it restores only when every core it runs
//! has a save, all written by one run with this core count and layout;
//! otherwise it removes every save and starts empty. Files of cores beyond
//! this run's count are removed. And one server at a time: the lock file
//! is held (`flock`) for the life of the process, so a second server on
//! the same path is refused instead of writing into the first one's
//! memory.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::shard::restart::{meta_path, RestartError, SavedBy};
use super::shard::ShardConfig;

/// The memory files of a running server, locked for as long as it lives.
#[derive(Debug)]
pub struct MemoryFiles {
    /// Held open: the lock lasts as long as the descriptor.
    _lock: File,
    /// This run's id, written into every core's save.
    pub run: u64,
    /// The run whose saves every core takes back, or `None`: start empty.
    pub restore: Option<u64>,
    /// Why the saves found were not taken back (one line), if any were.
    pub refused: Option<String>,
    /// Files of unused cores removed at start.
    pub removed: Vec<PathBuf>,
}

/// Why the memory files cannot be used.
#[derive(Debug)]
pub enum MemoryFilesError {
    /// Another process holds the lock.
    InUse {
        /// The lock file.
        lock: PathBuf,
        /// The holder's pid, as it wrote it.
        holder: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for MemoryFilesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemoryFilesError::InUse { lock, holder } => {
                write!(f, "the memory file is in use by another server")?;
                if let Some(pid) = holder {
                    write!(f, " (pid {pid})")?;
                }
                write!(
                    f,
                    ": {} is locked; stop that server or give this one another -e path",
                    lock.display()
                )
            }
            MemoryFilesError::Io(path, e) => {
                write!(f, "cannot lock the memory file ({}): {e}", path.display())
            }
        }
    }
}

impl std::error::Error for MemoryFilesError {}

/// `PATH.<suffix>`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

impl MemoryFiles {
    /// Locks the set at `path` and decides what the cores of this run,
    /// whose shard configs are `configs` (core order), take back.
    pub fn open(path: &Path, configs: &[ShardConfig]) -> Result<MemoryFiles, MemoryFilesError> {
        let lock = lock(path)?;
        let removed = remove_unused(path, configs.len());
        let (restore, refused) = match agreed_run(configs) {
            Ok(run) => (run, None),
            Err(why) => {
                for config in configs {
                    if let Some(file) = &config.restart {
                        let _ = std::fs::remove_file(meta_path(&file.path));
                    }
                }
                (None, Some(why))
            }
        };
        let mut run = fresh_run_id();
        if Some(run) == restore {
            run = run.wrapping_add(1);
        }
        Ok(MemoryFiles {
            _lock: lock,
            run,
            restore,
            refused,
            removed,
        })
    }
}

/// Takes `PATH.lock` for this process and writes its pid there.
fn lock(path: &Path) -> Result<File, MemoryFilesError> {
    let lock_path = with_suffix(path, "lock");
    let io = |e| MemoryFilesError::Io(lock_path.clone(), e);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io)?;
    // SAFETY: flock(2) takes an open fd (the file lives until the end of
    // this function or in the returned value) and a flag; no memory.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !taken {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(MemoryFilesError::InUse {
                lock: lock_path.clone(),
                holder: text.trim().parse().ok(),
            });
        }
        return Err(io(e));
    }
    let pid = std::process::id().to_string();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(io)?;
    Ok(file)
}

/// The run every core's save was written by, when they all agree and match
/// their core's config; `Ok(None)` when there is no save at all; the
/// reason otherwise.
fn agreed_run(configs: &[ShardConfig]) -> Result<Option<u64>, String> {
    let mut run = None;
    let mut missing = Vec::new();
    for (core, config) in configs.iter().enumerate() {
        let Some(file) = &config.restart else {
            return Ok(None);
        };
        match SavedBy::of(&meta_path(&file.path)) {
            Ok(saved) => {
                saved
                    .check(config)
                    .map_err(|e| format!("core {core}'s save: {e}"))?;
                match run {
                    None => run = Some(saved.run),
                    Some(r) if r == saved.run => {}
                    Some(_) => {
                        return Err(format!(
                            "core {core}'s save is from another run than core 0's \
                             (saves of different stops are never mixed)"
                        ))
                    }
                }
            }
            Err(RestartError::NoMetadata) => missing.push(core),
            Err(e) => return Err(format!("core {core}'s save: {e}")),
        }
    }
    match (run, missing.first()) {
        (None, _) => Ok(None),
        (Some(_), None) => Ok(run),
        (Some(_), Some(core)) => Err(format!(
            "core {core} has no save (the last graceful stop ran fewer cores, or it crashed)"
        )),
    }
}

/// Removes `PATH.<n>` and `PATH.<n>.meta` for every `n` at or past `cores`
/// (left by a run with more cores). Returns what it removed.
fn remove_unused(path: &Path, cores: usize) -> Vec<PathBuf> {
    let (Some(dir), Some(base)) = (
        path.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        }),
        path.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base)?.strip_prefix('.'))
        else {
            continue;
        };
        let number = rest
            .strip_suffix(".meta.tmp")
            .or_else(|| rest.strip_suffix(".meta"))
            .unwrap_or(rest);
        let is_core = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        if is_core && number.parse::<usize>().is_ok_and(|n| n >= cores) {
            let file = entry.path();
            if std::fs::remove_file(&file).is_ok() {
                removed.push(file);
            }
        }
    }
    removed.sort();
    removed
}

/// A run id no earlier run is likely to have had: std's randomly keyed
/// hasher over the time and the pid.
fn fresh_run_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests;
