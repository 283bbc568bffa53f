//! The index: key -> [`Location`], a `hashbrown::HashTable` of packed u32s.
//!
//! The table stores only locations (4 bytes a slot plus hashbrown's control
//! byte, whose 7 hash bits filter out nearly all non-matching slots); keys
//! stay in segment memory and equality reads them from there. It is sized
//! up front from the memory budget so it does not rehash under normal load;
//! if it must grow, rehashing recomputes each hash from the stored key.

use hashbrown::HashTable;

use super::hash::{hash_key, HashedKey};
use super::location::Location;
use super::memory::HugePageAlloc;
use super::segment::Segments;

/// Key -> location for one shard.
pub struct Index {
    table: HashTable<u32, HugePageAlloc>,
}

fn rehasher(segs: &Segments) -> impl Fn(&u32) -> u64 + '_ {
    move |&raw| hash_key(segs.item(Location::from_raw(raw)).key())
}

impl Index {
    /// An index with room for `capacity` keys before it must grow.
    pub fn with_capacity(capacity: usize) -> Self {
        Index {
            table: HashTable::with_capacity_in(capacity, HugePageAlloc::default()),
        }
    }

    /// Keys it can hold without growing.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Bytes the table occupies (slots and control bytes).
    pub fn allocation_size(&self) -> usize {
        self.table.allocation_size()
    }

    /// Starts loading the index memory a lookup of `hash` reads first, so a
    /// batch of lookups waits for its cache misses together instead of one
    /// after another. A hint only: it never changes a result.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some((control, slot)) = self.probe_lines(hash) {
            prefetch(control);
            prefetch(slot);
        }
    }

    /// The location a lookup of `hash` will most likely compare first: the
    /// first entry whose control byte matches, without reading any key. For
    /// prefetching the item; it may be another key's.
    #[inline]
    pub fn likely_location(&self, hash: u64) -> Option<Location> {
        self.table
            .find(hash, |_| true)
            .map(|&raw| Location::from_raw(raw))
    }

    /// Addresses of the control bytes and of the slot at the first probe
    /// position for `hash`. This relies on hashbrown 0.15's table layout
    /// (slots of 4 bytes growing down from the control bytes, which are
    /// `buckets + 16` long, with `buckets` a power of two and the first probe
    /// at `hash & (buckets - 1)`); a test pins it, and were it wrong the
    /// prefetches would only miss.
    fn probe_lines(&self, hash: u64) -> Option<(usize, usize)> {
        const GROUP: usize = 16;
        const SLOT: usize = std::mem::size_of::<u32>();
        let (addr, size) = self.table.allocator().last_block()?;
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

    /// Where `key` lives, if indexed.
    #[inline]
    pub fn find(&self, key: HashedKey<'_>, segs: &Segments) -> Option<Location> {
        self.table
            .find(key.hash, |&raw| {
                segs.item(Location::from_raw(raw)).key() == key.key
            })
            .map(|&raw| Location::from_raw(raw))
    }

    /// Points `key` at `loc`, returning where it pointed before.
    pub fn upsert(
        &mut self,
        key: HashedKey<'_>,
        loc: Location,
        segs: &Segments,
    ) -> Option<Location> {
        let entry = self.table.entry(
            key.hash,
            |&raw| segs.item(Location::from_raw(raw)).key() == key.key,
            rehasher(segs),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                let old = Location::from_raw(*slot.get());
                *slot.get_mut() = loc.raw();
                Some(old)
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(loc.raw());
                None
            }
        }
    }

    /// Removes the entry that points exactly at `loc` (eviction, expiry);
    /// false if the key has since moved or gone.
    pub fn remove_location(&mut self, hash: u64, loc: Location) -> bool {
        match self.table.find_entry(hash, |&raw| raw == loc.raw()) {
            Ok(slot) => {
                slot.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Re-points the entry at `old` to `new` (an item moved by a merge).
    pub fn relocate(&mut self, hash: u64, old: Location, new: Location) -> bool {
        match self.table.find_mut(hash, |&raw| raw == old.raw()) {
            Some(slot) => {
                *slot = new.raw();
                true
            }
            None => false,
        }
    }

    /// Drops every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.table.clear();
    }

    /// Every indexed location (for invariant checks).
    pub fn locations(&self) -> impl Iterator<Item = Location> + '_ {
        self.table.iter().map(|&raw| Location::from_raw(raw))
    }
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
mod tests {
    use super::*;

    /// The prefetch addresses are where hashbrown really keeps the entries:
    /// at a low load nearly every entry sits in the 16-slot group at its
    /// first probe position.
    #[test]
    fn probe_lines_match_hashbrowns_layout() {
        for capacity in [1_000, 1_000_000] {
            let mut index = Index::with_capacity(capacity);
            let hashes: Vec<u64> = (0..capacity as u64 / 10)
                .map(|i| hash_key(&i.to_le_bytes()))
                .collect();
            for (raw, &hash) in hashes.iter().enumerate() {
                index
                    .table
                    .insert_unique(hash, raw as u32, |&r| hashes[r as usize]);
            }
            let mut in_first_group = 0;
            for (raw, &hash) in hashes.iter().enumerate() {
                let found = index.table.find(hash, |&r| r == raw as u32).unwrap();
                let found = found as *const u32 as usize;
                let (control, slot) = index.probe_lines(hash).unwrap();
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
}
