//! One read's worth of pipelined requests, executed in two passes so that
//! replies leave in request order while keys owned by other cores are
//! served by those cores.
//!
//! Pass 1 parses every complete request in the buffer and copies each op
//! whose key another core owns into that core's [`Batch`]. The batches go
//! out together (one message per destination per read) and their replies
//! are awaited together. Pass 2 parses the same bytes again (cheaper than
//! keeping the parsed requests), runs local ops inline against the shard,
//! takes remote outcomes in order, and encodes every reply into the output
//! buffer. Each key has one owner, and each owner runs a connection's ops in
//! the order they were sent, so per-key order is the client's order.

mod pass2;
mod remote;

use pass2::{flush, unlink_target, Pass2, Step};
pub use remote::reply_memory_bound;
use remote::{refill, send_all, Remote, Remotes};

use futures_lite::AsyncWrite;
use segcore_protocol::{Limits, ParseError, Recovery, MAX_KEY_LEN};

use super::latency::{Class, ClassCounts};
use super::op::{CoreReport, KeyCommand, Op, Outcome};
use super::router::Fanout;
use super::Core;
use crate::storage::hash::shard_of;
use crate::storage::HashedKey;

/// Most requests taken from one read before replying: bounds the memory one
/// pipelining client can pin in flight.
pub const MAX_BATCH_REQUESTS: usize = 256;
/// Output is written out once it passes this many bytes, mid-batch if need be.
pub const FLUSH_BYTES: usize = 256 << 10;

/// Keys of one batch whose items are prefetched (the rest still get their
/// index lines prefetched).
const PREFETCH_KEYS: usize = 64;

/// The core that owns `key`.
#[inline]
pub fn owner_of(key: &[u8], cores: usize) -> usize {
    if cores == 1 {
        0
    } else {
        HashedKey::new(key).shard(cores)
    }
}

/// Which core owns a key: by hash over the cores when they share one port,
/// or always the receiving core with `--port-per-core`, where each core is
/// a node of the proxy's or client's ring and nothing is forwarded.
/// Commands for every core (`stats`, `flush_all`) go to every core either
/// way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Cores in the server.
    pub cores: usize,
    /// The core that owns every key (per-core endpoints).
    pub local: Option<usize>,
}

impl Route {
    /// Calls `f(core, op)` for every core: the ops of commands for the
    /// whole server (`flush_all`, `stats`), on every wire.
    pub fn each_core(&self, op: &Op<&[u8]>, f: &mut dyn FnMut(usize, &Op<&[u8]>)) {
        for core in 0..self.cores {
            f(core, op);
        }
    }

    /// The core that owns `key`.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> usize {
        match self.local {
            Some(core) => core,
            None => owner_of(key, self.cores),
        }
    }

    /// The core that runs `op`: its key's owner, from the hash the op
    /// carries (a whole-core op is handed to each core by its lowering).
    #[inline]
    pub fn owner_of(&self, op: &Op<&[u8]>) -> usize {
        match (self.local, op) {
            (Some(core), _) => core,
            (None, Op::Key { hash, .. }) => shard_of(*hash, self.cores),
            (None, Op::Core(_)) => 0,
        }
    }
}

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

