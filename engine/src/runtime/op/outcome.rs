//! What an op produced, as the reply encoders read it.

use super::CoreReport;
use crate::storage::{ArithResult, DebugInfo, DeleteResult, StoreResult};

/// A found item, as the encoders need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<B> {
    /// The value.
    pub value: B,
    /// Client flags.
    pub flags: u32,
    /// cas unique.
    pub cas: u64,
    /// Seconds left, -1 for never.
    pub ttl: i64,
    /// Read before (meta `h`).
    pub hit_before: bool,
    /// Seconds since last access (meta `l`).
    pub last_access: u64,
    /// Won the recache token (`W`).
    pub win: bool,
    /// Stale (`X`).
    pub stale: bool,
    /// Token already out (`Z`).
    pub win_sent: bool,
}

/// What an op produced. Only a hit carries bytes (the value); every other
/// outcome crosses cores as it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<B> {
    /// get/gat/mg found the item.
    Hit(Hit<B>),
    /// get/gat/mg found nothing.
    Miss,
    /// A store's result.
    Stored(StoreResult),
    /// A delete's result.
    Deleted(DeleteResult),
    /// incr/decr's result.
    Arith(ArithResult),
    /// touch: whether the key existed.
    Touched(bool),
    /// me.
    Debug(Option<DebugInfo>),
    /// A whole-core op (flush_all, `stats reset`, `stats detail`) done.
    Done,
    /// An unlink done (nothing to tell the client).
    Unlinked,
    /// A core's counters (shard and connections).
    Stats(Box<CoreReport>),
}

impl<B> Outcome<B> {
    /// The same outcome with its value held another way.
    pub fn map<C>(self, f: impl FnOnce(B) -> C) -> Outcome<C> {
        match self {
            Outcome::Hit(h) => Outcome::Hit(Hit {
                value: f(h.value),
                flags: h.flags,
                cas: h.cas,
                ttl: h.ttl,
                hit_before: h.hit_before,
                last_access: h.last_access,
                win: h.win,
                stale: h.stale,
                win_sent: h.win_sent,
            }),
            Outcome::Miss => Outcome::Miss,
            Outcome::Stored(r) => Outcome::Stored(r),
            Outcome::Deleted(r) => Outcome::Deleted(r),
            Outcome::Arith(r) => Outcome::Arith(r),
            Outcome::Touched(r) => Outcome::Touched(r),
            Outcome::Debug(r) => Outcome::Debug(r),
            Outcome::Done => Outcome::Done,
            Outcome::Unlinked => Outcome::Unlinked,
            Outcome::Stats(s) => Outcome::Stats(s),
        }
    }
}
