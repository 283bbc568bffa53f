//! The text and meta protocols on top of the shard: which ops a request
//! makes, and how their outcomes are written back.

use segcore_protocol::meta::{self, ItemMeta, MetaFlags, MetaKey, ReturnFlags, Status};
use segcore_protocol::text::{self, ArithOp, Reply, Request, StoreMode as TextMode};
use segcore_protocol::{Limits, ParseError, MAX_KEY_LEN};

use crate::runtime::batch::route::Route;
use crate::runtime::metrics::latency::Class;
use crate::runtime::op::{store_mode, CoreCommand, Hit, KeyCommand, Op, Outcome};
use crate::runtime::server::settings::Settings;
use crate::runtime::wire::protocol::{Flow, ReplyState, RequestKind, WireProtocol};
use crate::runtime::wire::stats::{self, StatsQuery};
use crate::storage::{
    ArithRequest, ArithResult, DeleteOptions, DeleteResult, ReadOptions, StoreRequest, StoreResult,
};

/// The text protocol (with meta commands).
pub struct Text;

fn meta_arith(m: &meta::MetaArith<'_>) -> ArithRequest {
    let f = &m.flags;
    ArithRequest {
        incr: m.op == ArithOp::Incr,
        delta: f.delta.unwrap_or(1),
        create: f
            .vivify_ttl
            .map(|ttl| (f.initial.unwrap_or(0), i64::from(ttl))),
        compare_cas: f.compare_cas,
        touch: f.ttl.map(i64::from),
        hides_cas: !f.has(b'c'),
    }
}

/// Calls `f` with the decoded bytes of a meta key.
fn with_meta_key<R>(key: &MetaKey<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; MAX_KEY_LEN];
    f(key.bytes(&mut buf))
}

impl WireProtocol for Text {
    type Request<'a> = Request<'a>;

    fn parse<'a>(
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<Option<(Request<'a>, usize)>, ParseError> {
        text::parse(buf, limits)
    }

    fn for_each_op(req: &Request<'_>, route: Route, f: &mut dyn FnMut(usize, &Op<&[u8]>)) {
        let mut keyed = |op: Op<&[u8]>| {
            let owner = route.owner_of(&op);
            f(owner, &op);
        };
        match req {
            Request::Get(r) => {
                let cmd = KeyCommand::Read(match r.touch {
                    None => ReadOptions::get(r.with_cas),
                    Some(exptime) => ReadOptions::get_and_touch(i64::from(exptime), r.with_cas),
                });
                for key in r.keys.iter() {
                    keyed(Op::on(key, cmd));
                }
            }
            Request::Store(s) => {
                let mut req = StoreRequest::new(store_mode(s.mode), s.flags, i64::from(s.exptime));
                if s.mode == TextMode::Cas {
                    req.compare_cas = Some(s.cas);
                }
                // STORED / EXISTS / ...: no text storage reply shows a cas.
                req.hides_cas = true;
                keyed(Op::with_value(s.key, s.value, KeyCommand::Store(req)));
            }
            Request::Delete { key, .. } => {
                keyed(Op::on(key, KeyCommand::Delete(DeleteOptions::default())))
            }
            Request::Arith { op, key, delta, .. } => keyed(Op::on(
                key,
                KeyCommand::Arith(ArithRequest {
                    incr: *op == ArithOp::Incr,
                    delta: *delta,
                    hides_cas: true,
                    ..ArithRequest::default()
                }),
            )),
            Request::Touch { key, exptime, .. } => keyed(Op::on(
                key,
                KeyCommand::Touch {
                    exptime: i64::from(*exptime),
                },
            )),
            Request::FlushAll { delay, .. } => {
                let op = Op::Core(CoreCommand::Flush {
                    delay: delay.map(i64::from),
                });
                route.each_core(&op, f);
            }
            Request::Stats { args } => stats::for_each_core_op(stats::query(args), route, f),
            Request::MetaGet(m) => with_meta_key(&m.key, |key| {
                let flags = &m.flags;
                keyed(Op::on(
                    key,
                    KeyCommand::Read(ReadOptions {
                        touch: flags.ttl.map(i64::from),
                        touch_counts_misses: false,
                        takes_token: true,
                        vivify: flags.vivify_ttl.map(i64::from),
                        recache: flags.recache_ttl.map(i64::from),
                        no_bump: flags.has(b'u'),
                        hides_cas: !flags.has(b'c'),
                    }),
                ))
            }),
            Request::MetaSet(m) => with_meta_key(&m.key, |key| {
                let flags = &m.flags;
                let mut req = StoreRequest::new(
                    store_mode(m.mode),
                    flags.client_flags.unwrap_or(0),
                    flags.ttl.map_or(0, i64::from),
                );
                req.compare_cas = flags.compare_cas;
                req.new_cas = flags.new_cas;
                req.invalidate = flags.has(b'I');
                req.vivify = flags.vivify_ttl.map(i64::from);
                req.hides_cas = !flags.has(b'c');
                keyed(Op::with_value(key, m.value, KeyCommand::Store(req)))
            }),
            Request::MetaDelete(m) => with_meta_key(&m.key, |key| {
                let flags = &m.flags;
                keyed(Op::on(
                    key,
                    KeyCommand::Delete(DeleteOptions {
                        compare_cas: flags.compare_cas,
                        invalidate: flags.has(b'I'),
                        ttl: flags.ttl.map(i64::from),
                        remove_value: flags.has(b'x'),
                    }),
                ))
            }),
            Request::MetaArith(m) => with_meta_key(&m.key, |key| {
                keyed(Op::on(key, KeyCommand::Arith(meta_arith(m))))
            }),
            Request::MetaDebug(key) => {
                with_meta_key(key, |key| keyed(Op::on(key, KeyCommand::Debug)))
            }
            Request::Version
            | Request::RefreshCerts
            | Request::Verbosity { .. }
            | Request::SlabsAutomove { .. }
            | Request::Quit
            | Request::Shutdown { .. }
            | Request::MetaNoop => {}
        }
    }

