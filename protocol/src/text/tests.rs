//! Table-driven tests for the text and meta protocols: every command, every
//! error class, with the exact bytes memcached would send.

use super::*;
use crate::meta::{self, ItemMeta, ReturnFlags, Status};
use crate::{ErrorKind, ParseError, Recovery};

fn limits() -> Limits {
    Limits::default()
}

#[track_caller]
fn ok(input: &[u8]) -> Request<'_> {
    match parse(input, &limits()) {
        Ok(Some((req, used))) => {
            assert_eq!(
                used,
                input.len(),
                "consumed for {:?}",
                String::from_utf8_lossy(input)
            );
            req
        }
        other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(input)),
    }
}

#[track_caller]
fn err(input: &[u8]) -> ParseError {
    match parse(input, &limits()) {
        Err(e) => e,
        other => panic!("{:?} -> {other:?}", String::from_utf8_lossy(input)),
    }
}

fn reply(e: &ParseError) -> Vec<u8> {
    let mut out = Vec::new();
    e.write_reply(&mut out);
    out
}

#[track_caller]
fn assert_err(input: &[u8], expected_reply: &[u8], recovery: Recovery) {
    let e = err(input);
    assert_eq!(
        String::from_utf8_lossy(&reply(&e)),
        String::from_utf8_lossy(expected_reply),
        "reply for {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(
        e.recovery,
        recovery,
        "recovery for {:?}",
        String::from_utf8_lossy(input)
    );
}

fn keys<'a>(r: &Retrieval<'a>) -> Vec<&'a [u8]> {
    r.keys.iter().collect()
}

#[test]
fn retrieval_commands() {
    let Request::Get(r) = ok(b"get foo\r\n") else {
        panic!()
    };
    assert_eq!(
        (r.with_cas, r.touch, keys(&r)),
        (false, None, vec![&b"foo"[..]])
    );

    let Request::Get(r) = ok(b"gets a  b c\r\n") else {
        panic!()
    };
    assert!(r.with_cas);
    assert_eq!(r.keys.len(), 3);
    assert_eq!(keys(&r), vec![&b"a"[..], b"b", b"c"]);

    let Request::Get(r) = ok(b"gat 100 a b\r\n") else {
        panic!()
    };
    assert_eq!(
        (r.with_cas, r.touch, keys(&r)),
        (false, Some(100), vec![&b"a"[..], b"b"])
    );

    let Request::Get(r) = ok(b"gats -1 a\r\n") else {
        panic!()
    };
    assert_eq!((r.with_cas, r.touch), (true, Some(-1)));

    // A bare \n ends a line too, as in memcached.
    let Request::Get(r) = ok(b"get foo\n") else {
        panic!()
    };
    assert_eq!(keys(&r), vec![&b"foo"[..]]);

    // Duplicate keys are kept: memcached answers each.
    let Request::Get(r) = ok(b"get a a\r\n") else {
        panic!()
    };
    assert_eq!(r.keys.len(), 2);
}

#[test]
fn retrieval_errors() {
    let line = |s: &[u8]| Recovery::Skip(s.len());
    assert_err(b"get\r\n", b"ERROR\r\n", line(b"get\r\n"));
    assert_err(b"get    \r\n", b"ERROR\r\n", line(b"get    \r\n"));
    assert_err(b"gat\r\n", b"ERROR\r\n", line(b"gat\r\n"));
    assert_err(
        b"gat x\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
        line(b"gat x\r\n"),
    );
    // memcached answers `gat <exptime>` without keys with a bare END.
    let Request::Get(r) = ok(b"gat 10\r\n") else {
        panic!()
    };
    assert!(r.keys.is_empty() && r.touch == Some(10));
    let long = [b"get ".as_slice(), &[b'k'; 251], b"\r\n"].concat();
    assert_err(
        &long,
        b"CLIENT_ERROR bad command line format\r\n",
        line(&long),
    );
    // memcached takes control bytes in keys (only the space splits).
    let Request::Get(r) = ok(b"get a\x01b\r\n") else {
        panic!()
    };
    assert_eq!(r.keys.iter().next(), Some(b"a\x01b".as_slice()));
    assert_err(
        b"gat x k\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
        line(b"gat x k\r\n"),
    );
    // 250 bytes is still fine.
    let max = [b"get ".as_slice(), &[b'k'; 250], b"\r\n"].concat();
    assert!(matches!(ok(&max), Request::Get(_)));
}

