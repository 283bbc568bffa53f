//! `stats` and its sub-forms, with memcached's field names so existing
//! dashboards keep working. Each core reports its own counters (a message
//! per core, no shared atomics); they are summed here. Not on the hot path,
//! so plain `String`s are fine.

use super::buffers::{BUFFER_SIZE, MAX_IDLE_BUFFERS};
use super::op::{ConnCounters, CoreReport, Op, ReportLists};
use super::Core;
use crate::storage::ShardStats;

/// What a `stats` request (the text command's arguments, or the binary
/// Stat key) asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsQuery<'a> {
    /// A group rendered from every core's report (`""`, `settings`, ...).
    Group(&'a [u8]),
    /// `stats reset`.
    Reset,
    /// `stats detail on` (`true`) or `off`.
    Detail(bool),
    /// `stats detail dump`.
    DetailDump,
    /// `stats detail` without one of its subcommands.
    DetailUsage,
    /// A group segcore does not have.
    Unknown,
}

/// Classifies `stats` arguments: the first word picks the group; extra
/// words after it are ignored, as memcached ignores them.
pub fn query(args: &[u8]) -> StatsQuery<'_> {
    let mut words = args.split(|&b| b == b' ').filter(|w| !w.is_empty());
    match words.next() {
        None => StatsQuery::Group(b""),
        Some(b"reset") => StatsQuery::Reset,
        Some(b"detail") => match words.next() {
            Some(b"on") => StatsQuery::Detail(true),
            Some(b"off") => StatsQuery::Detail(false),
            Some(b"dump") => StatsQuery::DetailDump,
            _ => StatsQuery::DetailUsage,
        },
        Some(
            group @ (b"settings" | b"cores" | b"segments" | b"slabs" | b"items" | b"sizes"
            | b"conns"),
        ) => StatsQuery::Group(group),
        Some(_) => StatsQuery::Unknown,
    }
}

/// Calls `f(core, op)` for the op every core must run for `query`.
pub fn for_each_core_op(query: StatsQuery<'_>, cores: usize, f: &mut dyn FnMut(usize, &Op<&[u8]>)) {
    let op = match query {
        StatsQuery::Reset => Op::ResetStats,
        StatsQuery::Detail(on) => Op::Detail { on },
        StatsQuery::Group(group) => Op::Stats {
            also: ReportLists {
                prefixes: false,
                conns: group == b"conns",
            },
        },
        StatsQuery::DetailDump => Op::Stats {
            also: ReportLists {
                prefixes: true,
                conns: false,
            },
        },
        StatsQuery::DetailUsage | StatsQuery::Unknown => return,
    };
    for core in 0..cores {
        f(core, &op);
    }
}

/// `stats detail dump` of the cores' reports.
pub fn write_detail_dump(out: &mut Vec<u8>, reports: &[CoreReport]) {
    super::prefix_stats::write_dump(out, reports.iter().map(|r| r.prefixes.as_slice()));
}

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

fn seconds((secs, micros): (u64, u32)) -> String {
    format!("{secs}.{micros:06}")
}

