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

use futures_lite::{AsyncWrite, AsyncWriteExt};
use segcore_protocol::{Limits, ParseError, Recovery, MAX_KEY_LEN};

use super::latency::{Class, ClassCounts};
use super::op::{execute, Batch, CoreReport, KeyCommand, Op, Outcome, Replies, Span};
use super::router::{Answered, Fanout, Sending};
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
    let mut classes = ClassCounts::default();
    // -vvv logs every command; checked once per batch.
    let trace = log::log_enabled!(log::Level::Trace);

    let (mut fanout, end, stop) = plan::<P>(core, buf, limits);
    let budget = match fanout.as_mut() {
        Some(fanout) => send_all(core, fanout).await,
        None => 0,
    };

    // Pass 2: execute local ops, take remote outcomes, encode in order.
    let mut state = ReplyState::default();
    let mut flow = Flow::Continue;
    let mut at = 0;
    let mut parsed = 0u64;
    while at < end || matches!(stop, Stop::Discard(_) | Stop::Close) && at <= end {
        let step = {
            let mut pass = Pass2 {
                core,
                route,
                limits,
                state: &mut state,
                classes: &mut classes,
                parsed: &mut parsed,
                trace,
            };
            pass.step::<P>(buf, at, end, &stop, &mut Remotes::of(fanout.as_mut()), out)
        };
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
                let pass = Pass2 {
                    core,
                    route,
                    limits,
                    state: &mut state,
                    classes: &mut classes,
                    parsed: &mut parsed,
                    trace,
                };
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

/// Bytes of forwarded outcomes one connection asks its owners to copy at a
/// time, shared among the owners of a batch (each gets at least
/// [`MIN_REPLY_PIECE`]); an owner stops once its share is full and the
/// rest of its batch is fetched when pass 2 reaches it.
pub const REPLY_BYTES: usize = 256 << 10;
/// The smallest share of [`REPLY_BYTES`] one owner gets.
pub const MIN_REPLY_PIECE: usize = 16 << 10;

/// The most reply bytes one connection holds at once, whatever it asks
/// for: its output (written out past [`FLUSH_BYTES`], so at most that plus
/// one reply) and the forwarded outcomes in hand (each owner's share, plus
/// the one value that may pass it). `max_reply` is the largest single
/// reply (an item at the size limit with its header).
pub fn reply_memory_bound(cores: usize, max_reply: usize) -> usize {
    let remotes = cores.saturating_sub(1);
    let pieces = REPLY_BYTES
        .checked_div(remotes)
        .map_or(0, |piece| piece.max(MIN_REPLY_PIECE) * remotes);
    FLUSH_BYTES + max_reply + pieces + remotes * max_reply
}

/// Sends every remote batch, then waits for all of them (the owners work
/// in parallel). Returns the reply budget each owner was given.
async fn send_all(core: &Core, fanout: &mut Fanout) -> usize {
    let cores = core.cores;
    let remotes = fanout.batches.iter().filter(|b| !b.is_empty()).count();
    let budget = (REPLY_BYTES / remotes.max(1)).max(MIN_REPLY_PIECE);
    for dest in 0..cores {
        if fanout.batches[dest].is_empty() {
            fanout.tokens.push(None);
            continue;
        }
        let batch = std::mem::take(&mut fanout.batches[dest]);
        if cfg!(debug_assertions) {
            fanout.sent.resize_with(dest, Default::default);
            fanout.sent.push(batch.clone());
        }
        core.counters.borrow_mut().forwarded_out += batch.keyed_ops();
        let token = match core.router.send(dest, batch, 0, budget) {
            Sending::Sent(token) => token,
            Sending::Full(wait) => wait.await,
        };
        fanout.tokens.push(token);
    }
    if cfg!(debug_assertions) {
        fanout.sent.resize_with(cores, Default::default);
    }
    for dest in 0..cores {
        let answered = match fanout.tokens[dest] {
            Some(token) => core.router.wait(token).await,
            None => None,
        };
        match answered {
            Some(Answered { replies, batch }) => {
                core.router
                    .recycle_batch(std::mem::replace(&mut fanout.batches[dest], batch));
                fanout.replies.push(Some(replies));
            }
            None => fanout.replies.push(None),
        }
    }
    fanout.cursors.resize(cores, 0);
    fanout.bases.resize(cores, 0);
    budget
}

/// Sends `owner` the rest of its batch (from the first op whose outcome
/// pass 2 has not taken) and waits for those outcomes; the ones in hand
/// are all used by now and their buffers go back to the pool.
async fn refill(core: &Core, fanout: &mut Fanout, owner: usize, budget: usize) {
    let start = fanout.cursors[owner];
    let batch = std::mem::take(&mut fanout.batches[owner]);
    if let Some(used) = fanout.replies[owner].take() {
        core.router.recycle_replies(used);
    }
    let token = match core.router.send(owner, batch, start, budget) {
        Sending::Sent(token) => token,
        Sending::Full(wait) => wait.await,
    };
    let answered = match token {
        Some(token) => core.router.wait(token).await,
        None => None,
    };
    // An owner that stopped leaves `replies` empty: the rest is unavailable.
    if let Some(Answered { replies, batch }) = answered {
        fanout.replies[owner] = Some(replies);
        fanout.batches[owner] = batch;
        fanout.bases[owner] = start;
    }
}

/// Writes out the replies so far.
async fn flush<W: AsyncWrite + Unpin>(
    core: &Core,
    writer: &mut W,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    writer.write_all(out).await?;
    core.counters.borrow_mut().bytes_written += out.len() as u64;
    out.clear();
    Ok(())
}

/// Why a run of a request's ops stopped before its last op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pause {
    /// The output passed [`FLUSH_BYTES`]: write it out, then go on.
    Flush,
    /// This owner's outcomes in hand are used up and it has more: fetch
    /// them, then go on.
    Refill(usize),
}

