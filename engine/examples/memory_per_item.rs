//! Loads N items (24-byte keys, 64-byte values by default) into one shard
//! sized for them and reports resident memory per item, read from
//! /proc/self/status before and after, with the breakdown.
//!
//! ```sh
//! cargo run --release -p segcore-engine --example memory_per_item -- [N] [KEY_LEN] [VALUE_LEN]
//! ```

use segcore_engine::storage::{HashedKey, Policy, Shard, ShardConfig, StoreMode, StoreRequest};

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("number"));
    let n = args.next().unwrap_or(10_000_000);
    let key_len = args.next().unwrap_or(24).clamp(8, 250);
    let value_len = args.next().unwrap_or(64);

    // Room for every item plus 5%: nothing is evicted.
    let item = 12 + key_len + value_len;
    let segment = 1 << 20;
    let memory = ((n * item * 105 / 100) / segment + 2) * segment;
    let config = ShardConfig {
        memory_bytes: memory,
        segment_size: segment,
        eviction: Policy::Fifo,
        restart: None,
        index_pieces: None,
    };
    // Prepare keys outside the measured window: a reused buffer.
    let value = vec![b'v'; value_len];
    let mut key = vec![b'k'; key_len];

    let before = rss_bytes();
    let mut shard = Shard::new(&config).expect("config");
    shard.set_time(1_700_000_000);
    for i in 0..n {
        let digits = format!("{i:020}");
        let d = digits.as_bytes();
        let take = d.len().min(key_len);
        key[key_len - take..].copy_from_slice(&d[d.len() - take..]);
        let r = shard.store(
            HashedKey::new(&key),
            &value,
            &StoreRequest::new(StoreMode::Set, 0, 0),
        );
        assert!(r.is_stored(), "item {i}: {r:?}");
    }
    let after = rss_bytes();

    let stats = *shard.stats();
    assert_eq!(stats.curr_items as usize, n, "nothing may be evicted");
    let resident = (after - before) as f64 / n as f64;
    let payload = (key_len + value_len) as f64;
    let index = shard.index_bytes() as f64 / n as f64;
    let items = stats.bytes as f64 / n as f64;
    println!("items                 {n}");
    println!("key + value           {payload:.1} B");
    println!("item (header incl.)   {items:.1} B");
    println!(
        "index per item        {index:.1} B  (capacity {} keys)",
        shard.index_shape().0
    );
    println!(
        "metadata per item     {:.1} B  (header + index)",
        items - payload + index
    );
    println!(
        "resident per item     {resident:.1} B  (overhead {:.1} B over key + value)",
        resident - payload
    );
}
