//! The text protocol's requests, as borrowed views of the input buffer.

use crate::command::{ArithOp, StoreMode};
use crate::meta;

/// One text-protocol request. Keys and values borrow from the parsed buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`, `gets`, `gat`, `gats`.
    Get(Retrieval<'a>),
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store(Store<'a>),
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The item to remove.
        key: &'a [u8],
        /// Send no reply.
        noreply: bool,
    },
    /// `incr`/`decr <key> <delta> [noreply]`.
    Arith {
        /// Increment or decrement.
        op: ArithOp,
        /// The item holding a decimal number.
        key: &'a [u8],
        /// The amount to add or subtract.
        delta: u64,
        /// Send no reply.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The item whose expiry changes.
        key: &'a [u8],
        /// The new exptime, memcached semantics (see [`Store::exptime`]).
        exptime: i32,
        /// Send no reply.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Seconds from now (or a unix time) at which items stored before it
        /// become invalid; `None` means now.
        delay: Option<i32>,
        /// Send no reply.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `refresh_certs`: reload the TLS certificate and key (`-Z`).
    RefreshCerts,
    /// `verbosity <level> [noreply]`: answered `OK`; memcached ignores a
    /// level it cannot read, and so do we.
    Verbosity {
        /// The level asked for (0 when unreadable).
        level: u32,
        /// Send no reply.
        noreply: bool,
    },
    /// `quit`: close the connection without a reply.
    Quit,
    /// `slabs automove <0|1|2>` or `slabs automove ratio <r>`: answered
    /// `OK` and otherwise ignored. Segments are not sized per class, so
    /// there is nothing to rebalance; tools that set it keep working.
    SlabsAutomove {
        /// Send no reply.
        noreply: bool,
    },
    /// `stats [group ...]`.
    Stats {
        /// Everything after `stats`, trimmed; empty for the general stats.
        args: &'a [u8],
    },
    /// `shutdown [graceful]`: refused unless the server enables it.
    Shutdown {
        /// `true` for `shutdown graceful`.
        graceful: bool,
    },
    /// `mg <key> <flags>*`.
    MetaGet(meta::MetaRequest<'a>),
    /// `ms <key> <datalen> <flags>*` and its data block.
    MetaSet(meta::MetaSet<'a>),
    /// `md <key> <flags>*`.
    MetaDelete(meta::MetaRequest<'a>),
    /// `ma <key> <flags>*`.
    MetaArith(meta::MetaArith<'a>),
    /// `mn`: answered `MN`, the end marker of a pipeline of quiet meta commands.
    MetaNoop,
    /// `me <key>`: item debug information.
    MetaDebug(meta::MetaKey<'a>),
}

/// A storage command with its data block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store<'a> {
    /// Which command.
    pub mode: StoreMode,
    /// The item's key.
    pub key: &'a [u8],
    /// Opaque 32-bit client flags, returned on reads.
    pub flags: u32,
    /// 0 = never expires; 1..=30 days in seconds = relative; larger = unix
    /// time; negative = already expired.
    pub exptime: i32,
    /// The cas unique to compare against, for [`StoreMode::Cas`].
    pub cas: u64,
    /// The data block, without its `\r\n`.
    pub value: &'a [u8],
    /// Send no reply.
    pub noreply: bool,
}

/// A retrieval: `get`/`gets` (no exptime) or `gat`/`gats` (with one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retrieval<'a> {
    /// `gets`/`gats`: return each item's cas unique.
    pub with_cas: bool,
    /// `gat`/`gats`: the new exptime applied to every hit.
    pub touch: Option<i32>,
    /// The keys, in request order (duplicates allowed, as in memcached).
    pub keys: KeyList<'a>,
}

/// The keys of a multi-key command, validated, kept as the raw
/// space-separated run so a thousand-key `get` needs no allocation.
#[derive(Clone, Copy, Debug, Eq)]
pub struct KeyList<'a> {
    raw: &'a [u8],
    len: usize,
}

/// Equal when the keys are, however many spaces separated them.
impl PartialEq for KeyList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<'a> KeyList<'a> {
    /// No keys (`gat <exptime>` alone, which memcached answers with END).
    pub const EMPTY: KeyList<'static> = KeyList { raw: b"", len: 0 };

    /// Validates a space-separated run of keys (at least one), for clients
    /// that build multi-key requests.
    pub fn parse(raw: &'a [u8]) -> Option<Self> {
        let mut len = 0;
        for key in super::tokens(raw) {
            if !crate::key::is_valid_text_key(key) {
                return None;
            }
            len += 1;
        }
        (len > 0).then_some(KeyList { raw, len })
    }

    /// How many keys (counting repeats).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true for a parsed request: a retrieval needs at least one key.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The keys in request order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        super::tokens(self.raw)
    }
}

impl Request<'_> {
    /// Appends the request as a client sends it. The load generator and the
    /// round-trip tests use this; `parse(encode(r)) == r` for every request.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use crate::number::{write_i64, write_u64};
        let noreply = |out: &mut Vec<u8>, on: bool| {
            if on {
                out.extend_from_slice(b" noreply");
            }
        };
        match self {
            Request::Get(r) => {
                out.extend_from_slice(match (r.touch.is_some(), r.with_cas) {
                    (false, false) => b"get",
                    (false, true) => b"gets",
                    (true, false) => b"gat",
                    (true, true) => b"gats",
                });
                if let Some(exptime) = r.touch {
                    out.push(b' ');
                    write_i64(out, i64::from(exptime));
                }
                for key in r.keys.iter() {
                    out.push(b' ');
                    out.extend_from_slice(key);
                }
            }
            Request::Store(s) => {
                out.extend_from_slice(match s.mode {
                    StoreMode::Set => b"set ",
                    StoreMode::Add => b"add ",
                    StoreMode::Replace => b"replace ",
                    StoreMode::Append => b"append ",
                    StoreMode::Prepend => b"prepend ",
                    StoreMode::Cas => b"cas ",
                });
                out.extend_from_slice(s.key);
                out.push(b' ');
                write_u64(out, u64::from(s.flags));
                out.push(b' ');
                write_i64(out, i64::from(s.exptime));
                out.push(b' ');
                write_u64(out, s.value.len() as u64);
                if s.mode == StoreMode::Cas {
                    out.push(b' ');
                    write_u64(out, s.cas);
                }
                noreply(out, s.noreply);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(s.value);
            }
            Request::Delete { key, noreply: nr } => {
                out.extend_from_slice(b"delete ");
                out.extend_from_slice(key);
                noreply(out, *nr);
            }
            Request::Arith {
                op,
                key,
                delta,
                noreply: nr,
            } => {
                out.extend_from_slice(match op {
                    ArithOp::Incr => b"incr ",
                    ArithOp::Decr => b"decr ",
                });
                out.extend_from_slice(key);
                out.push(b' ');
                write_u64(out, *delta);
                noreply(out, *nr);
            }
            Request::Touch {
                key,
                exptime,
                noreply: nr,
            } => {
                out.extend_from_slice(b"touch ");
                out.extend_from_slice(key);
                out.push(b' ');
                write_i64(out, i64::from(*exptime));
                noreply(out, *nr);
            }
            Request::FlushAll { delay, noreply: nr } => {
                out.extend_from_slice(b"flush_all");
                if let Some(delay) = delay {
                    out.push(b' ');
                    write_i64(out, i64::from(*delay));
                }
                noreply(out, *nr);
            }
            Request::Version => out.extend_from_slice(b"version"),
            Request::RefreshCerts => out.extend_from_slice(b"refresh_certs"),
            Request::Verbosity { level, noreply: nr } => {
                out.extend_from_slice(b"verbosity ");
                write_u64(out, u64::from(*level));
                noreply(out, *nr);
            }
            Request::Quit => out.extend_from_slice(b"quit"),
            Request::SlabsAutomove { noreply: nr } => {
                out.extend_from_slice(b"slabs automove 1");
                noreply(out, *nr);
            }
            Request::Stats { args } => {
                out.extend_from_slice(b"stats");
                if !args.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(args);
                }
            }
            Request::Shutdown { graceful } => {
                out.extend_from_slice(b"shutdown");
                if *graceful {
                    out.extend_from_slice(b" graceful");
                }
            }
            Request::MetaGet(m) => meta_line(out, b"mg", m.key.raw(), None, &m.flags),
            Request::MetaDelete(m) => meta_line(out, b"md", m.key.raw(), None, &m.flags),
            Request::MetaArith(m) => meta_line(out, b"ma", m.key.raw(), None, &m.flags),
            Request::MetaSet(m) => {
                meta_line(out, b"ms", m.key.raw(), Some(m.value.len()), &m.flags);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(m.value);
            }
            Request::MetaNoop => out.extend_from_slice(b"mn"),
            Request::MetaDebug(key) => {
                out.extend_from_slice(b"me ");
                out.extend_from_slice(key.raw());
                if key.is_base64() {
                    out.extend_from_slice(b" b");
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn meta_line(
    out: &mut Vec<u8>,
    command: &[u8],
    key: &[u8],
    data_len: Option<usize>,
    flags: &meta::MetaFlags<'_>,
) {
    out.extend_from_slice(command);
    out.push(b' ');
    out.extend_from_slice(key);
    if let Some(len) = data_len {
        out.push(b' ');
        crate::number::write_u64(out, len as u64);
    }
    for (flag, token) in flags.iter() {
        out.push(b' ');
        out.push(flag);
        out.extend_from_slice(token);
    }
}
