//! The unit of work a shard executes: one key-level operation, and its
//! outcome.
//!
//! Connections turn each request (text, meta or binary) into [`Op`]s, one
//! per key. An op for the local shard runs inline, borrowing the key and
//! value from the read buffer; an op for another core's shard is copied into
//! a [`Batch`] (one per destination per read) and its [`Outcome`] comes back
//! in a [`Replies`]. Both sides use the same `Op`/`Outcome` types, generic
//! over how bytes are held: `&[u8]` inline, a [`Span`] of the message's
//! arena when crossing cores.

pub use super::metrics::{ConnCounters, CoreReport};
use crate::storage::{
    ArithRequest, ArithResult, DebugInfo, DeleteOptions, DeleteResult, HashedKey, ReadOptions,
    Shard, StoreMode, StoreRequest, StoreResult,
};

// Everything in a `Batch` or `Replies` crosses cores.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Batch>();
    assert_send::<Replies>();
};

/// A byte range in a message arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The bytes of this span in `arena`.
    #[inline]
    pub fn get<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        &arena[self.start as usize..(self.start + self.len) as usize]
    }

    /// Copies `bytes` to the end of `arena`.
    #[inline]
    pub fn push(arena: &mut Vec<u8>, bytes: &[u8]) -> Span {
        let start = arena.len() as u32;
        arena.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len() as u32,
        }
    }
}

/// One operation on one key (or, for `Flush` and `Stats`, on a whole shard).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<B> {
    /// get/gets (touch `None`) and gat/gats.
    Get {
        /// The key.
        key: B,
        /// gat's new exptime.
        touch: Option<i64>,
        /// The reply does not show the cas (text get/gat).
        hides_cas: bool,
    },
    /// Meta get with its anti-stampede options.
    MetaGet {
        /// The key.
        key: B,
        /// `T`, `N`, `R`, `u`.
        opts: ReadOptions,
    },
    /// Every storage command.
    Store {
        /// The key.
        key: B,
        /// The data.
        value: B,
        /// Everything else about the store.
        req: StoreFields,
    },
    /// delete / md.
    Delete {
        /// The key.
        key: B,
        /// `C`, `I`, `T`, `x`.
        opts: DeleteOptions,
    },
    /// incr/decr / ma.
    Arith {
        /// The key.
        key: B,
        /// Direction, delta, auto-create, cas, touch.
        req: ArithRequest,
    },
    /// touch.
    Touch {
        /// The key.
        key: B,
        /// New exptime.
        exptime: i64,
    },
    /// me.
    Debug {
        /// The key.
        key: B,
    },
    /// A set refused as too large: drop the key's old value, silently and
    /// uncounted, as memcached does rather than leave stale data.
    Unlink {
        /// The key.
        key: B,
    },
    /// flush_all, on every shard.
    Flush {
        /// Delay in seconds (memcached exptime rules), `None` for now.
        delay: Option<i64>,
    },
    /// Collect a core's counters, plus the lists `also` names.
    Stats {
        /// The per-core lists this request needs.
        also: ReportLists,
    },
    /// `stats reset`, on every core.
    ResetStats,
    /// `stats detail on|off`, on every core.
    Detail {
        /// Whether per-prefix counting is on.
        on: bool,
    },
}

/// The per-core lists a `stats` request needs besides the counters: copied
/// only for the group that prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportLists {
    /// `stats detail dump`: the prefix counts.
    pub prefixes: bool,
    /// `stats conns`: the listener and client connections.
    pub conns: bool,
    /// `stats latency`: the latency histograms.
    pub latency: bool,
    /// `stats hotkeys`: the most requested keys.
    pub hot_keys: bool,
    /// `stats items`/`stats slabs`: the per-class counters.
    pub classes: bool,
}

/// What whole-core ops (`stats`, `stats reset`) need beyond the shard:
/// the core's own counters.
pub trait CoreAccess {
    /// This core's contribution to `stats`, with the lists asked for.
    fn report(&self, shard: &Shard, also: ReportLists) -> CoreReport;
    /// Zeroes the core's connection counters (`stats reset`).
    fn reset_counters(&self);
    /// Turns per-prefix counting on or off (`stats detail on|off`).
    fn set_detail(&self, on: bool);
    /// Offers a requested key to the hot-key table (which samples).
    fn sample_key(&self, _key: &[u8]) {}
}

/// The storage mode a wire's storage mode means (text, meta and binary
/// share one type). `cas` stores as `set` does, on the condition the
/// caller adds.
pub fn store_mode(mode: segcore_protocol::StoreMode) -> StoreMode {
    use segcore_protocol::StoreMode as Wire;
    match mode {
        Wire::Set | Wire::Cas => StoreMode::Set,
        Wire::Add => StoreMode::Add,
        Wire::Replace => StoreMode::Replace,
        Wire::Append => StoreMode::Append,
        Wire::Prepend => StoreMode::Prepend,
    }
}

