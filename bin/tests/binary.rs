//! The binary protocol over a real socket against a two-core server.

mod common;

use common::{keys_on, read_exact, TestServer};
use segcore_protocol::binary::{Command, Header, Opcode, Request, StoreMode, HEADER_LEN};
use std::io::Write;
use std::net::TcpStream;

/// A response as read off the wire.
#[derive(Debug, PartialEq)]
struct Resp {
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn read_resp(c: &mut TcpStream) -> Resp {
    let head = read_exact(c, HEADER_LEN);
    let h = Header::decode(head[..].try_into().unwrap());
    assert_eq!(h.magic, 0x81);
    let body = read_exact(c, h.body_len as usize);
    let (extras, rest) = body.split_at(usize::from(h.extras_len));
    let (key, value) = rest.split_at(usize::from(h.key_len));
    Resp {
        opcode: h.opcode,
        status: h.vbucket_or_status,
        opaque: h.opaque,
        cas: h.cas,
        extras: extras.to_vec(),
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn send(
    c: &mut TcpStream,
    opcode: Opcode,
    command: Command,
    key: &[u8],
    value: &[u8],
    cas: u64,
    opaque: u32,
) {
    let mut out = Vec::new();
    Request {
        opcode,
        command,
        opaque,
        cas,
        key,
        value,
    }
    .encode(&mut out);
    c.write_all(&out).unwrap();
}

fn set(c: &mut TcpStream, key: &[u8], value: &[u8], flags: u32, cas: u64) -> Resp {
    let command = Command::Store {
        mode: StoreMode::Set,
        flags,
        exptime: 0,
        quiet: false,
    };
    send(c, Opcode::Set, command, key, value, cas, 1);
    read_resp(c)
}

/// A Flush (no delay), and its response.
fn flush(c: &mut TcpStream) -> Resp {
    let command = Command::Flush {
        delay: 0,
        quiet: false,
    };
    send(c, Opcode::Flush, command, b"", b"", 0, 0);
    read_resp(c)
}

/// Binary Stat with no key: one response per stat, then an empty one.
fn stats(c: &mut TcpStream) -> Vec<(String, Vec<u8>)> {
    stats_group(c, b"")
}

/// Binary Stat for `group` (the request's key).
fn stats_group(c: &mut TcpStream, group: &[u8]) -> Vec<(String, Vec<u8>)> {
    send(c, Opcode::Stat, Command::Stat, group, b"", 0, 0);
    let mut stats = Vec::new();
    loop {
        let r = read_resp(c);
        if r.key.is_empty() {
            return stats;
        }
        stats.push((String::from_utf8(r.key).unwrap(), r.value));
    }
}

const GET: Command = Command::Get {
    quiet: false,
    with_key: false,
};

#[test]
fn storage_and_retrieval() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let r = set(&mut c, b"foo", b"bar", 0xdeadbeef, 0);
    assert_eq!((r.opcode, r.status, r.opaque), (0x01, 0, 1));
    assert_ne!(r.cas, 0);
    let stored_cas = r.cas;

    send(&mut c, Opcode::Get, GET, b"foo", b"", 0, 7);
    let r = read_resp(&mut c);
    assert_eq!((r.status, r.opaque, r.cas), (0, 7, stored_cas));
    assert_eq!(
        (r.extras, r.key, r.value),
        (
            0xdeadbeefu32.to_be_bytes().to_vec(),
            vec![],
            b"bar".to_vec()
        )
    );

    send(
        &mut c,
        Opcode::GetK,
        Command::Get {
            quiet: false,
            with_key: true,
        },
        b"foo",
        b"",
        0,
        8,
    );
    let r = read_resp(&mut c);
    assert_eq!((r.key, r.value), (b"foo".to_vec(), b"bar".to_vec()));

    send(&mut c, Opcode::Get, GET, b"nothing", b"", 0, 9);
    let r = read_resp(&mut c);
    assert_eq!((r.status, r.opaque, r.value), (1, 9, b"Not found".to_vec()));

    // cas: wrong value, then right one.
    assert_eq!(set(&mut c, b"foo", b"x", 0, stored_cas + 1).status, 2);
    let r = set(&mut c, b"foo", b"y", 0, stored_cas);
    assert_eq!(r.status, 0);
    assert_ne!(r.cas, stored_cas);

    // add / replace.
    let add = Command::Store {
        mode: StoreMode::Add,
        flags: 0,
        exptime: 0,
        quiet: false,
    };
    send(&mut c, Opcode::Add, add, b"foo", b"z", 0, 0);
    assert_eq!(read_resp(&mut c).status, 2, "add on existing: key exists");
    let replace = Command::Store {
        mode: StoreMode::Replace,
        flags: 0,
        exptime: 0,
        quiet: false,
    };
    send(&mut c, Opcode::Replace, replace, b"nothing", b"z", 0, 0);
    assert_eq!(read_resp(&mut c).status, 1, "replace on missing: not found");

    // append / prepend.
    send(
        &mut c,
        Opcode::Append,
        Command::Concat {
            append: true,
            quiet: false,
        },
        b"foo",
        b">",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 0);
    send(
        &mut c,
        Opcode::Prepend,
        Command::Concat {
            append: false,
            quiet: false,
        },
        b"foo",
        b"<",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 0);
    send(
        &mut c,
        Opcode::Append,
        Command::Concat {
            append: true,
            quiet: false,
        },
        b"nothing",
        b">",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 5, "append on missing: not stored");
    send(&mut c, Opcode::Get, GET, b"foo", b"", 0, 0);
    assert_eq!(read_resp(&mut c).value, b"<y>");

    // delete.
    send(
        &mut c,
        Opcode::Delete,
        Command::Delete { quiet: false },
        b"foo",
        b"",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 0);
    send(
        &mut c,
        Opcode::Delete,
        Command::Delete { quiet: false },
        b"foo",
        b"",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 1);
}

#[test]
fn arithmetic_touch_and_control() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let incr = |initial, exptime| Command::Arith {
        incr: true,
        delta: 5,
        initial,
        exptime,
        quiet: false,
    };
    send(
        &mut c,
        Opcode::Increment,
        incr(100, 0xffff_ffff),
        b"n",
        b"",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 1, "no create: not found");
    send(&mut c, Opcode::Increment, incr(100, 0), b"n", b"", 0, 0);
    assert_eq!(
        read_resp(&mut c).value,
        100u64.to_be_bytes(),
        "created with the initial value"
    );
    send(&mut c, Opcode::Increment, incr(100, 0), b"n", b"", 0, 0);
    assert_eq!(read_resp(&mut c).value, 105u64.to_be_bytes());
    let decr = Command::Arith {
        incr: false,
        delta: 1000,
        initial: 0,
        exptime: 0,
        quiet: false,
    };
    send(&mut c, Opcode::Decrement, decr, b"n", b"", 0, 0);
    assert_eq!(read_resp(&mut c).value, 0u64.to_be_bytes());
    set(&mut c, b"text", b"abc", 0, 0);
    send(&mut c, Opcode::Increment, incr(0, 0), b"text", b"", 0, 0);
    let r = read_resp(&mut c);
    assert_eq!(
        (r.status, r.value),
        (
            6,
            b"Non-numeric server-side value for incr or decr".to_vec()
        )
    );

    send(
        &mut c,
        Opcode::Touch,
        Command::Touch { exptime: 100 },
        b"text",
        b"",
        0,
        0,
    );
    // As memcached: a Touch hit carries the item's flags and cas, no value.
    let r = read_resp(&mut c);
    assert_eq!((r.status, r.extras, r.value), (0, vec![0; 4], vec![]));
    assert_ne!(r.cas, 0);
    send(
        &mut c,
        Opcode::Touch,
        Command::Touch { exptime: 100 },
        b"nothing",
        b"",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 1);
    let gat = Command::GetAndTouch {
        exptime: 100,
        quiet: false,
        with_key: true,
    };
    send(&mut c, Opcode::GatK, gat, b"text", b"", 0, 0);
    let r = read_resp(&mut c);
    assert_eq!(
        (r.status, r.key, r.value),
        (0, b"text".to_vec(), b"abc".to_vec())
    );

    send(&mut c, Opcode::Version, Command::Version, b"", b"", 0, 3);
    let r = read_resp(&mut c);
    assert!(r.value.starts_with(b"1.6."), "{:?}", r.value);
    send(&mut c, Opcode::NoOp, Command::NoOp, b"", b"", 0, 4);
    assert_eq!(read_resp(&mut c).opaque, 4);
    send(
        &mut c,
        Opcode::Verbosity,
        Command::Verbosity { level: 1 },
        b"",
        b"",
        0,
        0,
    );
    // memcached 1.6.18 answers binary Verbosity "Unknown command".
    assert_eq!(read_resp(&mut c).status, 0x81);
    assert_eq!(flush(&mut c).status, 0);
    send(&mut c, Opcode::Get, GET, b"text", b"", 0, 0);
    assert_eq!(read_resp(&mut c).status, 1, "flushed");

    // Stat: one response per stat, then an empty one.
    let names: Vec<String> = stats(&mut c).into_iter().map(|(name, _)| name).collect();
    for name in ["pid", "uptime", "curr_items", "get_hits", "threads"] {
        assert!(names.iter().any(|n| n == name), "missing {name}");
    }
    // Stat "reset": the counters go to zero; the answer is the empty
    // terminating stat alone.
    send(&mut c, Opcode::Stat, Command::Stat, b"reset", b"", 0, 5);
    let r = read_resp(&mut c);
    assert_eq!(
        (r.status, r.opaque, r.key.len(), r.value.len()),
        (0, 5, 0, 0)
    );
    for (name, value) in &stats(&mut c) {
        if ["get_hits", "get_misses", "cmd_set", "total_items"].contains(&name.as_str()) {
            assert_eq!(value.as_slice(), b"0", "{name} after reset");
        }
    }
    // SASL is not configured: unknown command, like memcached without -S.
    send(
        &mut c,
        Opcode::SaslListMechs,
        Command::SaslListMechs,
        b"",
        b"",
        0,
        0,
    );
    assert_eq!(read_resp(&mut c).status, 0x81);
    // Quit answers, then closes.
    send(
        &mut c,
        Opcode::Quit,
        Command::Quit { quiet: false },
        b"",
        b"",
        0,
        5,
    );
    assert_eq!(read_resp(&mut c).opaque, 5);
    assert!(common::is_closed(&mut c));
}

#[test]
fn quiet_pipeline_with_noop_spans_both_shards() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let keys: Vec<String> = keys_on(0, 20, "q0-")
        .into_iter()
        .chain(keys_on(1, 20, "q1-"))
        .collect();
    // Quiet sets answer nothing.
    let setq = Command::Store {
        mode: StoreMode::Set,
        flags: 3,
        exptime: 0,
        quiet: true,
    };
    for (i, key) in keys.iter().enumerate() {
        if i % 3 != 0 {
            send(
                &mut c,
                Opcode::SetQ,
                setq,
                key.as_bytes(),
                key.as_bytes(),
                0,
                i as u32,
            );
        }
    }
    // GetKQ for every key: only hits answer, in order; NoOp ends the run.
    let getkq = Command::Get {
        quiet: true,
        with_key: true,
    };
    for (i, key) in keys.iter().enumerate() {
        send(
            &mut c,
            Opcode::GetKQ,
            getkq,
            key.as_bytes(),
            b"",
            0,
            i as u32,
        );
    }
    send(&mut c, Opcode::NoOp, Command::NoOp, b"", b"", 0, 999);
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
        let r = read_resp(&mut c);
        assert_eq!((r.opaque, r.status), (i as u32, 0));
        assert_eq!(
            (r.key.as_slice(), r.value.as_slice()),
            (key.as_bytes(), key.as_bytes())
        );
        assert_eq!(r.extras, 3u32.to_be_bytes());
    }
    let end = read_resp(&mut c);
    assert_eq!((end.opcode, end.opaque), (0x0a, 999));
}

