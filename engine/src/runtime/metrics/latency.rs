//! Server-side latency per command class: an HDR histogram per class per
//! core, merged on demand (`stats latency`, `/metrics`).
//!
//! What is timed: a batch (the requests of one read) from the moment its
//! first request is parsed to the moment its last reply is queued, and
//! every request of the batch is recorded with that time. Two clock reads
//! per batch instead of two per request: each request's recorded time is
//! at least its own (it includes the wait for forwarded ops, which is real
//! latency the client sees, and the requests before it in the batch, which
//! is real too: its reply leaves with theirs). A pipeline of 16 costs the
//! same two clock reads as a single request.

use hdrhistogram::Histogram;

/// What a request is, for latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// get, gets, gat, gats (and binary Get/GAT).
    Get,
    /// set, add, replace, append, prepend, cas.
    Set,
    /// delete.
    Delete,
    /// incr, decr.
    Arith,
    /// touch.
    Touch,
    /// mg.
    MetaGet,
    /// ms.
    MetaSet,
    /// md.
    MetaDelete,
    /// ma.
    MetaArith,
    /// Everything else (stats, version, flush_all, noop, ...).
    Other,
}

/// Number of classes.
pub const CLASSES: usize = 10;

impl Class {
    /// Every class, in index order.
    pub const ALL: [Class; CLASSES] = [
        Class::Get,
        Class::Set,
        Class::Delete,
        Class::Arith,
        Class::Touch,
        Class::MetaGet,
        Class::MetaSet,
        Class::MetaDelete,
        Class::MetaArith,
        Class::Other,
    ];

    /// The name in `stats latency` and the `command` label.
    pub fn name(self) -> &'static str {
        match self {
            Class::Get => "get",
            Class::Set => "set",
            Class::Delete => "delete",
            Class::Arith => "arith",
            Class::Touch => "touch",
            Class::MetaGet => "meta_get",
            Class::MetaSet => "meta_set",
            Class::MetaDelete => "meta_delete",
            Class::MetaArith => "meta_arith",
            Class::Other => "other",
        }
    }
}

/// Longest time recorded, in nanoseconds (longer ones count as this).
const HIGHEST_NS: u64 = 60_000_000_000;

/// One histogram per class, in nanoseconds, two significant digits
/// (values are exact to 1%): about 17 KiB per class, 170 KiB per core.
#[derive(Clone, Debug)]
pub struct Latency {
    histograms: Vec<Histogram<u64>>,
}

/// Requests of one batch, counted per class.
pub type ClassCounts = [u32; CLASSES];

impl Default for Latency {
    fn default() -> Self {
        Latency {
            histograms: (0..CLASSES)
                .map(|_| Histogram::new_with_bounds(1, HIGHEST_NS, 2).expect("valid bounds"))
                .collect(),
        }
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Self) -> bool {
        self.histograms == other.histograms
    }
}

impl Eq for Latency {}

impl Latency {
    /// Records `counts[c]` requests of class `c` that took `ns`.
    #[inline]
    pub fn record(&mut self, counts: &ClassCounts, ns: u64) {
        for (histogram, &n) in self.histograms.iter_mut().zip(counts) {
            if n > 0 {
                histogram.saturating_record_n(ns.max(1), u64::from(n));
            }
        }
    }

    /// Adds another core's histograms.
    pub fn merge(&mut self, other: &Latency) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            // Same bounds on every core, so the addition cannot fail.
            let _ = mine.add(theirs);
        }
    }

    /// Forgets everything (`stats reset`).
    pub fn reset(&mut self) {
        self.histograms.iter_mut().for_each(Histogram::reset);
    }

    /// The histogram of `class`.
    pub fn of(&self, class: Class) -> &Histogram<u64> {
        &self.histograms[class as usize]
    }
}

