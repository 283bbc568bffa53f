//! What the eviction policies keep: cas across merges, S3-FIFO's
//! promotion and scan resistance.

use super::*;

fn shard_with(policy: Policy) -> Shard {
    super::tests::shard_with(policy, 256 << 10, 8 << 10)
}

fn key(name: &str) -> HashedKey<'_> {
    HashedKey::new(name.as_bytes())
}

/// Cache-aside: a get, and a set when it missed (text get: cas hidden).
fn ask(s: &mut Shard, name: &str) -> bool {
    if s.read(key(name), &ReadOptions::get(false))
        .map(|hit| hit.item)
        .is_some()
    {
        return true;
    }
    let mut req = StoreRequest::new(StoreMode::Set, 0, 0);
    req.hides_cas = true;
    assert!(matches!(
        s.store(key(name), b"0123456789012345678901234567890123456789", &req),
        StoreResult::Stored(_)
    ));
    false
}

fn explicit_cas(s: &Shard, name: &str) -> Option<u64> {
    let loc = s.index.find(key(name), &s.segments).expect("stored");
    s.segments.item(loc).explicit_cas()
}

/// A merge moves an item whose cas a reply showed with that cas written
/// out (clients holding it still match); an item only ever read by text
/// `get` moves without those 8 bytes.
#[test]
fn a_move_keeps_the_cas_only_where_a_client_may_hold_it() {
    let mut s = shard_with(Policy::Merge);
    ask(&mut s, "hidden");
    ask(&mut s, "shown");
    let shown_cas = s
        .read(key("shown"), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .unwrap()
        .cas;
    let mut round = 0;
    while s.stats().merge_retained < 10 {
        ask(&mut s, "hidden");
        s.read(key("shown"), &ReadOptions::get(true))
            .map(|hit| hit.item);
        for i in 0..200 {
            ask(&mut s, &format!("filler:{round}:{i}"));
        }
        round += 1;
        assert!(round < 100, "no merge kept anything");
    }
    assert!(s
        .read(key("hidden"), &ReadOptions::get(false))
        .map(|hit| hit.item)
        .is_some());
    assert_eq!(explicit_cas(&s, "hidden"), None, "moved without its cas");
    assert_eq!(
        s.read(key("shown"), &ReadOptions::get(true))
            .map(|hit| hit.item)
            .unwrap()
            .cas,
        shown_cas
    );
    assert_eq!(explicit_cas(&s, "shown"), Some(shown_cas));
    s.check_invariants().unwrap();
}

/// S3-FIFO: a hot set asked for over and over survives a long scan of
/// one-off keys, several times the cache's size; FIFO loses it.
#[test]
fn s3fifo_keeps_a_hot_set_through_a_scan() {
    let hot: Vec<String> = (0..300).map(|i| format!("hot:{i}")).collect();
    let mut kept = Vec::new();
    for policy in [Policy::Fifo, Policy::S3Fifo] {
        let mut s = shard_with(policy);
        for _ in 0..4 {
            for name in &hot {
                ask(&mut s, name);
            }
        }
        // The scan, with the hot set still asked for now and then.
        for i in 0..20_000 {
            ask(&mut s, &format!("scan:{i}"));
            if i % 20 == 0 {
                ask(&mut s, &hot[(i / 20) % hot.len()]);
            }
        }
        let present = hot
            .iter()
            .filter(|name| {
                s.read(key(name), &ReadOptions::get(false))
                    .map(|hit| hit.item)
                    .is_some()
            })
            .count();
        s.check_invariants().unwrap();
        kept.push(present);
        if policy == Policy::S3Fifo {
            let stats = s.stats();
            assert!(stats.merges > 0 && stats.merge_retained > 0 && stats.merge_evicted > 0);
            assert!(s.sketch_usage().is_some());
        }
    }
    assert!(kept[1] >= 290, "s3fifo kept {} of 300", kept[1]);
    assert!(kept[0] + 50 < kept[1], "fifo kept {} of 300", kept[0]);
}

/// Keys written once and never asked for again leave the small FIFO
/// without reaching main; keys read again are promoted.
#[test]
fn s3fifo_promotes_only_what_was_asked_for_again() {
    let mut s = shard_with(Policy::S3Fifo);
    for i in 0..40_000 {
        let name = format!("k:{i}");
        ask(&mut s, &name);
        if i % 4 == 0 {
            ask(&mut s, &name);
        }
    }
    s.check_invariants().unwrap();
    // What is in main was promoted or kept by frequency: read twice.
    let (mut main, mut unread) = (0, 0);
    for id in 0..s.segments.count() as u32 {
        let meta = *s.segments.meta(id);
        if !meta.main || meta.state != SegmentState::Sealed {
            continue;
        }
        for (_, item) in s.segments.items(id) {
            if item.header.bits & DEAD == 0 {
                let n: usize = std::str::from_utf8(&item.key()[2..])
                    .unwrap()
                    .parse()
                    .unwrap();
                main += 1;
                unread += usize::from(!n.is_multiple_of(4));
            }
        }
    }
    assert!(main > 100, "{main} items in main");
    assert_eq!(unread, 0, "{unread} of {main} in main were never read");
    let stats = s.stats();
    assert!(stats.promoted > 0 && stats.probation_evicted > stats.promoted);
}
