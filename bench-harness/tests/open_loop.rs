//! The open-loop scheduler charges a server for its stalls: against a fake
//! server that stops answering for 300 ms once, latency counted from each
//! request's intended send time shows the stall in the upper percentiles,
//! while a closed loop (which simply stops sending) hides it.

mod common;

use common::{bench, fake_server, Behaviour};
use std::time::Duration;

fn stalling_server() -> u16 {
    fake_server(Behaviour {
        stall: Some((Duration::from_millis(600), Duration::from_millis(300))),
        ..Behaviour::default()
    })
}

/// (ops/s, p90 us, max us) of the total row.
fn run(port: u16, extra: &[&str]) -> (f64, u64, u64) {
    let address = format!("127.0.0.1:{port}");
    let mut args = vec![
        "run",
        "-s",
        &address,
        "--duration",
        "1.5",
        "--warmup",
        "0.1",
        "-c",
        "4",
    ];
    args.extend_from_slice(extra);
    let (code, text) = bench(&args);
    assert_eq!(code, 0, "{text}");
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
    let (rate, p90, max) = run(stalling_server(), &["--rate", "2000"]);
    // The schedule holds: about 2000 requests a second were answered.
    assert!((1500.0..2500.0).contains(&rate), "rate {rate}");
    // 300 ms of stall at 2000/s: ~600 requests queued behind it, with waits
    // spread from 300 ms down to 0, so the 90th percentile is well up.
    assert!(max >= 250_000, "max {max}");
    assert!(p90 >= 50_000, "p90 {p90}");
}

#[test]
fn closed_loop_hides_the_same_stall() {
    let (_, p90, max) = run(stalling_server(), &[]);
    // Each connection waited once; nothing else queued behind the stall.
    assert!(max >= 250_000, "max {max}");
    assert!(p90 < 50_000, "p90 {p90}");
}
