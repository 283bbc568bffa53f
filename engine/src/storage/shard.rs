//! The shard: one core's slice of the cache and every operation on it.
//!
//! Single-threaded by construction (`&mut self` everywhere, no atomics): the
//! core that owns a shard is the only one that reads, writes, expires or
//! evicts it. Time is whatever the caller last said with
//! [`Shard::set_time`], so tests move the clock by hand.
//!
//! # cas
//!
//! Items are never rewritten in place (except their header bits and
//! expiry), so an item's location is unique for its lifetime; together with
//! the segment's generation (bumped on every reuse) it makes a cas that
//! changes on every write without storing 8 bytes per item:
//!
//! ```text
//!  63              48 47         32 31                          0
//! +------------------+-------------+-----------------------------+
//! |       0          | generation  |  location (see location.rs) |
//! +------------------+-------------+-----------------------------+
//! ```
//!
//! An item carries an explicit cas only when a client chose one (meta `E`)
//! or a merge moved it and its cas had to stay the same.

use super::access;
use super::eviction::{self, Policy};
use super::hash::{hash_key, HashedKey};
use super::index::Index;
use super::item::{self, Header, ACCESSED, DEAD, FETCHED, HAS_CAS, HAS_FLAGS, STALE, WIN_SENT};
use super::location::{Location, MAX_SEGMENT_SIZE};
use super::segment::{SegmentState, Segments, NEVER, NONE};
use super::stats::ShardStats;
use super::time::{is_expired, ttl_remaining, Expiry};
use super::ttl::{bucket_for, TtlBuckets, BUCKETS};

/// Memory per key the index is pre-sized for. A full shard of small items
/// (key + value + header around 100 bytes) fills the table to about
/// three quarters of its power-of-two size; much smaller items make it grow
/// once while the cache fills. Smaller divisors would reserve index slots
/// that a cache of ordinary items never uses (each slot costs 4-5 bytes
/// resident per expected key).
pub const INDEX_BYTES_PER_KEY: usize = 128;

/// How a shard is sized and behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// Bytes of item memory (this shard's part of `-m`).
    pub memory_bytes: usize,
    /// Bytes per segment; also the largest item.
    pub segment_size: usize,
    /// What to evict when full.
    pub eviction: Policy,
    /// Keys the index holds before it must grow; `None` sizes it from the
    /// memory budget at one key per 128 bytes ([`INDEX_BYTES_PER_KEY`]).
    pub index_capacity: Option<usize>,
    /// Keep the items in a file, for a warm restart (`-e`); `None` keeps
    /// them in anonymous memory.
    pub restart: Option<RestartFile>,
}

/// Where a shard keeps its items across restarts (`-e`), and what must not
/// change for them to be taken back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartFile {
    /// The memory file; its metadata goes beside it, as `<path>.meta`.
    pub path: std::path::PathBuf,
    /// A digest of the server settings that decide which keys this shard
    /// owns and what it may hold (cores, this core's id, item size limit):
    /// a restart with other settings starts empty.
    pub layout_tag: u64,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            memory_bytes: 64 << 20,
            segment_size: 1 << 20,
            eviction: Policy::default(),
            index_capacity: None,
            restart: None,
        }
    }
}

/// Why a shard could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The segment size is not a power of two in 4 KiB ..= 16 MiB.
    SegmentSize(usize),
    /// The operating system refused the memory.
    Memory(String),
    /// The memory holds fewer segments than the policy needs.
    TooLittleMemory {
        /// Segments that fit.
        segments: usize,
        /// Segments needed.
        needed: usize,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::SegmentSize(size) => {
                write!(
                    f,
                    "segment size {size} must be a power of two from 4 KiB to 16 MiB"
                )
            }
            ConfigError::Memory(e) => write!(f, "cannot reserve the item memory: {e}"),
            ConfigError::TooLittleMemory { segments, needed } => write!(
                f,
                "memory holds {segments} segment(s) per core but at least {needed} are needed; \
                 raise the memory limit or lower the segment size"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Outcome of a storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreResult {
    /// Stored; the item's new cas.
    Stored(u64),
    /// The add/replace/append/prepend condition failed.
    NotStored,
    /// The cas did not match.
    Exists,
    /// cas (or a cas-checked command) on a missing key.
    NotFound,
    /// Larger than a segment.
    TooLarge,
    /// No memory even after eviction.
    OutOfMemory,
}

impl StoreResult {
    /// True for [`StoreResult::Stored`].
    pub fn is_stored(&self) -> bool {
        matches!(self, StoreResult::Stored(_))
    }
}

/// Outcome of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteResult {
    /// Removed (or, for meta invalidate, marked stale).
    Deleted,
    /// No such key.
    NotFound,
    /// The cas did not match.
    Exists,
}

/// Outcome of incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithResult {
    /// The new value and the item's new cas.
    Value {
        /// The number after the operation.
        value: u64,
        /// The item's cas.
        cas: u64,
        /// Remaining TTL (-1 for never), for meta `t`.
        ttl: i64,
    },
    /// No such key (and no auto-create requested).
    NotFound,
    /// The stored value is not a decimal number.
    NonNumeric,
    /// The cas did not match.
    Exists,
    /// No memory for the new value.
    OutOfMemory,
}

/// Storage conditions (text, binary and meta spell them differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// Unconditional.
    Set,
    /// Only if absent.
    Add,
    /// Only if present.
    Replace,
    /// Present: append the data.
    Append,
    /// Present: prepend the data.
    Prepend,
}

