//! The open-loop scheduler charges a server for its stalls: against a fake
//! server that stops answering for 300 ms once, latency counted from each
//! request's intended send time shows the stall in the upper percentiles,
//! while a closed loop (which simply stops sending) hides it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use segcore_protocol::text::{self, Reply, Request};
use segcore_protocol::Limits;

/// One stall, 600 ms after the first request (past any warm-up).
struct Stall {
    requests: AtomicU64,
    first: Mutex<Option<Instant>>,
    until: Mutex<Option<Instant>>,
}

fn serve(mut stream: TcpStream, stall: Arc<Stall>) {
    let mut input = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        input.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut at = 0;
        while let Ok(Some((request, used))) = text::parse(&input[at..], &Limits::default()) {
            stall.requests.fetch_add(1, Ordering::Relaxed);
            let first = *stall.first.lock().unwrap().get_or_insert_with(Instant::now);
            let mut until = stall.until.lock().unwrap();
            if until.is_none() && first.elapsed() >= Duration::from_millis(600) {
                *until = Some(Instant::now() + Duration::from_millis(300));
            }
            drop(until);
            match request {
                Request::Store(_) => Reply::Stored.write(&mut out),
                _ => Reply::End.write(&mut out),
            }
            at += used;
        }
        input.drain(..at);
        let until = *stall.until.lock().unwrap();
        if let Some(until) = until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

fn stalling_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stall = Arc::new(Stall {
        requests: AtomicU64::new(0),
        first: Mutex::new(None),
        until: Mutex::new(None),
    });
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let stall = stall.clone();
            std::thread::spawn(move || serve(stream, stall));
        }
    });
    port
}

/// Runs segcore-bench and returns (ops/s, p90 us, max us) of the total row.
fn bench(port: u16, extra: &[&str]) -> (f64, u64, u64) {
    let out = Command::new(env!("CARGO_BIN_EXE_segcore-bench"))
        .args([
            "run",
            "-s",
            &format!("127.0.0.1:{port}"),
            "--duration",
            "1.5",
            "--warmup",
            "0.1",
            "-c",
            "4",
        ])
        .args(extra)
        .output()
        .expect("run segcore-bench");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    (
        row[1].parse().unwrap(),
        row[6].parse().unwrap(),
        row[10].parse().unwrap(),
    )
}

#[test]
fn open_loop_latency_counts_from_the_intended_send_time() {
    let (rate, p90, max) = bench(stalling_server(), &["--rate", "2000"]);
    // The schedule holds: about 2000 requests a second were answered.
    assert!((1500.0..2500.0).contains(&rate), "rate {rate}");
    // 300 ms of stall at 2000/s: ~600 requests queued behind it, with waits
    // spread from 300 ms down to 0, so the 90th percentile is well up.
    assert!(max >= 250_000, "max {max}");
    assert!(p90 >= 50_000, "p90 {p90}");
}

#[test]
fn closed_loop_hides_the_same_stall() {
    let (_, p90, max) = bench(stalling_server(), &[]);
    // Each connection waited once; nothing else queued behind the stall.
    assert!(max >= 250_000, "max {max}");
    assert!(p90 < 50_000, "p90 {p90}");
}
