//! Per-shard counters: plain integers owned by the shard's core, summed by
//! whoever asks for `stats`. No atomics: only the owning core writes them.

/// What one shard has done since it started. Field names follow memcached's
/// `stats` where one exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Keys looked up by get/gets/gat/gats/mg.
    pub cmd_get: u64,
    /// Lookups that found a live item.
    pub get_hits: u64,
    /// Lookups that found nothing (expired ones included).
    pub get_misses: u64,
    /// Lookups that found an item past its expiry.
    pub get_expired: u64,
    /// Storage commands (set/add/replace/append/prepend/cas, ms).
    pub cmd_set: u64,
    /// Touch commands (touch, gat, gats).
    pub cmd_touch: u64,
    /// Touches that found the item.
    pub touch_hits: u64,
    /// Touches that did not.
    pub touch_misses: u64,
    /// Deletes that removed an item.
    pub delete_hits: u64,
    /// Deletes of a missing key.
    pub delete_misses: u64,
    /// Successful incr.
    pub incr_hits: u64,
    /// incr of a missing key.
    pub incr_misses: u64,
    /// Successful decr.
    pub decr_hits: u64,
    /// decr of a missing key.
    pub decr_misses: u64,
    /// cas that stored.
    pub cas_hits: u64,
    /// cas of a missing key.
    pub cas_misses: u64,
    /// cas whose value did not match.
    pub cas_badval: u64,
    /// Items stored since start.
    pub total_items: u64,
    /// Items alive now.
    pub curr_items: u64,
    /// Bytes of live items (headers, keys, values).
    pub bytes: u64,
    /// Live items removed to make room.
    pub evictions: u64,
    /// Segments evicted (whole, or merged away).
    pub evicted_segments: u64,
    /// Merge passes run by the `merge` policy.
    pub merges: u64,
    /// Items kept alive by a merge (second chance).
    pub merge_retained: u64,
    /// Live items a merge dropped (not read, not frequent enough, or no
    /// room left in its destinations).
    pub merge_evicted: u64,
    /// Items `s3fifo` moved from its small FIFO into main (read while on
    /// probation); counted in `merge_retained` too.
    pub promoted: u64,
    /// Items `s3fifo` dropped from its small FIFO unread; counted in
    /// `merge_evicted` too.
    pub probation_evicted: u64,
    /// The estimated frequency the last `s3fifo` main merge required to keep
    /// an item (a gauge).
    pub merge_threshold: u64,
    /// Expired items reclaimed without being read.
    pub reclaimed: u64,
    /// Segments freed because everything in them had expired.
    pub expired_segments: u64,
    /// flush_all commands applied.
    pub cmd_flush: u64,
    /// Stores refused because nothing could be evicted.
    pub out_of_memory: u64,
}

impl ShardStats {
    /// `stats reset`: zeroes the counters, keeping the gauges that describe
    /// what is stored now (`curr_items`, `bytes`), as memcached does.
    pub fn reset_counters(&mut self) {
        // Gauges (what the shard holds and how it is tuned now) keep
        // their values; every counter starts again from zero.
        *self = ShardStats {
            curr_items: self.curr_items,
            bytes: self.bytes,
            merge_threshold: self.merge_threshold,
            ..ShardStats::default()
        };
    }
}

/// Server-wide totals are the cores' counters summed.
impl std::ops::AddAssign<&ShardStats> for ShardStats {
    fn add_assign(&mut self, o: &ShardStats) {
        // Destructured so a new counter cannot be left out of the sum.
        let ShardStats {
            cmd_get,
            get_hits,
            get_misses,
            get_expired,
            cmd_set,
            cmd_touch,
            touch_hits,
            touch_misses,
            delete_hits,
            delete_misses,
            incr_hits,
            incr_misses,
            decr_hits,
            decr_misses,
            cas_hits,
            cas_misses,
            cas_badval,
            total_items,
            curr_items,
            bytes,
            evictions,
            evicted_segments,
            merges,
            merge_retained,
            merge_evicted,
            promoted,
            probation_evicted,
            merge_threshold,
            reclaimed,
            expired_segments,
            cmd_flush,
            out_of_memory,
        } = *o;
        self.cmd_get += cmd_get;
        self.get_hits += get_hits;
        self.get_misses += get_misses;
        self.get_expired += get_expired;
        self.cmd_set += cmd_set;
        self.cmd_touch += cmd_touch;
        self.touch_hits += touch_hits;
        self.touch_misses += touch_misses;
        self.delete_hits += delete_hits;
        self.delete_misses += delete_misses;
        self.incr_hits += incr_hits;
        self.incr_misses += incr_misses;
        self.decr_hits += decr_hits;
        self.decr_misses += decr_misses;
        self.cas_hits += cas_hits;
        self.cas_misses += cas_misses;
        self.cas_badval += cas_badval;
        self.total_items += total_items;
        self.curr_items += curr_items;
        self.bytes += bytes;
        self.evictions += evictions;
        self.evicted_segments += evicted_segments;
        self.merges += merges;
        self.merge_retained += merge_retained;
        self.merge_evicted += merge_evicted;
        self.promoted += promoted;
        self.probation_evicted += probation_evicted;
        self.merge_threshold = self.merge_threshold.max(merge_threshold);
        self.reclaimed += reclaimed;
        self.expired_segments += expired_segments;
        self.cmd_flush += cmd_flush;
        self.out_of_memory += out_of_memory;
    }
}
