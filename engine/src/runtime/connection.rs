//! One client connection, for its whole life on the core that accepted it.
//!
//! Read into a reused buffer, run every complete request in it (see
//! [`super::proto`]), write all the replies with one write, repeat. The
//! protocol is fixed by the first byte. Buffers are bounded: the read buffer
//! never grows past the largest legal request, and replies are written out
//! (waiting for the client to take them) before more is read, so a client
//! that pipelines without reading stalls itself, not the server.

use std::os::fd::AsRawFd;
use std::rc::Rc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use segcore_protocol::Protocol as Wire;

use super::binary::Binary;
use super::conns::ConnEntry;
use super::proto::{run_batch, BatchEnd, Flow};
use super::text::Text;
use super::Core;

/// Initial read buffer; it grows only for large requests.
const INITIAL_BUFFER: usize = 16 << 10;

/// The unread bytes of a connection, in a buffer that is compacted and grown
/// on demand up to a bound.
struct ReadBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl ReadBuf {
    fn new(max: usize) -> Self {
        ReadBuf {
            data: vec![0; INITIAL_BUFFER.min(max)],
            start: 0,
            end: 0,
            max,
        }
    }

    fn unread(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n.min(self.end - self.start);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into; `None` when a single request would need more than
    /// the bound (cannot happen with the parser's limits, but never grow
    /// without one).
    fn spare(&mut self) -> Option<&mut [u8]> {
        if self.end == self.data.len() && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.data.len() {
            if self.data.len() >= self.max {
                return None;
            }
            let grown = (self.data.len() * 2).min(self.max);
            self.data.resize(grown, 0);
        }
        Some(&mut self.data[self.end..])
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
    }
}

/// A connection's place in its core's table and counters, given back
/// however the connection ends.
struct Registered<'a> {
    core: &'a Core,
    slot: Option<usize>,
}

impl<'a> Registered<'a> {
    fn new(core: &'a Core, stream: &TcpStream) -> Self {
        {
            let mut counters = core.counters.borrow_mut();
            counters.curr_connections += 1;
            counters.total_connections += 1;
        }
        let slot = match (stream.peer_addr(), stream.local_addr()) {
            (Ok(peer), Ok(local)) => Some(core.conns.borrow_mut().add(ConnEntry {
                fd: stream.as_raw_fd(),
                peer,
                local,
                last_cmd: core.last_tick.get(),
                mid_request: false,
            })),
            // Already gone: nothing to list.
            _ => None,
        };
        Registered { core, slot }
    }

    /// After a read: whether it completed any request (the time of the
    /// last command), and whether part of one waits for the rest.
    #[inline]
    fn read_done(&self, ran: bool, mid_request: bool) {
        if let Some(slot) = self.slot {
            if let Some(entry) = self.core.conns.borrow_mut().get_mut(slot) {
                if ran {
                    entry.last_cmd = self.core.last_tick.get();
                }
                entry.mid_request = mid_request;
            }
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.core.conns.borrow_mut().remove(slot);
        }
        self.core.counters.borrow_mut().curr_connections -= 1;
    }
}

/// Serves one connection until the client leaves, asks to quit, sends
/// something that closes it, or the server stops.
pub async fn serve(core: Rc<Core>, mut stream: TcpStream) {
    let registered = Registered::new(&core, &stream);
    let _ = stream.set_nodelay(true);
    let max = core.limits.max_value_len + core.limits.max_get_line_len + 4096;
    let mut input = ReadBuf::new(max);
    let mut out = Vec::with_capacity(INITIAL_BUFFER);
    let mut discard = 0usize;
    let mut wire: Option<Wire> = None;
    let stop = core.stop.clone();
    // No spare room means a request larger than any legal one: close.
    'connection: while let Some(spare) = input.spare() {
        let read = futures_lite::future::or(async { Some(stream.read(spare).await) }, async {
            stop.wait().await;
            None
        })
        .await;
        let n = match read {
            Some(Ok(0)) | Some(Err(_)) | None => break,
            Some(Ok(n)) => n,
        };
        core.counters.borrow_mut().bytes_read += n as u64;
        input.filled(n);
        if discard > 0 {
            let skip = discard.min(input.unread().len());
            input.consume(skip);
            discard -= skip;
        }
        let mut ran = false;
        while !input.unread().is_empty() {
            let wire = *wire.get_or_insert_with(|| Wire::detect(input.unread()[0]));
            let end: BatchEnd = match wire {
                Wire::Text => {
                    run_batch::<Text, _>(&core, input.unread(), &mut out, &mut stream).await
                }
                Wire::Binary => {
                    run_batch::<Binary, _>(&core, input.unread(), &mut out, &mut stream).await
                }
            };
            input.consume(end.consumed);
            ran |= end.consumed > 0;
            discard = end.discard;
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    break 'connection;
                }
                core.counters.borrow_mut().bytes_written += out.len() as u64;
                out.clear();
                if out.capacity() > 1 << 20 {
                    out = Vec::with_capacity(INITIAL_BUFFER);
                }
            }
            match end.flow {
                Flow::Continue => {}
                Flow::Close => break 'connection,
                Flow::Shutdown => core.request_shutdown(),
            }
            if end.consumed == 0 || discard > 0 {
                break;
            }
        }
        registered.read_done(ran, discard > 0 || !input.unread().is_empty());
        if stop.fired() {
            break;
        }
    }
    let _ = stream.close().await;
    drop(registered);
}
