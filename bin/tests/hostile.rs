//! What a hostile client can make the server do: small requests that ask
//! for huge replies, pipelines that are never read, half-sent large values
//! held open, keys that look like protocol lines. Each check measures the
//! server's resident memory and that other clients are still served
//! correctly.

mod common;

use common::{exchange, keys_on, read_exact, stat, stats, TestServer};
use segcore_protocol::binary::{Command, Header, Opcode, Request, HEADER_LEN};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The server's resident memory in bytes (VmRSS).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Stores `value` under `key`.
fn set(c: &mut TcpStream, key: &str, value: &[u8]) {
    c.write_all(format!("set {key} 0 0 {}\r\n", value.len()).as_bytes())
        .unwrap();
    c.write_all(value).unwrap();
    c.write_all(b"\r\n").unwrap();
    assert_eq!(read_exact(c, 8), b"STORED\r\n");
}

/// A value of `len` bytes that says which key it belongs to.
fn value_for(key: &str, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = key.bytes().cycle().take(len).collect();
    v[len - 1] = b'!';
    v
}

/// The most reply bytes a connection may hold, from `stats settings`.
fn reply_bound(c: &mut TcpStream) -> u64 {
    stat(&stats(c, "settings"), "reply_buf_limit")
}

/// One line of a few bytes asks for hundreds of megabytes: the reply
/// streams out as the client reads it, and while the client does not read,
/// the server holds no more than its per-connection reply bound. Keys on
/// both cores, so both the inline and the forwarded paths are bounded.
#[test]
fn a_huge_multiget_streams_within_the_reply_bound() {
    const VALUE: usize = 1_000_000;
    const REPEATS: usize = 200;
    let server = TestServer::start(&["-m", "64"]);
    let mut admin = server.connect();
    let keys = [
        keys_on(0, 1, "big")[0].clone(),
        keys_on(1, 1, "big")[0].clone(),
    ];
    for key in &keys {
        set(&mut admin, key, &value_for(key, VALUE));
    }
    let bound = reply_bound(&mut admin);
    assert!(bound < 8 << 20, "reply bound {bound}");
    let before = rss(server.pid());

    let mut line = String::from("get");
    for _ in 0..REPEATS {
        for key in &keys {
            line.push(' ');
            line.push_str(key);
        }
    }
    line.push_str("\r\n");
    let mut greedy = server.connect();
    greedy.write_all(line.as_bytes()).unwrap();
    // It does not read: the server fills the socket and stops there.
    std::thread::sleep(Duration::from_millis(1500));
    let stalled = rss(server.pid());
    assert!(
        stalled < before + 4 * bound + (16 << 20),
        "RSS grew from {before} to {stalled} for an unread {} MB reply",
        2 * REPEATS
    );
    // Everyone else is served meanwhile.
    exchange(&mut admin, b"set other 0 0 2\r\nok\r\n", b"STORED\r\n");
    exchange(
        &mut admin,
        b"get other\r\n",
        b"VALUE other 0 2\r\nok\r\nEND\r\n",
    );

    // The whole reply arrives, in order, every value intact.
    let mut reader = std::io::BufReader::with_capacity(1 << 16, greedy);
    let mut header = String::new();
    for i in 0..2 * REPEATS {
        header.clear();
        std::io::BufRead::read_line(&mut reader, &mut header).unwrap();
        let key = &keys[i % 2];
        assert_eq!(header, format!("VALUE {key} 0 {VALUE}\r\n"), "value {i}");
        let mut data = vec![0; VALUE + 2];
        reader.read_exact(&mut data).unwrap();
        assert!(
            data[..VALUE] == value_for(key, VALUE)[..],
            "value {i} intact"
        );
        assert_eq!(&data[VALUE..], b"\r\n");
    }
    header.clear();
    std::io::BufRead::read_line(&mut reader, &mut header).unwrap();
    assert_eq!(header, "END\r\n");
    let after = rss(server.pid());
    assert!(after < before + 4 * bound + (16 << 20), "RSS {after}");
    assert!(server.stop().success());
}

/// A binary GetK request of a large value, `opaque` numbered.
fn getk(key: &str, opaque: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    Request {
        opcode: Opcode::GetK,
        command: Command::Get {
            quiet: false,
            with_key: true,
        },
        opaque,
        cas: 0,
        key: key.as_bytes(),
        value: b"",
    }
    .encode(&mut buf);
    buf
}

