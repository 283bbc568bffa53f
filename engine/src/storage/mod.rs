//! Shard storage: segment-based slab memory, a compact index, exact TTLs
//! and single-writer segment eviction.
//!
//! A [`Shard`] holds one core's slice of the cache. It knows nothing of
//! sockets or executors, so it is tested and benchmarked on its own.
//!
//! - [`memory`]: the up-front, huge-page-backed mapping a shard owns.
//! - [`memory_files`]: a server's `-e` files as one locked set.
//! - [`segment`]: that memory carved into append-only segments.
//! - [`item`]: the packed item layout inside a segment.
//! - [`access`]: an item's last-access time in 16 bits.
//! - [`location`]: the packed u32 an index slot holds.
//! - [`index`]: key -> location, in pieces that grow one at a time.
//! - [`frequency`]: a count-min sketch of recent accesses (`s3fifo`).
//! - [`ttl`]: TTL buckets grouping segments by lifetime.
//! - [`eviction`]: the policies that pick victim segments.
//! - [`time`]: memcached's exptime rules.
//! - [`hash`]: the one hash per key that picks both shard and slot.
//! - [`stats`]: per-shard counters.

pub(crate) mod access;
pub(crate) mod classes;
pub(crate) mod eviction;
pub(crate) mod frequency;
pub(crate) mod hash;
pub(crate) mod index;
pub(crate) mod item;
pub(crate) mod location;
pub(crate) mod memory;
pub mod memory_files;
pub(crate) mod prefault;
pub(crate) mod segment;
mod shard;
pub(crate) mod stats;
pub(crate) mod time;
pub(crate) mod ttl;

pub use classes::ClassStats;
pub use eviction::Policy;
pub use hash::HashedKey;
pub use memory::tune_malloc;
pub use memory_files::{MemoryFiles, MemoryFilesError};
pub use shard::restart::{meta_path, RestartError, Restored, SavedBy, RESTART_FORMAT};
pub use shard::{
    ArithRequest, ArithResult, ConfigError, DebugInfo, DeleteOptions, DeleteResult, ItemView,
    ReadFacts, ReadHit, ReadOptions, RestartFile, Shard, ShardConfig, StoreMode, StoreRequest,
    StoreResult,
};
pub use stats::ShardStats;
