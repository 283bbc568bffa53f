//! Bad input: what memcached answers, and what the connection does next.
//!
//! A parse error is an expected runtime condition, not a bug: clients send
//! typos, truncated packets and hostile lengths. Each error therefore carries
//! the exact reply memcached gives (so clients written against memcached see
//! no surprise) and a [`Recovery`] that keeps the connection in sync.

use crate::binary::codes::{self as binary};

/// Why a request was refused. [`ParseError::write_reply`] turns it into bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A command name memcached does not know, or the wrong number of tokens.
    UnknownCommand,
    /// A malformed line: key too long or with control characters, a bad number.
    BadCommandLine,
    /// `delete` with an argument other than `0` or `noreply`.
    BadDeleteFormat,
    /// `incr`/`decr` with a delta that is not an unsigned 64-bit decimal.
    InvalidDelta,
    /// `touch`/`gat` with an exptime that is not a 32-bit decimal.
    InvalidExptime,
    /// The data block was not followed by `\r\n`, or its length was malformed.
    BadDataChunk,
    /// The declared value is larger than the item size limit.
    TooLarge,
    /// The declared value fits the item limit but not the room the server
    /// has for values being received ([`crate::Limits::value_room`]).
    OutOfMemory,
    /// A command line grew past the line limit without a newline. memcached
    /// closes such a connection without a reply.
    LineTooLong,
    /// `shutdown` with a mode other than `graceful`.
    InvalidShutdownMode,
    /// A meta flag memcached does not know.
    MetaInvalidFlag,
    /// A meta flag given twice.
    MetaDuplicateFlag,
    /// A meta flag whose token is not the number it must be.
    MetaBadToken,
    /// Any flag `md` or `ma` cannot take (unknown, repeated, a bad token or
    /// base64 key): memcached answers them all alike.
    MetaFlagRefused,
    /// A meta `b` key that is not valid base64.
    MetaKeyDecode,
    /// An `M` token longer than one character.
    MetaModeLength,
    /// An `ms` mode other than E, A, P, R, S.
    MetaInvalidSetMode,
    /// An `ma` mode other than I, +, D, -.
    MetaInvalidArithMode,
    /// An `ma` `J` token that is not an unsigned 64-bit decimal.
    MetaInvalidInitial,
    /// An `ma` `D` token that is not an unsigned 64-bit decimal.
    MetaInvalidDelta,
    /// An `O` (opaque) token longer than 32 bytes.
    MetaOpaqueTooLong,
    /// An HTTP request line (an unknown command whose last token starts with
    /// `HTTP/`): memcached hangs up on it without a reply, so a browser or a
    /// misrouted HTTP client pointed at the port gets nothing back.
    HttpRequest,
    /// `slabs reassign`: segcore has no slab classes to move memory
    /// between, so it answers as memcached does with reassignment disabled.
    SlabReassignDisabled,
    /// `flush_all` on a server started with `-F`.
    FlushDisabled,
    /// A binary packet that does not start with the request magic: memcached
    /// closes the connection without a reply.
    BinaryBadMagic,
    /// A binary error reply (invalid arguments, unknown command, too large)
    /// for the request with this opcode and opaque.
    Binary {
        /// The status code memcached sends.
        status: binary::Status,
        /// Echoed from the request header.
        opcode: u8,
        /// Echoed from the request header.
        opaque: u32,
    },
}

impl ErrorKind {
    /// The text reply line memcached sends, `\r\n` included. Empty for errors
    /// that close the connection silently or that answer in binary.
    pub fn text_reply(&self) -> &'static [u8] {
        match self {
            ErrorKind::UnknownCommand => b"ERROR\r\n",
            ErrorKind::BadCommandLine => b"CLIENT_ERROR bad command line format\r\n",
            ErrorKind::BadDeleteFormat => {
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            }
            ErrorKind::InvalidDelta => b"CLIENT_ERROR invalid numeric delta argument\r\n",
            ErrorKind::InvalidExptime => b"CLIENT_ERROR invalid exptime argument\r\n",
            ErrorKind::BadDataChunk => b"CLIENT_ERROR bad data chunk\r\n",
            ErrorKind::TooLarge => b"SERVER_ERROR object too large for cache\r\n",
            ErrorKind::OutOfMemory => b"SERVER_ERROR out of memory storing object\r\n",
            ErrorKind::InvalidShutdownMode => b"CLIENT_ERROR invalid shutdown mode\r\n",
            ErrorKind::MetaInvalidFlag => b"CLIENT_ERROR invalid flag\r\n",
            ErrorKind::MetaDuplicateFlag => b"CLIENT_ERROR duplicate flag\r\n",
            ErrorKind::MetaBadToken => b"CLIENT_ERROR bad token in command line format\r\n",
            ErrorKind::MetaFlagRefused => b"CLIENT_ERROR invalid or duplicate flag\r\n",
            ErrorKind::MetaKeyDecode => b"CLIENT_ERROR error decoding key\r\n",
            ErrorKind::MetaModeLength => b"CLIENT_ERROR incorrect length for M token\r\n",
            ErrorKind::MetaInvalidSetMode => b"CLIENT_ERROR invalid mode for ms M token\r\n",
            ErrorKind::MetaInvalidArithMode => b"CLIENT_ERROR invalid mode for ma M token\r\n",
            ErrorKind::MetaInvalidInitial => b"CLIENT_ERROR invalid numeric initial value\r\n",
            ErrorKind::MetaInvalidDelta => b"CLIENT_ERROR invalid numeric delta value\r\n",
            ErrorKind::MetaOpaqueTooLong => b"CLIENT_ERROR opaque token too long\r\n",
            ErrorKind::SlabReassignDisabled => b"CLIENT_ERROR slab reassignment disabled\r\n",
            ErrorKind::FlushDisabled => b"CLIENT_ERROR flush_all not allowed\r\n",
            ErrorKind::LineTooLong
            | ErrorKind::HttpRequest
            | ErrorKind::BinaryBadMagic
            | ErrorKind::Binary { .. } => b"",
        }
    }
}

