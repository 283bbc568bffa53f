//! A core's report for `stats`: what its shard and its own counters say
//! right now, and what a whole-core command may do to the core (reset
//! its counters, turn prefix counting on or off). The only place that
//! reads a core's state into a report.

use crate::command::CoreAccess;
use crate::runtime::metrics::hotkeys;
use crate::runtime::metrics::report::CoreReport;
use crate::runtime::op::ReportLists;
use crate::runtime::server::core::Core;
use crate::storage::Shard;

/// What a shard alone reports: its counters, occupancy and sizes.
pub fn of_shard(shard: &Shard) -> CoreReport {
    CoreReport {
        shard: *shard.stats(),
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

/// A core's contribution to `stats`, with the lists asked for: the
/// snapshot of its shard and its own counters.
pub fn of(core: &Core, shard: &Shard, also: ReportLists) -> CoreReport {
    CoreReport {
        core: core.id,
        conns: *core.counters.borrow(),
        detail_enabled: core.prefixes.borrow().enabled(),
        prefixes: if also.prefixes {
            core.prefixes.borrow().snapshot()
        } else {
            Vec::new()
        },
        listening: core.listening,
        clients: if also.conns {
            core.conns.borrow().snapshot()
        } else {
            Vec::new()
        },
        conn_slots: core.conns.borrow().slots(),
        stop_waiters: core.stop.waiters(),
        buffers: core.buffers.usage(),
        restored: core.restored,
        placement: core.placement,
        latency: also
            .latency
            .then(|| Box::new(core.latency.borrow().clone())),
        classes: also
            .classes
            .then(|| Box::new((shard.class_stats().clone(), shard.oldest_item_age()))),
        hot_keys: if also.hot_keys {
            core.hot_keys.borrow().top()
        } else {
            Vec::new()
        },
        ..of_shard(shard)
    }
}

impl CoreAccess for Core {
    type Report = CoreReport;

    fn report(&self, shard: &Shard, also: ReportLists) -> CoreReport {
        of(self, shard, also)
    }

    fn reset_counters(&self) {
        self.counters.borrow_mut().reset();
        self.prefixes.borrow_mut().clear();
        self.latency.borrow_mut().reset();
        self.hot_keys.borrow_mut().clear();
    }

    fn set_detail(&self, on: bool) {
        self.prefixes.borrow_mut().set_enabled(on);
    }

    #[inline]
    fn sample_key(&self, key: &[u8]) {
        // The sampling decision touches only a Cell; the table is borrowed
        // for the one request in SAMPLE_ONE_IN that is counted.
        if hotkeys::sampled(&self.hot_sampler) {
            self.hot_keys.borrow_mut().count(key);
        }
    }
}
