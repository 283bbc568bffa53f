//! The rows every view of the counters is rendered from, in memcached's
//! `stats` order, each with memcached's name and, where
//! prometheus/memcached_exporter has the metric, the exporter's name and
//! labels (so existing dashboards work unchanged). segcore's own metrics
//! are prefixed `segcore_`, and per-core ones carry a `core` label.

use crate::runtime::conn::buffers::BUFFER_SIZE;
use crate::runtime::metrics::report::{CoreReport, Totals};
use crate::runtime::metrics::rows::{Kind, Row, Rows, Value};
use crate::runtime::server::numa;
use crate::runtime::server::settings::Settings;

/// The process's user and system CPU time.
fn rusage() -> ((u64, u32), (u64, u32)) {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let pair = |tv: libc::timeval| (tv.tv_sec as u64, tv.tv_usec as u32);
    (pair(usage.ru_utime), pair(usage.ru_stime))
}

const COMMANDS: &str = "memcached_commands_total";
const COMMANDS_HELP: &str = "Requests by command and status.";

/// What the server-wide rows read: every core's counters summed, and the
/// settings they are shown against.
#[derive(Clone, Copy, Debug)]
pub struct General {
    /// The cores' reports summed.
    pub t: Totals,
    /// `-c`.
    pub conn_limit: u64,
    /// `-m`, in bytes.
    pub memory_bytes: u64,
    /// Cores serving.
    pub threads: u64,
    /// Seconds since the server started.
    pub uptime: u64,
    /// The server's unix time.
    pub now: u64,
}

impl General {
    /// The view of `t` under `settings` at `now`.
    pub fn of(t: &Totals, settings: &Settings, now: u32) -> General {
        General {
            t: *t,
            conn_limit: settings.conn_limit as u64,
            memory_bytes: settings.memory_bytes as u64,
            threads: settings.cpus.len() as u64,
            uptime: u64::from(now.saturating_sub(settings.started_at)),
            now: u64::from(now),
        }
    }
}

/// A `commands_total{command, status}` label pair.
macro_rules! cmd {
    ($command:literal, $status:literal) => {
        &[("command", $command), ("status", $status)]
    };
}

/// A row of the server-wide view.
type G = Row<General>;

/// The first server-wide rows, before the version and CPU time.
static HEAD: &[Row<General>] = &[
    G::gauge("pid", "Process id.", |_| u64::from(std::process::id())),
    G::gauge("uptime", "Seconds since the server started.", |g| g.uptime)
        .prom("memcached_uptime_seconds"),
    G::gauge("time", "The server's unix time.", |g| g.now).prom("memcached_time_seconds"),
];

