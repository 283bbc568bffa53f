//! `stats` and its sub-forms, with memcached's field names so existing
//! dashboards keep working. Each core reports its own counters (a message
//! per core, no shared atomics); they are summed here. Not on the hot path,
//! so plain `String`s are fine.

use crate::runtime::batch::route::Route;
use crate::runtime::conn::buffers::{BUFFER_SIZE, HEADER_ROOM, MAX_IDLE_BUFFERS};
use crate::runtime::conn::tls::MinVersion;
use crate::runtime::metrics::latency::{self, Latency};
use crate::runtime::metrics::report::{CoreReport, Totals};
use crate::runtime::metrics::rows::stat_lines;
use crate::runtime::metrics::{classes, table};
use crate::runtime::op::{CoreCommand, Op, ReportLists};
use crate::runtime::server::auth::AuthMode;
use crate::runtime::server::numa;
use crate::runtime::server::settings::Settings;

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
            | b"conns" | b"latency" | b"hotkeys"),
        ) => StatsQuery::Group(group),
        Some(_) => StatsQuery::Unknown,
    }
}

/// Calls `f(core, op)` for the op every core must run for `query`.
pub fn for_each_core_op(query: StatsQuery<'_>, route: Route, f: &mut dyn FnMut(usize, &Op<&[u8]>)) {
    let cmd = match query {
        StatsQuery::Reset => CoreCommand::ResetStats,
        StatsQuery::Detail(on) => CoreCommand::Detail { on },
        StatsQuery::Group(group) => CoreCommand::Stats {
            also: ReportLists {
                prefixes: false,
                conns: group == b"conns",
                latency: group == b"latency",
                hot_keys: group == b"hotkeys",
                classes: group == b"items" || group == b"slabs",
            },
        },
        StatsQuery::DetailDump => CoreCommand::Stats {
            also: ReportLists {
                prefixes: true,
                ..ReportLists::default()
            },
        },
        StatsQuery::DetailUsage | StatsQuery::Unknown => return,
    };
    route.each_core(&Op::Core(cmd), f);
}

/// `stats detail dump` of the cores' reports.
pub fn write_detail_dump(out: &mut Vec<u8>, reports: &[CoreReport]) {
    crate::runtime::metrics::prefix_stats::write_dump(
        out,
        reports.iter().map(|r| r.prefixes.as_slice()),
    );
}

