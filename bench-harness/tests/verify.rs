//! `--verify` end to end against fake servers: a faithful one must show zero
//! mismatches, one that corrupts every fifth value must be caught.

mod common;

use common::{bench, fake_server, Behaviour};

fn run(port: u16) -> (i32, String) {
    bench(&[
        "run",
        "-s",
        &format!("127.0.0.1:{port}"),
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
    ])
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
