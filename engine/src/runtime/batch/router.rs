//! Cross-core forwarding: a [`Batch`] of ops goes to the core that owns
//! their keys, and its [`Replies`] come back, over glommio channel meshes
//! (lock-free SPSC rings between every pair of executors).
//!
//! Two meshes, not one: requests flow on one and replies on the other, so a
//! core busy sending replies can never block a core that is trying to send
//! it requests (with one mesh, two cores filling each other's rings would
//! deadlock). Each core runs one task per peer per mesh: request tasks
//! execute batches on the local shard and send replies back; reply tasks
//! hand replies to the waiting connection.
//!
//! Forwarding allocates nothing in steady state: a batch's buffers travel
//! back with its replies and go into this core's pool, the replies' buffers
//! travel out (empty) with the next batch for the owner to fill, and the
//! per-read bookkeeping ([`Fanout`]) is pooled too.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use glommio::channels::channel_mesh::Senders;
use glommio::{GlommioError, ResourceType};

use crate::runtime::batch::message::{Batch, Replies};

/// A batch on its way to its owner.
pub struct Envelope {
    /// The sending core's id on the reply mesh (glommio numbers each mesh's
    /// peers in join order, so the two meshes may number a core
    /// differently).
    pub reply_to: usize,
    /// Matches the reply to its waiter.
    pub token: u64,
    /// The ops.
    pub batch: Batch,
    /// The first op to run: a batch comes back for its rest when its
    /// replies reached their budget (see [`Batch::execute`]).
    pub start: usize,
    /// Reply bytes the owner copies before it stops.
    pub budget: usize,
    /// Empty buffers for the owner to write the replies into.
    pub spare: Replies,
}

/// Replies on their way back.
pub struct ReplyEnvelope {
    /// The request's token.
    pub token: u64,
    /// The outcomes.
    pub replies: Replies,
    /// The request's batch, going home: for reuse, or to be sent again for
    /// the ops the owner left for later.
    pub batch: Batch,
}

/// What came back for a sent batch: its outcomes, and the batch itself.
pub struct Answered {
    /// The outcomes of the ops run.
    pub replies: Replies,
    /// The batch (its ops past the outcomes were not run yet).
    pub batch: Batch,
}

/// A batch handed to [`Router::send`].
pub enum Sending<'a> {
    /// Sent (its token), or not sendable (`None`: the owner shut down).
    Sent(Option<u64>),
    /// The owner's ring is full: await this for the token.
    Full(Pin<Box<dyn Future<Output = Option<u64>> + 'a>>),
}

/// One read's forwarding state: a batch per core, the tokens of the sent
/// ones, their replies and a read cursor into each. Pooled per core.
#[derive(Default)]
pub struct Fanout {
    /// Ops bound for each core (index = core id).
    pub batches: Vec<Batch>,
    /// The token of each batch sent.
    pub tokens: Vec<Option<u64>>,
    /// Each core's replies, once back.
    pub replies: Vec<Option<Replies>>,
    /// How many ops of each core's batch have had their outcome used.
    pub cursors: Vec<usize>,
    /// The op each core's current replies start at (they cover the ops
    /// from there to where the owner stopped).
    pub bases: Vec<usize>,
    /// Debug builds: a copy of each batch as sent, so pass 2 can check that
    /// it lowers every forwarded request to the very ops pass 1 sent
    /// (always empty in release builds).
    pub sent: Vec<Batch>,
}

/// Buffers kept per kind; beyond that they are freed. Enough for every
/// connection of a core to have a batch in flight at a time under load.
const POOL_LIMIT: usize = 64;
/// Buffers that grew past this (large values, a huge multi-get) are freed,
/// not pooled: a pool of buffers each as large as the largest batch it ever
/// carried would pin up to POOL_LIMIT times that, and a 30-minute soak
/// showed resident memory creeping up that way. Bounded now at about
/// 2 × 64 × 32 KiB per core.
const POOLED_BYTES: usize = 32 << 10;

#[derive(Default)]
struct Slot {
    answered: Option<Answered>,
    waker: Option<Waker>,
}

/// One core's end of the meshes.
pub struct Router {
    reply_id: usize,
    requests: Senders<Envelope>,
    replies: Senders<ReplyEnvelope>,
    pending: RefCell<HashMap<u64, Slot>>,
    next_token: Cell<u64>,
    batches: RefCell<Vec<Batch>>,
    replies_pool: RefCell<Vec<Replies>>,
    fanouts: RefCell<Vec<Fanout>>,
}

