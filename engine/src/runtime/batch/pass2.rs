//! Pass 2, request by request: local ops run on the shard, remote ones
//! take their owner's outcome, replies are encoded in order. A request's
//! ops are answered in runs: a run pauses to write out what it has (past
//! [`FLUSH_BYTES`]) or to fetch the rest of an owner's outcomes, and the
//! next run resumes at its op, so one request never holds more than a
//! bounded reply.

use futures_lite::{AsyncWrite, AsyncWriteExt};
use segcore_protocol::{Limits, ParseError, Recovery, MAX_KEY_LEN};

use crate::runtime::batch::bounds::FLUSH_BYTES;
use crate::runtime::batch::plan::{unlink_target, Stop};
use crate::runtime::batch::remote::{refill, same_as_sent, Remote, Remotes};
use crate::runtime::batch::route::Route;
use crate::runtime::batch::router::Fanout;
use crate::runtime::metrics::latency::ClassCounts;
use crate::runtime::op::Outcome;
use crate::runtime::op::{execute, KeyCommand, Op};
use crate::runtime::server::core::Core;
use crate::runtime::wire::protocol::{Flow, ReplyState, RequestKind, WireProtocol};

/// Writes out the replies so far.
pub(super) async fn flush<W: AsyncWrite + Unpin>(
    core: &Core,
    writer: &mut W,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    writer.write_all(out).await?;
    core.counters.borrow_mut().bytes_written += out.len() as u64;
    out.clear();
    Ok(())
}

/// Counts an op in `stats detail` when that is on and `req` is counted.
#[inline]
fn count_detail<B>(core: &Core, kind: RequestKind, op: &Op<&[u8]>, outcome: &Outcome<B>) {
    if kind.counted_in_detail {
        let mut prefixes = core.prefixes.borrow_mut();
        if prefixes.enabled() {
            prefixes.record(op, outcome);
        }
    }
}

/// Why a run of a request's ops stopped before its last op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pause {
    /// The output passed [`FLUSH_BYTES`]: write it out, then go on.
    Flush,
    /// This owner's outcomes in hand are used up and it has more: fetch
    /// them, then go on.
    Refill(usize),
}

/// What one step of pass 2 did.
pub(super) enum Step {
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
pub(super) struct Pass2<'p> {
    pub(super) core: &'p Core,
    pub(super) route: Route,
    pub(super) limits: &'p Limits,
    pub(super) state: ReplyState,
    pub(super) classes: ClassCounts,
    pub(super) parsed: u64,
    pub(super) trace: bool,
}

impl<'p> Pass2<'p> {
    /// Before the batch's first request.
    pub(super) fn new(core: &'p Core, route: Route, limits: &'p Limits, trace: bool) -> Self {
        Pass2 {
            core,
            route,
            limits,
            state: ReplyState::default(),
            classes: ClassCounts::default(),
            parsed: 0,
            trace,
        }
    }

    /// Parses the request at `at` and answers it, or its error, without
    /// waiting; pass 1 stopped at `end` for `stop`.
    pub(super) fn step<P: WireProtocol>(
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
                self.parsed += 1;
                let kind = P::kind(&req);
                self.classes[kind.class as usize] += 1;
                if self.trace {
                    log::trace!("core {}: {}", core.id, command_text(&buf[at..at + used]));
                }
                match answer_ops::<P>(
                    core,
                    &req,
                    kind,
                    self.route,
                    0,
                    remotes,
                    out,
                    &mut self.state,
                ) {
                    None => Step::Next {
                        at: at + used,
                        flow: self.end::<P>(&req, kind, out),
                    },
                    Some((pause, resume_at)) => Step::Paused {
                        pause,
                        resume_at,
                        used,
                    },
                }
            }
            Err(e) if at < end || !matches!(stop, Stop::More) => {
                self.refused(&e, buf, at, end, remotes, out)
            }
            _ => Step::End,
        }
    }

    /// Answers a request that did not parse with its error, unlinks the
    /// key a refused set names (memcached drops the old value), and says
    /// where parsing resumes. Kept out of line: the step loop is hot and
    /// errors are not.
    #[inline(never)]
    fn refused(
        &mut self,
        e: &ParseError,
        buf: &[u8],
        at: usize,
        end: usize,
        remotes: &mut Remotes<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        let core = self.core;
        if self.trace {
            // As memcached -vv: what was refused, and how.
            let mut reply = Vec::new();
            e.write_reply(&mut reply);
            log::trace!(
                "core {}: {} -> {}",
                core.id,
                command_text(&buf[at..]),
                command_text(&reply)
            );
        }
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
        if let Some((owner, key)) = unlink_target(e, &buf[at..], self.route, &mut scratch) {
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

    /// Writes the end of `req`'s reply and applies what it did to this
    /// core's counters (a flush, an authentication attempt); says what the
    /// connection does next.
    fn end<P: WireProtocol>(
        &mut self,
        req: &P::Request<'_>,
        kind: RequestKind,
        out: &mut Vec<u8>,
    ) -> Flow {
        let core = self.core;
        let flow = P::reply_end(req, out, &mut self.state, &core.settings);
        if kind.flush {
            core.counters.borrow_mut().cmd_flush += 1;
        }
        if let Some(ok) = self.state.auth_attempt.take() {
            crate::runtime::wire::gate::count(&core.counters, ok);
        }
        flow
    }

    /// Finishes a request that paused: does what the pause waits for,
    /// answers the rest of its ops (pausing again as often as needed),
    /// then its end. `request` is exactly the request's bytes.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn resume<P: WireProtocol, W: AsyncWrite + Unpin>(
        &mut self,
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
        let kind = P::kind(&req);
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
            match answer_ops::<P>(
                core,
                &req,
                kind,
                self.route,
                done,
                &mut remotes,
                out,
                &mut self.state,
            ) {
                Some((next, resume_at)) => {
                    pause = next;
                    done = resume_at;
                }
                None => return self.end::<P>(&req, kind, out),
            }
        }
    }
}

/// Answers `req`'s ops from the `skip`th on, in order: local ones run on
/// the shard, remote ones take their owner's outcome. Returns `None` once
/// every op is answered, or why it paused and the op to resume at.
#[allow(clippy::too_many_arguments)]
pub(super) fn answer_ops<P: WireProtocol>(
    core: &Core,
    req: &P::Request<'_>,
    kind: RequestKind,
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
            count_detail(core, kind, op, &outcome);
            P::reply_op(req, op, outcome, out, state);
        } else {
            if cfg!(debug_assertions) {
                same_as_sent(remotes.sent, remotes.cursors, owner, op);
            }
            match remotes.next(owner) {
                Remote::Ready(outcome, arena) => {
                    count_detail(core, kind, op, outcome);
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

/// A request as -vvv logs it: a text command's first line (at most 256
/// bytes), or a binary request's opcode and key length.
pub(super) fn command_text(request: &[u8]) -> String {
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
