//! The server as a process: signals, shutdown, connection limits, many
//! concurrent clients, hostile clients, slow readers.

mod common;

use common::{exchange, keys_on, read_until, TestServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn sigterm_exits_zero() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    exchange(&mut c, b"set a 0 0 1\r\na\r\n", b"STORED\r\n");
    let status = server.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn shutdown_command_when_enabled() {
    let server = TestServer::start(&["--enable-shutdown"]);
    let mut c = server.connect();
    exchange(&mut c, b"shutdown\r\n", b"OK\r\n");
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
}

/// `-c` is one limit for the whole server (not a share per core): exactly
/// that many clients are served, whichever core their connections land
/// on, and each one over it gets memcached's error line, then a close.
#[test]
fn connections_over_the_limit_are_closed_and_counted() {
    let server = TestServer::start(&["-c", "4"]);
    // The start-up probe's connection may not be reaped yet: wait until
    // this one is the only connection.
    let mut first = server.connect();
    wait_for_stat(&mut first, "curr_connections", 1);
    let mut open = vec![first];
    let mut rejected = 0;
    for _ in 0..11 {
        let mut c = server.connect();
        c.write_all(b"version\r\n").unwrap();
        let reply = read_to_close_or(&mut c, b"\r\n");
        if reply.starts_with(b"VERSION ") {
            open.push(c);
        } else {
            assert_eq!(
                String::from_utf8_lossy(&reply),
                "ERROR Too many open connections\r\n"
            );
            assert!(common::is_closed(&mut c), "closed after the error");
            rejected += 1;
        }
    }
    assert_eq!((open.len(), rejected), (4, 8));
    let stats = common::stats(&mut open[0], "");
    assert_eq!(common::stat(&stats, "rejected_connections"), 8);
    assert_eq!(common::stat(&stats, "curr_connections"), 4);
    // Once one leaves, a new one is served.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    while try_stats(&server).is_none() {
        assert!(
            Instant::now() < deadline,
            "no connection accepted after one closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until `end` or until the server closes; what was read.
fn read_to_close_or(c: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while !out.ends_with(end) {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Polls `stats` on `c` until `name` reads `value` (connections close
/// asynchronously: the server counts a close when it sees it).
fn wait_for_stat(c: &mut TcpStream, name: &str, value: u64) -> Vec<(String, String)> {
    common::eventually(|| {
        let stats = common::stats(c, "");
        match common::stat(&stats, name) {
            got if got == value => Ok(stats),
            got => Err(format!("{name} stayed at {got} (expected {value})")),
        }
    })
}

/// `stats` on a new connection, `None` if the server closed it (rejected).
fn try_stats(server: &TestServer) -> Option<String> {
    let mut c = server.connect();
    c.write_all(b"stats\r\n").ok()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(b"END\r\n") {
        let n = c.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn five_hundred_concurrent_clients_see_only_their_writes() {
    let server = TestServer::start(&[]);
    let port = server.port;
    let keys: Vec<String> = (0..200).map(|i| format!("shared:{i}")).collect();
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<TcpStream> = (0..50)
                    .map(|_| {
                        let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        c
                    })
                    .collect();
                let (mut hits, mut checked) = (0, 0);
                let mut seed = 0x1234_5678u64 + t;
                for round in 0..20 {
                    for (n, c) in conns.iter_mut().enumerate() {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let key = &keys[((seed >> 16) % keys.len() as u64) as usize];
                        if seed.is_multiple_of(4) {
                            let value = format!("{key}|{t}-{n}-{round}");
                            let req = format!("set {key} 0 0 {}\r\n{value}\r\n", value.len());
                            exchange(c, req.as_bytes(), b"STORED\r\n");
                        } else {
                            c.write_all(format!("get {key}\r\n").as_bytes()).unwrap();
                            let reply = String::from_utf8(read_until(c, b"END\r\n")).unwrap();
                            checked += 1;
                            if let Some(header) =
                                reply.lines().next().filter(|l| l.starts_with("VALUE"))
                            {
                                let value = reply.lines().nth(1).unwrap();
                                let len: usize =
                                    header.rsplit(' ').next().unwrap().parse().unwrap();
                                assert_eq!(value.len(), len);
                                assert!(value.starts_with(&format!("{key}|")), "{key} -> {value}");
                                hits += 1;
                            }
                        }
                    }
                }
                (hits, checked)
            })
        })
        .collect();
    let (mut hits, mut checked) = (0, 0);
    for t in threads {
        let (h, c) = t.join().expect("client thread");
        hits += h;
        checked += c;
    }
    assert!(checked > 5000 && hits > checked / 2, "{hits}/{checked}");
    let mut c = server.connect();
    let stats = common::stats(&mut c, "");
    assert!(common::stat(&stats, "total_connections") >= 500);
}

#[test]
fn hostile_clients_do_not_touch_others_data() {
    let server = TestServer::start(&[]);
    let mut good = server.connect();
    let keys: Vec<String> = keys_on(0, 10, "g0-")
        .into_iter()
        .chain(keys_on(1, 10, "g1-"))
        .collect();
    for key in &keys {
        exchange(
            &mut good,
            format!("set {key} 1 0 {}\r\n{key}\r\n", key.len()).as_bytes(),
            b"STORED\r\n",
        );
    }
    // Garbage, binary noise, oversized declarations, half requests, and
    // abrupt closes, from several connections.
    let attacks: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02garbage\r\n\xff\xfe\r\n".to_vec(),
        // (Its own key: a refused set unlinks the key it names, as in
        // memcached; that is a legitimate write, not damage.)
        b"set hostile 0 0 99999999\r\nxxxxxxxx".to_vec(),
        b"set g1-0 0 0 5\r\nab".to_vec(),
        b"get g0-1 g1-1".to_vec(),
        vec![
            0x80, 0x01, 0x00, 0x05, 0x08, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
        ],
        b"mg g0-2 v N30 N30\r\nms g1-2 notanumber\r\n".to_vec(),
        vec![b'a'; 10_000],
    ];
    for attack in &attacks {
        let mut bad = server.connect();
        let _ = bad.write_all(attack);
        drop(bad);
    }
    for key in &keys {
        exchange(
            &mut good,
            format!("get {key}\r\n").as_bytes(),
            format!("VALUE {key} 1 {}\r\n{key}\r\nEND\r\n", key.len()).as_bytes(),
        );
    }
    // The server is still healthy for newcomers.
    let mut fresh = server.connect();
    exchange(&mut fresh, b"set new 0 0 1\r\nn\r\n", b"STORED\r\n");
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_server() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let big = vec![b'b'; 512 << 10];
    c.write_all(format!("set big 0 0 {}\r\n", big.len()).as_bytes())
        .unwrap();
    c.write_all(&big).unwrap();
    exchange(&mut c, b"\r\n", b"STORED\r\n");
    let baseline = rss_kb(server.pid());
    // Each 9-byte request asks for half a megabyte; write until the kernel
    // buffers are full and the server has stopped reading us.
    let hog = server.connect();
    hog.set_nonblocking(true).unwrap();
    let requests = b"get big\r\n".repeat(1000);
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match (&hog).write(&requests) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let grown = rss_kb(server.pid()).saturating_sub(baseline);
    // Asked for sent/9 * 512 KiB of replies; holds at most a few batches.
    assert!(sent > 9_000, "sent only {sent} bytes");
    assert!(
        grown < 256 << 10,
        "server grew {grown} KiB for a client that never reads"
    );
    // Everyone else is still served.
    let mut other = server.connect();
    exchange(&mut other, b"set x 0 0 1\r\nx\r\n", b"STORED\r\n");
}

/// `stats segments` shows what the merge policy did on each core.
#[test]
fn stats_segments_shows_merge_work() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let value = vec![b'm'; 4000];
    let mut batch = Vec::new();
    for i in 0..8000 {
        batch.extend_from_slice(format!("set fill{i} 0 0 {} noreply\r\n", value.len()).as_bytes());
        batch.extend_from_slice(&value);
        batch.extend_from_slice(b"\r\n");
        if i % 500 == 499 {
            c.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    exchange(&mut c, b"mn\r\n", b"MN\r\n");
    let segments = |c: &mut TcpStream, name: &str| -> Vec<u64> {
        let suffix = format!(":{name}");
        common::stats(c, "segments")
            .iter()
            .filter(|(k, _)| k.ends_with(&suffix))
            .map(|(_, v)| v.parse().expect("numeric"))
            .collect()
    };
    let merges: u64 = segments(&mut c, "merges").iter().sum();
    let kept: u64 = segments(&mut c, "merge_retained").iter().sum();
    assert!(merges > 0, "32 MB into 16 MB merges segments");
    assert!(kept <= 8000, "{kept}");
    assert_eq!(segments(&mut c, "flushes"), [0, 0]);
    exchange(&mut c, b"flush_all\r\n", b"OK\r\n");
    assert_eq!(segments(&mut c, "flushes"), [1, 1]);
}
