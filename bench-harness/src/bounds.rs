//! The `bounds` mode: what a cache of a given number of items could reach
//! on the stream `hit-ratio` replays, computed without a server, so a
//! policy's figure can be read against what is possible.
//!
//! The stream is independent draws from a fixed Zipf distribution (the
//! independent reference model). For such a stream the best any cache that
//! fetches on a miss can do, in expectation, is to hold the most popular
//! keys it has seen so far (Aho, Denning and Ullman's A0, which knows
//! every key's probability); LRU and a cache of the K most popular keys
//! filled on first request are printed beside it, and the K most popular
//! keys' share of requests (what a cache preloaded with them would score).

use crate::modes::HIT_RATIO_SEED;
use crate::workload::{KeyChooser, KeyPattern, Rng};

/// Arguments of `bounds`.
#[derive(clap::Args, Debug)]
pub struct BoundsArgs {
    /// Distinct keys in the stream.
    #[arg(long, default_value_t = 2_000_000)]
    pub keys: u64,
    /// Key distribution (Zipf only).
    #[arg(long, default_value = "zipf:0.99")]
    pub key_pattern: String,
    /// Items the cache holds.
    #[arg(long)]
    pub capacity: u64,
    /// Gets counted.
    #[arg(long, default_value_t = 20_000_000)]
    pub requests: u64,
    /// Gets drawn first and not counted (as `hit-ratio --warmup`).
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
}

/// Hit ratios over the counted gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// A0: the `capacity` most popular keys seen so far.
    pub a0: f64,
    /// Least recently used.
    pub lru: f64,
    /// The `capacity` most popular keys, each cached from its first request.
    pub top_on_demand: f64,
    /// The `capacity` most popular keys' share of requests.
    pub top_share: f64,
}

impl std::fmt::Display for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bounds: A0 (most popular keys seen) {:.4}, LRU {:.4}, \
             most popular keys cached on first request {:.4}; their share of requests {:.4}",
            self.a0, self.lru, self.top_on_demand, self.top_share
        )
    }
}

/// Counts over positions, with prefix sums (a Fenwick tree).
struct Counts(Vec<i64>);

impl Counts {
    fn new(len: usize) -> Counts {
        Counts(vec![0; len + 1])
    }

    fn add(&mut self, at: usize, delta: i64) {
        let mut i = at + 1;
        while i < self.0.len() {
            self.0[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum over positions below `end`.
    fn below(&self, end: usize) -> i64 {
        let (mut i, mut sum) = (end, 0);
        while i > 0 {
            sum += self.0[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }
}

/// The bounds for `args` on the stream `hit-ratio` replays (same seed and
/// draws; one get per draw, strictly in order).
pub fn compute(args: &BoundsArgs) -> Result<Bounds, String> {
    let KeyPattern::Zipf(alpha) = args.key_pattern.parse::<KeyPattern>()? else {
        return Err("bounds needs a zipf key pattern".into());
    };
    let keys = args.keys.max(1) as usize;
    let capacity = args.capacity as usize;
    let chooser = KeyChooser::new(keys as u64, KeyPattern::Zipf(alpha));
    let mut rng = Rng::new(HIT_RATIO_SEED);
    let total = (args.warmup + args.requests) as usize;
    // Seen keys by rank (A0); each key's latest request by time (LRU).
    let mut seen_ranks = Counts::new(keys);
    let mut latest = Counts::new(total);
    let mut last_seen = vec![usize::MAX; keys];
    let mut distinct = 0i64;
    let (mut a0, mut lru, mut top) = (0u64, 0u64, 0u64);
    for t in 0..total {
        let rank = chooser.zipf_rank(&mut rng) as usize;
        let counted = t >= args.warmup as usize;
        let before = last_seen[rank];
        if before == usize::MAX {
            distinct += 1;
            seen_ranks.add(rank, 1);
        } else {
            // A0 holds a seen key while fewer than `capacity` seen keys
            // are more popular; LRU while fewer than `capacity` other keys
            // were asked for since.
            let more_popular = seen_ranks.below(rank) as usize;
            let since = (distinct - latest.below(before + 1)) as usize;
            if counted {
                a0 += u64::from(more_popular < capacity);
                lru += u64::from(since < capacity);
                top += u64::from(rank < capacity);
            }
            latest.add(before, -1);
        }
        latest.add(t, 1);
        last_seen[rank] = t;
    }
    let gets = args.requests.max(1) as f64;
    Ok(Bounds {
        a0: a0 as f64 / gets,
        lru: lru as f64 / gets,
        top_on_demand: top as f64 / gets,
        top_share: chooser.top_share(capacity),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(keys: u64, capacity: u64, requests: u64) -> BoundsArgs {
        BoundsArgs {
            keys,
            key_pattern: "zipf:0.99".into(),
            capacity,
            requests,
            warmup: 0,
        }
    }

    /// A cache as large as the key space misses only each key's first
    /// request, whatever the policy.
    #[test]
    fn room_for_every_key_misses_only_first_requests() {
        let b = compute(&args(50, 50, 10_000)).unwrap();
        assert!(b.a0 > 0.99 && b.a0 < 1.0, "{b:?}");
        assert_eq!(b.a0, b.lru);
        assert_eq!(b.a0, b.top_on_demand);
        assert!((b.top_share - 1.0).abs() < 1e-9);
    }

    /// A0 hits wherever the popular-keys cache does (and more), beats LRU
    /// on a skewed stream, and stays below the preloaded cache's share.
    #[test]
    fn a0_bounds_the_others() {
        let b = compute(&args(10_000, 1_000, 400_000)).unwrap();
        assert!(b.a0 >= b.top_on_demand, "{b:?}");
        assert!(b.a0 > b.lru + 0.02, "{b:?}");
        assert!(b.a0 < b.top_share, "{b:?}");
        assert!(b.lru > 0.5, "{b:?}");
    }
}
