//! Authentication as memcached does it: SASL PLAIN for binary clients
//! (`-S`, users from the file `MEMCACHED_SASL_PWDB` names) and ASCII
//! authentication for text clients (`-Y <file>`). The users are loaded once
//! at start; each connection's state is its [`Session`].
//!
//! Until a connection authenticates, its requests go through [`gate`] one
//! at a time instead of the batch path: the gate answers what memcached
//! answers before authentication and flips the session once credentials
//! match. Authenticated connections never come here, so the request path
//! pays one `bool` test per read.
//!
//! - SASL: List Mechanisms answers `PLAIN`, Auth checks `\0user\0password`
//!   (status 0 `Authenticated`, or 0x20 and the connection stays for
//!   another try), Step is an auth error (PLAIN has one step), Version is
//!   answered; anything else gets the auth error and a close, as memcached
//!   does. Text connections are closed at their first byte (memcached
//!   speaks only binary under SASL).
//! - ASCII: `set <key> <flags> <exptime> <bytes>` with the data block
//!   `user password` authenticates (`STORED`) or fails (`CLIENT_ERROR
//!   authentication failure`); any other command gets `CLIENT_ERROR
//!   unauthenticated` (its data block is consumed). Binary connections are
//!   closed.

use std::collections::HashMap;
use std::path::Path;

use segcore_protocol::auth::{self, Credentials};
use segcore_protocol::binary::{self, Command, Status};
use segcore_protocol::text::{self, Reply, Request, StoreMode};
use segcore_protocol::{Limits, ParseError, Protocol as Wire, Recovery};

use super::proto::{BatchEnd, Flow};
use super::Core;

/// Nothing used: the request is not complete yet.
const NEED_MORE: BatchEnd = BatchEnd {
    consumed: 0,
    discard: 0,
    flow: Flow::Continue,
};

/// Close the connection (the other protocol, or a request that closes).
const CLOSE: BatchEnd = BatchEnd {
    consumed: 0,
    discard: 0,
    flow: Flow::Close,
};

/// Which authentication the server requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// SASL PLAIN, binary protocol only (`-S`).
    Sasl,
    /// memcached's ASCII authentication, text protocol only (`-Y`).
    Ascii,
}

/// Users and their passwords, from a `user:password` file.
#[derive(Clone, Default)]
pub struct PasswordFile {
    users: HashMap<Box<[u8]>, Box<[u8]>>,
}

impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        write!(f, "PasswordFile({} users)", self.users.len())
    }
}

impl PasswordFile {
    /// Parses `user:password` lines (the password is everything after the
    /// first `:`; empty lines are skipped).
    pub fn parse(text: &[u8]) -> Result<PasswordFile, String> {
        let mut users = HashMap::new();
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(format!("line {}: expected user:password", n + 1));
            };
            if colon == 0 {
                return Err(format!("line {}: empty user name", n + 1));
            }
            users.insert(line[..colon].into(), line[colon + 1..].into());
        }
        if users.is_empty() {
            return Err("no user:password lines".into());
        }
        Ok(PasswordFile { users })
    }

    /// Reads and parses a password file; the error names the file.
    pub fn load(path: &Path) -> Result<PasswordFile, String> {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
        PasswordFile::parse(&text).map_err(|e| format!("the password file {}: {e}", path.display()))
    }

    /// Whether the credentials match a user, comparing the password in
    /// time that does not depend on where it differs.
    pub fn check(&self, c: Credentials<'_>) -> bool {
        let Some(password) = self.users.get(c.user) else {
            return false;
        };
        password.len() == c.password.len()
            && password
                .iter()
                .zip(c.password)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// The server's authentication: the mode and its users.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// SASL or ASCII.
    pub mode: AuthMode,
    /// Who may connect.
    pub users: PasswordFile,
}

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