/// What one step of pass 2 did.
enum Step {
    /// A request answered (or nothing to do): go on at `at` unless `flow`
    /// says otherwise.
    Next {
        /// Where the next request starts.
        at: usize,
        /// What the request asked of the connection.
        flow: Flow,
    },
    /// A request paused in the middle of its ops (`used` bytes long).
    Paused {
        pause: Pause,
        resume_at: usize,
        used: usize,
    },
    /// An error was answered: go on at `at` (`None`: stop), after taking
    /// the outcome of its unlink from that owner if there is one.
    Skip {
        at: Option<usize>,
        unlink: Option<usize>,
    },
    /// Nothing more to run in this read.
    End,
}

/// What pass 2 carries from request to request.
struct Pass2<'p> {
    core: &'p Core,
    route: Route,
    limits: &'p Limits,
    state: &'p mut ReplyState,
    classes: &'p mut ClassCounts,
    parsed: &'p mut u64,
    trace: bool,
}

impl Pass2<'_> {
    /// Parses the request at `at` and answers it, or its error, without
    /// waiting; pass 1 stopped at `end` for `stop`.
    fn step<P: WireProtocol>(
        &mut self,
        buf: &[u8],
        at: usize,
        end: usize,
        stop: &Stop,
        remotes: &mut Remotes<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        let core = self.core;
        match P::parse(&buf[at..], self.limits) {
            Ok(Some((req, used))) if at < end => {
                *self.parsed += 1;
                self.classes[P::class(&req) as usize] += 1;
                if self.trace {
                    log::trace!("core {}: {}", core.id, command_text(&buf[at..at + used]));
                }
                match answer_ops::<P>(core, &req, self.route, 0, remotes, out, self.state) {
                    None => Step::Next {
                        at: at + used,
                        flow: P::reply_end(&req, out, self.state, core),
                    },
                    Some((pause, resume_at)) => Step::Paused {
                        pause,
                        resume_at,
                        used,
                    },
                }
            }
            Err(e) if at < end || !matches!(stop, Stop::More) => {
                e.write_reply(out);
                if e.is_too_large() {
                    core.counters.borrow_mut().store_too_large += 1;
                } else if e.is_out_of_memory() {
                    core.counters.borrow_mut().store_no_memory += 1;
                } else if e.is_refused_flush() {
                    core.counters.borrow_mut().cmd_flush += 1;
                }
                let mut scratch = [0; MAX_KEY_LEN];
                let mut unlink = None;
                if let Some((owner, key)) = unlink_target(&e, &buf[at..], self.route, &mut scratch)
                {
                    if owner == core.id {
                        let op = Op::on(key, KeyCommand::Unlink);
                        execute(&mut core.shard.borrow_mut(), &op, core);
                    } else if !matches!(remotes.next(owner), Remote::Later) {
                        // Taken: pass 1 sent it, and its (empty) outcome is here.
                    } else {
                        unlink = Some(owner);
                    }
                }
                let at = match e.recovery {
                    Recovery::Skip(n) if at + n <= end => Some(at + n),
                    Recovery::Skip(_) | Recovery::Close => None,
                };
                Step::Skip { at, unlink }
            }
            _ => Step::End,
        }
    }

    /// Finishes a request that paused: does what the pause waits for,
    /// answers the rest of its ops (pausing again as often as needed),
    /// then its end. `request` is exactly the request's bytes.
    #[allow(clippy::too_many_arguments)]
    async fn resume<P: WireProtocol, W: AsyncWrite + Unpin>(
        self,
        request: &[u8],
        mut pause: Pause,
        mut done: usize,
        mut fanout: Option<&mut Fanout>,
        budget: usize,
        out: &mut Vec<u8>,
        writer: &mut W,
    ) -> Flow {
        let core = self.core;
        let Ok(Some((req, _))) = P::parse(request, self.limits) else {
            debug_assert!(false, "a request parsed once parses again");
            return Flow::Close;
        };
        loop {
            match pause {
                Pause::Flush => {
                    if flush(core, writer, out).await.is_err() {
                        return Flow::Close;
                    }
                }
                Pause::Refill(owner) => {
                    if let Some(fanout) = fanout.as_deref_mut() {
                        refill(core, fanout, owner, budget).await;
                    }
                }
            }
            let mut remotes = Remotes::of(fanout.as_deref_mut());
            match answer_ops::<P>(core, &req, self.route, done, &mut remotes, out, self.state) {
                Some((next, resume_at)) => {
                    pause = next;
                    done = resume_at;
                }
                None => return P::reply_end(&req, out, self.state, core),
            }
        }
    }
}

