//! What a connection is served over: a byte stream plus what the core
//! needs to know about the socket under it (addresses for `stats conns`,
//! the fd for stop and idle kicks). Plain TCP and TLS over TCP are the two
//! [`Stream`]s; the connection code sees only [`Transport`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// A connection's byte stream and its socket.
pub trait Transport: AsyncRead + AsyncWrite + Unpin {
    /// The client's address.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// The address the client connected to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The socket's fd (shut down from outside to end the connection);
    /// -1 for a transport with none (idle kicks and stop cannot reach it).
    fn raw_fd(&self) -> RawFd;
    /// Sends small replies at once (no Nagle delay) where that applies.
    fn set_nodelay(&self) {}
}

/// A client connection: plain TCP, or TLS over it once the handshake is
/// done.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (boxed: rustls's state is large, and most servers serve plain
    /// connections).
    Tls(Box<futures_rustls::server::TlsStream<Prefixed>>),
}

/// A TCP stream with its first byte, already read, put back in front: a
/// TLS connection reads one byte before building any TLS state, so a
/// client that connects and never speaks costs what an idle plaintext
/// connection does.
pub struct Prefixed {
    first: Option<u8>,
    inner: TcpStream,
}

impl Prefixed {
    /// `first` was read from `inner` and comes out first.
    pub fn new(first: u8, inner: TcpStream) -> Prefixed {
        Prefixed {
            first: Some(first),
            inner,
        }
    }

    /// The TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let (Some(byte), Some(slot)) = (this.first, buf.first_mut()) {
            *slot = byte;
            this.first = None;
            return Poll::Ready(Ok(1));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

impl Stream {
    /// The TCP socket under the stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0.tcp(),
        }
    }
}

impl Transport for Stream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp()
            .peer_addr()
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp()
            .local_addr()
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn raw_fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }

    fn set_nodelay(&self) {
        let _ = self.tcp().set_nodelay(true);
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}
