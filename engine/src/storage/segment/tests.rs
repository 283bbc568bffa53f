use super::*;

#[test]
fn an_expiry_bound_covers_every_item_and_never_passes_for_a_forever_item() {
    let mut bound = ExpiryBound::default();
    bound.cover(100);
    bound.cover(50);
    assert_eq!(bound, ExpiryBound::at(100));
    assert!(!bound.passed(99));
    assert!(bound.passed(100));
    bound.cover(0);
    assert_eq!(bound, ExpiryBound::NEVER);
    assert!(!bound.expires());
    assert!(!bound.passed(u32::MAX));
    bound.cover(200);
    assert_eq!(bound, ExpiryBound::NEVER, "never stays the top");
    assert!(ExpiryBound::at(u32::MAX - 1) < ExpiryBound::NEVER);
    assert_eq!(ExpiryBound::from_raw(bound.raw()), bound);
}

#[test]
fn a_reserve_comes_from_the_far_end_and_clients_fill_from_the_start() {
    let mut segs = Segments::new(8, 64).unwrap();
    assert_eq!(segs.alloc(SegmentState::Open, 0, 0), Some(0));
    assert_eq!(segs.alloc_last(SegmentState::Spare, 0, 0), Some(7));
    let next: Vec<_> = (0..6)
        .map(|_| segs.alloc(SegmentState::Open, 0, 0))
        .collect();
    assert_eq!(next, [1, 2, 3, 4, 5, 6].map(Some));
    assert_eq!(segs.alloc_last(SegmentState::Spare, 0, 0), None);
    assert_eq!(segs.meta(7).state, SegmentState::Spare);
}

/// Each fresh segment is handed to the prefault helper once, as the one
/// before it is taken; segments that come back to the free list were
/// written already and are not handed again.
#[test]
fn the_next_fresh_segment_is_prefaulted_once() {
    let size = 64 << 10;
    let mut segs = Segments::new(6, size).unwrap();
    assert_eq!(segs.alloc(SegmentState::Open, 0, 0), Some(0));
    assert_eq!(segs.fresh_from, Some(1), "nothing handed over yet");
    segs.try_append(0, size / 4).unwrap();
    assert_eq!(segs.fresh_from, Some(1));
    segs.try_append(0, size / 4).unwrap();
    assert_eq!(segs.fresh_from, Some(2), "half full: segment 1 handed over");
    segs.try_append(0, 64).unwrap();
    assert_eq!(segs.fresh_from, Some(2), "once");
    assert_eq!(segs.alloc(SegmentState::Open, 0, 0), Some(1));
    segs.release(0);
    assert_eq!(segs.alloc(SegmentState::Open, 0, 0), Some(0));
    segs.try_append(0, size).unwrap();
    assert_eq!(segs.fresh_from, Some(3), "segment 2 next, fresh");
    segs.release(0);
    assert_eq!(segs.alloc(SegmentState::Open, 0, 0), Some(0));
    segs.try_append(0, size).unwrap();
    assert_eq!(segs.fresh_from, Some(3), "2 was handed over already");
    assert_eq!(segs.alloc_last(SegmentState::Spare, 0, 0), Some(5));
    assert_eq!(segs.alloc(SegmentState::Open, 0, 0), Some(2));
    assert_eq!(segs.fresh_from, Some(3));
    let mut file_backed = Segments::in_memory(Memory::new(4 << 16).unwrap(), 4, 1 << 16).unwrap();
    file_backed.alloc(SegmentState::Open, 0, 0);
    file_backed.try_append(0, 1 << 16).unwrap();
    assert_eq!(file_backed.fresh_from, None, "never prefaulted");
}

#[test]
fn links_name_a_segment_or_none_in_four_bytes() {
    assert_eq!(std::mem::size_of::<Link>(), 4);
    assert_eq!(Link::NONE.get(), None);
    assert_eq!(Link::from(None).get(), None);
    for id in [0, 1, 4096, u32::MAX - 1] {
        assert_eq!(Link::from(Some(id)).get(), Some(id));
    }
}

#[test]
fn segment_meta_stays_small() {
    // 34 bytes of fields; one side-table row per MiB of items.
    assert!(std::mem::size_of::<SegmentMeta>() <= 40);
}

#[test]
fn alloc_release_and_generations() {
    let mut segs = Segments::new(2, 64).unwrap();
    let a = segs.alloc(SegmentState::Open, 10, 3).unwrap();
    let b = segs.alloc(SegmentState::Open, 11, 3).unwrap();
    assert_eq!((a, b), (0, 1));
    assert_eq!(segs.alloc(SegmentState::Open, 12, 3), None);
    let gen = segs.meta(a).generation;
    segs.release(a);
    assert_eq!(segs.free_count(), 1);
    let again = segs.alloc(SegmentState::Sealed, 13, 4).unwrap();
    assert_eq!(again, a);
    assert_eq!(segs.meta(a).generation, gen + 1);
    assert_eq!(segs.meta(a).created_at, 13);
    assert_eq!(segs.meta(a).write_offset, 0);
}

#[test]
fn locations_split_into_segment_and_offset() {
    let segs = Segments::new(4, 4096).unwrap();
    let loc = segs.location(3, 1234);
    assert_eq!((segs.segment_of(loc), segs.offset_of(loc)), (3, 1234));
    assert_eq!(segs.absolute_of(loc), 3 * 4096 + 1234);
    assert_eq!(segs.aligned(13), 13, "no padding below 4 GiB");
}

#[test]
fn append_respects_the_segment_end() {
    let mut segs = Segments::new(1, 64).unwrap();
    let id = segs.alloc(SegmentState::Open, 0, 0).unwrap();
    assert_eq!(segs.try_append(id, 40), Some(0));
    assert_eq!(segs.try_append(id, 30), None);
    assert_eq!(segs.try_append(id, 24), Some(40));
    assert_eq!(segs.try_append(id, 1), None);
}
