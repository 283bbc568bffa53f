//! Segcache's merge: fold the oldest segments of one TTL bucket into one,
//! keeping items read since the last pass (a segment-level second chance)
//! and dropping the rest; FIFO when no run can be merged. Its state: the
//! segment it merges into (held back from allocation) and the bucket it
//! looks at next, and the last merge's part-full destination.

use super::{pick_fifo, MergeOutcome, Picker, Policy, Retain, Victim, MERGE_SEGMENTS};
use crate::storage::segment::{SegmentState, Segments};
use crate::storage::ttl::{TtlBuckets, BUCKETS};

/// The merge picker.
#[derive(Default)]
pub struct Merge {
    /// The reserved destination (`None` when none could be reserved).
    spare: Option<u32>,
    /// The bucket to look at first next time (round robin).
    cursor: usize,
    /// The last merge's part-full destination and its generation (to tell
    /// whether it has since been evicted and reused).
    partial: Option<(u32, u16)>,
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
                let partial = self.partial.take().and_then(|(id, generation)| {
                    let meta = segs.meta(id);
                    (meta.generation == generation
                        && meta.state == SegmentState::Sealed
                        && usize::from(meta.bucket) == bucket
                        && !run[..len].contains(&id))
                    .then_some(id)
                });
                return Some(Victim::Merge {
                    bucket,
                    run,
                    len,
                    into,
                    partial,
                    retain: Retain::Accessed,
                });
            }
        }
        pick_fifo(segs, buckets, pin).map(Victim::Segment)
    }

    fn merged(&mut self, segs: &mut Segments, now: u32, outcome: MergeOutcome) {
        // The segment the merge left empty, or one of the freed segments,
        // becomes the next destination.
        self.spare = outcome
            .leftover
            .or_else(|| segs.alloc(SegmentState::Spare, now, 0));
        self.partial = outcome.partial.map(|id| (id, segs.meta(id).generation));
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
