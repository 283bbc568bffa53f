//! TLS (`-Z`) over real sockets with certificates made at test time: a
//! rustls client stores and reads, client certificates are required and
//! checked with `ssl_verify_mode=2`, `refresh_certs` serves a new
//! certificate to new connections, and clients that do not speak TLS (or
//! never finish the handshake) are closed without holding up anyone else.

mod common;

use common::{is_closed, stat, TestServer};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A CA, and files under a fresh folder (removed on drop).
struct Pki {
    dir: PathBuf,
    ca: Certificate,
    ca_key: KeyPair,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("segcore-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "segcore test CA");
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A certificate signed by the CA (or self-signed), written as
    /// `<name>.pem` and `<name>.key`.
    fn issue(&self, name: &str, server: bool, signed: bool) -> (Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = if signed {
            params.signed_by(&key, &self.ca, &self.ca_key).unwrap()
        } else {
            params.self_signed(&key).unwrap()
        };
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn server_args(&self, name: &str, extra: &str) -> String {
        format!(
            "ssl_chain_cert={},ssl_key={}{extra}",
            self.path(&format!("{name}.pem")).display(),
            self.path(&format!("{name}.key")).display()
        )
    }

    fn client_config(&self, client: Option<(&Certificate, &KeyPair)>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
                )
                .unwrap(),
        };
        Arc::new(config)
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(port: u16, config: &Arc<ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    StreamOwned::new(ClientConnection::new(config.clone(), name).unwrap(), tcp)
}

/// Sends `request` and reads exactly `expected.len()` bytes back.
fn exchange(c: &mut impl ReadWrite, request: &[u8], expected: &[u8]) {
    c.write_all(request).unwrap();
    c.flush().unwrap();
    let mut got = vec![0u8; expected.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Whether a TLS client gets through the handshake and one request.
fn handshake_works(port: u16, config: &Arc<ClientConfig>) -> bool {
    let mut c = connect(port, config);
    if c.write_all(b"version\r\n")
        .and_then(|()| c.flush())
        .is_err()
    {
        return false;
    }
    let mut reply = [0u8; 8];
    c.read_exact(&mut reply).is_ok() && &reply == b"VERSION "
}

/// The TLS stats over a TLS connection.
fn tls_stats(port: u16, config: &Arc<ClientConfig>) -> Vec<(String, String)> {
    let mut c = connect(port, config);
    c.write_all(b"stats\r\n").unwrap();
    c.flush().unwrap();
    let mut text = Vec::new();
    let mut byte = [0u8; 1];
    while !text.ends_with(b"END\r\n") {
        c.read_exact(&mut byte).unwrap();
        text.push(byte[0]);
    }
    String::from_utf8(text)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn server_cert_of(c: &Tls) -> CertificateDer<'static> {
    c.conn.peer_certificates().unwrap()[0].clone().into_owned()
}

#[test]
fn tls_serves_rustls_clients_and_refreshes_its_certificate() {
    let pki = Pki::new("serve");
    let (first, _) = pki.issue("server", true, true);
    let o = pki.server_args("server", "");
    let server = TestServer::start_tls(&["-Z", "-o", &o, "--tls-handshake-timeout", "1"]);
    let config = pki.client_config(None);

    let mut c = connect(server.port, &config);
    exchange(&mut c, b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n");
    exchange(&mut c, b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    assert_eq!(server_cert_of(&c), *first.der());

    // A plaintext client on the TLS port is closed; a client that opens
    // TCP and never starts the handshake is closed after the timeout.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain.write_all(b"version\r\n").unwrap();
    assert!(is_closed(&mut plain));
    let mut silent = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        silent.read(&mut byte).unwrap_or(0),
        0,
        "closed, not answered"
    );
    // ... and the TLS client is still served.
    exchange(&mut c, b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");

    // refresh_certs: new connections get the new certificate, the open
    // one goes on.
    let (second, _) = pki.issue("server", true, true);
    exchange(&mut c, b"refresh_certs\r\n", b"OK\r\n");
    let fresh = connect(server.port, &config);
    let mut fresh = fresh;
    exchange(&mut fresh, b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    assert_eq!(server_cert_of(&fresh), *second.der());
    assert_ne!(first.der(), second.der());
    exchange(&mut c, b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");

    let s = tls_stats(server.port, &config);
    assert!(stat(&s, "ssl_new_sessions") >= 3, "{s:?}");
    let mut c2 = connect(server.port, &config);
    c2.write_all(b"stats settings\r\n").unwrap();
    c2.flush().unwrap();
    let mut settings = Vec::new();
    let mut byte = [0u8; 1];
    while !settings.ends_with(b"END\r\n") {
        c2.read_exact(&mut byte).unwrap();
        settings.push(byte[0]);
    }
    let settings = String::from_utf8(settings).unwrap();
    assert!(settings.contains("STAT ssl_enabled yes\r\n"), "{settings}");
    assert!(
        settings.contains("STAT ssl_verify_mode 0\r\n"),
        "{settings}"
    );
    assert!(stat(&s, "ssl_handshake_errors") >= 2, "{s:?}");
    server.stop();
}

#[test]
fn verify_mode_2_requires_a_client_certificate_the_ca_signed() {
    let pki = Pki::new("verify");
    pki.issue("server", true, true);
    let signed = pki.issue("client", false, true);
    let unsigned = pki.issue("stranger", false, false);
    let extra = format!(
        ",ssl_ca_cert={},ssl_verify_mode=2",
        pki.path("ca.pem").display()
    );
    let o = pki.server_args("server", &extra);
    let server = TestServer::start_tls(&["-Z", "-o", &o]);
    assert!(handshake_works(
        server.port,
        &pki.client_config(Some((&signed.0, &signed.1)))
    ));
    assert!(!handshake_works(server.port, &pki.client_config(None)));
    assert!(!handshake_works(
        server.port,
        &pki.client_config(Some((&unsigned.0, &unsigned.1)))
    ));
    server.stop();
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_the_server() {
    let pki = Pki::new("mismatch");
    pki.issue("server", true, true);
    pki.issue("other", true, true);
    let o = format!(
        "ssl_chain_cert={},ssl_key={}",
        pki.path("server.pem").display(),
        pki.path("other.key").display()
    );
    let out = common::segcore()
        .args(["-Z", "-o", &o, "-p", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("other.key") && err.contains("server.pem"),
        "{err}"
    );
    assert!(Path::new(&pki.path("server.pem")).exists());
}

/// memcached's `-l notls:IP:PORT`: a plaintext listener beside the TLS
/// one, on every core.
#[test]
fn a_notls_listener_serves_plaintext_beside_tls() {
    let pki = Pki::new("notls");
    pki.issue("server", true, true);
    let o = pki.server_args("server", "");
    let plain_port = common::free_port();
    let listen = format!("127.0.0.1,notls:127.0.0.1:{plain_port}");
    let server = TestServer::start_tls(&["-Z", "-o", &o, "-l", &listen]);
    let mut tls = connect(server.port, &pki.client_config(None));
    exchange(&mut tls, b"set shared 0 0 2\r\nhi\r\n", b"STORED\r\n");
    let mut plain = TcpStream::connect(("127.0.0.1", plain_port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    exchange(
        &mut plain,
        b"get shared\r\n",
        b"VALUE shared 0 2\r\nhi\r\nEND\r\n",
    );
    // The TLS port still refuses plaintext.
    let mut wrong = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    wrong.write_all(b"get shared\r\n").unwrap();
    assert!(is_closed(&mut wrong));
    // A TLS client on the plaintext port does not get through (its hello
    // is not a command), and both ports go on serving.
    assert!(!handshake_works(plain_port, &pki.client_config(None)));
    exchange(
        &mut plain,
        b"get shared\r\n",
        b"VALUE shared 0 2\r\nhi\r\nEND\r\n",
    );
    exchange(
        &mut tls,
        b"get shared\r\n",
        b"VALUE shared 0 2\r\nhi\r\nEND\r\n",
    );
    server.stop();
}
