//! The binary protocol on top of the shard: ops per opcode, and responses
//! with memcached's status codes. Quiet opcodes answer only errors (and
//! GetQ/GetKQ only hits); NoOp answers always, which is how clients find the
//! end of a quiet pipeline.

use segcore_protocol::binary::{
    self, encode_response, write_error, write_ok, Command, Request, Response, Status,
    StoreMode as BinaryMode,
};
use segcore_protocol::{auth, Limits, ParseError};

use crate::runtime::batch::route::Route;
use crate::runtime::metrics::latency::Class;
use crate::runtime::op::{store_mode, CoreCommand, KeyCommand, Op, Outcome};
use crate::runtime::server::auth::AuthMode;
use crate::runtime::server::settings::Settings;
use crate::runtime::wire::protocol::{Flow, ReplyState, RequestKind, WireProtocol};
use crate::runtime::wire::stats::{self, StatsQuery};
use crate::storage::{
    ArithRequest, ArithResult, DeleteOptions, DeleteResult, ReadOptions, StoreMode, StoreRequest,
    StoreResult,
};

/// The binary protocol.
pub struct Binary;

/// Binary incr/decr exptime that means "do not create a missing item".
const NO_CREATE: u32 = 0xffff_ffff;

fn cas_condition(cas: u64) -> Option<u64> {
    (cas != 0).then_some(cas)
}

impl WireProtocol for Binary {
    type Request<'a> = Request<'a>;

    fn parse<'a>(
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<Option<(Request<'a>, usize)>, ParseError> {
        binary::parse(buf, limits)
    }

    fn for_each_op(req: &Request<'_>, route: Route, f: &mut dyn FnMut(usize, &Op<&[u8]>)) {
        let key = req.key;
        let cmd = match req.command {
            // Every binary reply carries the cas.
            Command::Get { .. } => KeyCommand::Read(ReadOptions::get(true)),
            // memcached answers a binary Touch like a GAT without the value
            // (the flags come back), so it runs as one.
            Command::GetAndTouch { exptime, .. } | Command::Touch { exptime } => {
                KeyCommand::Read(ReadOptions::get_and_touch(i64::from(exptime), true))
            }
            Command::Store {
                mode,
                flags,
                exptime,
                ..
            } => {
                // As memcached: any store with a cas is a cas command, an
                // add included.
                let mode = match (store_mode(mode), cas_condition(req.cas)) {
                    (StoreMode::Add, Some(_)) => StoreMode::Set,
                    (mode, _) => mode,
                };
                let mut store = StoreRequest::new(mode, flags, i64::from(exptime));
                store.compare_cas = cas_condition(req.cas);
                KeyCommand::Store(store)
            }
            Command::Concat { append, .. } => {
                let mode = if append {
                    StoreMode::Append
                } else {
                    StoreMode::Prepend
                };
                let mut store = StoreRequest::new(mode, 0, 0);
                store.compare_cas = cas_condition(req.cas);
                KeyCommand::Store(store)
            }
            Command::Delete { .. } => KeyCommand::Delete(DeleteOptions {
                compare_cas: cas_condition(req.cas),
                ..DeleteOptions::default()
            }),
            Command::Arith {
                incr,
                delta,
                initial,
                exptime,
                ..
            } => KeyCommand::Arith(ArithRequest {
                incr,
                delta,
                create: (exptime != NO_CREATE).then_some((initial, i64::from(exptime))),
                compare_cas: cas_condition(req.cas),
                touch: None,
                hides_cas: false,
            }),
            Command::Flush { delay, .. } => {
                let op = Op::Core(CoreCommand::Flush {
                    delay: (delay != 0).then_some(i64::from(delay)),
                });
                route.each_core(&op, f);
                return;
            }
            Command::Stat => {
                stats::for_each_core_op(stats::query(req.key), route, f);
                return;
            }
            Command::Quit { .. }
            | Command::NoOp
            | Command::Version
            | Command::Verbosity { .. }
            | Command::SaslListMechs
            | Command::SaslAuth
            | Command::SaslStep => return,
        };
        // Only stores carry data (the parser leaves other values empty).
        let op = Op::with_value(key, req.value, cmd);
        f(route.owner_of(&op), &op);
    }

