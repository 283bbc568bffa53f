//! The server: starting one pinned executor per core and stopping them,
//! and what every core is given to run with.
//!
//! Architecture invariant: this is the top floor. Nothing below it uses
//! [`Server`] or the start-up steps; the lower floors see a core only as
//! [`core::Core`] and the settings only as [`settings::Settings`].

pub mod auth;
pub(crate) mod core;
pub(crate) mod numa;
pub mod settings;
pub(crate) mod shared;
pub(crate) mod signal;
mod start;
pub mod start_error;
pub(crate) mod verbosity;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use crate::runtime::batch::router::{Envelope, ReplyEnvelope};
use crate::runtime::server::settings::Settings;
use crate::runtime::server::shared::{RestartRun, Shared, DRAINING, EXITING, RUNNING};
pub use crate::runtime::server::start_error::StartError;
use crate::storage::{ConfigError, MemoryFiles, ShardConfig};

/// What a core sends when it is up: the items it took back (`None` when it
/// started empty), or why it could not start.
type CoreReady = Result<Option<u64>, StartError>;

/// The checks that need no thread: the shard config, the port range of
/// `--port-per-core`, and that every listener's port is free.
fn check_before_start(settings: &Settings) -> Result<(), StartError> {
    let cores = settings.cpus.len();
    if cores == 0 {
        return Err(StartError::Config("no CPU to run on".into()));
    }
    let probe = settings.shard_config(0);
    if let Err(e) = probe.validate() {
        let advice = match e {
            ConfigError::TooLittleMemory { .. } => format!(
                ": each core gets {} MiB of -m; raise -m, lower --segment-size or use fewer \
                 cores",
                probe.memory_bytes >> 20
            ),
            _ => String::new(),
        };
        return Err(StartError::Config(format!("{e}{advice}")));
    }
    let last_port = usize::from(settings.listen.port()) + cores - 1;
    if settings.port_per_core && last_port > usize::from(u16::MAX) {
        return Err(StartError::Config(format!(
            "--port-per-core {}: {cores} cores need ports up to {last_port}",
            settings.listen.port(),
        )));
    }
    settings.check_ports()
}

/// One pinned executor per CPU, each running a core; they report on
/// `ready`. On a failed spawn the cores already started are told to exit.
fn spawn_cores(
    settings: &Arc<Settings>,
    shared: &Arc<Shared>,
    ready: Sender<CoreReady>,
) -> Result<Vec<ExecutorJoinHandle<()>>, StartError> {
    let cores = settings.cpus.len();
    let requests: MeshBuilder<Envelope, _> = MeshBuilder::full(cores, MESH_CAPACITY);
    let replies: MeshBuilder<ReplyEnvelope, _> = MeshBuilder::full(cores, MESH_CAPACITY);
    let mut handles = Vec::with_capacity(cores);
    for (index, &cpu) in settings.cpus.iter().enumerate() {
        let (core_settings, requests, replies) =
            (settings.clone(), requests.clone(), replies.clone());
        let (core_shared, ready) = (shared.clone(), ready.clone());
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("segcore-{index}"))
            .spin_before_park(settings.spin_before_park)
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                start::core_main(core_settings, requests, replies, core_shared, ready).await;
            })
            .map_err(|e| StartError::Executor(e.to_string()));
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.phase.store(EXITING, Ordering::Release);
                return Err(e);
            }
        }
    }
    Ok(handles)
}

/// Locks the memory files (`-e`) and decides what the cores take back,
/// saying why when saves were there and are not taken back.
fn open_memory_files(settings: &Settings) -> Result<Option<MemoryFiles>, StartError> {
    let Some(path) = &settings.memory_file else {
        return Ok(None);
    };
    let configs: Vec<ShardConfig> = (0..settings.cpus.len())
        .map(|core| settings.shard_config(core))
        .collect();
    let files = MemoryFiles::open(path, &configs).map_err(|e| StartError::Config(e.to_string()))?;
    for removed in &files.removed {
        log::info!(
            "removed {}: this run has {} cores",
            removed.display(),
            configs.len()
        );
    }
    let first = configs[0].restart.as_ref().map(|f| f.path.exists());
    match (&files.refused, files.restore) {
        (Some(why), _) => log::warn!("starting empty, not from {}: {why}", path.display()),
        (None, None) if first == Some(true) => log::warn!(
            "starting empty, not from {}: no restart metadata (the last stop was not SIGUSR1)",
            path.display()
        ),
        _ => {}
    }
    Ok(Some(files))
}

/// A running server: one executor thread per core.
pub struct Server {
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
    shared: Arc<Shared>,
    cores: usize,
    /// The memory files, locked while the server lives (`-e`).
    _files: Option<MemoryFiles>,
    /// What every core reads (for a reload on SIGHUP).
    settings: Arc<Settings>,
    /// What the start did.
    started: Started,
}

/// What a start did, for the line a server logs once it serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Started {
    /// Items every core took back from the memory files (`-e`), `None`
    /// when there were none or any core started empty.
    pub restored: Option<u64>,
    /// From the call to the last core serving.
    pub took: Duration,
}

/// Capacity of each mesh ring, in batches.
const MESH_CAPACITY: usize = 1024;

