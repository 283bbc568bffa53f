//! memcached's binary protocol: a fixed 24-byte header, then extras, key and
//! value, all lengths declared up front.
//!
//! The header, big-endian throughout:
//!
//! ```text
//!  byte   0          1          2          3
//!       +----------+----------+---------------------+
//!    0  | magic    | opcode   | key length          |
//!       +----------+----------+---------------------+
//!    4  | extras   | data     | vbucket (request)   |
//!       | length   | type     | status  (response)  |
//!       +----------+----------+---------------------+
//!    8  | total body length (extras + key + value)  |
//!       +-------------------------------------------+
//!   12  | opaque (echoed back untouched)            |
//!       +-------------------------------------------+
//!   16  | cas                                       |
//!   20  |                                           |
//!       +-------------------------------------------+
//! ```
//!
//! Validation follows memcached: a bad magic byte closes the connection
//! silently; lengths that do not fit the opcode answer "invalid arguments"
//! and close (the stream can no longer be trusted); an unknown opcode answers
//! "unknown command" and skips its body; a value over the item limit answers
//! "too large" and skips its body.

pub mod codes;
mod encode;
mod reply;

pub use codes::{Opcode, Status};
pub use reply::{encode_error, encode_response, write_error, write_ok, Response};

use crate::error::{ErrorKind, ParseError};
use crate::{Limits, MAX_KEY_LEN};

/// First byte of every request.
pub const REQUEST_MAGIC: u8 = 0x80;
/// First byte of every response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 24;
/// The largest SASL payload accepted (mechanism data is small).
pub const MAX_SASL_LEN: usize = 4096;

/// The fixed header, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// [`REQUEST_MAGIC`] or [`RESPONSE_MAGIC`].
    pub magic: u8,
    /// The command.
    pub opcode: u8,
    /// Bytes of key in the body.
    pub key_len: u16,
    /// Bytes of extras in the body (before the key).
    pub extras_len: u8,
    /// Always 0 (raw bytes) in practice.
    pub data_type: u8,
    /// vbucket id in a request, [`Status`] in a response.
    pub vbucket_or_status: u16,
    /// extras + key + value.
    pub body_len: u32,
    /// Echoed back untouched: clients match replies by it.
    pub opaque: u32,
    /// Compare-and-swap value.
    pub cas: u64,
}

impl Header {
    /// Reads a header from its 24 bytes.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            magic: b[0],
            opcode: b[1],
            key_len: u16::from_be_bytes([b[2], b[3]]),
            extras_len: b[4],
            data_type: b[5],
            vbucket_or_status: u16::from_be_bytes([b[6], b[7]]),
            body_len: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            cas: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
        }
    }

    /// Appends the header's 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.magic);
        out.push(self.opcode);
        out.extend_from_slice(&self.key_len.to_be_bytes());
        out.push(self.extras_len);
        out.push(self.data_type);
        out.extend_from_slice(&self.vbucket_or_status.to_be_bytes());
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.cas.to_be_bytes());
    }
}

/// Set, Add and Replace (and their quiet forms): the shared
/// [`crate::StoreMode`]'s first three modes.
pub use crate::command::StoreMode;

/// A request's meaning, with its extras decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Get, GetQ, GetK, GetKQ.
    Get {
        /// No reply on a miss.
        quiet: bool,
        /// Return the key with the value.
        with_key: bool,
    },
    /// Gat, GatQ, GatK, GatKQ.
    GetAndTouch {
        /// New expiry.
        exptime: u32,
        /// No reply on a miss.
        quiet: bool,
        /// Return the key with the value.
        with_key: bool,
    },
    /// Touch.
    Touch {
        /// New expiry.
        exptime: u32,
    },
    /// Set, Add, Replace and their quiet forms (cas in the header applies).
    Store {
        /// Which condition.
        mode: StoreMode,
        /// Client flags.
        flags: u32,
        /// Expiry.
        exptime: u32,
        /// No reply on success.
        quiet: bool,
    },
    /// Append, Prepend and their quiet forms.
    Concat {
        /// Append (else prepend).
        append: bool,
        /// No reply on success.
        quiet: bool,
    },
    /// Delete, DeleteQ.
    Delete {
        /// No reply on success.
        quiet: bool,
    },
    /// Increment, Decrement and their quiet forms.
    Arith {
        /// Increment (else decrement).
        incr: bool,
        /// Amount.
        delta: u64,
        /// Value stored when the key is missing.
        initial: u64,
        /// Expiry of a created item; 0xffffffff means do not create.
        exptime: u32,
        /// No reply on success.
        quiet: bool,
    },
    /// Quit, QuitQ.
    Quit {
        /// No reply.
        quiet: bool,
    },
    /// Flush, FlushQ.
    Flush {
        /// Delay in seconds (0 = now).
        delay: u32,
        /// No reply on success.
        quiet: bool,
    },
    /// NoOp.
    NoOp,
    /// Version.
    Version,
    /// Stat; the key names the group (empty for general stats).
    Stat,
    /// Verbosity.
    Verbosity {
        /// Requested level.
        level: u32,
    },
    /// SASL list mechanisms.
    SaslListMechs,
    /// SASL auth: key = mechanism, value = data.
    SaslAuth,
    /// SASL step: key = mechanism, value = data.
    SaslStep,
}