/// A [`StoreRequest`] without its value, so it can be copied across cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreFields {
    /// The condition.
    pub mode: StoreMode,
    /// Client flags.
    pub flags: u32,
    /// memcached exptime.
    pub exptime: i64,
    /// Store only if the cas matches.
    pub compare_cas: Option<u64>,
    /// Meta `E`.
    pub new_cas: Option<u64>,
    /// Meta `I`.
    pub invalidate: bool,
    /// Meta `N` for append.
    pub vivify: Option<i64>,
    /// The reply does not show the new cas.
    pub hides_cas: bool,
}

impl StoreFields {
    /// The shard's request: these fields with the data.
    pub fn with_value(self, value: &[u8]) -> StoreRequest<'_> {
        StoreRequest {
            mode: self.mode,
            value,
            flags: self.flags,
            exptime: self.exptime,
            compare_cas: self.compare_cas,
            new_cas: self.new_cas,
            invalidate: self.invalidate,
            vivify: self.vivify,
            hides_cas: self.hides_cas,
        }
    }

    /// A plain store.
    pub fn new(mode: StoreMode, flags: u32, exptime: i64) -> Self {
        StoreFields {
            mode,
            flags,
            exptime,
            compare_cas: None,
            new_cas: None,
            invalidate: false,
            vivify: None,
            hides_cas: false,
        }
    }
}

impl<B> Op<B> {
    /// The key this op touches, `None` for whole-shard ops.
    pub fn key(&self) -> Option<&B> {
        match self {
            Op::Get { key, .. }
            | Op::MetaGet { key, .. }
            | Op::Store { key, .. }
            | Op::Delete { key, .. }
            | Op::Arith { key, .. }
            | Op::Touch { key, .. }
            | Op::Debug { key }
            | Op::Unlink { key } => Some(key),
            Op::Flush { .. } | Op::Stats { .. } | Op::ResetStats | Op::Detail { .. } => None,
        }
    }

    /// The same op with its bytes held another way.
    pub fn map<C>(self, mut f: impl FnMut(B) -> C) -> Op<C> {
        match self {
            Op::Get {
                key,
                touch,
                hides_cas,
            } => Op::Get {
                key: f(key),
                touch,
                hides_cas,
            },
            Op::MetaGet { key, opts } => Op::MetaGet { key: f(key), opts },
            Op::Store { key, value, req } => Op::Store {
                key: f(key),
                value: f(value),
                req,
            },
            Op::Delete { key, opts } => Op::Delete { key: f(key), opts },
            Op::Arith { key, req } => Op::Arith { key: f(key), req },
            Op::Touch { key, exptime } => Op::Touch {
                key: f(key),
                exptime,
            },
            Op::Debug { key } => Op::Debug { key: f(key) },
            Op::Unlink { key } => Op::Unlink { key: f(key) },
            Op::Flush { delay } => Op::Flush { delay },
            Op::Stats { also } => Op::Stats { also },
            Op::ResetStats => Op::ResetStats,
            Op::Detail { on } => Op::Detail { on },
        }
    }
}

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

/// What an op produced.
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
    /// The same outcome with its bytes held another way.
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

/// Runs `op` on `shard`. The outcome borrows the shard's memory until the
/// shard is next used. `report` answers [`Op::Stats`].
pub fn execute<'s, C: CoreAccess + ?Sized>(
    shard: &'s mut Shard,
    op: &Op<&[u8]>,
    core: &C,
) -> Outcome<&'s [u8]> {
    let now = shard.now();
    if let Some(key) = op.key() {
        core.sample_key(key);
    }
    fn hashed(key: &[u8]) -> HashedKey<'_> {
        HashedKey::new(key)
    }
    match *op {
        Op::Get {
            key,
            touch,
            hides_cas,
        } => {
            let item = match touch {
                None => shard.get_with(hashed(key), !hides_cas),
                Some(exptime) => shard.get_and_touch(hashed(key), exptime),
            };
            match item {
                Some(item) => Outcome::Hit(Hit {
                    value: item.value,
                    flags: item.flags,
                    cas: item.cas,
                    ttl: crate::storage::time::ttl_remaining(item.expire_at, now),
                    hit_before: false,
                    last_access: 0,
                    win: false,
                    stale: false,
                    win_sent: false,
                }),
                None => Outcome::Miss,
            }
        }
        Op::MetaGet { key, opts } => match shard.meta_get(hashed(key), &opts) {
            Some(hit) => Outcome::Hit(Hit {
                value: hit.item.value,
                flags: hit.item.flags,
                cas: hit.item.cas,
                ttl: hit.ttl,
                hit_before: hit.hit_before,
                last_access: hit.last_access,
                win: hit.win,
                stale: hit.stale,
                win_sent: hit.win_sent,
            }),
            None => Outcome::Miss,
        },
        Op::Store { key, value, req } => {
            Outcome::Stored(shard.store(hashed(key), &req.with_value(value)))
        }
        Op::Delete { key, opts } => Outcome::Deleted(shard.meta_delete(hashed(key), &opts)),
        Op::Arith { key, req } => Outcome::Arith(shard.arith(hashed(key), &req)),
        Op::Touch { key, exptime } => Outcome::Touched(shard.touch(hashed(key), exptime)),
        Op::Debug { key } => Outcome::Debug(shard.debug(hashed(key))),
        Op::Unlink { key } => {
            shard.unlink(hashed(key));
            Outcome::Unlinked
        }
        Op::Flush { delay } => {
            shard.flush_all(delay);
            Outcome::Done
        }
        Op::Stats { also } => Outcome::Stats(Box::new(core.report(shard, also))),
        Op::ResetStats => {
            shard.reset_stats();
            core.reset_counters();
            Outcome::Done
        }
        Op::Detail { on } => {
            core.set_detail(on);
            Outcome::Done
        }
    }
}