    fn reply_op(
        req: &Request<'_>,
        op: &Op<&[u8]>,
        outcome: Outcome<&[u8]>,
        out: &mut Vec<u8>,
        state: &mut ReplyState,
    ) {
        let key = op.key().copied().unwrap_or_default();
        match (req, outcome) {
            (Request::Get(r), Outcome::Hit(hit)) => {
                text::write_value(
                    out,
                    key,
                    hit.flags,
                    hit.value,
                    r.with_cas.then_some(hit.cas),
                );
            }
            (Request::Store(s), Outcome::Stored(result)) if !s.noreply => {
                store_reply(result, s.mode == TextMode::Cas).write(out)
            }
            (Request::Delete { noreply: false, .. }, Outcome::Deleted(result)) => match result {
                DeleteResult::Deleted => Reply::Deleted.write(out),
                DeleteResult::NotFound => Reply::NotFound.write(out),
                DeleteResult::Exists => Reply::Exists.write(out),
            },
            (Request::Arith { noreply: false, .. }, Outcome::Arith(result)) => match result {
                ArithResult::Value { value, .. } => text::write_number(out, value),
                ArithResult::NotFound | ArithResult::Exists => Reply::NotFound.write(out),
                ArithResult::NonNumeric => Reply::NonNumeric.write(out),
                ArithResult::OutOfMemory => Reply::OutOfMemory.write(out),
            },
            (Request::Touch { noreply: false, .. }, Outcome::Touched(found)) => {
                if found {
                    Reply::Touched.write(out)
                } else {
                    Reply::NotFound.write(out)
                }
            }
            (Request::Stats { .. }, Outcome::Stats(report)) => state.reports.push(*report),
            (Request::MetaGet(m), outcome) => meta_get_reply(m, key, &outcome, out),
            (Request::MetaSet(m), Outcome::Stored(result)) => meta_set_reply(m, key, result, out),
            (Request::MetaDelete(m), Outcome::Deleted(result)) => {
                // memcached 1.6.18's quiet mode hides only HD for md: a
                // miss still answers NF.
                let (status, quiet_ok) = match result {
                    DeleteResult::Deleted => (Status::Stored, true),
                    DeleteResult::NotFound => (Status::NotFound, false),
                    DeleteResult::Exists => (Status::Exists, false),
                };
                if !(quiet_ok && m.flags.has(b'q')) {
                    meta::write_header(out, status);
                    meta::write_flags(out, ReturnFlags::DELETE, &m.flags, (&m.key, key), None);
                }
            }
            (Request::MetaArith(m), Outcome::Arith(result)) => {
                meta_arith_reply(m, key, result, out)
            }
            (Request::MetaDebug(key), Outcome::Debug(info)) => meta::write_debug(
                out,
                key.raw(),
                info.map(|info| meta::DebugLine {
                    ttl: info.ttl,
                    last_access: info.last_access,
                    cas: info.cas,
                    fetched: info.fetched,
                    size: info.item_len as u64,
                }),
            ),
            // Answered by nothing per op: a miss inside a get, the client
            // asked for no reply, or the reply comes at the end (flush_all,
            // stats reset and detail).
            (Request::Get(_), Outcome::Miss)
            | (Request::Store(_), Outcome::Stored(_))
            | (Request::Delete { .. }, Outcome::Deleted(_))
            | (Request::Arith { .. }, Outcome::Arith(_))
            | (Request::Touch { .. }, Outcome::Touched(_))
            | (Request::FlushAll { .. } | Request::Stats { .. }, Outcome::Done) => {}
            // An op answered with an outcome its request has no reply for:
            // a missing arm above. Tests (debug builds) stop here rather
            // than leave a client waiting.
            (req, outcome) => {
                debug_assert!(false, "no text reply for {req:?} with {outcome:?}")
            }
        }
    }

