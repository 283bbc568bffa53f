//! `stats` and its sub-forms, with memcached's field names so existing
//! dashboards keep working. Each core reports its own counters (a message
//! per core, no shared atomics); they are summed here. Not on the hot path,
//! so plain `String`s are fine.

use crate::runtime::batch::route::Route;
use crate::runtime::metrics::latency::{self, Latency};
use crate::runtime::metrics::report::{CoreReport, Totals};
use crate::runtime::metrics::rows::stat_lines;
use crate::runtime::metrics::{classes, table};
use crate::runtime::op::{CoreCommand, Op, ReportLists};
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
        b"settings" => lines.extend(crate::runtime::metrics::settings::lines(settings, reports)),
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
