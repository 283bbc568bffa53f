//! The meta commands: `mg`, `ms`, `md`, `ma`, `mn`, `me`.
//!
//! A meta command is a two-letter name, a key, and a list of single-letter
//! flags, some carrying a token (`T30`, `Oabc`). Flags either change what the
//! command does (`T` sets a TTL, `N` vivifies on miss, `I` invalidates) or ask
//! for something back (`c` the cas, `k` the key); what comes back is written
//! in the order the client asked, which is why [`MetaFlags`] keeps the flag
//! run as sent. Parsing follows memcached's rules: a flag seen twice, an
//! unknown flag or a bad numeric token is refused before anything runs.

mod reply;

pub use reply::{
    write_debug, write_flags, write_header, write_status, write_value, DebugLine, ItemMeta,
    ReturnFlags, Status,
};

use crate::command::{ArithOp, StoreMode};
use crate::error::{ErrorKind, ParseError};
use crate::key::is_valid_text_key;
use crate::lexer::{split_first_token, tokens};
use crate::number::{parse_i32, parse_u32, parse_u64};
use crate::{base64, Limits, MAX_KEY_LEN};

/// The longest opaque (`O`) token memcached echoes back.
pub const MAX_OPAQUE_LEN: usize = 32;

/// A meta key as sent: plain, or base64 when the `b` flag is present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaKey<'a> {
    raw: &'a [u8],
    base64: bool,
}

/// Room for a decoded key.
pub use crate::key::KeyBuf;

impl<'a> MetaKey<'a> {
    /// The key as the client sent it (still encoded when [`Self::is_base64`]).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the client sent the key base64-encoded (`b`), in which case
    /// a returned key (`k`) must be encoded again.
    pub fn is_base64(&self) -> bool {
        self.base64
    }

    /// The key's real bytes: `raw` itself, or its decoding written to `buf`.
    /// Parsing already proved the decoding valid, so this cannot fail.
    pub fn bytes<'s>(&'s self, buf: &'s mut KeyBuf) -> &'s [u8] {
        if !self.base64 {
            return self.raw;
        }
        let len = base64::decode(self.raw, buf).unwrap_or(0);
        &buf[..len]
    }

    fn parse(raw: &'a [u8], base64: bool) -> Result<Self, ErrorKind> {
        if raw.len() > MAX_KEY_LEN {
            return Err(ErrorKind::BadCommandLine);
        }
        if base64 {
            let mut buf = [0u8; MAX_KEY_LEN];
            match base64::decode(raw, &mut buf) {
                Some(len) if len > 0 => {}
                _ => return Err(ErrorKind::MetaKeyDecode),
            }
        } else if !is_valid_text_key(raw) {
            return Err(ErrorKind::BadCommandLine);
        }
        Ok(MetaKey { raw, base64 })
    }
}

/// The flags of one meta command: which letters were given, the tokens that
/// carry values (parsed), and the run as sent (for ordered return flags).
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct MetaFlags<'a> {
    raw: &'a [u8],
    present: u64,
    /// `O`: opaque token echoed back.
    pub opaque: Option<&'a [u8]>,
    /// `T`: new TTL (memcached exptime semantics).
    pub ttl: Option<i32>,
    /// `N`: vivify on miss with this TTL.
    pub vivify_ttl: Option<i32>,
    /// `R`: win a recache when the remaining TTL is below this.
    pub recache_ttl: Option<i32>,
    /// `C`: compare this cas before acting.
    pub compare_cas: Option<u64>,
    /// `E`: use this as the item's new cas.
    pub new_cas: Option<u64>,
    /// `F`: client flags to store.
    pub client_flags: Option<u32>,
    /// `M`: mode letter (meaning depends on the command).
    pub mode: Option<u8>,
    /// `J`: initial value for `ma` auto-vivify.
    pub initial: Option<u64>,
    /// `D`: delta for `ma`.
    pub delta: Option<u64>,
}

fn flag_bit(flag: u8) -> Option<u64> {
    match flag {
        b'A'..=b'Z' => Some(1 << (flag - b'A')),
        b'a'..=b'z' => Some(1 << (flag - b'a' + 26)),
        _ => None,
    }
}