#[test]
fn bad_binary_input() {
    let server = TestServer::start(&[]);
    // Unknown opcode: answered, body skipped, connection goes on.
    let mut c = server.connect();
    let mut packet = Vec::new();
    Header {
        magic: 0x80,
        opcode: 0x55,
        key_len: 1,
        body_len: 3,
        opaque: 11,
        ..Header::default()
    }
    .encode(&mut packet);
    packet.extend_from_slice(b"kvv");
    c.write_all(&packet).unwrap();
    let r = read_resp(&mut c);
    assert_eq!(
        (r.status, r.opaque, r.value),
        (0x81, 11, b"Unknown command".to_vec())
    );
    // Too large: answered once the key is in (a set unlinks it, so it must
    // be known; memcached reads extras and key first too), the value
    // skipped as it arrives.
    let mut head = Vec::new();
    let body = 8 + 1 + 3_000_000;
    Header {
        magic: 0x80,
        opcode: 0x01,
        key_len: 1,
        extras_len: 8,
        body_len: body,
        opaque: 12,
        ..Header::default()
    }
    .encode(&mut head);
    head.extend_from_slice(&[0; 8]);
    head.push(b'k');
    c.write_all(&head).unwrap();
    let r = read_resp(&mut c);
    assert_eq!((r.status, r.opaque), (3, 12));
    let junk = vec![0u8; body as usize - 9];
    c.write_all(&junk).unwrap();
    assert_eq!(set(&mut c, b"after", b"ok", 0, 0).status, 0);
    // Invalid lengths: "invalid arguments", then closed.
    let mut bad = Vec::new();
    Header {
        magic: 0x80,
        opcode: 0x00,
        extras_len: 4,
        key_len: 1,
        body_len: 5,
        opaque: 13,
        ..Header::default()
    }
    .encode(&mut bad);
    bad.extend_from_slice(b"xxxxk");
    c.write_all(&bad).unwrap();
    let r = read_resp(&mut c);
    assert_eq!((r.status, r.opaque), (4, 13));
    assert!(common::is_closed(&mut c));
    // A bad magic byte mid-stream closes silently.
    let mut d = server.connect();
    assert_eq!(set(&mut d, b"k", b"v", 0, 0).status, 0);
    d.write_all(&[0x81; 24]).unwrap();
    assert!(common::is_closed(&mut d));
}

