//! The shard's invariants, checked by tests and the model test.

use super::*;

impl Shard {
    /// Verifies the shard's invariants: every index entry points at a live
    /// item that the index finds again by its key, the per-segment and
    /// shard counters agree with the items, and no bucket chain holds a free
    /// segment. Returns a description of the first violation. For tests and
    /// debugging; it walks all memory.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut indexed = 0u64;
        for loc in self.index.locations() {
            let item = self.segments.item(loc);
            if item.header.bits & DEAD != 0 {
                return Err(format!("index points at dead item {loc:?}"));
            }
            let hash = hash_key(item.key());
            let found = self.index.find(
                HashedKey {
                    key: item.key(),
                    hash,
                },
                &self.segments,
            );
            if found != Some(loc) {
                return Err(format!("key at {loc:?} indexes to {found:?}"));
            }
            indexed += 1;
        }
        let (mut live, mut bytes) = (0u64, 0u64);
        for id in 0..self.segments.count() as u32 {
            let meta = *self.segments.meta(id);
            if matches!(meta.state, SegmentState::Free | SegmentState::Spare) {
                continue;
            }
            let (mut seg_live, mut seg_bytes) = (0u32, 0u32);
            for (_, item) in self.segments.items(id) {
                if item.header.bits & DEAD == 0 {
                    seg_live += 1;
                    seg_bytes += item.header.total_len() as u32;
                }
            }
            if (seg_live, seg_bytes) != (meta.live_items, meta.live_bytes) {
                return Err(format!(
                    "segment {id}: counted {seg_live} items/{seg_bytes} B, meta says {}/{}",
                    meta.live_items, meta.live_bytes
                ));
            }
            if meta.write_offset as usize > self.segments.segment_size() {
                return Err(format!("segment {id} overflows"));
            }
            live += u64::from(seg_live);
            bytes += u64::from(seg_bytes);
        }
        if live != indexed || live != self.stats.curr_items || bytes != self.stats.bytes {
            return Err(format!(
                "live {live}, indexed {indexed}, curr_items {}, bytes {bytes} vs {}",
                self.stats.curr_items, self.stats.bytes
            ));
        }
        // The per-class view counts the same items and bytes.
        let class_items: u64 = self.classes.number.iter().sum();
        let class_bytes: u64 = self.classes.bytes.iter().sum();
        if (class_items, class_bytes) != (live, bytes) {
            return Err(format!(
                "classes hold {class_items} items/{class_bytes} B, segments {live}/{bytes}"
            ));
        }
        for b in 0..BUCKETS {
            for id in self.buckets.chain(b, &self.segments) {
                let meta = self.segments.meta(id);
                if !matches!(meta.state, SegmentState::Open | SegmentState::Sealed)
                    || usize::from(meta.bucket) != b
                {
                    return Err(format!(
                        "bucket {b} chains segment {id} in {:?}",
                        meta.state
                    ));
                }
            }
        }
        Ok(())
    }
}
