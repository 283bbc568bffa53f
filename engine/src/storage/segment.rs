//! Segment memory: one up-front allocation carved into fixed-size segments,
//! each an append-only log of items.
//!
//! The whole shard's memory is a single allocation made by the thread that
//! owns the shard (so the kernel places its pages on that core's NUMA node
//! as they are first touched). Nothing per item goes through the global
//! allocator; a segment is only ever reused whole.
//!
//! Per-segment bookkeeping lives in a side table ([`SegmentMeta`]), not in
//! the segment bytes, so walking segment lists never touches item memory.

use std::num::NonZeroU32;

use super::item::{Header, RawItem};
use super::location::{align_shift_for, Location};
use super::memory::Memory;

/// A TTL-bucket chain link: another segment's id, or none. Four bytes (the
/// id is kept plus one, so zero means none), so the side table stays small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link(Option<NonZeroU32>);

impl Link {
    /// No segment.
    pub const NONE: Link = Link(None);

    /// The linked segment's id.
    #[inline]
    pub fn get(self) -> Option<u32> {
        self.0.map(|n| n.get() - 1)
    }
}

impl From<Option<u32>> for Link {
    #[inline]
    fn from(id: Option<u32>) -> Link {
        Link(id.and_then(|id| NonZeroU32::new(id.wrapping_add(1))))
    }
}

/// The latest expiry of the items written to a segment: once the clock
/// passes it, every item there is dead and the segment can go whole. It
/// orders as a time, with an item that never expires at the top (the bound
/// is a maximum, so "never" is its largest value, not an absence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiryBound(u32);

impl ExpiryBound {
    /// A segment with an item that never expires.
    pub const NEVER: ExpiryBound = ExpiryBound(u32::MAX);

    /// The bound of items that expire at `unix_secs` (a shard's clock).
    #[inline]
    pub const fn at(unix_secs: u32) -> ExpiryBound {
        ExpiryBound(unix_secs)
    }

    /// Whether the segment will ever expire as a whole.
    #[inline]
    pub fn expires(self) -> bool {
        self != ExpiryBound::NEVER
    }

    /// Whether every item under this bound is dead at `now`.
    #[inline]
    pub fn passed(self, now: u32) -> bool {
        self.expires() && self.0 <= now
    }

    /// Widens the bound to cover an item expiring at `expire_at` (0: never).
    #[inline]
    pub fn cover(&mut self, expire_at: u32) {
        let item = if expire_at == 0 {
            ExpiryBound::NEVER
        } else {
            ExpiryBound(expire_at)
        };
        *self = (*self).max(item);
    }

    /// The bound as the restart file stores it.
    #[inline]
    pub fn raw(self) -> u32 {
        self.0
    }

    /// A bound read back from the restart file.
    #[inline]
    pub fn from_raw(raw: u32) -> ExpiryBound {
        ExpiryBound(raw)
    }
}

/// What a segment is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentState {
    /// On the free list.
    Free,
    /// The tail of a TTL bucket, taking new items.
    Open,
    /// Full (or closed): read-only until evicted or expired.
    Sealed,
    /// Held back as the destination of the next merge.
    Spare,
}

/// Bookkeeping for one segment.
#[derive(Clone, Copy, Debug)]
pub struct SegmentMeta {
    /// Bytes written so far (the next item goes here).
    pub write_offset: u32,
    /// Items not yet dead.
    pub live_items: u32,
    /// Bytes of items not yet dead.
    pub live_bytes: u32,
    /// When the segment was opened (unix seconds); FIFO order.
    pub created_at: u32,
    /// The latest expiry of any item written here.
    pub max_expire: ExpiryBound,
    /// Bumped on every reuse, so a derived cas is never repeated.
    pub generation: u16,
    /// The TTL bucket this segment belongs to.
    pub bucket: u16,
    /// Previous segment in its TTL bucket's chain (older).
    pub prev: Link,
    /// Next segment in its TTL bucket's chain (newer).
    pub next: Link,
    /// Free, open, sealed or spare.
    pub state: SegmentState,
    /// Written by a merge (the main FIFO of `s3fifo`), not by clients.
    pub main: bool,
}

impl SegmentMeta {
    /// A free segment's bookkeeping (generation 0).
    pub const FREE: SegmentMeta = SegmentMeta::EMPTY;

    const EMPTY: SegmentMeta = SegmentMeta {
        write_offset: 0,
        live_items: 0,
        live_bytes: 0,
        created_at: 0,
        max_expire: ExpiryBound::at(0),
        generation: 0,
        bucket: 0,
        prev: Link::NONE,
        next: Link::NONE,
        state: SegmentState::Free,
        main: false,
    };

    /// Records an item's expiry in the segment's bound.
    #[inline]
    pub fn note_expiry(&mut self, expire_at: u32) {
        self.max_expire.cover(expire_at);
    }
}

/// All segments of one shard.
pub struct Segments {
    memory: Memory,
    segment_size: usize,
    segment_shift: u32,
    align_shift: u32,
    meta: Vec<SegmentMeta>,
    free: Vec<u32>,
    /// Segments below this id have been handed to the prefault helper or
    /// written (memory is never given back, so they stay resident); `None`
    /// for file-backed memory, which is not prefaulted.
    fresh_from: Option<u32>,
}

