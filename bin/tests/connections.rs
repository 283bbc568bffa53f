//! What a connection costs and leaves behind: churn returns every piece of
//! bookkeeping to its baseline, idle connections hold no buffers, idle
//! ones are closed after `idle_timeout`, and large values being received
//! stay within the per-core budget (memcached's out-of-memory replies past
//! it).

mod common;

use common::{exchange, is_closed, stat, stats, TestServer};
use segcore_protocol::binary::{Command, Header, Opcode, Request, StoreMode, HEADER_LEN};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The sum over cores of `core:N:<name>` in `stats cores`.
fn per_core_sum(c: &mut TcpStream, name: &str) -> u64 {
    common::per_core(c, name).iter().sum()
}

/// Waits until `f` returns `want` (the server counts a close when it sees
/// it, asynchronously).
#[track_caller]
fn eventually(want: u64, mut f: impl FnMut() -> u64) {
    common::eventually(|| {
        let got = f();
        (got == want)
            .then_some(())
            .ok_or_else(|| format!("stuck at {got}, expected {want}"))
    })
}

#[test]
fn churn_leaves_no_bookkeeping_behind() {
    let server = TestServer::start(&["-c", "64"]);
    let mut watch = server.connect();
    eventually(1, || stat(&stats(&mut watch, ""), "curr_connections"));
    exchange(&mut watch, b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    let waiters = per_core_sum(&mut watch, "stop_waiters");
    let lent = per_core_sum(&mut watch, "buffers_lent");
    for i in 0..10_000 {
        let mut c = server.connect();
        if i % 2 == 0 {
            exchange(&mut c, b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
        }
        // Half leave without a word: a close with nothing sent.
    }
    eventually(1, || stat(&stats(&mut watch, ""), "curr_connections"));
    let after = stats(&mut watch, "");
    assert_eq!(stat(&after, "total_connections"), 10_002);
    assert_eq!(stat(&after, "rejected_connections"), 0);
    assert!(
        stat(&after, "connection_structures") <= 64,
        "connection slots are reused: {}",
        stat(&after, "connection_structures")
    );
    assert_eq!(per_core_sum(&mut watch, "stop_waiters"), waiters);
    assert_eq!(per_core_sum(&mut watch, "buffers_lent"), lent);
    assert_eq!(per_core_sum(&mut watch, "large_request_bytes"), 0);
    let conns = stats(&mut watch, "conns");
    let clients = conns
        .iter()
        .filter(|(k, _)| k.ends_with(":listen_addr"))
        .count();
    assert_eq!(clients, 1, "stats conns lists only the open connection");
}

#[test]
fn idle_connections_hold_no_buffers() {
    let server = TestServer::start(&["-c", "512"]);
    let mut watch = server.connect();
    eventually(1, || stat(&stats(&mut watch, ""), "curr_connections"));
    let lent = per_core_sum(&mut watch, "buffers_lent");
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut c = server.connect();
        let set = format!("set k{i} 0 0 2\r\nhi\r\n");
        exchange(&mut c, set.as_bytes(), b"STORED\r\n");
        idle.push(c);
    }
    let s = stats(&mut watch, "");
    assert_eq!(stat(&s, "curr_connections"), 301);
    assert_eq!(
        per_core_sum(&mut watch, "buffers_lent"),
        lent,
        "300 idle connections hold no buffer"
    );
    // A connection holding half a request keeps its read buffer (and only
    // it) until the rest comes.
    idle[0].write_all(b"get k0").unwrap();
    eventually(lent + 1, || per_core_sum(&mut watch, "buffers_lent"));
    idle[0].write_all(b"\r\n").unwrap();
    common::read_until(&mut idle[0], b"END\r\n");
    eventually(lent, || per_core_sum(&mut watch, "buffers_lent"));
}

#[test]
fn idle_connections_are_closed_after_the_timeout() {
    let server = TestServer::start(&["-o", "idle_timeout=1"]);
    let mut busy = server.connect();
    let mut quiet = server.connect();
    exchange(&mut quiet, b"version\r\n", b"VERSION ");
    let settings = stats(&mut busy, "settings");
    assert_eq!(stat(&settings, "idle_timeout"), 1);
    // The busy one sends a command every 200 ms; the quiet one nothing.
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        exchange(&mut busy, b"mn\r\n", b"MN\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    quiet
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = [0u8; 64];
    let _ = quiet.read(&mut rest); // the rest of the version line
    assert!(is_closed(&mut quiet), "the quiet connection was closed");
    assert_eq!(stat(&stats(&mut busy, ""), "idle_kicks"), 1);
    // memcached's stat is cleared by `stats reset`.
    exchange(&mut busy, b"stats reset\r\n", b"RESET\r\n");
    assert_eq!(stat(&stats(&mut busy, ""), "idle_kicks"), 0);
}

/// A value that needs more buffer than the core may lend is refused as
/// memcached refuses a set it cannot allocate; the value is skipped and
/// the connection goes on. A multi-get line that cannot fit closes the
/// connection with memcached's "out of memory reading request".
#[test]
fn values_past_the_large_request_budget_are_refused() {
    let server = TestServer::start(&["--large-request-memory", "0"]);
    let mut c = server.connect();
    exchange(&mut c, b"set big 0 0 2\r\nok\r\n", b"STORED\r\n");
    let mut set = b"set big 0 0 100000\r\n".to_vec();
    set.extend_from_slice(&vec![b'x'; 100_000]);
    set.extend_from_slice(b"\r\n");
    exchange(
        &mut c,
        &set,
        b"SERVER_ERROR out of memory storing object\r\n",
    );
    // As in memcached, the refused set's old value is gone.
    exchange(&mut c, b"get big\r\n", b"END\r\n");
    // Values that fit the pooled buffer are served as usual.
    let mut small = b"set small 0 0 8000\r\n".to_vec();
    small.extend_from_slice(&[b'y'; 8000]);
    small.extend_from_slice(b"\r\n");
    exchange(&mut c, &small, b"STORED\r\n");
    let s = stats(&mut c, "");
    assert_eq!(stat(&s, "store_no_memory"), 1);
    assert_eq!(stat(&s, "read_buf_oom"), 1);
    assert_eq!(stat(&stats(&mut c, "settings"), "large_request_limit"), 0);

    // Binary: status 0x82, "Out of memory", and the connection goes on.
    let mut b = server.connect();
    let mut packet = Vec::new();
    let value = vec![b'z'; 50_000];
    let request = |opcode, command, value: &[u8], out: &mut Vec<u8>| {
        Request {
            opcode,
            command,
            opaque: 7,
            cas: 0,
            key: b"bin",
            value,
        }
        .encode(out)
    };
    let store = Command::Store {
        mode: StoreMode::Set,
        flags: 0,
        exptime: 0,
        quiet: false,
    };
    request(Opcode::Set, store, &value, &mut packet);
    request(Opcode::NoOp, Command::NoOp, &[], &mut packet);
    b.write_all(&packet).unwrap();
    let head = common::read_exact(&mut b, HEADER_LEN);
    let h = Header::decode(head[..].try_into().unwrap());
    assert_eq!((h.opcode, h.vbucket_or_status, h.opaque), (0x01, 0x82, 7));
    assert_eq!(
        common::read_exact(&mut b, h.body_len as usize),
        b"Out of memory"
    );
    let noop = common::read_exact(&mut b, HEADER_LEN);
    assert_eq!(noop[1], 0x0a, "the next request is served");

    // A multi-get line longer than the pooled buffer.
    let mut get = b"get".to_vec();
    for i in 0..3000 {
        get.extend_from_slice(format!(" key{i}").as_bytes());
    }
    get.extend_from_slice(b"\r\n");
    let mut g = server.connect();
    g.write_all(&get).unwrap();
    let reply = common::read_until(&mut g, b"\r\n");
    assert_eq!(reply, b"SERVER_ERROR out of memory reading request\r\n");
    assert!(is_closed(&mut g));
}

/// Half-sent large values hold at most the budget: once it is spent, more
/// of them are refused; once they complete, the budget is free again.
#[test]
fn half_sent_values_are_bounded_by_the_budget() {
    let server = TestServer::start(&["--large-request-memory", "256k"]);
    let value = vec![b'v'; 200_000];
    let mut holders = Vec::new();
    let mut refused = 0;
    for i in 0..8 {
        let mut c = server.connect();
        c.write_all(format!("set half{i} 0 0 200000\r\n").as_bytes())
            .unwrap();
        // Everything but the last byte and the terminator.
        c.write_all(&value[..199_999]).unwrap();
        holders.push(c);
    }
    let mut watch = server.connect();
    // Each core lends at most its budget, whichever core holds what.
    let held = per_core_sum(&mut watch, "large_request_bytes");
    assert!(held <= 2 * (256 << 10), "{held} bytes held");
    for c in &mut holders {
        c.write_all(b"v\r\n").unwrap();
        let reply = common::read_until(c, b"\r\n");
        match &reply[..] {
            b"STORED\r\n" => {}
            b"SERVER_ERROR out of memory storing object\r\n" => refused += 1,
            other => panic!("{:?}", String::from_utf8_lossy(other)),
        }
    }
    // Two cores can each take one 200 KB value at a time, no more. Buffers
    // grow as bytes arrive, so two values racing on one core may both run
    // out part-way: at least six are refused, and possibly all eight.
    assert!((6..=8).contains(&refused), "{refused} refused");
    eventually(0, || per_core_sum(&mut watch, "large_request_bytes"));
    // With the budget free again, a large value goes through.
    let mut set = b"set again 0 0 200000\r\n".to_vec();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    exchange(&mut watch, &set, b"STORED\r\n");
}

/// Values up to the item limit still work through the pooled buffers: the
/// read buffer grows for them and shrinks back, replies larger than a
/// pooled buffer are written whole.
#[test]
fn large_values_round_trip() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let value: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut pipeline = Vec::new();
    for key in ["big1", "big2"] {
        pipeline.extend_from_slice(format!("set {key} 0 0 {}\r\n", value.len()).as_bytes());
        pipeline.extend_from_slice(&value);
        pipeline.extend_from_slice(b"\r\n");
    }
    exchange(&mut c, &pipeline, b"STORED\r\nSTORED\r\n");
    let mut expected = Vec::new();
    for key in ["big1", "big2"] {
        expected.extend_from_slice(format!("VALUE {key} 0 {}\r\n", value.len()).as_bytes());
        expected.extend_from_slice(&value);
        expected.extend_from_slice(b"\r\n");
    }
    expected.extend_from_slice(b"END\r\n");
    exchange(&mut c, b"get big1 big2\r\n", &expected);
    let mut watch = server.connect();
    eventually(0, || per_core_sum(&mut watch, "large_request_bytes"));
}
