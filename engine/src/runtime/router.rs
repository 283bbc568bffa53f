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

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use glommio::channels::channel_mesh::Senders;

use super::op::{Batch, Replies};

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
}

/// Replies on their way back.
pub struct ReplyEnvelope {
    /// The request's token.
    pub token: u64,
    /// The outcomes.
    pub replies: Replies,
}

#[derive(Default)]
struct Slot {
    replies: Option<Replies>,
    waker: Option<Waker>,
}

/// One core's end of the meshes.
pub struct Router {
    reply_id: usize,
    requests: Senders<Envelope>,
    replies: Senders<ReplyEnvelope>,
    pending: RefCell<HashMap<u64, Slot>>,
    next_token: Cell<u64>,
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
        }
    }

    /// Sends `batch` to core `dest`; the token then waits for its replies
    /// ([`Router::wait`]). Sending every batch of a read before waiting for
    /// any lets the owners work in parallel. `None` when the destination has
    /// shut down.
    pub async fn send(&self, dest: usize, batch: Batch) -> Option<u64> {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.pending.borrow_mut().insert(token, Slot::default());
        let envelope = Envelope {
            reply_to: self.reply_id,
            token,
            batch,
        };
        if self.requests.send_to(dest, envelope).await.is_err() {
            self.pending.borrow_mut().remove(&token);
            return None;
        }
        Some(token)
    }

    /// Waits for the replies to a sent batch.
    pub async fn wait(&self, token: u64) -> Option<Replies> {
        WaitReply {
            router: self,
            token,
        }
        .await
    }

    /// Sends replies to reply-mesh peer `dest` (an envelope's `reply_to`).
    pub async fn reply(&self, dest: usize, token: u64, replies: Replies) {
        // A peer that has shut down no longer waits for anything.
        let _ = self
            .replies
            .send_to(dest, ReplyEnvelope { token, replies })
            .await;
    }

    /// Hands replies to the task waiting for them.
    pub fn complete(&self, envelope: ReplyEnvelope) {
        let waker = {
            let mut pending = self.pending.borrow_mut();
            let Some(slot) = pending.get_mut(&envelope.token) else {
                return;
            };
            slot.replies = Some(envelope.replies);
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
    type Output = Option<Replies>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut pending = self.router.pending.borrow_mut();
        let Some(slot) = pending.get_mut(&self.token) else {
            return Poll::Ready(None);
        };
        if let Some(replies) = slot.replies.take() {
            pending.remove(&self.token);
            return Poll::Ready(Some(replies));
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