    fn reply_unavailable(_req: &Request<'_>, out: &mut Vec<u8>) {
        Reply::ShuttingDown.write(out);
    }

    fn reply_end(
        req: &Request<'_>,
        out: &mut Vec<u8>,
        state: &mut ReplyState,
        settings: &Settings,
    ) -> Flow {
        match req {
            Request::Get(_) => Reply::End.write(out),
            Request::FlushAll { noreply, .. } => {
                if !noreply {
                    Reply::Ok.write(out);
                }
            }
            Request::Version => text::write_version(out, settings.version.as_bytes()),
            // Rereads the files -Z named; new connections get them.
            Request::RefreshCerts => match &settings.tls {
                None => Reply::TlsNotEnabled.write(out),
                Some(tls) => match tls.refresh() {
                    Ok(()) => Reply::Ok.write(out),
                    Err(e) => {
                        log::error!("refresh_certs: {e}");
                        Reply::RefreshCertsFailed.write(out);
                    }
                },
            },
            // As memcached: the level applies server-wide at once.
            Request::Verbosity { level, noreply } => {
                crate::runtime::server::verbosity::set_verbosity(*level);
                if !noreply {
                    Reply::Ok.write(out);
                }
            }
            Request::SlabsAutomove { noreply: false } => Reply::Ok.write(out),
            Request::Quit => return Flow::Close,
            Request::Stats { args } => {
                match stats::query(args) {
                    StatsQuery::Reset => Reply::Reset.write(out),
                    StatsQuery::Detail(_) => Reply::Ok.write(out),
                    StatsQuery::DetailDump => stats::write_detail_dump(out, &state.reports),
                    StatsQuery::DetailUsage => Reply::DetailUsage.write(out),
                    StatsQuery::Group(_) => match stats::render(args, &state.reports, settings) {
                        Some(lines) => {
                            for (name, value) in &lines {
                                text::write_stat(
                                    out,
                                    name.as_bytes(),
                                    text::StatValue::Str(value.as_bytes()),
                                );
                            }
                            Reply::End.write(out);
                        }
                        None => Reply::Error.write(out),
                    },
                    StatsQuery::Unknown => Reply::Error.write(out),
                }
                state.reports.clear();
            }
            Request::Shutdown { graceful: _ } => {
                if !settings.enable_shutdown {
                    Reply::ShutdownDisabled.write(out);
                } else {
                    Reply::Ok.write(out);
                    return Flow::Shutdown;
                }
            }
            Request::MetaNoop => meta::write_status(out, Status::Noop),
            // Answered per op (or, asked for no reply, not at all).
            Request::Store(_)
            | Request::Delete { .. }
            | Request::Arith { .. }
            | Request::Touch { .. }
            | Request::SlabsAutomove { noreply: true }
            | Request::MetaGet(_)
            | Request::MetaSet(_)
            | Request::MetaDelete(_)
            | Request::MetaArith(_)
            | Request::MetaDebug(_) => {}
        }
        Flow::Continue
    }

    fn kind(req: &Request<'_>) -> RequestKind {
        let class = match req {
            Request::Get(_) => Class::Get,
            Request::Store(_) => Class::Set,
            Request::Delete { .. } => Class::Delete,
            Request::Arith { .. } => Class::Arith,
            Request::Touch { .. } => Class::Touch,
            Request::MetaGet(_) => Class::MetaGet,
            Request::MetaSet(_) => Class::MetaSet,
            Request::MetaDelete(_) => Class::MetaDelete,
            Request::MetaArith(_) => Class::MetaArith,
            Request::FlushAll { .. }
            | Request::Version
            | Request::RefreshCerts
            | Request::Verbosity { .. }
            | Request::Quit
            | Request::SlabsAutomove { .. }
            | Request::Stats { .. }
            | Request::Shutdown { .. }
            | Request::MetaNoop
            | Request::MetaDebug(_) => Class::Other,
        };
        RequestKind {
            class,
            ends_batch: matches!(req, Request::Quit),
            counted_in_detail: matches!(
                req,
                Request::Get(_) | Request::Store(_) | Request::Delete { .. }
            ),
            flush: matches!(req, Request::FlushAll { .. }),
        }
    }
}

