//! The index: key -> [`Location`], a directory of small `hashbrown`
//! tables ("pieces") of packed u32s that grow one at a time.
//!
//! Each slot holds only a location (4 bytes plus hashbrown's control byte,
//! whose 7 hash bits filter out nearly all non-matching slots); keys stay
//! in segment memory and equality reads them from there.
//!
//! # Growth
//!
//! Resident memory must follow the items, not `-m`, and growing must never
//! stall a core. One table sized from the budget did the first badly (items
//! land all over it, so the whole array becomes resident); one table grown
//! by doubling does the second badly (a rehash of millions of entries, each
//! reading its key back from segment memory, is a stop of seconds). So the
//! hash picks one of a fixed number of pieces, and each piece is an
//! ordinary hashbrown table that starts empty and doubles on its own. The
//! piece count is set from the budget so a piece holds about
//! [`PIECE_KEYS`] keys when the budget is full of small items: the largest
//! rehash is then a few thousand entries (a fraction of a millisecond), and
//! pieces reach their thresholds at different moments, so a pipelined batch
//! seldom meets more than one. This is extendible hashing with a directory
//! that never changes size; Dragonfly's dashtable splits segments the same
//! way. Incremental migration of one big table was the alternative: it
//! keeps two tables alive (double memory mid-way) and makes every lookup
//! probe both.
//!
//! Which piece: bits 32..57 of the hash. hashbrown takes the probe
//! position from the low bits (a piece never reaches 2^32 buckets) and the
//! control tag from the top 7, so the three uses never share a bit.
//!
//! # Graded shares
//!
//! Pieces do not get equal shares of the keys: the share rises steadily
//! from 3/4 of the mean for the first piece to 3/2 for the last. With
//! equal shares every piece would cross hashbrown's 7/8 load together, and
//! the whole index would double in one burst: its bytes per key would saw
//! between 5.7 (7/8 load) and 11.4 (7/16) as items arrive, and a fill that
//! stops just past a doubling would pay the worst of it. Spread over a
//! factor of two, piece sizes double at every moment of an octave instead,
//! so the index costs about the average (~8 bytes a key at 5/8 load) at any
//! item count, and growth steps come one piece at a time.

use hashbrown::HashTable;

use super::hash::{hash_key, HashedKey};
use super::location::Location;
use super::memory::HugePageAlloc;
use super::segment::Segments;

/// Keys a piece holds on average when the budget is full of the smallest
/// items [`MIN_ITEM_BYTES`] assumes: the largest piece (3/2 of the mean)
/// moves at most half as many again in one rehash.
pub const PIECE_KEYS: usize = 4096;

/// The item size (header, key and value) the piece count is planned for.
/// Smaller items make pieces larger than [`PIECE_KEYS`] (longer, rarer
/// rehashes); larger items leave them smaller.
pub const MIN_ITEM_BYTES: usize = 64;

/// Most pieces one shard's index is split into (each costs about 48 bytes
/// of directory when empty).
pub const MAX_PIECES: usize = 1 << 16;

/// Bits of the hash below the ones that choose a piece.
const PIECE_SHIFT: u32 = 32;

/// Bits that choose a piece (below hashbrown's 7-bit tag at 57..64).
const PIECE_BITS: u32 = 25;

type Piece = HashTable<u32, HugePageAlloc>;

/// Key -> location for one shard.
pub struct Index {
    pieces: Box<[Piece]>,
    /// Times a piece has grown.
    growths: u64,
}

fn rehasher(segs: &Segments) -> impl Fn(&u32) -> u64 + '_ {
    move |&raw| hash_key(segs.item(Location::from_raw(raw)).key())
}

impl Index {
    /// An empty index with pieces planned for `memory_bytes` of items.
    pub fn for_memory(memory_bytes: usize) -> Self {
        Index::with_pieces(memory_bytes / MIN_ITEM_BYTES / PIECE_KEYS)
    }

    /// An empty index of `pieces` pieces (rounded to a power of two in
    /// 1..=[`MAX_PIECES`]).
    pub fn with_pieces(pieces: usize) -> Self {
        let count = pieces.clamp(1, MAX_PIECES).next_power_of_two();
        Index {
            pieces: (0..count)
                .map(|_| HashTable::new_in(HugePageAlloc::default()))
                .collect(),
            growths: 0,
        }
    }

    /// Which piece holds `hash`: `t`, the piece bits as a fraction of
    /// one, goes through `t (4 - t) / 3`, which maps [0, 1) onto [0, 1)
    /// with a slope falling from 4/3 to 2/3; piece `i` takes the keys that
    /// land in its `1/count` of that range, so its share of `t` is the
    /// inverse of the slope there (graded shares, see above).
    #[inline]
    fn piece_of(&self, hash: u64) -> usize {
        let t = (hash >> PIECE_SHIFT) & ((1 << PIECE_BITS) - 1);
        // t (4·2^25 - t) < 3·2^50, and scaled back by 2^25: < 3·2^25.
        let curved = (t * ((4 << PIECE_BITS) - t)) >> PIECE_BITS;
        // At most 3·2^25 · 2^16 before the division: no overflow.
        ((curved * self.pieces.len() as u64) / (3 << PIECE_BITS)) as usize
    }

    #[inline]
    fn piece(&self, hash: u64) -> &Piece {
        &self.pieces[self.piece_of(hash)]
    }

