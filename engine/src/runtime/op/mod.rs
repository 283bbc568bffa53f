//! The command model every wire lowers to: one [`Op`] per key (or per core),
//! and its [`Outcome`].
//!
//! Connections turn each request (text, meta or binary) into ops. A command
//! whose meaning the wires share is one [`KeyCommand`] or [`CoreCommand`]
//! whatever wire it came in on (text `set`, meta `ms` and binary Set are all
//! a [`KeyCommand::Store`]), and each command runs in one place:
//! [`KeyCommand::run`] or [`CoreCommand::run`]. An op for the local shard
//! runs inline, borrowing the key and value from the read buffer; an op for
//! another core's shard is copied into a [`Batch`] (one per destination per
//! read) and its outcome comes back in a [`Replies`]. Both sides use the
//! same types, generic over how bytes are held: `&[u8]` inline, a [`Span`]
//! of the message's arena when crossing cores. Only the key and the value
//! are bytes, so a new command never touches that plumbing.

mod outcome;

use crate::runtime::metrics::report::CoreReport;
pub use crate::runtime::op::outcome::{Hit, Outcome};

use crate::storage::hash::hash_key;
use crate::storage::{
    ArithRequest, DeleteOptions, HashedKey, ReadFacts, ReadOptions, Shard, StoreMode, StoreRequest,
};

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
    /// get/gets (touch `None`) and gat/gats; binary Get, GAT and Touch.
    Get {
        /// gat's new exptime.
        touch: Option<i64>,
        /// The reply does not show the cas (text get/gat).
        hides_cas: bool,
    },
    /// Meta get with its anti-stampede options (`T`, `N`, `R`, `u`).
    MetaGet(ReadOptions),
    /// Every storage command, on every wire.
    Store(StoreFields),
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

impl KeyCommand {
    /// Runs the command on `key` (with `value`, a store's data) in `shard`.
    /// The outcome borrows the shard's memory until the shard is next used.
    pub fn run<'s>(
        &self,
        shard: &'s mut Shard,
        key: HashedKey<'_>,
        value: &[u8],
    ) -> Outcome<&'s [u8]> {
        let now = shard.now();
        match *self {
            KeyCommand::Get { touch, hides_cas } => {
                let item = match touch {
                    None => shard.get_with(key, !hides_cas),
                    Some(exptime) => shard.get_and_touch(key, exptime),
                };
                match item {
                    Some(item) => Outcome::Hit(Hit {
                        value: item.value,
                        flags: item.flags,
                        cas: item.cas,
                        ttl: crate::storage::time::ttl_remaining(item.expire_at, now),
                        facts: ReadFacts::default(),
                    }),
                    None => Outcome::Miss,
                }
            }
            KeyCommand::MetaGet(opts) => match shard.meta_get(key, &opts) {
                Some(hit) => Outcome::Hit(Hit {
                    value: hit.item.value,
                    flags: hit.item.flags,
                    cas: hit.item.cas,
                    ttl: hit.ttl,
                    facts: hit.facts,
                }),
                None => Outcome::Miss,
            },
            KeyCommand::Store(fields) => {
                Outcome::Stored(shard.store(key, &fields.with_value(value)))
            }
            KeyCommand::Delete(opts) => Outcome::Deleted(shard.meta_delete(key, &opts)),
            KeyCommand::Arith(req) => Outcome::Arith(shard.arith(key, &req)),
            KeyCommand::Touch { exptime } => Outcome::Touched(shard.touch(key, exptime)),
            KeyCommand::Debug => Outcome::Debug(shard.debug(key)),
            KeyCommand::Unlink => {
                shard.unlink(key);
                Outcome::Unlinked
            }
        }
    }
}

impl CoreCommand {
    /// Runs the command on this core's `shard` and counters.
    pub fn run<C: CoreAccess + ?Sized>(
        &self,
        shard: &mut Shard,
        core: &C,
    ) -> Outcome<&'static [u8]> {
        match *self {
            CoreCommand::Flush { delay } => {
                shard.flush_all(delay);
                Outcome::Done
            }
            CoreCommand::Stats { also } => Outcome::Stats(Box::new(core.report(shard, also))),
            CoreCommand::ResetStats => {
                shard.reset_stats();
                core.reset_counters();
                Outcome::Done
            }
            CoreCommand::Detail { on } => {
                core.set_detail(on);
                Outcome::Done
            }
        }
    }
}

