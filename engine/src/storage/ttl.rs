//! TTL buckets: items with similar lifetimes share segments, so a whole
//! segment expires at once and is reclaimed without looking at its items
//! one by one on the read path (as Segcache does).
//!
//! 1024 buckets whose width grows with the TTL:
//!
//! ```text
//!  TTL range (s)            width (s)   buckets
//!  [0, 2048)                8           0..256
//!  [2048, 32768)            128         256..496
//!  [32768, 524288)          2048        496..736
//!  [524288, 8388608)        32768       736..976
//!  [8388608, ..)            -           976..1022 (clamped)
//!  never expires            -           1023
//! ```
//!
//! Each bucket is a chain of segments, oldest first; the newest is the
//! bucket's open segment that takes new items.

use super::segment::{Link, Segments};

/// Number of buckets.
pub const BUCKETS: usize = 1024;
/// The bucket of items that never expire.
pub const NEVER_BUCKET: usize = BUCKETS - 1;

/// The bucket for an item that lives `ttl` more seconds (`None`: forever).
pub fn bucket_for(ttl: Option<u32>) -> usize {
    let Some(ttl) = ttl else {
        return NEVER_BUCKET;
    };
    let ttl = ttl as usize;
    let index = match ttl {
        0..2048 => ttl >> 3,
        2048..32768 => 256 + ((ttl - 2048) >> 7),
        32768..524_288 => 496 + ((ttl - 32768) >> 11),
        524_288..8_388_608 => 736 + ((ttl - 524_288) >> 15),
        _ => 976 + ((ttl - 8_388_608) >> 20),
    };
    index.min(NEVER_BUCKET - 1)
}

/// One bucket: the ends of its segment chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlBucket {
    /// Oldest segment, `None` when empty.
    pub head: Option<u32>,
    /// Newest segment (the open one, if any), `None` when empty.
    pub tail: Option<u32>,
}

/// All buckets of one shard.
pub struct TtlBuckets {
    buckets: Box<[TtlBucket]>,
}

impl Default for TtlBuckets {
    fn default() -> Self {
        TtlBuckets {
            buckets: vec![
                TtlBucket {
                    head: None,
                    tail: None
                };
                BUCKETS
            ]
            .into_boxed_slice(),
        }
    }
}

impl TtlBuckets {
    /// Bucket `b`.
    #[inline]
    pub fn get(&self, b: usize) -> TtlBucket {
        self.buckets[b]
    }

    /// Sets bucket `b`'s chain ends (rebuilding buckets from restored
    /// segment links).
    pub fn set(&mut self, b: usize, bucket: TtlBucket) {
        self.buckets[b] = bucket;
    }

    /// Appends segment `id` as the newest of bucket `b`.
    pub fn push_back(&mut self, b: usize, id: u32, segs: &mut Segments) {
        let bucket = &mut self.buckets[b];
        let old_tail = bucket.tail;
        {
            let meta = segs.meta_mut(id);
            meta.bucket = b as u16;
            meta.prev = Link::from(old_tail);
            meta.next = Link::NONE;
        }
        match old_tail {
            None => bucket.head = Some(id),
            Some(old) => segs.meta_mut(old).next = Link::from(Some(id)),
        }
        bucket.tail = Some(id);
    }

    /// Inserts segment `id` as the oldest of bucket `b`.
    #[cfg(test)]
    pub fn push_front(&mut self, b: usize, id: u32, segs: &mut Segments) {
        let bucket = &mut self.buckets[b];
        let old_head = bucket.head;
        {
            let meta = segs.meta_mut(id);
            meta.bucket = b as u16;
            meta.prev = Link::NONE;
            meta.next = Link::from(old_head);
        }
        match old_head {
            None => bucket.tail = Some(id),
            Some(old) => segs.meta_mut(old).prev = Link::from(Some(id)),
        }
        bucket.head = Some(id);
    }

    /// Inserts segment `id` as the newest sealed segment of bucket `b`:
    /// just before the open tail, or at the end when nothing is open.
    pub fn push_before_open(&mut self, b: usize, id: u32, segs: &mut Segments) {
        let tail = match self.buckets[b].tail {
            Some(tail) if segs.meta(tail).state == super::segment::SegmentState::Open => tail,
            _ => {
                self.push_back(b, id, segs);
                return;
            }
        };
        let before_tail = segs.meta(tail).prev.get();
        {
            let meta = segs.meta_mut(id);
            meta.bucket = b as u16;
            meta.prev = Link::from(before_tail);
            meta.next = Link::from(Some(tail));
        }
        segs.meta_mut(tail).prev = Link::from(Some(id));
        match before_tail {
            None => self.buckets[b].head = Some(id),
            Some(before) => segs.meta_mut(before).next = Link::from(Some(id)),
        }
    }

