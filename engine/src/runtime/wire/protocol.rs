//! What a wire protocol is to the batch runner: how it parses a request,
//! lowers it to ops, and writes their outcomes back.

use segcore_protocol::{Limits, ParseError};

use crate::runtime::batch::route::Route;
use crate::runtime::metrics::latency::Class;
use crate::runtime::metrics::report::CoreReport;
use crate::runtime::op::{Op, Outcome};
use crate::runtime::server::settings::Settings;

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

/// What the batch runner needs to know of a request besides its ops,
/// answered once per request by [`WireProtocol::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestKind {
    /// Which latency class it is recorded in.
    pub class: Class,
    /// Nothing after it may run in the same batch: it closes the
    /// connection, or it may change what the connection is allowed to do
    /// (a SASL re-authentication), so pass 1 must not send anything after
    /// it to another core.
    pub ends_batch: bool,
    /// `stats detail` counts its ops: memcached counts the classic get,
    /// storage and delete commands, not meta ones.
    pub counted_in_detail: bool,
    /// It is a `flush_all` (counted in `cmd_flush` once, on the core that
    /// received it, though every core runs it).
    pub flush: bool,
}

/// State carried from a request's per-op replies to its end.
#[derive(Default)]
pub struct ReplyState {
    /// Collected `stats` reports, one per core.
    pub reports: Vec<CoreReport>,
    /// An authentication attempt the request made, and whether it
    /// succeeded (the runner counts it in `auth_cmds`/`auth_errors`).
    pub auth_attempt: Option<bool>,
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

    /// Writes what follows the per-op replies (END, OK, stats, ...) and
    /// says what the connection does next. A wire sees the server only
    /// through its settings and what the ops reported.
    fn reply_end(
        req: &Self::Request<'_>,
        out: &mut Vec<u8>,
        state: &mut ReplyState,
        settings: &Settings,
    ) -> Flow;

    /// What the runner needs to know of `req` (class, whether it ends the
    /// batch, whether it is counted in `stats detail`, whether it is a
    /// flush), in one answer.
    fn kind(req: &Self::Request<'_>) -> RequestKind;
}