/// A storage request.
#[derive(Clone, Copy, Debug)]
pub struct StoreRequest<'a> {
    /// The condition.
    pub mode: StoreMode,
    /// The data (appended/prepended data for those modes).
    pub value: &'a [u8],
    /// Client flags (ignored by append/prepend).
    pub flags: u32,
    /// memcached exptime (ignored by append/prepend).
    pub exptime: i64,
    /// Store only if the item's cas equals this (`cas` command, binary cas,
    /// meta `C`).
    pub compare_cas: Option<u64>,
    /// Meta `E`: give the stored item this cas.
    pub new_cas: Option<u64>,
    /// Meta `I` with `C`: a cas older than the item's stores the value as
    /// stale instead of failing.
    pub invalidate: bool,
    /// Meta `N` with append/prepend: create the item (with this exptime)
    /// when missing.
    pub vivify: Option<i64>,
}

impl<'a> StoreRequest<'a> {
    /// A plain request: `mode`, value, flags, exptime; no cas conditions.
    pub fn new(mode: StoreMode, value: &'a [u8], flags: u32, exptime: i64) -> Self {
        StoreRequest {
            mode,
            value,
            flags,
            exptime,
            compare_cas: None,
            new_cas: None,
            invalidate: false,
            vivify: None,
        }
    }
}

/// A live item, borrowed from segment memory until the next `&mut` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemView<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// The cas unique.
    pub cas: u64,
    /// Expiry (unix seconds, 0 = never).
    pub expire_at: u32,
}

/// What a meta get learns beyond the item itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaHit<'a> {
    /// The item after the request's changes.
    pub item: ItemView<'a>,
    /// Seconds left (-1 = never), after any `T`.
    pub ttl: i64,
    /// Read before this request (`h`).
    pub hit_before: bool,
    /// Seconds since the previous access (`l`), minute resolution.
    pub last_access: u64,
    /// This client won the recache token (`W`).
    pub win: bool,
    /// The item is stale (`X`).
    pub stale: bool,
    /// Another client already holds the token (`Z`).
    pub win_sent: bool,
}

/// Options of a meta get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaGetOptions {
    /// `T`: new exptime.
    pub touch: Option<i64>,
    /// `N`: create an empty item with this exptime on a miss; the creator wins.
    pub vivify: Option<i64>,
    /// `R`: win the recache token when fewer seconds than this remain.
    pub recache: Option<i64>,
    /// `u`: do not mark the item accessed.
    pub no_bump: bool,
}

/// Options of a meta delete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaDeleteOptions {
    /// `C`: delete only if the cas matches.
    pub compare_cas: Option<u64>,
    /// `I`: mark stale (and give it a new cas) instead of deleting.
    pub invalidate: bool,
    /// `T` (with `I`): new exptime for the stale item.
    pub ttl: Option<i64>,
    /// `x`: drop the value but keep the item.
    pub remove_value: bool,
}

/// An arithmetic request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArithRequest {
    /// Increment (else decrement).
    pub incr: bool,
    /// Amount.
    pub delta: u64,
    /// Create the item with this value and exptime when missing.
    pub create: Option<(u64, i64)>,
    /// Only if the cas matches.
    pub compare_cas: Option<u64>,
    /// Meta `T`: new exptime on success.
    pub touch: Option<i64>,
}

/// Debug information for `me`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugInfo {
    /// Seconds until expiry, -1 for never.
    pub ttl: i64,
    /// Seconds since last access.
    pub last_access: u64,
    /// The cas unique.
    pub cas: u64,
    /// Read at least once.
    pub fetched: bool,
    /// Value length.
    pub value_len: usize,
    /// Total item bytes.
    pub item_len: usize,
}

/// Result of a lookup that may find an expired item.
enum Lookup {
    Found(Location),
    Missing,
    Expired,
}

/// Where the bytes of a new item's value come from.
#[derive(Clone, Copy)]
enum Part<'a> {
    Bytes(&'a [u8]),
    /// A range of segment memory (absolute offset, length).
    Stored(usize, usize),
}

/// The parts of a new item besides its key and value.
#[derive(Clone, Copy)]
struct NewItem {
    bits: u8,
    flags: u32,
    cas: u64,
    expire_at: u32,
    /// Unix seconds; encoded against the destination segment when written.
    last_access: u32,
}

/// One core's cache. See the module docs.
pub struct Shard {
    segments: Segments,
    index: Index,
    buckets: TtlBuckets,
    policy: Policy,
    /// The merge destination held back by the `merge` policy.
    spare: u32,
    now: u32,
    pending_flush: Option<u32>,
    rng: u64,
    expire_cursor: usize,
    merge_cursor: usize,
    stats: ShardStats,
}

impl Shard {
    /// Builds a shard, allocating all of its memory now. Call it on the
    /// thread that will own the shard.
    pub fn new(config: &ShardConfig) -> Result<Shard, ConfigError> {
        if !(4096..=MAX_SEGMENT_SIZE).contains(&config.segment_size)
            || !config.segment_size.is_power_of_two()
        {
            return Err(ConfigError::SegmentSize(config.segment_size));
        }
        let count = config.memory_bytes / config.segment_size;
        let needed = if config.eviction == Policy::Merge {
            3
        } else {
            2
        };
        if count < needed {
            return Err(ConfigError::TooLittleMemory {
                segments: count,
                needed,
            });
        }
        let capacity = config
            .index_capacity
            .unwrap_or(config.memory_bytes / INDEX_BYTES_PER_KEY);
        let segments = match &config.restart {
            Some(file) => Segments::in_file(&file.path, count, config.segment_size),
            None => Segments::new(count, config.segment_size),
        };
        let mut segments = segments.map_err(|e| ConfigError::Memory(e.to_string()))?;
        let spare = if config.eviction == Policy::Merge {
            segments.alloc(SegmentState::Spare, 0, 0).unwrap_or(NONE)
        } else {
            NONE
        };
        Ok(Shard {
            segments,
            index: Index::with_capacity(capacity),
            buckets: TtlBuckets::default(),
            policy: config.eviction,
            spare,
            now: 0,
            pending_flush: None,
            rng: 0x853c_49e6_748f_ea9b,
            expire_cursor: 0,
            merge_cursor: 0,
            stats: ShardStats::default(),
        })
    }

