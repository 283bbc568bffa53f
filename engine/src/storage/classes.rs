//! memcached's slab classes, as a view of segcore's items: segcore has no
//! slabs (items of every size share segments), but memcached tools and
//! exporters read per-class figures (`stats items`, `stats slabs`). Each
//! item is counted in the class memcached 1.6 would store it in with its
//! default settings (`-n 48 -f 1.25`, 512 KiB largest chunk): the class
//! whose chunk fits the item's size *as memcached would lay it out*
//! (48-byte header, 8-byte cas, key, a NUL, the value and its `\r\n`, and
//! 4 bytes of client flags when they are not zero). Items above 512 KiB
//! count in the last class, where memcached chains chunks.
//!
//! Kept per class: live items and their bytes, items evicted, the idle
//! time of the last one evicted, items reclaimed after expiring, and
//! stores refused for want of memory. Updated only where the shard already
//! touches the item's header (write, unlink, eviction), so reads cost
//! nothing.

/// memcached's smallest chunk: its 48-byte item header plus `-n 48`.
const FIRST_CHUNK: usize = 96;
/// memcached's largest chunk (`slab_chunk_max`, half of a 1 MiB page).
pub const LARGEST_CHUNK: usize = 512 << 10;
/// memcached's page size, for `chunks_per_page`.
pub const PAGE_SIZE: usize = 1 << 20;

/// Classes: 38 growing by 1.25 from 96 bytes, then the 512 KiB class
/// (what `memcached -vv` lists with default settings).
pub const CLASSES: usize = class_count();

const fn class_count() -> usize {
    let mut size = FIRST_CHUNK;
    let mut n = 1;
    // memcached stops growing once the next size reaches the largest chunk
    // over the factor (then adds the largest chunk as the last class).
    while (size * 5 / 4) * 5 < LARGEST_CHUNK * 4 {
        size = align8(size * 5 / 4);
        n += 1;
    }
    n + 1
}

const fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

const fn chunk_sizes() -> [usize; CLASSES] {
    let mut sizes = [0; CLASSES];
    let mut size = FIRST_CHUNK;
    let mut i = 0;
    while i < CLASSES - 1 {
        sizes[i] = size;
        size = align8(size * 5 / 4);
        i += 1;
    }
    sizes[CLASSES - 1] = LARGEST_CHUNK;
    sizes
}

/// Each class's chunk size, class 1 first.
pub const CHUNK_SIZES: [usize; CLASSES] = chunk_sizes();

/// The bytes memcached would use for an item (see the module docs).
#[inline]
pub fn memcached_size(key_len: usize, value_len: usize, has_flags: bool) -> usize {
    48 + 8 + key_len + 1 + value_len + 2 + if has_flags { 4 } else { 0 }
}

/// The index (0-based; memcached's class id is this + 1) of the class for
/// an item of `size` memcached bytes.
#[inline]
pub fn class_of(size: usize) -> usize {
    CHUNK_SIZES
        .partition_point(|&chunk| chunk < size)
        .min(CLASSES - 1)
}

/// Per-class counters of one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassStats {
    /// Live items.
    pub number: [u64; CLASSES],
    /// Bytes of live items (segcore's own item sizes).
    pub bytes: [u64; CLASSES],
    /// Live items evicted to make room.
    pub evicted: [u64; CLASSES],
    /// Seconds between the last eviction and that item's last access.
    pub evicted_time: [u32; CLASSES],
    /// Expired items reclaimed.
    pub reclaimed: [u64; CLASSES],
    /// Stores refused for want of memory.
    pub outofmemory: [u64; CLASSES],
}

impl Default for ClassStats {
    fn default() -> Self {
        ClassStats {
            number: [0; CLASSES],
            bytes: [0; CLASSES],
            evicted: [0; CLASSES],
            evicted_time: [0; CLASSES],
            reclaimed: [0; CLASSES],
            outofmemory: [0; CLASSES],
        }
    }
}

