//! How long one store can stall while the index grows: stores N items
//! (24-byte keys, 64-byte values) into one shard with a 4 GiB budget,
//! timing every store, and reports the slowest — with the index in pieces
//! as the server builds it, and, for contrast, as one table
//! (`--one-table`), whose doublings move every entry at once.
//!
//! Two passes: the first also faults in segment memory (first touches of
//! huge pages, slow on a VM); then `flush_all` empties the index (its
//! pieces start over from nothing) and the second pass, over memory already
//! resident, times the index's growth alone.
//!
//! ```sh
//! cargo run --release -p segcore-engine --example index_growth -- [N] [--one-table]
//! ```

use std::time::Instant;

use segcore_engine::storage::{HashedKey, Policy, Shard, ShardConfig, StoreMode, StoreRequest};

/// Stores items `0..n`; returns every store's time and the slowest store
/// that grew a piece, with how many did.
fn fill(shard: &mut Shard, n: usize) -> (Vec<u32>, u64, u32) {
    let value = vec![b'v'; 64];
    let mut key = vec![b'k'; 24];
    let mut times_ns: Vec<u32> = Vec::with_capacity(n);
    let (mut growths, mut slowest_growth) = (0u64, 0u32);

    let mut grown = shard.index_growths();
    for i in 0..n {
        let digits = format!("{i:020}");
        key[4..].copy_from_slice(digits.as_bytes());
        let start = Instant::now();
        let r = shard.store(
            HashedKey::new(&key),
            &value,
            &StoreRequest::new(StoreMode::Set, 0, 0),
        );
        let took = start.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32;
        times_ns.push(took);
        assert!(r.is_stored(), "item {i}: {r:?}");
        if shard.index_growths() != grown {
            grown = shard.index_growths();
            growths += 1;
            slowest_growth = slowest_growth.max(took);
        }
    }
    (times_ns, growths, slowest_growth)
}

fn report(pass: &str, (mut times, growths, slowest): (Vec<u32>, u64, u32)) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let over = times.iter().filter(|&&t| t > 1_000_000).count();
    println!(
        "{pass}: store p50 {} ns, p99 {} ns, p99.99 {} ns, max {:.3} ms, {over} over 1 ms; \
         {growths} stores grew a piece, the slowest {:.3} ms",
        at(0.5),
        at(0.99),
        at(0.9999),
        f64::from(*times.last().unwrap_or(&0)) / 1e6,
        f64::from(slowest) / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let one_table = args.iter().any(|a| a == "--one-table");
    let config = ShardConfig {
        memory_bytes: 4 << 30,
        segment_size: 1 << 20,
        eviction: Policy::Fifo,
        restart: None,
        index_pieces: one_table.then_some(1),
    };
    // As the server does (see its doc for why).
    segcore_engine::storage::tune_malloc();
    let mut shard = Shard::new(&config).expect("config");
    shard.set_time(1_700_000_000);
    let first = fill(&mut shard, n);
    let (_, largest, pieces) = shard.index_shape();
    println!(
        "{n} items, index in {pieces} piece(s), largest {largest} entries, {} MiB",
        shard.index_bytes() >> 20
    );
    report("first fill (segment memory faulted in too)", first);
    shard.flush_all(None);
    report("second fill (index growth alone)", fill(&mut shard, n));
}