/// The server-wide counters and gauges after the CPU time, in memcached's
/// `stats` order, up to the TLS rows.
static CONNECTIONS_AND_COMMANDS: &[Row<General>] = &[
    G::gauge(
        "max_connections",
        "Most client connections allowed (-c).",
        |g| g.conn_limit,
    )
    .prom("memcached_max_connections"),
    G::gauge("curr_connections", "Open client connections.", |g| {
        g.t.conns.curr_connections
    })
    .prom("memcached_current_connections"),
    G::counter(
        "total_connections",
        "Connections accepted since start.",
        |g| g.t.conns.total_connections,
    )
    .prom("memcached_connections_total"),
    G::counter(
        "rejected_connections",
        "Connections closed at once for being over -c.",
        |g| g.t.conns.rejected_connections,
    )
    .prom("memcached_connections_rejected_total"),
    // Each core's connection table keeps a slot per connection it has had
    // open at once, as memcached keeps its conn structs.
    G::gauge(
        "connection_structures",
        "Connection slots allocated.",
        |g| g.t.conn_slots as u64,
    ),
    G::counter("cmd_get", "Keys looked up.", |g| g.t.shard.cmd_get),
    G::counter("cmd_set", "Storage commands.", |g| g.t.shard.cmd_set),
    // memcached_exporter's set/hit: storage commands other than cas.
    G::counter("", COMMANDS_HELP, |g| {
        let s = &g.t.shard;
        s.cmd_set
            .saturating_sub(s.cas_hits + s.cas_misses + s.cas_badval)
    })
    .prom_only(COMMANDS)
    .labels(cmd!("set", "hit")),
    G::counter("cmd_flush", COMMANDS_HELP, |g| g.t.conns.cmd_flush)
        .prom(COMMANDS)
        .labels(cmd!("flush", "hit")),
    G::counter("cmd_touch", "Touch commands.", |g| g.t.shard.cmd_touch),
    G::counter("get_hits", COMMANDS_HELP, |g| g.t.shard.get_hits)
        .prom(COMMANDS)
        .labels(cmd!("get", "hit")),
    G::counter("get_misses", COMMANDS_HELP, |g| g.t.shard.get_misses)
        .prom(COMMANDS)
        .labels(cmd!("get", "miss")),
    G::counter("get_expired", "Lookups that found an expired item.", |g| {
        g.t.shard.get_expired
    }),
    // flush_all empties the index at once, so no later get can find a
    // flushed item (memcached invalidates lazily).
    G::counter("get_flushed", "Lookups that found a flushed item.", |_| 0),
    G::counter("delete_misses", COMMANDS_HELP, |g| g.t.shard.delete_misses)
        .prom(COMMANDS)
        .labels(cmd!("delete", "miss")),
    G::counter("delete_hits", COMMANDS_HELP, |g| g.t.shard.delete_hits)
        .prom(COMMANDS)
        .labels(cmd!("delete", "hit")),
    G::counter("incr_misses", COMMANDS_HELP, |g| g.t.shard.incr_misses)
        .prom(COMMANDS)
        .labels(cmd!("incr", "miss")),
    G::counter("incr_hits", COMMANDS_HELP, |g| g.t.shard.incr_hits)
        .prom(COMMANDS)
        .labels(cmd!("incr", "hit")),
    G::counter("decr_misses", COMMANDS_HELP, |g| g.t.shard.decr_misses)
        .prom(COMMANDS)
        .labels(cmd!("decr", "miss")),
    G::counter("decr_hits", COMMANDS_HELP, |g| g.t.shard.decr_hits)
        .prom(COMMANDS)
        .labels(cmd!("decr", "hit")),
    G::counter("cas_misses", COMMANDS_HELP, |g| g.t.shard.cas_misses)
        .prom(COMMANDS)
        .labels(cmd!("cas", "miss")),
    G::counter("cas_hits", COMMANDS_HELP, |g| g.t.shard.cas_hits)
        .prom(COMMANDS)
        .labels(cmd!("cas", "hit")),
    G::counter("cas_badval", COMMANDS_HELP, |g| g.t.shard.cas_badval)
        .prom(COMMANDS)
        .labels(cmd!("cas", "badval")),
    G::counter("touch_hits", COMMANDS_HELP, |g| g.t.shard.touch_hits)
        .prom(COMMANDS)
        .labels(cmd!("touch", "hit")),
    G::counter("touch_misses", COMMANDS_HELP, |g| g.t.shard.touch_misses)
        .prom(COMMANDS)
        .labels(cmd!("touch", "miss")),
    G::counter(
        "store_too_large",
        "Stores refused for a value over the item size limit.",
        |g| g.t.conns.store_too_large,
    )
    .prom("memcached_item_too_large_total"),
    G::counter(
        "store_no_memory",
        "Stores refused for want of memory.",
        |g| g.t.shard.out_of_memory + g.t.conns.store_no_memory,
    )
    .prom("memcached_item_no_memory_total"),
    G::counter("auth_cmds", "Authentication attempts.", |g| {
        g.t.conns.auth_cmds
    })
    .prom("segcore_auth_attempts_total"),
    G::counter("auth_errors", "Failed authentication attempts.", |g| {
        g.t.conns.auth_errors
    })
    .prom("segcore_auth_failures_total"),
];

/// Shown only when the server speaks TLS (`-Z`).
static TLS: &[Row<General>] = &[
    G::counter(
        "ssl_handshake_errors",
        "TLS handshakes that failed or timed out.",
        |g| g.t.conns.ssl_handshake_errors,
    )
    .prom("segcore_tls_handshake_errors_total"),
    G::counter("ssl_new_sessions", "TLS handshakes completed.", |g| {
        g.t.conns.ssl_new_sessions
    })
    .prom("segcore_tls_sessions_total"),
];