/// Answers `req`'s ops from the `skip`th on, in order: local ones run on
/// the shard, remote ones take their owner's outcome. Returns `None` once
/// every op is answered, or why it paused and the op to resume at.
fn answer_ops<P: WireProtocol>(
    core: &Core,
    req: &P::Request<'_>,
    route: Route,
    skip: usize,
    remotes: &mut Remotes<'_>,
    out: &mut Vec<u8>,
    state: &mut ReplyState,
) -> Option<(Pause, usize)> {
    let me = core.id;
    let mut shard = core.shard.borrow_mut();
    let mut seen = 0;
    let mut pause = None;
    P::for_each_op(req, route, &mut |owner, op| {
        let at = seen;
        seen += 1;
        if at < skip || pause.is_some() {
            return;
        }
        if owner == me {
            let outcome = execute(&mut shard, op, core);
            count_detail::<P, _>(core, req, op, &outcome);
            P::reply_op(req, op, outcome, out, state);
        } else {
            if cfg!(debug_assertions) {
                same_as_sent(remotes.sent, remotes.cursors, owner, op);
            }
            match remotes.next(owner) {
                Remote::Ready(outcome, arena) => {
                    count_detail::<P, _>(core, req, op, outcome);
                    P::reply_op(req, op, outcome.clone().map(|s| s.get(arena)), out, state)
                }
                Remote::Later => {
                    pause = Some((Pause::Refill(owner), at));
                    return;
                }
                // The owner is gone (shutting down).
                Remote::Gone => P::reply_unavailable(req, out),
            }
        }
        if out.len() > FLUSH_BYTES {
            pause = Some((Pause::Flush, at + 1));
        }
    });
    pause
}

