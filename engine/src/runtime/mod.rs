//! The thread-per-core runtime: one pinned glommio executor per CPU, each
//! owning one [`Shard`], its listener and its connections.
//!
//! - [`auth`]: SASL and ASCII authentication, and each connection's
//!   [`auth::Session`].
//! - [`op`]: the key-level operations shards execute and their outcomes.
//! - [`router`]: forwarding op batches to the owning core and back.
//! - [`proto`]: running one read's worth of pipelined requests in order.
//! - [`text`], [`binary`]: the wire protocols on top of ops.
//! - `core_main`: one core's life, start to exit, step by step.
//! - [`connection`]: a client connection's read/execute/write loop.
//! - [`buffers`]: each core's pool of I/O buffers, lent only while a
//!   connection has bytes to read or write.
//! - [`conns`]: each core's open connections, for `stats conns`, idle kicks
//!   and stopping.
//! - [`metrics`]: the typed per-core reports, the rows `stats` and
//!   Prometheus are rendered from, and the `--metrics-listen` endpoint.
//! - [`stats`]: `stats` requests and their replies.
//! - [`hotkeys`]: each core's most requested keys (sampled space-saving).
//! - [`latency`]: per-command-class latency histograms.
//! - [`numa`]: each core's CPU, NUMA node and memory node.
//! - [`prefix_stats`]: `stats detail`, per-key-prefix counts.
//! - [`transport`], [`tls`]: what connections are served over (plain TCP
//!   or TLS through rustls) and the TLS configuration.
//! - [`settings`]: the server-wide settings every core reads.
//! - [`signal`]: a core-local one-shot signal (stop).
//! - [`slots`]: recycled storage for the state of a batch being served, so
//!   idle connections do not carry it.
//!
//! Nothing on the request path is shared between cores: each core's state
//! lives in `Rc`/`RefCell` on its own thread. The only cross-thread state is
//! read-only [`Settings`], the mesh rings, a shutdown phase polled by a
//! timer every 20 ms with the count of cores that have drained, and the
//! server-wide count of open connections (one atomic add per accept and
//! per close, never per request) that enforces `-c`.

pub mod auth;
pub(crate) mod binary;
pub(crate) mod buffers;
pub(crate) mod connection;
pub(crate) mod conns;
mod core_main;
pub(crate) mod hotkeys;
pub(crate) mod latency;
pub(crate) mod metrics;
pub(crate) mod numa;
pub(crate) mod op;
pub(crate) mod prefix_stats;
pub(crate) mod proto;
pub(crate) mod router;
pub mod settings;
pub(crate) mod signal;
pub(crate) mod slots;
pub(crate) mod stats;
pub(crate) mod text;
pub mod tls;
pub(crate) mod transport;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use segcore_protocol::Limits;

use crate::storage::{ConfigError, MemoryFiles, Shard, ShardConfig};
use buffers::BufferPool;
use conns::ConnTable;
use op::{ConnCounters, CoreAccess, CoreReport, ReportLists};
use prefix_stats::PrefixStats;
use router::{Envelope, ReplyEnvelope, Router};
use signal::Signal;
use slots::SlotPool;

pub use prefix_stats::DEFAULT_DELIMITER;
pub use settings::Settings;

/// Sets the logging level for memcached's verbosity (`-v` count or the
/// `verbosity` command): 0 errors and warnings, 1 notices, 2 connection
/// events, 3 and up every command.
pub fn set_verbosity(level: u32) {
    log::set_max_level(match level {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    });
}

/// The verbosity the log level stands for (what `stats settings` shows).
pub fn verbosity() -> u32 {
    match log::max_level() {
        log::LevelFilter::Off | log::LevelFilter::Error | log::LevelFilter::Warn => 0,
        log::LevelFilter::Info => 1,
        log::LevelFilter::Debug => 2,
        log::LevelFilter::Trace => 3,
    }
}

