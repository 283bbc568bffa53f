//! Model-based test: random operation sequences against a small shard (so it
//! evicts constantly) and a plain HashMap. The shard may forget keys, but
//! whatever it returns must be exactly the model's current value, and its
//! invariants must hold after every step. With a memory file, the shard is
//! also stopped and warm-restarted at random points, and must go on
//! matching the model. `Grow` steps store bursts of fresh keys, so the
//! index's pieces grow (rehash) in between the other operations.

use std::collections::HashMap;

use proptest::prelude::*;
use segcore_engine::storage::{
    ArithRequest, ArithResult, DeleteOptions, DeleteResult, HashedKey, Policy, ReadOptions,
    RestartFile, Shard, ShardConfig, StoreMode, StoreRequest, StoreResult,
};

const T0: u32 = 1_700_000_000;

#[derive(Clone, Debug)]
enum Op {
    Store(usize, u8, Vec<u8>, u32, i64),
    Cas(usize, Vec<u8>, bool),
    Get(usize),
    Delete(usize),
    Arith(usize, bool, u64),
    SetNumber(usize, u64),
    Touch(usize, i64),
    Advance(u32),
    Flush,
    ExpireStep,
    /// Graceful stop and warm restart (a no-op without a memory file).
    Restart,
    /// Stores this many fresh keys whose value is their own name: index
    /// growth in the middle of everything else.
    Grow(u16),
}

fn grow_key(n: u32) -> Vec<u8> {
    format!("grow-{n}").into_bytes()
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..24usize;
    let value = prop::collection::vec(any::<u8>(), 0..600);
    let exptime = prop_oneof![4 => Just(0i64), 2 => 1..6i64, 1 => Just(-1i64)];
    prop_oneof![
        6 => (key.clone(), 0..5u8, value.clone(), any::<u32>(), exptime.clone())
            .prop_map(|(k, m, v, f, e)| Op::Store(k, m, v, f, e)),
        2 => (key.clone(), value, any::<bool>()).prop_map(|(k, v, ok)| Op::Cas(k, v, ok)),
        6 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Delete),
        2 => (key.clone(), any::<bool>(), any::<u64>()).prop_map(|(k, i, d)| Op::Arith(k, i, d)),
        1 => (key.clone(), any::<u64>()).prop_map(|(k, n)| Op::SetNumber(k, n)),
        1 => (key, exptime).prop_map(|(k, e)| Op::Touch(k, e)),
        1 => (0..4u32).prop_map(Op::Advance),
        1 => Just(Op::Flush),
        1 => Just(Op::ExpireStep),
        1 => Just(Op::Restart),
        1 => (1..400u16).prop_map(Op::Grow),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    expire_at: u32,
}

fn expire_at(exptime: i64, now: u32) -> Option<u32> {
    match exptime {
        0 => Some(0),
        e if e < 0 => None,
        e => Some(now + e as u32),
    }
}

/// A memory file for one test case, removed with its metadata afterwards.
struct MemoryFile(std::path::PathBuf);

impl MemoryFile {
    fn new() -> MemoryFile {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        MemoryFile(std::env::temp_dir().join(format!("segcore-model-{}-{n}", std::process::id())))
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut meta = self.0.clone().into_os_string();
        meta.push(".meta");
        let _ = std::fs::remove_file(meta);
    }
}

