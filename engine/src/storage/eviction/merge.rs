//! Segcache's merge: fold the oldest segments of one TTL bucket into one,
//! keeping items read since the last pass (a segment-level second chance)
//! and dropping the rest; FIFO when no run can be merged. [`Merging`]
//! carries out any merging policy (this one and [`super::s3fifo`]) given
//! its [`RunChoice`]; its state: the segment it merges into (held back from
//! allocation) and the last merge's part-full destination.

use super::{pick_fifo, MergeOutcome, Picker, Policy, Retain, Victim, MERGE_SEGMENTS};
use crate::storage::segment::{SegmentState, Segments};
use crate::storage::ttl::{TtlBuckets, BUCKETS};

/// A run to merge: its bucket, its segments (oldest first, `len` of
/// them), and which items survive.
pub type Run = (usize, [u32; MERGE_SEGMENTS], usize, Retain);

/// How a merging policy chooses its next run; [`Merging`] does the rest.
pub trait RunChoice {
    /// The policy it carries out.
    fn policy(&self) -> Policy;

    /// The next run to merge (never one holding `pin`), or `None` to fall
    /// back to dropping the oldest segment.
    fn choose(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Run>;
}

/// A merging picker (`merge`, `s3fifo`): its run choice, and what it keeps
/// between merges — the segment held back as the next destination and the
/// last merge's part-full destination.
pub struct Merging<C> {
    choice: C,
    /// The reserved destination (`None` when none could be reserved).
    spare: Option<u32>,
    /// The last merge's part-full destination and its generation (to tell
    /// whether it has since been evicted and reused).
    partial: Option<(u32, u16)>,
}

impl<C> Merging<C> {
    /// A picker choosing runs with `choice`, nothing reserved yet.
    pub fn new(choice: C) -> Merging<C> {
        Merging {
            choice,
            spare: None,
            partial: None,
        }
    }
}

impl<C: RunChoice> Picker for Merging<C> {
    fn policy(&self) -> Policy {
        self.choice.policy()
    }

    fn reserve(&mut self, segs: &mut Segments) {
        self.spare = segs.alloc_last(SegmentState::Spare, 0, 0);
    }

    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Victim> {
        let run = if self.spare.is_some() {
            self.choice.choose(segs, buckets, pin)
        } else {
            None
        };
        let (Some((bucket, run, len, retain)), Some(into)) = (run, self.spare) else {
            return pick_fifo(segs, buckets, pin).map(Victim::Segment);
        };
        self.spare = None;
        // The part-full destination, if it is still what it was and not in
        // the run.
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

/// Segcache's run choice: the next bucket (round robin) with two or more
/// sealed segments at its front.
#[derive(Default)]
pub struct Merge {
    /// The bucket to look at first next time.
    cursor: usize,
}

impl RunChoice for Merge {
    fn policy(&self) -> Policy {
        Policy::Merge
    }

    fn choose(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Run> {
        let (bucket, run, len) = pick_merge_run(segs, buckets, pin, self.cursor)?;
        self.cursor = (bucket + 1) % BUCKETS;
        Some((bucket, run, len, Retain::Accessed))
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
