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
    /// The socket's fd (shut down from outside to end the connection).
    fn raw_fd(&self) -> RawFd;
}

/// A client connection: plain TCP, or TLS over it once the handshake is
/// done.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (boxed: rustls's state is large, and most servers serve plain
    /// connections).
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// The TCP socket under the stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
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
