//! Segcache's merge: fold the oldest segments of one TTL bucket into one,
//! keeping items read since the last pass (a segment-level second chance)
//! and dropping the rest; FIFO when no run can be merged. Best hit ratio on
//! skewed traffic. Its state: the segment it merges into (held back from
//! allocation) and the bucket it looks at next.

use super::{pick_fifo, Picker, Policy, Victim, MERGE_SEGMENTS};
use crate::storage::segment::{SegmentState, Segments};
use crate::storage::ttl::{TtlBuckets, BUCKETS};

/// The merge picker.
#[derive(Default)]
pub struct Merge {
    /// The reserved destination (`None` when none could be reserved).
    spare: Option<u32>,
    /// The bucket to look at first next time (round robin).
    cursor: usize,
}

impl Picker for Merge {
    fn policy(&self) -> Policy {
        Policy::Merge
    }

    fn reserve(&mut self, segs: &mut Segments) {
        self.spare = segs.alloc(SegmentState::Spare, 0, 0);
    }

    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Victim> {
        if let Some(into) = self.spare {
            if let Some((bucket, run, len)) = pick_merge_run(segs, buckets, pin, self.cursor) {
                self.cursor = (bucket + 1) % BUCKETS;
                self.spare = None;
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
        self.spare = segs.alloc(SegmentState::Spare, now, 0);
    }

    fn saved(&self) -> (u64, Option<u32>) {
        (0, self.spare)
    }

    fn restore(&mut self, _rng: u64, reserved: Option<u32>) {
        self.spare = reserved;
    }
}

/// A run of at least two sealed segments at the front of one bucket, the
/// next such bucket after `cursor` (round robin, so every bucket ages).
pub fn pick_merge_run(
    segs: &Segments,
    buckets: &TtlBuckets,
    pin: Option<u32>,
    cursor: usize,
) -> Option<(usize, [u32; MERGE_SEGMENTS], usize)> {
    for i in 0..BUCKETS {
        let b = (cursor + i) % BUCKETS;
        let mut run = [0; MERGE_SEGMENTS];
        let mut n = 0;
        for id in buckets.chain(b, segs).take(MERGE_SEGMENTS) {
            if Some(id) == pin || segs.meta(id).state != SegmentState::Sealed {
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
