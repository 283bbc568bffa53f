//! Binary protocol tests: every opcode's shape, every error class, and the
//! exact response bytes.

use super::*;
use crate::{ErrorKind, ParseError, Recovery};

/// Builds a raw request packet.
fn packet(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        magic: REQUEST_MAGIC,
        opcode,
        key_len: key.len() as u16,
        extras_len: extras.len() as u8,
        data_type: 0,
        vbucket_or_status: 0,
        body_len: (extras.len() + key.len() + value.len()) as u32,
        opaque,
        cas,
    }
    .encode(&mut out);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

#[track_caller]
fn ok(input: &[u8]) -> Request<'_> {
    let (req, used) = parse(input, &Limits::default()).unwrap().unwrap();
    assert_eq!(used, input.len());
    req
}

#[track_caller]
fn err(input: &[u8]) -> ParseError {
    parse(input, &Limits::default()).unwrap_err()
}

fn reply_of(e: &ParseError) -> Vec<u8> {
    let mut out = Vec::new();
    e.write_reply(&mut out);
    out
}

#[test]
fn header_is_24_bytes_and_round_trips() {
    let h = Header {
        magic: 0x80,
        opcode: 1,
        key_len: 0x0102,
        extras_len: 8,
        data_type: 0,
        vbucket_or_status: 0x0304,
        body_len: 0x05060708,
        opaque: 0xdeadbeef,
        cas: 0x1122334455667788,
    };
    let mut out = Vec::new();
    h.encode(&mut out);
    assert_eq!(out.len(), HEADER_LEN);
    assert_eq!(
        out,
        [
            0x80, 1, 1, 2, 8, 0, 3, 4, 5, 6, 7, 8, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22, 0x33, 0x44,
            0x55, 0x66, 0x77, 0x88
        ]
    );
    assert_eq!(Header::decode(out[..].try_into().unwrap()), h);
}

#[test]
fn get_family() {
    for (op, quiet, with_key) in [
        (0x00, false, false),
        (0x09, true, false),
        (0x0c, false, true),
        (0x0d, true, true),
    ] {
        let p = packet(op, &[], b"key", &[], 7, 0);
        let r = ok(&p);
        assert_eq!(r.command, Command::Get { quiet, with_key });
        assert_eq!((r.key, r.opaque, r.opcode as u8), (&b"key"[..], 7, op));
    }
    for (op, quiet, with_key) in [
        (0x1d, false, false),
        (0x1e, true, false),
        (0x23, false, true),
        (0x24, true, true),
    ] {
        let p = packet(op, &100u32.to_be_bytes(), b"k", &[], 0, 0);
        assert_eq!(
            ok(&p).command,
            Command::GetAndTouch {
                exptime: 100,
                quiet,
                with_key
            }
        );
    }
    let p = packet(0x1c, &5u32.to_be_bytes(), b"k", &[], 0, 0);
    assert_eq!(ok(&p).command, Command::Touch { exptime: 5 });
}

#[test]
fn storage_family() {
    let mut extras = Vec::new();
    extras.extend_from_slice(&0xcafef00du32.to_be_bytes());
    extras.extend_from_slice(&60u32.to_be_bytes());
    for (op, mode, quiet) in [
        (0x01, StoreMode::Set, false),
        (0x11, StoreMode::Set, true),
        (0x02, StoreMode::Add, false),
        (0x12, StoreMode::Add, true),
        (0x03, StoreMode::Replace, false),
        (0x13, StoreMode::Replace, true),
    ] {
        let p = packet(op, &extras, b"key", b"value", 1, 99);
        let r = ok(&p);
        assert_eq!(
            r.command,
            Command::Store {
                mode,
                flags: 0xcafef00d,
                exptime: 60,
                quiet
            }
        );
        assert_eq!((r.key, r.value, r.cas), (&b"key"[..], &b"value"[..], 99));
    }
    for (op, append, quiet) in [
        (0x0e, true, false),
        (0x19, true, true),
        (0x0f, false, false),
        (0x1a, false, true),
    ] {
        let p = packet(op, &[], b"k", b"v", 0, 0);
        assert_eq!(ok(&p).command, Command::Concat { append, quiet });
    }
    for (op, quiet) in [(0x04, false), (0x14, true)] {
        assert_eq!(
            ok(&packet(op, &[], b"k", &[], 0, 0)).command,
            Command::Delete { quiet }
        );
    }
    let mut arith = Vec::new();
    arith.extend_from_slice(&5u64.to_be_bytes());
    arith.extend_from_slice(&10u64.to_be_bytes());
    arith.extend_from_slice(&u32::MAX.to_be_bytes());
    for (op, incr, quiet) in [
        (0x05, true, false),
        (0x15, true, true),
        (0x06, false, false),
        (0x16, false, true),
    ] {
        assert_eq!(
            ok(&packet(op, &arith, b"n", &[], 0, 0)).command,
            Command::Arith {
                incr,
                delta: 5,
                initial: 10,
                exptime: u32::MAX,
                quiet
            }
        );
    }
}

