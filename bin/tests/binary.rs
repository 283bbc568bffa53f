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

/// The cas a table row sends.
#[derive(Clone, Copy)]
enum CasSent {
    /// None.
    Zero,
    /// The cas of the last response that carried one.
    Last,
    /// One past it: a cas that cannot match.
    Stale,
}

/// The cas a table row expects back.
#[derive(Clone, Copy, Debug)]
enum CasBack {
    /// None (errors, deletes, control commands).
    Zero,
    /// A new one (every write).
    New,
    /// The one the last write gave the item (reads, touches).
    Same,
}

/// One row of a wire table: a request and what memcached answers it.
struct Row {
    opcode: Opcode,
    command: Command,
    key: &'static [u8],
    value: &'static [u8],
    cas: CasSent,
    status: u16,
    extras: Vec<u8>,
    key_back: &'static [u8],
    value_back: Vec<u8>,
    cas_back: CasBack,
}

impl Row {
    fn new(opcode: Opcode, command: Command, key: &'static [u8]) -> Row {
        Row {
            opcode,
            command,
            key,
            value: b"",
            cas: CasSent::Zero,
            status: 0,
            extras: vec![],
            key_back: b"",
            value_back: vec![],
            cas_back: CasBack::Zero,
        }
    }
    fn value(mut self, value: &'static [u8]) -> Row {
        self.value = value;
        self
    }
    fn cas(mut self, cas: CasSent) -> Row {
        self.cas = cas;
        self
    }
    /// Expects `status` with memcached's text for it as the body.
    fn fails(mut self, status: u16, message: &[u8]) -> Row {
        self.status = status;
        self.value_back = message.to_vec();
        self
    }
    /// Expects success with the item's cas (`new` after a write).
    fn ok(mut self, cas_back: CasBack) -> Row {
        self.cas_back = cas_back;
        self
    }
    /// Expects a hit: the item's flags, value and unchanged cas.
    fn hit(mut self, flags: u32, value: &[u8]) -> Row {
        self.extras = flags.to_be_bytes().to_vec();
        self.value_back = value.to_vec();
        self.cas_back = CasBack::Same;
        self
    }
    /// The hit carries the key (GetK, GatK).
    fn with_key(mut self) -> Row {
        self.key_back = self.key;
        self
    }
    /// Expects an arithmetic result (a new cas).
    fn number(mut self, n: u64) -> Row {
        self.value_back = n.to_be_bytes().to_vec();
        self.cas_back = CasBack::New;
        self
    }
}

fn store(mode: StoreMode, flags: u32) -> Command {
    Command::Store {
        mode,
        flags,
        exptime: 0,
        quiet: false,
    }
}

fn concat(append: bool) -> Command {
    Command::Concat {
        append,
        quiet: false,
    }
}

fn arith(incr: bool, delta: u64, initial: u64, exptime: u32) -> Command {
    Command::Arith {
        incr,
        delta,
        initial,
        exptime,
        quiet: false,
    }
}

const NOT_FOUND: &[u8] = b"Not found";
const EXISTS: &[u8] = b"Data exists for key.";
const NOT_STORED: &[u8] = b"Not stored.";
const UNKNOWN: &[u8] = b"Unknown command";