    /// Takes segment `id` out of its bucket's chain.
    pub fn unlink(&mut self, id: u32, segs: &mut Segments) {
        let meta = *segs.meta(id);
        let bucket = &mut self.buckets[usize::from(meta.bucket)];
        match meta.prev.get() {
            None => bucket.head = meta.next.get(),
            Some(prev) => segs.meta_mut(prev).next = meta.next,
        }
        match meta.next.get() {
            None => bucket.tail = meta.prev.get(),
            Some(next) => segs.meta_mut(next).prev = meta.prev,
        }
        let meta = segs.meta_mut(id);
        meta.prev = Link::NONE;
        meta.next = Link::NONE;
    }

    /// Empties every bucket (after a flush released all segments).
    pub fn clear(&mut self) {
        for bucket in self.buckets.iter_mut() {
            *bucket = TtlBucket {
                head: None,
                tail: None,
            };
        }
    }

    /// Segment ids of bucket `b`, oldest first.
    pub fn chain<'a>(&self, b: usize, segs: &'a Segments) -> impl Iterator<Item = u32> + 'a {
        let mut id = self.buckets[b].head;
        std::iter::from_fn(move || {
            let current = id?;
            id = segs.meta(current).next.get();
            Some(current)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::segment::SegmentState;
    use super::*;

    #[test]
    fn bucket_boundaries() {
        assert_eq!(bucket_for(None), NEVER_BUCKET);
        assert_eq!(bucket_for(Some(0)), 0);
        assert_eq!(bucket_for(Some(7)), 0);
        assert_eq!(bucket_for(Some(8)), 1);
        assert_eq!(bucket_for(Some(2047)), 255);
        assert_eq!(bucket_for(Some(2048)), 256);
        assert_eq!(bucket_for(Some(32767)), 495);
        assert_eq!(bucket_for(Some(32768)), 496);
        assert_eq!(bucket_for(Some(524_288)), 736);
        assert_eq!(bucket_for(Some(8_388_607)), 975);
        assert_eq!(bucket_for(Some(u32::MAX)), NEVER_BUCKET - 1);
        // Monotone: a longer TTL never lands in an earlier bucket.
        let mut last = 0;
        for ttl in (0..20_000_000).step_by(997) {
            let b = bucket_for(Some(ttl));
            assert!(b >= last);
            last = b;
        }
    }

    #[test]
    fn chains_link_and_unlink() {
        let mut segs = Segments::new(4, 64).unwrap();
        let mut buckets = TtlBuckets::default();
        let ids: Vec<u32> = (0..3)
            .map(|_| segs.alloc(SegmentState::Sealed, 0, 5).unwrap())
            .collect();
        for &id in &ids {
            buckets.push_back(5, id, &mut segs);
        }
        assert_eq!(buckets.chain(5, &segs).collect::<Vec<_>>(), ids);
        buckets.unlink(ids[1], &mut segs);
        assert_eq!(
            buckets.chain(5, &segs).collect::<Vec<_>>(),
            vec![ids[0], ids[2]]
        );
        buckets.unlink(ids[0], &mut segs);
        buckets.push_front(5, ids[1], &mut segs);
        assert_eq!(
            buckets.chain(5, &segs).collect::<Vec<_>>(),
            vec![ids[1], ids[2]]
        );
        buckets.unlink(ids[2], &mut segs);
        buckets.unlink(ids[1], &mut segs);
        assert_eq!(
            buckets.get(5),
            TtlBucket {
                head: None,
                tail: None
            }
        );
        // Before the open tail, or at the end when nothing is open.
        buckets.push_back(5, ids[0], &mut segs);
        buckets.push_before_open(5, ids[1], &mut segs);
        assert_eq!(
            buckets.chain(5, &segs).collect::<Vec<_>>(),
            vec![ids[0], ids[1]]
        );
        segs.meta_mut(ids[1]).state = SegmentState::Open;
        buckets.push_before_open(5, ids[2], &mut segs);
        assert_eq!(
            buckets.chain(5, &segs).collect::<Vec<_>>(),
            vec![ids[0], ids[2], ids[1]]
        );
        buckets.unlink(ids[0], &mut segs);
        buckets.unlink(ids[1], &mut segs);
        buckets.push_before_open(5, ids[0], &mut segs);
        assert_eq!(
            buckets.chain(5, &segs).collect::<Vec<_>>(),
            vec![ids[2], ids[0]]
        );
    }
}