impl Segments {
    /// Reserves `count` segments of `segment_size` bytes (a power of two).
    /// Pages become resident when first written.
    pub fn new(count: usize, segment_size: usize) -> std::io::Result<Self> {
        let mut segs =
            Segments::in_memory(Memory::new(count * segment_size)?, count, segment_size)?;
        segs.fresh_from = Some(0);
        Ok(segs)
    }

    /// The same over a shared mapping of the file at `path` (`-e`), whose
    /// bytes survive the process; see [`super::memory::Memory::map_file`].
    pub fn in_file(
        path: &std::path::Path,
        count: usize,
        segment_size: usize,
    ) -> std::io::Result<Self> {
        Segments::in_memory(
            Memory::map_file(path, count * segment_size)?,
            count,
            segment_size,
        )
    }

    fn in_memory(memory: Memory, count: usize, segment_size: usize) -> std::io::Result<Self> {
        assert!(
            segment_size.is_power_of_two(),
            "segment size must be a power of two"
        );
        let mut meta = vec![SegmentMeta::EMPTY; count];
        for m in &mut meta {
            m.generation = 1;
        }
        // Hand out low ids first: pop() takes from the end.
        let free = (0..count as u32).rev().collect();
        Ok(Segments {
            segment_shift: segment_size.trailing_zeros(),
            align_shift: align_shift_for(memory.len()),
            memory,
            segment_size,
            meta,
            free,
            fresh_from: None,
        })
    }

    /// The location of `offset` in segment `id`.
    #[inline]
    pub fn location(&self, id: u32, offset: u32) -> Location {
        let absolute = (id as usize) << self.segment_shift | offset as usize;
        Location::from_raw((absolute >> self.align_shift) as u32)
    }

    /// The segment holding `loc`.
    #[inline]
    pub fn segment_of(&self, loc: Location) -> u32 {
        ((loc.raw() as usize) << self.align_shift >> self.segment_shift) as u32
    }

    /// The byte offset of `loc` within its segment.
    #[cfg(test)]
    #[inline]
    pub fn offset_of(&self, loc: Location) -> u32 {
        (((loc.raw() as usize) << self.align_shift) & (self.segment_size - 1)) as u32
    }

    /// Where `loc` starts in the shard's memory.
    #[inline]
    fn start(&self, loc: Location) -> usize {
        (loc.raw() as usize) << self.align_shift
    }

    /// Rounds an item length up to the alignment locations need.
    #[inline]
    pub fn aligned(&self, len: usize) -> usize {
        let mask = (1usize << self.align_shift) - 1;
        (len + mask) & !mask
    }

    /// Bytes per segment.
    #[inline]
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// How many segments there are.
    #[inline]
    pub fn count(&self) -> usize {
        self.meta.len()
    }

    /// How many are free.
    #[inline]
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Every segment's bookkeeping (saved for a warm restart).
    pub fn metas(&self) -> &[SegmentMeta] {
        &self.meta
    }

    /// Replaces every segment's bookkeeping with `metas` (one per segment,
    /// restored from a warm-restart file) and rebuilds the free list.
    pub fn restore_metas(&mut self, metas: &[SegmentMeta]) {
        self.meta.copy_from_slice(metas);
        self.free = (0..self.meta.len() as u32)
            .rev()
            .filter(|&id| self.meta[id as usize].state == SegmentState::Free)
            .collect();
    }

    /// Every segment free again, as when built (a warm restart that was
    /// refused half-way).
    pub fn reset(&mut self) {
        let fresh = SegmentMeta {
            generation: 1,
            ..SegmentMeta::EMPTY
        };
        let metas = vec![fresh; self.meta.len()];
        self.restore_metas(&metas);
    }

    /// A segment's bookkeeping.
    #[inline]
    pub fn meta(&self, id: u32) -> &SegmentMeta {
        &self.meta[id as usize]
    }

    /// A segment's bookkeeping, mutably.
    #[inline]
    pub fn meta_mut(&mut self, id: u32) -> &mut SegmentMeta {
        &mut self.meta[id as usize]
    }

    /// Takes a free segment, reset and marked `state`, with a new generation.
    pub fn alloc(&mut self, state: SegmentState, now: u32, bucket: u16) -> Option<u32> {
        let id = self.free.pop()?;
        self.renew(id, state, now, bucket);
        if let Some(fresh_from) = &mut self.fresh_from {
            *fresh_from = (*fresh_from).max(id + 1);
        }
        Some(id)
    }

    /// Hands the segment the next [`Segments::alloc`] will take to the
    /// prefault helper if its memory was never touched, so its first
    /// writes find it resident. Called as a segment passes half full: a
    /// prefaulted segment holds nothing until the open one is full (with
    /// huge pages it may cost 2 MiB of resident memory), so not at once,
    /// but early enough that the helper (idle time only) is usually done
    /// first. Fresh segments are handed out in id order (the free list
    /// starts sorted), so one mark tells which are fresh.
    #[cold]
    fn prefault_next(&mut self) {
        let Some(fresh_from) = self.fresh_from else {
            return;
        };
        if let Some(&next) = self.free.last().filter(|&&next| next >= fresh_from) {
            let start = next as usize * self.segment_size;
            super::prefault::ahead(self.memory[start..].as_ptr(), self.segment_size);
            self.fresh_from = Some(next + 1);
        }
    }

