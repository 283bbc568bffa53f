//! The index grows piece by piece under churn, and nothing it returns is
//! ever stale.

use std::collections::HashMap;

use super::*;

const T0: u32 = 1_700_000_000;

/// Rounds of inserts (each growing the pieces), overwrites, deletes and
/// expiries: after each, every index entry points at a live item with its
/// key (the invariant check), and every key reads back as the model says
/// or, evicted, not at all — never a deleted, expired or overwritten value.
#[test]
fn churn_through_growth_steps_never_returns_a_stale_value() {
    let mut s = Shard::new(&ShardConfig {
        memory_bytes: 4 << 20,
        segment_size: 64 << 10,
        eviction: Policy::S3Fifo,
        restart: None,
        index_pieces: Some(2),
    })
    .unwrap();
    let mut now = T0;
    s.set_time(now);
    let mut model: HashMap<String, (String, u32)> = HashMap::new();
    let mut capacities = Vec::new();
    for round in 0..12u32 {
        let base = 1usize << (round / 2 + 6);
        for i in 0..base * 4 {
            let name = format!("key:{i}");
            let value = format!("{round}:{i}:{}", "v".repeat(i % 50));
            let exptime = if i % 7 == 0 { 2 } else { 0 };
            let r = s.store(
                HashedKey::new(name.as_bytes()),
                value.as_bytes(),
                &StoreRequest::new(StoreMode::Set, 0, exptime),
            );
            assert!(matches!(r, StoreResult::Stored(_)), "{r:?}");
            let expires = if exptime == 0 { 0 } else { now + 2 };
            model.insert(name, (value, expires));
        }
        for i in (0..base * 4).step_by(5) {
            let name = format!("key:{i}");
            s.delete(HashedKey::new(name.as_bytes()), &DeleteOptions::default());
            model.remove(&name);
        }
        now += 3;
        s.set_time(now);
        s.check_invariants().unwrap();
        for (name, (value, expires)) in &model {
            let got = s
                .read(HashedKey::new(name.as_bytes()), &ReadOptions::get(true))
                .map(|hit| hit.item);
            if *expires != 0 && *expires <= now {
                assert!(got.is_none(), "{name} served after expiry");
            } else if let Some(item) = got {
                assert_eq!(item.value, value.as_bytes(), "{name}");
            }
        }
        model.retain(|_, (_, e)| *e == 0 || *e > now);
        capacities.push(s.index_shape().0);
    }
    // The pieces grew step by step: several distinct capacities.
    capacities.dedup();
    assert!(capacities.len() >= 4, "{capacities:?}");
}