/// Ops bound for one other core, from one connection's read. The bytes live
/// in `arena`; the message is `Send` and owns everything it refers to.
#[derive(Debug, Default)]
pub struct Batch {
    /// Key and value bytes.
    pub arena: Vec<u8>,
    /// The ops, in request order.
    pub ops: Vec<Op<Span>>,
}

impl Batch {
    /// Copies an op into the batch.
    pub fn push(&mut self, op: &Op<&[u8]>) {
        let arena = &mut self.arena;
        self.ops.push(op.map(|bytes| Span::push(arena, bytes)));
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Ops on a key (what `forwarded_*` count: commands for every core,
    /// such as `stats`, are not forwarding of data).
    pub fn keyed_ops(&self) -> u64 {
        self.ops.iter().filter(|op| op.key().is_some()).count() as u64
    }

    /// Runs every op on `shard`, copying outcomes into `replies`.
    pub fn execute<C: CoreAccess + ?Sized>(
        &self,
        shard: &mut Shard,
        core: &C,
        replies: &mut Replies,
    ) {
        for op in &self.ops {
            let op = op.map(|span| span.get(&self.arena));
            let outcome = execute(shard, &op, core);
            let arena = &mut replies.arena;
            replies
                .outcomes
                .push(outcome.map(|bytes| Span::push(arena, bytes)));
        }
    }
}

/// The outcomes of a [`Batch`], in the same order.
#[derive(Debug, Default)]
pub struct Replies {
    /// Value bytes.
    pub arena: Vec<u8>,
    /// One outcome per op.
    pub outcomes: Vec<Outcome<Span>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ShardConfig;

    fn shard() -> Shard {
        let mut shard = Shard::new(&ShardConfig {
            memory_bytes: 1 << 20,
            segment_size: 64 << 10,
            ..ShardConfig::default()
        })
        .unwrap();
        shard.set_time(1_700_000_000);
        shard
    }

    #[test]
    fn a_batch_runs_remotely_as_it_would_inline() {
        let ops: Vec<Op<&[u8]>> = vec![
            Op::Store {
                key: b"a",
                value: b"hello",
                req: StoreFields::new(StoreMode::Set, 7, 0),
            },
            Op::Get {
                key: b"a",
                touch: None,
                hides_cas: false,
            },
            Op::Get {
                key: b"b",
                touch: None,
                hides_cas: false,
            },
            Op::Arith {
                key: b"a",
                req: ArithRequest {
                    incr: true,
                    delta: 1,
                    ..ArithRequest::default()
                },
            },
            Op::Delete {
                key: b"a",
                opts: DeleteOptions::default(),
            },
            Op::Stats {
                also: ReportLists::default(),
            },
        ];
        struct ShardOnly;
        impl CoreAccess for ShardOnly {
            fn report(&self, s: &Shard, _: ReportLists) -> CoreReport {
                CoreReport {
                    shard: *s.stats(),
                    ..CoreReport::default()
                }
            }
            fn reset_counters(&self) {}
            fn set_detail(&self, _: bool) {}
        }
        let report = ShardOnly;
        let mut inline = shard();
        let expected: Vec<Outcome<Vec<u8>>> = ops
            .iter()
            .map(|op| execute(&mut inline, op, &report).map(|b| b.to_vec()))
            .collect();

        let mut batch = Batch::default();
        for op in &ops {
            batch.push(op);
        }
        let mut remote = shard();
        let mut replies = Replies::default();
        batch.execute(&mut remote, &report, &mut replies);
        let got: Vec<Outcome<Vec<u8>>> = replies
            .outcomes
            .iter()
            .map(|o| o.clone().map(|span| span.get(&replies.arena).to_vec()))
            .collect();
        // cas values differ only if placement differs; both shards are fresh.
        assert_eq!(got, expected);
        assert!(matches!(got[1], Outcome::Hit(Hit { flags: 7, .. })));
        assert_eq!(got[2], Outcome::Miss);
        assert_eq!(got[3], Outcome::Arith(ArithResult::NonNumeric));
    }
}
