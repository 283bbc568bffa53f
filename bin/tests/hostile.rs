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

/// Waits until `f` holds or 10 s pass.
fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
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
    assert!(wait_for(|| stat(
        &stats(&mut admin, ""),
        "curr_connections"
    ) == 2));
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
