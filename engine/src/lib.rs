//! segcore's engine: per-core shard storage and the thread-per-core runtime.
//!
//! Empty so far: the storage (issue "segcore-engine storage") and the runtime
//! (issue "segcore server") land here. It already depends on the protocol
//! crate so the layering bin -> engine -> protocol is fixed from the start.
