//! The Prometheus text exposition format (version 0.0.4) of metric rows:
//! one `# HELP` and `# TYPE` per metric family, then its samples, families
//! in the order they first appear.

use std::collections::HashMap;
use std::fmt::Write;

use crate::runtime::metrics::rows::{Kind, Metric, Value};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes every row that has a Prometheus name; rows sharing a name form
/// one family (their labels must tell them apart).
pub fn write(out: &mut String, rows: &[Metric]) {
    let mut order: HashMap<&str, usize> = HashMap::new();
    let mut families: Vec<Vec<&Metric>> = Vec::new();
    for row in rows {
        let Some(name) = row.prom else { continue };
        if matches!(row.value, Value::Text(_)) {
            continue; // text is only ever a label here
        }
        let at = *order.entry(name).or_insert_with(|| {
            families.push(Vec::new());
            families.len() - 1
        });
        families[at].push(row);
    }
    for family in families {
        let first = family[0];
        let name = first.prom.unwrap_or_default();
        let kind = match first.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(first.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for row in family {
            out.push_str(name);
            write_labels(out, &row.labels);
            out.push(' ');
            match &row.value {
                Value::Int(v) => {
                    let _ = write!(out, "{v}");
                }
                Value::Seconds(s, us) => {
                    let _ = write!(out, "{s}.{us:06}");
                }
                Value::Text(_) => {}
            }
            out.push('\n');
        }
    }
}

/// Writes `{name="value",...}` (nothing for no labels).
pub fn write_labels(out: &mut String, labels: &[(&str, String)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::metrics::rows::Rows;

    #[test]
    fn rows_sharing_a_name_form_one_family_in_first_seen_order() {
        let mut rows = Rows::default();
        rows.add(Some("get_hits"), Kind::Counter, "Requests.", Value::Int(3))
            .prom("memcached_commands_total")
            .label("command", "get")
            .label("status", "hit");
        rows.gauge("curr_items", "Items.", 7)
            .prom("memcached_current_items");
        rows.gauge("pid", "Process id.", 1); // stats-only
        rows.add(
            Some("get_misses"),
            Kind::Counter,
            "Requests.",
            Value::Int(4),
        )
        .prom("memcached_commands_total")
        .label("command", "get")
        .label("status", "miss");
        rows.add(None, Kind::Gauge, "Version.", Value::Int(1))
            .prom("memcached_version")
            .label("version", "1.6 \"x\"\\");
        let mut out = String::new();
        write(&mut out, &rows.0);
        assert_eq!(
            out,
            "# HELP memcached_commands_total Requests.\n\
             # TYPE memcached_commands_total counter\n\
             memcached_commands_total{command=\"get\",status=\"hit\"} 3\n\
             memcached_commands_total{command=\"get\",status=\"miss\"} 4\n\
             # HELP memcached_current_items Items.\n\
             # TYPE memcached_current_items gauge\n\
             memcached_current_items 7\n\
             # HELP memcached_version Version.\n\
             # TYPE memcached_version gauge\n\
             memcached_version{version=\"1.6 \\\"x\\\"\\\\\"} 1\n"
        );
    }

    #[test]
    fn cpu_time_is_written_in_seconds() {
        let mut rows = Rows::default();
        rows.add(None, Kind::Counter, "CPU.", Value::Seconds(2, 5))
            .prom("x_seconds_total");
        let mut out = String::new();
        write(&mut out, &rows.0);
        assert!(out.ends_with("x_seconds_total 2.000005\n"), "{out}");
    }
}