#[test]
fn control_family() {
    assert_eq!(
        ok(&packet(0x07, &[], &[], &[], 0, 0)).command,
        Command::Quit { quiet: false }
    );
    assert_eq!(
        ok(&packet(0x17, &[], &[], &[], 0, 0)).command,
        Command::Quit { quiet: true }
    );
    assert_eq!(
        ok(&packet(0x08, &[], &[], &[], 0, 0)).command,
        Command::Flush {
            delay: 0,
            quiet: false
        }
    );
    assert_eq!(
        ok(&packet(0x18, &30u32.to_be_bytes(), &[], &[], 0, 0)).command,
        Command::Flush {
            delay: 30,
            quiet: true
        }
    );
    assert_eq!(
        ok(&packet(0x0a, &[], &[], &[], 0, 0)).command,
        Command::NoOp
    );
    assert_eq!(
        ok(&packet(0x0b, &[], &[], &[], 0, 0)).command,
        Command::Version
    );
    assert_eq!(
        ok(&packet(0x10, &[], &[], &[], 0, 0)).command,
        Command::Stat
    );
    assert_eq!(
        ok(&packet(0x10, &[], b"settings", &[], 0, 0)).key,
        b"settings"
    );
    assert_eq!(
        ok(&packet(0x1b, &3u32.to_be_bytes(), &[], &[], 0, 0)).command,
        Command::Verbosity { level: 3 }
    );
    assert_eq!(
        ok(&packet(0x20, &[], &[], &[], 0, 0)).command,
        Command::SaslListMechs
    );
    let auth_packet = packet(0x21, &[], b"PLAIN", b"\0user\0pass", 0, 0);
    let auth = ok(&auth_packet);
    assert_eq!(
        (auth.command, auth.key, auth.value),
        (Command::SaslAuth, &b"PLAIN"[..], &b"\0user\0pass"[..])
    );
    assert_eq!(
        ok(&packet(0x22, &[], b"PLAIN", b"x", 0, 0)).command,
        Command::SaslStep
    );
}

#[test]
fn incomplete_packets_wait() {
    let p = packet(0x01, &[0; 8], b"key", b"value", 0, 0);
    for cut in 0..p.len() {
        assert_eq!(parse(&p[..cut], &Limits::default()), Ok(None), "cut {cut}");
    }
}

#[test]
fn bad_magic_closes_silently() {
    let mut p = packet(0x00, &[], b"k", &[], 0, 0);
    p[0] = 0x81;
    let e = err(&p);
    assert_eq!(
        (e.kind, e.recovery),
        (ErrorKind::BinaryBadMagic, Recovery::Close)
    );
    assert_eq!(reply_of(&e), b"");
    // Detected from the first byte alone.
    assert_eq!(err(b"g").recovery, Recovery::Close);
}