    /// Sets the clock (unix seconds). Applies a delayed flush_all whose time
    /// has come.
    pub fn set_time(&mut self, now: u32) {
        self.now = now;
        if self.pending_flush.is_some_and(|at| at <= now) {
            self.pending_flush = None;
            self.clear_all();
        }
    }

    /// The clock.
    pub fn now(&self) -> u32 {
        self.now
    }

    /// The counters.
    pub fn stats(&self) -> &ShardStats {
        &self.stats
    }

    /// Segments in all, free now, and bytes per segment.
    pub fn segment_counts(&self) -> (usize, usize, usize) {
        (
            self.segments.count(),
            self.segments.free_count(),
            self.segments.segment_size(),
        )
    }

    /// Segments in each non-empty TTL bucket: (bucket, segments).
    pub fn bucket_occupancy(&self) -> Vec<(usize, usize)> {
        (0..BUCKETS)
            .filter_map(|b| {
                let n = self.buckets.chain(b, &self.segments).count();
                (n > 0).then_some((b, n))
            })
            .collect()
    }

    /// Bytes of segments in use that no live item occupies (overwritten,
    /// deleted or expired items, alignment padding): what merge and
    /// expiry reclaim. Walks the segment table, so it is for `stats`, not
    /// for the request path.
    pub fn dead_bytes(&self) -> u64 {
        (0..self.segments.count() as u32)
            .map(|id| self.segments.meta(id))
            .filter(|m| matches!(m.state, SegmentState::Open | SegmentState::Sealed))
            .map(|m| u64::from(m.write_offset - m.live_bytes))
            .sum()
    }

    /// Starts loading the index memory that an operation on `key` will
    /// read. Calling it for every key of a pipelined batch before running
    /// the batch overlaps their cache misses. A hint: it changes nothing.
    #[inline]
    pub fn prefetch(&self, key: HashedKey<'_>) {
        self.index.prefetch(key.hash);
    }

    /// The second step after [`Shard::prefetch`], once the index memory has
    /// arrived: starts loading the item the lookup of `hash` will most
    /// likely read. A hint: it changes nothing.
    #[inline]
    pub fn prefetch_item(&self, hash: u64) {
        if let Some(addr) = self
            .index
            .likely_location(hash)
            .and_then(|loc| self.segments.item_address(loc))
        {
            // Header, key and a small value: the first two lines.
            super::index::prefetch(addr);
            super::index::prefetch(addr + 64);
        }
    }

    /// Bytes held by the index.
    pub fn index_bytes(&self) -> usize {
        self.index.allocation_size()
    }

    /// Keys the index holds before it must grow.
    pub fn index_capacity(&self) -> usize {
        self.index.capacity()
    }

    // ---- reading ----

    fn lookup(&mut self, key: HashedKey<'_>) -> Lookup {
        let Some(loc) = self.index.find(key, &self.segments) else {
            return Lookup::Missing;
        };
        if is_expired(self.segments.header(loc).expire_at, self.now) {
            self.kill(key.hash, loc);
            return Lookup::Expired;
        }
        Lookup::Found(loc)
    }

    fn find_live(&mut self, key: HashedKey<'_>) -> Option<Location> {
        match self.lookup(key) {
            Lookup::Found(loc) => Some(loc),
            _ => None,
        }
    }

    fn cas_of(&self, loc: Location) -> u64 {
        self.segments.item(loc).explicit_cas().unwrap_or_else(|| {
            let generation = self.segments.meta(self.segments.segment_of(loc)).generation;
            (u64::from(generation) << 32) | u64::from(loc.raw())
        })
    }

