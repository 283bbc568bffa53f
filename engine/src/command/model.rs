//! The command model: an [`Op`] on one key or on every core, what it does
//! ([`KeyCommand`], [`CoreCommand`]), and the per-core lists a `stats`
//! request asks for.

use crate::storage::hash::hash_key;
use crate::storage::{ArithRequest, DeleteOptions, HashedKey, ReadOptions, StoreRequest};

/// One operation: on one key, run by the key's owner, or on every core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<B> {
    /// A command on one key.
    Key {
        /// The key.
        key: B,
        /// The key's hash, computed once where the request is lowered: it
        /// picks the owner, and the owner's index uses it (forwarded with
        /// the op, so no core hashes the key again).
        hash: u64,
        /// The data of a store (empty for every other command).
        value: B,
        /// What to do with the key.
        cmd: KeyCommand,
    },
    /// A command every core runs on its own shard and counters.
    Core(CoreCommand),
}

/// What a keyed op does: each command the wires share, with everything but
/// its key and data (so it copies across cores as it is).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyCommand {
    /// Every read: get/gets, gat/gats, binary Get/GAT/Touch and meta get
    /// (with its anti-stampede options `T`, `N`, `R`, `u`).
    Read(ReadOptions),
    /// Every storage command, on every wire (the data is the op's value).
    Store(StoreRequest),
    /// delete / md / binary Delete (`C`, `I`, `T`, `x`).
    Delete(DeleteOptions),
    /// incr/decr / ma / binary Increment and Decrement.
    Arith(ArithRequest),
    /// Text touch.
    Touch {
        /// New exptime.
        exptime: i64,
    },
    /// me.
    Debug,
    /// A set refused as too large: drop the key's old value, silently and
    /// uncounted, as memcached does rather than leave stale data.
    Unlink,
}

/// What a whole-core op does (commands for the whole server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreCommand {
    /// flush_all.
    Flush {
        /// Delay in seconds (memcached exptime rules), `None` for now.
        delay: Option<i64>,
    },
    /// Collect a core's counters, plus the lists `also` names.
    Stats {
        /// The per-core lists this request needs.
        also: ReportLists,
    },
    /// `stats reset`.
    ResetStats,
    /// `stats detail on|off`.
    Detail {
        /// Whether per-prefix counting is on.
        on: bool,
    },
}

impl<'a> Op<&'a [u8]> {
    /// `cmd` on `key`, with no data.
    #[inline]
    pub fn on(key: &'a [u8], cmd: KeyCommand) -> Self {
        Op::with_value(key, &[], cmd)
    }

    /// `cmd` on `key` with `value` (a store's data).
    #[inline]
    pub fn with_value(key: &'a [u8], value: &'a [u8], cmd: KeyCommand) -> Self {
        Op::Key {
            key,
            hash: hash_key(key),
            value,
            cmd,
        }
    }

    /// The key with its hash, `None` for whole-core ops.
    #[inline]
    pub fn hashed_key(&self) -> Option<HashedKey<'a>> {
        match *self {
            Op::Key { key, hash, .. } => Some(HashedKey { key, hash }),
            Op::Core(_) => None,
        }
    }
}

impl<B> Op<B> {
    /// The key this op touches, `None` for whole-core ops.
    #[inline]
    pub fn key(&self) -> Option<&B> {
        match self {
            Op::Key { key, .. } => Some(key),
            Op::Core(_) => None,
        }
    }

    /// The same op with its bytes held another way.
    #[inline]
    pub fn map<C>(self, mut f: impl FnMut(B) -> C) -> Op<C> {
        match self {
            Op::Key {
                key,
                hash,
                value,
                cmd,
            } => Op::Key {
                key: f(key),
                hash,
                value: f(value),
                cmd,
            },
            Op::Core(cmd) => Op::Core(cmd),
        }
    }
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
