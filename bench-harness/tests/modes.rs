//! The hit-ratio and memory modes against fake servers whose answers are
//! known in advance.

mod common;

use common::{bench, fake_server, Behaviour};

/// Runs `hit-ratio` over 100 keys against the fake on `port` and returns
/// the ratio it reports.
fn hit_ratio(port: u16, requests: &str, extra: &[&str]) -> f64 {
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec![
        "hit-ratio",
        "-s",
        &addr,
        "--keys",
        "100",
        "--requests",
        requests,
    ];
    args.extend_from_slice(extra);
    let (code, text) = bench(&args);
    assert_eq!(code, 0, "{text}");
    ratio(&text)
}

fn ratio(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix("hit ratio: "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{text}"))
}

#[test]
fn hit_ratio_of_a_cache_that_keeps_everything() {
    // 100 keys, 10,000 gets one at a time: only each key's first get misses.
    let port = fake_server(Behaviour::default());
    let r = hit_ratio(port, "10000", &["--key-pattern", "uniform", "--batch", "1"]);
    assert!((0.989..=0.991).contains(&r), "{r}");
}

#[test]
fn hit_ratio_of_a_cache_that_keeps_nothing() {
    let port = fake_server(Behaviour {
        forget: true,
        ..Behaviour::default()
    });
    assert_eq!(hit_ratio(port, "2000", &[]), 0.0);
}

#[test]
fn memory_mode_reports_items_held_and_bytes_each() {
    // The fake runs in this process, so its RSS is ours.
    let port = fake_server(Behaviour::default());
    let pid = std::process::id().to_string();
    let (code, text) = bench(&[
        "memory",
        "-s",
        &format!("127.0.0.1:{port}"),
        "--server-pid",
        &pid,
        "--items",
        "20000",
        "--key-size",
        "24",
        "--value-size",
        "200",
    ]);
    assert_eq!(code, 0, "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("memory: "))
        .unwrap_or_else(|| panic!("{text}"));
    let bytes: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(line.contains("20000 stored, 20000 held"), "{line}");
    // A HashMap of two heap vectors per item costs more than the payload.
    assert!(bytes > 200.0 && bytes < 5000.0, "{line}");
}
