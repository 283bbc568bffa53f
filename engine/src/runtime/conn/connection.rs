//! One client connection, for its whole life on the core that accepted it.
//!
//! Wait for input holding no buffer, read into one borrowed from the core's
//! pool, run every complete request in it (see [`crate::runtime::batch`]), write all
//! the replies with one write, give the buffers back, repeat. The protocol
//! is fixed by the first byte. Buffers are bounded: a read buffer grows past
//! the pool's size only for a large request and only within the core's
//! budget (see [`crate::runtime::conn::buffers`]), and replies are written out (waiting for
//! the client to take them) before more is read, so a client that pipelines
//! without reading stalls itself, not the server.
//!
//! Nothing here waits on a timer or a signal: the core ends a connection's
//! wait from outside by shutting its socket down (idle timeout, server
//! stop; see [`crate::runtime::conn::table`]).

use std::rc::Rc;
use std::sync::atomic::Ordering;

use futures_lite::AsyncWriteExt;
use segcore_protocol::text::Reply;
use segcore_protocol::{request_len, Limits, Protocol as Wire};

use crate::runtime::batch::run_batch;
use crate::runtime::conn::buffers::{Full, ReadBuf, HEADER_ROOM};
use crate::runtime::conn::session::Session;
use crate::runtime::conn::table::ConnEntry;
use crate::runtime::conn::transport::Transport;
use crate::runtime::server::core::Core;
use crate::runtime::wire::binary::Binary;
use crate::runtime::wire::protocol::BatchEnd;
use crate::runtime::wire::protocol::Flow;
use crate::runtime::wire::text::Text;

/// A connection's place in its core's table and in the connection counts,
/// given back however the connection ends — before its socket closes (see
/// [`crate::runtime::conn::table`]).
struct Registered<'a> {
    core: &'a Core,
    slot: Option<usize>,
}

impl<'a> Registered<'a> {
    /// Registers a connection already counted in the server-wide total
    /// (the accept loop admits it).
    fn new(core: &'a Core, stream: &impl Transport) -> Self {
        {
            let mut counters = core.counters.borrow_mut();
            counters.curr_connections += 1;
            counters.total_connections += 1;
        }
        let slot = match (stream.peer_addr(), stream.local_addr()) {
            (Ok(peer), Ok(local)) => {
                let fd = stream.raw_fd();
                log::debug!(
                    "<{fd} new client connection from {peer} on {local} (core {})",
                    core.id
                );
                Some(core.conns.borrow_mut().add(ConnEntry {
                    fd,
                    peer,
                    local,
                    last_cmd: core.last_tick.get(),
                    mid_request: false,
                    kicked: false,
                    large: 0,
                    last_read: 0,
                }))
            }
            // Already gone: nothing to list.
            _ => None,
        };
        Registered { core, slot }
    }

