//! Which segment goes when a shard is full.
//!
//! Eviction works on whole segments: the victim's live items are dropped
//! from the index and the segment is reused. Only the owning core evicts,
//! so no item is ever read while it is being dropped. Strict LRU is out on
//! purpose: keeping a list in access order turns every read into a write.

use super::segment::{SegmentState, Segments, NEVER, NONE};
use super::ttl::{TtlBuckets, BUCKETS};

/// How many adjacent segments one merge pass folds into one.
pub const MERGE_SEGMENTS: usize = 4;

/// The eviction policies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// chance) and dropping the rest. Best hit ratio on skewed traffic.
    #[default]
    Merge,
}

impl Policy {
    /// Every policy, in the order the command line lists them.
    pub const ALL: [Policy; 4] = [Policy::Fifo, Policy::Random, Policy::Cte, Policy::Merge];

    /// Segments a shard needs at least: one to evict and one to write,
    /// plus the merge destination the `merge` policy holds back.
    pub fn min_segments(self) -> usize {
        match self {
            Policy::Merge => 3,
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
        }
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

fn evictable(segs: &Segments, id: u32, pin: u32) -> bool {
    id != pin
        && matches!(
            segs.meta(id).state,
            SegmentState::Open | SegmentState::Sealed
        )
}

/// The oldest evictable segment at the front of each bucket, reduced by
/// `better(candidate, best)`.
fn pick_among_heads(
    segs: &Segments,
    buckets: &TtlBuckets,
    pin: u32,
    better: impl Fn(u32, u32) -> bool,
) -> Option<u32> {
    let mut best = NONE;
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
        if best == NONE || better(id, best) {
            best = id;
        }
    }
    (best != NONE).then_some(best)
}

/// The oldest segment (never `pin`).
pub fn pick_fifo(segs: &Segments, buckets: &TtlBuckets, pin: u32) -> Option<u32> {
    pick_among_heads(segs, buckets, pin, |a, b| {
        segs.meta(a).created_at < segs.meta(b).created_at
    })
}

/// The segment whose items all expire soonest; FIFO when none will expire.
pub fn pick_cte(segs: &Segments, buckets: &TtlBuckets, pin: u32) -> Option<u32> {
    pick_among_heads(segs, buckets, pin, |a, b| {
        let (ea, eb) = (segs.meta(a).max_expire, segs.meta(b).max_expire);
        ea < eb || (ea == eb && segs.meta(a).created_at < segs.meta(b).created_at)
    })
    .filter(|&id| segs.meta(id).max_expire != NEVER)
    .or_else(|| pick_fifo(segs, buckets, pin))
}

/// A uniformly random segment in use; FIFO if random draws keep missing.
pub fn pick_random(segs: &Segments, buckets: &TtlBuckets, pin: u32, rng: &mut u64) -> Option<u32> {
    for _ in 0..64 {
        let id = (next_random(rng) % segs.count() as u64) as u32;
        if evictable(segs, id, pin) {
            return Some(id);
        }
    }
    pick_fifo(segs, buckets, pin)
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

/// xorshift64*: eviction needs a cheap, seedable, allocation-free source.
pub fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(created: &[(usize, u32, u32)]) -> (Segments, TtlBuckets, Vec<u32>) {
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
        let (segs, buckets, ids) =
            setup(&[(3, 50, NEVER), (7, 10, NEVER), (7, 60, NEVER), (1, 30, 99)]);
        assert_eq!(pick_fifo(&segs, &buckets, NONE), Some(ids[1]));
        // Pinned: the next oldest in that bucket or elsewhere.
        assert_eq!(pick_fifo(&segs, &buckets, ids[1]), Some(ids[3]));
    }

    #[test]
    fn cte_takes_the_soonest_to_expire() {
        let (segs, buckets, ids) = setup(&[(3, 50, 500), (7, 10, NEVER), (1, 30, 200)]);
        assert_eq!(pick_cte(&segs, &buckets, NONE), Some(ids[2]));
        let (segs, buckets, ids) = setup(&[(1023, 50, NEVER), (1023, 10, NEVER)]);
        assert_eq!(
            pick_cte(&segs, &buckets, NONE),
            Some(ids[0]),
            "falls back to FIFO"
        );
    }

    #[test]
    fn random_only_picks_segments_in_use() {
        let (segs, buckets, ids) = setup(&[(2, 1, NEVER), (2, 2, NEVER)]);
        let mut rng = 42;
        for _ in 0..100 {
            let id = pick_random(&segs, &buckets, ids[0], &mut rng).unwrap();
            assert_eq!(id, ids[1]);
        }
    }

    #[test]
    fn merge_runs_need_two_sealed_segments() {
        let (mut segs, buckets, ids) = setup(&[(4, 1, 9), (5, 1, 9), (5, 2, 9), (5, 3, 9)]);
        let (b, run, n) = pick_merge_run(&segs, &buckets, NONE, 0).unwrap();
        assert_eq!((b, n), (5, 3));
        assert_eq!(&run[..n], &ids[1..4]);
        segs.meta_mut(ids[2]).state = SegmentState::Open;
        assert_eq!(pick_merge_run(&segs, &buckets, NONE, 0), None);
    }

    #[test]
    fn policy_names_round_trip() {
        for p in [Policy::Fifo, Policy::Random, Policy::Cte, Policy::Merge] {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
        }
        assert!("lru".parse::<Policy>().is_err());
    }
}