    #[inline]
    fn piece_mut(&mut self, hash: u64) -> &mut Piece {
        let i = self.piece_of(hash);
        &mut self.pieces[i]
    }

    /// Times a piece has grown (each a rehash of that piece alone).
    pub fn growths(&self) -> u64 {
        self.growths
    }

    /// Pieces the index is split into.
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Entries in the largest piece: the most a single growth step can
    /// move (half of it).
    pub fn largest_piece(&self) -> usize {
        self.pieces.iter().map(HashTable::len).max().unwrap_or(0)
    }

    /// Keys indexed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pieces.iter().map(HashTable::len).sum()
    }

    /// Keys the pieces hold before any of them grows, together.
    pub fn capacity(&self) -> usize {
        self.pieces.iter().map(HashTable::capacity).sum()
    }

    /// Bytes the tables occupy (slots and control bytes) plus the
    /// directory.
    pub fn allocation_size(&self) -> usize {
        self.pieces
            .iter()
            .map(HashTable::allocation_size)
            .sum::<usize>()
            + std::mem::size_of_val::<[Piece]>(&self.pieces)
    }

    /// Starts loading the index memory a lookup of `hash` reads first, so a
    /// batch of lookups waits for its cache misses together instead of one
    /// after another. A hint only: it never changes a result.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some((control, slot)) = probe_lines(self.piece(hash), hash) {
            prefetch(control);
            prefetch(slot);
        }
    }

    /// The location a lookup of `hash` will most likely compare first: the
    /// first entry whose control byte matches, without reading any key. For
    /// prefetching the item; it may be another key's.
    #[inline]
    pub fn likely_location(&self, hash: u64) -> Option<Location> {
        self.piece(hash)
            .find(hash, |_| true)
            .map(|&raw| Location::from_raw(raw))
    }

    /// Where `key` lives, if indexed.
    #[inline]
    pub fn find(&self, key: HashedKey<'_>, segs: &Segments) -> Option<Location> {
        self.piece(key.hash)
            .find(key.hash, |&raw| {
                segs.item(Location::from_raw(raw)).key() == key.key
            })
            .map(|&raw| Location::from_raw(raw))
    }

    /// Points `key` at `loc`, returning where it pointed before. May grow
    /// the key's piece (and only that piece).
    pub fn upsert(
        &mut self,
        key: HashedKey<'_>,
        loc: Location,
        segs: &Segments,
    ) -> Option<Location> {
        let i = self.piece_of(key.hash);
        let room = self.pieces[i].capacity();
        let entry = self.pieces[i].entry(
            key.hash,
            |&raw| segs.item(Location::from_raw(raw)).key() == key.key,
            rehasher(segs),
        );
        let old = match entry {
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                let old = Location::from_raw(*slot.get());
                *slot.get_mut() = loc.raw();
                Some(old)
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(loc.raw());
                None
            }
        };
        if self.pieces[i].capacity() != room {
            self.growths += 1;
        }
        old
    }

    /// Removes the entry that points exactly at `loc` (eviction, expiry);
    /// false if the key has since moved or gone.
    pub fn remove_location(&mut self, hash: u64, loc: Location) -> bool {
        match self
            .piece_mut(hash)
            .find_entry(hash, |&raw| raw == loc.raw())
        {
            Ok(slot) => {
                slot.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Re-points the entry at `old` to `new` (an item moved by a merge).
    pub fn relocate(&mut self, hash: u64, old: Location, new: Location) -> bool {
        match self.piece_mut(hash).find_mut(hash, |&raw| raw == old.raw()) {
            Some(slot) => {
                *slot = new.raw();
                true
            }
            None => false,
        }
    }

    /// Drops every entry and gives the tables' memory back (flush_all):
    /// the index grows again with the items.
    pub fn clear(&mut self) {
        for piece in self.pieces.iter_mut() {
            *piece = HashTable::new_in(HugePageAlloc::default());
        }
    }

    /// Every indexed location (for invariant checks).
    pub fn locations(&self) -> impl Iterator<Item = Location> + '_ {
        self.pieces
            .iter()
            .flat_map(|p| p.iter())
            .map(|&raw| Location::from_raw(raw))
    }
}

/// Addresses of the control bytes and of the slot at the first probe
/// position for `hash` in `piece`. This relies on hashbrown 0.15's table
/// layout (slots of 4 bytes growing down from the control bytes, which are
/// `buckets + 16` long, with `buckets` a power of two and the first probe
/// at `hash & (buckets - 1)`); a test pins it, and were it wrong the
/// prefetches would only miss.
#[inline]
fn probe_lines(piece: &Piece, hash: u64) -> Option<(usize, usize)> {
    const GROUP: usize = 16;
    const SLOT: usize = std::mem::size_of::<u32>();
    let (addr, size) = piece.allocator().last_block()?;
    let buckets = size.checked_sub(GROUP)? / (SLOT + 1);
    if !buckets.is_power_of_two() || buckets < GROUP {
        return None;
    }
    // Checked: a layout other than the one assumed must cost a missed
    // prefetch, never a panic.
    let control = addr.checked_add(size.checked_sub(GROUP + buckets)?)?;
    let pos = (hash as usize) & (buckets - 1);
    Some((control + pos, control.checked_sub((pos + 1) * SLOT)?))
}

/// Asks the CPU to start loading the cache line at `addr`.
#[inline(always)]
pub(crate) fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address;
    // SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests;