/// memcached unlinks the old value of a `set` refused as too large, on
/// whichever core owns the key.
#[test]
fn refused_set_unlinks_the_old_value() {
    let server = TestServer::start(&["-I", "1k"]);
    let mut c = server.connect();
    for core in 0..2 {
        let key = keys_on(core, 1, "binary-big")[0].clone();
        assert_eq!(set(&mut c, key.as_bytes(), b"old", 0, 0).status, 0);
        let r = set(&mut c, key.as_bytes(), &[b'x'; 2048], 0, 0);
        assert_eq!((r.status, r.value.as_slice()), (0x03, &b"Too large."[..]));
        send(&mut c, Opcode::Get, GET, key.as_bytes(), b"", 0, 2);
        assert_eq!(
            read_resp(&mut c).status,
            0x01,
            "core {core}: old value gone"
        );
    }
}

/// Stat "detail on|off|dump" as memcached answers them over binary: the
/// switches get the empty terminating stat alone, the dump one stat named
/// `detailed` holding the text dump; anything else after "detail" is
/// Not found. binary.t turns detail on first thing.
#[test]
fn stat_detail_over_binary() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    assert!(stats_group(&mut c, b"detail on").is_empty());
    for key in keys_on(0, 1, "bp:")
        .iter()
        .chain(keys_on(1, 1, "bp:").iter())
    {
        assert_eq!(set(&mut c, key.as_bytes(), b"v", 0, 0).status, 0);
        send(&mut c, Opcode::Get, GET, key.as_bytes(), b"", 0, 0);
        assert_eq!(read_resp(&mut c).status, 0);
    }
    send(&mut c, Opcode::Get, GET, b"bp:missing", b"", 0, 0);
    assert_eq!(read_resp(&mut c).status, 1);
    let dump = stats_group(&mut c, b"detail dump");
    assert_eq!(
        dump,
        vec![(
            "detailed".to_string(),
            b"PREFIX bp get 3 hit 2 set 2 del 0\r\nEND\r\n".to_vec()
        )]
    );
    assert!(stats_group(&mut c, b"detail off").is_empty());
    send(
        &mut c,
        Opcode::Stat,
        Command::Stat,
        b"detail bogus",
        b"",
        0,
        9,
    );
    let r = read_resp(&mut c);
    assert_eq!((r.status, r.opaque), (1, 9));
    // flush counts once, though both cores run it.
    assert_eq!(flush(&mut c).status, 0);
    let flushes = stats(&mut c)
        .into_iter()
        .find(|(name, _)| name == "cmd_flush")
        .map(|(_, value)| value);
    assert_eq!(flushes.as_deref(), Some(&b"1"[..]));
}

/// With `-F` a binary Flush (quiet or not) gets memcached's auth error and
/// the items stay.
#[test]
fn flush_disabled_over_binary() {
    let server = TestServer::start(&["-F"]);
    let mut c = server.connect();
    assert_eq!(set(&mut c, b"kept", b"v", 0, 0).status, 0);
    let r = flush(&mut c);
    assert_eq!(
        (r.status, r.value.as_slice()),
        (0x20, &b"Auth failure."[..])
    );
    send(&mut c, Opcode::Get, GET, b"kept", b"", 0, 0);
    assert_eq!(read_resp(&mut c).value, b"v");
}