impl Router {
    /// Wraps this core's senders. A core's id is its peer id on the request
    /// mesh; its peer id on the reply mesh travels in each envelope.
    pub fn new(requests: Senders<Envelope>, replies: Senders<ReplyEnvelope>) -> Self {
        Router {
            reply_id: replies.peer_id(),
            requests,
            replies,
            pending: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            batches: RefCell::new(Vec::new()),
            replies_pool: RefCell::new(Vec::new()),
            fanouts: RefCell::new(Vec::new()),
        }
    }

    /// A [`Fanout`] with an empty batch for each of `cores` cores, from the
    /// pool when it has one.
    pub fn fanout(&self, cores: usize) -> Fanout {
        let mut fanout = self.fanouts.borrow_mut().pop().unwrap_or_default();
        let mut pool = self.batches.borrow_mut();
        fanout
            .batches
            .resize_with(cores, || pool.pop().unwrap_or_default());
        fanout
    }

    /// Takes back a fanout once its read is answered: its unsent batches and
    /// its replies' buffers go to the pools.
    pub fn recycle_fanout(&self, mut fanout: Fanout) {
        for batch in fanout.batches.drain(..) {
            self.recycle_batch(batch);
        }
        for replies in fanout.replies.drain(..).flatten() {
            self.recycle_replies(replies);
        }
        fanout.tokens.clear();
        fanout.cursors.clear();
        fanout.bases.clear();
        fanout.sent.clear();
        let mut pool = self.fanouts.borrow_mut();
        if pool.len() < POOL_LIMIT {
            pool.push(fanout);
        }
    }

    /// Takes back a batch's buffers once its replies are used.
    pub fn recycle_batch(&self, mut batch: Batch) {
        if batch.ops.capacity() == 0 {
            return; // a placeholder left by a sent batch: nothing to keep
        }
        let mut pool = self.batches.borrow_mut();
        if pool.len() < POOL_LIMIT && batch.arena.capacity() <= POOLED_BYTES {
            batch.arena.clear();
            batch.ops.clear();
            pool.push(batch);
        }
    }

    /// Takes back replies' buffers for a later batch's owner to fill.
    pub fn recycle_replies(&self, mut replies: Replies) {
        if replies.outcomes.capacity() == 0 {
            return;
        }
        let mut pool = self.replies_pool.borrow_mut();
        if pool.len() < POOL_LIMIT && replies.arena.capacity() <= POOLED_BYTES {
            replies.arena.clear();
            replies.outcomes.clear();
            pool.push(replies);
        }
    }

    /// Sends `batch` to core `dest` to run its ops from `start` with a
    /// reply budget of `budget` bytes; the token then waits for its replies
    /// ([`Router::wait`]). Sending every batch of a read before waiting for
    /// any lets the owners work in parallel. The token is `None` when the
    /// destination has shut down.
    ///
    /// Not async: the send is tried at once, and only a full ring (the
    /// owner is that far behind) hands back a boxed future to wait on. Every
    /// connection's task is as large as its largest await, and glommio's
    /// send future would be the largest part of an idle connection.
    pub fn send(&self, dest: usize, batch: Batch, start: usize, budget: usize) -> Sending<'_> {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.pending.borrow_mut().insert(token, Slot::default());
        let spare = self.replies_pool.borrow_mut().pop().unwrap_or_default();
        let envelope = Envelope {
            reply_to: self.reply_id,
            token,
            batch,
            start,
            budget,
            spare,
        };
        match self.requests.try_send_to(dest, envelope) {
            Ok(()) => Sending::Sent(Some(token)),
            Err(GlommioError::WouldBlock(ResourceType::Channel(envelope))) => {
                Sending::Full(Box::pin(async move {
                    if self.requests.send_to(dest, envelope).await.is_ok() {
                        Some(token)
                    } else {
                        self.pending.borrow_mut().remove(&token);
                        None
                    }
                }))
            }
            Err(_) => {
                self.pending.borrow_mut().remove(&token);
                Sending::Sent(None)
            }
        }
    }

    /// Waits for the replies to a sent batch (`None`: its owner stopped).
    pub async fn wait(&self, token: u64) -> Option<Answered> {
        WaitReply {
            router: self,
            token,
        }
        .await
    }

    /// Sends replies to reply-mesh peer `dest` (an envelope's `reply_to`),
    /// with the request's batch going home.
    pub async fn reply(&self, dest: usize, token: u64, replies: Replies, batch: Batch) {
        // A peer that has shut down no longer waits for anything.
        let envelope = ReplyEnvelope {
            token,
            replies,
            batch,
        };
        let _ = self.replies.send_to(dest, envelope).await;
    }

    /// Hands replies to the task waiting for them.
    pub fn complete(&self, envelope: ReplyEnvelope) {
        let waker = {
            let mut pending = self.pending.borrow_mut();
            let Some(slot) = pending.get_mut(&envelope.token) else {
                drop(pending);
                self.recycle_batch(envelope.batch);
                self.recycle_replies(envelope.replies);
                return;
            };
            slot.answered = Some(Answered {
                replies: envelope.replies,
                batch: envelope.batch,
            });
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Closes this core's senders (at shutdown).
    pub fn close(&self) {
        self.requests.close();
        self.replies.close();
    }
}

struct WaitReply<'a> {
    router: &'a Router,
    token: u64,
}

