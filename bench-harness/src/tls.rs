//! `--tls-ca`: load over TLS, for comparing servers started with `-Z`. The
//! client trusts the given CA and names the server by its IP address (the
//! server certificate needs it as a subject alternative name). rustls with
//! the ring provider, as the server uses.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A load connection: plain TCP, or TLS over it.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket under the stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A client configuration trusting the CA in `ca_pem`.
pub fn client_config(ca_pem: &std::path::Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca_pem).map_err(|e| format!("{}: {e}", ca_pem.display()))?
    {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_pem.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca_pem.display()))?;
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Wraps a connected socket in TLS when `tls` is set (the handshake runs
/// with the first write and read).
pub fn wrap(
    server: SocketAddr,
    tcp: TcpStream,
    tls: Option<&Arc<ClientConfig>>,
) -> std::io::Result<Stream> {
    let Some(config) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let name = ServerName::IpAddress(server.ip().into());
    let conn = ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    // Finish the handshake now, so it is not counted as request latency.
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(Stream::Tls(Box::new(stream)))
}
