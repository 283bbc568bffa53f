//! What the cores share with each other and the main thread: the shutdown
//! phase, drain count, open connections and what the memory files decided.
//! Never touched per request.

use std::sync::atomic::{AtomicU8, AtomicUsize};

/// Shutdown phases, polled by each core's watcher.
pub(crate) const RUNNING: u8 = 0;
pub(crate) const DRAINING: u8 = 1;
pub(crate) const EXITING: u8 = 2;

/// What the cores share with each other and the main thread: never
/// touched per request.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// [`RUNNING`], [`DRAINING`] or [`EXITING`].
    pub(crate) phase: AtomicU8,
    /// Cores whose connections have all closed while draining.
    pub(crate) drained: AtomicUsize,
    /// Open client connections on all cores (enforces `-c`).
    pub(crate) open_connections: AtomicUsize,
    /// The stop keeps the cache: save restart metadata (SIGUSR1 with `-e`).
    pub(crate) keep: std::sync::atomic::AtomicBool,
    /// With `-e`: this run's id, and the run every core takes back.
    pub(crate) restart: RestartRun,
}

/// What the memory files decided at start (see [`MemoryFiles`]), for every
/// core.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RestartRun {
    /// This run's id, written into each core's save.
    pub(crate) run: u64,
    /// The run whose saves the cores take back; `None` starts empty.
    pub(crate) restore: Option<u64>,
}