/// The lines of a `stats` group, or `None` for an unknown group.
pub fn render(group: &[u8], reports: &[CoreReport], core: &Core) -> Option<Vec<(String, String)>> {
    let settings = &core.settings;
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut put = |name: &str, value: String| lines.push((name.to_string(), value));
    match group {
        b"" => {
            let mut shard = ShardStats::default();
            let mut conns = ConnCounters::default();
            for r in reports {
                shard.add(&r.shard);
                conns.curr_connections += r.conns.curr_connections;
                conns.total_connections += r.conns.total_connections;
                conns.rejected_connections += r.conns.rejected_connections;
                conns.bytes_read += r.conns.bytes_read;
                conns.bytes_written += r.conns.bytes_written;
                conns.cmd_flush += r.conns.cmd_flush;
                conns.store_too_large += r.conns.store_too_large;
                conns.store_no_memory += r.conns.store_no_memory;
                conns.idle_kicks += r.conns.idle_kicks;
                conns.read_buf_oom += r.conns.read_buf_oom;
            }
            let conn_slots: usize = reports.iter().map(|r| r.conn_slots).sum();
            let buffers = reports.iter().fold((0, 0, 0), |(lent, idle, large), r| {
                (
                    lent + r.buffers.lent,
                    idle + r.buffers.idle,
                    large + r.buffers.large_bytes,
                )
            });
            let index_bytes: usize = reports.iter().map(|r| r.index_bytes).sum();
            let now = super::unix_now();
            let (user, system) = rusage();
            put("pid", std::process::id().to_string());
            put(
                "uptime",
                now.saturating_sub(settings.started_at).to_string(),
            );
            put("time", now.to_string());
            put("version", settings.version.clone());
            put("pointer_size", (usize::BITS).to_string());
            put("rusage_user", seconds(user));
            put("rusage_system", seconds(system));
            put("max_connections", settings.conn_limit.to_string());
            put("curr_connections", conns.curr_connections.to_string());
            put("total_connections", conns.total_connections.to_string());
            put(
                "rejected_connections",
                conns.rejected_connections.to_string(),
            );
            // Each core's connection table keeps a slot per connection it
            // has had open at once, as memcached keeps its conn structs.
            put("connection_structures", conn_slots.to_string());
            put("cmd_get", shard.cmd_get.to_string());
            put("cmd_set", shard.cmd_set.to_string());
            put("cmd_flush", conns.cmd_flush.to_string());
            put("cmd_touch", shard.cmd_touch.to_string());
            put("get_hits", shard.get_hits.to_string());
            put("get_misses", shard.get_misses.to_string());
            put("get_expired", shard.get_expired.to_string());
            // flush_all empties the index at once, so no later get can
            // find a flushed item (memcached invalidates lazily).
            put("get_flushed", "0".into());
            put("delete_misses", shard.delete_misses.to_string());
            put("delete_hits", shard.delete_hits.to_string());
            put("incr_misses", shard.incr_misses.to_string());
            put("incr_hits", shard.incr_hits.to_string());
            put("decr_misses", shard.decr_misses.to_string());
            put("decr_hits", shard.decr_hits.to_string());
            put("cas_misses", shard.cas_misses.to_string());
            put("cas_hits", shard.cas_hits.to_string());
            put("cas_badval", shard.cas_badval.to_string());
            put("touch_hits", shard.touch_hits.to_string());
            put("touch_misses", shard.touch_misses.to_string());
            put("store_too_large", conns.store_too_large.to_string());
            put(
                "store_no_memory",
                (shard.out_of_memory + conns.store_no_memory).to_string(),
            );
            put("auth_cmds", "0".into());
            put("auth_errors", "0".into());
            put("bytes_read", conns.bytes_read.to_string());
            put("bytes_written", conns.bytes_written.to_string());
            put("limit_maxbytes", settings.memory_bytes.to_string());
            put("accepting_conns", "1".into());
            // segcore never stops accepting: a connection over the limit is
            // accepted and closed (rejected_connections).
            put("listen_disabled_num", "0".into());
            put("time_in_listen_disabled_us", "0".into());
            put("threads", settings.cpus.len().to_string());
            put("idle_kicks", conns.idle_kicks.to_string());
            // memcached's read-buffer figures, for segcore's pooled
            // connection buffers (read and reply buffers alike).
            let (lent, idle, large) = buffers;
            put("read_buf_count", (lent + idle).to_string());
            put(
                "read_buf_bytes",
                ((lent + idle) * BUFFER_SIZE + large).to_string(),
            );
            put("read_buf_bytes_free", (idle * BUFFER_SIZE).to_string());
            put("read_buf_oom", conns.read_buf_oom.to_string());
            put("hash_bytes", index_bytes.to_string());
            put("bytes", shard.bytes.to_string());
            put("curr_items", shard.curr_items.to_string());
            put("total_items", shard.total_items.to_string());
            put("evictions", shard.evictions.to_string());
            put("reclaimed", shard.reclaimed.to_string());
            put("evicted_segments", shard.evicted_segments.to_string());
            // Warm restart (-e): items every core took back at start, and
            // whether every core did (a warm start) or began empty.
            let restored: u64 = reports.iter().filter_map(|r| r.restored).sum();
            let warm = !reports.is_empty() && reports.iter().all(|r| r.restored.is_some());
            put("restart_restored_items", restored.to_string());
            put("restart_warm_start", u8::from(warm).to_string());
            put("expired_segments", shard.expired_segments.to_string());
        }
        b"settings" => {
            put("maxbytes", settings.memory_bytes.to_string());
            put("maxconns", settings.conn_limit.to_string());
            put("tcpport", settings.listen.port().to_string());
            put("udpport", "0".into());
            put("inter", settings.listen.ip().to_string());
            put("verbosity", settings.verbosity.to_string());
            put("evictions", "on".into());
            put("domain_socket", "NULL".into());
            put("num_threads", settings.cpus.len().to_string());
            put(
                "stat_key_prefix",
                char::from(settings.prefix_delimiter).to_string(),
            );
            put(
                "detail_enabled",
                if core.prefixes.borrow().enabled() {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            );
            put("cas_enabled", "yes".into());
            put("item_size_max", settings.max_item_size.to_string());
            put("binding_protocol", "auto-negotiate".into());
            put("auth_enabled_sasl", "no".into());
            put("auth_enabled_ascii", "no".into());
            put(
                "flush_enabled",
                if settings.flush_enabled { "yes" } else { "no" }.into(),
            );
            put(
                "shutdown_command",
                if settings.enable_shutdown {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            );
            put("idle_timeout", settings.idle_timeout.to_string());
            put(
                "memory_file",
                settings
                    .memory_file
                    .as_ref()
                    .map_or("NULL".into(), |p| p.display().to_string()),
            );
            // The bound on connection buffer memory beyond -m: pooled
            // buffers of conn_buffer_size (at most conn_buffer_pool_max idle
            // per core, one or two lent per active connection) plus, per
            // core, large_request_limit bytes for values being received.
            put(
                "read_buf_mem_limit",
                (settings.large_request_bytes * settings.cpus.len()).to_string(),
            );
            put("conn_buffer_size", BUFFER_SIZE.to_string());
            put("conn_buffer_pool_max", (2 * MAX_IDLE_BUFFERS).to_string());
            put(
                "large_request_limit",
                settings.large_request_bytes.to_string(),
            );
            // segcore's key routing: one port hashed over the cores, or a
            // port per core whose core owns whatever arrives there.
            put(
                "routing",
                if settings.port_per_core {
                    "port_per_core"
                } else {
                    "hash"
                }
                .into(),
            );
            put("segment_size", settings.segment_size.to_string());
            put("eviction_policy", settings.eviction.name().into());
            put("cpus", format!("{:?}", settings.cpus));
        }
        // No slab classes: the per-class sections are empty, and the totals
        // are the segments' (what memcached tools that poll these, such as
        // exporters and memcached-tool, need to keep working).
        b"slabs" => {
            let malloced: usize = reports
                .iter()
                .map(|r| {
                    let (total, free, size) = r.segments;
                    (total - free) * size
                })
                .sum();
            put("active_slabs", "0".into());
            put("total_malloced", malloced.to_string());
        }
        b"items" => {}
        b"conns" => {
            let listeners: Vec<_> = reports.iter().filter_map(|r| r.listening).collect();
            let clients: Vec<_> = reports
                .iter()
                .flat_map(|r| r.clients.iter().copied())
                .collect();
            lines.extend(super::conns::lines(&listeners, &clients, super::unix_now()));
        }
        // memcached's answer while item-size tracking is off, as it always
        // is here.
        b"sizes" => put("sizes_status", "disabled".into()),
        b"cores" => {
            for r in reports {
                let c = r.core;
                put(
                    &format!("core:{c}:curr_connections"),
                    r.conns.curr_connections.to_string(),
                );
                put(
                    &format!("core:{c}:total_connections"),
                    r.conns.total_connections.to_string(),
                );
                put(&format!("core:{c}:requests"), r.conns.requests.to_string());
                put(
                    &format!("core:{c}:forwarded_out"),
                    r.conns.forwarded_out.to_string(),
                );
                put(
                    &format!("core:{c}:forwarded_in"),
                    r.conns.forwarded_in.to_string(),
                );
                put(
                    &format!("core:{c}:curr_items"),
                    r.shard.curr_items.to_string(),
                );
                put(&format!("core:{c}:conn_slots"), r.conn_slots.to_string());
                put(
                    &format!("core:{c}:stop_waiters"),
                    r.stop_waiters.to_string(),
                );
                put(
                    &format!("core:{c}:buffers_lent"),
                    r.buffers.lent.to_string(),
                );
                put(
                    &format!("core:{c}:buffers_idle"),
                    r.buffers.idle.to_string(),
                );
                put(
                    &format!("core:{c}:large_request_bytes"),
                    r.buffers.large_bytes.to_string(),
                );
            }
        }
        b"segments" => {
            for r in reports {
                let c = r.core;
                let (total, free, size) = r.segments;
                put(&format!("core:{c}:segment_size"), size.to_string());
                put(&format!("core:{c}:segments_total"), total.to_string());
                put(&format!("core:{c}:segments_free"), free.to_string());
                put(
                    &format!("core:{c}:segments_used"),
                    (total - free).to_string(),
                );
                put(&format!("core:{c}:index_bytes"), r.index_bytes.to_string());
                put(&format!("core:{c}:dead_bytes"), r.dead_bytes.to_string());
                // The merge policy's work: merges done, items kept by them
                // (second chance); and flush_all runs on this shard.
                put(&format!("core:{c}:merges"), r.shard.merges.to_string());
                put(
                    &format!("core:{c}:merge_retained"),
                    r.shard.merge_retained.to_string(),
                );
                put(&format!("core:{c}:flushes"), r.shard.cmd_flush.to_string());
                for (bucket, segments) in &r.buckets {
                    put(
                        &format!("core:{c}:ttl_bucket:{bucket}"),
                        segments.to_string(),
                    );
                }
            }
        }
        _ => return None,
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_classified_by_their_first_words() {
        let cases: &[(&[u8], StatsQuery<'_>)] = &[
            (b"", StatsQuery::Group(b"")),
            (b"settings", StatsQuery::Group(b"settings")),
            (b"settings extra", StatsQuery::Group(b"settings")),
            (b"reset", StatsQuery::Reset),
            (b"detail on", StatsQuery::Detail(true)),
            (b"detail  off", StatsQuery::Detail(false)),
            (b"detail dump", StatsQuery::DetailDump),
            (b"detail", StatsQuery::DetailUsage),
            (b"detail onion", StatsQuery::DetailUsage),
            (b"nonsense", StatsQuery::Unknown),
        ];
        for (args, expected) in cases {
            assert_eq!(
                query(args),
                *expected,
                "{:?}",
                String::from_utf8_lossy(args)
            );
        }
    }

    #[test]
    fn each_query_broadcasts_its_op_to_every_core() {
        let ops = |q| {
            let mut seen: Vec<(usize, Op<()>)> = Vec::new();
            for_each_core_op(q, 2, &mut |core, op| seen.push((core, op.map(|_| ()))));
            seen
        };
        assert_eq!(
            ops(StatsQuery::Reset),
            [(0, Op::ResetStats), (1, Op::ResetStats)]
        );
        assert_eq!(
            ops(StatsQuery::Detail(true)),
            [(0, Op::Detail { on: true }), (1, Op::Detail { on: true })]
        );
        let dump = Op::Stats {
            also: ReportLists {
                prefixes: true,
                conns: false,
            },
        };
        assert_eq!(ops(StatsQuery::DetailDump), [(0, dump), (1, dump)]);
        let conns = Op::Stats {
            also: ReportLists {
                prefixes: false,
                conns: true,
            },
        };
        assert_eq!(ops(StatsQuery::Group(b"conns")), [(0, conns), (1, conns)]);
        let plain = Op::Stats {
            also: ReportLists::default(),
        };
        assert_eq!(ops(StatsQuery::Group(b"")), [(0, plain), (1, plain)]);
        assert!(ops(StatsQuery::DetailUsage).is_empty());
        assert!(ops(StatsQuery::Unknown).is_empty());
    }
}
