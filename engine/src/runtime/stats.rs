//! `stats` and its sub-forms, with memcached's field names so existing
//! dashboards keep working. Each core reports its own counters (a message
//! per core, no shared atomics); they are summed here. Not on the hot path,
//! so plain `String`s are fine.

use super::op::{ConnCounters, CoreReport};
use super::Core;
use crate::storage::ShardStats;

/// `stats` groups segcore answers.
pub fn is_known_group(args: &[u8]) -> bool {
    matches!(args, b"" | b"settings" | b"cores" | b"segments")
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
pub fn render(args: &[u8], reports: &[CoreReport], core: &Core) -> Option<Vec<(String, String)>> {
    let settings = &core.settings;
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut put = |name: &str, value: String| lines.push((name.to_string(), value));
    match args {
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
            }
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
            put("connection_structures", conns.curr_connections.to_string());
            put("cmd_get", shard.cmd_get.to_string());
            put("cmd_set", shard.cmd_set.to_string());
            put("cmd_flush", shard.cmd_flush.to_string());
            put("cmd_touch", shard.cmd_touch.to_string());
            put("get_hits", shard.get_hits.to_string());
            put("get_misses", shard.get_misses.to_string());
            put("get_expired", shard.get_expired.to_string());
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
            put("auth_cmds", "0".into());
            put("auth_errors", "0".into());
            put("bytes_read", conns.bytes_read.to_string());
            put("bytes_written", conns.bytes_written.to_string());
            put("limit_maxbytes", settings.memory_bytes.to_string());
            put("accepting_conns", "1".into());
            put("threads", settings.cpus.len().to_string());
            put("bytes", shard.bytes.to_string());
            put("curr_items", shard.curr_items.to_string());
            put("total_items", shard.total_items.to_string());
            put("evictions", shard.evictions.to_string());
            put("reclaimed", shard.reclaimed.to_string());
            put("evicted_segments", shard.evicted_segments.to_string());
            put("expired_segments", shard.expired_segments.to_string());
        }
        b"settings" => {
            put("maxbytes", settings.memory_bytes.to_string());
            put("maxconns", settings.conn_limit.to_string());
            put("tcpport", settings.listen.port().to_string());
            put("interface", settings.listen.ip().to_string());
            put("verbosity", settings.verbosity.to_string());
            put("evictions", "on".into());
            put("num_threads", settings.cpus.len().to_string());
            put("cas_enabled", "yes".into());
            put("item_size_max", settings.max_item_size.to_string());
            put("binding_protocol", "auto-negotiate".into());
            put(
                "shutdown_command",
                if settings.enable_shutdown {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            );
            put("segment_size", settings.segment_size.to_string());
            put("eviction_policy", settings.eviction.name().into());
            put("cpus", format!("{:?}", settings.cpus));
        }
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