/// Equal when the same flags came in the same order, however spaced.
impl PartialEq for MetaFlags<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a> MetaFlags<'a> {
    /// Whether the client gave `flag` (a letter such as `b'q'`).
    #[inline]
    pub fn has(&self, flag: u8) -> bool {
        flag_bit(flag).is_some_and(|bit| self.present & bit != 0)
    }

    /// The flags in the order sent, each with its token (possibly empty).
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        tokens(self.raw).map(|t| (t[0], &t[1..]))
    }

    /// Parses a run of flag tokens as memcached does.
    pub fn parse(raw: &'a [u8]) -> Result<Self, ErrorKind> {
        let mut flags = MetaFlags {
            raw,
            ..MetaFlags::default()
        };
        for token in tokens(raw) {
            let (flag, value) = (token[0], &token[1..]);
            let bit = flag_bit(flag).ok_or(if flag.is_ascii() {
                ErrorKind::MetaInvalidFlag
            } else {
                ErrorKind::MetaDuplicateFlag
            })?;
            if flags.present & bit != 0 {
                return Err(ErrorKind::MetaDuplicateFlag);
            }
            flags.present |= bit;
            let bad_token = ErrorKind::MetaBadToken;
            match flag {
                b'b' | b'c' | b'f' | b'h' | b'k' | b'l' | b'q' | b's' | b't' | b'u' | b'v'
                | b'x' | b'I' | b'P' | b'L' => {}
                b'O' if value.len() > MAX_OPAQUE_LEN => return Err(ErrorKind::MetaOpaqueTooLong),
                b'O' => flags.opaque = Some(value),
                b'T' => flags.ttl = Some(parse_i32(value).ok_or(bad_token)?),
                b'N' => flags.vivify_ttl = Some(parse_i32(value).ok_or(bad_token)?),
                b'R' => flags.recache_ttl = Some(parse_i32(value).ok_or(bad_token)?),
                b'C' => flags.compare_cas = Some(parse_u64(value).ok_or(bad_token)?),
                b'E' => flags.new_cas = Some(parse_u64(value).ok_or(bad_token)?),
                // memcached names no reason for a bad F: the command's
                // generic answer.
                b'F' => {
                    flags.client_flags = Some(parse_u32(value).ok_or(ErrorKind::BadCommandLine)?)
                }
                b'M' if value.len() != 1 => return Err(ErrorKind::MetaModeLength),
                b'M' => flags.mode = Some(value[0]),
                b'J' => {
                    flags.initial = Some(parse_u64(value).ok_or(ErrorKind::MetaInvalidInitial)?)
                }
                b'D' => flags.delta = Some(parse_u64(value).ok_or(ErrorKind::MetaInvalidDelta)?),
                _ => return Err(ErrorKind::MetaInvalidFlag),
            }
        }
        Ok(flags)
    }
}

/// `mg` and `md`: a key and its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaRequest<'a> {
    /// The item's key.
    pub key: MetaKey<'a>,
    /// The flags as sent.
    pub flags: MetaFlags<'a>,
}

/// `ms`: a key, its flags, the mode and the data block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaSet<'a> {
    /// The item's key.
    pub key: MetaKey<'a>,
    /// The flags as sent.
    pub flags: MetaFlags<'a>,
    /// From `M`, [`StoreMode::Set`] when absent (never [`StoreMode::Cas`]:
    /// `ms` takes a cas beside any mode).
    pub mode: StoreMode,
    /// The data block, without its `\r\n`.
    pub value: &'a [u8],
}

/// `ma`: a key, its flags and the direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaArith<'a> {
    /// The item's key.
    pub key: MetaKey<'a>,
    /// The flags as sent.
    pub flags: MetaFlags<'a>,
    /// From `M` (`I`/`+` or `D`/`-`), increment when absent.
    pub op: ArithOp,
}

/// How a command answers flags it cannot take: `mg` and `me` name the
/// reason, `md` and `ma` give one answer for all of them (memcached's
/// "invalid or duplicate flag", a bad base64 key included).
#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagRefusal {
    Reasoned,
    Generic,
}