#[test]
fn storage_commands() {
    #[allow(clippy::too_many_arguments)]
    fn store<'a>(
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: i32,
        cas: u64,
        value: &'a [u8],
        noreply: bool,
    ) -> Store<'a> {
        Store {
            mode,
            key,
            flags,
            exptime,
            cas,
            value,
            noreply,
        }
    }
    let cases: &[(&[u8], Store)] = &[
        (
            b"set k 5 10 3\r\nabc\r\n",
            store(StoreMode::Set, b"k", 5, 10, 0, b"abc", false),
        ),
        (
            b"add k 0 0 0\r\n\r\n",
            store(StoreMode::Add, b"k", 0, 0, 0, b"", false),
        ),
        (
            b"replace k 1 -1 2 noreply\r\nhi\r\n",
            store(StoreMode::Replace, b"k", 1, -1, 0, b"hi", true),
        ),
        (
            b"append k 0 0 2\r\n\r\n\r\n",
            store(StoreMode::Append, b"k", 0, 0, 0, b"\r\n", false),
        ),
        (
            b"prepend k 0 0 1 noreply\r\nx\r\n",
            store(StoreMode::Prepend, b"k", 0, 0, 0, b"x", true),
        ),
        (
            b"cas k 4294967295 0 1 77\r\nx\r\n",
            store(StoreMode::Cas, b"k", u32::MAX, 0, 77, b"x", false),
        ),
        (
            b"cas k 0 0 1 18446744073709551615 noreply\r\nx\r\n",
            store(StoreMode::Cas, b"k", 0, 0, u64::MAX, b"x", true),
        ),
        // A sixth token other than noreply is accepted and ignored, as memcached does.
        (
            b"set k 0 0 1 junk\r\nx\r\n",
            store(StoreMode::Set, b"k", 0, 0, 0, b"x", false),
        ),
        (
            b"set k 0 0 1\nx\r\n",
            store(StoreMode::Set, b"k", 0, 0, 0, b"x", false),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            &ok(input),
            &Request::Store(expected.clone()),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn flags_keep_their_low_32_bits_as_in_memcached() {
    for (line, flags) in [
        (&b"set k 4294967296 0 1\r\nx\r\n"[..], 0),
        (b"set k 18446744073709551615 0 1\r\nx\r\n", u32::MAX),
        (b"set k 4294967297 0 1\r\nx\r\n", 1),
    ] {
        match parse(line, &Limits::default()) {
            Ok(Some((Request::Store(store), _))) => assert_eq!(store.flags, flags),
            other => panic!("{line:?}: {other:?}"),
        }
    }
}

#[test]
fn storage_errors() {
    let bad = b"CLIENT_ERROR bad command line format\r\n";
    let line = |s: &[u8]| Recovery::Skip(s.len());
    for input in [
        &b"set k 0 0 -1\r\n"[..],
        b"set k x 0 1\r\n",
        b"set k -1 0 1\r\n",
        b"set k 0 x 1\r\n",
        b"set k 0 0 x\r\n",
        b"cas k 0 0 1 x\r\n",
        b"cas k 0 0 1 -5\r\n",
    ] {
        // Like memcached, the data block is not skipped: it never was declared
        // validly, so it is read as the next command line.
        assert_err(input, bad, line(input));
    }
    let long_key = [b"set ".as_slice(), &[b'k'; 251], b" 0 0 1\r\n"].concat();
    assert_err(&long_key, bad, line(&long_key));
    for input in [
        &b"set k 0 0\r\n"[..],
        b"set k 0 0 1 noreply x\r\n",
        b"cas k 0 0 1\r\n",
        b"set\r\n",
    ] {
        assert_err(input, b"ERROR\r\n", line(input));
    }
    // noreply silences errors found after it is known, as memcached's out_string does.
    let e = err(b"set k 0 0 -1 noreply\r\n");
    assert!(e.silent);
    assert_eq!(reply(&e), b"");
}

#[test]
fn too_large_value_is_refused_and_skipped_without_waiting_for_it() {
    let limits = Limits {
        max_value_len: 10,
        ..Limits::default()
    };
    let head = b"set k 0 0 11\r\n";
    let e = parse(head, &limits).unwrap_err();
    assert_eq!(reply(&e), b"SERVER_ERROR object too large for cache\r\n");
    assert_eq!(e.recovery, Recovery::Skip(head.len() + 11 + 2));
    // A huge declaration is refused the same way, nothing is reserved for it.
    let e = parse(b"set k 0 0 2147483645\r\n", &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert!(e.is_too_large());
    assert_eq!(e.recovery, Recovery::Skip(22 + 2_147_483_645 + 2));
    // Past i32::MAX - 2 the block's length would overflow memcached's int:
    // a bad line, and the line alone is skipped (memcached's issue_70.t).
    for line in [
        &b"set k 0 0 2147483646\r\n"[..],
        b"set k 0 0 2147483647\r\n",
    ] {
        let e = parse(line, &limits).unwrap_err();
        assert!(!e.is_too_large());
        assert_eq!(e.kind, ErrorKind::BadCommandLine);
        assert_eq!(e.recovery, Recovery::Skip(line.len()));
    }
    let e = parse(b"ms k 2147483647 T0\r\n", &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadCommandLine);
    let e = parse(b"set k 0 0 11 noreply\r\n", &limits).unwrap_err();
    assert!(e.silent);
    // memcached unlinks the old value of a refused `set`, not of the others.
    let line = b"set some-key 0 0 11\r\n";
    let mut scratch = [0; 250];
    let stale = parse(line, &limits).unwrap_err().stale_key.unwrap();
    assert_eq!(stale.key(line, &mut scratch), Some(&b"some-key"[..]));
    assert_eq!(
        parse(b"add k 0 0 11\r\n", &limits).unwrap_err().stale_key,
        None
    );
    assert_eq!(
        parse(b"append k 0 0 11\r\n", &limits)
            .unwrap_err()
            .stale_key,
        None
    );
    // Exactly at the limit is fine.
    let ok = parse(b"set k 0 0 10\r\n0123456789\r\n", &limits).unwrap();
    assert!(ok.is_some());
}

#[test]
fn bad_data_chunk_skips_the_declared_block() {
    let input = b"set k 0 0 3\r\nabcXYget k\r\n";
    let e = err(input);
    assert_eq!(reply(&e), b"CLIENT_ERROR bad data chunk\r\n");
    assert_eq!(e.recovery, Recovery::Skip(b"set k 0 0 3\r\nabcXY".len()));
    // And the stream resumes at the next command.
    let rest = &input[b"set k 0 0 3\r\nabcXY".len()..];
    assert!(matches!(ok(rest), Request::Get(_)));
    assert!(err(b"set k 0 0 3 noreply\r\nabcX\n").silent);
}

#[test]
fn incomplete_storage_waits_for_the_whole_block() {
    for input in [
        &b"set k 0 0 3\r\n"[..],
        b"set k 0 0 3\r\nab",
        b"set k 0 0 3\r\nabc",
        b"set k 0 0 3\r\nabc\r",
    ] {
        assert_eq!(parse(input, &limits()), Ok(None), "{input:?}");
    }
}

#[test]
fn delete_forms() {
    assert_eq!(
        ok(b"delete k\r\n"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        ok(b"delete k noreply\r\n"),
        Request::Delete {
            key: b"k",
            noreply: true
        }
    );
    assert_eq!(
        ok(b"delete k 0\r\n"),
        Request::Delete {
            key: b"k",
            noreply: false
        }
    );
    assert_eq!(
        ok(b"delete k 0 noreply\r\n"),
        Request::Delete {
            key: b"k",
            noreply: true
        }
    );
    let usage = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    assert_err(b"delete k 5\r\n", usage, Recovery::Skip(12));
    assert_err(b"delete k 5 noreply\r\n", b"", Recovery::Skip(20));
    assert_err(b"delete\r\n", b"ERROR\r\n", Recovery::Skip(8));
    assert_err(b"delete a b c d\r\n", b"ERROR\r\n", Recovery::Skip(16));
}

#[test]
fn arithmetic() {
    assert_eq!(
        ok(b"incr n 5\r\n"),
        Request::Arith {
            op: ArithOp::Incr,
            key: b"n",
            delta: 5,
            noreply: false
        }
    );
    assert_eq!(
        ok(b"decr n 18446744073709551615 noreply\r\n"),
        Request::Arith {
            op: ArithOp::Decr,
            key: b"n",
            delta: u64::MAX,
            noreply: true
        }
    );
    let bad_delta = b"CLIENT_ERROR invalid numeric delta argument\r\n";
    assert_err(b"incr n -1\r\n", bad_delta, Recovery::Skip(11));
    assert_err(b"incr n x\r\n", bad_delta, Recovery::Skip(10));
    assert_err(
        b"incr n 18446744073709551616\r\n",
        bad_delta,
        Recovery::Skip(29),
    );
    assert_err(b"incr n\r\n", b"ERROR\r\n", Recovery::Skip(8));
}

#[test]
fn touch_flush_and_misc() {
    assert_eq!(
        ok(b"touch k 10\r\n"),
        Request::Touch {
            key: b"k",
            exptime: 10,
            noreply: false
        }
    );
    assert_eq!(
        ok(b"touch k -1 noreply\r\n"),
        Request::Touch {
            key: b"k",
            exptime: -1,
            noreply: true
        }
    );
    assert_err(
        b"touch k x\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
        Recovery::Skip(11),
    );
    assert_err(b"touch k\r\n", b"ERROR\r\n", Recovery::Skip(9));

    assert_eq!(
        ok(b"flush_all\r\n"),
        Request::FlushAll {
            delay: None,
            noreply: false
        }
    );
    assert_eq!(
        ok(b"flush_all 10\r\n"),
        Request::FlushAll {
            delay: Some(10),
            noreply: false
        }
    );
    assert_eq!(
        ok(b"flush_all noreply\r\n"),
        Request::FlushAll {
            delay: None,
            noreply: true
        }
    );
    assert_eq!(
        ok(b"flush_all 0 noreply\r\n"),
        Request::FlushAll {
            delay: Some(0),
            noreply: true
        }
    );
    assert_err(
        b"flush_all x\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
        Recovery::Skip(13),
    );
    assert_err(b"flush_all 1 2 3\r\n", b"ERROR\r\n", Recovery::Skip(17));
    // -F: refused whatever the arguments; noreply silences the refusal.
    let no_flush = Limits {
        flush_enabled: false,
        ..Limits::default()
    };
    for (line, reply) in [
        (
            &b"flush_all\r\n"[..],
            &b"CLIENT_ERROR flush_all not allowed\r\n"[..],
        ),
        (
            b"flush_all 10\r\n",
            b"CLIENT_ERROR flush_all not allowed\r\n",
        ),
        (
            b"flush_all x\r\n",
            b"CLIENT_ERROR flush_all not allowed\r\n",
        ),
        (b"flush_all noreply\r\n", b""),
        (b"flush_all 0  noreply \r\n", b""),
    ] {
        let e = parse(line, &no_flush).unwrap_err();
        assert_eq!(e.kind, ErrorKind::FlushDisabled);
        assert!(e.is_refused_flush());
        assert_eq!(e.recovery, Recovery::Skip(line.len()));
        let mut out = Vec::new();
        e.write_reply(&mut out);
        assert_eq!(out, reply, "{:?}", String::from_utf8_lossy(line));
    }
    assert!(!parse(b"flush_all x\r\n", &Limits::default())
        .unwrap_err()
        .is_refused_flush());

    assert_eq!(ok(b"version\r\n"), Request::Version);
    assert_eq!(ok(b"refresh_certs\r\n"), Request::RefreshCerts);
    assert_eq!(
        ok(b"verbosity 1\r\n"),
        Request::Verbosity {
            level: 1,
            noreply: false
        }
    );
    // The level must be a number (memcached 1.6.18); noreply silences the
    // error.
    for bad in [
        &b"verbosity x\r\n"[..],
        b"verbosity 1x\r\n",
        b"verbosity -1\r\n",
    ] {
        assert_err(
            bad,
            b"CLIENT_ERROR bad command line format\r\n",
            Recovery::Skip(bad.len()),
        );
    }
    assert!(err(b"verbosity x noreply\r\n").silent);
    assert_err(b"verbosity\r\n", b"ERROR\r\n", Recovery::Skip(11));
    // memccapable's check: a lone noreply silences the OK.
    assert_eq!(
        ok(b"verbosity noreply\r\n"),
        Request::Verbosity {
            level: 0,
            noreply: true
        }
    );
    assert_eq!(ok(b"quit\r\n"), Request::Quit);
    assert_eq!(ok(b"stats\r\n"), Request::Stats { args: b"" });
    assert_eq!(
        ok(b"stats  settings \r\n"),
        Request::Stats { args: b"settings" }
    );
    assert_eq!(
        ok(b"stats detail dump\r\n"),
        Request::Stats {
            args: b"detail dump"
        }
    );
    assert_eq!(ok(b"shutdown\r\n"), Request::Shutdown { graceful: false });
    assert_eq!(
        ok(b"shutdown graceful\r\n"),
        Request::Shutdown { graceful: true }
    );
    assert_err(
        b"shutdown now\r\n",
        b"CLIENT_ERROR invalid shutdown mode\r\n",
        Recovery::Skip(14),
    );
}

#[test]
fn unknown_and_empty_lines() {
    assert_err(b"bogus\r\n", b"ERROR\r\n", Recovery::Skip(7));
    assert_err(b"GET k\r\n", b"ERROR\r\n", Recovery::Skip(7));
    assert_err(b"\r\n", b"ERROR\r\n", Recovery::Skip(2));
    assert_err(b"\n", b"ERROR\r\n", Recovery::Skip(1));
    assert_err(b"\x00\x01\x02\n", b"ERROR\r\n", Recovery::Skip(4));
}

#[test]
fn overlong_lines_close_the_connection() {
    let limits = limits();
    let junk = vec![b'x'; limits.max_line_len + 2];
    let e = parse(&junk, &limits).unwrap_err();
    assert_eq!(
        (e.kind, e.recovery),
        (ErrorKind::LineTooLong, Recovery::Close)
    );
    assert_eq!(reply(&e), b"");
    // Up to the limit (and its `\r`) without a newline we wait.
    assert_eq!(parse(&junk[..limits.max_line_len], &limits), Ok(None));
    let mut at_limit = vec![b'x'; limits.max_line_len];
    at_limit.push(b'\r');
    assert_eq!(parse(&at_limit, &limits), Ok(None));
    at_limit.push(b'\n');
    assert_err(&at_limit, b"ERROR\r\n", Recovery::Skip(at_limit.len()));
    // A long line that does end is still refused.
    let mut line = vec![b'x'; limits.max_line_len + 10];
    line.extend_from_slice(b"\r\n");
    assert_eq!(parse(&line, &limits).unwrap_err().recovery, Recovery::Close);
    // A multi-key get may be much longer.
    let mut get = b"get".to_vec();
    for i in 0..2000 {
        get.extend_from_slice(format!(" key:{i}").as_bytes());
    }
    assert_eq!(parse(&get, &limits), Ok(None));
    get.extend_from_slice(b"\r\n");
    let Request::Get(r) = ok(&get) else { panic!() };
    assert_eq!(r.keys.len(), 2000);
    // ... but not unboundedly.
    let small = Limits {
        max_get_line_len: 4096,
        ..Limits::default()
    };
    let huge = [b"get ".as_slice(), &vec![b'k'; 5000]].concat();
    assert_eq!(parse(&huge, &small).unwrap_err().recovery, Recovery::Close);
}

#[test]
fn pipelined_requests_parse_one_at_a_time() {
    let buf = b"set a 0 0 1\r\n1\r\nget a b\r\ndelete a noreply\r\nmn\r\nincr c 1\r\n";
    let mut at = 0;
    let mut names = Vec::new();
    while at < buf.len() {
        let (req, used) = parse(&buf[at..], &limits()).unwrap().unwrap();
        names.push(std::mem::discriminant(&req));
        at += used;
    }
    assert_eq!(names.len(), 5);
    assert_eq!(at, buf.len());
}

#[test]
fn every_prefix_of_a_valid_pipeline_is_incomplete() {
    let buf = b"set a 0 0 5\r\nhello\r\nms k 2 T10\r\nhi\r\n";
    let (_, first) = parse(buf, &limits()).unwrap().unwrap();
    for cut in 0..first {
        assert_eq!(parse(&buf[..cut], &limits()), Ok(None), "cut at {cut}");
    }
    for cut in first..buf.len() {
        assert_eq!(parse(&buf[first..cut], &limits()), Ok(None), "cut at {cut}");
    }
}

// ---- meta commands ----

#[test]
fn meta_get_flags() {
    let Request::MetaGet(m) = ok(b"mg foo v c f t k Oabc T30 N10 R5 q\r\n") else {
        panic!()
    };
    assert_eq!(m.key.raw(), b"foo");
    assert!(!m.key.is_base64());
    for flag in *b"vcftkOTNRq" {
        assert!(m.flags.has(flag), "{}", flag as char);
    }
    assert!(!m.flags.has(b's'));
    assert_eq!(m.flags.opaque, Some(&b"abc"[..]));
    assert_eq!(
        (m.flags.ttl, m.flags.vivify_ttl, m.flags.recache_ttl),
        (Some(30), Some(10), Some(5))
    );
    let order: Vec<u8> = m.flags.iter().map(|(f, _)| f).collect();
    assert_eq!(order, b"vcftkOTNRq");
    // No flags at all is a plain existence check.
    let Request::MetaGet(m) = ok(b"mg foo\r\n") else {
        panic!()
    };
    assert_eq!(m.flags.iter().count(), 0);
}

#[test]
fn meta_errors() {
    let line = |s: &[u8]| Recovery::Skip(s.len());
    let cases: &[(&[u8], &[u8])] = &[
        // memcached 1.6.18: a meta command with no key is unknown.
        (b"mg\r\n", b"ERROR\r\n"),
        (b"ms \r\n", b"ERROR\r\n"),
        (b"md\r\n", b"ERROR\r\n"),
        (b"ma\r\n", b"ERROR\r\n"),
        (b"mg k v v\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg k !\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg k \xff\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (
            b"mg k Tx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg k T\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg k N99999999999\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        // md and ma give one answer to every flag they cannot take
        // (memcached 1.6.18 and 1.6.38, checked side by side).
        (
            b"md k C-1\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"md k Fx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"md k q q\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"md !!! b\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (b"mg k Fx\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"mg k S2\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg !!! b\r\n", b"CLIENT_ERROR error decoding key\r\n"),
        (
            b"ma k MX\r\n",
            b"CLIENT_ERROR invalid mode for ma M token\r\n",
        ),
        (
            b"ma k MII\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"ma k Jx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"ma k D-1\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (b"me\r\n", b"CLIENT_ERROR bad command line format\r\n"),
    ];
    for &(input, expected) in cases {
        assert_err(input, expected, line(input));
    }
    let long_opaque = [b"mg k O".as_slice(), &[b'o'; 33], b"\r\n"].concat();
    assert_err(
        &long_opaque,
        b"CLIENT_ERROR opaque token too long\r\n",
        line(&long_opaque),
    );
    let long_key = [b"mg ".as_slice(), &[b'k'; 251], b" v\r\n"].concat();
    assert_err(
        &long_key,
        b"CLIENT_ERROR bad command line format\r\n",
        line(&long_key),
    );
    // Meta errors are never silenced by q.
    assert!(!err(b"mg k q q\r\n").silent);
}

#[test]
fn meta_base64_keys_decode() {
    let Request::MetaGet(m) = ok(b"mg Zm9vYmFy b v\r\n") else {
        panic!()
    };
    assert!(m.key.is_base64());
    let mut buf = [0u8; crate::MAX_KEY_LEN];
    assert_eq!(m.key.bytes(&mut buf), b"foobar");
    // Binary bytes, even spaces and control characters, are fine through b.
    let Request::MetaDelete(m) = ok(b"md AAEgfw== b\r\n") else {
        panic!()
    };
    assert_eq!(m.key.bytes(&mut buf), b"\x00\x01\x20\x7f");
}

#[test]
fn meta_set_modes_and_data() {
    let Request::MetaSet(m) = ok(b"ms k 2 T90 F1 c\r\nhi\r\n") else {
        panic!()
    };
    assert_eq!(
        (m.mode, m.value, m.flags.ttl, m.flags.client_flags),
        (StoreMode::Set, &b"hi"[..], Some(90), Some(1))
    );
    for (token, mode) in [
        ("ME", StoreMode::Add),
        ("Me", StoreMode::Add),
        ("MA", StoreMode::Append),
        ("MP", StoreMode::Prepend),
        ("MR", StoreMode::Replace),
        ("MS", StoreMode::Set),
    ] {
        let input = format!("ms k 1 {token}\r\nx\r\n");
        let Request::MetaSet(m) = ok(input.as_bytes()) else {
            panic!()
        };
        assert_eq!(m.mode, mode, "{token}");
    }
    let Request::MetaSet(m) = ok(b"ms k 3 I C12 E13 q O1 k\r\nabc\r\n") else {
        panic!()
    };
    assert_eq!((m.flags.compare_cas, m.flags.new_cas), (Some(12), Some(13)));
    assert!(m.flags.has(b'I') && m.flags.has(b'q'));
}

#[test]
fn meta_set_errors_skip_the_data_block() {
    let total = |line: &[u8], n: usize| Recovery::Skip(line.len() + n + 2);
    assert_err(
        b"ms k 2 MX\r\n",
        b"CLIENT_ERROR invalid mode for ms M token\r\n",
        total(b"ms k 2 MX\r\n", 2),
    );
    assert_err(
        b"ms k 2 v v\r\n",
        b"CLIENT_ERROR duplicate flag\r\n",
        total(b"ms k 2 v v\r\n", 2),
    );
    assert_err(
        b"ms k 2 Fx\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
        total(b"ms k 2 Fx\r\n", 2),
    );
    assert_err(
        b"ms k 2 S2\r\n",
        b"CLIENT_ERROR invalid flag\r\n",
        total(b"ms k 2 S2\r\n", 2),
    );
    assert_err(
        b"ms k 2\r\nhiXX",
        b"CLIENT_ERROR bad data chunk\r\n",
        total(b"ms k 2\r\n", 2),
    );
    let limits = Limits {
        max_value_len: 4,
        ..Limits::default()
    };
    let e = parse(b"ms k 5 T1\r\n", &limits).unwrap_err();
    assert_eq!(reply(&e), b"SERVER_ERROR object too large for cache\r\n");
    assert_eq!(e.recovery, total(b"ms k 5 T1\r\n", 5));
    // Whatever the mode, the old value goes; a base64 key is decoded.
    let line = b"ms a2V5 5 b MA\r\n";
    let mut scratch = [0; 250];
    let stale = parse(line, &limits).unwrap_err().stale_key.unwrap();
    assert_eq!(stale.key(line, &mut scratch), Some(&b"key"[..]));
    // Without a usable length there is nothing to skip but the line.
    assert_err(
        b"ms k\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
        Recovery::Skip(6),
    );
    assert_err(
        b"ms k x\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
        Recovery::Skip(8),
    );
    assert_err(
        b"ms k -1\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
        Recovery::Skip(9),
    );
}

#[test]
fn meta_arith_noop_debug() {
    let Request::MetaArith(m) = ok(b"ma k\r\n") else {
        panic!()
    };
    assert_eq!(m.op, ArithOp::Incr);
    for (mode, op) in [
        ("I", ArithOp::Incr),
        ("+", ArithOp::Incr),
        ("i", ArithOp::Incr),
        ("D", ArithOp::Decr),
        ("-", ArithOp::Decr),
        ("d", ArithOp::Decr),
    ] {
        let input = format!("ma k M{mode} D7 J3 N0 v\r\n");
        let Request::MetaArith(m) = ok(input.as_bytes()) else {
            panic!()
        };
        assert_eq!(
            (m.op, m.flags.delta, m.flags.initial, m.flags.vivify_ttl),
            (op, Some(7), Some(3), Some(0))
        );
    }
    assert_eq!(ok(b"mn\r\n"), Request::MetaNoop);
    let Request::MetaDebug(key) = ok(b"me foo\r\n") else {
        panic!()
    };
    assert_eq!(key.raw(), b"foo");
}

// ---- replies ----

#[test]
fn text_replies_are_memcached_bytes() {
    let mut out = Vec::new();
    write_value(&mut out, b"k", 5, b"abc", None);
    write_value(&mut out, b"k2", 0, b"", Some(99));
    Reply::End.write(&mut out);
    assert_eq!(out, b"VALUE k 5 3\r\nabc\r\nVALUE k2 0 0 99\r\n\r\nEND\r\n");

    let fixed: &[(Reply, &[u8])] = &[
        (Reply::Stored, b"STORED\r\n"),
        (Reply::NotStored, b"NOT_STORED\r\n"),
        (Reply::Exists, b"EXISTS\r\n"),
        (Reply::NotFound, b"NOT_FOUND\r\n"),
        (Reply::Deleted, b"DELETED\r\n"),
        (Reply::Touched, b"TOUCHED\r\n"),
        (Reply::Ok, b"OK\r\n"),
        (Reply::Reset, b"RESET\r\n"),
        (Reply::Error, b"ERROR\r\n"),
        (
            Reply::NonNumeric,
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (
            Reply::OutOfMemory,
            b"SERVER_ERROR out of memory storing object\r\n",
        ),
        (Reply::ShutdownDisabled, b"ERROR: shutdown not enabled\r\n"),
    ];
    for &(r, bytes) in fixed {
        assert_eq!(r.bytes(), bytes);
    }

    let mut out = Vec::new();
    write_number(&mut out, 18446744073709551615);
    write_version(&mut out, b"1.6.21");
    write_stat(&mut out, b"pid", StatValue::U64(42));
    write_stat(
        &mut out,
        b"rusage_user",
        StatValue::Seconds { secs: 1, micros: 5 },
    );
    write_stat(&mut out, b"delta", StatValue::I64(-3));
    write_stat(&mut out, b"evictions", StatValue::Bool(true));
    write_stat(&mut out, b"policy", StatValue::Str(b"merge"));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "18446744073709551615\r\nVERSION 1.6.21\r\nSTAT pid 42\r\nSTAT rusage_user 1.000005\r\n\
         STAT delta -3\r\nSTAT evictions yes\r\nSTAT policy merge\r\n"
    );
}

#[test]
fn meta_replies_echo_flags_in_request_order() {
    let Request::MetaGet(m) = ok(b"mg foo s v t Oxyz c k f h l q\r\n") else {
        panic!()
    };
    let item = ItemMeta {
        cas: 7,
        client_flags: 3,
        size: 2,
        ttl: -1,
        last_access: 12,
        hit_before: true,
        ..ItemMeta::default()
    };
    let mut out = Vec::new();
    meta::write_header(&mut out, Status::Value(2));
    meta::write_flags(
        &mut out,
        ReturnFlags::GET,
        &m.flags,
        (&m.key, b"foo"),
        Some(&item),
    );
    meta::write_value(&mut out, b"hi");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "VA 2 s2 t-1 Oxyz c7 kfoo f3 h1 l12\r\nhi\r\n"
    );

    // A miss returns only the opaque and the key.
    let mut out = Vec::new();
    meta::write_header(&mut out, Status::Miss);
    meta::write_flags(&mut out, ReturnFlags::GET, &m.flags, (&m.key, b"foo"), None);
    assert_eq!(out, b"EN Oxyz kfoo\r\n");

    // Win/stale tokens follow the requested flags: Z, then X, then W.
    let token_state = ItemMeta {
        win: true,
        stale: true,
        win_sent: true,
        ..item
    };
    let Request::MetaGet(m) = ok(b"mg foo c\r\n") else {
        panic!()
    };
    let mut out = Vec::new();
    meta::write_header(&mut out, Status::Stored);
    meta::write_flags(
        &mut out,
        ReturnFlags::GET,
        &m.flags,
        (&m.key, b"foo"),
        Some(&token_state),
    );
    assert_eq!(out, b"HD c7 Z X W\r\n");

    // ms returns the cas but not the client flags; base64 keys come back encoded.
    let Request::MetaSet(m) = ok(b"ms Zm9v 1 b c f k\r\nx\r\n") else {
        panic!()
    };
    let mut out = Vec::new();
    meta::write_header(&mut out, Status::Stored);
    meta::write_flags(
        &mut out,
        ReturnFlags::SET,
        &m.flags,
        (&m.key, b"foo"),
        Some(&item),
    );
    assert_eq!(out, b"HD c7 kZm9v b\r\n");

    for (status, code) in [
        (Status::NotFound, &b"NF\r\n"[..]),
        (Status::NotStored, b"NS\r\n"),
        (Status::Exists, b"EX\r\n"),
        (Status::Noop, b"MN\r\n"),
    ] {
        let mut out = Vec::new();
        meta::write_header(&mut out, status);
        meta::write_flags(
            &mut out,
            ReturnFlags::DELETE,
            &crate::meta::MetaFlags::default(),
            (&m.key, b"foo"),
            None,
        );
        assert_eq!(out, code);
    }
}

#[test]
fn encode_round_trips_through_parse() {
    let inputs: &[&[u8]] = &[
        b"get a b c\r\n",
        b"gats 10 a\r\n",
        b"set k 1 2 3 noreply\r\nabc\r\n",
        b"cas k 1 2 3 4\r\nabc\r\n",
        b"delete k noreply\r\n",
        b"incr k 5\r\n",
        b"touch k 5 noreply\r\n",
        b"flush_all 5\r\n",
        b"verbosity 1\r\n",
        b"stats slabs\r\n",
        b"mg k v c O12\r\n",
        b"ms k 2 T5 MA\r\nhi\r\n",
        b"ma k MD D2\r\n",
        b"md k q\r\n",
        b"mn\r\n",
        b"me k\r\n",
    ];
    for &input in inputs {
        let req = ok(input);
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(input)
        );
    }
}

// ---- fuzz regressions ----

/// Found by the `text` fuzz target: `me <key> b` parsed as a base64 key, but
/// encoding dropped the `b`, so the re-encoded request named another key (a
/// load generator built on `encode` would have asked for the wrong item).
#[test]
fn fuzz_regression_me_keeps_base64_flag() {
    let req = ok(b"me Zm9v b\r\n");
    let mut out = Vec::new();
    req.encode(&mut out);
    assert_eq!(out, b"me Zm9v b\r\n");
}

/// Found by the `text` fuzz target: the line limit counted the `\r` of a
/// `\r\n` ending but not a bare `\n`, so a line accepted with `\n` was
/// refused (and the connection closed) when sent with `\r\n`.
#[test]
fn fuzz_regression_line_limit_ignores_the_terminator() {
    let limits = Limits {
        max_line_len: 10,
        ..Limits::default()
    };
    for line in [&b"mg 12345 v\n"[..], b"mg 12345 v\r\n"] {
        assert!(matches!(parse(line, &limits), Ok(Some(_))), "{line:?}");
    }
    assert!(parse(b"mg 123456 v\r\n", &limits).is_err());
}

#[test]
fn http_request_lines_close_silently_and_slabs_answers_as_memcached() {
    for line in [
        &b"GET / HTTP/1.0\r\n"[..],
        b"DELETE HTTP/1.1\r\n",
        b"HTTP/1.1\r\n",
    ] {
        let e = err(line);
        assert_eq!(e.recovery, Recovery::Close);
        assert_eq!(reply(&e), b"");
    }
    // Commands memcached branches on by first letter answer ERROR instead.
    assert_err(b"sxx / HTTP/1.0\r\n", b"ERROR\r\n", Recovery::Skip(16));
    assert!(matches!(
        parse(b"bget a\r\n", &Limits::default()),
        Ok(Some((Request::Get(_), 8)))
    ));
    for (line, noreply) in [
        (&b"slabs automove 1\r\n"[..], false),
        (b"slabs automove 0 noreply\r\n", true),
        (b"slabs automove ratio 0.5\r\n", false),
    ] {
        match parse(line, &Limits::default()) {
            Ok(Some((Request::SlabsAutomove { noreply: nr }, used))) => {
                assert_eq!((nr, used), (noreply, line.len()))
            }
            other => panic!("{line:?}: {other:?}"),
        }
    }
    let skip = |l: &[u8]| Recovery::Skip(l.len());
    for (line, expected) in [
        (
            &b"slabs automove invalid\r\n"[..],
            &b"CLIENT_ERROR bad command line format\r\n"[..],
        ),
        (b"slabs automove 3\r\n", b"ERROR\r\n"),
        (b"slabs automove ratio\r\n", b"ERROR\r\n"),
        (
            b"slabs reassign 1 2\r\n",
            b"CLIENT_ERROR slab reassignment disabled\r\n",
        ),
        (b"slabs\r\n", b"ERROR\r\n"),
    ] {
        assert_err(line, expected, skip(line));
    }
}

#[test]
fn values_over_the_room_left_are_refused_as_out_of_memory() {
    let limits = Limits {
        value_room: 10,
        ..Limits::default()
    };
    for head in [&b"set k 0 0 11\r\n"[..], b"ms k 11 T0\r\n"] {
        let e = parse(head, &limits).unwrap_err();
        assert_eq!(e.kind, ErrorKind::OutOfMemory);
        assert!(e.is_out_of_memory() && !e.is_too_large());
        assert_eq!(reply(&e), b"SERVER_ERROR out of memory storing object\r\n");
        assert_eq!(e.recovery, Recovery::Skip(head.len() + 11 + 2));
        assert!(e.stale_key.is_some(), "memcached unlinks the old value");
    }
    assert!(
        parse(b"set k 0 0 11 noreply\r\n", &limits)
            .unwrap_err()
            .silent
    );
    // The item limit is checked first, and values within the room parse.
    let both = Limits {
        max_value_len: 10,
        ..limits.clone()
    };
    assert!(parse(b"set k 0 0 11\r\n", &both)
        .unwrap_err()
        .is_too_large());
    assert!(parse(b"set k 0 0 10\r\n0123456789\r\n", &limits)
        .unwrap()
        .is_some());
}

#[test]
fn request_len_reads_the_declared_block_of_storage_commands() {
    use crate::text::request_len;
    assert_eq!(request_len(b"set k 0 0 5\r\n"), Some(13 + 5 + 2));
    assert_eq!(request_len(b"set k 0 0 5\r\nhel"), Some(20));
    assert_eq!(request_len(b"cas k 0 0 100 7 noreply\r\n"), Some(25 + 102));
    assert_eq!(request_len(b"ms k 1000 T0 F5\r\n"), Some(17 + 1002));
    assert_eq!(request_len(b"append k 1 2 3\n"), Some(15 + 5));
    // Not yet known, no block, or not a number: nothing to say.
    for buf in [
        &b"set k 0 0 5"[..],
        b"get k\r\n",
        b"set k 0 0\r\n",
        b"set k 0 0 -1\r\n",
        b"set k 0 0 2147483647\r\n",
        b"mg k v\r\n",
    ] {
        assert_eq!(request_len(buf), None, "{:?}", String::from_utf8_lossy(buf));
    }
}