/// The forwarded outcomes of one read, as pass 2 takes them.
struct Remotes<'f> {
    replies: &'f [Option<Replies>],
    batches: &'f [Batch],
    bases: &'f [usize],
    cursors: &'f mut [usize],
    sent: &'f [Batch],
}

/// The next outcome of an owner.
enum Remote<'r> {
    /// Here, with the arena its bytes are in.
    Ready(&'r Outcome<Span>, &'r [u8]),
    /// Not run yet: the owner stopped at its reply budget.
    Later,
    /// The owner is gone (the server is stopping).
    Gone,
}

impl<'f> Remotes<'f> {
    fn of(fanout: Option<&'f mut Fanout>) -> Self {
        match fanout {
            Some(f) => Remotes {
                replies: &f.replies,
                batches: &f.batches,
                bases: &f.bases,
                cursors: &mut f.cursors,
                sent: &f.sent,
            },
            None => Remotes {
                replies: &[],
                batches: &[],
                bases: &[],
                cursors: &mut [],
                sent: &[],
            },
        }
    }

    /// Takes `owner`'s next outcome.
    fn next(&mut self, owner: usize) -> Remote<'f> {
        let Some(Some(replies)) = self.replies.get(owner) else {
            return Remote::Gone;
        };
        let at = self.cursors[owner];
        match replies.outcomes.get(at - self.bases[owner]) {
            Some(outcome) => {
                self.cursors[owner] += 1;
                Remote::Ready(outcome, &replies.arena)
            }
            None if at < self.batches[owner].ops.len() => Remote::Later,
            None => Remote::Gone,
        }
    }
}

/// A request as -vvv logs it: a text command's first line (at most 256
/// bytes), or a binary request's opcode and key length.
fn command_text(request: &[u8]) -> String {
    if request.first() == Some(&0x80) && request.len() >= 4 {
        let key_len = u16::from_be_bytes([request[2], request[3]]);
        return format!("binary opcode 0x{:02x}, key of {key_len} bytes", request[1]);
    }
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Escaped as keys are: a logged line cannot hold control bytes.
    segcore_protocol::key::Printable(&line[..line.len().min(256)])
        .to_string()
        .replace("%20", " ")
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

/// The key a refused set must unlink (memcached drops its old value) and
/// the core that owns it, or `None` for every other error. `parsed` is the
/// buffer the error was parsed from.
fn unlink_target<'a>(
    e: &ParseError,
    parsed: &'a [u8],
    route: Route,
    scratch: &'a mut [u8; MAX_KEY_LEN],
) -> Option<(usize, &'a [u8])> {
    let key = e.stale_key?.key(parsed, scratch)?;
    Some((route.owner(key), key))
}

/// Debug builds: the op pass 2 is about to take `owner`'s next outcome for
/// must be the op pass 1 sent there in that place (the two passes parse the
/// same bytes, so any difference is a lowering that is not deterministic).
fn same_as_sent(sent: &[Batch], cursors: &[usize], owner: usize, op: &Op<&[u8]>) {
    let at = cursors.get(owner).copied().unwrap_or(0);
    let Some((batch, sent_op)) = sent
        .get(owner)
        .and_then(|batch| Some((batch, batch.ops.get(at)?)))
    else {
        panic!("pass 2 forwards {op:?} to core {owner}, which pass 1 never did");
    };
    let sent_op = sent_op.map(|span| span.get(&batch.arena));
    assert_eq!(
        &sent_op, op,
        "pass 2 lowered a request differently from pass 1"
    );
}
