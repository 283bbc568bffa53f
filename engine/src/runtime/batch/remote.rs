//! Forwarded outcomes as pass 2 takes them: every owner's batch sent at
//! once, each owner copying at most its share of
//! [`REPLY_BYTES`](crate::runtime::batch::bounds::REPLY_BYTES) into one
//! reply, and the rest of a batch fetched again (from the first op not yet
//! answered) when pass 2 reaches it. This is what keeps a multi-get of
//! large values owned by other cores from copying them all at once.

use crate::runtime::batch::bounds::{MIN_REPLY_PIECE, REPLY_BYTES};
use crate::runtime::batch::message::{Batch, Replies, Span};
use crate::runtime::batch::router::{Answered, Fanout, Sending};
use crate::runtime::op::Op;
use crate::runtime::op::Outcome;
use crate::runtime::server::core::Core;

/// Sends every remote batch, then waits for all of them (the owners work
/// in parallel). Returns the reply budget each owner was given.
pub(super) async fn send_all(core: &Core, fanout: &mut Fanout) -> usize {
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
pub(super) async fn refill(core: &Core, fanout: &mut Fanout, owner: usize, budget: usize) {
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

/// The forwarded outcomes of one read, as pass 2 takes them.
pub(super) struct Remotes<'f> {
    pub(super) replies: &'f [Option<Replies>],
    pub(super) batches: &'f [Batch],
    pub(super) bases: &'f [usize],
    pub(super) cursors: &'f mut [usize],
    pub(super) sent: &'f [Batch],
}

/// The next outcome of an owner.
pub(super) enum Remote<'r> {
    /// Here, with the arena its bytes are in.
    Ready(&'r Outcome<Span>, &'r [u8]),
    /// Not run yet: the owner stopped at its reply budget.
    Later,
    /// The owner is gone (the server is stopping).
    Gone,
}

impl<'f> Remotes<'f> {
    pub(super) fn of(fanout: Option<&'f mut Fanout>) -> Self {
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
    pub(super) fn next(&mut self, owner: usize) -> Remote<'f> {
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

/// Debug builds: the op pass 2 is about to take `owner`'s next outcome for
/// must be the op pass 1 sent there in that place (the two passes parse the
/// same bytes, so any difference is a lowering that is not deterministic).
pub(super) fn same_as_sent(sent: &[Batch], cursors: &[usize], owner: usize, op: &Op<&[u8]>) {
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