    fn view(&self, loc: Location) -> ItemView<'_> {
        let item = self.segments.item(loc);
        ItemView {
            key: item.key(),
            value: item.value(),
            flags: item.client_flags(),
            cas: self.cas_of(loc),
            expire_at: item.header.expire_at,
        }
    }

    /// Marks an item read: accessed (second chance), fetched, last access.
    fn bump(&mut self, loc: Location) -> Header {
        let before = self.segments.header(loc);
        let mut after = before;
        after.bits |= ACCESSED | FETCHED;
        after.last_access = self.access_code(loc, self.now);
        if after != before {
            self.segments.set_header(loc, &after);
        }
        before
    }

    /// get/gets: the item, marked as read.
    pub fn get(&mut self, key: HashedKey<'_>) -> Option<ItemView<'_>> {
        self.stats.cmd_get += 1;
        match self.lookup(key) {
            Lookup::Found(loc) => {
                self.stats.get_hits += 1;
                self.bump(loc);
                Some(self.view(loc))
            }
            Lookup::Expired => {
                self.stats.get_expired += 1;
                self.stats.get_misses += 1;
                None
            }
            Lookup::Missing => {
                self.stats.get_misses += 1;
                None
            }
        }
    }

    /// gat/gats: get, then set the expiry.
    pub fn get_and_touch(&mut self, key: HashedKey<'_>, exptime: i64) -> Option<ItemView<'_>> {
        self.stats.cmd_touch += 1;
        self.stats.cmd_get += 1;
        let Some(loc) = self.find_live(key) else {
            self.stats.touch_misses += 1;
            self.stats.get_misses += 1;
            return None;
        };
        self.stats.touch_hits += 1;
        self.stats.get_hits += 1;
        self.bump(loc);
        // A negative exptime expires the item, but this read still sees it
        // (as in memcached); its bytes stay put until the next write.
        self.set_expiry(key.hash, loc, exptime);
        Some(self.view(loc))
    }

    /// touch: set the expiry; false when the key is missing.
    pub fn touch(&mut self, key: HashedKey<'_>, exptime: i64) -> bool {
        self.stats.cmd_touch += 1;
        match self.find_live(key) {
            Some(loc) => {
                self.stats.touch_hits += 1;
                self.set_expiry(key.hash, loc, exptime);
                true
            }
            None => {
                self.stats.touch_misses += 1;
                false
            }
        }
    }

    /// Rewrites an item's expiry in place; false if that expired it.
    fn set_expiry(&mut self, hash: u64, loc: Location, exptime: i64) -> bool {
        match Expiry::from_exptime(exptime, self.now) {
            Expiry::Past => {
                self.kill(hash, loc);
                false
            }
            expiry => {
                let mut header = self.segments.header(loc);
                header.expire_at = expiry.stored();
                self.segments.set_header(loc, &header);
                // The segment must outlive its longest-lived item.
                self.segments
                    .meta_mut(self.segments.segment_of(loc))
                    .note_expiry(header.expire_at);
                true
            }
        }
    }

    /// Debug information for `me`, without marking the item read.
    pub fn debug(&mut self, key: HashedKey<'_>) -> Option<DebugInfo> {
        let loc = self.find_live(key)?;
        let item = self.segments.item(loc);
        Some(DebugInfo {
            ttl: ttl_remaining(item.header.expire_at, self.now),
            last_access: self.access_age(loc, item.header.last_access),
            cas: self.cas_of(loc),
            fetched: item.header.bits & FETCHED != 0,
            value_len: item.header.value_len as usize,
            item_len: item.header.total_len(),
        })
    }

    /// The header code for an access at `at` to the item at `loc`.
    fn access_code(&self, loc: Location, at: u32) -> u16 {
        let opened = self.segments.meta(self.segments.segment_of(loc)).created_at;
        access::encode(at, opened)
    }

    /// When the item at `loc`, whose header holds `code`, was last accessed.
    fn accessed_at(&self, loc: Location, code: u16) -> u32 {
        access::decode(
            code,
            self.segments.meta(self.segments.segment_of(loc)).created_at,
        )
    }

    /// Seconds since that access (meta `l`, `me`'s `la=`).
    fn access_age(&self, loc: Location, code: u16) -> u64 {
        u64::from(self.now.saturating_sub(self.accessed_at(loc, code)))
    }

    // ---- writing ----

    /// Allocates `len` bytes in bucket `bucket`, evicting if needed. `pin`
    /// is a segment that must survive (it holds data being copied).
    fn allocate(&mut self, bucket: usize, len: usize, pin: u32) -> Option<(u32, u32)> {
        loop {
            let tail = self.buckets.get(bucket).tail;
            if tail != NONE && self.segments.meta(tail).state == SegmentState::Open {
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
    fn write_item(
        &mut self,
        at: (u32, u32),
        key: Part<'_>,
        key_len: usize,
        value: [Part<'_>; 2],
        meta: NewItem,
    ) -> Location {
        let value_len: usize = value
            .iter()
            .map(|p| match p {
                Part::Bytes(b) => b.len(),
                Part::Stored(_, len) => *len,
            })
            .sum();
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
        self.segments.location(at.0, at.1)
    }

    /// Marks an item dead and drops its accounting (not its index entry).
    fn mark_dead(&mut self, loc: Location) {
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
    }

    /// Removes an item: index entry and accounting.
    fn kill(&mut self, hash: u64, loc: Location) {
        self.index.remove_location(hash, loc);
        self.mark_dead(loc);
    }

    /// Stores a new item for `key`, replacing whatever the index held.
    fn put(
        &mut self,
        key: HashedKey<'_>,
        value: [Part<'_>; 2],
        meta: NewItem,
        pin: u32,
    ) -> Result<Location, StoreResult> {
        let value_len: usize = value
            .iter()
            .map(|p| match p {
                Part::Bytes(b) => b.len(),
                Part::Stored(_, len) => *len,
            })
            .sum();
        let len = item::item_len(key.key.len(), value_len, meta.bits);
        if len > self.segments.segment_size() || key.key.is_empty() || key.key.len() > 250 {
            return Err(StoreResult::TooLarge);
        }
        let ttl = (meta.expire_at != 0).then(|| meta.expire_at.saturating_sub(self.now));
        let at = self
            .allocate(bucket_for(ttl), len, pin)
            .ok_or(StoreResult::OutOfMemory)?;
        let loc = self.write_item(at, Part::Bytes(key.key), key.key.len(), value, meta);
        if let Some(old) = self.index.upsert(key, loc, &self.segments) {
            self.mark_dead(old);
        }
        Ok(loc)
    }

    fn new_item(&self, flags: u32, expire_at: u32, new_cas: Option<u64>) -> NewItem {
        let mut bits = 0;
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

    /// set/add/replace/append/prepend/cas, and meta set.
    pub fn store(&mut self, key: HashedKey<'_>, req: &StoreRequest<'_>) -> StoreResult {
        self.stats.cmd_set += 1;
        // A plain set needs no lookup first: the index insert below returns
        // whatever it replaces.
        let unconditional = req.mode == StoreMode::Set && req.compare_cas.is_none();
        let existing = if unconditional {
            None
        } else {
            self.find_live(key)
        };
        let is_cas = req.compare_cas.is_some();
        let mut stale_store = false;
        if let Some(expected) = req.compare_cas {
            match existing {
                None => {
                    self.stats.cas_misses += 1;
                    return StoreResult::NotFound;
                }
                Some(loc) => {
                    let current = self.cas_of(loc);
                    if req.invalidate && expected < current {
                        stale_store = true;
                    } else if expected != current {
                        self.stats.cas_badval += 1;
                        return StoreResult::Exists;
                    }
                }
            }
        }
        let concat = matches!(req.mode, StoreMode::Append | StoreMode::Prepend);
        match (req.mode, existing) {
            (StoreMode::Add, Some(loc)) => {
                // memcached refreshes an item that an add collided with.
                self.bump(loc);
                return StoreResult::NotStored;
            }
            (StoreMode::Replace, None) => return StoreResult::NotStored,
            (StoreMode::Append | StoreMode::Prepend, None) => match req.vivify {
                Some(exptime) => {
                    return self.store(
                        key,
                        &StoreRequest {
                            mode: StoreMode::Set,
                            exptime,
                            vivify: None,
                            ..*req
                        },
                    )
                }
                None => return StoreResult::NotStored,
            },
            _ => {}
        }
        let result = if concat {
            let Some(old) = existing else {
                return StoreResult::NotStored;
            };
            self.concat(key, old, req)
        } else {
            self.replace_value(key, existing, req, stale_store)
        };
        if is_cas && matches!(result, StoreResult::Stored(_)) {
            self.stats.cas_hits += 1;
        }
        result
    }

    fn replace_value(
        &mut self,
        key: HashedKey<'_>,
        existing: Option<Location>,
        req: &StoreRequest<'_>,
        stale_store: bool,
    ) -> StoreResult {
        let mut expire_at = match Expiry::from_exptime(req.exptime, self.now) {
            Expiry::Past => {
                // Stored and immediately expired: only the old value goes.
                if let Some(loc) = existing.or_else(|| self.find_live(key)) {
                    self.kill(key.hash, loc);
                }
                return StoreResult::Stored(0);
            }
            expiry => expiry.stored(),
        };
        let mut meta = self.new_item(req.flags, expire_at, req.new_cas);
        if stale_store {
            // A late writer (its cas is older) stores, but the item stays
            // stale, keeps its expiry and its outstanding recache token.
            if let Some(old) = existing {
                let header = self.segments.header(old);
                expire_at = header.expire_at;
                meta.expire_at = expire_at;
                meta.bits |= STALE | (header.bits & WIN_SENT);
            }
        }
        match self.put(key, [Part::Bytes(req.value), Part::Bytes(&[])], meta, NONE) {
            Ok(loc) => StoreResult::Stored(self.cas_of(loc)),
            Err(StoreResult::TooLarge) if req.mode == StoreMode::Set => {
                // As memcached: a failed set must not leave the old value.
                if let Some(loc) = self.find_live(key) {
                    self.kill(key.hash, loc);
                }
                StoreResult::TooLarge
            }
            Err(e) => e,
        }
    }

    fn concat(&mut self, key: HashedKey<'_>, old: Location, req: &StoreRequest<'_>) -> StoreResult {
        let item = self.segments.item(old);
        let flags = item.client_flags();
        let expire_at = item.header.expire_at;
        let old_value_at = self.segments.absolute_of(old)
            + item.header.key_offset()
            + usize::from(item.header.key_len);
        let stored = Part::Stored(old_value_at, item.header.value_len as usize);
        let incoming = Part::Bytes(req.value);
        let parts = if req.mode == StoreMode::Append {
            [stored, incoming]
        } else {
            [incoming, stored]
        };
        let meta = self.new_item(flags, expire_at, req.new_cas);
        // The old item's segment is pinned: eviction cannot take the bytes
        // being copied.
        match self.put(key, parts, meta, self.segments.segment_of(old)) {
            Ok(loc) => StoreResult::Stored(self.cas_of(loc)),
            Err(e) => e,
        }
    }

    /// delete (with an optional cas, as binary Delete and meta `C` allow).
    pub fn delete(&mut self, key: HashedKey<'_>, compare_cas: Option<u64>) -> DeleteResult {
        self.meta_delete(
            key,
            &MetaDeleteOptions {
                compare_cas,
                ..MetaDeleteOptions::default()
            },
        )
    }

    /// `stats reset`: zeroes this shard's counters (not its gauges).
    pub fn reset_stats(&mut self) {
        self.stats.reset_counters();
    }

    /// Drops `key`'s value without counting a delete: memcached does this
    /// when a `set` is refused as too large, so no stale value outlives the
    /// client's attempt to replace it. True if there was one.
    pub fn unlink(&mut self, key: HashedKey<'_>) -> bool {
        match self.index.find(key, &self.segments) {
            Some(loc) => {
                self.kill(key.hash, loc);
                true
            }
            None => false,
        }
    }

    /// Meta delete: delete, invalidate (`I`) or empty (`x`).
    pub fn meta_delete(&mut self, key: HashedKey<'_>, opts: &MetaDeleteOptions) -> DeleteResult {
        let Some(loc) = self.find_live(key) else {
            self.stats.delete_misses += 1;
            return DeleteResult::NotFound;
        };
        if opts.compare_cas.is_some_and(|cas| cas != self.cas_of(loc)) {
            return DeleteResult::Exists;
        }
        self.stats.delete_hits += 1;
        if !(opts.invalidate || opts.remove_value) {
            self.kill(key.hash, loc);
            return DeleteResult::Deleted;
        }
        // Rewrite the item (a new location means a new cas).
        let item = self.segments.item(loc);
        let header = item.header;
        let mut meta = self.new_item(item.client_flags(), header.expire_at, None);
        if opts.invalidate {
            meta.bits |= STALE;
            if let Some(exptime) = opts.ttl {
                meta.expire_at = match Expiry::from_exptime(exptime, self.now) {
                    Expiry::Past => {
                        self.kill(key.hash, loc);
                        return DeleteResult::Deleted;
                    }
                    e => e.stored(),
                };
            }
        }
        let value = if opts.remove_value {
            Part::Bytes(&[])
        } else {
            let at =
                self.segments.absolute_of(loc) + header.key_offset() + usize::from(header.key_len);
            Part::Stored(at, header.value_len as usize)
        };
        match self.put(
            key,
            [value, Part::Bytes(&[])],
            meta,
            self.segments.segment_of(loc),
        ) {
            Ok(_) => DeleteResult::Deleted,
            // Could not rewrite: the item goes, which is what a delete wanted.
            Err(_) => {
                if let Some(loc) = self.find_live(key) {
                    self.kill(key.hash, loc);
                }
                DeleteResult::Deleted
            }
        }
    }

    /// incr/decr, with optional create, cas check and touch.
    pub fn arith(&mut self, key: HashedKey<'_>, req: &ArithRequest) -> ArithResult {
        let Some(loc) = self.find_live(key) else {
            if req.incr {
                self.stats.incr_misses += 1;
            } else {
                self.stats.decr_misses += 1;
            }
            let Some((initial, exptime)) = req.create else {
                return ArithResult::NotFound;
            };
            let mut digits = itoa::Buffer::new();
            let text = digits.format(initial).as_bytes();
            return match self.store(key, &StoreRequest::new(StoreMode::Add, text, 0, exptime)) {
                StoreResult::Stored(cas) => {
                    let ttl = match self.find_live(key) {
                        Some(loc) => ttl_remaining(self.segments.header(loc).expire_at, self.now),
                        None => -1,
                    };
                    ArithResult::Value {
                        value: initial,
                        cas,
                        ttl,
                    }
                }
                _ => ArithResult::OutOfMemory,
            };
        };
        if req.compare_cas.is_some_and(|cas| cas != self.cas_of(loc)) {
            return ArithResult::Exists;
        }
        let item = self.segments.item(loc);
        let Some(current) = parse_counter(item.value()) else {
            return ArithResult::NonNumeric;
        };
        let value = if req.incr {
            self.stats.incr_hits += 1;
            current.wrapping_add(req.delta)
        } else {
            self.stats.decr_hits += 1;
            current.saturating_sub(req.delta)
        };
        let mut expire_at = item.header.expire_at;
        if let Some(exptime) = req.touch {
            expire_at = match Expiry::from_exptime(exptime, self.now) {
                Expiry::Past => 1,
                e => e.stored(),
            };
        }
        let meta = self.new_item(item.client_flags(), expire_at, None);
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value).as_bytes();
        match self.put(key, [Part::Bytes(text), Part::Bytes(&[])], meta, NONE) {
            Ok(loc) => ArithResult::Value {
                value,
                cas: self.cas_of(loc),
                ttl: ttl_remaining(expire_at, self.now),
            },
            Err(_) => ArithResult::OutOfMemory,
        }
    }

    /// Meta get: get plus the anti-stampede logic (vivify, recache, stale).
    pub fn meta_get(&mut self, key: HashedKey<'_>, opts: &MetaGetOptions) -> Option<MetaHit<'_>> {
        self.stats.cmd_get += 1;
        let loc = match self.lookup(key) {
            Lookup::Found(loc) => loc,
            missing => {
                if matches!(missing, Lookup::Expired) {
                    self.stats.get_expired += 1;
                }
                self.stats.get_misses += 1;
                let exptime = opts.vivify?;
                return self.vivify(key, exptime);
            }
        };
        self.stats.get_hits += 1;
        if let Some(exptime) = opts.touch {
            self.stats.cmd_touch += 1;
            self.stats.touch_hits += 1;
            self.set_expiry(key.hash, loc, exptime);
        }
        let mut header = self.segments.header(loc);
        let before = header;
        let win_sent = header.bits & WIN_SENT != 0;
        let stale = header.bits & STALE != 0;
        let remaining = ttl_remaining(header.expire_at, self.now);
        let recache = opts
            .recache
            .is_some_and(|below| header.expire_at != 0 && remaining < below);
        let win = !win_sent && (recache || stale);
        if win {
            header.bits |= WIN_SENT;
        }
        if !opts.no_bump {
            header.bits |= ACCESSED | FETCHED;
            header.last_access = self.access_code(loc, self.now);
        }
        if header != before {
            self.segments.set_header(loc, &header);
        }
        Some(MetaHit {
            item: self.view(loc),
            ttl: remaining,
            hit_before: before.bits & FETCHED != 0,
            last_access: self.access_age(loc, before.last_access),
            win,
            stale,
            win_sent,
        })
    }

    /// Creates the empty placeholder a meta `N` miss asks for; its creator
    /// gets the win token, later readers see `Z` until someone sets a value.
    fn vivify(&mut self, key: HashedKey<'_>, exptime: i64) -> Option<MetaHit<'_>> {
        let expire_at = match Expiry::from_exptime(exptime, self.now) {
            Expiry::Past => return None,
            e => e.stored(),
        };
        let mut meta = self.new_item(0, expire_at, None);
        meta.bits |= WIN_SENT;
        let loc = self
            .put(key, [Part::Bytes(&[]), Part::Bytes(&[])], meta, NONE)
            .ok()?;
        Some(MetaHit {
            item: self.view(loc),
            ttl: ttl_remaining(expire_at, self.now),
            hit_before: false,
            last_access: 0,
            win: true,
            stale: false,
            win_sent: false,
        })
    }

    /// flush_all: everything stored before the flush instant goes. `None`
    /// (or a delay <= 0) means now; a later flush_all replaces a pending one.
    pub fn flush_all(&mut self, delay: Option<i64>) {
        self.stats.cmd_flush += 1;
        match delay.filter(|&d| d > 0) {
            None => {
                self.pending_flush = None;
                self.clear_all();
            }
            Some(d) => {
                // memcached invalidates items stored up to one second before
                // the instant it computes for the delay.
                let at = Expiry::from_exptime(d, self.now).stored().saturating_sub(1);
                self.pending_flush = Some(at);
                self.set_time(self.now);
            }
        }
    }

    fn clear_all(&mut self) {
        for id in 0..self.segments.count() as u32 {
            if matches!(
                self.segments.meta(id).state,
                SegmentState::Open | SegmentState::Sealed
            ) {
                self.segments.release(id);
            }
        }
        self.buckets.clear();
        self.index.clear();
        self.stats.curr_items = 0;
        self.stats.bytes = 0;
    }

    // ---- background expiry ----

    /// Frees segments whose items have all expired, looking at no more than
    /// `budget` segments. Returns how many it freed. The runtime calls this
    /// from a low-priority task; the budget bounds each call's latency.
    pub fn expire_step(&mut self, budget: usize) -> usize {
        let mut examined = 0;
        let mut freed = 0;
        for step in 0..BUCKETS {
            let b = (self.expire_cursor + step) % BUCKETS;
            if examined >= budget {
                self.expire_cursor = b;
                return freed;
            }
            let mut id = self.buckets.get(b).head;
            while id != NONE && examined < budget {
                examined += 1;
                let next = self.segments.meta(id).next;
                let max_expire = self.segments.meta(id).max_expire;
                if max_expire != NEVER && max_expire <= self.now {
                    self.drop_segment(id, true);
                    self.stats.expired_segments += 1;
                    freed += 1;
                }
                id = next;
            }
        }
        freed
    }

    /// The next live item of segment `id` at or after `offset`: where it
    /// is, its header, its key's hash, and where the item after it starts.
    fn next_live(&self, id: u32, mut offset: u32) -> Option<(Location, Header, u64, u32)> {
        let end = self.segments.meta(id).write_offset;
        while offset < end {
            let loc = self.segments.location(id, offset);
            let item = self.segments.item(loc);
            let header = item.header;
            offset += self.segments.aligned(header.total_len()) as u32;
            if header.bits & DEAD == 0 {
                return Some((loc, header, hash_key(item.key()), offset));
            }
        }
        None
    }

    /// Drops every live item of a segment and frees it.
    fn drop_segment(&mut self, id: u32, expired: bool) {
        let mut offset = 0;
        while let Some((loc, header, hash, next)) = self.next_live(id, offset) {
            offset = next;
            if expired || is_expired(header.expire_at, self.now) {
                self.stats.reclaimed += 1;
            } else {
                self.stats.evictions += 1;
            }
            self.kill(hash, loc);
        }
        self.buckets.unlink(id, &mut self.segments);
        self.segments.release(id);
    }

    // ---- eviction ----

    /// Frees at least one segment; false when nothing can go.
    fn evict(&mut self, pin: u32) -> bool {
        if self.policy == Policy::Merge && self.merge(pin) {
            return true;
        }
        let victim = match self.policy {
            Policy::Fifo | Policy::Merge => eviction::pick_fifo(&self.segments, &self.buckets, pin),
            Policy::Cte => eviction::pick_cte(&self.segments, &self.buckets, pin),
            Policy::Random => {
                eviction::pick_random(&self.segments, &self.buckets, pin, &mut self.rng)
            }
        };
        let Some(victim) = victim else {
            return false;
        };
        self.drop_segment(victim, false);
        self.stats.evicted_segments += 1;
        true
    }

    /// One merge pass: fold the oldest sealed segments of a bucket into the
    /// spare, keeping items read since the last pass and dropping the rest.
    fn merge(&mut self, pin: u32) -> bool {
        if self.spare == NONE {
            return false;
        }
        let Some((bucket, run, n)) =
            eviction::pick_merge_run(&self.segments, &self.buckets, pin, self.merge_cursor)
        else {
            return false;
        };
        self.merge_cursor = (bucket + 1) % BUCKETS;
        self.stats.merges += 1;
        let dst = self.spare;
        {
            // The merged segment re-enters the bucket as its newest sealed
            // segment: what it keeps must be read again before the chain
            // comes round to it (CLOCK at segment granularity).
            let meta = self.segments.meta_mut(dst);
            meta.state = SegmentState::Sealed;
            meta.created_at = self.now;
            meta.write_offset = 0;
            meta.live_items = 0;
            meta.live_bytes = 0;
            meta.max_expire = 0;
        }
        for &src in &run[..n] {
            self.merge_segment(src, dst);
            self.buckets.unlink(src, &mut self.segments);
            self.segments.release(src);
            self.stats.evicted_segments += 1;
        }
        self.buckets
            .push_before_open(bucket, dst, &mut self.segments);
        // One of the freed segments becomes the next spare.
        self.spare = self
            .segments
            .alloc(SegmentState::Spare, self.now, 0)
            .unwrap_or(NONE);
        true
    }

    fn merge_segment(&mut self, src: u32, dst: u32) {
        let mut offset = 0;
        while let Some((old, header, hash, next)) = self.next_live(src, offset) {
            offset = next;
            let item = self.segments.item(old);
            if is_expired(header.expire_at, self.now) {
                self.stats.reclaimed += 1;
                self.kill(hash, old);
                continue;
            }
            if header.bits & ACCESSED == 0 {
                self.stats.evictions += 1;
                self.kill(hash, old);
                continue;
            }
            // Keep it: copy into dst with its cas made explicit, so clients
            // holding that cas still match after the move.
            let cas = self.cas_of(old);
            let flags = item.client_flags();
            let key_len = usize::from(header.key_len);
            let mut bits = (header.bits & !(ACCESSED | HAS_CAS | HAS_FLAGS)) | HAS_CAS;
            if flags != 0 {
                bits |= HAS_FLAGS;
            }
            let len = item::item_len(key_len, header.value_len as usize, bits);
            let Some(at) = self.segments.try_append(dst, len) else {
                // The destination is full: the rest of the run is evicted.
                self.stats.evictions += 1;
                self.kill(hash, old);
                continue;
            };
            let base = self.segments.absolute_of(old) + header.key_offset();
            let new_meta = NewItem {
                bits,
                flags,
                cas,
                expire_at: header.expire_at,
                last_access: self.accessed_at(old, header.last_access),
            };
            let new = self.write_item(
                (dst, at),
                Part::Stored(base, key_len),
                key_len,
                [
                    Part::Stored(base + key_len, header.value_len as usize),
                    Part::Bytes(&[]),
                ],
                new_meta,
            );
            // write_item counted a new item; the move is not one.
            self.stats.total_items -= 1;
            self.index.relocate(hash, old, new);
            self.mark_dead(old);
            self.stats.merge_retained += 1;
        }
    }

    // ---- checks ----

    /// Verifies the shard's invariants: every index entry points at a live
    /// item that the index finds again by its key, the per-segment and
    /// shard counters agree with the items, and no bucket chain holds a free
    /// segment. Returns a description of the first violation. For tests and
    /// debugging; it walks all memory.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut indexed = 0u64;
        for loc in self.index.locations() {
            let item = self.segments.item(loc);
            if item.header.bits & DEAD != 0 {
                return Err(format!("index points at dead item {loc:?}"));
            }
            let hash = hash_key(item.key());
            let found = self.index.find(
                HashedKey {
                    key: item.key(),
                    hash,
                },
                &self.segments,
            );
            if found != Some(loc) {
                return Err(format!("key at {loc:?} indexes to {found:?}"));
            }
            indexed += 1;
        }
        let (mut live, mut bytes) = (0u64, 0u64);
        for id in 0..self.segments.count() as u32 {
            let meta = *self.segments.meta(id);
            if matches!(meta.state, SegmentState::Free | SegmentState::Spare) {
                continue;
            }
            let (mut seg_live, mut seg_bytes) = (0u32, 0u32);
            for (_, item) in self.segments.items(id) {
                if item.header.bits & DEAD == 0 {
                    seg_live += 1;
                    seg_bytes += item.header.total_len() as u32;
                }
            }
            if (seg_live, seg_bytes) != (meta.live_items, meta.live_bytes) {
                return Err(format!(
                    "segment {id}: counted {seg_live} items/{seg_bytes} B, meta says {}/{}",
                    meta.live_items, meta.live_bytes
                ));
            }
            if meta.write_offset as usize > self.segments.segment_size() {
                return Err(format!("segment {id} overflows"));
            }
            live += u64::from(seg_live);
            bytes += u64::from(seg_bytes);
        }
        if live != indexed || live != self.stats.curr_items || bytes != self.stats.bytes {
            return Err(format!(
                "live {live}, indexed {indexed}, curr_items {}, bytes {bytes} vs {}",
                self.stats.curr_items, self.stats.bytes
            ));
        }
        for b in 0..BUCKETS {
            for id in self.buckets.chain(b, &self.segments) {
                let meta = self.segments.meta(id);
                if !matches!(meta.state, SegmentState::Open | SegmentState::Sealed)
                    || usize::from(meta.bucket) != b
                {
                    return Err(format!(
                        "bucket {b} chains segment {id} in {:?}",
                        meta.state
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The stored number of an incr/decr target: decimal digits, optionally
/// space-padded on the right (memcached may pad after a decr), at most 20.
fn parse_counter(value: &[u8]) -> Option<u64> {
    let digits = match value.iter().rposition(|&b| b != b' ') {
        Some(end) => &value[..=end],
        None => return None,
    };
    if digits.len() > 20 {
        return None;
    }
    segcore_protocol::number::parse_u64(digits).filter(|_| digits[0].is_ascii_digit())
}

pub mod restart;
#[cfg(test)]
mod tests;
