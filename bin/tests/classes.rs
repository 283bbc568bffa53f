//! `stats items` and `stats slabs` as memcached's tools read them: items
//! counted in the class memcached would store them in, evictions counted
//! per class and cleared by `stats reset` (memcached's t/issue_22.t and
//! t/issue_29.t, on their own terms).

mod common;

use common::{exchange, stat, stats, TestServer};

#[test]
fn small_items_are_counted_in_class_one_as_memcached_does() {
    // t/issue_29.t: two empty values, one chunk each in class 1.
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    exchange(&mut c, b"set issue29 0 0 0\r\n\r\n", b"STORED\r\n");
    let slabs = stats(&mut c, "slabs");
    assert_eq!(stat(&slabs, "1:used_chunks"), 1, "{slabs:?}");
    assert_eq!(stat(&slabs, "1:chunk_size"), 96);
    assert_eq!(stat(&slabs, "active_slabs"), 1);
    exchange(&mut c, b"set issue29_b 0 0 0\r\n\r\n", b"STORED\r\n");
    let slabs = stats(&mut c, "slabs");
    assert_eq!(stat(&slabs, "1:used_chunks"), 2);
    let items = stats(&mut c, "items");
    assert_eq!(stat(&items, "items:1:number"), 2, "{items:?}");
    assert_eq!(stat(&items, "items:1:evicted"), 0);
    // A deleted item leaves its class; a larger one lands in its own.
    exchange(&mut c, b"delete issue29\r\n", b"DELETED\r\n");
    let value = "x".repeat(1000);
    exchange(
        &mut c,
        format!("set big 0 0 1000\r\n{value}\r\n").as_bytes(),
        b"STORED\r\n",
    );
    let items = stats(&mut c, "items");
    assert_eq!(stat(&items, "items:1:number"), 1);
    // 48 + 8 + 3 + 1 + 1002 = 1062 bytes: class 12 (1184-byte chunks).
    assert_eq!(stat(&items, "items:12:number"), 1, "{items:?}");
    server.stop();
}

#[test]
fn evictions_are_counted_per_class_and_reset_clears_them() {
    // t/issue_22.t's shape: 66,560-byte values (class 31) into a cache too
    // small for them all.
    let server = TestServer::start(&["--threads", "1", "-m", "4"]);
    let mut c = server.connect();
    let value = "B".repeat(66560);
    let set = |c: &mut std::net::TcpStream, key: usize| {
        exchange(
            c,
            format!("set key{key} 0 0 66560\r\n{value}\r\n").as_bytes(),
            b"STORED\r\n",
        );
    };
    for key in 0..80 {
        set(&mut c, key);
    }
    let items = stats(&mut c, "items");
    let evicted = stat(&items, "items:31:evicted");
    assert!(evicted > 0, "{items:?}");
    assert_eq!(evicted, stat(&stats(&mut c, ""), "evictions"));
    assert_eq!(
        stat(&items, "items:31:number"),
        stat(&stats(&mut c, ""), "curr_items")
    );
    assert_eq!(stat(&items, "items:31:outofmemory"), 0);

    exchange(&mut c, b"stats reset\r\n", b"RESET\r\n");
    let items = stats(&mut c, "items");
    assert_eq!(stat(&items, "items:31:evicted"), 0);
    assert!(stat(&items, "items:31:number") > 0, "live items stay");

    let live_before = stat(&items, "items:31:number");
    for key in 80..120 {
        set(&mut c, key);
    }
    let items = stats(&mut c, "items");
    // Every item stored either lives or pushed an older one out.
    let live_after = stat(&items, "items:31:number");
    assert_eq!(
        stat(&items, "items:31:evicted"),
        40 + live_before - live_after
    );
    server.stop();
}