/// Every keyed command and the control commands, as memcached 1.6.18
/// answers them (statuses and bodies; each row's opaque is its index).
fn keyed_and_control_table() -> Vec<Row> {
    use Opcode as O;
    let get = |key| Row::new(O::Get, GET, key);
    let getk = Command::Get {
        quiet: false,
        with_key: true,
    };
    let gatk = Command::GetAndTouch {
        exptime: 100,
        quiet: false,
        with_key: true,
    };
    let touch = Command::Touch { exptime: 100 };
    let delete = Command::Delete { quiet: false };
    let flush = Command::Flush {
        delay: 0,
        quiet: false,
    };
    vec![
        Row::new(O::Set, store(StoreMode::Set, 0xdead_beef), b"foo")
            .value(b"bar")
            .ok(CasBack::New),
        get(b"foo").hit(0xdead_beef, b"bar"),
        Row::new(O::GetK, getk, b"foo")
            .hit(0xdead_beef, b"bar")
            .with_key(),
        get(b"nothing").fails(1, NOT_FOUND),
        // cas: a stale one, then the current one.
        Row::new(O::Set, store(StoreMode::Set, 0), b"foo")
            .value(b"x")
            .cas(CasSent::Stale)
            .fails(2, EXISTS),
        Row::new(O::Set, store(StoreMode::Set, 0), b"foo")
            .value(b"y")
            .cas(CasSent::Last)
            .ok(CasBack::New),
        Row::new(O::Set, store(StoreMode::Set, 0), b"nothing")
            .value(b"y")
            .cas(CasSent::Stale)
            .fails(1, NOT_FOUND),
        Row::new(O::Add, store(StoreMode::Add, 0), b"foo")
            .value(b"z")
            .fails(2, EXISTS),
        // memcached: an add with a cas is a cas command (it replaces a
        // present key whose cas matches; a missing key is not found).
        Row::new(O::Add, store(StoreMode::Add, 0), b"foo")
            .value(b"y")
            .cas(CasSent::Last)
            .ok(CasBack::New),
        Row::new(O::Add, store(StoreMode::Add, 0), b"nothing")
            .value(b"y")
            .cas(CasSent::Stale)
            .fails(1, NOT_FOUND),
        Row::new(O::Replace, store(StoreMode::Replace, 0), b"nothing")
            .value(b"z")
            .fails(1, NOT_FOUND),
        Row::new(O::Append, concat(true), b"foo")
            .value(b">")
            .ok(CasBack::New),
        Row::new(O::Prepend, concat(false), b"foo")
            .value(b"<")
            .ok(CasBack::New),
        Row::new(O::Append, concat(true), b"nothing")
            .value(b">")
            .fails(5, NOT_STORED),
        get(b"foo").hit(0, b"<y>"),
        Row::new(O::Delete, delete, b"foo").ok(CasBack::Zero),
        Row::new(O::Delete, delete, b"foo").fails(1, NOT_FOUND),
        // incr/decr: no create (exptime all ones), create, add, floor at 0.
        Row::new(O::Increment, arith(true, 5, 100, 0xffff_ffff), b"n").fails(1, NOT_FOUND),
        Row::new(O::Increment, arith(true, 5, 100, 0), b"n").number(100),
        Row::new(O::Increment, arith(true, 5, 100, 0), b"n").number(105),
        Row::new(O::Decrement, arith(false, 1000, 0, 0), b"n").number(0),
        Row::new(O::Set, store(StoreMode::Set, 0), b"text")
            .value(b"abc")
            .ok(CasBack::New),
        Row::new(O::Increment, arith(true, 5, 0, 0), b"text")
            .fails(6, b"Non-numeric server-side value for incr or decr"),
        // A Touch hit carries the item's flags and cas, no value.
        Row::new(O::Touch, touch, b"text").hit(0, b""),
        Row::new(O::Touch, touch, b"nothing").fails(1, NOT_FOUND),
        Row::new(O::GatK, gatk, b"text").hit(0, b"abc").with_key(),
        // GetK and GatK misses carry the key and no message.
        Row::new(O::GatK, gatk, b"nothing").fails(1, b"").with_key(),
        Row::new(O::GetK, getk, b"nothing").fails(1, b"").with_key(),
        Row::new(O::NoOp, Command::NoOp, b""),
        // memcached 1.6.18 answers binary Verbosity "Unknown command".
        Row::new(O::Verbosity, Command::Verbosity { level: 1 }, b"").fails(0x81, UNKNOWN),
        // SASL is not configured: unknown command, as memcached without -S.
        Row::new(O::SaslListMechs, Command::SaslListMechs, b"").fails(0x81, UNKNOWN),
        Row::new(O::Flush, flush, b""),
        get(b"text").fails(1, NOT_FOUND),
    ]
}

/// Sends each row and checks its response: opcode, status, opaque, extras,
/// key, body and cas, as the row says.
fn run_table(c: &mut TcpStream, table: &[Row]) {
    let mut last_cas = 0;
    for (i, row) in table.iter().enumerate() {
        let cas = match row.cas {
            CasSent::Zero => 0,
            CasSent::Last => last_cas,
            CasSent::Stale => last_cas + 1,
        };
        send(
            c,
            row.opcode,
            row.command,
            row.key,
            row.value,
            cas,
            i as u32,
        );
        let r = read_resp(c);
        let what = format!(
            "row {i} ({:?} {:?})",
            row.opcode,
            String::from_utf8_lossy(row.key)
        );
        assert_eq!(
            (r.opcode, r.status, r.opaque),
            (row.opcode as u8, row.status, i as u32),
            "{what}"
        );
        assert_eq!(
            (r.extras.as_slice(), r.key.as_slice(), r.value.as_slice()),
            (
                row.extras.as_slice(),
                row.key_back,
                row.value_back.as_slice()
            ),
            "{what}"
        );
        match row.cas_back {
            CasBack::Zero => assert_eq!(r.cas, 0, "{what}: no cas"),
            CasBack::Same => assert_eq!(r.cas, last_cas, "{what}: the item's cas"),
            CasBack::New => {
                assert!(r.cas != 0 && r.cas != last_cas, "{what}: a new cas");
                last_cas = r.cas;
            }
        }
    }
}

/// The table against one core and against two (keys on either core).
#[test]
fn keyed_and_control_commands_on_one_core_and_on_several() {
    for threads in ["1", "2"] {
        let server = TestServer::start(&["--threads", threads]);
        let mut c = server.connect();
        run_table(&mut c, &keyed_and_control_table());
    }
}

#[test]
fn version_stats_and_quit() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    send(&mut c, Opcode::Version, Command::Version, b"", b"", 0, 3);
    let r = read_resp(&mut c);
    assert!(r.value.starts_with(b"1.6."), "{:?}", r.value);
    // Stat: one response per stat, then an empty one.
    let names: Vec<String> = stats(&mut c).into_iter().map(|(name, _)| name).collect();
    for name in ["pid", "uptime", "curr_items", "get_hits", "threads"] {
        assert!(names.iter().any(|n| n == name), "missing {name}");
    }
    assert_eq!(set(&mut c, b"k", b"v", 0, 0).status, 0);
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
