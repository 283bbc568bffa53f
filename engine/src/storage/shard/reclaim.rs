//! Getting memory back: background expiry of whole segments, and eviction
//! by the configured policy (including the merge pass).

use super::*;

impl Shard {
    /// Frees segments whose items have all expired, looking at no more than
    /// `budget` segments. Returns how many it freed. The runtime calls this
    /// from a low-priority task; the budget bounds each call's latency.
    pub fn expire_step(&mut self, budget: usize) -> usize {
        let mut examined = 0;
        let mut freed = 0;
        for step in 0..BUCKETS {
            let b = (self.expire_cursor + step) % BUCKETS;
            if examined >= budget {
                self.expire_cursor = b;
                return freed;
            }
            let mut next_id = self.buckets.get(b).head;
            while let Some(id) = next_id.filter(|_| examined < budget) {
                examined += 1;
                let next = self.segments.meta(id).next.get();
                let max_expire = self.segments.meta(id).max_expire;
                if max_expire != NEVER && max_expire <= self.now {
                    self.drop_segment(id, true);
                    self.stats.expired_segments += 1;
                    freed += 1;
                }
                next_id = next;
            }
        }
        freed
    }

    /// The next live item of segment `id` at or after `offset`: where it
    /// is, its header, its key's hash, and where the item after it starts.
    pub(super) fn next_live(
        &self,
        id: u32,
        mut offset: u32,
    ) -> Option<(Location, Header, u64, u32)> {
        let end = self.segments.meta(id).write_offset;
        while offset < end {
            let loc = self.segments.location(id, offset);
            let item = self.segments.item(loc);
            let header = item.header;
            offset += self.segments.aligned(header.total_len()) as u32;
            if header.bits & DEAD == 0 {
                return Some((loc, header, hash_key(item.key()), offset));
            }
        }
        None
    }

    /// Counts a live item's eviction, overall and in its class (with how
    /// long it had gone unread).
    fn count_eviction(&mut self, loc: Location, header: &Header) {
        self.stats.evictions += 1;
        let opened = self.segments.meta(self.segments.segment_of(loc)).created_at;
        let idle = self
            .now
            .saturating_sub(access::decode(header.last_access, opened));
        self.classes.evicted(header.memcached_size(), idle);
    }

    /// Counts an expired item reclaimed, overall and in its class.
    fn count_reclaimed(&mut self, header: &Header) {
        self.stats.reclaimed += 1;
        self.classes.reclaimed(header.memcached_size());
    }

    /// Drops every live item of a segment and frees it.
    pub(super) fn drop_segment(&mut self, id: u32, expired: bool) {
        let mut offset = 0;
        while let Some((loc, header, hash, next)) = self.next_live(id, offset) {
            offset = next;
            if expired || is_expired(header.expire_at, self.now) {
                self.count_reclaimed(&header);
            } else {
                self.count_eviction(loc, &header);
            }
            self.kill(hash, loc);
        }
        self.buckets.unlink(id, &mut self.segments);
        self.segments.release(id);
    }

    // ---- eviction ----

    /// Frees at least one segment, as the policy picks; false when
    /// nothing can go.
    pub(super) fn evict(&mut self, pin: Option<u32>) -> bool {
        match self.evictor.pick(&self.segments, &self.buckets, pin) {
            None => false,
            Some(Victim::Segment(id)) => {
                self.drop_segment(id, false);
                self.stats.evicted_segments += 1;
                true
            }
            Some(Victim::Merge {
                bucket,
                run,
                len,
                into,
            }) => {
                self.merge(bucket, &run[..len], into);
                self.evictor.merged(&mut self.segments, self.now);
                true
            }
        }
    }

    /// One merge pass: fold a run of the oldest sealed segments of a
    /// bucket into `dst`, keeping items read since the last pass and
    /// dropping the rest.
    fn merge(&mut self, bucket: usize, run: &[u32], dst: u32) {
        self.stats.merges += 1;
        {
            // The merged segment re-enters the bucket as its newest sealed
            // segment: what it keeps must be read again before the chain
            // comes round to it (CLOCK at segment granularity).
            let meta = self.segments.meta_mut(dst);
            meta.state = SegmentState::Sealed;
            meta.created_at = self.now;
            meta.write_offset = 0;
            meta.live_items = 0;
            meta.live_bytes = 0;
            meta.max_expire = 0;
        }
        for &src in run {
            self.merge_segment(src, dst);
            self.buckets.unlink(src, &mut self.segments);
            self.segments.release(src);
            self.stats.evicted_segments += 1;
        }
        self.buckets
            .push_before_open(bucket, dst, &mut self.segments);
    }

    pub(super) fn merge_segment(&mut self, src: u32, dst: u32) {
        let mut offset = 0;
        while let Some((old, header, hash, next)) = self.next_live(src, offset) {
            offset = next;
            let item = self.segments.item(old);
            if is_expired(header.expire_at, self.now) {
                self.count_reclaimed(&header);
                self.kill(hash, old);
                continue;
            }
            if header.bits & ACCESSED == 0 {
                self.count_eviction(old, &header);
                self.kill(hash, old);
                continue;
            }
            // Keep it: copy into dst with its cas made explicit, so clients
            // holding that cas still match after the move.
            let cas = self.cas_of(old);
            let flags = item.client_flags();
            let key_len = usize::from(header.key_len);
            let mut bits = (header.bits & !(ACCESSED | HAS_CAS | HAS_FLAGS)) | HAS_CAS;
            if flags != 0 {
                bits |= HAS_FLAGS;
            }
            let len = item::item_len(key_len, header.value_len as usize, bits);
            let Some(at) = self.segments.try_append(dst, len) else {
                // The destination is full: the rest of the run is evicted.
                self.count_eviction(old, &header);
                self.kill(hash, old);
                continue;
            };
            let base = self.segments.absolute_of(old) + header.key_offset();
            let new_meta = NewItem {
                bits,
                flags,
                cas,
                expire_at: header.expire_at,
                last_access: self.accessed_at(old, header.last_access),
            };
            let new = self.write_item(
                (dst, at),
                Part::Stored(base, key_len),
                key_len,
                [
                    Part::Stored(base + key_len, header.value_len as usize),
                    Part::Bytes(&[]),
                ],
                new_meta,
            );
            // write_item counted a new item; the move is not one.
            self.stats.total_items -= 1;
            self.index.relocate(hash, old, new);
            self.mark_dead(old);
            self.stats.merge_retained += 1;
        }
    }
}