/// Handles the first request of an unauthenticated connection (see the
/// module docs), writing its reply to `out`; says what was used and what
/// the connection does next, as a batch does.
pub fn gate(
    core: &Core,
    session: &mut Session,
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> BatchEnd {
    let Some(config) = core.settings.auth.as_ref() else {
        session.authenticated = true;
        return NEED_MORE;
    };
    match (config.mode, session.wire) {
        (AuthMode::Ascii, Some(Wire::Text)) => ascii(core, config, session, buf, limits, out),
        (AuthMode::Sasl, Some(Wire::Binary)) => sasl(core, config, session, buf, limits, out),
        // The other protocol is not served in this mode.
        _ => CLOSE,
    }
}

/// Counts an authentication attempt and whether it failed.
pub(crate) fn count(core: &Core, ok: bool) {
    let mut counters = core.counters.borrow_mut();
    counters.auth_cmds += 1;
    if !ok {
        counters.auth_errors += 1;
    }
}

/// The first request of `buf` as a parser saw it, with the step that uses
/// it; or how the gate ends here (incomplete, or refused).
fn first<R>(
    parsed: Result<Option<(R, usize)>, ParseError>,
    buf: &[u8],
    out: &mut Vec<u8>,
) -> Result<(R, BatchEnd), BatchEnd> {
    match parsed {
        Ok(Some((request, used))) => Ok((
            request,
            BatchEnd {
                consumed: used,
                ..NEED_MORE
            },
        )),
        Ok(None) => Err(NEED_MORE),
        Err(e) => Err(refused(&e, buf, out)),
    }
}

/// A parse error's reply and how far to skip.
fn refused(e: &ParseError, buf: &[u8], out: &mut Vec<u8>) -> BatchEnd {
    e.write_reply(out);
    match e.recovery {
        Recovery::Skip(n) => BatchEnd {
            consumed: n.min(buf.len()),
            discard: n.saturating_sub(buf.len()),
            flow: Flow::Continue,
        },
        Recovery::Close => CLOSE,
    }
}

fn ascii(
    core: &Core,
    config: &AuthConfig,
    session: &mut Session,
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> BatchEnd {
    let (request, mut step) = match first(text::parse(buf, limits), buf, out) {
        Ok(first) => first,
        Err(end) => return end,
    };
    match request {
        Request::Store(store) if store.mode == StoreMode::Set => {
            let ok = auth::ascii_credentials(store.value).is_some_and(|c| config.users.check(c));
            count(core, ok);
            if ok {
                session.authenticated = true;
                if !store.noreply {
                    Reply::Stored.write(out);
                }
            } else {
                session.failed_auths += 1;
                Reply::AuthenticationFailure.write(out);
            }
        }
        Request::Quit => step.flow = Flow::Close,
        _ => Reply::Unauthenticated.write(out),
    }
    step
}

fn sasl(
    core: &Core,
    config: &AuthConfig,
    session: &mut Session,
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> BatchEnd {
    let (req, mut step) = match first(binary::parse(buf, limits), buf, out) {
        Ok(first) => first,
        Err(end) => return end,
    };
    let respond =
        |out: &mut Vec<u8>, value: &[u8]| super::binary::ok(out, &req, 0, &[], &[], value);
    match req.command {
        Command::SaslListMechs => respond(out, auth::SASL_MECHANISMS),
        Command::SaslAuth | Command::SaslStep => {
            if sasl_auth(core, config, &req) {
                session.authenticated = true;
                respond(out, auth::SASL_AUTHENTICATED);
            } else {
                session.failed_auths += 1;
                super::binary::error(out, &req, Status::AuthError);
            }
        }
        Command::Version => respond(out, core.settings.version.as_bytes()),
        // memcached answers anything else with the auth error and closes.
        _ => {
            super::binary::error(out, &req, Status::AuthError);
            step.flow = Flow::Close;
        }
    }
    step
}

/// Checks a SASL Auth (or Step) request, counting it: only an Auth with
/// mechanism PLAIN and matching credentials succeeds.
pub fn sasl_auth(core: &Core, config: &AuthConfig, req: &binary::Request<'_>) -> bool {
    let ok = matches!(req.command, Command::SaslAuth)
        && req.key == auth::SASL_MECHANISMS
        && auth::sasl_plain(req.value).is_some_and(|c| config.users.check(c));
    count(core, ok);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_files_hold_users_and_name_their_faults() {
        let users = PasswordFile::parse(b"foo:bar\r\nbaaaz:quux\n\nodd:pa:ss\n").unwrap();
        let check = |u: &[u8], p: &[u8]| {
            users.check(Credentials {
                user: u,
                password: p,
            })
        };
        assert!(check(b"foo", b"bar"));
        assert!(check(b"baaaz", b"quux"));
        assert!(
            check(b"odd", b"pa:ss"),
            "the password runs to the line's end"
        );
        assert!(!check(b"foo", b"bab"));
        assert!(!check(b"foo", b"ba"));
        assert!(!check(b"nobody", b"bar"));
        assert_eq!(format!("{users:?}"), "PasswordFile(3 users)");
        assert_eq!(
            PasswordFile::parse(b"foo\n").unwrap_err(),
            "line 1: expected user:password"
        );
        assert_eq!(
            PasswordFile::parse(b":pw\n").unwrap_err(),
            "line 1: empty user name"
        );
        assert_eq!(
            PasswordFile::parse(b"\n").unwrap_err(),
            "no user:password lines"
        );
        let missing = PasswordFile::load(Path::new("/nonexistent/segcore-pwdb")).unwrap_err();
        assert!(missing.starts_with("cannot read the password file /nonexistent/segcore-pwdb"));
    }

    #[test]
    fn a_session_needs_authentication_only_when_the_server_asks() {
        assert!(Session::new(None).authenticated);
        let config = AuthConfig {
            mode: AuthMode::Ascii,
            users: PasswordFile::parse(b"a:b").unwrap(),
        };
        assert!(!Session::new(Some(&config)).authenticated);
    }
}
