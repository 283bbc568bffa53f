//! Leveled logging as memcached's -v flags: nothing per connection by
//! default, connection events at -vv, every command at -vvv, and the
//! `verbosity` command changing the level while the server runs.

mod common;

use common::{exchange, TestServer};
use std::path::PathBuf;

fn log_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("segcore-log-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Waits until the log holds `text` (lines land as events happen).
#[track_caller]
fn wait_for(path: &PathBuf, text: &str) -> String {
    common::eventually(|| {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(text) {
            Ok(log)
        } else {
            Err(format!("no {text:?} in log:\n{log}"))
        }
    })
}

#[test]
fn connection_events_at_vv_and_commands_at_vvv() {
    let path = log_file("vvv");
    let server = TestServer::start_logging(&["-vvv"], Some(&path));
    let mut c = server.connect();
    exchange(&mut c, b"set logged-key 0 0 1\r\nv\r\n", b"STORED\r\n");
    wait_for(&path, "listening on");
    wait_for(&path, "new client connection from 127.0.0.1:");
    wait_for(&path, ": set logged-key 0 0 1");
    // Unknown commands too, with what they were answered.
    exchange(&mut c, b"bogus-command x\r\n", b"ERROR\r\n");
    wait_for(&path, ": bogus-command x -> ERROR");
    // verbosity 1 turns the per-command lines off at once.
    assert_eq!(
        common::stat(&common::stats(&mut c, "settings"), "verbosity"),
        3
    );
    exchange(&mut c, b"verbosity 1\r\n", b"OK\r\n");
    assert_eq!(
        common::stat(&common::stats(&mut c, "settings"), "verbosity"),
        1
    );
    exchange(&mut c, b"get after-verbosity-1\r\n", b"END\r\n");
    exchange(&mut c, b"verbosity 2\r\n", b"OK\r\n");
    drop(c);
    let log = wait_for(&path, "connection closed");
    assert!(!log.contains("after-verbosity-1"), "{log}");
    server.stop();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn without_v_nothing_is_logged_per_connection() {
    let path = log_file("quiet");
    let server = TestServer::start_logging(&[], Some(&path));
    let mut c = server.connect();
    exchange(&mut c, b"get quiet\r\n", b"END\r\n");
    drop(c);
    let mut again = server.connect();
    exchange(&mut again, b"version\r\n", b"VERSION ");
    server.stop();
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(!log.contains("connection"), "{log}");
    assert!(!log.contains("quiet"), "{log}");
    let _ = std::fs::remove_file(&path);
}

/// One line at start at the default level says what serves where; a warm
/// restart says how many items came back and how long it took.
#[test]
fn a_start_says_what_serves_where() {
    let path = log_file("start");
    let server = TestServer::start_logging(&[], Some(&path));
    let log = wait_for(&path, "listening on");
    let line = log.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(
        line.contains(&format!("127.0.0.1:{}", server.port))
            && line.contains("2 core(s)")
            && line.contains("16 MB")
            && line.contains("eviction s3fifo")
            && line.contains("version 1.6.21-segcore-"),
        "{line}"
    );
    server.stop();
    let _ = std::fs::remove_file(&path);

    let dir = std::env::temp_dir().join(format!("segcore-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mem").display().to_string();
    let path = dir.join("log");
    let server = TestServer::start_logging(&["-e", &file], Some(&path));
    exchange(
        &mut server.connect(),
        b"set k 0 0 1\r\nv\r\n",
        b"STORED\r\n",
    );
    assert!(server.stop_with(libc::SIGUSR1).success());
    let server = TestServer::start_logging(&["-e", &file], Some(&path));
    let log = wait_for(&path, "warm restart from");
    assert!(log.contains(": 1 items in "), "{log}");
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
