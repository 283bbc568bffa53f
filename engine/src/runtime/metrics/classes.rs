//! `stats items` and `stats slabs`: memcached's per-class rows for
//! segcore's items counted in memcached's size classes (see
//! [`crate::storage::classes`]), with memcached_exporter's `memcached_slab_*`
//! names. Only classes that hold or held items are listed, as memcached
//! lists only classes with pages.
//!
//! What the per-class figures mean here: `number`, `mem_requested`,
//! `evicted`, `evicted_time`, `outofmemory` and `reclaimed` are counted per
//! item; `age` is the age of the oldest segment holding items (items of
//! every class share segments); the `stats slabs` page and chunk figures
//! are what memcached would need for the class's items at its chunk size
//! (`used_chunks` = items), since segcore's memory is segments, not pages.
//! Per-class command counters (`get_hits`, `cmd_set`, ...) are not kept.

use crate::runtime::metrics::report::CoreReport;
use crate::runtime::metrics::rows::{Kind, Rows};
use crate::storage::classes::{CHUNK_SIZES, CLASSES, PAGE_SIZE};
use crate::storage::ClassStats;

/// Every core's class counters summed, and the oldest item's age.
pub fn merged(reports: &[CoreReport]) -> (ClassStats, u32) {
    let mut total = ClassStats::default();
    let mut age = 0;
    for (classes, oldest) in reports.iter().filter_map(|r| r.classes.as_deref()) {
        total.merge(classes);
        age = age.max(*oldest);
    }
    (total, age)
}

/// Classes listed: those holding items or with counts since `stats reset`.
fn listed(c: &ClassStats) -> impl Iterator<Item = usize> + '_ {
    (0..CLASSES).filter(|&i| {
        c.number[i] > 0 || c.evicted[i] > 0 || c.outofmemory[i] > 0 || c.reclaimed[i] > 0
    })
}

/// `stats items` rows of class `i` (the caller prefixes `items:<id>:`).
pub fn item_rows(c: &ClassStats, age: u32, i: usize) -> Rows {
    let mut r = Rows::default();
    let slab = (i + 1).to_string();
    let live = c.number[i] > 0;
    let rows: [(&'static str, &'static str, Kind, &'static str, u64); 7] = [
        (
            "number",
            "memcached_slab_current_items",
            Kind::Gauge,
            "Items in the class.",
            c.number[i],
        ),
        (
            "age",
            "memcached_slab_items_age_seconds",
            Kind::Gauge,
            "Age of the oldest item (to its segment).",
            if live { u64::from(age) } else { 0 },
        ),
        (
            "mem_requested",
            "memcached_slab_mem_requested_bytes",
            Kind::Gauge,
            "Bytes of the class's items.",
            c.bytes[i],
        ),
        (
            "evicted",
            "memcached_slab_items_evicted_total",
            Kind::Counter,
            "Items of the class evicted before they expired.",
            c.evicted[i],
        ),
        (
            "evicted_time",
            "memcached_slab_items_evicted_time_seconds",
            Kind::Gauge,
            "Seconds the last evicted item had gone unread.",
            u64::from(c.evicted_time[i]),
        ),
        (
            "outofmemory",
            "memcached_slab_items_outofmemory_total",
            Kind::Counter,
            "Stores of the class's size refused for want of memory.",
            c.outofmemory[i],
        ),
        (
            "reclaimed",
            "memcached_slab_items_reclaimed_total",
            Kind::Counter,
            "Expired items of the class reclaimed.",
            c.reclaimed[i],
        ),
    ];
    r.add_labelled(
        "slab",
        &slab,
        rows.map(|(stat, prom, kind, help, v)| (Some(stat), prom, kind, help, v)),
    );
    r
}

/// `stats slabs` rows of class `i` (the caller prefixes `<id>:`).
pub fn slab_rows(c: &ClassStats, i: usize) -> Rows {
    let mut r = Rows::default();
    let slab = (i + 1).to_string();
    let chunk = CHUNK_SIZES[i] as u64;
    let per_page = (PAGE_SIZE as u64 / chunk).max(1);
    let used = c.number[i];
    let pages = used.div_ceil(per_page);
    let rows: [(&'static str, &'static str, &'static str, u64); 7] = [
        (
            "chunk_size",
            "memcached_slab_chunk_size_bytes",
            "memcached's chunk size for the class.",
            chunk,
        ),
        (
            "chunks_per_page",
            "memcached_slab_chunks_per_page",
            "Chunks in a 1 MiB page.",
            per_page,
        ),
        (
            "total_pages",
            "memcached_slab_current_pages",
            "Pages memcached would need for the class's items.",
            pages,
        ),
        (
            "total_chunks",
            "memcached_slab_current_chunks",
            "Chunks in those pages.",
            pages * per_page,
        ),
        (
            "used_chunks",
            "memcached_slab_chunks_used",
            "Chunks holding items (the class's items).",
            used,
        ),
        (
            "free_chunks",
            "memcached_slab_chunks_free",
            "Chunks of those pages holding nothing.",
            pages * per_page - used,
        ),
        (
            "free_chunks_end",
            "memcached_slab_chunks_free_end",
            "Never-used chunks at the end of the last page.",
            0,
        ),
    ];
    r.add_labelled(
        "slab",
        &slab,
        rows.map(|(stat, prom, help, v)| (Some(stat), prom, Kind::Gauge, help, v)),
    );
    r
}

/// The `stats items` lines.
pub fn items_lines(reports: &[CoreReport]) -> Vec<(String, String)> {
    let (classes, age) = merged(reports);
    let mut lines = Vec::new();
    for i in listed(&classes) {
        let prefix = format!("items:{}:", i + 1);
        crate::runtime::metrics::rows::stat_lines(
            &mut lines,
            &prefix,
            &item_rows(&classes, age, i),
        );
    }
    lines
}

/// The `stats slabs` lines: per class, then the totals.
pub fn slabs_lines(reports: &[CoreReport], malloced: usize) -> Vec<(String, String)> {
    let (classes, _) = merged(reports);
    let mut lines = Vec::new();
    let mut active = 0;
    for i in listed(&classes).filter(|&i| classes.number[i] > 0) {
        active += 1;
        crate::runtime::metrics::rows::stat_lines(
            &mut lines,
            &format!("{}:", i + 1),
            &slab_rows(&classes, i),
        );
    }
    lines.push(("active_slabs".into(), active.to_string()));
    lines.push(("total_malloced".into(), malloced.to_string()));
    lines
}

/// Every class row, for the Prometheus exposition.
pub fn prometheus_rows(reports: &[CoreReport]) -> Rows {
    let (classes, age) = merged(reports);
    let mut rows = Rows::default();
    for i in listed(&classes) {
        rows.0.extend(item_rows(&classes, age, i).0);
        if classes.number[i] > 0 {
            rows.0.extend(slab_rows(&classes, i).0);
        }
    }
    rows
}
