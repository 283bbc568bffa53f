//! The `memcache` crate (a real Rust client) against segcore, over both the
//! binary protocol (its default) and the text protocol.

mod common;

use common::TestServer;

fn exercise(url: &str) {
    let client = memcache::Client::connect(url).expect("connect");
    client.flush().expect("flush");
    client.set("greeting", "hello", 0).expect("set");
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(client.get::<String>("missing").unwrap(), None);
    // The crate reports NOT_STORED as an error over binary, as Ok over
    // text; either way the value must not change.
    let _ = client.add("greeting", "again", 0);
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    client.add("fresh", "1", 0).expect("add");
    client.replace("fresh", "2", 0).expect("replace");
    client.append("fresh", "3").expect("append");
    client.prepend("fresh", "0").expect("prepend");
    assert_eq!(
        client.get::<String>("fresh").unwrap().as_deref(),
        Some("023")
    );
    client.set("counter", 10u64, 0).expect("set number");
    assert_eq!(client.increment("counter", 5).unwrap(), 15);
    assert_eq!(client.decrement("counter", 20).unwrap(), 0);
    let keys: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
    for key in &keys {
        client.set(key, key.as_str(), 0).expect("set many");
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got: std::collections::HashMap<String, String> = client.gets(&refs).expect("multi-get");
    assert_eq!(got.len(), keys.len());
    assert!(keys.iter().all(|k| got[k] == *k));
    assert!(client.touch("greeting", 100).unwrap());
    assert!(client.delete("greeting").unwrap());
    assert!(!client.delete("greeting").unwrap());
    assert!(client.version().unwrap()[0].1.starts_with("1.6"));
}

#[test]
fn rust_client_binary_protocol() {
    let server = TestServer::start(&[]);
    exercise(&format!("memcache://127.0.0.1:{}", server.port));
}

#[test]
fn rust_client_text_protocol() {
    let server = TestServer::start(&[]);
    exercise(&format!(
        "memcache://127.0.0.1:{}?protocol=ascii",
        server.port
    ));
}
