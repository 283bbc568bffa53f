//! TLS (`-Z`) with memcached's `-o ssl_*` options, through rustls: the
//! server's certificate chain and key, optional client-certificate
//! verification against a CA, and the lowest protocol version. The built
//! rustls configuration is shared by every core and replaced whole by
//! `refresh_certs`; a core reads it once per accepted connection, never per
//! request.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures_rustls::TlsAcceptor;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// memcached's `ssl_verify_mode` (the discriminant is its number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// 0: no client certificate asked for.
    None = 0,
    /// 1: asked for, and verified when sent.
    Request = 1,
    /// 2: required and verified.
    Require = 2,
    /// 3: required and verified once per session (rustls verifies at the
    /// handshake only, so as 2).
    Once = 3,
}

impl VerifyMode {
    /// From `ssl_verify_mode=<0..3>`.
    pub fn from_number(n: &str) -> Option<VerifyMode> {
        Some(match n {
            "0" => VerifyMode::None,
            "1" => VerifyMode::Request,
            "2" => VerifyMode::Require,
            "3" => VerifyMode::Once,
            _ => return None,
        })
    }
}

/// The lowest TLS version accepted (`ssl_min_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (memcached's default floor here: rustls has no 1.1).
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// What `-Z` and the `-o ssl_*` options name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    /// `ssl_chain_cert`: the server's certificate chain (PEM).
    pub chain_cert: PathBuf,
    /// `ssl_key`: the server's private key (PEM).
    pub key: PathBuf,
    /// `ssl_ca_cert`: the CA that signs client certificates (PEM).
    pub ca_cert: Option<PathBuf>,
    /// `ssl_verify_mode`.
    pub verify_mode: VerifyMode,
    /// `ssl_min_version`.
    pub min_version: MinVersion,
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{what} {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// Builds the rustls configuration, reading the files now; every error
/// names the file and the problem.
pub fn server_config(o: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
    let chain = read_certs(&o.chain_cert, "ssl_chain_cert")?;
    let key = PrivateKeyDer::from_pem_file(&o.key)
        .map_err(|e| format!("ssl_key {}: {e}", o.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match o.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match o.verify_mode {
        VerifyMode::None => builder.with_no_client_auth(),
        mode => {
            let Some(ca) = &o.ca_cert else {
                return Err(
                    "ssl_verify_mode 1-3 needs ssl_ca_cert=<file> (the CA that signs \
                     client certificates)"
                        .into(),
                );
            };
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca, "ssl_ca_cert")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("ssl_ca_cert {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
            let verifier = if mode == VerifyMode::Request {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("ssl_ca_cert {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "ssl_key {} does not go with ssl_chain_cert {}: {e}",
            o.key.display(),
            o.chain_cert.display()
        )
    })?;
    Ok(Arc::new(config))
}

/// The server's TLS: its options and the configuration built from them,
/// replaced by `refresh_certs`.
pub struct TlsContext {
    options: TlsOptions,
    config: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TlsContext {
    /// Loads the certificate and key the options name.
    pub fn new(options: TlsOptions) -> Result<TlsContext, String> {
        let config = server_config(&options)?;
        Ok(TlsContext {
            options,
            config: RwLock::new(config),
        })
    }

    /// The options it was built from.
    pub fn options(&self) -> &TlsOptions {
        &self.options
    }

    /// An acceptor with the current configuration (taken once per
    /// accepted connection).
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = match self.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        TlsAcceptor::from(config)
    }

    /// Rereads the certificate, key and CA files (`refresh_certs`): new
    /// connections get them; on an error the old ones stay.
    pub fn refresh(&self) -> Result<(), String> {
        let config = server_config(&self.options)?;
        match self.config.write() {
            Ok(mut slot) => *slot = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }
}