/// The rest of the server-wide rows: traffic, memory, connections'
/// buffers, items.
static TRAFFIC_AND_ITEMS: &[Row<General>] = &[
    G::counter("bytes_read", "Bytes read from clients.", |g| {
        g.t.conns.bytes_read
    })
    .prom("memcached_read_bytes_total"),
    G::counter("bytes_written", "Bytes written to clients.", |g| {
        g.t.conns.bytes_written
    })
    .prom("memcached_written_bytes_total"),
    G::gauge("limit_maxbytes", "Item memory limit (-m).", |g| {
        g.memory_bytes
    })
    .prom("memcached_limit_bytes"),
    G::gauge(
        "accepting_conns",
        "Whether the server accepts connections.",
        |_| 1,
    )
    .prom("memcached_accepting_connections"),
    // segcore never stops accepting: a connection over the limit is
    // accepted and closed (rejected_connections).
    G::counter(
        "listen_disabled_num",
        "Times the listener was disabled at the connection limit.",
        |_| 0,
    )
    .prom("memcached_connections_listener_disabled_total"),
    G::counter("time_in_listen_disabled_us", "", |_| 0),
    G::gauge("threads", "", |g| g.threads),
    G::counter(
        "idle_kicks",
        "Connections closed for idling past idle_timeout.",
        |g| g.t.conns.idle_kicks,
    )
    .prom("segcore_idle_kicks_total"),
    // memcached's read-buffer figures, for segcore's pooled connection
    // buffers (read and reply buffers alike).
    G::gauge("read_buf_count", "", |g| {
        (g.t.buffers.lent + g.t.buffers.idle) as u64
    }),
    G::gauge(
        "read_buf_bytes",
        "Bytes of connection buffers, pooled and grown.",
        |g| {
            let b = &g.t.buffers;
            ((b.lent + b.idle) * BUFFER_SIZE + b.large_bytes) as u64
        },
    )
    .prom("segcore_connection_buffer_bytes"),
    G::gauge("read_buf_bytes_free", "", |g| {
        (g.t.buffers.idle * BUFFER_SIZE) as u64
    }),
    G::counter(
        "read_buf_oom",
        "Requests refused for want of read-buffer room.",
        |g| g.t.conns.read_buf_oom,
    )
    .prom("segcore_read_buffer_oom_total"),
    G::counter(
        "large_request_reclaims",
        "Stalled connections closed to give their large-request memory to another.",
        |g| g.t.conns.large_request_reclaims,
    )
    .prom("segcore_large_request_reclaims_total"),
    G::gauge("hash_bytes", "", |g| g.t.index_bytes as u64),
    G::gauge("bytes", "Bytes of live items.", |g| g.t.shard.bytes).prom("memcached_current_bytes"),
    G::gauge("curr_items", "Items stored now.", |g| g.t.shard.curr_items)
        .prom("memcached_current_items"),
    G::counter("total_items", "Items stored since start.", |g| {
        g.t.shard.total_items
    })
    .prom("memcached_items_total"),
    G::counter("evictions", "Live items removed to make room.", |g| {
        g.t.shard.evictions
    })
    .prom("memcached_items_evicted_total"),
    G::counter("reclaimed", "Expired items reclaimed.", |g| {
        g.t.shard.reclaimed
    })
    .prom("memcached_items_reclaimed_total"),
    G::counter("evicted_segments", "", |g| g.t.shard.evicted_segments),
    // Warm restart (-e): items every core took back at start, and whether
    // every core did (a warm start) or began empty.
    G::gauge(
        "restart_restored_items",
        "Items taken back at a warm restart.",
        |g| g.t.restored,
    )
    .prom("segcore_restart_restored_items"),
    G::gauge(
        "restart_warm_start",
        "1 when every core started from its memory file.",
        |g| u64::from(g.t.warm_start),
    )
    .prom("segcore_restart_warm_start"),
    G::counter("expired_segments", "", |g| g.t.shard.expired_segments),
    G::gauge("", "Bytes of segments in use.", |g| {
        g.t.segment_bytes_used as u64
    })
    .prom_only("memcached_malloced_bytes"),
];