fn store_reply(result: StoreResult, is_cas: bool) -> Reply {
    match result {
        StoreResult::Stored(_) => Reply::Stored,
        StoreResult::NotStored => Reply::NotStored,
        StoreResult::Exists => Reply::Exists,
        StoreResult::NotFound if is_cas => Reply::NotFound,
        StoreResult::NotFound => Reply::NotStored,
        StoreResult::TooLarge => Reply::TooLarge,
        StoreResult::OutOfMemory => Reply::OutOfMemory,
    }
}

fn item_meta(hit: &Hit<&[u8]>) -> ItemMeta {
    ItemMeta {
        cas: hit.cas,
        client_flags: hit.flags,
        size: hit.value.len(),
        ttl: hit.ttl,
        last_access: hit.facts.last_access,
        hit_before: hit.facts.hit_before,
        win: hit.facts.win,
        stale: hit.facts.stale,
        win_sent: hit.facts.win_sent,
    }
}

fn meta_get_reply(
    m: &meta::MetaRequest<'_>,
    key: &[u8],
    outcome: &Outcome<&[u8]>,
    out: &mut Vec<u8>,
) {
    match outcome {
        Outcome::Hit(hit) => {
            let with_value = m.flags.has(b'v');
            let status = if with_value {
                Status::Value(hit.value.len())
            } else {
                Status::Stored
            };
            meta::write_header(out, status);
            meta::write_flags(
                out,
                ReturnFlags::GET,
                &m.flags,
                (&m.key, key),
                Some(&item_meta(hit)),
            );
            if with_value {
                meta::write_value(out, hit.value);
            }
        }
        _ if m.flags.has(b'q') => {}
        _ => {
            meta::write_header(out, Status::Miss);
            meta::write_flags(out, ReturnFlags::GET, &m.flags, (&m.key, key), None);
        }
    }
}

fn meta_set_reply(m: &meta::MetaSet<'_>, key: &[u8], result: StoreResult, out: &mut Vec<u8>) {
    let status = match result {
        StoreResult::Stored(_) if m.flags.has(b'q') => return,
        StoreResult::Stored(_) => Status::Stored,
        StoreResult::NotStored => Status::NotStored,
        StoreResult::Exists => Status::Exists,
        StoreResult::NotFound => Status::NotFound,
        StoreResult::TooLarge => return Reply::TooLarge.write(out),
        StoreResult::OutOfMemory => return Reply::OutOfMemory.write(out),
    };
    let cas = match result {
        StoreResult::Stored(cas) => cas,
        _ => 0,
    };
    meta::write_header(out, status);
    let item = ItemMeta {
        cas,
        ..ItemMeta::default()
    };
    // memcached returns `c` whatever the outcome: `c0` when nothing was
    // stored (its metaget.t checks `EX c0`).
    meta::write_flags(out, ReturnFlags::SET, &m.flags, (&m.key, key), Some(&item));
}

fn meta_arith_reply(m: &meta::MetaArith<'_>, key: &[u8], result: ArithResult, out: &mut Vec<u8>) {
    {
        let flags: &MetaFlags<'_> = &m.flags;
        match result {
            ArithResult::Value { value, cas, ttl } => {
                let mut digits = itoa::Buffer::new();
                let text = digits.format(value).as_bytes();
                let with_value = flags.has(b'v');
                // memcached's q hides a success whether or not it carries
                // the value.
                if flags.has(b'q') {
                    return;
                }
                meta::write_header(
                    out,
                    if with_value {
                        Status::Value(text.len())
                    } else {
                        Status::Stored
                    },
                );
                let item = ItemMeta {
                    cas,
                    ttl,
                    size: text.len(),
                    ..ItemMeta::default()
                };
                meta::write_flags(out, ReturnFlags::ARITH, flags, (&m.key, key), Some(&item));
                if with_value {
                    meta::write_value(out, text);
                }
            }
            ArithResult::NotFound => {
                meta::write_header(out, Status::NotFound);
                meta::write_flags(out, ReturnFlags::ARITH, flags, (&m.key, key), None);
            }
            ArithResult::Exists => {
                meta::write_header(out, Status::Exists);
                meta::write_flags(out, ReturnFlags::ARITH, flags, (&m.key, key), None);
            }
            ArithResult::NonNumeric => Reply::NonNumeric.write(out),
            ArithResult::OutOfMemory => Reply::OutOfMemory.write(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_owner_is_answered_in_text() {
        let (req, _) = text::parse(b"get k\r\n", &Limits::default())
            .expect("valid")
            .expect("complete");
        let mut out = Vec::new();
        Text::reply_unavailable(&req, &mut out);
        assert_eq!(out, b"SERVER_ERROR shutting down\r\n");
    }
}
