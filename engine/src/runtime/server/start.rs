//! One core's life: what its executor does from start to exit, step by
//! step. Each step is a named function so the order reads at a glance:
//! build the core's state (after pinning, so its memory is first touched
//! on its NUMA node), start its tasks (forwarding, accept, background
//! expiry, idle kicks), report ready, then watch the shutdown phase.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers};
use glommio::net::TcpListener;
use glommio::{Latency, Shares};

use crate::runtime::batch::router::{Envelope, ReplyEnvelope, Router};
use crate::runtime::conn::listen::spawn_accept_loop;
use crate::runtime::server::core::Core;
use crate::runtime::server::settings::Settings;
use crate::runtime::server::shared::{Shared, DRAINING, RUNNING};
use crate::runtime::server::start_error::StartError;
use crate::storage::{Shard, ShardConfig};

/// Runs one core until the server exits; `ready` hears whether it started.
pub(super) async fn core_main(
    settings: Arc<Settings>,
    requests: MeshBuilder<Envelope, Full>,
    replies: MeshBuilder<ReplyEnvelope, Full>,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<Option<u64>, StartError>>,
) {
    let (core, request_rx, reply_rx, (listener, more, plain), metrics) =
        match build_core(settings, requests, replies, shared).await {
            Ok(started) => started,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
    spawn_forwarding(&core, request_rx, reply_rx);
    spawn_accept_loop(&core, listener, core.settings.tls.clone());
    for listener in more {
        spawn_accept_loop(&core, listener, core.settings.tls.clone());
    }
    for listener in plain {
        spawn_accept_loop(&core, listener, None);
    }
    if let Some(metrics) = metrics {
        crate::runtime::metrics::endpoint::spawn(&core, metrics);
    }
    spawn_expiry(&core);
    if core.settings.idle_timeout > 0 {
        spawn_idle_kicks(&core);
    }
    let _ = ready.send(Ok(core.restored));
    watch_shutdown(&core).await;
    if core.shared.keep.load(Ordering::Acquire) {
        save_for_restart(&core);
    }
    core.router.close();
}

/// Takes back what the last graceful stop saved (`-e`): the items
/// restored, or `None` after a cold start (with one line saying why, when
/// the memory file was there to restore from).
fn warm_restart(shard: &mut Shard, config: &ShardConfig, id: usize) -> Option<u64> {
    let file = config.restart.as_ref()?;
    // The server looked at every core's save first (see `MemoryFiles`):
    // no run to restore means start empty, and it said why.
    file.restore_run?;
    match shard.restore(config) {
        Ok(restored) => {
            log::info!(
                "core {id}: restored {} items from {}",
                restored.items,
                file.path.display()
            );
            if restored.dropped_segments > 0 {
                log::warn!(
                    "core {id}: dropped {} segments of {} whose bytes changed after the save",
                    restored.dropped_segments,
                    file.path.display()
                );
            }
            Some(restored.items)
        }
        Err(why) => {
            log::warn!(
                "core {id}: starting empty, not from {}: {why}",
                file.path.display()
            );
            None
        }
    }
}

/// A graceful stop that keeps the cache (SIGUSR1): requests have stopped,
/// so the shard is at rest; write what a warm restart needs.
fn save_for_restart(core: &Core) {
    if let Err(e) = core.shard.borrow().save(&core.shard_config) {
        log::error!("core {}: could not save restart metadata: {e}", core.id);
    }
}

type Started = (
    Rc<Core>,
    Receivers<Envelope>,
    Receivers<ReplyEnvelope>,
    Listeners,
    Option<TcpListener>,
);

/// A core's client listeners: the main one, more like it, the plaintext
/// ones.
type Listeners = (TcpListener, Vec<TcpListener>, Vec<TcpListener>);

/// The core's shard, mesh ends, listener and state.
async fn build_core(
    settings: Arc<Settings>,
    requests: MeshBuilder<Envelope, Full>,
    replies: MeshBuilder<ReplyEnvelope, Full>,
    shared: Arc<Shared>,
) -> Result<Started, StartError> {
    // Every core joins both meshes before any can fail, or peers would wait
    // for it forever.
    let (Ok((request_tx, request_rx)), Ok((reply_tx, reply_rx))) =
        (requests.join().await, replies.join().await)
    else {
        return Err(StartError::Executor("mesh join failed".into()));
    };
    // glommio numbers mesh peers in the order they join, not by executor:
    // a core's identity (which keys it owns, which port is its own with
    // --port-per-core, which memory file is its own with -e) is its
    // request-mesh peer id.
    let id = request_tx.peer_id();
    crate::runtime::server::core::CURRENT_CORE.with(|core| core.set(Some(id)));
    let (shard, shard_config, restored) = open_shard(&settings, &shared, id)?;
    // Pinned already: this thread's CPU is the core's; asking for the
    // node of the shard's first page also touches it from here.
    let placement = crate::runtime::server::numa::Placement::here(shard.memory_start() as usize);
    let ((listener, more, plain), metrics) = bind_listeners(&settings, id)?;
    let listening = listener
        .local_addr()
        .ok()
        .map(|addr| (std::os::fd::AsRawFd::as_raw_fd(&listener), addr));
    let core = Rc::new(Core::new(
        settings,
        id,
        (shard, shard_config, restored),
        placement,
        Router::new(request_tx, reply_tx),
        shared,
        listening,
    ));
    core.tick();
    Ok((core, request_rx, reply_rx, (listener, more, plain), metrics))
}

/// Core `id`'s shard, allocated here, after pinning (first touch puts the
/// pages on this core's NUMA node), and warm-restarted from its memory
/// file when the run's judgement allows it.
fn open_shard(
    settings: &Settings,
    shared: &Shared,
    id: usize,
) -> Result<(Shard, ShardConfig, Option<u64>), StartError> {
    let mut shard_config = settings.shard_config(id);
    if let Some(file) = shard_config.restart.as_mut() {
        file.run = shared.restart.run;
        file.restore_run = shared.restart.restore;
    }
    let mut shard = Shard::new(&shard_config).map_err(|e| match &shard_config.restart {
        Some(file) => StartError::Config(format!(
            "cannot use the memory file {}: {e}",
            file.path.display()
        )),
        None => StartError::Config(e.to_string()),
    })?;
    shard.set_time(crate::storage::time::unix_now());
    let restored = warm_restart(&mut shard, &shard_config, id);
    Ok((shard, shard_config, restored))
}

/// Binds `addr`; a held port is an error naming the `flag` that asked for
/// it.
fn bind(addr: SocketAddr, flag: &'static str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .map_err(|e| StartError::Bind(addr, flag, std::io::Error::other(e.to_string())))
}

/// Core `id`'s listeners: the main one, more like it (`-l a,b`),
/// plaintext ones beside a TLS one (`-l notls:...`), and on core 0 the
/// metrics endpoint.
fn bind_listeners(
    settings: &Settings,
    id: usize,
) -> Result<(Listeners, Option<TcpListener>), StartError> {
    let listener = bind(settings.core_listen(id), "-p/-l")?;
    let bind_all = |addrs: &[SocketAddr]| {
        addrs
            .iter()
            .map(|&addr| bind(addr, "-l"))
            .collect::<Result<Vec<_>, _>>()
    };
    let more = bind_all(&settings.more_listen)?;
    let plain = bind_all(&settings.plain_listen)?;
    let metrics = match settings.metrics_listen.filter(|_| id == 0) {
        Some(addr) => Some(bind(addr, "--metrics-listen")?),
        None => None,
    };
    Ok(((listener, more, plain), metrics))
}

/// A task per peer on each mesh: run the batches other cores send, and
/// hand the replies to batches this core sent to their waiters.
fn spawn_forwarding(
    core: &Rc<Core>,
    mut request_rx: Receivers<Envelope>,
    mut reply_rx: Receivers<ReplyEnvelope>,
) {
    for (_, rx) in request_rx.streams() {
        let core = core.clone();
        glommio::spawn_local(async move {
            while let Some(envelope) = rx.recv().await {
                core.tick();
                if envelope.start == 0 {
                    core.counters.borrow_mut().forwarded_in += envelope.batch.keyed_ops();
                }
                // Routing and mesh numbering must agree: a forwarded key is
                // always one this core owns, with its own hash.
                debug_assert!(envelope.batch.ops.iter().all(|op| {
                    let op = op.map(|span| span.get(&envelope.batch.arena));
                    op.hashed_key().is_none_or(|k| {
                        k == crate::storage::HashedKey::new(k.key)
                            && crate::runtime::batch::route::owner_of(k.key, core.cores) == core.id
                    })
                }));
                let Envelope {
                    reply_to,
                    token,
                    batch,
                    start,
                    budget,
                    spare: mut replies,
                } = envelope;
                {
                    let mut shard = core.shard.borrow_mut();
                    batch.execute(start, budget, &mut shard, &*core, &mut replies);
                }
                core.router.reply(reply_to, token, replies, batch).await;
            }
        })
        .detach();
    }
    for (_, rx) in reply_rx.streams() {
        let core = core.clone();
        glommio::spawn_local(async move {
            while let Some(envelope) = rx.recv().await {
                core.router.complete(envelope);
            }
        })
        .detach();
    }
}

/// How often background expiry steps: while there is something to look
/// at, and once a whole sweep of the shard found nothing expired and
/// nothing was written since (an idle server then wakes once a second for
/// it; reads expire items lazily anyway).
const EXPIRY_BUSY: Duration = Duration::from_millis(100);
const EXPIRY_IDLE: Duration = Duration::from_secs(1);

/// Background expiry, in a low-priority queue: it yields to requests and
/// each step is bounded by the budget.
fn spawn_expiry(core: &Rc<Core>) {
    let core = core.clone();
    let queue =
        glommio::executor().create_task_queue(Shares::Static(10), Latency::NotImportant, "expire");
    let _ = glommio::spawn_local_into(
        async move {
            let budget = core.settings.expire_budget;
            let (mut quiet_steps, mut written) = (0usize, 0u64);
            loop {
                let sweep = core
                    .shard
                    .borrow()
                    .segment_counts()
                    .0
                    .div_ceil(budget.max(1));
                let pause = if quiet_steps >= sweep {
                    EXPIRY_IDLE
                } else {
                    EXPIRY_BUSY
                };
                glommio::timer::sleep(pause).await;
                core.tick();
                let mut shard = core.shard.borrow_mut();
                let freed = shard.expire_step(budget);
                let items = shard.stats().total_items;
                if freed > 0 || items != written {
                    quiet_steps = 0;
                    written = items;
                } else {
                    quiet_steps += 1;
                }
            }
        },
        queue,
    )
    .map(|task| task.detach());
}

/// Closes connections idle past `idle_timeout`, checking once a second as
/// memcached does.
fn spawn_idle_kicks(core: &Rc<Core>) {
    let core = core.clone();
    glommio::spawn_local(async move {
        while !core.stop.fired() {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            core.tick();
            let now = core.last_tick.get();
            let kicked = core
                .conns
                .borrow_mut()
                .kick_idle(now, core.settings.idle_timeout);
            core.counters.borrow_mut().idle_kicks += kicked;
        }
    })
    .detach();
}

/// How often a core looks at the shutdown phase while the server runs
/// (the start of a stop waits this long at most; an idle core wakes for
/// nothing else this often), and while it drains.
const WATCH_RUNNING: Duration = Duration::from_millis(500);
const WATCH_DRAINING: Duration = Duration::from_millis(20);

/// Polls the shared shutdown phase: on draining, stops accepting and ends
/// every connection's wait, then reports once no connection is left;
/// returns when the server exits.
async fn watch_shutdown(core: &Core) {
    let shared = &core.shared;
    let mut reported = false;
    let mut pause = WATCH_RUNNING;
    loop {
        glommio::timer::sleep(pause).await;
        match shared.phase.load(Ordering::Acquire) {
            RUNNING => {}
            DRAINING => {
                pause = WATCH_DRAINING;
                if !core.stop.fired() {
                    core.stop.fire();
                    core.conns.borrow().shut_down_reads();
                }
                if !reported && core.counters.borrow().curr_connections == 0 {
                    reported = true;
                    shared.drained.fetch_add(1, Ordering::AcqRel);
                }
            }
            _ => break,
        }
    }
}
