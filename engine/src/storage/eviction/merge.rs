//! Segcache's merge: fold the oldest segments of one TTL bucket into one,
//! keeping items read since the last pass (a segment-level second chance)
//! and dropping the rest; FIFO when no run can be merged. Best hit ratio on
//! skewed traffic. Its state: the segment it merges into (held back from
//! allocation) and the bucket it looks at next.

use super::{pick_fifo, Picker, Policy, Victim, MERGE_SEGMENTS};
use crate::storage::segment::{SegmentState, Segments, NONE};
use crate::storage::ttl::{TtlBuckets, BUCKETS};

/// The merge picker.
pub struct Merge {
    /// The reserved destination (`NONE` when none could be reserved).
    spare: u32,
    /// The bucket to look at first next time (round robin).
    cursor: usize,
}

impl Default for Merge {
    fn default() -> Self {
        Merge {
            spare: NONE,
            cursor: 0,
        }
    }
}

impl Picker for Merge {
    fn policy(&self) -> Policy {
        Policy::Merge
    }

    fn reserve(&mut self, segs: &mut Segments) {
        self.spare = segs.alloc(SegmentState::Spare, 0, 0).unwrap_or(NONE);
    }

    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: u32) -> Option<Victim> {
        if self.spare != NONE {
            if let Some((bucket, run, len)) = pick_merge_run(segs, buckets, pin, self.cursor) {
                self.cursor = (bucket + 1) % BUCKETS;
                let into = std::mem::replace(&mut self.spare, NONE);
                return Some(Victim::Merge {
                    bucket,
                    run,
                    len,
                    into,
                });
            }
        }
        pick_fifo(segs, buckets, pin).map(Victim::Segment)
    }

    fn merged(&mut self, segs: &mut Segments, now: u32) {
        // One of the freed segments becomes the next destination.
        self.spare = segs.alloc(SegmentState::Spare, now, 0).unwrap_or(NONE);
    }

    fn saved(&self) -> (u64, u32) {
        (0, self.spare)
    }

    fn restore(&mut self, _rng: u64, reserved: u32) {
        self.spare = reserved;
    }
}

/// A run of at least two sealed segments at the front of one bucket, the
/// next such bucket after `cursor` (round robin, so every bucket ages).
pub fn pick_merge_run(
    segs: &Segments,
    buckets: &TtlBuckets,
    pin: u32,
    cursor: usize,
) -> Option<(usize, [u32; MERGE_SEGMENTS], usize)> {
    for i in 0..BUCKETS {
        let b = (cursor + i) % BUCKETS;
        let mut run = [NONE; MERGE_SEGMENTS];
        let mut n = 0;
        for id in buckets.chain(b, segs).take(MERGE_SEGMENTS) {
            if id == pin || segs.meta(id).state != SegmentState::Sealed {
                break;
            }
            run[n] = id;
            n += 1;
        }
        if n >= 2 {
            return Some((b, run, n));
        }
    }
    None
}