    /// After a read: whether it completed any request (the time of the
    /// last command), whether part of one waits for the rest, and how much
    /// of the large-request budget the read buffer holds now.
    #[inline]
    fn read_done(&self, ran: bool, mid_request: bool, large: usize) {
        if let Some(slot) = self.slot {
            if let Some(entry) = self.core.conns.borrow_mut().get_mut(slot) {
                if ran {
                    entry.last_cmd = self.core.last_tick.get();
                }
                entry.mid_request = mid_request;
                if large > 0 {
                    entry.last_read = crate::storage::time::unix_now();
                }
                entry.large = large;
            }
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let entry = self.core.conns.borrow_mut().remove(slot);
            if let Some(entry) = entry {
                log::debug!("<{} connection closed", entry.fd);
            }
        }
        self.core.counters.borrow_mut().curr_connections -= 1;
        self.core
            .shared
            .open_connections
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// What serving the bytes of one read decided.
enum Next {
    /// Read more.
    Read,
    /// Close the connection.
    Close,
}

/// One connection's state between reads, over its transport `T`.
struct Conn<T> {
    core: Rc<Core>,
    stream: T,
    input: ReadBuf,
    /// Bytes of a refused value still to skip as they arrive.
    discard: usize,
    /// Wire and authentication state.
    session: Session,
}

impl<T: Transport> Conn<T> {
    /// Runs every complete request in the input with `limits`, writing the
    /// replies. Returns whether any request ran, and what to do next.
    async fn serve_input(&mut self, limits: &Limits) -> (bool, Next) {
        let core = &*self.core;
        if self.discard > 0 {
            let skip = self.discard.min(self.input.unread().len());
            self.input.consume(skip);
            self.discard -= skip;
        }
        let mut ran = false;
        let mut next = Next::Read;
        let mut out = core.buffers.take_write();
        while !self.input.unread().is_empty() {
            let failed_before = self.session.failed_auths;
            let unread = self.input.unread();
            let wire = *self
                .session
                .wire
                .get_or_insert_with(|| Wire::detect(unread[0]));
            let end: BatchEnd = if !self.session.authenticated {
                // One request at a time until the connection authenticates.
                crate::runtime::wire::gate::gate(
                    &core.settings,
                    &core.counters,
                    &mut self.session,
                    unread,
                    limits,
                    &mut out,
                )
            } else {
                match wire {
                    Wire::Text => {
                        run_batch::<Text, _>(core, unread, limits, &mut out, &mut self.stream).await
                    }
                    Wire::Binary => {
                        run_batch::<Binary, _>(core, unread, limits, &mut out, &mut self.stream)
                            .await
                    }
                }
            };
            self.input.consume(end.consumed);
            ran |= end.consumed > 0;
            self.discard = end.discard;
            if end.flow == Flow::Unauthenticate {
                self.session.authenticated = false;
                self.session.failed_auths += 1;
            }
            if self.session.failed_auths > failed_before {
                // A failed authentication is answered late (see
                // `crate::runtime::conn::session::failure_pause`); boxed, as it is rare.
                let pause = crate::runtime::conn::session::failure_pause(self.session.failed_auths);
                Box::pin(glommio::timer::sleep(pause)).await;
            }
            if !out.is_empty() {
                if write_out(&mut self.stream, &out).await.is_err() {
                    next = Next::Close;
                    break;
                }
                core.counters.borrow_mut().bytes_written += out.len() as u64;
                out.clear();
            }
            match end.flow {
                Flow::Continue | Flow::Unauthenticate => {}
                Flow::Close => {
                    next = Next::Close;
                    break;
                }
                Flow::Shutdown => core.request_shutdown(),
            }
            if end.consumed == 0 || self.discard > 0 {
                break;
            }
        }
        core.buffers.give_write(out);
        (ran, next)
    }
}

/// Writes replies out: all of them, and through any buffering the
/// transport does (TLS keeps records until flushed).
async fn write_out(stream: &mut impl Transport, out: &[u8]) -> std::io::Result<()> {
    stream.write_all(out).await?;
    stream.flush().await
}

/// Serves one connection until the client leaves, asks to quit, sends
/// something that closes it, idles past the timeout, or the server stops.
///
/// The connection's state lives in its own allocation and the task's
/// future holds a pointer to it: an async fn keeps its arguments and the
/// locals they move into side by side, which would triple the socket's
/// footprint in every (mostly idle) connection's task.
pub fn serve<T: Transport>(core: Rc<Core>, stream: T) -> impl std::future::Future<Output = ()> {
    stream.set_nodelay();
    let max = core.limits.max_value_len + core.limits.max_get_line_len + HEADER_ROOM;
    let session = Session::new(core.settings.auth.as_deref());
    let conn = Box::new(Conn {
        core,
        stream,
        input: ReadBuf::new(max),
        discard: 0,
        session,
    });
    conn.run()
}

impl<T: Transport> Conn<T> {
    async fn run(mut self: Box<Self>) {
        let core = self.core.clone();
        let core = &*core;
        // Dropped (and the table entry removed) before the socket closes,
        // even if the task is dropped: it is declared after `self`.
        let registered = Registered::new(core, &self.stream);
        let mut no_room;
        loop {
            // A stop that fired before this connection registered did not
            // reach its socket: check here rather than wait in a read.
            if core.stop.fired() {
                break;
            }
            // A buffer full of one request grows to that request's length.
            let need = match self.session.wire {
                Some(wire) if self.input.is_full() => request_len(wire, self.input.unread()),
                _ => None,
            };
            let mut room = self.input.make_room(&core.buffers, need);
            if room == Err(Full::NoRoom) && Box::pin(reclaim_stalled(core)).await {
                room = self.input.make_room(&core.buffers, need);
            }
            let (limits, refusing) = match room {
                Ok(()) => {
                    match self.input.read(&core.buffers, &mut self.stream).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => core.counters.borrow_mut().bytes_read += n as u64,
                    }
                    (&core.limits, false)
                }
                // The request at the head needs a bigger buffer than the
                // core has room for: refuse its value as memcached refuses
                // a set it cannot allocate (the value is skipped as it
                // arrives).
                Err(Full::NoRoom) => {
                    core.counters.borrow_mut().read_buf_oom += 1;
                    no_room = Limits {
                        value_room: self.input.capacity() - HEADER_ROOM,
                        ..core.limits.clone()
                    };
                    (&no_room, true)
                }
                // More than the largest legal request: not one.
                Err(Full::Limit) => break,
            };
            let before = self.input.unread().len();
            // The batch's state lives in a recycled slot, not in this
            // (mostly idle) task.
            let (ran, mut next) = core.slots.put(self.serve_input(limits)).await;
            if refusing && self.input.unread().len() == before && self.discard == 0 {
                // Nothing to refuse (a very long multi-get line): close,
                // with memcached's "out of memory reading request".
                if self.session.wire == Some(Wire::Text) {
                    let _ = write_out(&mut self.stream, Reply::NoRoomForRequest.bytes()).await;
                }
                next = Next::Close;
            }
            registered.read_done(
                ran,
                self.discard > 0 || !self.input.unread().is_empty(),
                self.input.large_bytes(),
            );
            if matches!(next, Next::Close) {
                break;
            }
            self.input.release_if_empty(&core.buffers);
        }
        self.input.release(&core.buffers);
        let _ = self.stream.close().await;
        drop(registered);
    }
}

/// Closes the connections that hold part of the large-request budget and
/// have sent nothing for `large_request_timeout`, then waits (briefly) for
/// their tasks to give it back. Returns whether any was closed.
async fn reclaim_stalled(core: &Core) -> bool {
    let closed = core.conns.borrow_mut().reclaim_stalled(
        crate::storage::time::unix_now(),
        core.settings.large_request_timeout,
    );
    if closed == 0 {
        return false;
    }
    core.counters.borrow_mut().large_request_reclaims += closed;
    let held = core.buffers.usage().large_bytes;
    for _ in 0..50 {
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        if core.buffers.usage().large_bytes < held {
            break;
        }
    }
    true
}

#[cfg(test)]
mod tests;
