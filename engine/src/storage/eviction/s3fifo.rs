//! S3-FIFO at segment granularity, with a TinyLFU sketch for memory.
//!
//! Zipf traffic rewards frequency, and most keys a cache-aside client
//! stores are asked for once and never again. So, as in S3-FIFO, new items
//! land in a small probationary FIFO — the segments written by clients,
//! about a tenth of the memory ([`SMALL_SHARE_PERCENT`]) — and the rest is
//! the main FIFO: segments written by merges. Every lookup, hit or miss,
//! counts in the shard's count-min sketch ([`crate::storage::frequency`]),
//! which also remembers keys no longer stored (S3-FIFO's ghost list, with
//! counts).
//!
//! - While the small FIFO is over its share, its oldest segment goes: the
//!   items read since they were written are promoted into main; the rest —
//!   one-off keys, a scan — are dropped after one pass.
//! - Otherwise main makes room: its oldest segments (up to
//!   [`MERGE_SEGMENTS`]) fold into all but one of themselves, keeping the
//!   items the sketch counts most often ([`threshold`]) — a key's count
//!   includes the times it was asked for while not stored, so a returning
//!   key holds its place (the ghost list's job in S3-FIFO).
//!
//! Merges write behind the last one's part-full segment first, so main
//! holds no half-empty segments. [`super::merge::Merging`] carries the
//! merges out (the reserved and part-full destinations, as for `merge`);
//! this file chooses the runs.

use super::merge::{Run, RunChoice};
use super::{Policy, Retain, MERGE_SEGMENTS};
use crate::storage::frequency::MAX_COUNT;
use crate::storage::segment::{SegmentState, Segments};
use crate::storage::ttl::{TtlBuckets, BUCKETS};

/// The small FIFO's share of the segments in use.
pub const SMALL_SHARE_PERCENT: usize = 10;

/// The smallest estimate a main item needs to stay: asked for at least
/// twice lately.
pub const FLOOR: u8 = 2;

/// Bytes of a run's live items by estimated frequency (0..=15).
pub type Histogram = [usize; MAX_COUNT as usize + 1];

/// S3-FIFO's run choice.
#[derive(Default)]
pub struct S3Fifo {
    /// The bucket to look at first next time (round robin).
    cursor: usize,
}

impl RunChoice for S3Fifo {
    fn policy(&self) -> Policy {
        Policy::S3Fifo
    }

    fn choose(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Run> {
        let (small, in_use) = segs
            .metas()
            .iter()
            .filter(|m| matches!(m.state, SegmentState::Open | SegmentState::Sealed))
            .fold((0, 0), |(small, all), m| {
                (small + usize::from(!m.main), all + 1)
            });
        if small * 100 > in_use * SMALL_SHARE_PERCENT {
            self.oldest_small(segs, buckets, pin)
                .or_else(|| self.main_run(segs, buckets, pin))
        } else {
            self.main_run(segs, buckets, pin)
                .or_else(|| self.oldest_small(segs, buckets, pin))
        }
    }
}

impl S3Fifo {
    /// The oldest sealed small segment, of any bucket.
    fn oldest_small(&self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Run> {
        let mut best: Option<(usize, u32)> = None;
        for b in 0..BUCKETS {
            let first = buckets.chain(b, segs).find(|&id| {
                let m = segs.meta(id);
                !m.main && m.state == SegmentState::Sealed && Some(id) != pin
            });
            if let Some(id) = first {
                if best
                    .is_none_or(|(_, other)| segs.meta(id).created_at < segs.meta(other).created_at)
                {
                    best = Some((b, id));
                }
            }
        }
        best.map(|(b, id)| {
            let mut run = [0; MERGE_SEGMENTS];
            run[0] = id;
            (b, run, 1, Retain::Promoted)
        })
    }

    /// The oldest sealed main segments (two or more) of the next bucket
    /// that has them, round robin.
    fn main_run(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Run> {
        for i in 0..BUCKETS {
            let b = (self.cursor + i) % BUCKETS;
            let mut run = [0; MERGE_SEGMENTS];
            let mut n = 0;
            for id in buckets.chain(b, segs) {
                let m = segs.meta(id);
                if !m.main || m.state != SegmentState::Sealed || Some(id) == pin {
                    continue;
                }
                run[n] = id;
                n += 1;
                if n == MERGE_SEGMENTS {
                    break;
                }
            }
            if n >= 2 {
                self.cursor = (b + 1) % BUCKETS;
                return Some((b, run, n, Retain::Frequent));
            }
        }
        None
    }
}

/// The lowest estimate to keep so that what is kept fits in `capacity`
/// bytes: the most frequent items first, never below [`FLOOR`]. When even
/// the most frequent do not all fit, [`MAX_COUNT`]: the merge keeps them in
/// run order until its destinations are full.
pub fn threshold(bytes: &Histogram, capacity: usize) -> u8 {
    let mut kept = 0usize;
    let mut t = MAX_COUNT;
    loop {
        kept += bytes[usize::from(t)];
        if kept > capacity {
            return (t + 1).min(MAX_COUNT);
        }
        if t == FLOOR {
            return FLOOR;
        }
        t -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_frequent_that_fit_never_one_offs() {
        let mut h: Histogram = [0; 16];
        h[1] = 1000;
        h[2] = 100;
        h[5] = 100;
        h[9] = 100;
        // Room for everything seen twice or more.
        assert_eq!(threshold(&h, 10_000), FLOOR);
        // Room for 250 bytes: the 9s and 5s.
        assert_eq!(threshold(&h, 250), 3);
        assert_eq!(threshold(&h, 200), 3);
        assert_eq!(threshold(&h, 199), 6);
        // Not even the most frequent fit.
        h[15] = 500;
        assert_eq!(threshold(&h, 100), MAX_COUNT);
    }
}