/// `stats latency` lines: per class with requests, the 50th, 90th, 99th
/// and 99.9th percentiles and the maximum in microseconds, and the count.
pub fn stat_lines(latency: &Latency) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for class in Class::ALL {
        let h = latency.of(class);
        let name = class.name();
        let us = |ns: u64| format!("{:.1}", ns as f64 / 1000.0);
        for (label, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            lines.push((format!("{name}_{label}_us"), us(h.value_at_quantile(q))));
        }
        lines.push((format!("{name}_max_us"), us(h.max())));
        lines.push((format!("{name}_count"), h.len().to_string()));
    }
    lines
}

/// Bucket bounds of the Prometheus histogram, in seconds.
pub const BUCKETS_S: [f64; 14] = [
    1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 1e-1, 1.0,
];

/// Writes `segcore_request_duration_seconds` as a Prometheus histogram
/// with a `command` label per class.
pub fn write_prometheus(out: &mut String, latency: &Latency) {
    use std::fmt::Write;
    const NAME: &str = "segcore_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {NAME} Time from a request being parsed to its reply being queued (per batch, see docs/observability.md)."
    );
    let _ = writeln!(out, "# TYPE {NAME} histogram");
    for class in Class::ALL {
        let h = latency.of(class);
        let command = class.name();
        for le in BUCKETS_S {
            let below = h.count_between(0, (le * 1e9) as u64);
            let _ = writeln!(
                out,
                "{NAME}_bucket{{command=\"{command}\",le=\"{le}\"}} {below}"
            );
        }
        let count = h.len();
        let _ = writeln!(
            out,
            "{NAME}_bucket{{command=\"{command}\",le=\"+Inf\"}} {count}"
        );
        let sum = h.mean() * count as f64 / 1e9;
        let _ = writeln!(out, "{NAME}_sum{{command=\"{command}\"}} {sum}");
        let _ = writeln!(out, "{NAME}_count{{command=\"{command}\"}} {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_recorded_for_each_of_its_requests_by_class() {
        let mut latency = Latency::default();
        let mut counts = ClassCounts::default();
        counts[Class::Get as usize] = 15;
        counts[Class::Set as usize] = 1;
        latency.record(&counts, 20_000);
        counts = ClassCounts::default();
        counts[Class::Get as usize] = 1;
        latency.record(&counts, 1_000_000);
        assert_eq!(latency.of(Class::Get).len(), 16);
        assert_eq!(latency.of(Class::Set).len(), 1);
        assert_eq!(latency.of(Class::Delete).len(), 0);
        let lines = stat_lines(&latency);
        let stat = |name: &str| {
            lines
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(stat("get_count"), "16");
        // Values are exact to 1% (HDR reports a bucket's upper end).
        let p50: f64 = stat("get_p50_us").parse().unwrap();
        assert!((19.8..=20.2).contains(&p50), "{p50}");
        // One in 16 took a millisecond (to 1%).
        let max: f64 = stat("get_max_us").parse().unwrap();
        assert!((990.0..=1010.0).contains(&max), "{max}");
        assert_eq!(stat("delete_count"), "0");
    }

    #[test]
    fn cores_merge_and_reset_clears() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        let mut counts = ClassCounts::default();
        counts[Class::MetaGet as usize] = 2;
        a.record(&counts, 5_000);
        b.record(&counts, 7_000);
        a.merge(&b);
        assert_eq!(a.of(Class::MetaGet).len(), 4);
        a.reset();
        assert_eq!(a.of(Class::MetaGet).len(), 0);
    }

    #[test]
    fn the_prometheus_histogram_is_cumulative() {
        let mut latency = Latency::default();
        let mut counts = ClassCounts::default();
        counts[Class::Get as usize] = 3;
        latency.record(&counts, 3_000); // 3 µs
        let mut out = String::new();
        write_prometheus(&mut out, &latency);
        assert!(
            out.contains(
                "segcore_request_duration_seconds_bucket{command=\"get\",le=\"0.000001\"} 0\n"
            ),
            "{out}"
        );
        assert!(out.contains(
            "segcore_request_duration_seconds_bucket{command=\"get\",le=\"0.000005\"} 3\n"
        ));
        assert!(out
            .contains("segcore_request_duration_seconds_bucket{command=\"get\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("segcore_request_duration_seconds_count{command=\"get\"} 3\n"));
    }
}