/// What the connection does after answering a bad request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Discard this many bytes, counted from the start of the buffer that was
    /// parsed, then parse on. The count may exceed what is buffered (a value
    /// refused as too large is skipped as it arrives, never stored).
    Skip(usize),
    /// Send the reply, then close the connection.
    Close,
}

/// A refused request: the reply to send and how to carry on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// How to get back in sync with the client.
    pub recovery: Recovery,
    /// The request carried `noreply`, and memcached honours it even for
    /// this error (text storage commands do): send nothing.
    pub silent: bool,
    /// A set refused as too large names a key whose old value must go:
    /// memcached unlinks it rather than leave stale data behind (text and
    /// binary `set`, every `ms`).
    pub stale_key: Option<StaleKey>,
}

/// Where, in the buffer that was parsed, the key of a refused set lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleKey {
    /// Offset of the key's first byte.
    pub start: u32,
    /// Its length as sent.
    pub len: u16,
    /// Sent base64-encoded (meta `b`).
    pub base64: bool,
}

impl StaleKey {
    /// The key's bytes, from the same buffer the error came from; decoded
    /// into `scratch` when it was sent base64-encoded. `None` if `buf` is not
    /// that buffer.
    pub fn key<'b>(&self, buf: &'b [u8], scratch: &'b mut crate::key::KeyBuf) -> Option<&'b [u8]> {
        let start = self.start as usize;
        let raw = buf.get(start..start + usize::from(self.len))?;
        if !self.base64 {
            return Some(raw);
        }
        let len = crate::base64::decode(raw, scratch)?;
        Some(&scratch[..len])
    }
}

impl ParseError {
    pub(crate) fn skip(kind: ErrorKind, bytes: usize) -> ParseError {
        ParseError {
            kind,
            recovery: Recovery::Skip(bytes),
            silent: false,
            stale_key: None,
        }
    }

    pub(crate) fn close(kind: ErrorKind) -> ParseError {
        ParseError {
            kind,
            recovery: Recovery::Close,
            silent: false,
            stale_key: None,
        }
    }

    /// Marks the key at `key` (a subslice of `buf`) for unlinking.
    pub(crate) fn unlinking(mut self, buf: &[u8], key: &[u8], base64: bool) -> ParseError {
        let start = key.as_ptr() as usize - buf.as_ptr() as usize;
        if let (Ok(start), Ok(len)) = (u32::try_from(start), u16::try_from(key.len())) {
            self.stale_key = Some(StaleKey { start, len, base64 });
        }
        self
    }

    pub(crate) fn silenced(mut self, noreply: bool) -> ParseError {
        self.silent = noreply;
        self
    }

    /// A storage command refused for a value over the item size limit
    /// (memcached counts these as `store_too_large`).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::TooLarge
                | ErrorKind::Binary {
                    status: binary::Status::TooLarge,
                    ..
                }
        )
    }

    /// A storage command refused for want of room to receive its value
    /// (memcached counts these as `store_no_memory`).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::OutOfMemory
                | ErrorKind::Binary {
                    status: binary::Status::OutOfMemory,
                    ..
                }
        )
    }

    /// A flush refused because flushing is disabled (memcached still
    /// counts it in `cmd_flush`).
    pub fn is_refused_flush(&self) -> bool {
        match self.kind {
            ErrorKind::FlushDisabled => true,
            ErrorKind::Binary { status, opcode, .. } => {
                status == binary::Status::AuthError
                    && matches!(
                        binary::Opcode::from_u8(opcode),
                        Some(binary::Opcode::Flush | binary::Opcode::FlushQ)
                    )
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({:?})", self.kind, self.recovery)
    }
}

impl std::error::Error for ParseError {}
