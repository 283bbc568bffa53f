//! Accepting connections: the accept loop of each core's listeners, the
//! TLS handshake, and memcached's refusal past the connection limit.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::conn::connection;
use crate::runtime::conn::transport::{Prefixed, Stream};
use crate::runtime::server::core::Core;
use crate::runtime::server::signal::Signal;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use segcore_protocol::text::Reply;

/// The next connection on `listener`, or `None` once `stop` fires.
pub(crate) async fn accept_or_stop(
    listener: &glommio::net::TcpListener,
    stop: &Signal,
) -> Option<glommio::Result<TcpStream, ()>> {
    futures_lite::future::or(async { Some(listener.accept().await) }, async {
        stop.wait().await;
        None
    })
    .await
}

/// Accepts until the server stops: a task per connection (after a TLS
/// handshake when `tls` is set), or memcached's refusal past `-c`.
pub(crate) fn spawn_accept_loop(
    core: &Rc<Core>,
    listener: glommio::net::TcpListener,
    tls: Option<Arc<crate::runtime::conn::tls::TlsContext>>,
) {
    let core = core.clone();
    glommio::spawn_local(async move {
        let stop = core.stop.clone();
        loop {
            match accept_or_stop(&listener, &stop).await {
                Some(Ok(stream)) if core.admit() => match tls.clone() {
                    None => {
                        glommio::spawn_local(connection::serve(
                            core.clone(),
                            Stream::Plain(stream),
                        ))
                        .detach();
                    }
                    Some(tls) => {
                        glommio::spawn_local(handshake(core.clone(), tls, stream)).detach();
                    }
                },
                Some(Ok(stream)) => {
                    core.counters.borrow_mut().rejected_connections += 1;
                    match stream.peer_addr() {
                        Ok(peer) => {
                            log::debug!("connection from {peer} refused: too many open connections")
                        }
                        Err(_) => log::debug!("a connection refused: too many open connections"),
                    }
                    glommio::spawn_local(refuse(stream)).detach();
                }
                // Out of file descriptors and the like: back off, retry.
                Some(Err(_)) => glommio::timer::sleep(Duration::from_millis(10)).await,
                None => break,
            }
        }
    })
    .detach();
}

/// A TLS connection's handshake, bounded by the handshake timeout (a client
/// that never finishes it is closed then), then the connection itself.
async fn handshake(
    core: Rc<Core>,
    tls: Arc<crate::runtime::conn::tls::TlsContext>,
    mut stream: TcpStream,
) {
    let acceptor = tls.acceptor();
    let limit = core.settings.tls_handshake_timeout;
    let done = glommio::timer::timeout(limit, async {
        // Wait for the client's first byte before building any TLS state:
        // until it speaks, it costs what an idle plaintext connection does
        // (a read into a stack byte holds no buffer; see `Prefixed`).
        let mut first = [0u8; 1];
        if futures_lite::AsyncReadExt::read(&mut stream, &mut first).await? == 0 {
            return Err(glommio::GlommioError::IoError(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        // Boxed, so a connection waiting for that byte does not carry the
        // handshake's (large) state in its task.
        Box::pin(acceptor.accept(Prefixed::new(first[0], stream)))
            .await
            .map_err(glommio::GlommioError::IoError)
    })
    .await;
    match done {
        Ok(tls_stream) => {
            core.counters.borrow_mut().ssl_new_sessions += 1;
            connection::serve(core.clone(), Stream::Tls(Box::new(tls_stream))).await;
        }
        Err(e) => {
            log::debug!("TLS handshake failed: {e}");
            core.counters.borrow_mut().ssl_handshake_errors += 1;
            // Admitted but never served: give its place under -c back.
            core.release_admission();
        }
    }
}

/// Turns away a connection over the server's limit as memcached does: one
/// error line, then close.
pub async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(Reply::TooManyConnections.bytes()).await;
    let _ = stream.close().await;
}
