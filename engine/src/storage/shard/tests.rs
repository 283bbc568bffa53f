//! Shard behaviour against memcached's rules, with a hand-moved clock.

use super::*;

const T0: u32 = 1_700_000_000;

/// A meta get's read: shows the cas, may take the recache token.
const META: ReadOptions = ReadOptions {
    takes_token: true,
    ..ReadOptions::get(true)
};

pub(super) fn shard_with(policy: Policy, memory: usize, segment: usize) -> Shard {
    let mut shard = Shard::new(&ShardConfig {
        memory_bytes: memory,
        segment_size: segment,
        eviction: policy,
        restart: None,
        index_pieces: Some(4),
    })
    .unwrap();
    shard.set_time(T0);
    shard
}

fn shard() -> Shard {
    shard_with(Policy::Merge, 1 << 20, 64 << 10)
}

fn k(key: &str) -> HashedKey<'_> {
    HashedKey::new(key.as_bytes())
}

fn set(shard: &mut Shard, key: &str, value: &str, exptime: i64) -> StoreResult {
    shard.store(
        k(key),
        value.as_bytes(),
        &StoreRequest::new(StoreMode::Set, 0, exptime),
    )
}

fn value(shard: &mut Shard, key: &str) -> Option<String> {
    shard
        .read(k(key), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .map(|v| String::from_utf8(v.value.to_vec()).unwrap())
}

fn cas(shard: &mut Shard, key: &str) -> u64 {
    shard
        .read(k(key), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .unwrap()
        .cas
}

#[test]
fn set_get_and_flags() {
    let mut s = shard();
    assert!(matches!(set(&mut s, "a", "1", 0), StoreResult::Stored(_)));
    assert_eq!(value(&mut s, "a").as_deref(), Some("1"));
    assert_eq!(value(&mut s, "b"), None);
    s.store(
        k("f"),
        b"x",
        &StoreRequest::new(StoreMode::Set, 0xdead_beef, 0),
    );
    let v = s
        .read(k("f"), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .unwrap();
    assert_eq!(
        (v.key, v.value, v.flags),
        (&b"f"[..], &b"x"[..], 0xdead_beef)
    );
    // Overwrite replaces value and flags.
    set(&mut s, "f", "yy", 0);
    let v = s
        .read(k("f"), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .unwrap();
    assert_eq!((v.value, v.flags), (&b"yy"[..], 0));
    assert_eq!(s.stats().curr_items, 2);
    assert_eq!((s.stats().get_hits, s.stats().get_misses), (3, 1));
    s.check_invariants().unwrap();
}

#[test]
fn storage_conditions() {
    let mut s = shard();
    let add = |s: &mut Shard, key: &str, v: &str| {
        s.store(
            k(key),
            v.as_bytes(),
            &StoreRequest::new(StoreMode::Add, 0, 0),
        )
    };
    let replace = |s: &mut Shard, key: &str, v: &str| {
        s.store(
            k(key),
            v.as_bytes(),
            &StoreRequest::new(StoreMode::Replace, 0, 0),
        )
    };
    assert!(matches!(add(&mut s, "a", "1"), StoreResult::Stored(_)));
    assert_eq!(add(&mut s, "a", "2"), StoreResult::NotStored);
    assert_eq!(value(&mut s, "a").as_deref(), Some("1"));
    assert_eq!(replace(&mut s, "b", "1"), StoreResult::NotStored);
    assert!(matches!(replace(&mut s, "a", "3"), StoreResult::Stored(_)));
    assert_eq!(value(&mut s, "a").as_deref(), Some("3"));

    let append = StoreRequest::new(StoreMode::Append, 99, 5);
    let prepend = StoreRequest::new(StoreMode::Prepend, 99, 5);
    assert_eq!(s.store(k("none"), b"<", &append), StoreResult::NotStored);
    s.store(k("c"), b"mid", &StoreRequest::new(StoreMode::Set, 7, 0));
    assert!(matches!(
        s.store(k("c"), b"<", &append),
        StoreResult::Stored(_)
    ));
    assert!(matches!(
        s.store(k("c"), b">", &prepend),
        StoreResult::Stored(_)
    ));
    let v = s
        .read(k("c"), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .unwrap();
    // Append and prepend keep the item's flags and expiry.
    assert_eq!((v.value, v.flags, v.expire_at), (&b">mid<"[..], 7, 0));
    s.check_invariants().unwrap();
}

/// memcached's store rules for a cas beside a mode (do_store_item, checked
/// against 1.6.18 and 1.6.38): 0 compares nothing for append/prepend and
/// fails a set; add ignores it; append/prepend of a missing key is not
/// stored whatever the cas; invalidate stores stale only under an older,
/// nonzero cas.
#[test]
fn a_cas_beside_a_mode_follows_memcached() {
    let mut s = shard();
    let with = |mode, cas: u64| {
        let mut req = StoreRequest::new(mode, 0, 0);
        req.compare_cas = Some(cas);
        req
    };
    set(&mut s, "x", "v", 0);
    let current = cas(&mut s, "x");
    assert!(matches!(
        s.store(k("x"), b"+", &with(StoreMode::Append, 0)),
        StoreResult::Stored(_)
    ));
    let current_after = cas(&mut s, "x");
    assert_ne!(current, current_after);
    assert_eq!(
        s.store(k("x"), b"+", &with(StoreMode::Prepend, current)),
        StoreResult::Exists
    );
    assert!(matches!(
        s.store(k("x"), b"<", &with(StoreMode::Prepend, current_after)),
        StoreResult::Stored(_)
    ));
    assert_eq!(
        s.store(k("gone"), b"+", &with(StoreMode::Append, 5)),
        StoreResult::NotStored
    );
    assert_eq!(
        s.store(k("x"), b"v", &with(StoreMode::Set, 0)),
        StoreResult::Exists
    );
    assert_eq!(
        s.store(k("x"), b"v", &with(StoreMode::Add, 0)),
        StoreResult::NotStored
    );
    assert!(matches!(
        s.store(k("new"), b"v", &with(StoreMode::Add, 7)),
        StoreResult::Stored(_)
    ));
    let mut stale = with(StoreMode::Set, 0);
    stale.invalidate = true;
    assert_eq!(s.store(k("x"), b"v", &stale), StoreResult::Exists);
    stale.compare_cas = Some(1);
    assert!(matches!(
        s.store(k("x"), b"s", &stale),
        StoreResult::Stored(_)
    ));
    let meta = ReadOptions {
        takes_token: true,
        ..ReadOptions::get(true)
    };
    let hit = s.read(k("x"), &meta).unwrap();
    assert!(
        hit.facts.stale,
        "an older cas under invalidate stores stale"
    );
    s.check_invariants().unwrap();
}

#[test]
fn cas_semantics() {
    let mut s = shard();
    let mut req = StoreRequest::new(StoreMode::Set, 0, 0);
    req.compare_cas = Some(1);
    assert_eq!(s.store(k("a"), b"v", &req), StoreResult::NotFound);
    set(&mut s, "a", "1", 0);
    let c1 = cas(&mut s, "a");
    assert_ne!(c1, 0);
    req.compare_cas = Some(c1 + 1);
    assert_eq!(s.store(k("a"), b"v", &req), StoreResult::Exists);
    req.compare_cas = Some(c1);
    let StoreResult::Stored(c2) = s.store(k("a"), b"v", &req) else {
        panic!()
    };
    assert_ne!(c1, c2);
    assert_eq!(cas(&mut s, "a"), c2);
    // The old cas no longer works.
    assert_eq!(
        s.store(
            k("a"),
            b"v",
            &StoreRequest {
                compare_cas: Some(c1),
                ..req
            }
        ),
        StoreResult::Exists
    );
    let st = s.stats();
    assert_eq!((st.cas_misses, st.cas_badval, st.cas_hits), (1, 2, 1));
    // Every write changes the cas; reads and touches do not.
    let before = cas(&mut s, "a");
    assert!(s.touch(k("a"), 100));
    assert_eq!(cas(&mut s, "a"), before);
    set(&mut s, "a", "1", 0);
    assert_ne!(cas(&mut s, "a"), before);
}

#[test]
fn dead_bytes_follow_overwrites_and_reclaim() {
    let mut s = shard_with(Policy::Fifo, 1 << 20, 4096);
    assert_eq!(s.dead_bytes(), 0);
    set(&mut s, "a", "12345", 0);
    let item = s.stats().bytes;
    set(&mut s, "a", "67890", 0);
    assert_eq!(s.dead_bytes(), item, "the overwritten copy is dead");
    assert_eq!(
        s.delete(k("a"), &DeleteOptions::default()),
        DeleteResult::Deleted
    );
    assert_eq!(s.dead_bytes(), 2 * item);
    s.flush_all(None);
    assert_eq!(s.dead_bytes(), 0, "released segments hold nothing");
}

#[test]
fn delete_and_counters() {
    let mut s = shard();
    assert_eq!(
        s.delete(k("a"), &DeleteOptions::default()),
        DeleteResult::NotFound
    );
    set(&mut s, "a", "1", 0);
    let c = cas(&mut s, "a");
    assert_eq!(
        s.delete(
            k("a"),
            &DeleteOptions {
                compare_cas: Some(c + 1),
                ..DeleteOptions::default()
            }
        ),
        DeleteResult::Exists
    );
    assert_eq!(
        s.delete(
            k("a"),
            &DeleteOptions {
                compare_cas: Some(c),
                ..DeleteOptions::default()
            }
        ),
        DeleteResult::Deleted
    );
    assert_eq!(value(&mut s, "a"), None);
    assert_eq!((s.stats().delete_hits, s.stats().delete_misses), (1, 1));
    assert_eq!(s.stats().curr_items, 0);
    s.check_invariants().unwrap();
}

#[test]
fn incr_decr_follow_memcached() {
    let mut s = shard();
    let incr = |delta| ArithRequest {
        incr: true,
        delta,
        ..ArithRequest::default()
    };
    let decr = |delta| ArithRequest {
        incr: false,
        ..incr(delta)
    };
    assert_eq!(s.arith(k("n"), &incr(1)), ArithResult::NotFound);
    s.store(k("n"), b"10", &StoreRequest::new(StoreMode::Set, 3, 0));
    let value_of = |r: ArithResult| match r {
        ArithResult::Value { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(value_of(s.arith(k("n"), &incr(5))), 15);
    assert_eq!(value_of(s.arith(k("n"), &decr(20))), 0, "decr floors at 0");
    set(&mut s, "n", "18446744073709551615", 0);
    assert_eq!(value_of(s.arith(k("n"), &incr(2))), 1, "incr wraps");
    // The value's length may change; flags survive.
    set(&mut s, "n", "99", 0);
    assert_eq!(value_of(s.arith(k("n"), &incr(1))), 100);
    assert_eq!(value(&mut s, "n").as_deref(), Some("100"));
    // A number that got shorter keeps the value's length, padded with
    // spaces, as memcached leaves it; padded numbers read back.
    set(&mut s, "p", "100", 0);
    assert_eq!(value_of(s.arith(k("p"), &decr(1))), 99);
    assert_eq!(value(&mut s, "p").as_deref(), Some("99 "));
    assert_eq!(value_of(s.arith(k("p"), &incr(1))), 100);
    assert_eq!(value(&mut s, "p").as_deref(), Some("100"));
    set(&mut s, "p", "12  ", 0);
    assert_eq!(value_of(s.arith(k("p"), &incr(1))), 13);
    assert_eq!(value(&mut s, "p").as_deref(), Some("13  "));
    for bad in ["abc", "", "1a", "-1", " 1", "123456789012345678901"] {
        set(&mut s, "x", bad, 0);
        assert_eq!(
            s.arith(k("x"), &incr(1)),
            ArithResult::NonNumeric,
            "{bad:?}"
        );
    }
    // Binary incr creates a missing item with its initial value.
    let create = ArithRequest {
        create: Some((42, 0)),
        ..incr(1)
    };
    assert_eq!(value_of(s.arith(k("new"), &create)), 42);
    assert_eq!(value_of(s.arith(k("new"), &create)), 43);
    let st = s.stats();
    assert_eq!((st.incr_hits, st.decr_hits), (6, 2));
    s.check_invariants().unwrap();
}

#[test]
fn incr_changes_cas() {
    let mut s = shard();
    set(&mut s, "n", "1", 0);
    let before = cas(&mut s, "n");
    let ArithResult::Value { cas: after, .. } = s.arith(
        k("n"),
        &ArithRequest {
            incr: true,
            delta: 1,
            ..Default::default()
        },
    ) else {
        panic!()
    };
    assert_ne!(before, after);
    assert_eq!(cas(&mut s, "n"), after);
}

#[test]
fn ttl_relative_absolute_negative() {
    let mut s = shard();
    set(&mut s, "rel", "v", 10);
    set(&mut s, "abs", "v", i64::from(T0) + 20);
    set(&mut s, "never", "v", 0);
    set(&mut s, "old", "v", 0);
    assert!(matches!(
        set(&mut s, "old", "v", -1),
        StoreResult::Stored(_)
    ));
    assert_eq!(
        value(&mut s, "old"),
        None,
        "negative exptime: stored expired"
    );
    set(&mut s, "past", "v", i64::from(T0) - 5);
    assert_eq!(value(&mut s, "past"), None, "absolute time in the past");

    s.set_time(T0 + 9);
    assert!(value(&mut s, "rel").is_some());
    s.set_time(T0 + 10);
    assert_eq!(
        value(&mut s, "rel"),
        None,
        "exptime 1..=30 days is relative"
    );
    assert!(value(&mut s, "abs").is_some());
    s.set_time(T0 + 20);
    assert_eq!(value(&mut s, "abs"), None);
    s.set_time(T0 + 1_000_000);
    assert!(value(&mut s, "never").is_some());
    assert_eq!(s.stats().get_expired, 2);
    s.check_invariants().unwrap();
}

#[test]
fn thirty_day_boundary() {
    let mut s = shard();
    let month = 60 * 60 * 24 * 30;
    set(&mut s, "rel", "v", month);
    set(&mut s, "abs", "v", month + 1);
    assert!(value(&mut s, "rel").is_some());
    assert_eq!(value(&mut s, "abs"), None, "2592001 is a unix time in 1970");
    s.set_time(T0 + month as u32 - 1);
    assert!(value(&mut s, "rel").is_some());
    s.set_time(T0 + month as u32);
    assert_eq!(value(&mut s, "rel"), None);
}

#[test]
fn touch_extends_and_shortens() {
    let mut s = shard();
    set(&mut s, "a", "v", 10);
    assert!(s.touch(k("a"), 100));
    s.set_time(T0 + 50);
    assert!(value(&mut s, "a").is_some(), "extended");
    assert!(s.touch(k("a"), 5));
    s.set_time(T0 + 55);
    assert_eq!(value(&mut s, "a"), None, "shortened");
    assert!(!s.touch(k("a"), 5));
    set(&mut s, "b", "v", 0);
    assert!(s.touch(k("b"), -1));
    assert_eq!(value(&mut s, "b"), None, "negative touch expires");
    assert_eq!((s.stats().touch_hits, s.stats().touch_misses), (3, 1));
    // gat returns the value and sets the new expiry.
    set(&mut s, "c", "v", 0);
    assert_eq!(
        s.read(k("c"), &ReadOptions::get_and_touch(3, true))
            .map(|hit| hit.item)
            .unwrap()
            .value,
        b"v"
    );
    s.set_time(T0 + 58);
    assert_eq!(value(&mut s, "c"), None);
    assert!(s
        .read(k("c"), &ReadOptions::get_and_touch(3, true))
        .map(|hit| hit.item)
        .is_none());
    s.check_invariants().unwrap();
}

#[test]
fn touched_items_keep_their_segment_alive() {
    let mut s = shard();
    set(&mut s, "short", "v", 5);
    assert!(s.touch(k("short"), 1000));
    s.set_time(T0 + 10);
    // The segment's other items expired long ago, but not this one.
    s.expire_step(usize::MAX);
    assert!(value(&mut s, "short").is_some());
    s.check_invariants().unwrap();
}

#[test]
fn flush_all_now_and_delayed() {
    let mut s = shard();
    set(&mut s, "a", "v", 0);
    set(&mut s, "b", "v", 100);
    s.flush_all(None);
    assert_eq!((value(&mut s, "a"), value(&mut s, "b")), (None, None));
    assert_eq!(s.stats().curr_items, 0);

    set(&mut s, "a", "v", 0);
    s.flush_all(Some(10));
    assert!(value(&mut s, "a").is_some(), "not yet");
    s.set_time(T0 + 5);
    set(&mut s, "b", "v", 0);
    s.set_time(T0 + 9);
    assert_eq!(value(&mut s, "a"), None, "stored before the instant");
    assert_eq!(value(&mut s, "b"), None, "also stored before the instant");
    set(&mut s, "c", "v", 0);
    s.set_time(T0 + 100);
    assert!(value(&mut s, "c").is_some(), "stored after the flush");

    // A later flush_all replaces a pending one.
    s.flush_all(Some(10));
    s.flush_all(Some(1000));
    s.set_time(T0 + 200);
    assert!(value(&mut s, "c").is_some());
    assert_eq!(s.stats().cmd_flush, 4);
    s.check_invariants().unwrap();
}

#[test]
fn expire_step_frees_whole_segments() {
    let mut s = shard_with(Policy::Fifo, 1 << 20, 4096);
    for i in 0..200 {
        set(&mut s, &format!("short{i}"), "xxxxxxxxxxxxxxxxxxxx", 10);
    }
    for i in 0..50 {
        set(&mut s, &format!("long{i}"), "xxxxxxxxxxxxxxxxxxxx", 10_000);
    }
    let (_, free_before, _) = s.segment_counts();
    assert_eq!(s.expire_step(usize::MAX), 0, "nothing expired yet");
    s.set_time(T0 + 10);
    let freed = s.expire_step(usize::MAX);
    assert!(freed >= 2, "freed {freed}");
    let (_, free_after, _) = s.segment_counts();
    assert_eq!(free_after, free_before + freed);
    assert_eq!(s.stats().curr_items, 50);
    assert_eq!(s.stats().reclaimed, 200);
    assert!(value(&mut s, "long3").is_some());
    s.check_invariants().unwrap();
}

#[test]
fn expire_step_respects_its_budget() {
    let mut s = shard_with(Policy::Fifo, 1 << 20, 4096);
    for i in 0..400 {
        set(&mut s, &format!("k{i}"), "xxxxxxxxxxxxxxxxxxxx", 10);
    }
    s.set_time(T0 + 11);
    let mut rounds = 0;
    let mut total = 0;
    loop {
        let freed = s.expire_step(1);
        assert!(freed <= 1);
        total += freed;
        rounds += 1;
        if s.stats().curr_items == 0 {
            break;
        }
        assert!(rounds < 10_000);
    }
    assert!(total >= 3);
    s.check_invariants().unwrap();
}

#[test]
fn too_large_and_set_failure_removes_the_old_value() {
    let mut s = shard_with(Policy::Fifo, 1 << 20, 4096);
    set(&mut s, "big", "small", 0);
    let huge = vec![b'x'; 5000];
    assert_eq!(
        s.store(k("big"), &huge, &StoreRequest::new(StoreMode::Set, 0, 0)),
        StoreResult::TooLarge
    );
    assert_eq!(
        value(&mut s, "big"),
        None,
        "a failed set leaves no stale value"
    );
    let fits = vec![b'x'; 4096 - 12 - 3];
    assert!(matches!(
        s.store(k("fit"), &fits, &StoreRequest::new(StoreMode::Set, 0, 0)),
        StoreResult::Stored(_)
    ));
    s.check_invariants().unwrap();
}

#[test]
fn config_errors() {
    let bad_segment = ShardConfig {
        segment_size: 100,
        ..ShardConfig::default()
    };
    assert!(matches!(
        Shard::new(&bad_segment),
        Err(ConfigError::SegmentSize(100))
    ));
    let small = ShardConfig {
        memory_bytes: 2 << 20,
        segment_size: 1 << 20,
        eviction: Policy::Merge,
        index_pieces: None,
        restart: None,
    };
    let err = Shard::new(&small).err().unwrap();
    assert_eq!(
        err,
        ConfigError::TooLittleMemory {
            segments: 2,
            needed: 3
        }
    );
    assert!(err.to_string().contains("at least 3 are needed"));
    assert_eq!(small.validate(), Err(err));
    assert_eq!(bad_segment.validate(), Err(ConfigError::SegmentSize(100)));
}

// ---- meta ----

#[test]
fn meta_vivify_gives_one_winner() {
    let mut s = shard();
    let opts = ReadOptions {
        vivify: Some(30),
        ..META
    };
    let first = s.read(k("hot"), &opts).unwrap();
    assert!(first.facts.win && !first.facts.win_sent && !first.facts.stale);
    assert_eq!((first.item.value, first.ttl), (&b""[..], 30));
    let second = s.read(k("hot"), &opts).unwrap();
    assert!(!second.facts.win && second.facts.win_sent, "the rest see Z");
    // The winner stores the real value; the token state is gone.
    set(&mut s, "hot", "v", 60);
    let third = s.read(k("hot"), &opts).unwrap();
    assert!(!third.facts.win && !third.facts.win_sent);
    assert_eq!(third.item.value, b"v");
    // Without N a miss is a miss.
    assert!(s.read(k("cold"), &META).is_none());
}

#[test]
fn meta_recache_below_threshold() {
    let mut s = shard();
    set(&mut s, "a", "v", 100);
    let opts = ReadOptions {
        recache: Some(30),
        ..META
    };
    assert!(
        !s.read(k("a"), &opts).unwrap().facts.win,
        "100s left, not below 30"
    );
    s.set_time(T0 + 80);
    let hit = s.read(k("a"), &opts).unwrap();
    assert!(hit.facts.win && hit.ttl == 20);
    let again = s.read(k("a"), &opts).unwrap();
    assert!(!again.facts.win && again.facts.win_sent);
    // Items that never expire never trigger a recache.
    set(&mut s, "forever", "v", 0);
    assert!(!s.read(k("forever"), &opts).unwrap().facts.win);
}

#[test]
fn meta_invalidate_serves_stale_with_one_winner() {
    let mut s = shard();
    set(&mut s, "a", "old", 0);
    let before = cas(&mut s, "a");
    let inval = DeleteOptions {
        invalidate: true,
        ttl: Some(30),
        ..Default::default()
    };
    assert_eq!(s.delete(k("a"), &inval), DeleteResult::Deleted);
    let hit = s.read(k("a"), &META).unwrap();
    assert!(hit.facts.stale && hit.facts.win && !hit.facts.win_sent);
    assert_eq!((hit.item.value, hit.ttl), (&b"old"[..], 30));
    assert_ne!(hit.item.cas, before, "invalidation bumps the cas");
    let stale_cas = hit.item.cas;
    let loser = s.read(k("a"), &META).unwrap();
    assert!(loser.facts.stale && !loser.facts.win && loser.facts.win_sent);
    // A late writer with an older cas stores, but the item stays stale.
    let mut late = StoreRequest::new(StoreMode::Set, 0, 90);
    late.compare_cas = Some(stale_cas - 1);
    late.invalidate = true;
    assert!(matches!(
        s.store(k("a"), b"late", &late),
        StoreResult::Stored(_)
    ));
    let hit = s.read(k("a"), &META).unwrap();
    assert!(hit.facts.stale && hit.facts.win_sent && hit.ttl <= 30);
    // The winner's write (current cas) clears everything.
    let mut fresh = StoreRequest::new(StoreMode::Set, 0, 90);
    fresh.compare_cas = Some(hit.item.cas);
    assert!(matches!(
        s.store(k("a"), b"new", &fresh),
        StoreResult::Stored(_)
    ));
    let hit = s.read(k("a"), &META).unwrap();
    assert!(!hit.facts.stale && !hit.facts.win && !hit.facts.win_sent);
    assert_eq!(hit.item.value, b"new");
}

#[test]
fn meta_get_reports_access_and_touches() {
    let mut s = shard();
    set(&mut s, "a", "v", 0);
    let first = s
        .read(
            k("a"),
            &ReadOptions {
                no_bump: true,
                ..META
            },
        )
        .unwrap();
    assert!(!first.facts.hit_before);
    let second = s.read(k("a"), &META).unwrap();
    assert!(!second.facts.hit_before, "u did not count as a fetch");
    s.set_time(T0 + 300);
    let third = s
        .read(
            k("a"),
            &ReadOptions {
                touch: Some(50),
                ..META
            },
        )
        .unwrap();
    assert!(third.facts.hit_before);
    assert_eq!(third.facts.last_access, 300);
    assert_eq!(third.item.expire_at, T0 + 350);
    let info = s.debug(k("a")).unwrap();
    assert_eq!((info.ttl, info.fetched, info.value_len), (50, true, 1));
}

/// `l` and `la=` count seconds, from the store and then from each read:
/// memcached's metaget.t reads `l` two seconds after a store. A segment a
/// day old still gives the age to within its 16-second step.
#[test]
fn last_access_is_kept_to_the_second() {
    let mut s = shard();
    set(&mut s, "a", "v", 0);
    s.set_time(T0 + 2);
    assert_eq!(s.debug(k("a")).unwrap().last_access, 2);
    let hit = s.read(k("a"), &META).unwrap();
    assert_eq!(hit.facts.last_access, 2);
    s.set_time(T0 + 3);
    let hit = s.read(k("a"), &META).unwrap();
    assert_eq!(hit.facts.last_access, 1, "the read at +2 counted");
    // Reads a day after the segment opened.
    s.set_time(T0 + 86_400 + 5);
    assert!(s
        .read(k("a"), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .is_some());
    s.set_time(T0 + 86_400 + 25);
    let age = s.debug(k("a")).unwrap().last_access;
    assert!((20..20 + 16).contains(&age), "{age}");
}

#[test]
fn merge_keeps_last_access_of_moved_items() {
    let mut s = shard_with(Policy::Merge, 64 << 10, 4096);
    fill(&mut s, 0..10);
    let mut now = T0;
    for _ in 0..3 {
        now += 10;
        s.set_time(now);
        assert!(s
            .read(k("key:3"), &ReadOptions::get(true))
            .map(|hit| hit.item)
            .is_some());
        fill(&mut s, 100..600);
    }
    assert!(s.stats().merge_retained > 0);
    s.set_time(now + 7);
    // Read at `now` and moved by a merge at `now` into a segment opened
    // then: the move re-encodes the access against the new segment (a
    // copied code would read as a time in the future, age 0). An item
    // moved after its last read counts from the move (see `access`).
    assert_eq!(s.debug(k("key:3")).unwrap().last_access, 7);
}

#[test]
fn meta_delete_remove_value_and_explicit_cas() {
    let mut s = shard();
    s.store(k("a"), b"value", &StoreRequest::new(StoreMode::Set, 5, 0));
    let opts = DeleteOptions {
        remove_value: true,
        ..Default::default()
    };
    assert_eq!(s.delete(k("a"), &opts), DeleteResult::Deleted);
    let v = s
        .read(k("a"), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .unwrap();
    assert_eq!((v.value, v.flags), (&b""[..], 5));
    let mut req = StoreRequest::new(StoreMode::Set, 0, 0);
    req.new_cas = Some(12345);
    assert_eq!(s.store(k("e"), b"x", &req), StoreResult::Stored(12345));
    assert_eq!(cas(&mut s, "e"), 12345);
    s.check_invariants().unwrap();
}

#[test]
fn meta_append_vivify() {
    let mut s = shard();
    let mut req = StoreRequest::new(StoreMode::Append, 0, 0);
    assert_eq!(s.store(k("log"), b"a", &req), StoreResult::NotStored);
    req.vivify = Some(60);
    assert!(matches!(
        s.store(k("log"), b"a", &req),
        StoreResult::Stored(_)
    ));
    assert!(matches!(
        s.store(k("log"), b"a", &req),
        StoreResult::Stored(_)
    ));
    assert_eq!(value(&mut s, "log").as_deref(), Some("aa"));
}

// ---- eviction ----

fn fill(s: &mut Shard, keys: std::ops::Range<usize>) {
    for i in keys {
        let v = format!("value-{i:08}-{}", "x".repeat(40));
        let r = set(s, &format!("key:{i}"), &v, 0);
        assert!(matches!(r, StoreResult::Stored(_)), "{i}: {r:?}");
    }
}

#[test]
fn every_policy_survives_heavy_churn() {
    for policy in Policy::ALL {
        let mut s = shard_with(policy, 64 << 10, 4096);
        for round in 0..20 {
            fill(&mut s, round * 500..round * 500 + 500);
            // Read a hot set so merge has something to keep.
            for i in 0..50 {
                let key = format!("key:{}", round * 500 + i);
                if let Some(v) = s.read(k(&key), &ReadOptions::get(true)).map(|hit| hit.item) {
                    assert!(v
                        .value
                        .starts_with(format!("value-{:08}", round * 500 + i).as_bytes()));
                }
            }
            s.check_invariants()
                .unwrap_or_else(|e| panic!("{policy:?} round {round}: {e}"));
        }
        let st = *s.stats();
        assert!(
            st.evictions > 0 && st.evicted_segments > 0,
            "{policy:?}: {st:?}"
        );
        // Whatever survived is exactly what was written last for its key.
        for i in 0..10_000 {
            if let Some(v) = value(&mut s, &format!("key:{i}")) {
                assert!(v.starts_with(&format!("value-{i:08}")), "{policy:?}: {v}");
            }
        }
        assert_eq!(s.segment_counts().0, 16, "memory never grows");
    }
}

#[test]
fn merge_keeps_what_was_read() {
    let mut s = shard_with(Policy::Merge, 64 << 10, 4096);
    fill(&mut s, 0..100);
    for _ in 0..3 {
        for i in 0..20 {
            assert!(s
                .read(k(&format!("key:{i}")), &ReadOptions::get(true))
                .map(|hit| hit.item)
                .is_some());
        }
        fill(&mut s, 1000..1400);
    }
    let kept = (0..20)
        .filter(|i| value(&mut s, &format!("key:{i}")).is_some())
        .count();
    let cold = (20..100)
        .filter(|i| value(&mut s, &format!("key:{i}")).is_some())
        .count();
    assert!(kept >= 18, "hot keys kept: {kept}");
    assert!(cold < 10, "cold keys kept: {cold}");
    assert!(s.stats().merges > 0 && s.stats().merge_retained > 0);
    s.check_invariants().unwrap();
}

#[test]
fn merge_preserves_cas_across_the_move() {
    let mut s = shard_with(Policy::Merge, 64 << 10, 4096);
    fill(&mut s, 0..10);
    let before = cas(&mut s, "key:3");
    for _ in 0..3 {
        assert!(s
            .read(k("key:3"), &ReadOptions::get(true))
            .map(|hit| hit.item)
            .is_some());
        fill(&mut s, 100..600);
    }
    assert!(s.stats().merge_retained > 0);
    assert_eq!(cas(&mut s, "key:3"), before);
}

#[test]
fn fifo_evicts_oldest_first() {
    let mut s = shard_with(Policy::Fifo, 64 << 10, 4096);
    fill(&mut s, 0..1000);
    let oldest = (0..100)
        .filter(|i| value(&mut s, &format!("key:{i}")).is_some())
        .count();
    let newest = (900..1000)
        .filter(|i| value(&mut s, &format!("key:{i}")).is_some())
        .count();
    assert_eq!(oldest, 0);
    assert_eq!(newest, 100);
}

#[test]
fn cte_evicts_closest_to_expiry_first() {
    let mut s = shard_with(Policy::Cte, 64 << 10, 4096);
    for i in 0..200 {
        set(&mut s, &format!("soon{i}"), &"x".repeat(40), 100);
    }
    for i in 0..200 {
        set(&mut s, &format!("late{i}"), &"x".repeat(40), 10_000);
    }
    // About 17 segments' worth into 16: one or two must go.
    fill(&mut s, 0..650);
    let soon = (0..200)
        .filter(|i| value(&mut s, &format!("soon{i}")).is_some())
        .count();
    let late = (0..200)
        .filter(|i| value(&mut s, &format!("late{i}")).is_some())
        .count();
    assert!(s.stats().evicted_segments > 0);
    assert!(soon < 200 && late == 200, "soon {soon} late {late}");
}

#[test]
fn append_survives_eviction_of_everything_else() {
    // One segment's worth of data plus an append that forces eviction: the
    // segment holding the value being extended must not be the victim.
    let mut s = shard_with(Policy::Fifo, 3 * 4096, 4096);
    set(&mut s, "log", &"a".repeat(1000), 0);
    fill(&mut s, 0..80);
    for _ in 0..5 {
        let r = s.store(
            k("log"),
            &[b'b'; 500],
            &StoreRequest::new(StoreMode::Append, 0, 0),
        );
        if let StoreResult::Stored(_) = r {
            let v = s
                .read(k("log"), &ReadOptions::get(true))
                .map(|hit| hit.item)
                .unwrap();
            assert!(v.value.starts_with(&[b'a'; 1000]));
        }
        s.check_invariants().unwrap();
    }
}

#[test]
fn shards_over_4_gib_align_items_and_still_work() {
    // Address space only: pages become resident as items are written.
    let mut s = Shard::new(&ShardConfig {
        memory_bytes: (4 << 30) + (32 << 20),
        segment_size: 16 << 20,
        eviction: Policy::Fifo,
        index_pieces: Some(4),
        restart: None,
    })
    .unwrap();
    s.set_time(T0);
    for i in 0..1000 {
        // Odd lengths, so every item needs padding to the 2-byte alignment.
        let v = "v".repeat(i % 7 + 1);
        assert!(matches!(
            set(&mut s, &format!("k{i}"), &v, 0),
            StoreResult::Stored(_)
        ));
    }
    for i in 0..1000 {
        assert_eq!(value(&mut s, &format!("k{i}")).unwrap().len(), i % 7 + 1);
    }
    assert_eq!(
        s.delete(k("k5"), &DeleteOptions::default()),
        DeleteResult::Deleted
    );
    s.check_invariants().unwrap();
}

#[test]
fn prefetch_hints_change_nothing() {
    let mut shard = shard();
    set(&mut shard, "here", "v", 0);
    for key in ["here", "absent"] {
        shard.prefetch(k(key));
        shard.prefetch_item(k(key).hash);
    }
    assert_eq!(value(&mut shard, "here").as_deref(), Some("v"));
    assert_eq!(value(&mut shard, "absent"), None);
    // A hash whose control byte matches nothing, or a table of any size:
    // still only hints.
    for hash in [0, u64::MAX, 0x8000_0000_0000_0000] {
        shard.prefetch_item(hash);
    }
    assert_eq!(value(&mut shard, "here").as_deref(), Some("v"));
}

/// A classic get of a stale item serves it but leaves its recache token to
/// the first meta get (memcached's get knows nothing of tokens).
#[test]
fn a_classic_get_leaves_the_recache_token_alone() {
    let mut s = shard();
    set(&mut s, "a", "old", 0);
    let inval = DeleteOptions {
        invalidate: true,
        ..Default::default()
    };
    s.delete(k("a"), &inval);
    let get = s.read(k("a"), &ReadOptions::get(false)).unwrap();
    assert!(
        !get.facts.win && !get.facts.stale,
        "a classic read reports no token state"
    );
    let meta = s.read(k("a"), &META).unwrap();
    assert!(meta.facts.win, "the first meta get still wins the token");
}

/// Reads are counted as memcached 1.6.18 counts them (measured side by
/// side): a read that touches is a touch, hit or miss, not a get; meta
/// get's `T` counts as a touch only when it hits; an expired item is also
/// `get_expired`.
#[test]
fn reads_are_counted_as_memcached_counts_them() {
    let mut s = shard();
    set(&mut s, "a", "v", 0);
    set(&mut s, "old", "v", 10);
    let counts = |s: &Shard| {
        let st = s.stats();
        [
            st.cmd_get,
            st.get_hits,
            st.get_misses,
            st.get_expired,
            st.cmd_touch,
            st.touch_hits,
            st.touch_misses,
        ]
    };
    let mt = ReadOptions {
        touch: Some(60),
        ..META
    };
    let cases: [(&str, &str, ReadOptions, [u64; 7]); 7] = [
        (
            "get hit",
            "a",
            ReadOptions::get(false),
            [1, 1, 0, 0, 0, 0, 0],
        ),
        (
            "get miss",
            "none",
            ReadOptions::get(false),
            [1, 0, 1, 0, 0, 0, 0],
        ),
        (
            "gat hit",
            "a",
            ReadOptions::get_and_touch(60, false),
            [0, 0, 0, 0, 1, 1, 0],
        ),
        (
            "gat miss",
            "none",
            ReadOptions::get_and_touch(60, false),
            [0, 0, 0, 0, 1, 0, 1],
        ),
        ("mg T hit", "a", mt, [0, 0, 0, 0, 1, 1, 0]),
        ("mg T miss", "none", mt, [1, 0, 1, 0, 0, 0, 0]),
        ("mg miss", "none", META, [1, 0, 1, 0, 0, 0, 0]),
    ];
    for (name, key, opts, delta) in cases {
        let before = counts(&s);
        s.read(k(key), &opts);
        let after = counts(&s);
        let moved: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        assert_eq!(moved, delta, "{name}");
    }
    s.set_time(T0 + 20);
    let before = counts(&s);
    assert!(s
        .read(k("old"), &ReadOptions::get_and_touch(60, false))
        .is_none());
    let moved: Vec<u64> = counts(&s).iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(moved, [0, 0, 0, 1, 1, 0, 1], "gat of an expired item");
}
