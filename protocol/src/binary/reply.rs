//! Binary responses: the header with magic 0x81, then extras, key, value.

use super::{Header, HEADER_LEN, RESPONSE_MAGIC};

/// The parts of one response; lengths are derived from the slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's opcode, echoed.
    pub opcode: u8,
    /// The outcome.
    pub status: Status,
    /// The request's opaque, echoed.
    pub opaque: u32,
    /// The item's cas (0 when none applies).
    pub cas: u64,
    /// Extras: client flags on a get hit.
    pub extras: &'a [u8],
    /// The key, for GetK/GatK and Stat.
    pub key: &'a [u8],
    /// The value, version string, stat value or error message.
    pub value: &'a [u8],
}

/// Appends a response.
pub fn encode_response(out: &mut Vec<u8>, r: &Response<'_>) {
    let body_len = r.extras.len() + r.key.len() + r.value.len();
    out.reserve(HEADER_LEN + body_len);
    Header {
        magic: RESPONSE_MAGIC,
        opcode: r.opcode,
        // Keys are at most 250 bytes and extras at most 20: these fit.
        key_len: r.key.len() as u16,
        extras_len: r.extras.len() as u8,
        data_type: 0,
        vbucket_or_status: r.status as u16,
        body_len: body_len as u32,
        opaque: r.opaque,
        cas: r.cas,
    }
    .encode(out);
    out.extend_from_slice(r.extras);
    out.extend_from_slice(r.key);
    out.extend_from_slice(r.value);
}

/// Appends an error response carrying memcached's message for `status`.
pub fn encode_error(out: &mut Vec<u8>, opcode: u8, status: Status, opaque: u32) {
    encode_response(
        out,
        &Response {
            opcode,
            status,
            opaque,
            cas: 0,
            extras: &[],
            key: &[],
            value: status.message(),
        },
    );
}

/// Response status codes, as memcached sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    /// Success.
    NoError = 0x0000,
    /// No such item.
    KeyNotFound = 0x0001,
    /// Item exists (add) or cas mismatch.
    KeyExists = 0x0002,
    /// Value over the item size limit.
    TooLarge = 0x0003,
    /// Lengths or extras that do not fit the opcode.
    InvalidArguments = 0x0004,
    /// Condition for append/prepend/replace not met.
    NotStored = 0x0005,
    /// incr/decr on a value that is not a number.
    NonNumeric = 0x0006,
    /// Authentication failed.
    AuthError = 0x0020,
    /// Authentication needs another step.
    AuthContinue = 0x0021,
    /// Opcode not known.
    UnknownCommand = 0x0081,
    /// No memory for the item, even after eviction.
    OutOfMemory = 0x0082,
    /// The server cannot serve the request now (memcached's ETMPFAIL): the
    /// core owning the key stopped before it answered.
    TemporaryFailure = 0x0086,
}

impl Status {
    /// The message memcached puts in the body of an error response.
    pub fn message(self) -> &'static [u8] {
        match self {
            Status::NoError => b"",
            Status::KeyNotFound => b"Not found",
            Status::KeyExists => b"Data exists for key.",
            Status::TooLarge => b"Too large.",
            Status::InvalidArguments => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::NonNumeric => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::AuthContinue => b"",
            Status::UnknownCommand => b"Unknown command",
            Status::OutOfMemory => b"Out of memory",
            Status::TemporaryFailure => b"Temporary failure",
        }
    }
}
