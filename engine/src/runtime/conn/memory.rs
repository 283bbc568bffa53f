//! An in-memory duplex transport, so connection behaviour (pipelining,
//! back-pressure, the auth gate, refusing large values) is tested on one
//! executor without sockets. Each direction is a bounded pipe: a writer
//! whose peer does not read fills it and then waits, as on a socket whose
//! client stopped reading.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_lite::{AsyncRead, AsyncWrite};

use crate::runtime::conn::transport::Transport;

/// One direction: bytes written and not yet read, up to `capacity`.
#[derive(Default)]
struct Pipe {
    data: VecDeque<u8>,
    capacity: usize,
    /// The writer closed it: a reader sees the end once it is empty.
    closed: bool,
    /// The reader is gone: writes fail.
    abandoned: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One end of an in-memory connection.
pub struct MemoryStream {
    incoming: Rc<RefCell<Pipe>>,
    outgoing: Rc<RefCell<Pipe>>,
}

/// Two connected ends, each direction holding at most `capacity` bytes.
pub fn pair(capacity: usize) -> (MemoryStream, MemoryStream) {
    let pipe = || {
        Rc::new(RefCell::new(Pipe {
            capacity,
            ..Pipe::default()
        }))
    };
    let (a, b) = (pipe(), pipe());
    (
        MemoryStream {
            incoming: a.clone(),
            outgoing: b.clone(),
        },
        MemoryStream {
            incoming: b,
            outgoing: a,
        },
    )
}

impl MemoryStream {
    /// Bytes this end has been sent and not yet read.
    pub fn unread(&self) -> usize {
        self.incoming.borrow().data.len()
    }
}

impl AsyncRead for MemoryStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.incoming.borrow_mut();
        if pipe.data.is_empty() {
            if pipe.closed {
                return Poll::Ready(Ok(0));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(pipe.data.len());
        for (slot, byte) in buf.iter_mut().zip(pipe.data.drain(..n)) {
            *slot = byte;
        }
        if let Some(writer) = pipe.writer.take() {
            writer.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for MemoryStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.outgoing.borrow_mut();
        if pipe.abandoned || pipe.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = pipe.capacity - pipe.data.len();
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        pipe.data.extend(&buf[..n]);
        if let Some(reader) = pipe.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut pipe = self.outgoing.borrow_mut();
        pipe.closed = true;
        if let Some(reader) = pipe.reader.take() {
            reader.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MemoryStream {
    fn drop(&mut self) {
        for (pipe, gone) in [(&self.outgoing, false), (&self.incoming, true)] {
            let mut pipe = pipe.borrow_mut();
            if gone {
                pipe.abandoned = true;
            } else {
                pipe.closed = true;
            }
            for waker in [pipe.reader.take(), pipe.writer.take()]
                .into_iter()
                .flatten()
            {
                waker.wake();
            }
        }
    }
}

impl Transport for MemoryStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from(([127, 0, 0, 1], 40000)))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from(([127, 0, 0, 1], 11211)))
    }

    fn raw_fd(&self) -> RawFd {
        -1
    }
}
