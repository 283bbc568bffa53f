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
//! or a merge moved it and its cas had to stay the same: only when a reply
//! may have shown the cas ([`item::CAS_SHOWN`]). An item moved before any
//! client saw its cas takes the cas of its new place.

use super::access;
use super::classes::{self, ClassStats};
use super::eviction::{self, Picker, Policy, Victim};
use super::frequency::FrequencySketch;
use super::hash::{hash_key, HashedKey};
use super::index::Index;
use super::item::{
    self, Header, ACCESSED, CAS_SHOWN, DEAD, FETCHED, HAS_CAS, HAS_FLAGS, STALE, WIN_SENT,
};
use super::location::{Location, MAX_SEGMENT_SIZE};
use super::segment::{SegmentState, Segments};
use super::stats::ShardStats;
use super::time::{is_expired, ttl_remaining, Expiry};
use super::ttl::{bucket_for, TtlBuckets, BUCKETS};

/// The item size the access sketch is planned for: it counts keys of a
/// shard full of items this large (24-byte keys, 64-byte values).
const SKETCH_BYTES_PER_KEY: usize = 96;

/// How a shard is sized and behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// Bytes of item memory (this shard's part of `-m`).
    pub memory_bytes: usize,
    /// Bytes per segment; also the largest item.
    pub segment_size: usize,
    /// What to evict when full.
    pub eviction: Policy,
    /// Pieces the index is split into; `None` plans them from the memory
    /// budget (see [`super::index`]). Tests use few, so pieces grow often.
    pub index_pieces: Option<usize>,
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
    /// This run's id, written into the save so that a start can tell the
    /// saves of one stop from a mix of several.
    pub run: u64,
    /// Which core this shard is, of how many (also written into the save).
    pub core: u32,
    /// How many cores the server runs.
    pub cores: u32,
    /// The run whose save to take back (the server checked that every core
    /// has one of it); `None` takes back a save of any run.
    pub restore_run: Option<u64>,
}

impl ShardConfig {
    /// Checks the config without allocating anything: a segment size the
    /// storage can address, and memory for the segments the policy needs.
    /// The one place these rules live (the server checks before it starts
    /// any core, the shard again when it is built).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(4096..=MAX_SEGMENT_SIZE).contains(&self.segment_size)
            || !self.segment_size.is_power_of_two()
        {
            return Err(ConfigError::SegmentSize(self.segment_size));
        }
        let segments = self.memory_bytes / self.segment_size;
        let needed = self.eviction.min_segments();
        if segments < needed {
            return Err(ConfigError::TooLittleMemory { segments, needed });
        }
        Ok(())
    }
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            memory_bytes: 64 << 20,
            segment_size: 1 << 20,
            eviction: Policy::default(),
            index_pieces: None,
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
                "memory holds {segments} segment(s) but at least {needed} are needed"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

pub use types::{
    ArithRequest, ArithResult, DebugInfo, DeleteOptions, DeleteResult, ItemView, ReadFacts,
    ReadHit, ReadOptions, StoreMode, StoreRequest, StoreResult,
};

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

impl Part<'_> {
    /// Bytes it holds.
    fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::Stored(_, len) => *len,
        }
    }

    /// Bytes a value made of `parts` holds.
    fn total(parts: &[Part<'_>]) -> usize {
        parts.iter().map(Part::len).sum()
    }
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

impl NewItem {
    /// Clears [`CAS_SHOWN`] when the reply to the write hides the cas.
    fn cas_hidden(mut self, hidden: bool) -> NewItem {
        if hidden {
            self.bits &= !CAS_SHOWN;
        }
        self
    }
}

/// One core's cache. See the module docs.
pub struct Shard {
    segments: Segments,
    index: Index,
    buckets: TtlBuckets,
    /// The eviction policy and its own state.
    evictor: Box<dyn Picker>,
    /// Recent accesses by key, for the `s3fifo` policy; here
    /// rather than in the picker because every lookup feeds it (a plain
    /// field test, not a virtual call, on the read path).
    sketch: Option<FrequencySketch>,
    now: u32,
    pending_flush: Option<u32>,
    expire_cursor: usize,
    stats: ShardStats,
    /// memcached's per-class view of the items (`stats items`/`slabs`).
    classes: ClassStats,
}

impl Shard {
    /// Builds a shard, allocating all of its memory now. Call it on the
    /// thread that will own the shard.
    pub fn new(config: &ShardConfig) -> Result<Shard, ConfigError> {
        config.validate()?;
        let count = config.memory_bytes / config.segment_size;
        let segments = match &config.restart {
            Some(file) => Segments::in_file(&file.path, count, config.segment_size),
            None => Segments::new(count, config.segment_size),
        };
        let mut segments = segments.map_err(|e| ConfigError::Memory(e.to_string()))?;
        let mut evictor = eviction::picker(config.eviction);
        evictor.reserve(&mut segments);
        let sketch = if config.eviction.counts_frequency() {
            let keys = config.memory_bytes / SKETCH_BYTES_PER_KEY;
            Some(FrequencySketch::for_keys(keys).map_err(|e| ConfigError::Memory(e.to_string()))?)
        } else {
            None
        };
        Ok(Shard {
            segments,
            index: match config.index_pieces {
                Some(pieces) => Index::with_pieces(pieces),
                None => Index::for_memory(config.memory_bytes),
            },
            buckets: TtlBuckets::default(),
            evictor,
            sketch,
            now: 0,
            pending_flush: None,
            expire_cursor: 0,
            stats: ShardStats::default(),
            classes: ClassStats::default(),
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
}

/// The stored number of an incr/decr target: decimal digits, optionally
/// space-padded on the right (memcached may pad after a decr), at most 20.
fn parse_counter(value: &[u8]) -> Option<u64> {
    let digits = match value.iter().rposition(|&b| b != b' ') {
        Some(end) => &value[..=end],
        None => return None,
    };
    if digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

mod alloc;
mod checks;
mod introspect;
mod read;
mod reclaim;
pub mod restart;
#[cfg(test)]
mod tests;
mod types;
mod write;

#[cfg(test)]
mod growth_tests;
#[cfg(test)]
mod policy_tests;
