//! segcore's engine: per-core shard storage, and (to come) the
//! thread-per-core runtime that serves it over the network.
//!
//! - [`storage`]: a [`storage::Shard`] is one core's cache: segments, index,
//!   TTL buckets, eviction. Single-threaded by design; the runtime gives each
//!   pinned core exactly one.
//!
//! The crate depends on `segcore-protocol` so the runtime can parse and
//! encode on the core that owns each connection.

pub mod runtime;
pub mod storage;
