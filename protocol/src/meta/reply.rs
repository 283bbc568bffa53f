//! Meta replies: a two-letter status, the return flags the client asked for
//! (in its order), then for `VA` the data block.

use super::{flag_bit, MetaFlags, MetaKey};
use crate::base64;
use crate::number::{write_i64, write_u64};

/// The two-letter status that opens a meta reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `VA <len>`: a value follows.
    Value(usize),
    /// `HD`: success, no value.
    Stored,
    /// `EN`: miss (`mg`, `ma`, `me`).
    Miss,
    /// `NF`: not found (`md`, `ma`, `ms` append/replace/cas).
    NotFound,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: the compare-cas did not match.
    Exists,
    /// `MN`: the reply to `mn`.
    Noop,
}

/// Writes the status (without the line end: flags follow).
pub fn write_header(out: &mut Vec<u8>, status: Status) {
    let code: &[u8] = match status {
        Status::Value(len) => {
            out.extend_from_slice(b"VA ");
            write_u64(out, len as u64);
            return;
        }
        Status::Stored => b"HD",
        Status::Miss => b"EN",
        Status::NotFound => b"NF",
        Status::NotStored => b"NS",
        Status::Exists => b"EX",
        Status::Noop => b"MN",
    };
    out.extend_from_slice(code);
}

/// A status with nothing after it (`MN\r\n`, a bare `EN\r\n`).
pub fn write_status(out: &mut Vec<u8>, status: Status) {
    write_header(out, status);
    out.extend_from_slice(b"\r\n");
}

/// The letters a command may echo back. memcached answers, for example, `c`
/// on `ms` but not `f`; a letter outside the set is accepted and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReturnFlags(u64);

impl ReturnFlags {
    const fn of(letters: &[u8]) -> ReturnFlags {
        let mut mask = 0u64;
        let mut i = 0;
        while i < letters.len() {
            let f = letters[i];
            mask |= if f >= b'a' {
                1 << (f - b'a' + 26)
            } else {
                1 << (f - b'A')
            };
            i += 1;
        }
        ReturnFlags(mask)
    }
    /// `mg`: every item attribute.
    pub const GET: ReturnFlags = ReturnFlags::of(b"Okcfhlst");
    /// `ms`: the new cas.
    pub const SET: ReturnFlags = ReturnFlags::of(b"Okc");
    /// `md`.
    pub const DELETE: ReturnFlags = ReturnFlags::of(b"Ok");
    /// `ma`: the new cas and TTL (the value itself comes as `VA`).
    pub const ARITH: ReturnFlags = ReturnFlags::of(b"Okct");

    fn allows(self, flag: u8) -> bool {
        flag_bit(flag).is_some_and(|bit| self.0 & bit != 0)
    }
}

/// What the server knows about an item, for the return flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemMeta {
    /// `c`.
    pub cas: u64,
    /// `f`.
    pub client_flags: u32,
    /// `s`: value length.
    pub size: usize,
    /// `t`: seconds left, -1 when the item never expires.
    pub ttl: i64,
    /// `l`: seconds since the last access.
    pub last_access: u64,
    /// `h`: fetched before this request.
    pub hit_before: bool,
    /// `W`: this client won the right to recache.
    pub win: bool,
    /// `X`: the item is stale (invalidated).
    pub stale: bool,
    /// `Z`: another client already holds the win token.
    pub win_sent: bool,
}

/// Writes the requested return flags, then `Z`, `X`, `W` as they apply, then
/// the line end. `key` is the decoded key; it is re-encoded when the client
/// sent it in base64. `item` is `None` on a miss: only `O` and `k` return.
pub fn write_flags(
    out: &mut Vec<u8>,
    allowed: ReturnFlags,
    flags: &MetaFlags<'_>,
    key: (&MetaKey<'_>, &[u8]),
    item: Option<&ItemMeta>,
) {
    for (flag, token) in flags.iter() {
        if !allowed.allows(flag) {
            continue;
        }
        match (flag, item) {
            (b'O', _) => push_flag(out, b'O', token),
            (b'k', _) => {
                let (meta_key, bytes) = key;
                out.extend_from_slice(b" k");
                if meta_key.is_base64() {
                    base64::encode(bytes, out);
                    out.extend_from_slice(b" b");
                } else {
                    out.extend_from_slice(bytes);
                }
            }
            (b'c', Some(it)) => push_u64(out, b'c', it.cas),
            (b'f', Some(it)) => push_u64(out, b'f', u64::from(it.client_flags)),
            (b's', Some(it)) => push_u64(out, b's', it.size as u64),
            (b'l', Some(it)) => push_u64(out, b'l', it.last_access),
            (b'h', Some(it)) => push_u64(out, b'h', u64::from(it.hit_before)),
            (b't', Some(it)) => {
                out.extend_from_slice(b" t");
                write_i64(out, it.ttl);
            }
            _ => {}
        }
    }
    if let Some(it) = item {
        if it.win_sent {
            out.extend_from_slice(b" Z");
        }
        if it.stale {
            out.extend_from_slice(b" X");
        }
        if it.win {
            out.extend_from_slice(b" W");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a `VA` data block and its line end.
pub fn write_value(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn push_flag(out: &mut Vec<u8>, flag: u8, token: &[u8]) {
    out.push(b' ');
    out.push(flag);
    out.extend_from_slice(token);
}

fn push_u64(out: &mut Vec<u8>, flag: u8, value: u64) {
    out.push(b' ');
    out.push(flag);
    write_u64(out, value);
}

/// What `me` reports about an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugLine {
    /// Seconds left (-1: never expires).
    pub ttl: i64,
    /// Seconds since the last access.
    pub last_access: u64,
    /// The item's cas.
    pub cas: u64,
    /// Whether it was read since it was stored.
    pub fetched: bool,
    /// Bytes the item takes.
    pub size: u64,
}

/// `me`'s reply: `ME <key> exp=... la=... cas=... fetch=yes|no cls=1
/// size=...`, or `EN` for a miss (`None`). `key` is the key as the client
/// sent it.
pub fn write_debug(out: &mut Vec<u8>, key: &[u8], line: Option<DebugLine>) {
    let Some(d) = line else {
        out.extend_from_slice(b"EN\r\n");
        return;
    };
    out.extend_from_slice(b"ME ");
    // A base64 key decodes to any bytes: shown escaped, never raw.
    let _ = std::io::Write::write_fmt(out, format_args!("{}", crate::key::Printable(key)));
    out.extend_from_slice(b" exp=");
    write_i64(out, d.ttl);
    out.extend_from_slice(b" la=");
    write_u64(out, d.last_access);
    out.extend_from_slice(b" cas=");
    write_u64(out, d.cas);
    out.extend_from_slice(if d.fetched {
        b" fetch=yes"
    } else {
        b" fetch=no"
    });
    out.extend_from_slice(b" cls=1 size=");
    write_u64(out, d.size);
    out.extend_from_slice(b"\r\n");
}
