//! What cross-core forwarding adds to a request: one connection, one request
//! in flight, `get` of keys owned by the connection's own core and of keys
//! owned by the other core, p50 and p99 of each.
//!
//! ```sh
//! cargo build --release -p segcore
//! target/release/segcore -p 22300 --threads 2 &
//! cargo run --release -p segcore --example forwarding_cost -- 127.0.0.1:22300 [REQUESTS]
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use segcore_engine::storage::HashedKey;

fn roundtrip(c: &mut TcpStream, request: &[u8], end: &[u8], buf: &mut Vec<u8>) {
    c.write_all(request).expect("write");
    buf.clear();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(end) {
        let n = c.read(&mut chunk).expect("read");
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:11211".into());
    let requests: usize = args.next().map_or(20_000, |n| n.parse().expect("requests"));
    let mut c = TcpStream::connect(&addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::new();
    // Which core holds this connection: the one reporting one connection.
    roundtrip(&mut c, b"stats cores\r\n", b"END\r\n", &mut buf);
    let stats = String::from_utf8_lossy(&buf).to_string();
    let mine = (0..2)
        .find(|core| stats.contains(&format!("STAT core:{core}:curr_connections 1\r")))
        .expect("run alone against a 2-core segcore");
    let keys = |core: usize| -> Vec<String> {
        (0..)
            .map(|i| format!("fwd:{i}"))
            .filter(|k| HashedKey::new(k.as_bytes()).shard(2) == core)
            .take(256)
            .collect()
    };
    for (label, core) in [("local", mine), ("forwarded", 1 - mine)] {
        let keys = keys(core);
        for key in &keys {
            roundtrip(
                &mut c,
                format!("set {key} 0 0 8\r\nabcdefgh\r\n").as_bytes(),
                b"\r\n",
                &mut buf,
            );
        }
        let mut lat = Vec::with_capacity(requests);
        for i in 0..requests {
            let req = format!("get {}\r\n", keys[i % keys.len()]);
            let start = Instant::now();
            roundtrip(&mut c, req.as_bytes(), b"END\r\n", &mut buf);
            lat.push(start.elapsed().as_nanos() as u64);
        }
        lat.sort_unstable();
        println!(
            "{label:<10} p50 {:>7.1} us  p99 {:>7.1} us  ({requests} gets, 1 in flight)",
            percentile(&lat, 0.5) as f64 / 1000.0,
            percentile(&lat, 0.99) as f64 / 1000.0
        );
    }
}
