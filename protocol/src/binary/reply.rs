//! Binary responses: the header with magic 0x81, then extras, key, value.

use super::{Header, Status, HEADER_LEN, RESPONSE_MAGIC};
use crate::error::{ErrorKind, ParseError};

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

/// Appends a success response to `req` (its opcode and opaque echoed).
pub fn write_ok(
    out: &mut Vec<u8>,
    req: &super::Request<'_>,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    encode_response(
        out,
        &Response {
            opcode: req.opcode as u8,
            status: Status::NoError,
            opaque: req.opaque,
            cas,
            extras,
            key,
            value,
        },
    );
}

/// Appends an error response to `req` with memcached's message for
/// `status`.
pub fn write_error(out: &mut Vec<u8>, req: &super::Request<'_>, status: Status) {
    encode_error(out, req.opcode as u8, status, req.opaque);
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

impl ParseError {
    /// Appends the reply memcached sends for this error (possibly nothing):
    /// a binary error response, or the text error line. Here, beside the
    /// binary encoder, so the error types depend on no wire module.
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        if self.silent {
            return;
        }
        match self.kind {
            ErrorKind::Binary {
                status,
                opcode,
                opaque,
            } => encode_error(out, opcode, status, opaque),
            kind => out.extend_from_slice(kind.text_reply()),
        }
    }
}