/// Runs `op` on `shard`. The outcome borrows the shard's memory until the
/// shard is next used. `core` answers the whole-core commands.
#[inline]
pub fn execute<'s, C: CoreAccess + ?Sized>(
    shard: &'s mut Shard,
    op: &Op<&[u8]>,
    core: &C,
) -> Outcome<&'s [u8]> {
    match op {
        Op::Key {
            key,
            hash,
            value,
            cmd,
        } => {
            core.sample_key(key);
            cmd.run(shard, HashedKey { key, hash: *hash }, value)
        }
        Op::Core(cmd) => cmd.run(shard, core),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::wire::binary::Binary;
    use crate::runtime::wire::text::Text;
    use crate::runtime::{batch::route::Route, wire::protocol::WireProtocol};
    use segcore_protocol::Limits;

    /// The ops `P` lowers the first request in `buf` to.
    fn lowered<P: WireProtocol>(buf: &[u8]) -> Vec<Op<Vec<u8>>> {
        let (req, _) = P::parse(buf, &Limits::default())
            .expect("valid")
            .expect("complete");
        let route = Route {
            cores: 1,
            local: None,
        };
        let mut ops = Vec::new();
        P::for_each_op(&req, route, &mut |_, op| ops.push(op.map(<[u8]>::to_vec)));
        ops
    }

    /// A binary request: header, extras, key, value.
    fn binary(opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
        let body = (extras.len() + key.len() + value.len()) as u32;
        let mut p = vec![0x80, opcode];
        p.extend_from_slice(&(key.len() as u16).to_be_bytes());
        p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
        p.extend_from_slice(&body.to_be_bytes());
        p.extend_from_slice(&[0; 12]); // opaque, cas
        p.extend_from_slice(extras);
        p.extend_from_slice(key);
        p.extend_from_slice(value);
        p
    }

    /// A command the wires share is one op whatever wire it came in on, so
    /// it runs (and is forwarded) the same way.
    #[test]
    fn the_wires_lower_a_shared_command_to_one_op() {
        let gets = lowered::<Text>(b"gets k\r\n");
        assert_eq!(gets, lowered::<Binary>(&binary(0x00, &[], b"k", &[])));
        assert_eq!(
            gets,
            [Op::on(
                b"k",
                KeyCommand::Get {
                    touch: None,
                    hides_cas: false
                }
            )
            .map(<[u8]>::to_vec)]
        );

        let ten = 10u32.to_be_bytes();
        let gats = lowered::<Text>(b"gats 10 k\r\n");
        assert_eq!(gats, lowered::<Binary>(&binary(0x1d, &ten, b"k", &[])));
        assert_eq!(gats, lowered::<Binary>(&binary(0x1c, &ten, b"k", &[])));

        let set = lowered::<Text>(b"set k 5 10 1\r\nv\r\n");
        assert_eq!(set, lowered::<Text>(b"ms k 1 F5 T10\r\nv\r\n"));
        let Op::Key {
            key,
            hash,
            value,
            cmd,
        } = &set[0]
        else {
            panic!("a set is keyed: {set:?}");
        };
        assert_eq!(value, b"v");
        assert_eq!(*hash, hash_key(key), "the hash travels with its key");
        assert!(matches!(cmd, KeyCommand::Store(f) if f.flags == 5 && f.exptime == 10));

        assert_eq!(
            lowered::<Text>(b"delete k\r\n"),
            lowered::<Text>(b"md k\r\n")
        );
        assert_eq!(
            lowered::<Text>(b"incr k 1\r\n"),
            lowered::<Text>(b"ma k\r\n")
        );

        let flush = lowered::<Text>(b"flush_all 5\r\n");
        let delay = 5u32.to_be_bytes();
        assert_eq!(flush, lowered::<Binary>(&binary(0x08, &delay, &[], &[])));
        assert_eq!(flush, [Op::Core(CoreCommand::Flush { delay: Some(5) })]);
    }
}
