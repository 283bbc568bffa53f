//! `-Z` and memcached's `-o ssl_*` options, turned into the engine's TLS
//! settings with the certificate and key loaded (so a bad file stops the
//! server at start, with a line naming it).

use std::path::PathBuf;
use std::sync::Arc;

use segcore_engine::runtime::tls::{MinVersion, TlsContext, TlsOptions, VerifyMode};

/// The `-o ssl_*` options seen on the command line.
#[derive(Debug, Default)]
pub struct SslArgs {
    chain_cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    verify_mode: Option<VerifyMode>,
    min_version: Option<MinVersion>,
}

impl SslArgs {
    /// Takes `-o name=value` if it is an ssl option; `Ok(false)` if not.
    pub fn take(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let value = value.trim();
        match name {
            "ssl_chain_cert" => self.chain_cert = Some(value.into()),
            "ssl_key" => self.key = Some(value.into()),
            "ssl_ca_cert" => self.ca_cert = Some(value.into()),
            "ssl_verify_mode" => {
                self.verify_mode = Some(VerifyMode::from_number(value).ok_or_else(|| {
                    format!("-o ssl_verify_mode={value}: expected 0 (none), 1 (request), 2 (require) or 3 (once)")
                })?)
            }
            "ssl_min_version" => {
                self.min_version = Some(match value {
                    "tlsv1.2" => MinVersion::Tls12,
                    "tlsv1.3" => MinVersion::Tls13,
                    _ => {
                        return Err(format!(
                            "-o ssl_min_version={value}: expected tlsv1.2 or tlsv1.3"
                        ))
                    }
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The TLS context `-Z` asks for (`None` without `-Z`).
    pub fn context(self, enabled: bool) -> Result<Option<Arc<TlsContext>>, String> {
        if !enabled {
            return Ok(None);
        }
        let Some(chain_cert) = self.chain_cert else {
            return Err(
                "-Z needs -o ssl_chain_cert=<file> (the server's certificate chain, PEM)".into(),
            );
        };
        let Some(key) = self.key else {
            return Err("-Z needs -o ssl_key=<file> (the server's private key, PEM)".into());
        };
        let options = TlsOptions {
            chain_cert,
            key,
            ca_cert: self.ca_cert,
            verify_mode: self.verify_mode.unwrap_or(VerifyMode::None),
            min_version: self.min_version.unwrap_or(MinVersion::Tls12),
        };
        TlsContext::new(options)
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| format!("-Z: {e}"))
    }
}