/// Counts an op in `stats detail` when that is on and `req` is counted.
#[inline]
fn count_detail<P: WireProtocol, B>(
    core: &Core,
    req: &P::Request<'_>,
    op: &Op<&[u8]>,
    outcome: &Outcome<B>,
) {
    if P::counts_in_detail(req) {
        let mut prefixes = core.prefixes.borrow_mut();
        if prefixes.enabled() {
            prefixes.record(op, outcome);
        }
    }
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

/// Where pass 1 stopped, so pass 2 stops at the same place.
enum Stop {
    /// Ran out of complete requests (or hit the batch cap).
    More,
    /// An error's skip reaches past the buffer.
    Discard(usize),
    /// An error closes the connection.
    Close,
}

/// Runs every complete request at the start of `buf`, parsed with
/// `limits`, appending replies to `out`; once `out` passes [`FLUSH_BYTES`]
/// it is written to `writer`, between requests or between the ops of one
/// (a multi-get's values stream out as the client takes them), so the
/// replies a connection holds stay bounded whatever it asks for (see
/// [`reply_memory_bound`]).
pub async fn run_batch<P: WireProtocol, W: AsyncWrite + Unpin>(
    core: &Core,
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
    writer: &mut W,
) -> BatchEnd {
    let route = core.route();
    core.tick();
    // Latency: one clock read here and one when the replies are queued,
    // for the whole batch (see `latency`).
    let started = std::time::Instant::now();
    // -vvv logs every command; checked once per batch.
    let trace = log::log_enabled!(log::Level::Trace);

    let (mut fanout, end, stop) = plan::<P>(core, buf, limits);
    let budget = match fanout.as_mut() {
        Some(fanout) => send_all(core, fanout).await,
        None => 0,
    };

    // Pass 2: execute local ops, take remote outcomes, encode in order.
    let mut pass = Pass2 {
        core,
        route,
        limits,
        state: ReplyState::default(),
        classes: ClassCounts::default(),
        parsed: 0,
        trace,
    };
    let mut flow = Flow::Continue;
    let mut at = 0;
    while at < end || matches!(stop, Stop::Discard(_) | Stop::Close) && at <= end {
        let step = pass.step::<P>(buf, at, end, &stop, &mut Remotes::of(fanout.as_mut()), out);
        // The rare steps that wait in the middle of a request are boxed,
        // so they do not grow every batch's slot.
        let next_at = match step {
            Step::Next {
                at,
                flow: Flow::Continue,
            } => at,
            Step::Next { flow: next, .. } => {
                flow = next;
                break;
            }
            Step::Paused {
                pause,
                resume_at,
                used,
            } => {
                let resumed = Box::pin(pass.resume::<P, W>(
                    &buf[at..at + used],
                    pause,
                    resume_at,
                    fanout.as_mut(),
                    budget,
                    out,
                    writer,
                ))
                .await;
                match resumed {
                    Flow::Continue => at + used,
                    next => {
                        flow = next;
                        break;
                    }
                }
            }
            Step::Skip { at, unlink } => {
                if let (Some(owner), Some(fanout)) = (unlink, fanout.as_mut()) {
                    // Pass 1 sent it; take its (empty) outcome.
                    while matches!(Remotes::of(Some(fanout)).next(owner), Remote::Later) {
                        Box::pin(refill(core, fanout, owner, budget)).await;
                    }
                }
                match at {
                    Some(at) => at,
                    None => break,
                }
            }
            Step::End => break,
        };
        at = next_at;
        if out.len() > FLUSH_BYTES && flush(core, writer, out).await.is_err() {
            flow = Flow::Close;
            break;
        }
    }
    let Pass2 {
        classes, parsed, ..
    } = pass;
    core.counters.borrow_mut().requests += parsed;
    if parsed > 0 {
        let ns = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        core.latency.borrow_mut().record(&classes, ns);
    }
    // Pass 2 must take exactly the remote outcomes pass 1 asked for: the
    // two passes parse the same bytes into the same op sequence.
    debug_assert!(
        flow != Flow::Continue
            || fanout.as_ref().is_none_or(|f| {
                (0..f.replies.len())
                    .all(|d| f.replies[d].is_none() || f.cursors[d] == f.batches[d].ops.len())
            }),
        "pass 2 did not consume the ops pass 1 forwarded"
    );
    if let Some(fanout) = fanout {
        core.router.recycle_fanout(fanout);
    }
    let (discard, flow) = match stop {
        Stop::Discard(n) => (n, flow),
        Stop::Close => (0, Flow::Close),
        Stop::More => (0, flow),
    };
    BatchEnd {
        consumed: if matches!(stop, Stop::Discard(_)) {
            buf.len()
        } else {
            end
        },
        discard,
        flow,
    }
}

/// Pass 1: parses the requests at the start of `buf`, collects the ops
/// other cores own into one batch per owner, and starts loading the index
/// and item memory of local ops so pass 2 finds it in cache (a lone request
/// gains nothing from that, so only batches pay for the extra hashing).
/// Returns the batches (none when every op is local), where pass 2 must
/// stop, and why.
fn plan<P: WireProtocol>(
    core: &Core,
    buf: &[u8],
    limits: &Limits,
) -> (Option<Fanout>, usize, Stop) {
    let cores = core.cores;
    let me = core.id;
    let route = core.route();
    let mut fanout: Option<Fanout> = None;
    let mut at = 0;
    let mut requests = 0;
    let mut stop = Stop::More;
    let shard = core.shard.borrow();
    let mut hashes = [0u64; PREFETCH_KEYS];
    let mut prefetched = 0;
    while at < buf.len() && requests < MAX_BATCH_REQUESTS {
        match P::parse(&buf[at..], limits) {
            Ok(Some((req, used))) => {
                let pipelined = at + used < buf.len() || requests > 0;
                // Even with per-core ports, commands for every core
                // (stats, flush_all) cross to the others.
                if cores > 1 || pipelined {
                    P::for_each_op(&req, route, &mut |owner, op| {
                        if owner != me {
                            fanout
                                .get_or_insert_with(|| core.router.fanout(cores))
                                .batches[owner]
                                .push(op);
                        } else if pipelined {
                            if let Some(key) = op.hashed_key() {
                                shard.prefetch(key);
                                if prefetched < hashes.len() {
                                    hashes[prefetched] = key.hash;
                                    prefetched += 1;
                                }
                            }
                        }
                    });
                }
                at += used;
                requests += 1;
                if P::closes(&req) {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                // A refused set's unlink goes to the key's owner like an op.
                let mut scratch = [0; MAX_KEY_LEN];
                if let Some((owner, key)) = unlink_target(&e, &buf[at..], route, &mut scratch) {
                    if owner != me {
                        fanout
                            .get_or_insert_with(|| core.router.fanout(cores))
                            .batches[owner]
                            .push(&Op::on(key, KeyCommand::Unlink));
                    }
                }
                match e.recovery {
                    Recovery::Skip(n) if at + n <= buf.len() => {
                        at += n;
                        requests += 1;
                    }
                    Recovery::Skip(n) => {
                        stop = Stop::Discard(at + n - buf.len());
                        break;
                    }
                    Recovery::Close => {
                        stop = Stop::Close;
                        break;
                    }
                }
            }
        }
    }
    let end = at;
    // By now the first keys' index lines have arrived: start loading the
    // items those lookups will read.
    for &hash in &hashes[..prefetched] {
        shard.prefetch_item(hash);
    }
    (fanout, end, stop)
}
