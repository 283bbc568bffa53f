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

use segcore_protocol::auth::{self};
use segcore_protocol::binary::{self, Command, Status};
use segcore_protocol::text::{self, Reply, Request, StoreMode};
use segcore_protocol::{Limits, ParseError, Protocol as Wire, Recovery};

use crate::runtime::conn::session::Session;
use crate::runtime::server::auth::{AuthConfig, AuthMode};
use std::cell::RefCell;

use crate::runtime::metrics::report::ConnCounters;
use crate::runtime::server::settings::Settings;
use crate::runtime::wire::protocol::BatchEnd;
use crate::runtime::wire::protocol::Flow;

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

/// Handles the first request of an unauthenticated connection (see the
/// module docs), writing its reply to `out`; says what was used and what
/// the connection does next, as a batch does.
pub fn gate(
    settings: &Settings,
    counters: &RefCell<ConnCounters>,
    session: &mut Session,
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> BatchEnd {
    let Some(config) = settings.auth.as_ref() else {
        session.authenticated = true;
        return NEED_MORE;
    };
    match (config.mode, session.wire) {
        (AuthMode::Ascii, Some(Wire::Text)) => ascii(counters, config, session, buf, limits, out),
        (AuthMode::Sasl, Some(Wire::Binary)) => {
            sasl(settings, counters, config, session, buf, limits, out)
        }
        // The other protocol is not served in this mode.
        _ => CLOSE,
    }
}

/// Counts an authentication attempt and whether it failed.
pub(crate) fn count(counters: &RefCell<ConnCounters>, ok: bool) {
    let mut counters = counters.borrow_mut();
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
    counters: &RefCell<ConnCounters>,
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
            let ok = auth::ascii_credentials(store.value).is_some_and(|c| config.check(c));
            count(counters, ok);
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
    settings: &Settings,
    counters: &RefCell<ConnCounters>,
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
    let respond = |out: &mut Vec<u8>, value: &[u8]| binary::write_ok(out, &req, 0, &[], &[], value);
    match req.command {
        Command::SaslListMechs => respond(out, auth::SASL_MECHANISMS),
        Command::SaslAuth | Command::SaslStep => {
            let ok = sasl_auth(config, &req);
            count(counters, ok);
            if ok {
                session.authenticated = true;
                respond(out, auth::SASL_AUTHENTICATED);
            } else {
                session.failed_auths += 1;
                binary::write_error(out, &req, Status::AuthError);
            }
        }
        Command::Version => respond(out, settings.version.as_bytes()),
        // memcached answers anything else with the auth error and closes.
        _ => {
            binary::write_error(out, &req, Status::AuthError);
            step.flow = Flow::Close;
        }
    }
    step
}

/// Checks a SASL Auth (or Step) request: only an Auth with mechanism PLAIN
/// and matching credentials succeeds.
pub fn sasl_auth(config: &AuthConfig, req: &binary::Request<'_>) -> bool {
    let ok = matches!(req.command, Command::SaslAuth)
        && req.key == auth::SASL_MECHANISMS
        && auth::sasl_plain(req.value).is_some_and(|c| config.check(c));
    ok
}