/// The server-wide rows: `stats` with no arguments, and the `memcached_*`
/// metrics. The counters and gauges are the tables above; only the rows
/// that are text or seconds (the version, the CPU time) are built here.
pub fn general(t: &Totals, settings: &Settings, now: u32) -> Rows {
    let g = General::of(t, settings, now);
    let mut r = Rows::default();
    r.table(HEAD, &g);
    r.add(
        Some("version"),
        Kind::Gauge,
        "",
        Value::Text(settings.version.clone()),
    );
    r.add(
        None,
        Kind::Gauge,
        "The server's version (label).",
        Value::Int(1),
    )
    .prom("memcached_version")
    .label("version", settings.version.clone());
    r.gauge("pointer_size", "", u64::from(usize::BITS));
    let (user, system) = rusage();
    r.add(
        Some("rusage_user"),
        Kind::Counter,
        "User CPU seconds of the process.",
        Value::Seconds(user.0, user.1),
    )
    .prom("memcached_process_user_cpu_seconds_total");
    r.add(
        Some("rusage_system"),
        Kind::Counter,
        "System CPU seconds of the process.",
        Value::Seconds(system.0, system.1),
    )
    .prom("memcached_process_system_cpu_seconds_total");
    r.table(CONNECTIONS_AND_COMMANDS, &g);
    if settings.tls.is_some() {
        r.table(TLS, &g);
    }
    r.table(TRAFFIC_AND_ITEMS, &g);
    r
}

/// A row of one core's view.
type C = Row<CoreReport>;

/// One core's connection and routing rows (`stats cores`), labelled with
/// the core.
static CORE: &[Row<CoreReport>] = &[
    C::gauge(
        "curr_connections",
        "Open client connections of the core.",
        |c| c.conns.curr_connections,
    )
    .prom("segcore_core_connections"),
    C::counter("total_connections", "Connections the core accepted.", |c| {
        c.conns.total_connections
    })
    .prom("segcore_core_connections_total"),
    C::counter("requests", "Requests the core parsed.", |c| {
        c.conns.requests
    })
    .prom("segcore_requests_total"),
    C::counter(
        "forwarded_out",
        "Key ops the core sent to their owners.",
        |c| c.conns.forwarded_out,
    )
    .prom("segcore_forwarded_out_total"),
    C::counter(
        "forwarded_in",
        "Key ops the core ran for other cores.",
        |c| c.conns.forwarded_in,
    )
    .prom("segcore_forwarded_in_total"),
    C::gauge("curr_items", "Items in the core's shard.", |c| {
        c.shard.curr_items
    })
    .prom("segcore_items"),
    C::gauge("conn_slots", "Connection slots the core allocated.", |c| {
        c.conn_slots as u64
    })
    .prom("segcore_connection_slots"),
    C::gauge(
        "stop_waiters",
        "Tasks waiting on the core's stop signal.",
        |c| c.stop_waiters as u64,
    )
    .prom("segcore_stop_waiters"),
    C::gauge("buffers_lent", "I/O buffers lent to connections.", |c| {
        c.buffers.lent as u64
    })
    .prom("segcore_buffers_lent"),
    C::gauge("buffers_idle", "I/O buffers idle in the pool.", |c| {
        c.buffers.idle as u64
    })
    .prom("segcore_buffers_idle"),
    C::gauge(
        "large_request_bytes",
        "Bytes of read buffers grown for large requests.",
        |c| c.buffers.large_bytes as u64,
    )
    .prom("segcore_large_request_bytes"),
];

