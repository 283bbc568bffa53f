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
use super::op::{execute, Batch, CoreReport, KeyCommand, Op, Outcome, Replies};
use super::router::{Fanout, Sending};
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

    /// Whether the connection closes after this request (so nothing after
    /// it in the buffer runs).
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
/// it is written to `writer` mid-batch.
pub async fn run_batch<P: WireProtocol, W: AsyncWrite + Unpin>(
    core: &Core,
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
    writer: &mut W,
) -> BatchEnd {
    let cores = core.cores;
    let me = core.id;
    let route = core.route();
    core.tick();
    // Latency: one clock read here and one when the replies are queued,
    // for the whole batch (see `latency`).
    let started = std::time::Instant::now();
    let mut classes = ClassCounts::default();
    // -vvv logs every command; checked once per batch.
    let trace = log::log_enabled!(log::Level::Trace);

    let (mut fanout, end, stop) = plan::<P>(core, buf, limits);

    // Send every remote batch, then wait for all of them.
    if let Some(fanout) = fanout.as_mut() {
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
            let token = match core.router.send(dest, batch) {
                Sending::Sent(token) => token,
                Sending::Full(wait) => wait.await,
            };
            fanout.tokens.push(token);
        }
        if cfg!(debug_assertions) {
            fanout.sent.resize_with(cores, Default::default);
        }
        for dest in 0..cores {
            let replies = match fanout.tokens[dest] {
                Some(token) => core.router.wait(token).await,
                None => None,
            };
            fanout.replies.push(replies);
        }
        fanout.cursors.resize(cores, 0);
    }
    let (replies, cursors, sent) = match fanout.as_mut() {
        Some(f) => (&f.replies[..], &mut f.cursors[..], &f.sent[..]),
        None => (&[][..], &mut [][..], &[][..]),
    };

    // Pass 2: execute local ops, take remote outcomes, encode in order.
    let mut state = ReplyState::default();
    let mut flow = Flow::Continue;
    let mut at = 0;
    let mut parsed = 0u64;
    while at < end || matches!(stop, Stop::Discard(_) | Stop::Close) && at <= end {
        match P::parse(&buf[at..], limits) {
            Ok(Some((req, used))) if at < end => {
                parsed += 1;
                classes[P::class(&req) as usize] += 1;
                if trace {
                    log::trace!("core {me}: {}", command_text(&buf[at..at + used]));
                }
                let mut shard_borrow = core.shard.borrow_mut();
                P::for_each_op(&req, route, &mut |owner, op| {
                    if owner == me {
                        let outcome = execute(&mut shard_borrow, op, core);
                        count_detail::<P, _>(core, &req, op, &outcome);
                        P::reply_op(&req, op, outcome, out, &mut state);
                    } else {
                        if cfg!(debug_assertions) {
                            same_as_sent(sent, cursors, owner, op);
                        }
                        let outcome = remote_outcome(replies, cursors, owner);
                        match outcome {
                            Some((outcome, arena)) => {
                                count_detail::<P, _>(core, &req, op, outcome);
                                P::reply_op(
                                    &req,
                                    op,
                                    outcome.clone().map(|s| s.get(arena)),
                                    out,
                                    &mut state,
                                )
                            }
                            // The owner is gone (shutting down).
                            None => P::reply_unavailable(&req, out),
                        }
                    }
                });
                drop(shard_borrow);
                let next = P::reply_end(&req, out, &mut state, core);
                at += used;
                if next != Flow::Continue {
                    flow = next;
                    break;
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
                if let Some((owner, key)) = unlink_target(&e, &buf[at..], route, &mut scratch) {
                    if owner == me {
                        let op = Op::on(key, KeyCommand::Unlink);
                        execute(&mut core.shard.borrow_mut(), &op, core);
                    } else {
                        // Pass 1 sent it; take its (empty) outcome.
                        let _ = remote_outcome(replies, cursors, owner);
                    }
                }
                match e.recovery {
                    Recovery::Skip(n) if at + n <= end => at += n,
                    Recovery::Skip(_) | Recovery::Close => break,
                }
            }
            _ => break,
        }
        if out.len() > FLUSH_BYTES {
            if writer.write_all(out).await.is_err() {
                flow = Flow::Close;
                break;
            }
            core.counters.borrow_mut().bytes_written += out.len() as u64;
            out.clear();
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
                f.replies
                    .iter()
                    .zip(&f.cursors)
                    .all(|(r, &taken)| r.as_ref().is_none_or(|r| r.outcomes.len() == taken))
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

/// A request as -vvv logs it: a text command's first line (at most 256
/// bytes), or a binary request's opcode and key length.
fn command_text(request: &[u8]) -> String {
    if request.first() == Some(&0x80) && request.len() >= 4 {
        let key_len = u16::from_be_bytes([request[2], request[3]]);
        return format!("binary opcode 0x{:02x}, key of {key_len} bytes", request[1]);
    }
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(&line[..line.len().min(256)]).into_owned()
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

/// The next outcome from `owner`'s replies, with the arena it points into.
fn remote_outcome<'r>(
    replies: &'r [Option<Replies>],
    cursors: &mut [usize],
    owner: usize,
) -> Option<(&'r Outcome<super::op::Span>, &'r [u8])> {
    let replies = replies.get(owner)?.as_ref()?;
    let outcome = replies.outcomes.get(cursors[owner])?;
    cursors[owner] += 1;
    Some((outcome, &replies.arena))
}
