//! Shard operation micro-benchmarks: get hit, get miss, set of a 64-byte
//! value, a 90:10 get:set mix, and sets into a full shard (eviction on the
//! write path), each per operation, hashing included.
//!
//! Keys are 24 bytes, stored contiguously (as they would sit in a
//! connection's read buffer), visited with a large stride so consecutive
//! operations touch unrelated memory. The index is sized for the items
//! loaded, as in a full shard. Two working sets: 10k items (about 1 MB of
//! items, mostly cache-resident) and 100k items (about 10 MB: a lookup
//! misses the private caches in the index slot and again in the item).
//!
//! Targets on the 2-vCPU dev machine: get hit under 100 ns, set under 150 ns.

use criterion::{black_box, criterion_main, Criterion, Throughput};
use segcore_engine::storage::{
    HashedKey, Policy, ReadOptions, Shard, ShardConfig, StoreMode, StoreRequest,
};

const KEYS: usize = 100_000;
const T0: u32 = 1_700_000_000;

/// `n` 24-byte keys in one buffer.
struct Keys(Vec<u8>);

impl Keys {
    fn new(prefix: &str, n: usize) -> Keys {
        let mut buf = Vec::with_capacity(n * 24);
        for i in 0..n {
            let key = format!("{prefix}{i:0width$}", width = 24 - prefix.len());
            buf.extend_from_slice(key.as_bytes());
        }
        Keys(buf)
    }

    fn len(&self) -> usize {
        self.0.len() / 24
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.0[i * 24..i * 24 + 24]
    }
}

fn loaded(policy: Policy, memory: usize, keys: &Keys) -> Shard {
    let mut shard = Shard::new(&ShardConfig {
        memory_bytes: memory,
        eviction: policy,
        index_pieces: None,
        ..ShardConfig::default()
    })
    .expect("config");
    shard.set_time(T0);
    let value = [b'v'; 64];
    for i in 0..keys.len() {
        shard.store(
            HashedKey::new(keys.get(i)),
            &value,
            &StoreRequest::new(StoreMode::Set, 0, 0),
        );
    }
    shard
}

fn ops(c: &mut Criterion) {
    let value = [b'v'; 64];
    let mut group = c.benchmark_group("shard");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;

    for n in [10_000, KEYS] {
        let keys = Keys::new("key:", n);
        let misses = Keys::new("miss:", n);
        let mut shard = loaded(Policy::Merge, 64 << 20, &keys);
        group.bench_function(format!("get_hit_{}k", n / 1000), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                let hit = shard
                    .read(HashedKey::new(keys.get(i)), &ReadOptions::get(true))
                    .map(|hit| hit.item);
                black_box(hit.map(|v| v.value.len()))
            })
        });
        group.bench_function(format!("get_miss_{}k", n / 1000), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(
                    shard
                        .read(HashedKey::new(misses.get(i)), &ReadOptions::get(true))
                        .map(|hit| hit.item)
                        .is_none(),
                )
            })
        });
        group.bench_function(format!("set_64b_{}k", n / 1000), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                let req = StoreRequest::new(StoreMode::Set, 0, 0);
                black_box(shard.store(HashedKey::new(keys.get(i)), &value, &req))
            })
        });
        group.bench_function(format!("mix_90_get_10_set_{}k", n / 1000), |b| {
            let mut ops = 0u32;
            b.iter(|| {
                i = (i + 7919) % n;
                ops = ops.wrapping_add(1);
                let key = HashedKey::new(keys.get(i));
                if ops.is_multiple_of(10) {
                    let req = StoreRequest::new(StoreMode::Set, 0, 0);
                    black_box(shard.store(key, &value, &req).is_stored());
                } else {
                    black_box(
                        shard
                            .read(key, &ReadOptions::get(true))
                            .map(|hit| hit.item)
                            .is_some(),
                    );
                }
            })
        });
    }

    // A shard that holds about a quarter of the keys: sets keep evicting,
    // so eviction's cost is spread over the writes.
    let keys = Keys::new("key:", KEYS);
    for policy in [Policy::Fifo, Policy::Merge] {
        let mut full = loaded(policy, 4 << 20, &keys);
        group.bench_function(format!("set_64b_evicting_{}", policy.name()), |b| {
            b.iter(|| {
                i = (i + 7919) % KEYS;
                let req = StoreRequest::new(StoreMode::Set, 0, 0);
                black_box(full.store(HashedKey::new(keys.get(i)), &value, &req))
            })
        });
    }
    group.bench_function("hash_key_24b", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            black_box(HashedKey::new(keys.get(i)))
        })
    });
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::ops);
}
criterion_main!(harness::benches);
