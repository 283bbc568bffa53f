//! A fake memcached, built on the protocol crate, whose misbehaviour the
//! harness must notice: corrupting values, forgetting everything, or
//! stalling once. Shared by the harness's integration tests.
#![allow(dead_code)] // each test file uses part of this

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use segcore_protocol::text::{self, Reply, Request};
use segcore_protocol::Limits;

/// How the fake behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Flip a byte in every n-th value returned.
    pub corrupt_every: Option<u64>,
    /// Answer STORED but keep nothing.
    pub forget: bool,
    /// Stop answering for this long, once, this long after the first request.
    pub stall: Option<(Duration, Duration)>,
}

#[derive(Default)]
struct State {
    store: HashMap<Vec<u8>, Vec<u8>>,
    hits: u64,
    first: Option<Instant>,
    stall_until: Option<Instant>,
}

fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>, how: Behaviour) {
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
        let mut s = state.lock().unwrap();
        while let Ok(Some((request, used))) = text::parse(&input[at..], &Limits::default()) {
            let first = *s.first.get_or_insert_with(Instant::now);
            if let Some((after, length)) = how.stall {
                if s.stall_until.is_none() && first.elapsed() >= after {
                    s.stall_until = Some(Instant::now() + length);
                }
            }
            match request {
                Request::Store(st) => {
                    if !how.forget {
                        s.store.insert(st.key.to_vec(), st.value.to_vec());
                    }
                    Reply::Stored.write(&mut out);
                }
                Request::Get(g) => {
                    for key in g.keys.iter() {
                        let Some(mut value) = s.store.get(key).cloned() else {
                            continue;
                        };
                        s.hits += 1;
                        if how.corrupt_every.is_some_and(|n| s.hits.is_multiple_of(n)) {
                            let mid = value.len() / 2;
                            value[mid] ^= 0x20;
                        }
                        text::write_value(&mut out, key, 0, &value, None);
                    }
                    Reply::End.write(&mut out);
                }
                Request::MetaSet(m) => {
                    let mut buf = [0u8; 250];
                    if !how.forget {
                        s.store
                            .insert(m.key.bytes(&mut buf).to_vec(), m.value.to_vec());
                    }
                    out.extend_from_slice(b"HD\r\n");
                }
                Request::MetaGet(m) => {
                    let mut buf = [0u8; 250];
                    match s.store.get(m.key.bytes(&mut buf)).cloned() {
                        Some(value) => {
                            out.extend_from_slice(format!("VA {}\r\n", value.len()).as_bytes());
                            out.extend_from_slice(&value);
                            out.extend_from_slice(b"\r\n");
                        }
                        None => out.extend_from_slice(b"EN\r\n"),
                    }
                }
                Request::Stats { .. } => {
                    let items = s.store.len() as u64;
                    text::write_stat(&mut out, b"curr_items", text::StatValue::U64(items));
                    Reply::End.write(&mut out);
                }
                _ => Reply::Error.write(&mut out),
            }
            at += used;
        }
        let stall_until = s.stall_until;
        drop(s);
        input.drain(..at);
        if let Some(until) = stall_until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// Starts a fake server on a free loopback port; returns the port.
pub fn fake_server(how: Behaviour) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(State::default()));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || serve(stream, state, how));
        }
    });
    port
}

/// Runs segcore-bench with `args`; returns (exit code, stdout + stderr).
pub fn bench(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_segcore-bench"))
        .args(args)
        .output()
        .expect("run segcore-bench");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}
