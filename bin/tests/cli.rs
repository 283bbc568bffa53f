//! Start-up errors are clear, one-paragraph messages with a non-zero exit,
//! never a panic.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_segcore"))
        .args(args)
        .output()
        .expect("run segcore");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn port_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, text) = run(&["-p", &port, "--threads", "1"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("already in use") && !text.contains("panicked"),
        "{text}"
    );
}

#[test]
fn too_little_memory_says_what_to_change() {
    let port = common::free_port().to_string();
    let (code, text) = run(&["-p", &port, "--threads", "2", "-m", "2"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("raise -m") && !text.contains("panicked"),
        "{text}"
    );
}

#[test]
fn bad_values_are_refused() {
    for args in [
        &["-I", "0"][..],
        &["--segment-size", "1000"],
        &["-l", "nowhere"],
        &["--eviction", "lru"],
    ] {
        let (code, text) = run(args);
        assert_eq!(code, 64, "{args:?}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn help_documents_the_flags() {
    let (code, text) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--port",
        "--listen",
        "--memory-limit",
        "--conn-limit",
        "--threads",
        "--cores",
        "--max-item-size",
        "--segment-size",
        "--eviction",
        "--enable-shutdown",
    ] {
        assert!(text.contains(flag), "missing {flag}");
    }
}
