//! Which segment goes when a shard is full.
//!
//! Eviction works on whole segments: the victim's live items are dropped
//! from the index and the segment is reused. Only the owning core evicts,
//! so no item is ever read while it is being dropped. Strict LRU is out on
//! purpose: keeping a list in access order turns every read into a write.
//!
//! Each policy is a [`Picker`] in a file of its own ([`fifo`], [`random`],
//! [`cte`], [`merge`], [`s3fifo`]) holding its own state; the shard asks it for a
//! [`Victim`] and carries the eviction out. Adding a policy: a variant of
//! [`Policy`] (name, minimum segments), a file with its picker, and an arm
//! in [`picker`].

pub mod cte;
pub mod fifo;
pub mod merge;
pub mod random;
pub mod s3fifo;

use super::segment::{SegmentState, Segments};
use super::ttl::{TtlBuckets, BUCKETS};

pub use fifo::pick_fifo;

/// How many adjacent segments one merge pass folds into one.
pub const MERGE_SEGMENTS: usize = 4;

/// The eviction policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The oldest segment, by creation time: cheap and scan-resistant enough
    /// for uniform traffic.
    Fifo,
    /// A uniformly random segment: no ordering state at all.
    Random,
    /// The segment closest to expiring: loses the least remaining lifetime.
    Cte,
    /// Segcache's merge: fold the oldest segments of one TTL bucket into
    /// one, keeping items read since the last pass (a segment-level second
    /// chance) and dropping the rest.
    Merge,
    /// S3-FIFO over segments: new items in a small probationary FIFO,
    /// promoted into the main FIFO when read again or remembered by the
    /// shard's access sketch; main keeps its most frequent items when it
    /// merges. Frequency-aware and scan-resistant.
    S3Fifo,
}

impl Policy {
    /// The policy a server runs unless told otherwise.
    /// S3-FIFO: the best hit ratio measured on every stream of
    /// `scripts/bench/bench-policies.sh`, at no throughput cost (docs/benchmarks.md).
    pub const DEFAULT: Policy = Policy::S3Fifo;

    /// Every policy, in the order the command line lists them.
    pub const ALL: [Policy; 5] = [
        Policy::Fifo,
        Policy::Random,
        Policy::Cte,
        Policy::Merge,
        Policy::S3Fifo,
    ];

    /// Segments a shard needs at least: one to evict and one to write,
    /// plus the merge destination the `merge` policy holds back.
    pub fn min_segments(self) -> usize {
        match self {
            Policy::Merge | Policy::S3Fifo => 3,
            Policy::Fifo | Policy::Random | Policy::Cte => 2,
        }
    }

    /// The name used on the command line and in `stats settings`.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Fifo => "fifo",
            Policy::Random => "random",
            Policy::Cte => "cte",
            Policy::Merge => "merge",
            Policy::S3Fifo => "s3fifo",
        }
    }

    /// Whether the shard keeps an access sketch for it.
    pub fn counts_frequency(self) -> bool {
        self == Policy::S3Fifo
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Policy::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown eviction policy {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Which items a merge keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retain {
    /// Items read since the last pass (second chance), into the one
    /// reserved segment.
    Accessed,
    /// The most often asked-for items, by the access sketch, into up to
    /// all but one of the run's segments (main FIFO of [`s3fifo`]).
    Frequent,
    /// Items read since written or seen twice by the sketch, promoted
    /// into main (small FIFO of [`s3fifo`]).
    Promoted,
}

impl Retain {
    /// Destination segments a merge of `run` segments may fill: the rest
    /// of the run is freed.
    pub fn destinations(self, run: usize) -> usize {
        match self {
            Retain::Accessed | Retain::Promoted => 1,
            Retain::Frequent => run.saturating_sub(1).max(1),
        }
    }
}

/// What a merge left behind for the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// A destination it did not write to (state `Spare`): the next
    /// reserved segment.
    pub leftover: Option<u32>,
    /// Its last destination, sealed in the bucket with room left.
    pub partial: Option<u32>,
}

/// What to evict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    /// Drop this segment and every live item in it.
    Segment(u32),
    /// Fold these sealed segments of `bucket` into the reserved segment
    /// `into` (and, as `retain` allows, into the run's own segments as they
    /// empty), keeping the items `retain` picks.
    Merge {
        /// The TTL bucket of the run.
        bucket: usize,
        /// The run, oldest first (`len` of them).
        run: [u32; MERGE_SEGMENTS],
        /// Segments in the run.
        len: usize,
        /// The policy's reserved segment, the first destination to open.
        into: u32,
        /// A sealed segment of the bucket that the last merge left part
        /// full: filled first, so merges leave no half-empty segments.
        partial: Option<u32>,
        /// Which items survive.
        retain: Retain,
    },
}

