//! memcached's three wire protocols — text, meta and binary — as pure functions
//! over byte slices.
//!
//! This crate knows bytes and nothing else: no sockets, no storage, no clock.
//! That keeps it cheap to test exhaustively, to fuzz, and to reuse in the load
//! generator, which must speak to any memcached-compatible server.
//!
//! # Layout
//!
//! - [`text`]: the classic line protocol (`get`, `set`, `incr`, `stats`, ...)
//!   and its replies. The meta commands (`mg`, `ms`, ...) share its framing,
//!   so [`text::parse`] returns them too; their flags and replies live in
//!   [`meta`].
//! - [`binary`]: the 24-byte-header protocol, requests and responses.
//! - [`ParseError`]: every way a request can be bad, carrying the reply
//!   memcached sends for it and what the connection must do next
//!   ([`Recovery`]).
//! - [`command`]: the command vocabulary every wire shares (storage
//!   modes, arithmetic); `lexer`: the text wire's tokens.
//! - [`response`]: replies as a client reads them (the other direction).
//! - [`auth`]: the credentials SASL PLAIN and ASCII authentication carry.
//! - [`key`], [`number`], [`base64`]: the small shared rules (what a key may
//!   contain, how memcached reads numbers, the meta `b` key encoding).
//!
//! # Parsing contract
//!
//! Every parser takes the unread bytes of a connection and returns
//!
//! - `Ok(Some((request, consumed)))`: one complete request, borrowing keys and
//!   values from the input; the caller drops `consumed` bytes afterwards.
//! - `Ok(None)`: the bytes are a valid prefix; read more and call again.
//! - `Err(e)`: the bytes are bad. `e.reply()` is what memcached would send and
//!   `e.recovery` says whether to skip a number of bytes (possibly more than
//!   are buffered yet) or close the connection.
//!
//! Nothing here allocates: a declared length is checked against [`Limits`]
//! before anything waits for it, so a client cannot make a parser (or the
//! connection feeding it) hold more than the limits plus what it really sent.
//!
//! ```
//! use segcore_protocol::{text, Limits};
//! let limits = Limits::default();
//! let buf = b"set k 0 0 2\r\nhi\r\nget k\r\n";
//! let (req, used) = text::parse(buf, &limits).unwrap().unwrap();
//! assert!(matches!(req, text::Request::Store(_)));
//! let (req, _) = text::parse(&buf[used..], &limits).unwrap().unwrap();
//! assert!(matches!(req, text::Request::Get(_)));
//! ```

pub mod auth;
pub mod base64;
pub mod binary;
pub mod command;
mod error;
pub mod key;
mod lexer;
pub mod meta;
pub mod number;
pub mod response;

pub use command::{ArithOp, StoreMode};
pub mod text;

pub use error::{ErrorKind, ParseError, Recovery, StaleKey};

/// The longest key memcached accepts, in bytes (after base64 decoding for meta).
pub const MAX_KEY_LEN: usize = 250;

/// Bounds the parsers enforce so a connection's buffers stay bounded.
///
/// The server derives these from its configuration (`-I` sets the item size);
/// the defaults match memcached's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest value a storage command may declare. Larger ones are refused
    /// with `SERVER_ERROR object too large for cache` and their data skipped.
    pub max_value_len: usize,
    /// Longest text command line (without its data block). memcached closes
    /// a connection whose line passes 2048 bytes without a newline.
    pub max_line_len: usize,
    /// Longest retrieval line (`get`, `gets`, `gat`, `gats`): multi-key gets
    /// are legitimately long, so they get a bound of their own.
    pub max_get_line_len: usize,
    /// Whether `flush_all` (binary Flush) is allowed; memcached's `-F`
    /// turns it off so no client can empty a shared cache.
    pub flush_enabled: bool,
    /// Largest value the connection can take in right now: a larger one
    /// (still within `max_value_len`) is refused as memcached refuses a set
    /// it has no memory for (`SERVER_ERROR out of memory storing object`,
    /// binary status 0x82) and its data skipped. The server lowers it when
    /// its bounded room for half-received large values is used up.
    pub value_room: usize,
}

impl Limits {
    /// Why a declared value of `len` bytes is refused before its data
    /// arrives, if it is: over the item limit, or over the room left.
    pub(crate) fn refuse_value(&self, len: usize) -> Option<error::ErrorKind> {
        if len > self.max_value_len {
            Some(error::ErrorKind::TooLarge)
        } else if len > self.value_room {
            Some(error::ErrorKind::OutOfMemory)
        } else {
            None
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_len: 1024 * 1024,
            max_line_len: 2048,
            max_get_line_len: 1024 * 1024,
            flush_enabled: true,
            value_room: usize::MAX,
        }
    }
}

/// The whole length of the request at the head of `buf` in `wire`, once
/// enough of it has arrived to say, for requests that carry a data block
/// (see [`text::request_len`], [`binary::request_len`]).
pub fn request_len(wire: Protocol, buf: &[u8]) -> Option<usize> {
    match wire {
        Protocol::Text => text::request_len(buf),
        Protocol::Binary => binary::request_len(buf),
    }
}

/// Which protocol a connection speaks, told from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Text and meta commands: line based.
    Text,
    /// The binary protocol: every request starts with magic byte 0x80.
    Binary,
}

impl Protocol {
    /// memcached decides once per connection from the first byte it reads:
    /// 0x80 (the binary request magic) can never start a text command.
    pub fn detect(first_byte: u8) -> Protocol {
        if first_byte == binary::REQUEST_MAGIC {
            Protocol::Binary
        } else {
            Protocol::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_protocol_from_first_byte() {
        assert_eq!(Protocol::detect(0x80), Protocol::Binary);
        assert_eq!(Protocol::detect(b'g'), Protocol::Text);
        assert_eq!(Protocol::detect(0x81), Protocol::Text);
    }
}
