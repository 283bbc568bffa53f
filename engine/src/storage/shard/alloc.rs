//! Room for new items: allocation in TTL buckets (evicting when full),
//! writing an item in place, and the bookkeeping of items that die.

use super::*;

impl Shard {
    /// Allocates `len` bytes in bucket `bucket`, evicting if needed. `pin`
    /// is a segment that must survive (it holds data being copied).
    pub(super) fn allocate(
        &mut self,
        bucket: usize,
        len: usize,
        pin: Option<u32>,
    ) -> Option<(u32, u32)> {
        loop {
            let open = self
                .buckets
                .get(bucket)
                .tail
                .filter(|&tail| self.segments.meta(tail).state == SegmentState::Open);
            if let Some(tail) = open {
                if let Some(offset) = self.segments.try_append(tail, len) {
                    return Some((tail, offset));
                }
                self.segments.meta_mut(tail).state = SegmentState::Sealed;
            }
            match self
                .segments
                .alloc(SegmentState::Open, self.now, bucket as u16)
            {
                Some(id) => self.buckets.push_back(bucket, id, &mut self.segments),
                None => {
                    if !self.evict(pin) {
                        self.stats.out_of_memory += 1;
                        return None;
                    }
                }
            }
        }
    }

    /// Writes a new item at `(segment, offset)` and accounts for it.
    pub(super) fn write_item(
        &mut self,
        at: (u32, u32),
        key: Part<'_>,
        key_len: usize,
        value: [Part<'_>; 2],
        meta: NewItem,
    ) -> Location {
        let value_len = Part::total(&value);
        let header = Header {
            key_len: key_len as u8,
            bits: meta.bits,
            last_access: access::encode(meta.last_access, self.segments.meta(at.0).created_at),
            value_len: value_len as u32,
            expire_at: meta.expire_at,
        };
        let start = self.segments.absolute(at.0, at.1);
        let total = header.total_len();
        let memory = self.segments.memory_mut();
        header.write(&mut memory[start..]);
        item::write_optional(&mut memory[start..], meta.bits, meta.flags, meta.cas);
        let mut cursor = start + header.key_offset();
        for part in std::iter::once(key).chain(value) {
            match part {
                Part::Bytes(bytes) => {
                    memory[cursor..cursor + bytes.len()].copy_from_slice(bytes);
                    cursor += bytes.len();
                }
                Part::Stored(from, len) => {
                    memory.copy_within(from..from + len, cursor);
                    cursor += len;
                }
            }
        }
        let seg = self.segments.meta_mut(at.0);
        seg.live_items += 1;
        seg.live_bytes += total as u32;
        seg.note_expiry(meta.expire_at);
        self.stats.curr_items += 1;
        self.stats.bytes += total as u64;
        self.stats.total_items += 1;
        self.classes.added(header.memcached_size(), total);
        self.segments.location(at.0, at.1)
    }

    /// Marks an item dead and drops its accounting (not its index entry).
    pub(super) fn mark_dead(&mut self, loc: Location) {
        let mut header = self.segments.header(loc);
        if header.bits & DEAD != 0 {
            return;
        }
        header.bits |= DEAD;
        self.segments.set_header(loc, &header);
        let len = header.total_len() as u32;
        let seg = self.segments.meta_mut(self.segments.segment_of(loc));
        seg.live_items -= 1;
        seg.live_bytes -= len;
        self.stats.curr_items -= 1;
        self.stats.bytes -= u64::from(len);
        self.classes.removed(header.memcached_size(), len as usize);
    }

    /// Removes an item: index entry and accounting.
    pub(super) fn kill(&mut self, hash: u64, loc: Location) {
        self.index.remove_location(hash, loc);
        self.mark_dead(loc);
    }

    /// Stores a new item for `key`, replacing whatever the index held.
    pub(super) fn put(
        &mut self,
        key: HashedKey<'_>,
        value: [Part<'_>; 2],
        meta: NewItem,
        pin: Option<u32>,
    ) -> Result<Location, StoreResult> {
        let value_len = Part::total(&value);
        let len = item::item_len(key.key.len(), value_len, meta.bits);
        if len > self.segments.segment_size()
            || key.key.is_empty()
            || key.key.len() > item::MAX_KEY_LEN
        {
            return Err(StoreResult::TooLarge);
        }
        let ttl = (meta.expire_at != 0).then(|| meta.expire_at.saturating_sub(self.now));
        let Some(at) = self.allocate(bucket_for(ttl), len, pin) else {
            let size =
                classes::memcached_size(key.key.len(), value_len, meta.bits & HAS_FLAGS != 0);
            self.classes.out_of_memory(size);
            return Err(StoreResult::OutOfMemory);
        };
        let loc = self.write_item(at, Part::Bytes(key.key), key.key.len(), value, meta);
        if let Some(old) = self.index.upsert(key, loc, &self.segments) {
            self.mark_dead(old);
        }
        Ok(loc)
    }

    /// A new item's header fields. Its cas counts as shown (the safe side)
    /// until the caller knows the reply hides it ([`NewItem::cas_hidden`]).
    pub(super) fn new_item(&self, flags: u32, expire_at: u32, new_cas: Option<u64>) -> NewItem {
        let mut bits = CAS_SHOWN;
        if flags != 0 {
            bits |= HAS_FLAGS;
        }
        if new_cas.is_some() {
            bits |= HAS_CAS;
        }
        NewItem {
            bits,
            flags,
            cas: new_cas.unwrap_or(0),
            expire_at,
            last_access: self.now,
        }
    }
}