/// The lines of a `stats` request (`args`: its arguments, the group
/// first), or `None` for an unknown group.
pub fn render(
    args: &[u8],
    reports: &[CoreReport],
    settings: &Settings,
) -> Option<Vec<(String, String)>> {
    let mut words = args.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let group = words.next().unwrap_or_default();
    let mut lines: Vec<(String, String)> = Vec::new();
    match group {
        b"" => {
            let totals = Totals::of(reports);
            let rows = table::general(&totals, settings, crate::storage::time::unix_now());
            stat_lines(&mut lines, "", &rows);
        }
        b"settings" => {
            let mut put = |name: &str, value: String| lines.push((name.to_string(), value));
            put("maxbytes", settings.memory_bytes.to_string());
            put("maxconns", settings.conn_limit.to_string());
            put("tcpport", settings.listen.port().to_string());
            put("udpport", "0".into());
            put("inter", settings.listen.ip().to_string());
            put(
                "verbosity",
                crate::runtime::server::verbosity::verbosity().to_string(),
            );
            put("evictions", "on".into());
            put("domain_socket", "NULL".into());
            put("num_threads", settings.cpus.len().to_string());
            put(
                "stat_key_prefix",
                char::from(settings.prefix_delimiter).to_string(),
            );
            put(
                "detail_enabled",
                if reports.iter().any(|r| r.detail_enabled) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            );
            put("cas_enabled", "yes".into());
            put("item_size_max", settings.max_item_size.to_string());
            put("binding_protocol", "auto-negotiate".into());
            let mode = settings.auth.as_ref().map(|a| a.mode);
            let yes_no = |on: bool| if on { "yes" } else { "no" }.to_string();
            put("auth_enabled_sasl", yes_no(mode == Some(AuthMode::Sasl)));
            put("auth_enabled_ascii", yes_no(mode == Some(AuthMode::Ascii)));
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
            // memcached's TLS settings (-Z, -o ssl_*).
            put("ssl_enabled", yes_no(settings.tls.is_some()));
            if let Some(tls) = &settings.tls {
                let o = tls.options();
                put("ssl_chain_cert", o.chain_cert.display().to_string());
                put("ssl_key", o.key.display().to_string());
                put("ssl_verify_mode", (o.verify_mode as u8).to_string());
                put(
                    "ssl_ca_cert",
                    o.ca_cert
                        .as_ref()
                        .map_or("NULL".into(), |p| p.display().to_string()),
                );
                put(
                    "ssl_min_version",
                    match o.min_version {
                        MinVersion::Tls12 => "tlsv1.2",
                        MinVersion::Tls13 => "tlsv1.3",
                    }
                    .into(),
                );
            }
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
            put(
                "large_request_timeout",
                settings.large_request_timeout.to_string(),
            );
            // The most reply bytes one connection holds, whatever it asks
            // for (replies stream out as the client reads them).
            put(
                "reply_buf_limit",
                crate::runtime::batch::bounds::reply_memory_bound(
                    settings.cpus.len(),
                    settings.max_item_size + HEADER_ROOM,
                )
                .to_string(),
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
            // Each core's CPU, that CPU's NUMA node, and the node holding
            // its shard's memory (-1 where the kernel does not say).
            for r in reports {
                let (c, p) = (r.core, r.placement);
                put(&format!("core:{c}:cpu"), numa::shown(p.cpu));
                put(&format!("core:{c}:numa_node"), numa::shown(p.cpu_node));
                put(&format!("core:{c}:memory_node"), numa::shown(p.memory_node));
            }
        }
        // memcached's size classes as a view of segcore's items (see
        // `metrics::classes`); total_malloced is the segments in use.
        b"slabs" => {
            let totals = Totals::of(reports);
            lines.extend(classes::slabs_lines(reports, totals.segment_bytes_used));
        }
        b"items" => lines.extend(classes::items_lines(reports)),
        // `stats hotkeys [N]`: the N (default 10) most requested keys.
        b"hotkeys" => {
            let n = words
                .next()
                .and_then(|w| std::str::from_utf8(w).ok()?.parse().ok())
                .unwrap_or(10);
            let per_core: Vec<_> = reports.iter().map(|r| (r.core, &r.hot_keys[..])).collect();
            lines.extend(crate::runtime::metrics::hotkeys::stat_lines(&per_core, n));
        }
        // Per command class, merged over the cores (see `latency`).
        b"latency" => {
            let mut merged = Latency::default();
            for latency in reports.iter().filter_map(|r| r.latency.as_deref()) {
                merged.merge(latency);
            }
            lines.extend(latency::stat_lines(&merged));
        }
        b"conns" => {
            let listeners: Vec<_> = reports.iter().filter_map(|r| r.listening).collect();
            let clients: Vec<_> = reports
                .iter()
                .flat_map(|r| r.clients.iter().copied())
                .collect();
            lines.extend(crate::runtime::conn::table::lines(
                &listeners,
                &clients,
                crate::storage::time::unix_now(),
            ));
        }
        // memcached's answer while item-size tracking is off, as it always
        // is here.
        b"sizes" => lines.push(("sizes_status".into(), "disabled".into())),
        b"cores" => {
            for r in reports {
                stat_lines(&mut lines, &format!("core:{}:", r.core), &table::core(r));
            }
        }
        b"segments" => {
            for r in reports {
                let prefix = format!("core:{}:", r.core);
                stat_lines(&mut lines, &prefix, &table::segments(r));
                for (bucket, segments) in &r.buckets {
                    lines.push((format!("{prefix}ttl_bucket:{bucket}"), segments.to_string()));
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
            for_each_core_op(
                q,
                Route {
                    cores: 2,
                    local: None,
                },
                &mut |core, op| seen.push((core, op.map(|_| ()))),
            );
            seen
        };
        assert_eq!(
            ops(StatsQuery::Reset),
            [
                (0, Op::Core(CoreCommand::ResetStats)),
                (1, Op::Core(CoreCommand::ResetStats))
            ]
        );
        assert_eq!(
            ops(StatsQuery::Detail(true)),
            [
                (0, Op::Core(CoreCommand::Detail { on: true })),
                (1, Op::Core(CoreCommand::Detail { on: true }))
            ]
        );
        let dump = Op::Core(CoreCommand::Stats {
            also: ReportLists {
                prefixes: true,
                ..ReportLists::default()
            },
        });
        assert_eq!(ops(StatsQuery::DetailDump), [(0, dump), (1, dump)]);
        let conns = Op::Core(CoreCommand::Stats {
            also: ReportLists {
                conns: true,
                ..ReportLists::default()
            },
        });
        assert_eq!(ops(StatsQuery::Group(b"conns")), [(0, conns), (1, conns)]);
        let plain = Op::Core(CoreCommand::Stats {
            also: ReportLists::default(),
        });
        assert_eq!(ops(StatsQuery::Group(b"")), [(0, plain), (1, plain)]);
        assert!(ops(StatsQuery::DetailUsage).is_empty());
        assert!(ops(StatsQuery::Unknown).is_empty());
    }
}