impl ClassStats {
    /// An item of `len` bytes (memcached size `size`) was stored.
    #[inline]
    pub fn added(&mut self, size: usize, len: usize) {
        let c = class_of(size);
        self.number[c] += 1;
        self.bytes[c] += len as u64;
    }

    /// An item left (deleted, replaced, evicted or expired).
    #[inline]
    pub fn removed(&mut self, size: usize, len: usize) {
        let c = class_of(size);
        self.number[c] = self.number[c].saturating_sub(1);
        self.bytes[c] = self.bytes[c].saturating_sub(len as u64);
    }

    /// An item was evicted `idle` seconds after its last access.
    #[inline]
    pub fn evicted(&mut self, size: usize, idle: u32) {
        let c = class_of(size);
        self.evicted[c] += 1;
        self.evicted_time[c] = idle;
    }

    /// An expired item was reclaimed.
    #[inline]
    pub fn reclaimed(&mut self, size: usize) {
        self.reclaimed[class_of(size)] += 1;
    }

    /// A store of an item this size was refused for want of memory.
    #[inline]
    pub fn out_of_memory(&mut self, size: usize) {
        self.outofmemory[class_of(size)] += 1;
    }

    /// Forgets the live items (`flush_all`, a failed restore).
    pub fn clear_live(&mut self) {
        self.number = [0; CLASSES];
        self.bytes = [0; CLASSES];
    }

    /// `stats reset`: zeroes the counters, keeping what is stored now.
    pub fn reset_counters(&mut self) {
        *self = ClassStats {
            number: self.number,
            bytes: self.bytes,
            ..ClassStats::default()
        };
    }

    /// Adds another shard's counters; the latest eviction's idle time is
    /// the larger of the two (shards do not share a clock of evictions).
    pub fn merge(&mut self, o: &ClassStats) {
        for c in 0..CLASSES {
            self.number[c] += o.number[c];
            self.bytes[c] += o.bytes[c];
            self.evicted[c] += o.evicted[c];
            self.evicted_time[c] = self.evicted_time[c].max(o.evicted_time[c]);
            self.reclaimed[c] += o.reclaimed[c];
            self.outofmemory[c] += o.outofmemory[c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_memcached_defaults() {
        // `memcached -vv` (1.6.18) with default settings lists these.
        assert_eq!(&CHUNK_SIZES[..8], &[96, 120, 152, 192, 240, 304, 384, 480]);
        assert_eq!(CHUNK_SIZES[29], 66232);
        assert_eq!(CHUNK_SIZES[30], 82792);
        assert_eq!(CHUNK_SIZES[CLASSES - 2], 394840);
        assert_eq!(CHUNK_SIZES[CLASSES - 1], 512 << 10);
        assert_eq!(CLASSES, 39);
    }

    #[test]
    fn items_land_where_memcached_puts_them() {
        // t/issue_29.t: an empty value is class 1.
        assert_eq!(class_of(memcached_size(7, 0, false)) + 1, 1);
        // t/issue_22.t: 66,560-byte values under "keyN" are class 31.
        assert_eq!(class_of(memcached_size(5, 66560, false)) + 1, 31);
        assert_eq!(class_of(96) + 1, 1);
        assert_eq!(class_of(97) + 1, 2);
        assert_eq!(class_of(10 << 20) + 1, CLASSES);
    }

    #[test]
    fn counts_follow_items_and_reset_keeps_the_live_ones() {
        let mut c = ClassStats::default();
        c.added(100, 40);
        c.added(100, 40);
        c.evicted(100, 7);
        c.removed(100, 40);
        c.out_of_memory(70_000);
        assert_eq!((c.number[1], c.bytes[1], c.evicted[1]), (1, 40, 1));
        assert_eq!(c.evicted_time[1], 7);
        assert_eq!(c.outofmemory[30], 1);
        c.reset_counters();
        assert_eq!((c.number[1], c.evicted[1], c.outofmemory[30]), (1, 0, 0));
        let mut total = ClassStats::default();
        total.merge(&c);
        total.merge(&c);
        assert_eq!(total.number[1], 2);
    }
}