fn key_and_flags(
    rest: &[u8],
    refusal: FlagRefusal,
) -> Result<(MetaKey<'_>, MetaFlags<'_>), ErrorKind> {
    let (key, flag_run) = split_first_token(rest);
    if key.is_empty() {
        return Err(ErrorKind::BadCommandLine);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ErrorKind::BadCommandLine);
    }
    let parsed = MetaFlags::parse(flag_run)
        .and_then(|flags| Ok((MetaKey::parse(key, flags.has(b'b'))?, flags)));
    match parsed {
        // The opaque's length is checked after the flags, by every command.
        Err(kind) if refusal == FlagRefusal::Generic && kind != ErrorKind::MetaOpaqueTooLong => {
            Err(ErrorKind::MetaFlagRefused)
        }
        parsed => parsed,
    }
}

pub(crate) fn parse_request(rest: &[u8], line_end: usize) -> Result<MetaRequest<'_>, ParseError> {
    request(rest, line_end, FlagRefusal::Reasoned)
}

/// `md`: a key and its flags, refused as memcached refuses md's flags.
pub(crate) fn parse_delete(rest: &[u8], line_end: usize) -> Result<MetaRequest<'_>, ParseError> {
    request(rest, line_end, FlagRefusal::Generic)
}

fn request(
    rest: &[u8],
    line_end: usize,
    refusal: FlagRefusal,
) -> Result<MetaRequest<'_>, ParseError> {
    let (key, flags) =
        key_and_flags(rest, refusal).map_err(|kind| ParseError::skip(kind, line_end))?;
    Ok(MetaRequest { key, flags })
}

pub(crate) fn parse_arith(rest: &[u8], line_end: usize) -> Result<MetaArith<'_>, ParseError> {
    let MetaRequest { key, flags } = request(rest, line_end, FlagRefusal::Generic)?;
    let op = match flags.mode {
        None | Some(b'I' | b'i' | b'+') => ArithOp::Incr,
        Some(b'D' | b'd' | b'-') => ArithOp::Decr,
        Some(_) => return Err(ParseError::skip(ErrorKind::MetaInvalidArithMode, line_end)),
    };
    Ok(MetaArith { key, flags, op })
}

pub(crate) fn parse_debug(rest: &[u8], line_end: usize) -> Result<MetaKey<'_>, ParseError> {
    let MetaRequest { key, .. } = parse_request(rest, line_end)?;
    Ok(key)
}

pub(crate) fn parse_set<'a>(
    rest: &'a [u8],
    buf: &'a [u8],
    line_end: usize,
    limits: &Limits,
) -> Result<Option<(MetaSet<'a>, usize)>, ParseError> {
    let (key, after_key) = split_first_token(rest);
    let (declared, flag_run) = split_first_token(after_key);
    if key.is_empty() || declared.is_empty() {
        return Err(ParseError::skip(ErrorKind::BadCommandLine, line_end));
    }
    // memcached: a length that is not a non-negative number is a bad line
    // (nothing is known to skip).
    let Some(value_len) = parse_i32(declared).and_then(crate::lexer::block_len) else {
        return Err(ParseError::skip(ErrorKind::BadCommandLine, line_end));
    };
    // From here on the data block's length is known: every error skips it,
    // so its bytes are never mistaken for commands.
    let total = line_end + value_len + 2;
    let fail = |kind| ParseError::skip(kind, total);
    let flags = MetaFlags::parse(flag_run).map_err(fail)?;
    let key = MetaKey::parse(key, flags.has(b'b')).map_err(fail)?;
    if let Some(kind) = limits.refuse_value(value_len) {
        // memcached unlinks the old value whatever the mode.
        return Err(fail(kind).unlinking(buf, key.raw(), key.is_base64()));
    }
    let mode = match flags.mode {
        None | Some(b'S' | b's') => StoreMode::Set,
        Some(b'E' | b'e') => StoreMode::Add,
        Some(b'R' | b'r') => StoreMode::Replace,
        Some(b'A' | b'a') => StoreMode::Append,
        Some(b'P' | b'p') => StoreMode::Prepend,
        Some(_) => return Err(fail(ErrorKind::MetaInvalidSetMode)),
    };
    let Some(block) = buf.get(line_end..total) else {
        return Ok(None);
    };
    let (value, terminator) = block.split_at(value_len);
    if terminator != b"\r\n" {
        return Err(fail(ErrorKind::BadDataChunk));
    }
    let set = MetaSet {
        key,
        flags,
        mode,
        value,
    };
    Ok(Some((set, total)))
}
