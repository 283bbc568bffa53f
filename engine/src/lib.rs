//! segcore's engine: per-core shard storage, and the thread-per-core
//! runtime that serves it over the network.
//!
//! - [`storage`]: a [`storage::Shard`] is one core's cache: segments, index,
//!   TTL buckets, eviction, warm restart. Single-threaded by design; the
//!   runtime gives each pinned core exactly one.
//! - [`command`]: what a request means once its wire is set aside (an op
//!   on a key or on every core), and running it on a shard.
//! - [`runtime`]: one pinned glommio executor per core with its shard, its
//!   listener and its connections, and the forwarding between cores.
//!
//! The crate depends on `segcore-protocol` so the runtime can parse and
//! encode on the core that owns each connection.

pub mod command;
pub mod runtime;
pub mod storage;