thread_local! {
    /// The core this thread runs (set once its executor knows its id).
    static CURRENT_CORE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The core the calling thread runs, `None` off the cores' threads: what
/// a failure report names.
pub fn current_core() -> Option<usize> {
    CURRENT_CORE.with(Cell::get)
}

/// The current unix time in seconds.
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Shutdown phases, polled by each core's watcher.
const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const EXITING: u8 = 2;

/// What the cores share with each other and the main thread: never
/// touched per request.
#[derive(Debug, Default)]
struct Shared {
    /// [`RUNNING`], [`DRAINING`] or [`EXITING`].
    phase: AtomicU8,
    /// Cores whose connections have all closed while draining.
    drained: AtomicUsize,
    /// Open client connections on all cores (enforces `-c`).
    open_connections: AtomicUsize,
    /// The stop keeps the cache: save restart metadata (SIGUSR1 with `-e`).
    keep: std::sync::atomic::AtomicBool,
    /// With `-e`: this run's id, and the run every core takes back.
    restart: RestartRun,
}

/// What the memory files decided at start (see [`MemoryFiles`]), for every
/// core.
#[derive(Clone, Copy, Debug, Default)]
struct RestartRun {
    /// This run's id, written into each core's save.
    run: u64,
    /// The run whose saves the cores take back; `None` starts empty.
    restore: Option<u64>,
}

/// One core's state, shared by the tasks on its executor.
pub struct Core {
    /// This core's index (0-based, not the CPU number).
    pub id: usize,
    /// How many cores serve.
    pub cores: usize,
    /// Server settings.
    pub settings: Arc<Settings>,
    /// Parser limits.
    pub limits: Limits,
    /// The shard this core owns.
    pub shard: RefCell<Shard>,
    /// Connection counters.
    pub counters: RefCell<ConnCounters>,
    /// `stats detail` counts of this core's connections.
    pub prefixes: RefCell<PrefixStats>,
    /// Latency of the requests this core's connections sent.
    pub latency: RefCell<latency::Latency>,
    /// The most requested of the keys this core owns.
    pub hot_keys: RefCell<hotkeys::HotKeys>,
    /// The hot-key sampler's random state.
    pub hot_sampler: Cell<u64>,
    /// This core's client connections (`stats conns`).
    pub conns: RefCell<ConnTable>,
    /// This core's I/O buffers.
    pub buffers: BufferPool,
    /// Storage for the batches being served.
    pub slots: SlotPool,
    /// This core's listening socket: fd and address.
    pub listening: Option<(i32, SocketAddr)>,
    /// Cross-core forwarding.
    pub router: Router,
    /// Fired when the server starts shutting down.
    pub stop: Signal,
    shared: Arc<Shared>,
    last_tick: Cell<u32>,
    /// Items this core took back at start (`-e`), `None` after a cold start.
    pub restored: Option<u64>,
    /// Where this core runs and its memory lives.
    pub placement: numa::Placement,
    /// Its shard's config (the memory file, for saving at a keeping stop).
    shard_config: ShardConfig,
}

impl Core {
    /// Brings the shard's clock up to date (once per batch).
    pub fn tick(&self) {
        let now = unix_now();
        if now != self.last_tick.get() {
            self.last_tick.set(now);
            self.shard.borrow_mut().set_time(now);
        }
    }

    /// This core's contribution to `stats`, with the lists asked for.
    pub fn report(&self, shard: &Shard, also: ReportLists) -> CoreReport {
        CoreReport {
            core: self.id,
            shard: *shard.stats(),
            conns: *self.counters.borrow(),
            segments: shard.segment_counts(),
            buckets: shard.bucket_occupancy(),
            index_bytes: shard.index_bytes(),
            index_pieces: {
                let (_, largest, pieces) = shard.index_shape();
                (pieces, largest)
            },
            sketch: shard.sketch_usage(),
            dead_bytes: shard.dead_bytes(),
            prefixes: if also.prefixes {
                self.prefixes.borrow().snapshot()
            } else {
                Vec::new()
            },
            listening: self.listening,
            clients: if also.conns {
                self.conns.borrow().snapshot()
            } else {
                Vec::new()
            },
            conn_slots: self.conns.borrow().slots(),
            stop_waiters: self.stop.waiters(),
            buffers: self.buffers.usage(),
            restored: self.restored,
            placement: self.placement,
            latency: also
                .latency
                .then(|| Box::new(self.latency.borrow().clone())),
            classes: also
                .classes
                .then(|| Box::new((shard.class_stats().clone(), shard.oldest_item_age()))),
            hot_keys: if also.hot_keys {
                self.hot_keys.borrow().top()
            } else {
                Vec::new()
            },
        }
    }

    /// Starts a graceful shutdown (the enabled `shutdown` command).
    pub fn request_shutdown(&self) {
        let _ = self.shared.phase.compare_exchange(
            RUNNING,
            DRAINING,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// How this core routes keys.
    #[inline]
    pub fn route(&self) -> proto::Route {
        proto::Route {
            cores: self.cores,
            local: self.settings.port_per_core.then_some(self.id),
        }
    }

    /// Counts a new connection against the server-wide limit; `false`
    /// (and nothing counted) when the server is full.
    /// Gives back a place taken by [`Core::admit`] for a connection that
    /// was never served (its TLS handshake failed).
    fn release_admission(&self) {
        self.shared.open_connections.fetch_sub(1, Ordering::AcqRel);
    }

    fn admit(&self) -> bool {
        let open = &self.shared.open_connections;
        if open.fetch_add(1, Ordering::AcqRel) < self.settings.conn_limit {
            return true;
        }
        open.fetch_sub(1, Ordering::AcqRel);
        false
    }
}

impl CoreAccess for Core {
    fn report(&self, shard: &Shard, also: ReportLists) -> CoreReport {
        Core::report(self, shard, also)
    }

    fn reset_counters(&self) {
        self.counters.borrow_mut().reset();
        self.prefixes.borrow_mut().clear();
        self.latency.borrow_mut().reset();
        self.hot_keys.borrow_mut().clear();
    }

    fn set_detail(&self, on: bool) {
        self.prefixes.borrow_mut().set_enabled(on);
    }

    #[inline]
    fn sample_key(&self, key: &[u8]) {
        // The sampling decision touches only a Cell; the table is borrowed
        // for the one request in SAMPLE_ONE_IN that is counted.
        if hotkeys::sampled(&self.hot_sampler) {
            self.hot_keys.borrow_mut().count(key);
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// Bad settings (memory, segment size).
    Config(String),
    /// The address could not be bound.
    Bind(SocketAddr, std::io::Error),
    /// An executor could not start (io_uring or locked memory unavailable).
    Executor(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Bind(addr, e) if e.kind() == std::io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {addr}: the address is already in use (another memcached or \
                 segcore?). Stop it or pick another port with -p."
            ),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Executor(e) => write!(
                f,
                "cannot start the per-core executors: {e}. segcore needs io_uring (Linux 5.8+, \
                 not disabled by /proc/sys/kernel/io_uring_disabled or a seccomp profile) and \
                 enough locked memory: raise `ulimit -l` (LimitMEMLOCK= in systemd, \
                 --ulimit memlock=-1 in docker) or run with CAP_IPC_LOCK."
            ),
        }
    }
}

impl std::error::Error for StartError {}

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
        let cores = settings.cpus.len();
        if cores == 0 {
            return Err(StartError::Config("no CPU to run on".into()));
        }
        // Validate the shard config before any thread starts.
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
        // Every executor binds with SO_REUSEPORT, which would silently share
        // a port with another SO_REUSEPORT server; a plain bind first makes
        // "address in use" an error, as with memcached.
        if settings.port_per_core
            && usize::from(settings.listen.port()) + cores - 1 > usize::from(u16::MAX)
        {
            return Err(StartError::Config(format!(
                "--port-per-core {}: {cores} cores need ports up to {}",
                settings.listen.port(),
                usize::from(settings.listen.port()) + cores - 1
            )));
        }
        for addr in settings.listen_addrs() {
            std::net::TcpListener::bind(addr).map_err(|e| StartError::Bind(addr, e))?;
        }

        let files = open_memory_files(&settings)?;
        let restart = files
            .as_ref()
            .map_or(RestartRun::default(), |f| RestartRun {
                run: f.run,
                restore: f.restore,
            });

        let settings = Arc::new(settings);
        let requests: MeshBuilder<Envelope, _> = MeshBuilder::full(cores, MESH_CAPACITY);
        let replies: MeshBuilder<ReplyEnvelope, _> = MeshBuilder::full(cores, MESH_CAPACITY);
        let shared = Arc::new(Shared {
            restart,
            ..Shared::default()
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), StartError>>();
        let mut handles = Vec::with_capacity(cores);
        for (index, &cpu) in settings.cpus.iter().enumerate() {
            let (core_settings, requests, replies) =
                (settings.clone(), requests.clone(), replies.clone());
            let (core_shared, ready) = (shared.clone(), ready_tx.clone());
            let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&format!("segcore-{index}"))
                .spin_before_park(settings.spin_before_park)
                .io_memory(IO_MEMORY)
                .spawn(move || async move {
                    core_main::core_main(core_settings, requests, replies, core_shared, ready)
                        .await;
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
        drop(ready_tx);
        let server = Server {
            handles,
            shared,
            cores,
            _files: files,
        };
        for _ in 0..cores {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    server.abort();
                    return Err(e);
                }
                Err(_) => {
                    server.abort();
                    return Err(StartError::Executor("an executor thread died".into()));
                }
            }
        }
        Ok(server)
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