/// Many connections pipeline binary GetK of a large value and never read:
/// each stalls itself, the server's memory stays within the connections'
/// reply bounds, and other clients are served.
#[test]
fn unread_binary_pipelines_stall_only_themselves() {
    const VALUE: usize = 1_000_000;
    const CONNS: usize = 20;
    let server = TestServer::start(&["-m", "64"]);
    let mut admin = server.connect();
    let keys = [keys_on(0, 1, "g")[0].clone(), keys_on(1, 1, "g")[0].clone()];
    for key in &keys {
        set(&mut admin, key, &value_for(key, VALUE));
    }
    let bound = reply_bound(&mut admin);
    let before = rss(server.pid());
    let mut pipeline = Vec::new();
    for i in 0..2000u32 {
        pipeline.extend(getk(&keys[i as usize % 2], i));
    }
    let mut hogs = Vec::new();
    for _ in 0..CONNS {
        let mut c = server.connect();
        c.set_nonblocking(true).unwrap();
        let mut sent = 0;
        // Send what the socket takes; the rest would only wait in our buffer.
        let deadline = Instant::now() + Duration::from_millis(200);
        while sent < pipeline.len() && Instant::now() < deadline {
            match c.write(&pipeline[sent..]) {
                Ok(n) => sent += n,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        hogs.push(c);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let stalled = rss(server.pid());
    assert!(
        stalled < before + CONNS as u64 * bound + (32 << 20),
        "RSS grew from {before} to {stalled} with {CONNS} unread pipelines (bound {bound} each)"
    );
    exchange(&mut admin, b"set other 0 0 2\r\nok\r\n", b"STORED\r\n");
    exchange(
        &mut admin,
        b"get other\r\n",
        b"VALUE other 0 2\r\nok\r\nEND\r\n",
    );
    // A reader of the same keys gets them whole.
    let mut reader = server.connect();
    reader.write_all(&getk(&keys[1], 7)).unwrap();
    let head = Header::decode(read_exact(&mut reader, HEADER_LEN)[..].try_into().unwrap());
    assert_eq!(head.vbucket_or_status, 0);
    let body = read_exact(&mut reader, head.body_len as usize);
    assert_eq!(&body[4 + keys[1].len()..], &value_for(&keys[1], VALUE)[..]);
    drop(hogs);
    common::eventually(|| match stat(&stats(&mut admin, ""), "curr_connections") {
        2 => Ok(()),
        n => Err(format!("{n} connections open")),
    });
    assert!(server.stop().success());
}

/// A core that fails (here: its live memory file overwritten from outside,
/// so reading an item panics) takes the whole process down with one line
/// and a failure status; no listener is left accepting for a dead core.
#[test]
fn a_failed_core_takes_the_process_down() {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("segcore-hostile-{}-core", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mem").display().to_string();
    let log = dir.join("stderr.log");
    let server = TestServer::start_logging(&["-e", &file, "-m", "32"], Some(&log));
    let mut c = server.connect();
    let keys = keys_on(1, 50, "victim");
    for key in &keys {
        set(&mut c, key, &value_for(key, 100));
    }
    // Garbage over the start of core 1's segments.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("mem.1"))
        .unwrap();
    f.write_all(&vec![0xff; 1 << 20]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let mut line = String::from("get");
    for key in &keys {
        line.push(' ');
        line.push_str(key);
    }
    line.push_str("\r\n");
    let _ = c.write_all(line.as_bytes());
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(70), "{status:?}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("core 1 failed") && logged.contains("supervisor"),
        "{logged}"
    );
    assert_eq!(
        logged.lines().filter(|l| l.contains("failed")).count(),
        1,
        "one line: {logged}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends a `set` declaring `declared` bytes and `sent` of them, then stops.
fn half_set(server: &TestServer, key: &str, declared: usize, sent: usize) -> TcpStream {
    let mut c = server.connect();
    c.write_all(format!("set {key} 0 0 {declared}\r\n").as_bytes())
        .unwrap();
    c.write_all(&vec![b'h'; sent]).unwrap();
    c
}

/// The sum over cores of `core:N:<name>`.
fn per_core_sum(c: &mut TcpStream, name: &str) -> u64 {
    common::per_core(c, name).iter().sum()
}

/// Forty clients declare 1 MB values, send 17 KB and wait: they hold about
/// what they sent, not what they declared, so a legitimate 100 KB set goes
/// through at once.
#[test]
fn half_sent_large_values_do_not_lock_others_out() {
    let server = TestServer::start(&["-m", "64"]);
    let mut admin = server.connect();
    let before = rss(server.pid());
    let hogs: Vec<TcpStream> = (0..40)
        .map(|i| half_set(&server, &format!("hog{i}"), 1_000_000, 17_000))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let held = per_core_sum(&mut admin, "large_request_bytes");
    assert!(
        held <= 40 * 64 * 1024,
        "40 half-sent values hold {held} bytes"
    );
    let value = vec![b'v'; 100_000];
    for i in 0..5 {
        let mut c = server.connect();
        set(&mut c, &format!("legit{i}"), &value);
    }
    let mut check = server.connect();
    check.write_all(b"get legit4\r\n").unwrap();
    let reply = common::read_until(&mut check, b"END\r\n");
    assert_eq!(reply.len(), "VALUE legit4 0 100000\r\n".len() + 100_002 + 5);
    let grown = rss(server.pid()).saturating_sub(before);
    assert!(grown < 32 << 20, "RSS grew {grown} bytes");
    drop(hogs);
    assert!(server.stop().success());
}

/// Clients that send most of a large value and stall keep their share only
/// until another connection needs it after the timeout: then they are
/// closed (counted), and the other's set goes through.
#[test]
fn stalled_large_values_give_their_budget_back() {
    // One core, so every hog and every legitimate set meet one budget.
    let server = TestServer::start(&[
        "--threads",
        "1",
        "-m",
        "64",
        "--large-request-memory",
        "4m",
        "--large-request-timeout",
        "1",
    ]);
    let mut admin = server.connect();
    let settings = stats(&mut admin, "settings");
    assert_eq!(stat(&settings, "large_request_timeout"), 1);
    let mut hogs: Vec<TcpStream> = (0..12)
        .map(|i| half_set(&server, &format!("hog{i}"), 1_000_000, 600_000))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Past the timeout the hogs may still be taking room from each other
    // (a slow machine sends them over more than a second); once every one
    // has had its turn, four of them hold the budget.
    common::eventually(|| {
        let held = per_core_sum(&mut admin, "large_request_bytes");
        (held >= 3 << 20)
            .then_some(())
            .ok_or(format!("stalled values hold {held} bytes"))
    });
    // More than the room left beside four stalled 1 MB values.
    let value = vec![b'v'; 500_000];
    for i in 0..4 {
        let mut c = server.connect();
        set(&mut c, &format!("legit{i}"), &value);
    }
    let reclaimed = stat(&stats(&mut admin, ""), "large_request_reclaims");
    assert!(reclaimed >= 1, "reclaims: {reclaimed}");
    // The stalled ones were closed (or refused outright when they came).
    let mut closed = 0;
    for hog in &mut hogs {
        hog.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 128];
        loop {
            match hog.read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    closed += 1;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    assert!(
        closed >= reclaimed,
        "closed {closed} of {reclaimed} reclaimed"
    );
    assert!(server.stop().success());
}

/// A binary request (opcode with a key and maybe a value), encoded.
fn binary(opcode: Opcode, command: Command, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Request {
        opcode,
        command,
        opaque: 0,
        cas: 0,
        key,
        value,
    }
    .encode(&mut out);
    out
}

/// Reads `n` binary responses and returns their statuses.
fn binary_statuses(c: &mut TcpStream, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| {
            let head = Header::decode(read_exact(c, HEADER_LEN)[..].try_into().unwrap());
            read_exact(c, head.body_len as usize);
            head.vbucket_or_status
        })
        .collect()
}

/// A binary key made to look like protocol lines, read often enough to be
/// hot, and used with a prefix delimiter: text `stats hotkeys`, `stats
/// detail dump` and `/metrics` show it escaped, and no forged line reaches
/// anyone.
#[test]
fn keys_that_look_like_lines_are_shown_escaped() {
    let metrics = common::free_port();
    let metrics_arg = metrics.to_string();
    let server = TestServer::start(&["-D", ":", "--metrics-listen", &metrics_arg]);
    let evil: &[u8] = b"x:\r\nSTAT evil 1\r\nEND\r\n";
    let mut b = server.connect();
    let store = Command::Store {
        mode: segcore_protocol::binary::StoreMode::Set,
        flags: 0,
        exptime: 0,
        quiet: false,
    };
    b.write_all(&binary(Opcode::Set, store, evil, b"v"))
        .unwrap();
    assert_eq!(binary_statuses(&mut b, 1), [0]);
    let get = Command::Get {
        quiet: false,
        with_key: false,
    };
    let mut gets = Vec::new();
    for _ in 0..500 {
        gets.extend(binary(Opcode::Get, get, evil, b""));
    }
    for _ in 0..20 {
        b.write_all(&gets).unwrap();
        assert!(binary_statuses(&mut b, 500).iter().all(|&s| s == 0));
    }
    let escaped = "x:%0D%0ASTAT%20evil%201%0D%0AEND%0D%0A";
    let mut t = server.connect();
    t.write_all(b"stats hotkeys\r\n").unwrap();
    let hot = String::from_utf8(common::read_until(&mut t, b"END\r\n")).unwrap();
    assert!(hot.contains(escaped), "{hot}");
    assert!(!hot.contains("STAT evil"), "{hot}");
    assert_eq!(hot.matches("END\r\n").count(), 1, "{hot}");
    t.write_all(b"stats detail dump\r\n").unwrap();
    let dump = String::from_utf8(common::read_until(&mut t, b"END\r\n")).unwrap();
    assert!(
        dump.starts_with("PREFIX x get 10000 hit 10000 set 1 del 0\r\n"),
        "the prefix is the part before ':': {dump}"
    );
    // The metrics label is escaped too, and forges no sample line.
    let mut m = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    m.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut body = String::new();
    m.read_to_string(&mut body).unwrap();
    assert!(body.contains(&format!("key=\"{escaped}\"")), "{body}");
    assert!(!body.lines().any(|l| l.starts_with("STAT") || l == "END"));
    assert!(server.stop().success());
}

/// Prefix lines escape what a key may carry (the `-D` prefix of a binary key).
#[test]
fn a_prefix_with_line_breaks_is_shown_escaped() {
    let server = TestServer::start(&["-D", ":"]);
    let mut b = server.connect();
    let get = Command::Get {
        quiet: false,
        with_key: false,
    };
    b.write_all(&binary(Opcode::Get, get, b"a\r\nEND\r\n:rest", b""))
        .unwrap();
    assert_eq!(binary_statuses(&mut b, 1), [1], "a miss");
    let mut t = server.connect();
    t.write_all(b"stats detail dump\r\n").unwrap();
    let dump = String::from_utf8(common::read_until(&mut t, b"END\r\n")).unwrap();
    assert_eq!(
        dump,
        "PREFIX a%0D%0AEND%0D%0A get 1 hit 0 set 0 del 0\r\nEND\r\n"
    );
    assert!(server.stop().success());
}

/// Slow clients that open every metrics slot and trickle their request
/// cannot keep a real scrape out.
#[test]
fn slow_scrapers_cannot_hold_the_metrics_endpoint() {
    let metrics = common::free_port();
    let metrics_arg = metrics.to_string();
    let server = TestServer::start(&["--metrics-listen", &metrics_arg]);
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
            s.write_all(b"G").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for s in &mut slow {
        let _ = s.write_all(b"E");
    }
    let mut served = 0;
    for _ in 0..10 {
        let mut m = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
        m.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        m.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut reply = String::new();
        if m.read_to_string(&mut reply).is_ok() && reply.starts_with("HTTP/1.1 200") {
            served += 1;
        }
        for s in &mut slow {
            let _ = s.write_all(b"T");
        }
    }
    assert_eq!(served, 10, "real scrapes served beside 20 slow clients");
    assert!(server.stop().success());
}

/// Meta gets pipelined without reading: bounded as text and binary are.
#[test]
fn unread_meta_gets_stay_within_the_reply_bound() {
    const VALUE: usize = 1_000_000;
    let server = TestServer::start(&["-m", "64"]);
    let mut admin = server.connect();
    let keys = [keys_on(0, 1, "m")[0].clone(), keys_on(1, 1, "m")[0].clone()];
    for key in &keys {
        set(&mut admin, key, &value_for(key, VALUE));
    }
    let bound = reply_bound(&mut admin);
    let before = rss(server.pid());
    let mut pipeline = String::new();
    for i in 0..300 {
        pipeline.push_str(&format!("mg {} v k f\r\n", keys[i % 2]));
    }
    let mut greedy = server.connect();
    greedy.write_all(pipeline.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let stalled = rss(server.pid());
    assert!(
        stalled < before + 4 * bound + (16 << 20),
        "RSS grew from {before} to {stalled} for 300 unread mg of 1 MB"
    );
    exchange(&mut admin, b"mn\r\n", b"MN\r\n");
    let mut reader = std::io::BufReader::with_capacity(1 << 16, greedy);
    let mut header = String::new();
    for i in 0..300 {
        header.clear();
        std::io::BufRead::read_line(&mut reader, &mut header).unwrap();
        let key = &keys[i % 2];
        assert_eq!(header, format!("VA {VALUE} k{key} f0\r\n"), "reply {i}");
        let mut data = vec![0; VALUE + 2];
        reader.read_exact(&mut data).unwrap();
        assert!(
            data[..VALUE] == value_for(key, VALUE)[..],
            "value {i} intact"
        );
    }
    assert!(server.stop().success());
}
