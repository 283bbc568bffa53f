//! What an op produced, as the reply encoders read it.

use crate::storage::{ArithResult, DebugInfo, DeleteResult, ReadFacts, StoreResult};

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
    /// Access history and recache token (meta get).
    pub facts: ReadFacts,
}

/// What an op produced. Only a hit carries bytes (the value); every other
/// outcome crosses cores as it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<B, R> {
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
    /// A core's report for `stats` (the runtime says what it holds).
    Stats(Box<R>),
}

impl<B, R> Outcome<B, R> {
    /// The same outcome with its value held another way.
    pub fn map<C>(self, f: impl FnOnce(B) -> C) -> Outcome<C, R> {
        match self {
            Outcome::Hit(h) => Outcome::Hit(Hit {
                value: f(h.value),
                flags: h.flags,
                cas: h.cas,
                ttl: h.ttl,
                facts: h.facts,
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