/// One core's storage rows (`stats segments`, without the TTL buckets),
/// labelled with the core.
static SEGMENTS: &[Row<CoreReport>] = &[
    C::gauge("segment_size", "Bytes per segment.", |c| {
        c.segments.2 as u64
    })
    .prom("segcore_segment_size_bytes"),
    C::gauge("segments_total", "Segments of the core's shard.", |c| {
        c.segments.0 as u64
    })
    .prom("segcore_segments"),
    C::gauge("segments_free", "Segments holding nothing.", |c| {
        c.segments.1 as u64
    })
    .prom("segcore_segments_free"),
    C::gauge("segments_used", "Segments holding items.", |c| {
        (c.segments.0 - c.segments.1) as u64
    })
    .prom("segcore_segments_used"),
    C::gauge("index_bytes", "Bytes of the core's index.", |c| {
        c.index_bytes as u64
    })
    .prom("segcore_index_bytes"),
    C::gauge(
        "index_pieces",
        "Tables the core's index is split into (each grows on its own).",
        |c| c.index_pieces.0 as u64,
    )
    .prom("segcore_index_pieces"),
    C::gauge(
        "index_largest_piece",
        "Entries in the index's largest table: what one growth step moves, at most.",
        |c| c.index_pieces.1 as u64,
    )
    .prom("segcore_index_largest_piece_entries"),
    C::gauge(
        "dead_bytes",
        "Bytes of dead items in segments in use.",
        |c| c.dead_bytes,
    )
    .prom("segcore_dead_bytes"),
    // What the policy does: segments evicted; for the merge policies,
    // merges done, items they kept and dropped, the frequency the last
    // s3fifo main merge required, the access sketch's size and halvings;
    // and flush_all runs on this shard.
    C::counter(
        "evicted_segments",
        "Segments evicted (whole, or merged away).",
        |c| c.shard.evicted_segments,
    )
    .prom("segcore_segments_evicted_total"),
    C::counter(
        "merges",
        "Merge passes of the merge and s3fifo policies.",
        |c| c.shard.merges,
    )
    .prom("segcore_merges_total"),
    C::counter("merge_retained", "Items kept alive by merges.", |c| {
        c.shard.merge_retained
    })
    .prom("segcore_merge_retained_total"),
    C::counter("merge_evicted", "Live items merges dropped.", |c| {
        c.shard.merge_evicted
    })
    .prom("segcore_merge_evicted_total"),
    C::counter(
        "promoted",
        "Items s3fifo promoted from its small FIFO into main (read on probation).",
        |c| c.shard.promoted,
    )
    .prom("segcore_s3fifo_promoted_total"),
    C::counter(
        "probation_evicted",
        "Items s3fifo dropped from its small FIFO unread (one-off keys, scans).",
        |c| c.shard.probation_evicted,
    )
    .prom("segcore_s3fifo_probation_evicted_total"),
    C::gauge(
        "merge_threshold",
        "Estimated access count the last s3fifo main merge required to keep an item.",
        |c| c.shard.merge_threshold,
    )
    .prom("segcore_merge_threshold"),
    C::gauge("sketch_bytes", "Bytes of the s3fifo access sketch.", |c| {
        c.sketch.map_or(0, |k| k.0) as u64
    })
    .prom("segcore_sketch_bytes"),
    C::counter(
        "sketch_halvings",
        "Times the access sketch halved its counts (ageing).",
        |c| c.sketch.map_or(0, |k| k.1),
    )
    .prom("segcore_sketch_halvings_total"),
    C::counter("flushes", "flush_all runs on the core's shard.", |c| {
        c.shard.cmd_flush
    })
    .prom("segcore_flushes_total"),
    C::counter("", "Live items the core's shard evicted.", |c| {
        c.shard.evictions
    })
    .prom_only("segcore_items_evicted_total"),
];

/// One core's connection and routing rows (`stats cores`).
pub fn core(c: &CoreReport) -> Rows {
    let mut r = Rows::default();
    let core = c.core.to_string();
    r.table_labelled(CORE, c, "core", &core);
    let p = c.placement;
    r.add(
        None,
        Kind::Gauge,
        "Where the core runs and its memory lives (labels; -1 unknown).",
        Value::Int(1),
    )
    .prom("segcore_core_info")
    .label("core", core.clone())
    .label("cpu", numa::shown(p.cpu))
    .label("numa_node", numa::shown(p.cpu_node))
    .label("memory_node", numa::shown(p.memory_node));
    r
}

/// One core's storage rows (`stats segments`, without the TTL buckets).
pub fn segments(c: &CoreReport) -> Rows {
    let mut r = Rows::default();
    r.table_labelled(SEGMENTS, c, "core", &c.core.to_string());
    r
}

#[cfg(test)]
mod tests;
