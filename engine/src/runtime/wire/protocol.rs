//! What a wire protocol is to the batch runner: how it parses a request,
//! lowers it to ops, and writes their outcomes back.

use segcore_protocol::{Limits, ParseError};

use crate::runtime::batch::route::Route;
use crate::runtime::metrics::latency::Class;
use crate::runtime::metrics::report::CoreReport;
use crate::runtime::op::{Op, Outcome};
use crate::runtime::server::core::Core;

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Flush replies, then close (quit).
    Close,
    /// Flush replies, then shut the server down (enabled `shutdown`).
    Shutdown,
    /// A failed re-authentication: the connection is no longer
    /// authenticated (what follows goes through the auth gate again).
    Unauthenticate,
}

/// How a batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchEnd {
    /// Bytes of the buffer used up.
    pub consumed: usize,
    /// Bytes still to discard as they arrive (a refused value).
    pub discard: usize,
    /// What the connection does next.
    pub flow: Flow,
}

/// State carried from a request's per-op replies to its end.
#[derive(Default)]
pub struct ReplyState {
    /// Collected `stats` reports, one per core.
    pub reports: Vec<CoreReport>,
}

/// A wire protocol on top of the shard.
pub trait WireProtocol {
    /// A parsed request, borrowing the read buffer.
    type Request<'a>;

    /// Parses the first request in `buf`.
    fn parse<'a>(
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<Option<(Self::Request<'a>, usize)>, ParseError>;

    /// Calls `f(owner, op)` for each op of `req`, in order; the same
    /// sequence every time it is called for the same request.
    fn for_each_op(req: &Self::Request<'_>, route: Route, f: &mut dyn FnMut(usize, &Op<&[u8]>));

    /// Writes what `op`'s outcome means for `req`.
    fn reply_op(
        req: &Self::Request<'_>,
        op: &Op<&[u8]>,
        outcome: Outcome<&[u8]>,
        out: &mut Vec<u8>,
        state: &mut ReplyState,
    );

    /// Writes the error for an op whose owning core stopped before it
    /// answered (the server is exiting), in the client's own wire format.
    fn reply_unavailable(req: &Self::Request<'_>, out: &mut Vec<u8>);

    /// Writes what follows the per-op replies (END, OK, stats, ...).
    fn reply_end(
        req: &Self::Request<'_>,
        out: &mut Vec<u8>,
        state: &mut ReplyState,
        core: &Core,
    ) -> Flow;

    /// Whether nothing after this request may run in the same batch: it
    /// closes the connection, or it may change what the connection is
    /// allowed to do (a SASL re-authentication), so pass 1 must not send
    /// anything after it to another core.
    fn closes(req: &Self::Request<'_>) -> bool;

    /// Whether `stats detail` counts `req`'s ops: memcached counts the
    /// classic get, storage and delete commands, not meta ones.
    fn counts_in_detail(req: &Self::Request<'_>) -> bool;

    /// Which latency class `req` is recorded in.
    fn class(req: &Self::Request<'_>) -> Class;
}