/// io_uring buffer memory per executor. glommio registers this much with
/// the kernel for direct file I/O (`DmaFile`), which pins it resident from
/// the start: 10 MiB a core by default, 10 bytes an item at 1M items. Our
/// sockets read into their own buffers and restart files use plain
/// `std::fs`, so nothing draws on it; this is glommio's minimum.
const IO_MEMORY: usize = 64 << 10;

impl Server {
    /// Starts one executor per CPU in `settings.cpus` and returns once every
    /// core listens.
    pub fn start(settings: Settings) -> Result<Server, StartError> {
        Server::start_unless(settings, &|| false)
    }

    /// As [`Server::start`], giving up as soon as `stop_asked` says so
    /// (checked every 50 ms while the cores start): a stop signal during a
    /// long start (a large warm restart) must not wait for it to finish.
    /// The cores that started are left to the process's exit.
    pub fn start_unless(
        settings: Settings,
        stop_asked: &dyn Fn() -> bool,
    ) -> Result<Server, StartError> {
        let began = std::time::Instant::now();
        check_before_start(&settings)?;
        let files = open_memory_files(&settings)?;
        let restart = files
            .as_ref()
            .map_or(RestartRun::default(), |f| RestartRun {
                run: f.run,
                restore: f.restore,
            });
        let settings = Arc::new(settings);
        let shared = Arc::new(Shared {
            restart,
            ..Shared::default()
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handles = spawn_cores(&settings, &shared, ready_tx)?;
        let server = Server {
            handles,
            cores: settings.cpus.len(),
            shared,
            _files: files,
            settings,
            started: Started::default(),
        };
        server.wait_ready(&ready_rx, stop_asked, began)
    }

    /// Waits until every core says it listens, giving up when a core
    /// fails or `stop_asked` says so; records what the start did.
    fn wait_ready(
        mut self,
        ready: &Receiver<CoreReady>,
        stop_asked: &dyn Fn() -> bool,
        began: std::time::Instant,
    ) -> Result<Server, StartError> {
        let mut started = 0;
        let mut restored = Some(0u64);
        while started < self.cores {
            if stop_asked() {
                self.shared.phase.store(EXITING, Ordering::Release);
                return Err(StartError::Interrupted);
            }
            match ready.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(core_restored)) => {
                    started += 1;
                    restored = restored.zip(core_restored).map(|(a, b)| a + b);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Ok(Err(e)) => {
                    self.abort();
                    return Err(e);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.abort();
                    return Err(StartError::Executor("an executor thread died".into()));
                }
            }
        }
        self.started = Started {
            restored: restored.filter(|_| self.settings.memory_file.is_some()),
            took: began.elapsed(),
        };
        Ok(self)
    }

    /// What the start did: the items every core took back (a warm
    /// restart with `-e`; `None` when any core started empty) and how long
    /// it took.
    pub fn started(&self) -> Started {
        self.started
    }

    /// Rereads what the server may reread without stopping (SIGHUP, as
    /// memcached): the TLS certificate, key and CA files (`-Z`; new
    /// connections get them) and the password file (`-S`/`-Y`; later
    /// authentications use it). On an error the old ones stay. Says what
    /// it did, a line each; `Err` lines are failures.
    pub fn reload(&self) -> Vec<Result<String, String>> {
        let mut done = Vec::new();
        if let Some(tls) = &self.settings.tls {
            done.push(
                tls.refresh()
                    .map(|()| "reread the TLS certificate and key".to_string())
                    .map_err(|e| format!("TLS files not reread: {e}")),
            );
        }
        if let Some(auth) = &self.settings.auth {
            done.push(
                auth.reload()
                    .map(|users| format!("reread the password file ({users} users)"))
                    .map_err(|e| format!("password file not reread: {e}")),
            );
        }
        done
    }

    /// Whether a client asked for shutdown (enabled `shutdown` command).
    pub fn shutdown_requested(&self) -> bool {
        self.shared.phase.load(Ordering::Acquire) != RUNNING
    }

    /// Graceful stop that keeps the cache (memcached's SIGUSR1): as
    /// [`Server::shutdown`], then every core with a memory file (`-e`)
    /// saves what a warm restart needs before it exits.
    pub fn shutdown_keeping_cache(self, grace: Duration) {
        self.shared.keep.store(true, Ordering::Release);
        self.shutdown(grace);
    }

    /// Graceful stop: stop accepting, let connections finish what they are
    /// doing (idle ones close at once), wait up to `grace` for them, then
    /// stop every executor.
    pub fn shutdown(self, grace: Duration) {
        let _ = self.shared.phase.compare_exchange(
            RUNNING,
            DRAINING,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let deadline = std::time::Instant::now() + grace;
        while self.shared.drained.load(Ordering::Acquire) < self.cores
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.abort();
    }

    fn abort(self) {
        self.shared.phase.store(EXITING, Ordering::Release);
        for handle in self.handles {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop asked for while the cores start ends the start at once,
    /// whatever the cores are doing.
    #[test]
    fn a_stop_during_start_up_ends_it() {
        let mut settings = crate::runtime::server::core::testing::settings();
        settings.listen = "127.0.0.1:0".parse().expect("address");
        match Server::start_unless(settings, &|| true) {
            Err(StartError::Interrupted) => {}
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("started although a stop was asked for"),
        }
    }
}
