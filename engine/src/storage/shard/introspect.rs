//! What a shard reports about itself without changing anything: counters,
//! segment and bucket occupancy, index and sketch sizes, and the prefetch
//! hints the batch runner gives before a pipelined batch.

use super::*;

impl Shard {
    /// The counters.
    pub fn stats(&self) -> &ShardStats {
        &self.stats
    }

    /// Where the item memory starts (to ask which NUMA node holds it).
    pub fn memory_start(&self) -> *const u8 {
        self.segments.memory().as_ptr()
    }

    /// The per-class counters.
    pub fn class_stats(&self) -> &ClassStats {
        &self.classes
    }

    /// Segments in all, free now, and bytes per segment.
    pub fn segment_counts(&self) -> (usize, usize, usize) {
        (
            self.segments.count(),
            self.segments.free_count(),
            self.segments.segment_size(),
        )
    }

    /// Seconds since the oldest segment holding live items was opened: the
    /// age of the oldest item, to the segment (an item a merge moved counts
    /// from the move). For `stats items`; walks the segment table.
    pub fn oldest_item_age(&self) -> u32 {
        (0..self.segments.count() as u32)
            .map(|id| self.segments.meta(id))
            .filter(|m| {
                m.live_items > 0 && matches!(m.state, SegmentState::Open | SegmentState::Sealed)
            })
            .map(|m| self.now.saturating_sub(m.created_at))
            .max()
            .unwrap_or(0)
    }

    /// Segments in each non-empty TTL bucket: (bucket, segments).
    pub fn bucket_occupancy(&self) -> Vec<(usize, usize)> {
        (0..BUCKETS)
            .filter_map(|b| {
                let n = self.buckets.chain(b, &self.segments).count();
                (n > 0).then_some((b, n))
            })
            .collect()
    }

    /// Bytes of segments in use that no live item occupies (overwritten,
    /// deleted or expired items, alignment padding): what merge and
    /// expiry reclaim. Walks the segment table, so it is for `stats`, not
    /// for the request path.
    pub fn dead_bytes(&self) -> u64 {
        (0..self.segments.count() as u32)
            .map(|id| self.segments.meta(id))
            .filter(|m| matches!(m.state, SegmentState::Open | SegmentState::Sealed))
            .map(|m| u64::from(m.write_offset - m.live_bytes))
            .sum()
    }

    /// Starts loading the index memory that an operation on `key` will
    /// read. Calling it for every key of a pipelined batch before running
    /// the batch overlaps their cache misses. A hint: it changes nothing.
    #[inline]
    pub fn prefetch(&self, key: HashedKey<'_>) {
        self.index.prefetch(key.hash);
        if let Some(sketch) = &self.sketch {
            sketch.prefetch(key.hash);
        }
    }

    /// The second step after [`Shard::prefetch`], once the index memory has
    /// arrived: starts loading the item the lookup of `hash` will most
    /// likely read. A hint: it changes nothing.
    #[inline]
    pub fn prefetch_item(&self, hash: u64) {
        if let Some(addr) = self
            .index
            .likely_location(hash)
            .and_then(|loc| self.segments.item_address(loc))
        {
            // Header, key and a small value: the first two lines.
            super::super::index::prefetch(addr);
            super::super::index::prefetch(addr + 64);
        }
    }

    /// Bytes held by the index.
    pub fn index_bytes(&self) -> usize {
        self.index.allocation_size()
    }

    /// The access sketch's bytes and halvings, for policies that keep one.
    pub fn sketch_usage(&self) -> Option<(usize, u64)> {
        self.sketch.as_ref().map(|s| (s.bytes(), s.halvings()))
    }

    /// Times a piece of the index has grown.
    pub fn index_growths(&self) -> u64 {
        self.index.growths()
    }

    /// Keys the index holds before any piece grows, entries in its
    /// largest piece (what one growth step moves, at most), and pieces.
    pub fn index_shape(&self) -> (usize, usize, usize) {
        (
            self.index.capacity(),
            self.index.largest_piece(),
            self.index.piece_count(),
        )
    }
}