/// An eviction policy with its state: single-writer (the owning core), no
/// allocation after it is built.
pub trait Picker {
    /// The policy it carries out.
    fn policy(&self) -> Policy;

    /// Sets aside what the policy keeps out of circulation, on a new or
    /// reset shard (the merge policy's destination segment).
    fn reserve(&mut self, _segs: &mut Segments) {}

    /// The next victim, never `pin` (a segment being copied from).
    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Victim>;

    /// A [`Victim::Merge`] was carried out: reserve the next destination.
    fn merged(&mut self, segs: &mut Segments, now: u32, outcome: MergeOutcome) {
        if let Some(id) = outcome.leftover {
            segs.release(id);
        }
        let _ = now;
    }

    /// What a warm restart saves: (random state, reserved segment).
    fn saved(&self) -> (u64, Option<u32>) {
        (0, None)
    }

    /// Takes back what [`Picker::saved`] gave (the reserved segment is
    /// checked by the caller).
    fn restore(&mut self, _rng: u64, _reserved: Option<u32>) {}
}

/// The picker for `policy`, with its state fresh.
pub fn picker(policy: Policy) -> Box<dyn Picker> {
    match policy {
        Policy::Fifo => Box::new(fifo::Fifo),
        Policy::Random => Box::new(random::Random::default()),
        Policy::Cte => Box::new(cte::Cte),
        Policy::Merge => Box::new(merge::Merging::new(merge::Merge::default())),
        Policy::S3Fifo => Box::new(merge::Merging::new(s3fifo::S3Fifo::default())),
    }
}

pub(crate) fn evictable(segs: &Segments, id: u32, pin: Option<u32>) -> bool {
    Some(id) != pin
        && matches!(
            segs.meta(id).state,
            SegmentState::Open | SegmentState::Sealed
        )
}