    fn reply_op(
        req: &Request<'_>,
        _op: &Op<&[u8]>,
        outcome: Outcome<&[u8]>,
        out: &mut Vec<u8>,
        state: &mut ReplyState,
    ) {
        match (req.command, outcome) {
            (
                Command::Get { with_key, .. } | Command::GetAndTouch { with_key, .. },
                Outcome::Hit(hit),
            ) => {
                let key: &[u8] = if with_key { req.key } else { &[] };
                write_ok(out, req, hit.cas, &hit.flags.to_be_bytes(), key, hit.value);
            }
            (Command::Get { quiet: true, .. } | Command::GetAndTouch { quiet: true, .. }, _) => {}
            (Command::Get { with_key, .. } | Command::GetAndTouch { with_key, .. }, _) => {
                if with_key {
                    // memcached answers GetK misses with the key, no message.
                    encode_response(
                        out,
                        &Response {
                            opcode: req.opcode as u8,
                            status: Status::KeyNotFound,
                            opaque: req.opaque,
                            cas: 0,
                            extras: &[],
                            key: req.key,
                            value: &[],
                        },
                    );
                } else {
                    write_error(out, req, Status::KeyNotFound);
                }
            }
            (Command::Touch { .. }, Outcome::Hit(hit)) => {
                write_ok(out, req, hit.cas, &hit.flags.to_be_bytes(), &[], &[])
            }
            (Command::Touch { .. }, _) => write_error(out, req, Status::KeyNotFound),
            (Command::Store { mode, quiet, .. }, Outcome::Stored(result)) => match result {
                StoreResult::Stored(cas) if !quiet => write_ok(out, req, cas, &[], &[], &[]),
                StoreResult::Stored(_) => {}
                StoreResult::NotStored if mode == BinaryMode::Add => {
                    write_error(out, req, Status::KeyExists)
                }
                StoreResult::NotStored | StoreResult::NotFound => {
                    write_error(out, req, Status::KeyNotFound)
                }
                StoreResult::Exists => write_error(out, req, Status::KeyExists),
                StoreResult::TooLarge => write_error(out, req, Status::TooLarge),
                StoreResult::OutOfMemory => write_error(out, req, Status::OutOfMemory),
            },
            (Command::Concat { quiet, .. }, Outcome::Stored(result)) => match result {
                StoreResult::Stored(cas) if !quiet => write_ok(out, req, cas, &[], &[], &[]),
                StoreResult::Stored(_) => {}
                StoreResult::NotStored => write_error(out, req, Status::NotStored),
                StoreResult::NotFound => write_error(out, req, Status::KeyNotFound),
                StoreResult::Exists => write_error(out, req, Status::KeyExists),
                StoreResult::TooLarge => write_error(out, req, Status::TooLarge),
                StoreResult::OutOfMemory => write_error(out, req, Status::OutOfMemory),
            },
            (Command::Delete { quiet }, Outcome::Deleted(result)) => match result {
                DeleteResult::Deleted if !quiet => write_ok(out, req, 0, &[], &[], &[]),
                DeleteResult::Deleted => {}
                DeleteResult::NotFound => write_error(out, req, Status::KeyNotFound),
                DeleteResult::Exists => write_error(out, req, Status::KeyExists),
            },
            (Command::Arith { quiet, .. }, Outcome::Arith(result)) => match result {
                ArithResult::Value { value, cas, .. } if !quiet => {
                    write_ok(out, req, cas, &[], &[], &value.to_be_bytes())
                }
                ArithResult::Value { .. } => {}
                ArithResult::NotFound => write_error(out, req, Status::KeyNotFound),
                ArithResult::NonNumeric => write_error(out, req, Status::NonNumeric),
                ArithResult::Exists => write_error(out, req, Status::KeyExists),
                ArithResult::OutOfMemory => write_error(out, req, Status::OutOfMemory),
            },
            (Command::Stat, Outcome::Stats(report)) => state.reports.push(*report),
            // Replies that come at the end (Flush, Stat reset and detail).
            (Command::Flush { .. } | Command::Stat, Outcome::Done) => {}
            // An op answered with an outcome its command has no reply for:
            // a missing arm above. Tests (debug builds) stop here rather
            // than leave a client waiting.
            (command, outcome) => {
                debug_assert!(false, "no binary reply for {command:?} with {outcome:?}")
            }
        }
    }

    fn reply_unavailable(req: &Request<'_>, out: &mut Vec<u8>) {
        write_error(out, req, Status::TemporaryFailure);
    }

