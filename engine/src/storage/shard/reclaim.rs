//! Getting memory back: background expiry of whole segments, and eviction
//! by the configured policy (including the merge pass).

use super::*;
use crate::storage::eviction::{s3fifo, MergeOutcome, Retain, MERGE_SEGMENTS};
use crate::storage::frequency::MAX_COUNT;

impl Shard {
    /// Frees segments whose items have all expired, looking at no more than
    /// `budget` segments. Returns how many it freed. The runtime calls this
    /// from a low-priority task; the budget bounds each call's latency.
    ///
    /// ```
    /// # use segcore_engine::storage::*;
    /// let mut shard = Shard::new(&ShardConfig::default()).unwrap();
    /// shard.set_time(1_700_000_000);
    /// for i in 0..100 {
    ///     let key = format!("k{i}");
    ///     shard.store(HashedKey::new(key.as_bytes()), b"v", &StoreRequest::new(StoreMode::Set, 0, 5));
    /// }
    /// shard.set_time(1_700_000_100);
    /// while shard.expire_step(8) > 0 {}
    /// assert_eq!(shard.stats().curr_items, 0);
    /// ```
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
                if self.segments.meta(id).max_expire.passed(self.now) {
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
                partial,
                retain,
            }) => {
                let outcome = self.merge(bucket, &run[..len], (into, partial), retain);
                self.evictor.merged(&mut self.segments, self.now, outcome);
                true
            }
        }
    }

    /// One merge pass: fold a run of the oldest sealed segments of a
    /// bucket into what room the last pass left (`partial`), then `spare`
    /// and, as `retain` allows, the run's own segments as they empty,
    /// keeping the items `retain` picks and dropping the rest.
    fn merge(
        &mut self,
        bucket: usize,
        run: &[u32],
        (spare, partial): (u32, Option<u32>),
        retain: Retain,
    ) -> MergeOutcome {
        self.stats.merges += 1;
        let keep = match retain {
            Retain::Accessed => Keep::Accessed,
            // S3-FIFO's rule: promoted if read while on probation. (Also
            // promoting what the sketch counted twice measured worse: at
            // a cache's edge its counts are mostly collisions.)
            Retain::Promoted => Keep::Accessed,
            Retain::Frequent => {
                let capacity = retain.destinations(run.len()) * self.segments.segment_size();
                let at_least = s3fifo::threshold(&self.frequency_histogram(run), capacity);
                self.stats.merge_threshold = u64::from(at_least);
                Keep::AtLeast(at_least)
            }
        };
        // The merged segments re-enter the bucket as its newest sealed
        // segments: what they keep must be asked for again before the
        // chain comes round to them (CLOCK at segment granularity).
        let before = (self.stats.merge_retained, self.stats.merge_evicted);
        let mut out = MergeOutput {
            bucket,
            current: partial.unwrap_or(spare),
            linked: partial.is_some(),
            spare: partial.map(|_| spare),
            used: 1,
            allowed: retain.destinations(run.len()),
            emptied: [0; MERGE_SEGMENTS],
            emptied_len: 0,
            emptied_next: 0,
        };
        if partial.is_none() {
            self.open_destination(spare, bucket);
        }
        for &src in run {
            self.merge_segment(src, &mut out, keep);
            self.buckets.unlink(src, &mut self.segments);
            self.stats.evicted_segments += 1;
            // Held back (not freed) so the pass can write into it.
            self.segments
                .renew(src, SegmentState::Spare, self.now, bucket as u16);
            out.emptied[out.emptied_len] = src;
            out.emptied_len += 1;
        }
        let mut leftover = out.spare;
        let mut partial = None;
        if out.linked {
            partial = Some(out.current);
        } else if self.segments.meta(out.current).live_items > 0 {
            self.buckets
                .push_before_open(bucket, out.current, &mut self.segments);
            partial = Some(out.current);
        } else {
            self.segments
                .renew(out.current, SegmentState::Spare, self.now, 0);
            leftover = Some(out.current);
        }
        for &id in &out.emptied[out.emptied_next..out.emptied_len] {
            if leftover.is_none() {
                self.segments.renew(id, SegmentState::Spare, self.now, 0);
                leftover = Some(id);
            } else {
                self.segments.release(id);
            }
        }
        if retain == Retain::Promoted {
            self.stats.promoted += self.stats.merge_retained - before.0;
            self.stats.probation_evicted += self.stats.merge_evicted - before.1;
        }
        MergeOutcome { leftover, partial }
    }

    /// Bytes the live items of `run` would take once moved, by their
    /// estimated access frequency.
    fn frequency_histogram(&self, run: &[u32]) -> s3fifo::Histogram {
        let mut bytes = [0; MAX_COUNT as usize + 1];
        let Some(sketch) = &self.sketch else {
            return bytes;
        };
        for &src in run {
            let mut offset = 0;
            while let Some((_, header, hash, next)) = self.next_live(src, offset) {
                offset = next;
                if !is_expired(header.expire_at, self.now) {
                    let (_, len) = moved_layout(&header, header.bits & HAS_FLAGS != 0);
                    bytes[usize::from(sketch.estimate(hash))] += len;
                }
            }
        }
        bytes
    }

    /// The next place to write `len` bytes of a merge: the current
    /// destination, or the next emptied segment of the run when it is
    /// full and `allowed` says another may be used. `None`: the item goes.
    fn merge_room(&mut self, out: &mut MergeOutput, len: usize) -> Option<u32> {
        if self.segments.aligned(len) > self.segments.segment_size() {
            // Too large once its cas is explicit: no destination can take it.
            return None;
        }
        loop {
            if let Some(at) = self.segments.try_append(out.current, len) {
                return Some(at);
            }
            // Full: seal it in the bucket (a part-full segment from the
            // last pass already is) and open the next destination.
            let next = if let Some(spare) = out.spare.take() {
                spare
            } else if out.used < out.allowed && out.emptied_next < out.emptied_len {
                out.emptied_next += 1;
                out.used += 1;
                out.emptied[out.emptied_next - 1]
            } else {
                return None;
            };
            if !out.linked {
                self.buckets
                    .push_before_open(out.bucket, out.current, &mut self.segments);
            }
            out.linked = false;
            out.current = next;
            self.open_destination(next, out.bucket);
        }
    }

    /// Makes `id` an empty merge destination of `bucket`: sealed (it takes
    /// no client writes) and part of the main FIFO.
    fn open_destination(&mut self, id: u32, bucket: usize) {
        self.segments
            .renew(id, SegmentState::Sealed, self.now, bucket as u16);
        self.segments.meta_mut(id).main = true;
    }

    fn merge_segment(&mut self, src: u32, out: &mut MergeOutput, keep: Keep) {
        let mut offset = 0;
        while let Some((old, header, hash, next)) = self.next_live(src, offset) {
            offset = next;
            if is_expired(header.expire_at, self.now) {
                self.count_reclaimed(&header);
                self.kill(hash, old);
                continue;
            }
            let estimate = || self.sketch.as_ref().map_or(0, |s| s.estimate(hash));
            let kept = match keep {
                Keep::Accessed => header.bits & ACCESSED != 0,
                Keep::AtLeast(t) => estimate() >= t,
            };
            if !kept {
                self.count_eviction(old, &header);
                self.stats.merge_evicted += 1;
                self.kill(hash, old);
                continue;
            }
            // Keep it: copy with its cas made explicit if a client may hold
            // it, so that cas still matches after the move.
            let item = self.segments.item(old);
            let cas = self.cas_of(old);
            let flags = item.client_flags();
            let key_len = usize::from(header.key_len);
            let (bits, len) = moved_layout(&header, flags != 0);
            let Some(at) = self.merge_room(out, len) else {
                // The destinations are full: the rest of the run goes.
                self.count_eviction(old, &header);
                self.stats.merge_evicted += 1;
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
                (out.current, at),
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

/// Which items one merge keeps.
#[derive(Clone, Copy)]
enum Keep {
    /// Those read since the last pass.
    Accessed,
    /// Those the sketch estimates at this count or more.
    AtLeast(u8),
}

/// Where a merge pass writes.
struct MergeOutput {
    bucket: usize,
    /// The destination being filled.
    current: u32,
    /// `current` is the last pass's part-full segment, already in the
    /// bucket's chain.
    linked: bool,
    /// The reserved segment, while a part-full one is filled first.
    spare: Option<u32>,
    /// Destinations opened so far (the reserved one included), and how
    /// many may be.
    used: usize,
    allowed: usize,
    /// The run's segments, emptied and held back, in run order; those
    /// from `emptied_next` on are not yet written to.
    emptied: [u32; MERGE_SEGMENTS],
    emptied_len: usize,
    emptied_next: usize,
}

/// The state bits and length of an item once a merge moves it: the cas
/// explicit if a client may hold it, flags only when non-zero, the access
/// bit cleared.
fn moved_layout(header: &Header, has_flags: bool) -> (u8, usize) {
    let mut bits = header.bits & !(ACCESSED | HAS_CAS | HAS_FLAGS);
    if header.bits & (CAS_SHOWN | HAS_CAS) != 0 {
        bits |= HAS_CAS;
    }
    if has_flags {
        bits |= HAS_FLAGS;
    }
    let len = item::item_len(usize::from(header.key_len), header.value_len as usize, bits);
    (bits, len)
}
