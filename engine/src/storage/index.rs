//! The index: key -> [`Location`], a `hashbrown::HashTable` of packed u64s.
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
            table: HashTable::with_capacity_in(capacity, HugePageAlloc),
        }
    }

    /// Keys indexed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no key is indexed.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Keys it can hold without growing.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Bytes the table occupies (slots and control bytes).
    pub fn allocation_size(&self) -> usize {
        self.table.allocation_size()
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