/// The oldest evictable segment at the front of each bucket, reduced by
/// `better(candidate, best)`.
pub(crate) fn pick_among_heads(
    segs: &Segments,
    buckets: &TtlBuckets,
    pin: Option<u32>,
    better: impl Fn(u32, u32) -> bool,
) -> Option<u32> {
    let mut best: Option<u32> = None;
    for b in 0..BUCKETS {
        // The pinned segment may head its bucket; then its successor is the
        // oldest candidate there.
        let Some(id) = buckets
            .chain(b, segs)
            .take(2)
            .find(|&id| evictable(segs, id, pin))
        else {
            continue;
        };
        if best.is_none_or(|b| better(id, b)) {
            best = Some(id);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::cte::pick_cte;
    use super::merge::pick_merge_run;
    use super::random::pick_random;
    use super::*;
    use crate::storage::segment::ExpiryBound;

    const NEVER: ExpiryBound = ExpiryBound::NEVER;
    const fn at(secs: u32) -> ExpiryBound {
        ExpiryBound::at(secs)
    }

    fn setup(created: &[(usize, u32, ExpiryBound)]) -> (Segments, TtlBuckets, Vec<u32>) {
        let mut segs = Segments::new(created.len() + 1, 64).unwrap();
        let mut buckets = TtlBuckets::default();
        let mut ids = Vec::new();
        for &(bucket, created_at, max_expire) in created {
            let id = segs
                .alloc(SegmentState::Sealed, created_at, bucket as u16)
                .unwrap();
            segs.meta_mut(id).max_expire = max_expire;
            buckets.push_back(bucket, id, &mut segs);
            ids.push(id);
        }
        (segs, buckets, ids)
    }

    #[test]
    fn fifo_takes_the_oldest_head() {
        let (segs, buckets, ids) = setup(&[
            (3, 50, NEVER),
            (7, 10, NEVER),
            (7, 60, NEVER),
            (1, 30, at(99)),
        ]);
        assert_eq!(pick_fifo(&segs, &buckets, None), Some(ids[1]));
        // Pinned: the next oldest in that bucket or elsewhere.
        assert_eq!(pick_fifo(&segs, &buckets, Some(ids[1])), Some(ids[3]));
    }

    #[test]
    fn cte_takes_the_soonest_to_expire() {
        let (segs, buckets, ids) = setup(&[(3, 50, at(500)), (7, 10, NEVER), (1, 30, at(200))]);
        assert_eq!(pick_cte(&segs, &buckets, None), Some(ids[2]));
        let (segs, buckets, ids) = setup(&[(1023, 50, NEVER), (1023, 10, NEVER)]);
        assert_eq!(
            pick_cte(&segs, &buckets, None),
            Some(ids[0]),
            "falls back to FIFO"
        );
    }

    #[test]
    fn random_only_picks_segments_in_use() {
        let (segs, buckets, ids) = setup(&[(2, 1, NEVER), (2, 2, NEVER)]);
        let mut rng = 42;
        for _ in 0..100 {
            let id = pick_random(&segs, &buckets, Some(ids[0]), &mut rng).unwrap();
            assert_eq!(id, ids[1]);
        }
    }

    #[test]
    fn merge_runs_need_two_sealed_segments() {
        let (mut segs, buckets, ids) =
            setup(&[(4, 1, at(9)), (5, 1, at(9)), (5, 2, at(9)), (5, 3, at(9))]);
        let (b, run, n) = pick_merge_run(&segs, &buckets, None, 0).unwrap();
        assert_eq!((b, n), (5, 3));
        assert_eq!(&run[..n], &ids[1..4]);
        segs.meta_mut(ids[2]).state = SegmentState::Open;
        assert_eq!(pick_merge_run(&segs, &buckets, None, 0), None);
    }

    #[test]
    fn the_merge_picker_merges_into_its_reserved_segment_then_reserves_another() {
        let (mut segs, buckets, ids) = setup(&[(5, 1, at(9)), (5, 2, at(9)), (5, 3, at(9))]);
        let mut picker = picker(Policy::Merge);
        assert_eq!(picker.saved().1, None, "nothing reserved before reserve()");
        picker.reserve(&mut segs);
        let spare = picker.saved().1.expect("reserved");
        match picker.pick(&segs, &buckets, None) {
            Some(Victim::Merge {
                bucket,
                len,
                into,
                retain,
                ..
            }) => assert_eq!((bucket, len, into, retain), (5, 3, spare, Retain::Accessed)),
            other => panic!("{other:?}"),
        }
        // Until the merge is done, nothing is reserved: the next pick falls
        // back to FIFO.
        assert_eq!(
            picker.pick(&segs, &buckets, None),
            Some(Victim::Segment(ids[0]))
        );
        segs.release(ids[0]);
        picker.merged(&mut segs, 10, MergeOutcome::default());
        assert!(picker.saved().1.is_some());
        // The other policies drop one segment at a time.
        let (segs, buckets, _) = setup(&[(5, 1, at(9)), (5, 2, at(9))]);
        for policy in [Policy::Fifo, Policy::Cte, Policy::Random] {
            let mut p = super::picker(policy);
            assert_eq!(p.policy(), policy);
            assert!(matches!(
                p.pick(&segs, &buckets, None),
                Some(Victim::Segment(_))
            ));
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
        }
        assert!("lru".parse::<Policy>().is_err());
    }
}