#[test]
fn shapes_that_do_not_fit_the_opcode_are_invalid_and_close() {
    let cases = [
        packet(0x00, &[0; 4], b"k", &[], 1, 0),     // get with extras
        packet(0x00, &[], &[], &[], 1, 0),          // get without key
        packet(0x00, &[], b"k", b"v", 1, 0),        // get with value
        packet(0x01, &[0; 4], b"k", b"v", 1, 0),    // set with short extras
        packet(0x01, &[0; 8], &[], b"v", 1, 0),     // set without key
        packet(0x05, &[0; 8], b"k", &[], 1, 0),     // incr with short extras
        packet(0x0a, &[], b"k", &[], 1, 0),         // noop with key
        packet(0x08, &[0; 2], &[], &[], 1, 0),      // flush with odd extras
        packet(0x1c, &[], b"k", &[], 1, 0),         // touch without exptime
        packet(0x00, &[], &[b'k'; 251], &[], 1, 0), // key too long
    ];
    for p in &cases {
        let e = err(p);
        assert_eq!(e.recovery, Recovery::Close, "{p:?}");
        let mut expected = Vec::new();
        encode_error(&mut expected, p[1], Status::InvalidArguments, 1);
        assert_eq!(reply_of(&e), expected);
    }
    // Declared extras + key longer than the body.
    let mut p = packet(0x00, &[], b"key", &[], 1, 0);
    p[8..12].copy_from_slice(&2u32.to_be_bytes());
    assert_eq!(err(&p).recovery, Recovery::Close);
}

#[test]
fn unknown_opcode_is_answered_and_skipped() {
    let p = packet(0x55, &[], b"k", b"vv", 9, 0);
    let e = err(&p);
    assert_eq!(e.recovery, Recovery::Skip(p.len()));
    let reply = reply_of(&e);
    let h = Header::decode(reply[..24].try_into().unwrap());
    assert_eq!(
        (h.magic, h.opcode, h.vbucket_or_status, h.opaque),
        (0x81, 0x55, 0x0081, 9)
    );
    assert_eq!(&reply[24..], b"Unknown command");
}

#[test]
fn flush_is_refused_when_disabled() {
    let limits = Limits {
        flush_enabled: false,
        ..Limits::default()
    };
    for (opcode, extras) in [(0x08u8, &[][..]), (0x18, &[0, 0, 0, 5][..])] {
        let p = packet(opcode, extras, b"", b"", 7, 0);
        let e = parse(&p, &limits).unwrap_err();
        assert_eq!(e.recovery, Recovery::Skip(p.len()));
        assert!(e.is_refused_flush());
        // Even the quiet flush gets memcached's auth error.
        let reply = reply_of(&e);
        assert_eq!(&reply[..2], &[0x81, opcode]);
        assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 0x20);
        assert_eq!(&reply[12..16], &7u32.to_be_bytes());
        assert_eq!(&reply[24..], b"Auth failure.");
    }
    assert!(
        parse(&packet(0x08, &[], b"", b"", 7, 0), &Limits::default())
            .unwrap()
            .is_some()
    );
    assert!(!err(&packet(0x55, &[], b"", b"", 0, 0)).is_refused_flush());
}

#[test]
fn too_large_values_are_refused_before_they_arrive() {
    let limits = Limits {
        max_value_len: 4,
        ..Limits::default()
    };
    let p = packet(0x01, &[0; 8], b"k", b"12345", 3, 0);
    // A set names the key whose old value must go: wait for the key only,
    // then refuse, and skip the value later.
    assert_eq!(parse(&p[..24 + 8], &limits), Ok(None));
    let e = parse(&p[..24 + 8 + 1], &limits).unwrap_err();
    assert_eq!(e.recovery, Recovery::Skip(p.len()));
    let mut scratch = [0; 250];
    assert!(e.is_too_large());
    let stale = e.stale_key.expect("a set unlinks its key");
    assert_eq!(stale.key(&p, &mut scratch), Some(&b"k"[..]));
    assert_eq!(
        e.kind,
        ErrorKind::Binary {
            status: Status::TooLarge,
            opcode: 0x01,
            opaque: 3
        }
    );
    assert_eq!(&reply_of(&e)[24..], b"Too large.");
    // A 4 GiB declaration costs nothing either.
    let mut huge = packet(0x01, &[0; 8], b"k", &[], 0, 0);
    huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = parse(&huge[..24 + 8 + 1], &limits).unwrap_err();
    assert_eq!(e.recovery, Recovery::Skip(24 + u32::MAX as usize));
    // Other stores are refused on the header alone and unlink nothing.
    let add = packet(0x02, &[0; 8], b"k", b"12345", 3, 0);
    let e = parse(&add[..24], &limits).unwrap_err();
    assert_eq!((e.recovery, e.stale_key), (Recovery::Skip(add.len()), None));
}

