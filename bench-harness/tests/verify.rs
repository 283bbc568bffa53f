//! `--verify` end to end against two fake servers built on the protocol
//! crate: one stores and returns values faithfully, one corrupts a byte of
//! every fifth value it returns. The first must show zero mismatches, the
//! second must be caught.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use segcore_protocol::text::{self, Reply, Request};
use segcore_protocol::Limits;

type Store = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

fn serve(mut stream: TcpStream, store: Store, corrupt: bool) {
    let mut input = Vec::new();
    let mut buf = [0u8; 65536];
    let mut hits = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        input.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut at = 0;
        while let Ok(Some((request, used))) = text::parse(&input[at..], &Limits::default()) {
            match request {
                Request::Store(s) => {
                    store
                        .lock()
                        .unwrap()
                        .insert(s.key.to_vec(), s.value.to_vec());
                    Reply::Stored.write(&mut out);
                }
                Request::Get(g) => {
                    let store = store.lock().unwrap();
                    for key in g.keys.iter() {
                        if let Some(value) = store.get(key) {
                            hits += 1;
                            let mut value = value.clone();
                            if corrupt && hits.is_multiple_of(5) {
                                let mid = value.len() / 2;
                                value[mid] ^= 0x20;
                            }
                            text::write_value(&mut out, key, 0, &value, None);
                        }
                    }
                    Reply::End.write(&mut out);
                }
                _ => Reply::Error.write(&mut out),
            }
            at += used;
        }
        input.drain(..at);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

fn fake_server(corrupt: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let store: Store = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let store = store.clone();
            std::thread::spawn(move || serve(stream, store, corrupt));
        }
    });
    port
}

fn bench(port: u16) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_segcore-bench"))
        .args([
            "run",
            "-s",
            &format!("127.0.0.1:{port}"),
            "--verify",
            "--prefill",
        ])
        .args([
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
        .output()
        .expect("run segcore-bench");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
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
    let (code, text) = bench(fake_server(false));
    assert_eq!(code, 0, "{text}");
    assert!(count(&text, "values") > 1000, "{text}");
    assert_eq!(count(&text, "mismatches"), 0, "{text}");
}

#[test]
fn a_corrupting_server_is_caught() {
    let (code, text) = bench(fake_server(true));
    assert_eq!(code, 3, "{text}");
    let checked = count(&text, "values");
    let bad = count(&text, "mismatches");
    // One hit in five is corrupted.
    assert!(
        bad * 10 > checked && bad * 3 < checked,
        "{bad} of {checked}: {text}"
    );
}
