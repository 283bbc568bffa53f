use super::*;

/// The hashes of `n` distinct keys.
fn hashes(n: u64) -> Vec<u64> {
    (0..n).map(|i| hash_key(&i.to_le_bytes())).collect()
}

/// Inserts synthetic entries (raw = position in `hashes`) straight into
/// the pieces, without segment memory behind them.
fn fill(index: &mut Index, hashes: &[u64]) {
    fill_range(index, hashes, 0..hashes.len());
}

/// Inserts `hashes[range]` (raw = position in `hashes`, so rehashing finds
/// every earlier entry's hash too).
fn fill_range(index: &mut Index, hashes: &[u64], range: std::ops::Range<usize>) {
    for raw in range {
        let hash = hashes[raw];
        index
            .piece_mut(hash)
            .insert_unique(hash, raw as u32, |&r| hashes[r as usize]);
    }
}

/// The prefetch addresses are where hashbrown really keeps the entries:
/// at a low load nearly every entry sits in the 16-slot group at its
/// first probe position.
#[test]
fn probe_lines_match_hashbrowns_layout() {
    for keys in [1_000u64, 100_000] {
        let mut index = Index::with_pieces(4);
        let hashes = hashes(keys);
        // Reserve so the tables run at a low load, as the test needs.
        for piece in index.pieces.iter_mut() {
            piece.reserve(keys as usize, |_| 0);
        }
        fill(&mut index, &hashes);
        let mut in_first_group = 0;
        for (raw, &hash) in hashes.iter().enumerate() {
            let piece = index.piece(hash);
            let found = piece.find(hash, |&r| r == raw as u32).unwrap();
            let found = found as *const u32 as usize;
            let (control, slot) = probe_lines(piece, hash).unwrap();
            assert!(control > slot);
            // The group's slots run down from `slot` for 16 entries
            // (wrapping at the table's end is rare enough to ignore).
            if found <= slot && found > slot - 16 * 4 {
                in_first_group += 1;
            }
        }
        assert!(
            in_first_group * 100 >= hashes.len() * 95,
            "{in_first_group} of {} in the first group",
            hashes.len()
        );
    }
}

#[test]
fn the_piece_count_follows_the_budget_within_bounds() {
    assert_eq!(Index::for_memory(0).piece_count(), 1);
    assert_eq!(Index::for_memory(1 << 20).piece_count(), 4);
    assert_eq!(
        Index::for_memory(1 << 30).piece_count(),
        (1usize << 30) / MIN_ITEM_BYTES / PIECE_KEYS
    );
    assert_eq!(Index::for_memory(1 << 40).piece_count(), MAX_PIECES);
    assert_eq!(Index::with_pieces(5).piece_count(), 8);
}

/// An empty index holds no table memory; memory then grows with the
/// entries, spread evenly, and a clear gives it back.
#[test]
fn memory_follows_the_entries() {
    let mut index = Index::with_pieces(64);
    let empty = index.allocation_size();
    assert!(empty <= 64 * 64, "directory only: {empty}");
    let hashes = hashes(64_000);
    fill(&mut index, &hashes[..6_400]);
    let tenth = index.allocation_size() - empty;
    fill(&mut index, &hashes[6_400..]);
    let full = index.allocation_size() - empty;
    assert_eq!(index.len(), hashes.len() + 6_400 - 6_400);
    // Ten times the entries: between 5 and 20 times the bytes (doubling
    // steps), never the final size up front.
    assert!(full > tenth * 5 && full < tenth * 20, "{tenth} -> {full}");
    // Between 5 and 12 bytes an entry (5-byte slots at 7/16..7/8 load).
    assert!(
        full > hashes.len() * 5 && full < hashes.len() * 12,
        "{full}"
    );
    // Even spread: no piece more than twice the mean.
    assert!(index.largest_piece() < 2 * hashes.len() / 64);
    index.clear();
    assert_eq!(index.len(), 0);
    assert_eq!(index.allocation_size(), empty);
}

/// Shares rise steadily from about 3/4 of the mean (first piece) to 3/2
/// (last).
#[test]
fn piece_shares_are_graded_over_a_factor_of_two() {
    let mut index = Index::with_pieces(64);
    let hashes = hashes(640_000);
    fill(&mut index, &hashes);
    let mean = hashes.len() as f64 / 64.0;
    let share = |i: usize| index.pieces[i].len() as f64 / mean;
    assert!((0.7..0.8).contains(&share(0)), "first {}", share(0));
    assert!((1.4..1.6).contains(&share(63)), "last {}", share(63));
    for i in 1..64 {
        assert!(share(i) > share(i - 1) - 0.05, "piece {i} {}", share(i));
    }
}

/// Because pieces double at different moments, the index's bytes per key
/// stay near the average at every fill level instead of sawing between the
/// 7/8 and 7/16 loads of one table (5.7 and 11.4 bytes a key).
#[test]
fn bytes_per_key_stay_level_as_the_index_fills() {
    let mut index = Index::with_pieces(256);
    let hashes = hashes(800_000);
    fill_range(&mut index, &hashes, 0..200_000);
    let (mut low, mut high) = (f64::MAX, 0f64);
    for start in (200_000..hashes.len()).step_by(10_000) {
        fill_range(&mut index, &hashes, start..start + 10_000);
        let per_key = index.allocation_size() as f64 / index.len() as f64;
        low = low.min(per_key);
        high = high.max(per_key);
    }
    assert!(low > 6.0 && high < 9.5, "bytes per key {low:.2}..{high:.2}");
}