    /// Takes the free segment with the highest id, for a segment held in
    /// reserve (a merge's destination). Clients' segments are taken from
    /// the low ids up, and memory becomes resident a huge page (two
    /// segments) at a time: a reserve among them would leave its page-mate
    /// resident beside it while it sits unused. The rest of the free list
    /// keeps its order.
    pub fn alloc_last(&mut self, state: SegmentState, now: u32, bucket: u16) -> Option<u32> {
        let (at, _) = self.free.iter().enumerate().max_by_key(|&(_, &id)| id)?;
        let id = self.free.remove(at);
        self.renew(id, state, now, bucket);
        Some(id)
    }

    /// Empties segment `id` in place for a new use, with a new generation:
    /// a merge writes into the segments of its run as they empty, without
    /// a trip through the free list. Its items must already be dead and
    /// unlinked.
    pub fn renew(&mut self, id: u32, state: SegmentState, now: u32, bucket: u16) {
        let meta = &mut self.meta[id as usize];
        let generation = meta.generation.wrapping_add(1).max(1);
        *meta = SegmentMeta {
            generation,
            created_at: now,
            bucket,
            state,
            ..SegmentMeta::EMPTY
        };
    }

    /// Returns a segment to the free list. Its items must already be dead
    /// and unlinked from the index and from its bucket.
    pub fn release(&mut self, id: u32) {
        let meta = &mut self.meta[id as usize];
        debug_assert_ne!(meta.state, SegmentState::Free);
        meta.state = SegmentState::Free;
        meta.prev = Link::NONE;
        meta.next = Link::NONE;
        self.free.push(id);
    }

    /// Reserves `len` bytes (plus alignment padding) at the end of segment
    /// `id`; `None` when full.
    #[inline]
    pub fn try_append(&mut self, id: u32, len: usize) -> Option<u32> {
        let len = self.aligned(len);
        let size = self.segment_size;
        let meta = &mut self.meta[id as usize];
        let offset = meta.write_offset as usize;
        if size - offset < len {
            return None;
        }
        meta.write_offset = (offset + len) as u32;
        let half = size / 2;
        if offset < half && offset + len >= half {
            self.prefault_next();
        }
        Some(offset as u32)
    }

    /// Absolute byte position of an offset in a segment.
    #[inline]
    pub fn absolute(&self, id: u32, offset: u32) -> usize {
        id as usize * self.segment_size + offset as usize
    }

    /// The item at `loc`.
    #[inline]
    pub fn item(&self, loc: Location) -> RawItem<'_> {
        RawItem::read(&self.memory[self.start(loc)..])
    }

    /// Address of the item at `loc`, for a prefetch hint; `None` when the
    /// location lies outside the memory (a stale guess).
    #[inline]
    pub fn item_address(&self, loc: Location) -> Option<usize> {
        let at = self.start(loc);
        (at < self.memory.len()).then(|| self.memory.as_ptr() as usize + at)
    }

    /// The header at `loc`.
    #[inline]
    pub fn header(&self, loc: Location) -> Header {
        Header::read(&self.memory[self.start(loc)..])
    }

    /// Rewrites the header at `loc` (state bits, expiry, access time).
    #[inline]
    pub fn set_header(&mut self, loc: Location, header: &Header) {
        let at = self.start(loc);
        header.write(&mut self.memory[at..]);
    }

    /// Where `loc` starts in the shard's memory (for copying item bytes).
    #[inline]
    pub fn absolute_of(&self, loc: Location) -> usize {
        self.start(loc)
    }

    /// Raw memory, for writing a new item.
    #[inline]
    pub fn memory_mut(&mut self) -> &mut [u8] {
        &mut self.memory
    }

    /// Raw memory.
    #[inline]
    pub fn memory(&self) -> &[u8] {
        &self.memory
    }

    /// Every item written to segment `id`, dead ones included, with its
    /// offset, in write order.
    pub fn items(&self, id: u32) -> SegmentItems<'_> {
        let start = self.absolute(id, 0);
        let end = start + self.meta[id as usize].write_offset as usize;
        SegmentItems {
            bytes: &self.memory[start..end],
            offset: 0,
            align_mask: (1 << self.align_shift) - 1,
        }
    }
}

/// Iterator over the items of one segment.
pub struct SegmentItems<'a> {
    bytes: &'a [u8],
    offset: usize,
    align_mask: usize,
}

impl<'a> Iterator for SegmentItems<'a> {
    type Item = (u32, RawItem<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.offset >= self.bytes.len() {
            return None;
        }
        let item = RawItem::read(&self.bytes[self.offset..]);
        let at = self.offset as u32;
        self.offset = (self.offset + item.header.total_len() + self.align_mask) & !self.align_mask;
        Some((at, item))
    }
}

#[cfg(test)]
mod tests;
