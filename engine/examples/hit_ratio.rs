//! Hit ratio of each eviction policy on a Zipf trace with cache-aside
//! (get; on a miss, set): 20M requests over 2M keys (24-byte keys, 64-byte
//! values), memory for about 20% of the keys. One shard, one thread.
//!
//! ```sh
//! cargo run --release -p segcore-engine --example hit_ratio -- [REQUESTS] [KEYS] [ALPHA] [MEMORY_FRACTION]
//! ```

use segcore_engine::storage::{
    HashedKey, Policy, ReadOptions, Shard, ShardConfig, StoreMode, StoreRequest,
};

/// Zipf(alpha) over ranks 0..n by inverse CDF: a table of cumulative
/// weights and a binary search per draw.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, alpha: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for rank in 1..=n {
            sum += 1.0 / (rank as f64).powf(alpha);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, uniform: f64) -> usize {
        self.cdf
            .partition_point(|&c| c < uniform)
            .min(self.cdf.len() - 1)
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn main() {
    let mut args = std::env::args().skip(1);
    let requests: usize = args
        .next()
        .map_or(20_000_000, |a| a.parse().expect("requests"));
    let keys: usize = args.next().map_or(2_000_000, |a| a.parse().expect("keys"));
    let alpha: f64 = args.next().map_or(0.99, |a| a.parse().expect("alpha"));
    let fraction: f64 = args.next().map_or(0.2, |a| a.parse().expect("fraction"));

    let item = 12 + 24 + 64;
    let memory = (keys as f64 * fraction * item as f64) as usize;
    let zipf = Zipf::new(keys, alpha);
    // One trace for every policy.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let trace: Vec<u32> = (0..requests)
        .map(|_| {
            let u = (xorshift(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
            // Scatter ranks over the key space so hot keys are not adjacent.
            ((zipf.sample(u) as u64 * 2_654_435_761) % keys as u64) as u32
        })
        .collect();
    println!(
        "zipf alpha {alpha}, {requests} requests, {keys} keys, memory {} MiB ({:.0}% of the key space)",
        memory >> 20,
        fraction * 100.0
    );
    println!("| policy | hit ratio | evicted segments | merges |");
    println!("|---|---|---|---|");
    let value = [b'v'; 64];
    for policy in Policy::ALL {
        let mut shard = Shard::new(&ShardConfig {
            memory_bytes: memory,
            segment_size: 1 << 20,
            eviction: policy,
            restart: None,
            index_pieces: None,
        })
        .expect("config");
        shard.set_time(1_700_000_000);
        let mut hits = 0u64;
        let mut key = *b"key:00000000000000000000";
        for &id in &trace {
            let digits = format!("{id:020}");
            key[4..].copy_from_slice(digits.as_bytes());
            let k = HashedKey::new(&key);
            if shard
                .read(k, &ReadOptions::get(true))
                .map(|hit| hit.item)
                .is_some()
            {
                hits += 1;
            } else {
                shard.store(k, &value, &StoreRequest::new(StoreMode::Set, 0, 0));
            }
        }
        let stats = shard.stats();
        println!(
            "| {} | {:.4} | {} | {} |",
            policy.name(),
            hits as f64 / requests as f64,
            stats.evicted_segments,
            stats.merges
        );
    }
}