impl Future for WaitReply<'_> {
    type Output = Option<Answered>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut pending = self.router.pending.borrow_mut();
        let Some(slot) = pending.get_mut(&self.token) else {
            return Poll::Ready(None);
        };
        if let Some(answered) = slot.answered.take() {
            pending.remove(&self.token);
            return Poll::Ready(Some(answered));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for WaitReply<'_> {
    fn drop(&mut self) {
        // A cancelled waiter leaves no slot behind.
        if let Ok(mut pending) = self.router.pending.try_borrow_mut() {
            pending.remove(&self.token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::op::{KeyCommand, Op, Outcome};
    use glommio::channels::channel_mesh::MeshBuilder;
    use glommio::LocalExecutorBuilder;

    /// Runs `test` on an executor with a one-core router.
    fn with_router(test: impl FnOnce(Router) + Send + 'static) {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                let requests: MeshBuilder<Envelope, _> = MeshBuilder::full(1, 8);
                let replies: MeshBuilder<ReplyEnvelope, _> = MeshBuilder::full(1, 8);
                let (request_tx, _request_rx) = requests.join().await.unwrap();
                let (reply_tx, _reply_rx) = replies.join().await.unwrap();
                test(Router::new(request_tx, reply_tx));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// Buffers that grew large are freed, and the pool is bounded.
    #[test]
    fn large_forwarding_buffers_are_not_pooled() {
        with_router(|router| {
            let mut big = Replies::default();
            big.arena.reserve(POOLED_BYTES + 1);
            big.outcomes.push(Outcome::Miss);
            router.recycle_replies(big);
            assert!(router.replies_pool.borrow().is_empty());
            for _ in 0..POOL_LIMIT + 5 {
                let mut small = Replies::default();
                small.outcomes.push(Outcome::Miss);
                router.recycle_replies(small);
            }
            assert_eq!(router.replies_pool.borrow().len(), POOL_LIMIT);
        });
    }

    /// Forwarding reuses its buffers: a recycled fanout's batches and
    /// replies come back, emptied, with their memory.
    #[test]
    fn forwarding_buffers_are_reused() {
        with_router(|router| {
            let mut fanout = router.fanout(2);
            assert_eq!(fanout.batches.len(), 2);
            fanout.batches[1].push(&Op::on(b"key", KeyCommand::Debug));
            let batch_memory = fanout.batches[1].ops.as_ptr();
            let mut answered = Replies::default();
            answered.arena.extend_from_slice(b"value");
            answered.outcomes.push(Outcome::Miss);
            let replies_memory = answered.outcomes.as_ptr();
            fanout.replies.push(Some(answered));
            router.recycle_fanout(fanout);

            let fanout = router.fanout(2);
            let reused = fanout
                .batches
                .iter()
                .find(|b| b.ops.as_ptr() == batch_memory)
                .expect("the batch's memory is reused");
            assert!(reused.is_empty() && reused.arena.is_empty());
            assert!(fanout.replies.is_empty() && fanout.tokens.is_empty());
            let spare = router.replies_pool.borrow_mut().pop().unwrap();
            assert_eq!(spare.outcomes.as_ptr(), replies_memory);
            assert!(spare.outcomes.is_empty() && spare.arena.is_empty());
        });
    }
}