    fn reply_end(
        req: &Request<'_>,
        out: &mut Vec<u8>,
        state: &mut ReplyState,
        settings: &Settings,
    ) -> Flow {
        match req.command {
            Command::Flush { quiet, .. } => {
                if !quiet {
                    write_ok(out, req, 0, &[], &[], &[]);
                }
            }
            Command::NoOp => write_ok(out, req, 0, &[], &[], &[]),
            // memcached 1.6.18 answers binary Verbosity as an unknown
            // command (whatever its shape) and leaves its level alone.
            Command::Verbosity { .. } => write_error(out, req, Status::UnknownCommand),
            Command::Version => write_ok(out, req, 0, &[], &[], settings.version.as_bytes()),
            Command::Quit { quiet } => {
                if !quiet {
                    write_ok(out, req, 0, &[], &[], &[]);
                }
                return Flow::Close;
            }
            Command::Stat => {
                // Every answer but an error ends with the empty stat (all a
                // reset or a detail switch gets).
                let answered = match stats::query(req.key) {
                    StatsQuery::Reset | StatsQuery::Detail(_) => true,
                    StatsQuery::DetailDump => {
                        let mut dump = Vec::new();
                        stats::write_detail_dump(&mut dump, &state.reports);
                        write_ok(out, req, 0, &[], b"detailed", &dump);
                        true
                    }
                    StatsQuery::Group(_) => {
                        match stats::render(req.key, &state.reports, settings) {
                            Some(lines) => {
                                for (name, value) in &lines {
                                    write_ok(out, req, 0, &[], name.as_bytes(), value.as_bytes());
                                }
                                true
                            }
                            None => false,
                        }
                    }
                    StatsQuery::DetailUsage | StatsQuery::Unknown => false,
                };
                if answered {
                    write_ok(out, req, 0, &[], &[], &[]);
                } else {
                    write_error(out, req, Status::KeyNotFound);
                }
                state.reports.clear();
            }
            // Without -S memcached answers these as unknown commands; with
            // it, an authenticated connection may list and authenticate
            // again (before that, `auth::gate` answers them).
            Command::SaslListMechs | Command::SaslAuth | Command::SaslStep => {
                match settings.auth.as_ref().filter(|a| a.mode == AuthMode::Sasl) {
                    None => write_error(out, req, Status::UnknownCommand),
                    Some(_) if req.command == Command::SaslListMechs => {
                        write_ok(out, req, 0, &[], &[], auth::SASL_MECHANISMS)
                    }
                    Some(config) => {
                        let ok = crate::runtime::wire::gate::sasl_auth(config, req);
                        state.auth_attempt = Some(ok);
                        if ok {
                            write_ok(out, req, 0, &[], &[], auth::SASL_AUTHENTICATED);
                        } else {
                            // As memcached: a failed attempt leaves the
                            // connection unauthenticated.
                            write_error(out, req, Status::AuthError);
                            return Flow::Unauthenticate;
                        }
                    }
                }
            }
            // Answered per op.
            Command::Get { .. }
            | Command::GetAndTouch { .. }
            | Command::Touch { .. }
            | Command::Store { .. }
            | Command::Concat { .. }
            | Command::Delete { .. }
            | Command::Arith { .. } => {}
        }
        Flow::Continue
    }

    fn kind(req: &Request<'_>) -> RequestKind {
        let class = match req.command {
            Command::Get { .. } | Command::GetAndTouch { .. } => Class::Get,
            Command::Store { .. } | Command::Concat { .. } => Class::Set,
            Command::Delete { .. } => Class::Delete,
            Command::Arith { .. } => Class::Arith,
            Command::Touch { .. } => Class::Touch,
            Command::Quit { .. }
            | Command::Flush { .. }
            | Command::NoOp
            | Command::Version
            | Command::Stat
            | Command::Verbosity { .. }
            | Command::SaslListMechs
            | Command::SaslAuth
            | Command::SaslStep => Class::Other,
        };
        RequestKind {
            class,
            // A SASL attempt may end the connection's authentication.
            ends_batch: matches!(
                req.command,
                Command::Quit { .. } | Command::SaslAuth | Command::SaslStep
            ),
            counted_in_detail: matches!(
                req.command,
                Command::Get { .. }
                    | Command::GetAndTouch { .. }
                    | Command::Store { .. }
                    | Command::Concat { .. }
                    | Command::Delete { .. }
            ),
            flush: matches!(req.command, Command::Flush { .. }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use segcore_protocol::binary::Header;

    /// A binary client whose key's owner stopped mid-request (server exit)
    /// gets a binary error for that request, never a text line.
    #[test]
    fn an_unavailable_owner_is_answered_in_binary() {
        let mut packet = vec![0x80, 0x0c, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 42];
        packet.extend_from_slice(&[0; 8]);
        packet.push(b'k');
        let (req, _) = binary::parse(&packet, &Limits::default())
            .expect("valid")
            .expect("complete");
        let mut out = Vec::new();
        Binary::reply_unavailable(&req, &mut out);
        assert_eq!(out[0], 0x81, "a binary response");
        let header = Header::decode(out[..24].try_into().expect("header"));
        assert_eq!(header.opcode, 0x0c);
        assert_eq!(header.vbucket_or_status, Status::TemporaryFailure as u16);
        assert_eq!(header.opaque, 42);
        assert_eq!(&out[24..], b"Temporary failure");
    }
}