fn run_with(policy: Policy, ops: Vec<Op>, file: Option<&MemoryFile>) -> Result<(), TestCaseError> {
    let config = ShardConfig {
        memory_bytes: 48 << 10,
        segment_size: 4096,
        eviction: policy,
        restart: file.map(|f| RestartFile {
            path: f.0.clone(),
            layout_tag: 1,
            run: 1,
            core: 0,
            cores: 1,
            restore_run: None,
        }),
        index_pieces: Some(2),
    };
    let mut shard = Shard::new(&config).expect("valid config");
    let mut now = T0;
    shard.set_time(now);
    let mut model: HashMap<Vec<u8>, Entry> = HashMap::new();
    let names: Vec<Vec<u8>> = (0..24).map(|i| format!("key-{i}").into_bytes()).collect();
    let mut grown = 0u32;

    for op in ops {
        match op {
            Op::Store(k, mode, value, flags, exptime) => {
                let key = &names[k];
                let mode = [
                    StoreMode::Set,
                    StoreMode::Add,
                    StoreMode::Replace,
                    StoreMode::Append,
                    StoreMode::Prepend,
                ][usize::from(mode)];
                let req = StoreRequest::new(mode, flags, exptime);
                let result = shard.store(HashedKey::new(key), &value, &req);
                match result {
                    StoreResult::Stored(_) => {
                        let new = match mode {
                            StoreMode::Append | StoreMode::Prepend => {
                                let old = model.get(key).cloned();
                                prop_assert!(old.is_some(), "{mode:?} stored without a value");
                                let old = old.unwrap();
                                let mut v = old.value.clone();
                                if mode == StoreMode::Append {
                                    v.extend_from_slice(&value);
                                } else {
                                    v.splice(0..0, value.iter().copied());
                                }
                                Some(Entry { value: v, ..old })
                            }
                            _ => expire_at(exptime, now).map(|e| Entry {
                                value: value.clone(),
                                flags,
                                expire_at: e,
                            }),
                        };
                        match new {
                            Some(entry) => model.insert(key.clone(), entry),
                            None => model.remove(key),
                        };
                    }
                    StoreResult::NotStored => match mode {
                        // The shard holds it: the model must agree it exists
                        // (or the shard would have stored).
                        StoreMode::Add => {}
                        _ => {
                            model.remove(key);
                        }
                    },
                    StoreResult::OutOfMemory | StoreResult::TooLarge => {
                        model.remove(key);
                    }
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            Op::Cas(k, value, correct) => {
                let key = &names[k];
                let current = shard
                    .read(HashedKey::new(key), &ReadOptions::get(true))
                    .map(|hit| hit.item)
                    .map(|v| v.cas);
                let Some(cas) = current else {
                    model.remove(key);
                    continue;
                };
                let mut req = StoreRequest::new(StoreMode::Set, 7, 0);
                req.compare_cas = Some(if correct { cas } else { cas ^ 1 });
                match shard.store(HashedKey::new(key), &value, &req) {
                    StoreResult::Stored(_) => {
                        prop_assert!(correct);
                        model.insert(
                            key.clone(),
                            Entry {
                                value,
                                flags: 7,
                                expire_at: 0,
                            },
                        );
                    }
                    StoreResult::Exists => prop_assert!(!correct),
                    StoreResult::OutOfMemory | StoreResult::NotFound => {
                        model.remove(key);
                    }
                    other => prop_assert!(false, "unexpected {other:?}"),
                }
            }
            Op::Get(k) => {
                let key = &names[k];
                match shard
                    .read(HashedKey::new(key), &ReadOptions::get(true))
                    .map(|hit| hit.item)
                {
                    Some(item) => {
                        let expected = model.get(key);
                        prop_assert!(expected.is_some(), "shard returned a value the model lacks");
                        let expected = expected.unwrap();
                        prop_assert_eq!(item.value, &expected.value[..]);
                        prop_assert_eq!(item.flags, expected.flags);
                        prop_assert_eq!(item.key, &key[..]);
                    }
                    None => {
                        model.remove(key);
                    }
                }
            }
            Op::Delete(k) => {
                let key = &names[k];
                match shard.delete(HashedKey::new(key), &DeleteOptions::default()) {
                    DeleteResult::Deleted => prop_assert!(model.remove(key).is_some()),
                    _ => {
                        model.remove(key);
                    }
                }
            }
            Op::Arith(k, incr, delta) => {
                let key = &names[k];
                let req = ArithRequest {
                    incr,
                    delta,
                    ..ArithRequest::default()
                };
                match shard.arith(HashedKey::new(key), &req) {
                    ArithResult::Value { value, .. } => {
                        let entry = model.get_mut(key);
                        prop_assert!(entry.is_some());
                        let entry = entry.unwrap();
                        let old: u64 = std::str::from_utf8(&entry.value)
                            .ok()
                            .and_then(|s| s.trim_end_matches(' ').parse().ok())
                            .expect("model value numeric");
                        let want = if incr {
                            old.wrapping_add(delta)
                        } else {
                            old.saturating_sub(delta)
                        };
                        prop_assert_eq!(value, want);
                        // A shorter number keeps the old length, space-padded.
                        let old_len = entry.value.len();
                        let mut text = value.to_string().into_bytes();
                        if text.len() < old_len {
                            text.resize(old_len, b' ');
                        }
                        entry.value = text;
                    }
                    ArithResult::NonNumeric => {
                        if let Some(entry) = model.get(key) {
                            let numeric = std::str::from_utf8(&entry.value).ok().is_some_and(|s| {
                                let s = s.trim_end_matches(' ');
                                !s.is_empty()
                                    && s.len() <= 20
                                    && s.bytes().all(|b| b.is_ascii_digit())
                                    && s.parse::<u64>().is_ok()
                            });
                            prop_assert!(!numeric, "numeric value refused: {:?}", entry.value);
                        }
                    }
                    _ => {
                        model.remove(key);
                    }
                }
            }
            Op::SetNumber(k, n) => {
                let key = &names[k];
                let text = n.to_string();
                if let StoreResult::Stored(_) = shard.store(
                    HashedKey::new(key),
                    text.as_bytes(),
                    &StoreRequest::new(StoreMode::Set, 0, 0),
                ) {
                    model.insert(
                        key.clone(),
                        Entry {
                            value: text.into_bytes(),
                            flags: 0,
                            expire_at: 0,
                        },
                    );
                } else {
                    model.remove(key);
                }
            }
            Op::Touch(k, exptime) => {
                let key = &names[k];
                if shard.touch(HashedKey::new(key), exptime) {
                    prop_assert!(model.contains_key(key));
                    match expire_at(exptime, now) {
                        Some(e) => model.get_mut(key).unwrap().expire_at = e,
                        None => {
                            model.remove(key);
                        }
                    }
                } else {
                    model.remove(key);
                }
            }
            Op::Advance(secs) => {
                now += secs;
                shard.set_time(now);
                model.retain(|_, e| e.expire_at == 0 || e.expire_at > now);
            }
            Op::Flush => {
                shard.flush_all(None);
                model.clear();
            }
            Op::ExpireStep => {
                shard.expire_step(4);
            }
            Op::Grow(count) => {
                for n in grown..grown + u32::from(count) {
                    let key = grow_key(n);
                    let req = StoreRequest::new(StoreMode::Set, 0, 0);
                    shard.store(HashedKey::new(&key), &key, &req);
                }
                grown += u32::from(count);
                // Every grow key is missing or holds its own name, never
                // another key's value.
                for n in 0..grown {
                    let key = grow_key(n);
                    if let Some(item) = shard
                        .read(HashedKey::new(&key), &ReadOptions::get(true))
                        .map(|hit| hit.item)
                    {
                        prop_assert_eq!(item.value, &key[..]);
                    }
                }
            }
            Op::Restart if file.is_some() => {
                let grown_held = (0..grown)
                    .filter(|&n| {
                        shard
                            .read(HashedKey::new(&grow_key(n)), &ReadOptions::get(true))
                            .map(|hit| hit.item)
                            .is_some()
                    })
                    .count() as u64;
                let held: Vec<(usize, Vec<u8>)> = (0..names.len())
                    .filter_map(|k| {
                        shard
                            .read(HashedKey::new(&names[k]), &ReadOptions::get(true))
                            .map(|hit| hit.item)
                            .map(|item| (k, item.value.to_vec()))
                    })
                    .collect();
                shard.save(&config).expect("save");
                drop(shard);
                shard = Shard::new(&config).expect("valid config");
                shard.set_time(now);
                let restored = shard.restore(&config).map(|r| r.items);
                prop_assert_eq!(restored, Ok(held.len() as u64 + grown_held));
                // Everything held before the stop is back, unchanged.
                for (k, value) in held {
                    let item = shard
                        .read(HashedKey::new(&names[k]), &ReadOptions::get(true))
                        .map(|hit| hit.item);
                    prop_assert_eq!(item.map(|i| i.value.to_vec()), Some(value));
                }
            }
            Op::Restart => {}
        }
        if let Err(e) = shard.check_invariants() {
            prop_assert!(false, "invariant: {e}");
        }
    }
    // Nothing the model says expired may still be served.
    for key in &names {
        if let Some(item) = shard
            .read(HashedKey::new(key), &ReadOptions::get(true))
            .map(|hit| hit.item)
        {
            let entry = model.get(key);
            prop_assert!(entry.is_some());
            prop_assert_eq!(item.value, &entry.unwrap().value[..]);
        }
    }
    prop_assert!(shard.segment_counts().0 == 12, "memory is fixed");
    Ok(())
}

proptest! {
    // As many cases as the eight policy-by-policy properties these
    // replaced, over every policy (Policy::ALL, so a new one is covered at
    // once); two properties so they run in parallel.
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_policy_matches_the_model(
        policy in prop::sample::select(Policy::ALL.to_vec()),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        run_with(policy, ops, None)?;
    }

    #[test]
    fn every_policy_matches_the_model_across_warm_restarts(
        policy in prop::sample::select(Policy::ALL.to_vec()),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        run_with(policy, ops, Some(&MemoryFile::new()))?;
    }
}