/// One binary request, borrowing key and value from the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The opcode as sent (responses echo it).
    pub opcode: Opcode,
    /// Decoded meaning.
    pub command: Command,
    /// Echo this in the response.
    pub opaque: u32,
    /// Compare-and-swap value (0 = none).
    pub cas: u64,
    /// The key (any bytes, at most 250).
    pub key: &'a [u8],
    /// The value, for storage and SASL commands.
    pub value: &'a [u8],
}

/// A binary request and the bytes it used, `None` for more bytes, or an error.
pub type ParseResult<'a> = Result<Option<(Request<'a>, usize)>, ParseError>;

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(raw)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(raw)
}

/// What the body of each opcode must look like: the exact extras length, a
/// key required or forbidden, and whether a value may follow.
struct Shape {
    extras: &'static [u8],
    key: Presence,
    value: bool,
}

#[derive(PartialEq)]
enum Presence {
    Required,
    Forbidden,
    Optional,
}

fn shape(opcode: Opcode) -> Shape {
    use Opcode::*;
    use Presence::*;
    let (extras, key, value): (&'static [u8], Presence, bool) = match opcode {
        Get | GetQ | GetK | GetKQ => (&[0], Required, false),
        Set | SetQ | Add | AddQ | Replace | ReplaceQ => (&[8], Required, true),
        Append | AppendQ | Prepend | PrependQ => (&[0], Required, true),
        Delete | DeleteQ => (&[0], Required, false),
        Increment | IncrementQ | Decrement | DecrementQ => (&[20], Required, false),
        Quit | QuitQ | NoOp | Version => (&[0], Forbidden, false),
        Flush | FlushQ => (&[0, 4], Forbidden, false),
        Stat => (&[0], Optional, false),
        // Any shape: memcached 1.6 answers every Verbosity "Unknown
        // command" and goes on, so the server does too (see the engine).
        Verbosity => (&[0, 4], Optional, true),
        Touch | Gat | GatQ | GatK | GatKQ => (&[4], Required, false),
        SaslListMechs => (&[0], Forbidden, false),
        SaslAuth | SaslStep => (&[0], Required, true),
    };
    Shape { extras, key, value }
}

/// The whole length of the packet at the head of `buf` (header plus declared
/// body) once its header has arrived, to size a read buffer once for a
/// large value; it validates nothing else ([`parse`] does).
pub fn request_len(buf: &[u8]) -> Option<usize> {
    let header: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    let body = usize::try_from(Header::decode(header).body_len).ok()?;
    HEADER_LEN.checked_add(body)
}

