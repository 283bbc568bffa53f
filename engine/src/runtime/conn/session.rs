//! One connection's protocol state: the wire its first byte chose,
//! whether it has authenticated, and how many attempts have failed (each
//! failure is answered later than the one before).

use segcore_protocol::Protocol as Wire;

use crate::runtime::server::auth::AuthConfig;

/// One connection's protocol state: the wire its first byte chose, and
/// whether it has authenticated (always, when the server requires none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// Text or binary, once the first byte arrived.
    pub wire: Option<Wire>,
    /// Requests may run.
    pub authenticated: bool,
    /// Failed authentication attempts on this connection: each failure is
    /// answered after a pause that grows with them ([`failure_pause`]).
    pub failed_auths: u32,
}

/// How long the reply to a connection's `failures`th failed attempt waits:
/// 2 ms per failure so far, up to a second. A client mistyping a password
/// once does not notice; one guessing passwords on a connection is held to
/// a few hundred tries a second at first and one a second after 500.
pub fn failure_pause(failures: u32) -> std::time::Duration {
    std::time::Duration::from_millis(2 * u64::from(failures.min(500)))
}

impl Session {
    /// A new connection's session on a server with `auth`.
    pub fn new(auth: Option<&AuthConfig>) -> Session {
        Session {
            wire: None,
            authenticated: auth.is_none(),
            failed_auths: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::server::auth::{AuthMode, PasswordFile};

    #[test]
    fn a_session_needs_authentication_only_when_the_server_asks() {
        assert!(Session::new(None).authenticated);
        let config = AuthConfig::new(AuthMode::Ascii, PasswordFile::parse(b"a:b").unwrap(), None);
        assert!(!Session::new(Some(&config)).authenticated);
    }
}
