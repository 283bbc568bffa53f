//! The text and meta protocols over a real socket, exact bytes, against a
//! two-core server (keys chosen so both shards are hit).

mod common;

use common::{exchange, keys_on, read_until, TestServer};
use std::io::Write;

/// The table against one core and against two: every answer is the same
/// whichever core owns a key.
#[test]
fn storage_retrieval_and_arithmetic() {
    for threads in ["1", "2"] {
        storage_retrieval_and_arithmetic_on(threads);
    }
}

fn storage_retrieval_and_arithmetic_on(threads: &str) {
    let server = TestServer::start(&["--threads", threads]);
    let mut c = server.connect();
    let table: &[(&[u8], &[u8])] = &[
        (b"get nothing\r\n", b"END\r\n"),
        (b"set foo 5 0 3\r\nbar\r\n", b"STORED\r\n"),
        (b"get foo\r\n", b"VALUE foo 5 3\r\nbar\r\nEND\r\n"),
        (b"add foo 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"add fresh 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"replace nothing 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"replace fresh 7 0 2\r\nyy\r\n", b"STORED\r\n"),
        (b"get fresh\r\n", b"VALUE fresh 7 2\r\nyy\r\nEND\r\n"),
        (b"append foo 0 0 2\r\n!!\r\n", b"STORED\r\n"),
        (b"prepend foo 0 0 2\r\n<<\r\n", b"STORED\r\n"),
        (b"get foo\r\n", b"VALUE foo 5 7\r\n<<bar!!\r\nEND\r\n"),
        (b"append nothing 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"set n 0 0 2\r\n10\r\n", b"STORED\r\n"),
        (b"incr n 5\r\n", b"15\r\n"),
        (b"decr n 100\r\n", b"0\r\n"),
        (b"incr nothing 1\r\n", b"NOT_FOUND\r\n"),
        (
            b"incr foo 1\r\n",
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (b"set big 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n"),
        (b"incr big 1\r\n", b"0\r\n"),
        (b"touch foo 100\r\n", b"TOUCHED\r\n"),
        (b"touch nothing 100\r\n", b"NOT_FOUND\r\n"),
        (b"delete foo\r\n", b"DELETED\r\n"),
        (b"delete foo\r\n", b"NOT_FOUND\r\n"),
        (b"get foo\r\n", b"END\r\n"),
        (b"set neg 0 -1 1\r\nx\r\n", b"STORED\r\n"),
        (b"get neg\r\n", b"END\r\n"),
        (
            b"gat 100 fresh nothing\r\n",
            b"VALUE fresh 7 2\r\nyy\r\nEND\r\n",
        ),
        (b"verbosity 1\r\n", b"OK\r\n"),
        (b"flush_all\r\n", b"OK\r\n"),
        (b"get fresh n\r\n", b"END\r\n"),
    ];
    for (request, reply) in table {
        exchange(&mut c, request, reply);
    }
    c.write_all(b"version\r\n").unwrap();
    let version = read_until(&mut c, b"\r\n");
    assert!(version.starts_with(b"VERSION 1.6."), "{version:?}");
}

#[test]
fn cas_round_trip() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    exchange(&mut c, b"cas nothing 0 0 1 5\r\nx\r\n", b"NOT_FOUND\r\n");
    exchange(&mut c, b"set k 0 0 1\r\na\r\n", b"STORED\r\n");
    c.write_all(b"gets k\r\n").unwrap();
    let reply = String::from_utf8(read_until(&mut c, b"END\r\n")).unwrap();
    let cas: u64 = reply
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    exchange(
        &mut c,
        format!("cas k 0 0 1 {}\r\nb\r\n", cas + 1).as_bytes(),
        b"EXISTS\r\n",
    );
    exchange(
        &mut c,
        format!("cas k 0 0 1 {cas}\r\nb\r\n").as_bytes(),
        b"STORED\r\n",
    );
    exchange(
        &mut c,
        format!("cas k 0 0 1 {cas}\r\nc\r\n").as_bytes(),
        b"EXISTS\r\n",
    );
    exchange(&mut c, b"get k\r\n", b"VALUE k 0 1\r\nb\r\nEND\r\n");
}

#[test]
fn noreply_is_silent() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    // Every noreply form, then a marker: only the marker's reply may come.
    c.write_all(
        b"set a 0 0 1 noreply\r\n1\r\nadd a 0 0 1 noreply\r\n2\r\nreplace a 0 0 1 noreply\r\n3\r\n\
          append a 0 0 1 noreply\r\n4\r\nprepend a 0 0 1 noreply\r\n5\r\nincr a 1 noreply\r\n\
          decr a 1 noreply\r\ntouch a 10 noreply\r\ndelete zz noreply\r\nflush_all noreply\r\n\
          verbosity 1 noreply\r\nset b 0 0 1 noreply\r\nx\r\nmn\r\n",
    )
    .unwrap();
    assert_eq!(read_until(&mut c, b"MN\r\n"), b"MN\r\n");
    exchange(&mut c, b"get b\r\n", b"VALUE b 0 1\r\nx\r\nEND\r\n");
}

/// The table against one core and against two: every answer is the same
/// whichever core owns a key.
#[test]
fn errors_are_memcacheds() {
    for threads in ["1", "2"] {
        errors_are_memcacheds_on(threads);
    }
}

fn errors_are_memcacheds_on(threads: &str) {
    let server = TestServer::start(&["--threads", threads]);
    let mut c = server.connect();
    let table: &[(&[u8], &[u8])] = &[
        (b"bogus\r\n", b"ERROR\r\n"),
        (b"\r\n", b"ERROR\r\n"),
        (b"get\r\n", b"ERROR\r\n"),
        (
            b"set k 0 0 -1\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"set k 0 0 3\r\nabcXX\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"incr k x\r\n",
            b"CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        (
            b"touch k x\r\n",
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (
            b"delete k 5\r\n",
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        (b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n"),
        (b"stats nonsense\r\n", b"ERROR\r\n"),
    ];
    for (request, reply) in table {
        exchange(&mut c, request, reply);
    }
    let long_key = format!("get {}\r\n", "k".repeat(251));
    exchange(
        &mut c,
        long_key.as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    // A value over -I is refused at once and its bytes are skipped as they
    // arrive: the next command works.
    c.write_all(b"set huge 0 0 2000000\r\n").unwrap();
    exchange(&mut c, b"", b"SERVER_ERROR object too large for cache\r\n");
    let chunk = vec![b'z'; 100_000];
    for _ in 0..20 {
        c.write_all(&chunk).unwrap();
    }
    exchange(&mut c, b"\r\nget huge\r\n", b"END\r\n");
    // Still the same connection.
    exchange(&mut c, b"set ok 0 0 2\r\nok\r\n", b"STORED\r\n");
}

#[test]
fn overlong_line_closes_the_connection() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.write_all(&vec![b'x'; 5000]).unwrap();
    assert!(common::is_closed(&mut c));
    // Others are unaffected.
    let mut d = server.connect();
    exchange(&mut d, b"set a 0 0 1\r\na\r\n", b"STORED\r\n");
}

#[test]
fn pipelines_across_both_shards_reply_in_order() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let zero = keys_on(0, 50, "p0-");
    let one = keys_on(1, 50, "p1-");
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..50 {
        for key in [&zero[i], &one[i]] {
            let value = format!("v-{key}");
            request.extend_from_slice(
                format!("set {key} {i} 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
            );
            expected.extend_from_slice(b"STORED\r\n");
            request.extend_from_slice(format!("get {key}\r\n").as_bytes());
            expected.extend_from_slice(
                format!("VALUE {key} {i} {}\r\n{value}\r\nEND\r\n", value.len()).as_bytes(),
            );
            request.extend_from_slice(format!("incr {key} 1\r\n").as_bytes());
            expected.extend_from_slice(
                b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
            );
        }
    }
    exchange(&mut c, &request, &expected);
    // A multi-get spanning both shards returns values in key order.
    let mut get = b"get".to_vec();
    let mut reply = Vec::new();
    for i in (0..50).rev() {
        for key in [&one[i], &zero[i], &format!("missing{i}")] {
            get.extend_from_slice(format!(" {key}").as_bytes());
            if !key.starts_with("missing") {
                let value = format!("v-{key}");
                reply.extend_from_slice(
                    format!("VALUE {key} {i} {}\r\n{value}\r\n", value.len()).as_bytes(),
                );
            }
        }
    }
    get.extend_from_slice(b"\r\n");
    reply.extend_from_slice(b"END\r\n");
    exchange(&mut c, &get, &reply);
    // Work really crossed cores.
    let stats = common::stats(&mut c, "cores");
    let forwarded: u64 =
        common::stat(&stats, "core:0:forwarded_out") + common::stat(&stats, "core:1:forwarded_out");
    assert!(forwarded >= 150, "forwarded {forwarded}");
}

/// The table against one core and against two: every answer is the same
/// whichever core owns a key.
#[test]
fn meta_commands() {
    for threads in ["1", "2"] {
        meta_commands_on(threads);
    }
}

fn meta_commands_on(threads: &str) {
    let server = TestServer::start(&["--threads", threads]);
    let mut c = server.connect();
    let table: &[(&[u8], &[u8])] = &[
        (b"mn\r\n", b"MN\r\n"),
        (b"mg missing v\r\n", b"EN\r\n"),
        (b"mg missing v q\r\nmn\r\n", b"MN\r\n"),
        (b"ms foo 2 T0 F5\r\nhi\r\n", b"HD\r\n"),
        (b"mg foo v f t s\r\n", b"VA 2 f5 t-1 s2\r\nhi\r\n"),
        (b"mg foo k O123 q\r\n", b"HD kfoo O123\r\n"),
        (b"mg foo\r\n", b"HD\r\n"),
        (b"ms foo 2 q\r\nho\r\nmn\r\n", b"MN\r\n"),
        (b"ms foo 1 ME\r\nx\r\n", b"NS\r\n"),
        (b"ms foo 1 MA\r\n!\r\n", b"HD\r\n"),
        (b"mg foo v\r\n", b"VA 3\r\nho!\r\n"),
        (b"ms foo 1 MR k\r\ny\r\n", b"HD kfoo\r\n"),
        (b"ms nothing 1 MR\r\ny\r\n", b"NS\r\n"),
        (b"md foo q\r\nmn\r\n", b"MN\r\n"),
        (b"md foo q\r\nmn\r\n", b"NF\r\nMN\r\n"),
        (b"md foo\r\n", b"NF\r\n"),
        (b"ma cnt\r\n", b"NF\r\n"),
        (b"ma cnt N0 J10 v\r\n", b"VA 2\r\n10\r\n"),
        (b"ma cnt D5 v\r\n", b"VA 2\r\n15\r\n"),
        (b"ma cnt MD D20 v\r\n", b"VA 1\r\n0\r\n"),
        (b"ms Zm9v 3 b\r\nbin\r\n", b"HD\r\n"),
        (b"mg Zm9v b v k\r\n", b"VA 3 kZm9v b\r\nbin\r\n"),
        (b"mg foo v\r\n", b"VA 3\r\nbin\r\n"),
        (b"mg k v v\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg k !\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (
            b"ms k 2 MZ\r\nhi\r\nmn\r\n",
            b"CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n",
        ),
        (b"me nothing\r\n", b"EN\r\n"),
    ];
    for (request, reply) in table {
        exchange(&mut c, request, reply);
    }
    c.write_all(b"me foo\r\n").unwrap();
    let debug = String::from_utf8(read_until(&mut c, b"\r\n")).unwrap();
    // la= counts whole seconds since the last access: 0, or 1 when a
    // second boundary fell between the request and this one.
    assert!(
        (debug.starts_with("ME foo exp=-1 la=0 cas=")
            || debug.starts_with("ME foo exp=-1 la=1 cas="))
            && debug.contains("fetch=yes"),
        "{debug}"
    );
    // cas via meta: c returns it, C compares it.
    c.write_all(b"mg foo c\r\n").unwrap();
    let line = String::from_utf8(read_until(&mut c, b"\r\n")).unwrap();
    let cas: u64 = line
        .trim_end()
        .strip_prefix("HD c")
        .unwrap()
        .parse()
        .unwrap();
    exchange(
        &mut c,
        format!("ms foo 1 C{}\r\nz\r\n", cas + 1).as_bytes(),
        b"EX\r\n",
    );
    exchange(
        &mut c,
        format!("ms foo 1 C{cas}\r\nz\r\n").as_bytes(),
        b"HD\r\n",
    );
    exchange(&mut c, b"md foo C1\r\n", b"EX\r\n");
}

#[test]
fn meta_anti_stampede_across_cores() {
    let server = TestServer::start(&[]);
    // Two clients, keys on both shards: exactly one wins each recache.
    let mut a = server.connect();
    let mut b = server.connect();
    for key in [&keys_on(0, 1, "hot0-")[0], &keys_on(1, 1, "hot1-")[0]] {
        exchange(
            &mut a,
            format!("mg {key} s v N30\r\n").as_bytes(),
            b"VA 0 s0 W\r\n\r\n",
        );
        exchange(
            &mut b,
            format!("mg {key} s v N30\r\n").as_bytes(),
            b"VA 0 s0 Z\r\n\r\n",
        );
        exchange(
            &mut a,
            format!("ms {key} 3 T60\r\nnew\r\n").as_bytes(),
            b"HD\r\n",
        );
        exchange(
            &mut b,
            format!("mg {key} v\r\n").as_bytes(),
            b"VA 3\r\nnew\r\n",
        );
        // Invalidate: stale value served, one winner.
        exchange(&mut a, format!("md {key} I T30\r\n").as_bytes(), b"HD\r\n");
        exchange(
            &mut b,
            format!("mg {key} v\r\n").as_bytes(),
            b"VA 3 X W\r\nnew\r\n",
        );
        exchange(
            &mut a,
            format!("mg {key} v\r\n").as_bytes(),
            b"VA 3 Z X\r\nnew\r\n",
        );
        // Recache below a TTL threshold.
        exchange(
            &mut a,
            format!("ms {key} 3 T100\r\nfin\r\n").as_bytes(),
            b"HD\r\n",
        );
        exchange(
            &mut a,
            format!("mg {key} v R200\r\n").as_bytes(),
            b"VA 3 W\r\nfin\r\n",
        );
        exchange(
            &mut b,
            format!("mg {key} v R200\r\n").as_bytes(),
            b"VA 3 Z\r\nfin\r\n",
        );
    }
}

#[test]
fn stats_counters_move() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let before = common::stats(&mut c, "");
    for key in keys_on(0, 3, "s0-")
        .iter()
        .chain(keys_on(1, 3, "s1-").iter())
    {
        exchange(
            &mut c,
            format!("set {key} 0 0 1\r\nx\r\n").as_bytes(),
            b"STORED\r\n",
        );
        exchange(
            &mut c,
            format!("get {key}\r\n").as_bytes(),
            format!("VALUE {key} 0 1\r\nx\r\nEND\r\n").as_bytes(),
        );
    }
    exchange(&mut c, b"get nope\r\n", b"END\r\n");
    exchange(&mut c, b"delete nope\r\n", b"NOT_FOUND\r\n");
    let after = common::stats(&mut c, "");
    let delta = |name: &str| common::stat(&after, name) - common::stat(&before, name);
    assert_eq!(delta("cmd_set"), 6);
    assert_eq!(delta("get_hits"), 6);
    assert_eq!(delta("get_misses"), 1);
    assert_eq!(delta("cmd_get"), 7);
    assert_eq!(delta("delete_misses"), 1);
    assert_eq!(common::stat(&after, "curr_items"), 6);
    assert_eq!(common::stat(&after, "threads"), 2);
    assert_eq!(common::stat(&after, "limit_maxbytes"), 16 << 20);
    assert!(common::stat(&after, "curr_connections") >= 1);
    assert!(common::stat(&after, "bytes") > 0);
    assert_eq!(common::stat(&after, "pid"), u64::from(server.pid()));
    let settings = common::stats(&mut c, "settings");
    assert_eq!(common::stat(&settings, "tcpport"), u64::from(server.port));
    let segments = common::stats(&mut c, "segments");
    assert!(common::stat(&segments, "core:0:segments_total") >= 8);
    assert!(common::stat(&segments, "core:1:segments_used") >= 1);
    // The slab groups list memcached's size classes the items fall in
    // (bin/tests/classes.rs), with the segments' memory as the total.
    let slabs = common::stats(&mut c, "slabs");
    assert_eq!(common::stat(&slabs, "active_slabs"), 1);
    assert_eq!(
        common::stat(&slabs, "total_malloced"),
        (common::stat(&segments, "core:0:segments_used")
            + common::stat(&segments, "core:1:segments_used"))
            * common::stat(&segments, "core:0:segment_size")
    );
    let items = common::stats(&mut c, "items");
    assert_eq!(common::stat(&items, "items:1:number"), 6);
    exchange(
        &mut c,
        b"stats sizes\r\n",
        b"STAT sizes_status disabled\r\nEND\r\n",
    );

    // `stats reset` zeroes the counters on every core, not the gauges.
    exchange(&mut c, b"stats reset\r\n", b"RESET\r\n");
    let reset = common::stats(&mut c, "");
    for counter in [
        "cmd_set",
        "get_hits",
        "get_misses",
        "delete_misses",
        "total_items",
    ] {
        assert_eq!(common::stat(&reset, counter), 0, "{counter}");
    }
    assert_eq!(common::stat(&reset, "cmd_get"), 0);
    assert_eq!(common::stat(&reset, "curr_items"), 6);
    assert!(common::stat(&reset, "bytes") > 0);
    assert!(common::stat(&reset, "curr_connections") >= 1);
    // Per-core counters too: since the reset, only the two `stats` requests
    // crossed cores (one op each, to the core not holding the connection).
    let cores = common::stats(&mut c, "cores");
    let forwarded_in =
        common::stat(&cores, "core:0:forwarded_in") + common::stat(&cores, "core:1:forwarded_in");
    assert!(forwarded_in <= 2, "{forwarded_in}");
}

/// `stats detail`: off until switched on; then classic get/set/delete are
/// counted per key prefix on whichever core the connection is on, and the
/// dump sums the cores (keys here live on both). Meta commands, incr and
/// touch are not counted; `stats reset` forgets the counts.
#[test]
fn stats_detail_counts_per_prefix_across_cores() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    exchange(
        &mut c,
        b"stats detail\r\n",
        b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
    );
    exchange(&mut c, b"stats detail dump\r\n", b"END\r\n");
    let settings = common::stats(&mut c, "settings");
    assert!(settings.contains(&("detail_enabled".into(), "no".into())));
    exchange(&mut c, b"set user:0 0 0 1\r\nx\r\n", b"STORED\r\n");
    exchange(&mut c, b"stats detail dump\r\n", b"END\r\n");

    exchange(&mut c, b"stats detail on\r\n", b"OK\r\n");
    // Another connection (perhaps on the other core) sees it switched on.
    let mut other = server.connect();
    let settings = common::stats(&mut other, "settings");
    assert!(settings.contains(&("detail_enabled".into(), "yes".into())));
    let keys: Vec<String> = keys_on(0, 2, "user:")
        .into_iter()
        .chain(keys_on(1, 2, "user:"))
        .collect();
    for key in &keys {
        exchange(
            &mut c,
            format!("set {key} 0 0 1\r\nx\r\n").as_bytes(),
            b"STORED\r\n",
        );
        exchange(
            &mut c,
            format!("incr {key} 1\r\n").as_bytes(),
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        );
    }
    let values: String = keys
        .iter()
        .map(|key| format!("VALUE {key} 0 1\r\nx\r\n"))
        .collect();
    exchange(
        &mut c,
        format!("get {} user:none\r\nmg {} v\r\n", keys.join(" "), keys[0]).as_bytes(),
        format!("{values}END\r\nVA 1\r\nx\r\n").as_bytes(),
    );
    exchange(
        &mut other,
        format!("delete {}\r\n", keys[3]).as_bytes(),
        b"DELETED\r\n",
    );
    exchange(&mut other, b"get session:1 nodelimiter\r\n", b"END\r\n");
    let counted: &[u8] = b"PREFIX session get 1 hit 0 set 0 del 0\r\n\
        PREFIX user get 5 hit 4 set 4 del 1\r\nEND\r\n";
    exchange(&mut c, b"stats detail dump\r\n", counted);
    exchange(&mut c, b"stats detail off\r\n", b"OK\r\n");
    exchange(
        &mut c,
        b"get user:0\r\n",
        b"VALUE user:0 0 1\r\nx\r\nEND\r\n",
    );
    exchange(&mut c, b"stats detail dump\r\n", counted);
    exchange(&mut c, b"stats reset\r\n", b"RESET\r\n");
    exchange(&mut c, b"stats detail dump\r\n", b"END\r\n");
}

/// Counters memcached keeps per command rather than per shard: one
/// flush_all counts once however many cores run it; sets refused for size
/// count as `store_too_large`. `stats settings` carries the fields
/// memcached's own tests read.
#[test]
fn server_wide_counters_and_settings() {
    let server = TestServer::start(&["-I", "1k"]);
    let mut c = server.connect();
    exchange(&mut c, b"flush_all\r\n", b"OK\r\n");
    exchange(&mut c, b"flush_all noreply\r\nmn\r\n", b"MN\r\n");
    let big = "x".repeat(2048);
    exchange(
        &mut c,
        format!("set big 0 0 {}\r\n{big}\r\n", big.len()).as_bytes(),
        b"SERVER_ERROR object too large for cache\r\n",
    );
    let stats = common::stats(&mut c, "");
    assert_eq!(common::stat(&stats, "cmd_flush"), 2);
    assert_eq!(common::stat(&stats, "store_too_large"), 1);
    assert_eq!(common::stat(&stats, "store_no_memory"), 0);
    assert!(common::stat(&stats, "hash_bytes") > 0);
    exchange(&mut c, b"stats reset\r\n", b"RESET\r\n");
    let stats = common::stats(&mut c, "");
    assert_eq!(common::stat(&stats, "cmd_flush"), 0);
    assert_eq!(common::stat(&stats, "store_too_large"), 0);
    let settings = common::stats(&mut c, "settings");
    for (name, value) in [
        ("inter", "127.0.0.1"),
        ("udpport", "0"),
        ("domain_socket", "NULL"),
        ("flush_enabled", "yes"),
        ("auth_enabled_sasl", "no"),
        ("cas_enabled", "yes"),
        ("stat_key_prefix", ":"),
        ("item_size_max", "1024"),
    ] {
        assert!(
            settings.contains(&(name.into(), value.into())),
            "{name} {value}: {settings:?}"
        );
    }
}

/// `-F` refuses flush_all (counted all the same, as memcached counts it);
/// `-D` picks the prefix delimiter and turns `stats detail` on at start.
#[test]
fn flush_disabled_and_detail_from_the_command_line() {
    let server = TestServer::start(&["-F", "-D", "/"]);
    let mut c = server.connect();
    exchange(&mut c, b"set img/1 0 0 1\r\nx\r\n", b"STORED\r\n");
    exchange(
        &mut c,
        b"flush_all\r\n",
        b"CLIENT_ERROR flush_all not allowed\r\n",
    );
    exchange(&mut c, b"flush_all 0 noreply\r\nmn\r\n", b"MN\r\n");
    exchange(
        &mut c,
        b"get img/1 user:1\r\n",
        b"VALUE img/1 0 1\r\nx\r\nEND\r\n",
    );
    exchange(
        &mut c,
        b"stats detail dump\r\n",
        b"PREFIX img get 1 hit 1 set 1 del 0\r\nEND\r\n",
    );
    let stats = common::stats(&mut c, "");
    assert_eq!(common::stat(&stats, "cmd_flush"), 2);
    let settings = common::stats(&mut c, "settings");
    for (name, value) in [
        ("flush_enabled", "no"),
        ("detail_enabled", "yes"),
        ("stat_key_prefix", "/"),
    ] {
        assert!(settings.contains(&(name.into(), value.into())), "{name}");
    }
}

/// The fd `stats conns` lists with address `addr`.
fn fd_with_addr(stats: &[(String, String)], addr: &str) -> Option<String> {
    stats
        .iter()
        .find(|(k, v)| k.ends_with(":addr") && v == addr)
        .map(|(k, _)| k.trim_end_matches(":addr").to_string())
}

/// `stats conns`: every listener (one per core) and client by fd, with
/// memcached's fields; a client that sent half a request is `conn_nread`.
#[test]
fn stats_conns_lists_listeners_and_clients() {
    let server = TestServer::start(&[]);
    let mut waiting = server.connect();
    waiting.write_all(b"set foo 0 0 6\r\n").unwrap();
    let mut c = server.connect();
    let waiting_addr = format!("tcp:{}", waiting.local_addr().unwrap());
    let own_addr = format!("tcp:{}", c.local_addr().unwrap());
    let listen_addr = format!("tcp:127.0.0.1:{}", server.port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let stats = loop {
        let stats = common::stats(&mut c, "conns");
        let nread = fd_with_addr(&stats, &waiting_addr)
            .is_some_and(|fd| stats.contains(&(format!("{fd}:state"), "conn_nread".into())));
        if nread {
            break stats;
        }
        assert!(std::time::Instant::now() < deadline, "{stats:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let listeners: Vec<&String> = stats
        .iter()
        .filter(|(_, v)| v == "conn_listening")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listeners.len(), 2, "one listener per core: {stats:?}");
    for state in listeners {
        let fd = state.trim_end_matches(":state");
        assert!(stats.contains(&(format!("{fd}:addr"), listen_addr.clone())));
    }
    let own = fd_with_addr(&stats, &own_addr).expect("the asking connection is listed");
    for (field, value) in [
        ("listen_addr", listen_addr.as_str()),
        ("state", "conn_parse_cmd"),
        ("secs_since_last_cmd", "0"),
    ] {
        assert!(
            stats.contains(&(format!("{own}:{field}"), value.into())),
            "{field}: {stats:?}"
        );
    }
    // Finishing the request puts the other one back to waiting for commands.
    waiting.write_all(b"foobar\r\n").unwrap();
    let mut reply = [0u8; 8];
    std::io::Read::read_exact(&mut waiting, &mut reply).unwrap();
    assert_eq!(&reply, b"STORED\r\n");
    drop(waiting);
}

/// memcached unlinks the old value of a `set` (and of any `ms`) refused as
/// too large, so no stale value outlives the attempt to replace it; `add`,
/// `append` and the rest leave it. Keys on both cores.
#[test]
fn refused_set_unlinks_the_old_value() {
    let server = TestServer::start(&["-I", "1k"]);
    let mut c = server.connect();
    let big = "x".repeat(2048);
    for core in 0..2 {
        let keys = keys_on(core, 3, "big");
        let (set_key, add_key, ms_key) = (&keys[0], &keys[1], &keys[2]);
        for key in &keys {
            exchange(
                &mut c,
                format!("set {key} 0 0 3\r\nold\r\n").as_bytes(),
                b"STORED\r\n",
            );
        }
        // (refused store, then the read that shows what is left)
        let cases = [
            (
                format!("set {set_key} 0 0 2048"),
                format!("get {set_key}"),
                "END\r\n".to_string(),
            ),
            (
                format!("append {add_key} 0 0 2048"),
                format!("get {add_key}"),
                format!("VALUE {add_key} 0 3\r\nold\r\nEND\r\n"),
            ),
            (
                format!("ms {ms_key} 2048 ME"),
                format!("mg {ms_key} v"),
                "EN\r\n".to_string(),
            ),
        ];
        for (store, read, left) in cases {
            exchange(
                &mut c,
                format!("{store}\r\n{big}\r\n").as_bytes(),
                b"SERVER_ERROR object too large for cache\r\n",
            );
            exchange(&mut c, format!("{read}\r\n").as_bytes(), left.as_bytes());
        }
        // Pipelined with other requests, noreply: silent, still unlinked.
        exchange(
            &mut c,
            format!("set {add_key} 0 0 2048 noreply\r\n{big}\r\nmn\r\n").as_bytes(),
            b"MN\r\n",
        );
        exchange(&mut c, format!("get {add_key}\r\n").as_bytes(), b"END\r\n");
    }
}
