//! One core's state, shared by the tasks on its executor: its shard, its
//! counters, its connections and buffers, its end of the mesh.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use segcore_protocol::Limits;

use crate::runtime::batch::router::Router;
use crate::runtime::conn::buffers::BufferPool;
use crate::runtime::conn::slots::SlotPool;
use crate::runtime::conn::table::ConnTable;
use crate::runtime::metrics::prefix_stats::PrefixStats;
use crate::runtime::metrics::report::ConnCounters;
use crate::runtime::metrics::{hotkeys, latency};
use crate::runtime::server::numa;
use crate::runtime::server::settings::Settings;
use crate::runtime::server::shared::{Shared, DRAINING, RUNNING};
use crate::runtime::server::signal::Signal;
use crate::storage::time::unix_now;
use crate::storage::{Shard, ShardConfig};

thread_local! {
    /// The core this thread runs (set once its executor knows its id).
    pub(crate) static CURRENT_CORE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The core the calling thread runs, `None` off the cores' threads: what
/// a failure report names.
pub fn current_core() -> Option<usize> {
    CURRENT_CORE.with(Cell::get)
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
    pub(crate) shared: Arc<Shared>,
    pub(crate) last_tick: Cell<u32>,
    /// Items this core took back at start (`-e`), `None` after a cold start.
    pub restored: Option<u64>,
    /// Where this core runs and its memory lives.
    pub placement: numa::Placement,
    /// Its shard's config (the memory file, for saving at a keeping stop).
    pub(crate) shard_config: ShardConfig,
}

impl Core {
    /// A core's state around its `shard` (with the config it was built
    /// from and what it took back at start), its place, its end of the
    /// mesh and its listening socket, on a server with `settings`.
    pub(crate) fn new(
        settings: Arc<Settings>,
        id: usize,
        (shard, shard_config, restored): (Shard, ShardConfig, Option<u64>),
        placement: numa::Placement,
        router: Router,
        shared: Arc<Shared>,
        listening: Option<(i32, SocketAddr)>,
    ) -> Core {
        Core {
            id,
            cores: settings.cpus.len(),
            limits: settings.limits(),
            shard: RefCell::new(shard),
            counters: RefCell::new(ConnCounters::default()),
            prefixes: RefCell::new(PrefixStats::new(
                settings.prefix_delimiter,
                settings.detail_enabled,
            )),
            latency: RefCell::default(),
            hot_keys: RefCell::default(),
            hot_sampler: Cell::new(hotkeys::SAMPLER_SEED),
            conns: RefCell::new(ConnTable::default()),
            buffers: BufferPool::new(settings.large_request_bytes),
            slots: SlotPool::default(),
            listening,
            router,
            stop: Signal::default(),
            shared,
            last_tick: Cell::new(0),
            restored,
            placement,
            shard_config,
            settings,
        }
    }

    /// Brings the shard's clock up to date (once per batch).
    pub fn tick(&self) {
        let now = unix_now();
        if now != self.last_tick.get() {
            self.last_tick.set(now);
            self.shard.borrow_mut().set_time(now);
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
    pub fn route(&self) -> crate::runtime::batch::route::Route {
        crate::runtime::batch::route::Route {
            cores: self.cores,
            local: self.settings.port_per_core.then_some(self.id),
        }
    }

    /// Gives back a place taken by [`Core::admit`] for a connection that
    /// was never served (its TLS handshake failed).
    pub(crate) fn release_admission(&self) {
        self.shared.open_connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Counts a new connection against the server-wide limit; `false`
    /// (and nothing counted) when the server is full.
    pub(crate) fn admit(&self) -> bool {
        let open = &self.shared.open_connections;
        if open.fetch_add(1, Ordering::AcqRel) < self.settings.conn_limit {
            return true;
        }
        open.fetch_sub(1, Ordering::AcqRel);
        false
    }
}

/// A core of its own for unit tests of what runs on a core (connections,
/// batches, wires), without sockets or a server.
#[cfg(test)]
pub(crate) mod testing {
    use std::future::Future;
    use std::rc::Rc;
    use std::sync::Arc;

    use glommio::channels::channel_mesh::MeshBuilder;
    use glommio::LocalExecutorBuilder;

    use crate::runtime::batch::router::{Envelope, ReplyEnvelope, Router};
    use crate::runtime::server::core::Core;
    use crate::runtime::server::numa::Placement;
    use crate::runtime::server::settings::Settings;
    use crate::runtime::server::shared::Shared;
    use crate::storage::{Policy, Shard};

    /// One core, 16 MB, memcached's limits otherwise.
    pub fn settings() -> Settings {
        Settings {
            listen: "127.0.0.1:11211".parse().expect("address"),
            port_per_core: false,
            cpus: vec![0],
            memory_bytes: 16 << 20,
            segment_size: 1 << 20,
            eviction: Policy::DEFAULT,
            memory_file: None,
            max_item_size: 1 << 20,
            conn_limit: 1024,
            idle_timeout: 0,
            large_request_bytes: Settings::default_large_request_bytes(1 << 20),
            large_request_timeout: 2,
            verbosity: 0,
            enable_shutdown: false,
            flush_enabled: true,
            prefix_delimiter: b':',
            detail_enabled: false,
            version: "1.6.21-segcore-test".into(),
            started_at: crate::storage::time::unix_now(),
            spin_before_park: std::time::Duration::ZERO,
            expire_budget: 64,
            metrics_listen: None,
            auth: None,
            tls: None,
            tls_handshake_timeout: std::time::Duration::from_secs(5),
            plain_listen: Vec::new(),
            more_listen: Vec::new(),
        }
    }

    /// Runs `test` on an executor of its own with a core built from
    /// `settings` (one core: nothing is forwarded).
    pub fn with_core<F, Fut>(settings: Settings, test: F)
    where
        F: FnOnce(Rc<Core>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        LocalExecutorBuilder::default()
            .spawn(move || async move {
                let requests: MeshBuilder<Envelope, _> = MeshBuilder::full(1, 8);
                let replies: MeshBuilder<ReplyEnvelope, _> = MeshBuilder::full(1, 8);
                let (request_tx, _request_rx) = requests.join().await.expect("mesh");
                let (reply_tx, _reply_rx) = replies.join().await.expect("mesh");
                let config = settings.shard_config(0);
                let mut shard = Shard::new(&config).expect("shard");
                shard.set_time(crate::storage::time::unix_now());
                let placement = Placement::here(shard.memory_start() as usize);
                let core = Rc::new(Core::new(
                    Arc::new(settings),
                    0,
                    (shard, config, None),
                    placement,
                    Router::new(request_tx, reply_tx),
                    Arc::new(Shared::default()),
                    None,
                ));
                core.tick();
                test(core).await;
            })
            .expect("executor")
            .join()
            .expect("test");
    }
}