/// Parses the first binary request in `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> ParseResult<'a> {
    let Some(&magic) = buf.first() else {
        return Ok(None);
    };
    if magic != REQUEST_MAGIC {
        return Err(ParseError::close(ErrorKind::BinaryBadMagic));
    }
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = Header::decode(head);
    let body_len = header.body_len as usize;
    let total = HEADER_LEN + body_len;
    let extras_len = usize::from(header.extras_len);
    let key_len = usize::from(header.key_len);
    let binary_error = |status| ErrorKind::Binary {
        status,
        opcode: header.opcode,
        opaque: header.opaque,
    };
    let invalid = || Err(ParseError::close(binary_error(Status::InvalidArguments)));
    if key_len > MAX_KEY_LEN || extras_len + key_len > body_len {
        return invalid();
    }
    let Some(opcode) = Opcode::from_u8(header.opcode) else {
        return Err(ParseError::skip(
            binary_error(Status::UnknownCommand),
            total,
        ));
    };
    let value_len = body_len - extras_len - key_len;
    let shape = shape(opcode);
    let key_ok = match shape.key {
        Presence::Required => key_len > 0,
        Presence::Forbidden => key_len == 0,
        Presence::Optional => true,
    };
    if !shape.extras.contains(&header.extras_len) || !key_ok || (!shape.value && value_len > 0) {
        return invalid();
    }
    let is_sasl = matches!(opcode, Opcode::SaslAuth | Opcode::SaslStep);
    if is_sasl && value_len > MAX_SASL_LEN {
        return invalid();
    }
    if let Some(kind) = limits.refuse_value(value_len) {
        let status = match kind {
            ErrorKind::OutOfMemory => Status::OutOfMemory,
            _ => Status::TooLarge,
        };
        let refused = ParseError::skip(binary_error(status), total);
        if !matches!(opcode, Opcode::Set | Opcode::SetQ) {
            return Err(refused);
        }
        // memcached unlinks a refused set's old value: wait for its key
        // (at most 250 bytes past the extras) to say which.
        let key_start = HEADER_LEN + extras_len;
        let Some(key) = buf.get(key_start..key_start + key_len) else {
            return Ok(None);
        };
        return Err(refused.unlinking(buf, key, false));
    }
    let Some(body) = buf.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    if matches!(opcode, Opcode::Flush | Opcode::FlushQ) && !limits.flush_enabled {
        // memcached's answer to a flush it was told (-F) not to allow.
        return Err(ParseError::skip(binary_error(Status::AuthError), total));
    }
    let (extras, rest) = body.split_at(extras_len);
    let (key, value) = rest.split_at(key_len);
    let request = Request {
        opcode,
        command: command(opcode, extras),
        opaque: header.opaque,
        cas: header.cas,
        key,
        value,
    };
    Ok(Some((request, total)))
}

/// Decodes the extras of an opcode whose shape was already checked.
fn command(opcode: Opcode, extras: &[u8]) -> Command {
    use Opcode::*;
    let store = |mode, quiet| Command::Store {
        mode,
        flags: u32_at(extras, 0),
        exptime: u32_at(extras, 4),
        quiet,
    };
    let arith = |incr, quiet| Command::Arith {
        incr,
        delta: u64_at(extras, 0),
        initial: u64_at(extras, 8),
        exptime: u32_at(extras, 16),
        quiet,
    };
    let gat = |quiet, with_key| Command::GetAndTouch {
        exptime: u32_at(extras, 0),
        quiet,
        with_key,
    };
    match opcode {
        Get => Command::Get {
            quiet: false,
            with_key: false,
        },
        GetQ => Command::Get {
            quiet: true,
            with_key: false,
        },
        GetK => Command::Get {
            quiet: false,
            with_key: true,
        },
        GetKQ => Command::Get {
            quiet: true,
            with_key: true,
        },
        Gat => gat(false, false),
        GatQ => gat(true, false),
        GatK => gat(false, true),
        GatKQ => gat(true, true),
        Touch => Command::Touch {
            exptime: u32_at(extras, 0),
        },
        Set => store(StoreMode::Set, false),
        SetQ => store(StoreMode::Set, true),
        Add => store(StoreMode::Add, false),
        AddQ => store(StoreMode::Add, true),
        Replace => store(StoreMode::Replace, false),
        ReplaceQ => store(StoreMode::Replace, true),
        Append => Command::Concat {
            append: true,
            quiet: false,
        },
        AppendQ => Command::Concat {
            append: true,
            quiet: true,
        },
        Prepend => Command::Concat {
            append: false,
            quiet: false,
        },
        PrependQ => Command::Concat {
            append: false,
            quiet: true,
        },
        Delete => Command::Delete { quiet: false },
        DeleteQ => Command::Delete { quiet: true },
        Increment => arith(true, false),
        IncrementQ => arith(true, true),
        Decrement => arith(false, false),
        DecrementQ => arith(false, true),
        Quit => Command::Quit { quiet: false },
        QuitQ => Command::Quit { quiet: true },
        Flush | FlushQ => Command::Flush {
            delay: if extras.len() == 4 {
                u32_at(extras, 0)
            } else {
                0
            },
            quiet: opcode == FlushQ,
        },
        NoOp => Command::NoOp,
        Version => Command::Version,
        Stat => Command::Stat,
        Verbosity => Command::Verbosity {
            level: if extras.len() == 4 {
                u32_at(extras, 0)
            } else {
                0
            },
        },
        SaslListMechs => Command::SaslListMechs,
        SaslAuth => Command::SaslAuth,
        SaslStep => Command::SaslStep,
    }
}

#[cfg(test)]
mod tests;