#[test]
fn responses_are_memcached_bytes() {
    let mut out = Vec::new();
    encode_response(
        &mut out,
        &Response {
            opcode: 0x0c,
            status: Status::NoError,
            opaque: 0x01020304,
            cas: 5,
            extras: &7u32.to_be_bytes(),
            key: b"key",
            value: b"val",
        },
    );
    let mut expected = vec![
        0x81, 0x0c, 0, 3, 4, 0, 0, 0, 0, 0, 0, 10, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 5,
    ];
    expected.extend_from_slice(&[0, 0, 0, 7]);
    expected.extend_from_slice(b"keyval");
    assert_eq!(out, expected);

    for (status, code, message) in [
        (Status::KeyNotFound, 1u16, &b"Not found"[..]),
        (Status::KeyExists, 2, b"Data exists for key."),
        (Status::TooLarge, 3, b"Too large."),
        (Status::InvalidArguments, 4, b"Invalid arguments"),
        (Status::NotStored, 5, b"Not stored."),
        (
            Status::NonNumeric,
            6,
            b"Non-numeric server-side value for incr or decr",
        ),
        (Status::AuthError, 0x20, b"Auth failure."),
        (Status::UnknownCommand, 0x81, b"Unknown command"),
        (Status::OutOfMemory, 0x82, b"Out of memory"),
        (Status::TemporaryFailure, 0x86, b"Temporary failure"),
    ] {
        let mut out = Vec::new();
        encode_error(&mut out, 0x00, status, 0);
        let h = Header::decode(out[..24].try_into().unwrap());
        assert_eq!(h.vbucket_or_status, code);
        assert_eq!(h.body_len as usize, message.len());
        assert_eq!(&out[24..], message);
    }
}

#[test]
fn requests_encode_back_to_the_same_bytes() {
    let packets = [
        packet(0x01, &[0, 0, 0, 1, 0, 0, 0, 2], b"k", b"v", 3, 4),
        packet(0x05, &[0; 20], b"n", &[], 0, 0),
        packet(0x1d, &[0, 0, 0, 9], b"k", &[], 0, 0),
        packet(0x18, &[0, 0, 0, 9], &[], &[], 0, 0),
        packet(0x1b, &[0, 0, 0, 1], &[], &[], 0, 0),
        packet(0x0d, &[], b"k", &[], 0, 0),
        packet(0x21, &[], b"PLAIN", b"\0a\0b", 0, 0),
    ];
    for p in &packets {
        let mut out = Vec::new();
        ok(p).encode(&mut out);
        assert_eq!(&out, p);
    }
}

#[test]
fn values_over_the_room_left_are_refused_as_out_of_memory() {
    let limits = Limits {
        value_room: 4,
        ..Limits::default()
    };
    let p = packet(0x01, &[0; 8], b"k", b"12345", 9, 0);
    let e = parse(&p[..24 + 8 + 1], &limits).unwrap_err();
    assert_eq!(e.recovery, Recovery::Skip(p.len()));
    assert!(e.is_out_of_memory());
    assert!(!e.is_too_large());
    assert!(e.stale_key.is_some(), "a refused set still unlinks its key");
    assert_eq!(
        u16::from_be_bytes([reply_of(&e)[6], reply_of(&e)[7]]),
        Status::OutOfMemory as u16
    );
    assert_eq!(&reply_of(&e)[24..], b"Out of memory");
    // A value that fits the room is parsed as usual.
    let fits = packet(0x01, &[0; 8], b"k", b"1234", 9, 0);
    assert!(parse(&fits, &limits).unwrap().is_some());
}

#[test]
fn request_len_is_known_once_the_header_is() {
    use crate::binary::request_len;
    let p = packet(0x01, &[0; 8], b"k", b"12345", 3, 0);
    assert_eq!(request_len(&p[..23]), None);
    assert_eq!(request_len(&p[..24]), Some(p.len()));
    assert_eq!(
        crate::request_len(crate::Protocol::Binary, &p),
        Some(p.len())
    );
    assert_eq!(
        crate::request_len(crate::Protocol::Text, b"set k 0 0 1\r\n"),
        Some(16)
    );
}
