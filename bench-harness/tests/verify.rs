//! `--verify` end to end against fake servers: a faithful one must show zero
//! mismatches, one that corrupts every fifth value must be caught.

mod common;

use common::{bench, fake_server, Behaviour};

fn run_with(port: u16, extra: &[&str]) -> (i32, String) {
    let address = format!("127.0.0.1:{port}");
    let mut args = vec![
        "run",
        "-s",
        &address,
        "--verify",
        "--prefill",
        "--duration",
        "1",
        "--warmup",
        "0",
        "-c",
        "4",
        "--keys",
        "200",
        "--value-size",
        "64-200",
    ];
    args.extend_from_slice(extra);
    bench(&args)
}

fn run(port: u16) -> (i32, String) {
    run_with(port, &[])
}

fn count(text: &str, what: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("verify:"))
        .unwrap_or_else(|| panic!("{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.starts_with(what))
        .expect("field")
        - 1;
    words[at].parse().expect("number")
}

#[test]
fn a_faithful_server_verifies_clean() {
    let (code, text) = run(fake_server(Behaviour::default()));
    assert_eq!(code, 0, "{text}");
    assert!(count(&text, "values") > 1000, "{text}");
    assert_eq!(count(&text, "mismatches"), 0, "{text}");
}

#[test]
fn a_corrupting_server_is_caught() {
    let (code, text) = run(fake_server(Behaviour {
        corrupt_every: Some(5),
        ..Behaviour::default()
    }));
    assert_eq!(code, 3, "{text}");
    let checked = count(&text, "values");
    let bad = count(&text, "mismatches");
    // One hit in five is corrupted.
    assert!(
        bad * 10 > checked && bad * 3 < checked,
        "{bad} of {checked}: {text}"
    );
}

#[test]
fn meta_protocol_and_multi_gets_verify_clean() {
    for extra in [&["--protocol", "meta"][..], &["--mget", "4"]] {
        let (code, text) = run_with(fake_server(Behaviour::default()), extra);
        assert_eq!(code, 0, "{extra:?}: {text}");
        assert!(count(&text, "values") > 1000, "{extra:?}: {text}");
        assert_eq!(count(&text, "mismatches"), 0, "{extra:?}: {text}");
    }
    // A multi-get of 4 keys counts 4 lookups: hits + misses = 4 x gets.
    let (_, text) = run_with(fake_server(Behaviour::default()), &["--mget", "4"]);
    let row: Vec<u64> = text
        .lines()
        .find(|l| l.starts_with("get "))
        .unwrap()
        .split_whitespace()
        .skip(2)
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(row[0] + row[1] > 0);
    assert_eq!(row[1], 0, "every key was prefilled: {text}");
}
