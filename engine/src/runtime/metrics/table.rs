//! The rows every view of the counters is rendered from, in memcached's
//! `stats` order, each with memcached's name and, where
//! prometheus/memcached_exporter has the metric, the exporter's name and
//! labels (so existing dashboards work unchanged). segcore's own metrics
//! are prefixed `segcore_`, and per-core ones carry a `core` label.

use crate::runtime::conn::buffers::BUFFER_SIZE;
use crate::runtime::metrics::report::{CoreReport, Totals};
use crate::runtime::metrics::rows::{Kind, Metric, Rows, Value};
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

/// Names a row as memcached_exporter's `commands_total{command, status}`.
fn command(row: &mut Metric, command: &'static str, status: &'static str) {
    row.prom(COMMANDS)
        .label("command", command)
        .label("status", status);
}

/// The server-wide rows: `stats` with no arguments, and the `memcached_*`
/// metrics.
pub fn general(t: &Totals, settings: &Settings, now: u32) -> Rows {
    let (shard, conns) = (&t.shard, &t.conns);
    let mut r = Rows::default();
    let (user, system) = rusage();
    r.gauge("pid", "Process id.", u64::from(std::process::id()));
    r.gauge(
        "uptime",
        "Seconds since the server started.",
        u64::from(now.saturating_sub(settings.started_at)),
    )
    .prom("memcached_uptime_seconds");
    r.gauge("time", "The server's unix time.", u64::from(now))
        .prom("memcached_time_seconds");
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
    r.gauge(
        "max_connections",
        "Most client connections allowed (-c).",
        settings.conn_limit as u64,
    )
    .prom("memcached_max_connections");
    r.gauge(
        "curr_connections",
        "Open client connections.",
        conns.curr_connections,
    )
    .prom("memcached_current_connections");
    r.counter(
        "total_connections",
        "Connections accepted since start.",
        conns.total_connections,
    )
    .prom("memcached_connections_total");
    r.counter(
        "rejected_connections",
        "Connections closed at once for being over -c.",
        conns.rejected_connections,
    )
    .prom("memcached_connections_rejected_total");
    // Each core's connection table keeps a slot per connection it has had
    // open at once, as memcached keeps its conn structs.
    r.gauge(
        "connection_structures",
        "Connection slots allocated.",
        t.conn_slots as u64,
    );
    r.counter("cmd_get", "Keys looked up.", shard.cmd_get);
    r.counter("cmd_set", "Storage commands.", shard.cmd_set);
    // memcached_exporter's set/hit: storage commands other than cas.
    let cas = shard.cas_hits + shard.cas_misses + shard.cas_badval;
    command(
        r.add(
            None,
            Kind::Counter,
            COMMANDS_HELP,
            Value::Int(shard.cmd_set.saturating_sub(cas)),
        ),
        "set",
        "hit",
    );
    command(
        r.counter("cmd_flush", COMMANDS_HELP, conns.cmd_flush),
        "flush",
        "hit",
    );
    r.counter("cmd_touch", "Touch commands.", shard.cmd_touch);
    for (stat, cmd, status, v) in [
        ("get_hits", "get", "hit", shard.get_hits),
        ("get_misses", "get", "miss", shard.get_misses),
    ] {
        command(r.counter(stat, COMMANDS_HELP, v), cmd, status);
    }
    r.counter(
        "get_expired",
        "Lookups that found an expired item.",
        shard.get_expired,
    );
    // flush_all empties the index at once, so no later get can find a
    // flushed item (memcached invalidates lazily).
    r.counter("get_flushed", "Lookups that found a flushed item.", 0);
    for (stat, cmd, status, v) in [
        ("delete_misses", "delete", "miss", shard.delete_misses),
        ("delete_hits", "delete", "hit", shard.delete_hits),
        ("incr_misses", "incr", "miss", shard.incr_misses),
        ("incr_hits", "incr", "hit", shard.incr_hits),
        ("decr_misses", "decr", "miss", shard.decr_misses),
        ("decr_hits", "decr", "hit", shard.decr_hits),
        ("cas_misses", "cas", "miss", shard.cas_misses),
        ("cas_hits", "cas", "hit", shard.cas_hits),
        ("cas_badval", "cas", "badval", shard.cas_badval),
        ("touch_hits", "touch", "hit", shard.touch_hits),
        ("touch_misses", "touch", "miss", shard.touch_misses),
    ] {
        command(r.counter(stat, COMMANDS_HELP, v), cmd, status);
    }
    r.counter(
        "store_too_large",
        "Stores refused for a value over the item size limit.",
        conns.store_too_large,
    )
    .prom("memcached_item_too_large_total");
    r.counter(
        "store_no_memory",
        "Stores refused for want of memory.",
        shard.out_of_memory + conns.store_no_memory,
    )
    .prom("memcached_item_no_memory_total");
    r.counter("auth_cmds", "Authentication attempts.", conns.auth_cmds)
        .prom("segcore_auth_attempts_total");
    r.counter(
        "auth_errors",
        "Failed authentication attempts.",
        conns.auth_errors,
    )
    .prom("segcore_auth_failures_total");
    if settings.tls.is_some() {
        r.counter(
            "ssl_handshake_errors",
            "TLS handshakes that failed or timed out.",
            conns.ssl_handshake_errors,
        )
        .prom("segcore_tls_handshake_errors_total");
        r.counter(
            "ssl_new_sessions",
            "TLS handshakes completed.",
            conns.ssl_new_sessions,
        )
        .prom("segcore_tls_sessions_total");
    }
    r.counter("bytes_read", "Bytes read from clients.", conns.bytes_read)
        .prom("memcached_read_bytes_total");
    r.counter(
        "bytes_written",
        "Bytes written to clients.",
        conns.bytes_written,
    )
    .prom("memcached_written_bytes_total");
    r.gauge(
        "limit_maxbytes",
        "Item memory limit (-m).",
        settings.memory_bytes as u64,
    )
    .prom("memcached_limit_bytes");
    r.gauge(
        "accepting_conns",
        "Whether the server accepts connections.",
        1,
    )
    .prom("memcached_accepting_connections");
    // segcore never stops accepting: a connection over the limit is
    // accepted and closed (rejected_connections).
    r.counter(
        "listen_disabled_num",
        "Times the listener was disabled at the connection limit.",
        0,
    )
    .prom("memcached_connections_listener_disabled_total");
    r.counter("time_in_listen_disabled_us", "", 0);
    r.gauge("threads", "", settings.cpus.len() as u64);
    r.counter(
        "idle_kicks",
        "Connections closed for idling past idle_timeout.",
        conns.idle_kicks,
    )
    .prom("segcore_idle_kicks_total");
    // memcached's read-buffer figures, for segcore's pooled connection
    // buffers (read and reply buffers alike).
    let b = &t.buffers;
    r.gauge("read_buf_count", "", (b.lent + b.idle) as u64);
    r.gauge(
        "read_buf_bytes",
        "Bytes of connection buffers, pooled and grown.",
        ((b.lent + b.idle) * BUFFER_SIZE + b.large_bytes) as u64,
    )
    .prom("segcore_connection_buffer_bytes");
    r.gauge("read_buf_bytes_free", "", (b.idle * BUFFER_SIZE) as u64);
    r.counter(
        "read_buf_oom",
        "Requests refused for want of read-buffer room.",
        conns.read_buf_oom,
    )
    .prom("segcore_read_buffer_oom_total");
    r.counter(
        "large_request_reclaims",
        "Stalled connections closed to give their large-request memory to another.",
        conns.large_request_reclaims,
    )
    .prom("segcore_large_request_reclaims_total");
    r.gauge("hash_bytes", "", t.index_bytes as u64);
    r.gauge("bytes", "Bytes of live items.", shard.bytes)
        .prom("memcached_current_bytes");
    r.gauge("curr_items", "Items stored now.", shard.curr_items)
        .prom("memcached_current_items");
    r.counter(
        "total_items",
        "Items stored since start.",
        shard.total_items,
    )
    .prom("memcached_items_total");
    r.counter(
        "evictions",
        "Live items removed to make room.",
        shard.evictions,
    )
    .prom("memcached_items_evicted_total");
    r.counter("reclaimed", "Expired items reclaimed.", shard.reclaimed)
        .prom("memcached_items_reclaimed_total");
    r.counter("evicted_segments", "", shard.evicted_segments);
    // Warm restart (-e): items every core took back at start, and whether
    // every core did (a warm start) or began empty.
    r.gauge(
        "restart_restored_items",
        "Items taken back at a warm restart.",
        t.restored,
    )
    .prom("segcore_restart_restored_items");
    r.gauge(
        "restart_warm_start",
        "1 when every core started from its memory file.",
        u64::from(t.warm_start),
    )
    .prom("segcore_restart_warm_start");
    r.counter("expired_segments", "", shard.expired_segments);
    r.add(
        None,
        Kind::Gauge,
        "Bytes of segments in use.",
        Value::Int(t.segment_bytes_used as u64),
    )
    .prom("memcached_malloced_bytes");
    r
}

