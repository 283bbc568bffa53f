//! `--port-per-core`: core i listens on base + i and owns every key that
//! arrives there, so a proxy's or client's ring decides ownership and
//! nothing is forwarded.

mod common;

use common::{exchange, keys_on, per_core, stat, stats, TestServer};
use std::net::TcpStream;
use std::time::Duration;

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

#[test]
fn each_port_is_a_node_of_its_own() {
    let server = TestServer::start_per_core(&[]);
    let (mut zero, mut one) = (connect(server.port), connect(server.port + 1));
    // Keys segcore's own hash would give to either core all stay with the
    // core whose port they arrived on.
    let keys: Vec<String> = keys_on(0, 20, "a")
        .into_iter()
        .chain(keys_on(1, 20, "b"))
        .collect();
    for key in &keys {
        exchange(
            &mut zero,
            format!("set {key} 1 0 1\r\n0\r\n").as_bytes(),
            b"STORED\r\n",
        );
        exchange(
            &mut one,
            format!("set {key} 2 0 2\r\n11\r\n").as_bytes(),
            b"STORED\r\n",
        );
    }
    for key in &keys {
        exchange(
            &mut zero,
            format!("get {key}\r\n").as_bytes(),
            format!("VALUE {key} 1 1\r\n0\r\nEND\r\n").as_bytes(),
        );
        exchange(
            &mut one,
            format!("get {key}\r\n").as_bytes(),
            format!("VALUE {key} 2 2\r\n11\r\nEND\r\n").as_bytes(),
        );
    }
    // Each core holds its own copy; nothing crossed cores.
    assert_eq!(per_core(&mut zero, "curr_items"), [40, 40]);
    assert_eq!(per_core(&mut zero, "forwarded_out"), [0, 0]);
    assert_eq!(per_core(&mut zero, "forwarded_in"), [0, 0]);
    // A delete on one node leaves the other's copy.
    exchange(
        &mut one,
        format!("delete {}\r\n", keys[0]).as_bytes(),
        b"DELETED\r\n",
    );
    exchange(
        &mut zero,
        format!("get {}\r\n", keys[0]).as_bytes(),
        format!("VALUE {} 1 1\r\n0\r\nEND\r\n", keys[0]).as_bytes(),
    );
    // The mode shows, and `stats` still sums the whole process.
    let settings = stats(&mut one, "settings");
    assert!(settings.contains(&("routing".into(), "port_per_core".into())));
    assert_eq!(stat(&stats(&mut zero, ""), "curr_items"), 79);
    let conns = stats(&mut zero, "conns");
    let listening: Vec<&String> = conns
        .iter()
        .filter(|(k, v)| k.ends_with(":addr") && v.starts_with("tcp:"))
        .map(|(_, v)| v)
        .collect();
    for port in [server.port, server.port + 1] {
        let addr = format!("tcp:127.0.0.1:{port}");
        assert!(listening.contains(&&addr), "{addr} in {listening:?}");
    }
}

#[test]
fn the_shared_port_mode_still_hashes() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let settings = stats(&mut c, "settings");
    assert!(settings.contains(&("routing".into(), "hash".into())));
    for key in keys_on(1, 10, "k") {
        exchange(
            &mut c,
            format!("set {key} 0 0 1\r\n1\r\n").as_bytes(),
            b"STORED\r\n",
        );
    }
    assert_eq!(per_core(&mut c, "curr_items"), [0, 10]);
}
