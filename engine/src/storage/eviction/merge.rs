//! Segcache's merge: fold the oldest segments of one TTL bucket into one,
//! keeping items read since the last pass (a segment-level second chance)
//! and dropping the rest; FIFO when no run can be merged. Its state: the
//! segment it merges into (held back from allocation) and the bucket it
//! looks at next, and the last merge's part-full destination.

use super::{pick_fifo, MergeOutcome, Picker, Policy, Retain, Victim, MERGE_SEGMENTS};
use crate::storage::segment::{SegmentState, Segments};
use crate::storage::ttl::{TtlBuckets, BUCKETS};

/// What a merging picker keeps between merges: the segment held back as
/// the next destination, and the last merge's part-full destination.
/// Shared by [`Merge`] and [`super::s3fifo::S3Fifo`].
#[derive(Default)]
pub struct MergeSlots {
    /// The reserved destination (`None` when none could be reserved).
    spare: Option<u32>,
    /// The last merge's part-full destination and its generation (to tell
    /// whether it has since been evicted and reused).
    partial: Option<(u32, u16)>,
}

impl MergeSlots {
    /// Holds a free segment back as the first destination.
    pub fn reserve(&mut self, segs: &mut Segments) {
        self.spare = segs.alloc(SegmentState::Spare, 0, 0);
    }

    /// Whether a merge can start (a destination is reserved).
    pub fn ready(&self) -> bool {
        self.spare.is_some()
    }

    /// A merge of `run[..len]` in `bucket`, taking the reserved segment
    /// and the part-full one if it is still what it was and not in the
    /// run. `None` when nothing is reserved.
    pub fn merge(
        &mut self,
        segs: &Segments,
        (bucket, run, len): (usize, [u32; MERGE_SEGMENTS], usize),
        retain: Retain,
    ) -> Option<Victim> {
        let into = self.spare.take()?;
        let partial = self.partial.take().and_then(|(id, generation)| {
            let meta = segs.meta(id);
            (meta.generation == generation
                && meta.state == SegmentState::Sealed
                && usize::from(meta.bucket) == bucket
                && !run[..len].contains(&id))
            .then_some(id)
        });
        Some(Victim::Merge {
            bucket,
            run,
            len,
            into,
            partial,
            retain,
        })
    }

    /// After a merge: the segment it left empty, or one of the freed
    /// segments, becomes the next destination.
    pub fn merged(&mut self, segs: &mut Segments, now: u32, outcome: MergeOutcome) {
        self.spare = outcome
            .leftover
            .or_else(|| segs.alloc(SegmentState::Spare, now, 0));
        self.partial = outcome.partial.map(|id| (id, segs.meta(id).generation));
    }

    /// The reserved segment, for a warm restart.
    pub fn saved(&self) -> Option<u32> {
        self.spare
    }

    /// Takes the reserved segment back after a warm restart.
    pub fn restore(&mut self, reserved: Option<u32>) {
        self.spare = reserved;
    }
}

/// The merge picker.
#[derive(Default)]
pub struct Merge {
    /// Its destinations.
    slots: MergeSlots,
    /// The bucket to look at first next time (round robin).
    cursor: usize,
}

impl Picker for Merge {
    fn policy(&self) -> Policy {
        Policy::Merge
    }

    fn reserve(&mut self, segs: &mut Segments) {
        self.slots.reserve(segs);
    }

    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Victim> {
        if self.slots.ready() {
            if let Some(run) = pick_merge_run(segs, buckets, pin, self.cursor) {
                self.cursor = (run.0 + 1) % BUCKETS;
                return self.slots.merge(segs, run, Retain::Accessed);
            }
        }
        pick_fifo(segs, buckets, pin).map(Victim::Segment)
    }

    fn merged(&mut self, segs: &mut Segments, now: u32, outcome: MergeOutcome) {
        self.slots.merged(segs, now, outcome);
    }

    fn saved(&self) -> (u64, Option<u32>) {
        (0, self.slots.saved())
    }

    fn restore(&mut self, _rng: u64, reserved: Option<u32>) {
        self.slots.restore(reserved);
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