/// One core's connection and routing rows (`stats cores`).
pub fn core(c: &CoreReport) -> Rows {
    let mut r = Rows::default();
    let core = c.core.to_string();
    let conns = &c.conns;
    let rows: [(&'static str, &'static str, Kind, &'static str, u64); 11] = [
        (
            "curr_connections",
            "segcore_core_connections",
            Kind::Gauge,
            "Open client connections of the core.",
            conns.curr_connections,
        ),
        (
            "total_connections",
            "segcore_core_connections_total",
            Kind::Counter,
            "Connections the core accepted.",
            conns.total_connections,
        ),
        (
            "requests",
            "segcore_requests_total",
            Kind::Counter,
            "Requests the core parsed.",
            conns.requests,
        ),
        (
            "forwarded_out",
            "segcore_forwarded_out_total",
            Kind::Counter,
            "Key ops the core sent to their owners.",
            conns.forwarded_out,
        ),
        (
            "forwarded_in",
            "segcore_forwarded_in_total",
            Kind::Counter,
            "Key ops the core ran for other cores.",
            conns.forwarded_in,
        ),
        (
            "curr_items",
            "segcore_items",
            Kind::Gauge,
            "Items in the core's shard.",
            c.shard.curr_items,
        ),
        (
            "conn_slots",
            "segcore_connection_slots",
            Kind::Gauge,
            "Connection slots the core allocated.",
            c.conn_slots as u64,
        ),
        (
            "stop_waiters",
            "segcore_stop_waiters",
            Kind::Gauge,
            "Tasks waiting on the core's stop signal.",
            c.stop_waiters as u64,
        ),
        (
            "buffers_lent",
            "segcore_buffers_lent",
            Kind::Gauge,
            "I/O buffers lent to connections.",
            c.buffers.lent as u64,
        ),
        (
            "buffers_idle",
            "segcore_buffers_idle",
            Kind::Gauge,
            "I/O buffers idle in the pool.",
            c.buffers.idle as u64,
        ),
        (
            "large_request_bytes",
            "segcore_large_request_bytes",
            Kind::Gauge,
            "Bytes of read buffers grown for large requests.",
            c.buffers.large_bytes as u64,
        ),
    ];
    r.add_labelled(
        "core",
        &core,
        rows.map(|(stat, prom, kind, help, v)| (Some(stat), prom, kind, help, v)),
    );
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
    let core = c.core.to_string();
    let (total, free, size) = c.segments;
    let s = &c.shard;
    let (pieces, largest_piece) = c.index_pieces;
    let (sketch_bytes, sketch_halvings) = c.sketch.unwrap_or((0, 0));
    let rows: [(Option<&'static str>, &'static str, Kind, &'static str, u64); 19] = [
        (
            Some("segment_size"),
            "segcore_segment_size_bytes",
            Kind::Gauge,
            "Bytes per segment.",
            size as u64,
        ),
        (
            Some("segments_total"),
            "segcore_segments",
            Kind::Gauge,
            "Segments of the core's shard.",
            total as u64,
        ),
        (
            Some("segments_free"),
            "segcore_segments_free",
            Kind::Gauge,
            "Segments holding nothing.",
            free as u64,
        ),
        (
            Some("segments_used"),
            "segcore_segments_used",
            Kind::Gauge,
            "Segments holding items.",
            (total - free) as u64,
        ),
        (
            Some("index_bytes"),
            "segcore_index_bytes",
            Kind::Gauge,
            "Bytes of the core's index.",
            c.index_bytes as u64,
        ),
        (
            Some("index_pieces"),
            "segcore_index_pieces",
            Kind::Gauge,
            "Tables the core's index is split into (each grows on its own).",
            pieces as u64,
        ),
        (
            Some("index_largest_piece"),
            "segcore_index_largest_piece_entries",
            Kind::Gauge,
            "Entries in the index's largest table: what one growth step moves, at most.",
            largest_piece as u64,
        ),
        (
            Some("dead_bytes"),
            "segcore_dead_bytes",
            Kind::Gauge,
            "Bytes of dead items in segments in use.",
            c.dead_bytes,
        ),
        // What the policy does: segments evicted; for the merge policies,
        // merges done, items they kept and dropped, the frequency the last
        // s3fifo main merge required, the access sketch's size and halvings;
        // and flush_all runs on this shard.
        (
            Some("evicted_segments"),
            "segcore_segments_evicted_total",
            Kind::Counter,
            "Segments evicted (whole, or merged away).",
            s.evicted_segments,
        ),
        (
            Some("merges"),
            "segcore_merges_total",
            Kind::Counter,
            "Merge passes of the merge and s3fifo policies.",
            s.merges,
        ),
        (
            Some("merge_retained"),
            "segcore_merge_retained_total",
            Kind::Counter,
            "Items kept alive by merges.",
            s.merge_retained,
        ),
        (
            Some("merge_evicted"),
            "segcore_merge_evicted_total",
            Kind::Counter,
            "Live items merges dropped.",
            s.merge_evicted,
        ),
        (
            Some("promoted"),
            "segcore_s3fifo_promoted_total",
            Kind::Counter,
            "Items s3fifo promoted from its small FIFO into main (read on probation).",
            s.promoted,
        ),
        (
            Some("probation_evicted"),
            "segcore_s3fifo_probation_evicted_total",
            Kind::Counter,
            "Items s3fifo dropped from its small FIFO unread (one-off keys, scans).",
            s.probation_evicted,
        ),
        (
            Some("merge_threshold"),
            "segcore_merge_threshold",
            Kind::Gauge,
            "Estimated access count the last s3fifo main merge required to keep an item.",
            s.merge_threshold,
        ),
        (
            Some("sketch_bytes"),
            "segcore_sketch_bytes",
            Kind::Gauge,
            "Bytes of the s3fifo access sketch.",
            sketch_bytes as u64,
        ),
        (
            Some("sketch_halvings"),
            "segcore_sketch_halvings_total",
            Kind::Counter,
            "Times the access sketch halved its counts (ageing).",
            sketch_halvings,
        ),
        (
            Some("flushes"),
            "segcore_flushes_total",
            Kind::Counter,
            "flush_all runs on the core's shard.",
            s.cmd_flush,
        ),
        (
            None,
            "segcore_items_evicted_total",
            Kind::Counter,
            "Live items the core's shard evicted.",
            s.evictions,
        ),
    ];
    r.add_labelled("core", &core, rows);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::metrics::report::{ConnCounters, CoreReport};
    use crate::storage::{HashedKey, Policy, Shard, ShardConfig, StoreMode, StoreRequest};

    /// A core's report of its shard and connection counters.
    fn report(shard: &Shard, conns: ConnCounters) -> CoreReport {
        CoreReport {
            shard: *shard.stats(),
            conns,
            segments: shard.segment_counts(),
            buckets: shard.bucket_occupancy(),
            index_bytes: shard.index_bytes(),
            index_pieces: {
                let (_, largest, pieces) = shard.index_shape();
                (pieces, largest)
            },
            sketch: shard.sketch_usage(),
            dead_bytes: shard.dead_bytes(),
            ..CoreReport::default()
        }
    }

    /// `stats reset` zeroes every row marked a counter and keeps every
    /// gauge: the kind a row says is the kind it behaves as. Connection
    /// counters all start non-zero (a struct literal, so a new counter
    /// must be given a value here); the shard's come from real traffic
    /// under s3fifo (whose main FIFO sets the merge threshold gauge).
    #[test]
    fn a_reset_zeroes_every_counter_row_and_keeps_every_gauge() {
        let mut shard = Shard::new(&ShardConfig {
            memory_bytes: 256 << 10,
            segment_size: 8 << 10,
            eviction: Policy::S3Fifo,
            index_pieces: Some(2),
            restart: None,
        })
        .expect("config");
        shard.set_time(1_700_000_000);
        // Cache-aside: each key asked for, stored on a miss; one in four
        // asked for again (so s3fifo's main FIFO fills and merges by
        // frequency).
        for i in 0..40_000 {
            let key = format!("k:{i}");
            for _ in 0..1 + usize::from(i % 4 == 0) {
                let hashed = HashedKey::new(key.as_bytes());
                if shard.get(hashed).is_none() {
                    shard.store(hashed, &StoreRequest::new(StoreMode::Set, b"value", 0, 0));
                }
            }
        }
        assert!(shard.stats().merges > 0 && shard.stats().merge_threshold > 0);
        let conns = ConnCounters {
            curr_connections: 7,
            total_connections: 7,
            rejected_connections: 7,
            requests: 7,
            forwarded_out: 7,
            forwarded_in: 7,
            bytes_read: 7,
            bytes_written: 7,
            cmd_flush: 7,
            store_too_large: 7,
            store_no_memory: 7,
            idle_kicks: 7,
            read_buf_oom: 7,
            large_request_reclaims: 7,
            auth_cmds: 7,
            auth_errors: 7,
            ssl_handshake_errors: 7,
            ssl_new_sessions: 7,
        };
        let before = report(&shard, conns);
        shard.reset_stats();
        let mut after_conns = conns;
        after_conns.reset();
        let after = report(&shard, after_conns);
        let mut rows_before = core(&before).0;
        rows_before.extend(segments(&before).0);
        let mut rows_after = core(&after).0;
        rows_after.extend(segments(&after).0);
        assert_eq!(rows_before.len(), rows_after.len());
        for (b, a) in rows_before.iter().zip(&rows_after) {
            let name = b.stat.or(b.prom).unwrap_or("?");
            match b.kind {
                Kind::Counter => assert_eq!(a.value, Value::Int(0), "counter {name}"),
                Kind::Gauge => assert_eq!(a.value, b.value, "gauge {name}"),
            }
        }
    }
}
