//! The `--metrics-listen` endpoint, scraped over real sockets: memcached_
//! exporter's names and types with the values known traffic must produce,
//! per-core segcore_ metrics, 404 for anything but `GET /metrics`, and a
//! silent or oversized client that cannot hold the endpoint.

mod common;

use common::{exchange, free_port, keys_on, TestServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `request` and returns the whole reply (the server closes after
/// one), as (status line, body).
fn http(port: u16, request: &[u8]) -> (String, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(request).unwrap();
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).expect("reply until close");
    let reply = String::from_utf8(reply).expect("utf-8 reply");
    let (head, body) = reply.split_once("\r\n\r\n").expect("head and body");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn scrape(port: u16) -> String {
    let (status, body) = http(port, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

/// The value of the sample line `name{labels}` (exact match of the part
/// before the value).
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().expect("a number"))
        })
        .unwrap_or_else(|| panic!("no sample {series} in:\n{body}"))
}

fn type_of<'a>(body: &'a str, family: &str) -> &'a str {
    let prefix = format!("# TYPE {family} ");
    body.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no TYPE for {family}"))
}

fn start() -> (TestServer, u16) {
    for _ in 0..5 {
        let metrics = free_port();
        let port = metrics.to_string();
        let server = TestServer::start(&["--metrics-listen", &port]);
        if TcpStream::connect(("127.0.0.1", metrics)).is_ok() {
            return (server, metrics);
        }
    }
    panic!("no metrics port");
}

#[test]
fn metrics_carry_memcached_exporter_names_and_the_traffic_counts() {
    let (server, metrics) = start();
    let mut c = server.connect();
    // Keys on both cores, so the sums cross the mesh.
    let keys: Vec<String> = [keys_on(0, 2, "m0"), keys_on(1, 2, "m1")].concat();
    for k in &keys {
        exchange(
            &mut c,
            format!("set {k} 0 0 1\r\nv\r\n").as_bytes(),
            b"STORED\r\n",
        );
    }
    for k in &keys {
        exchange(
            &mut c,
            format!("get {k}\r\n").as_bytes(),
            format!("VALUE {k} 0 1\r\nv\r\nEND\r\n").as_bytes(),
        );
    }
    exchange(&mut c, b"get nothing-here\r\n", b"END\r\n");
    exchange(
        &mut c,
        format!("delete {}\r\n", keys[0]).as_bytes(),
        b"DELETED\r\n",
    );
    exchange(&mut c, b"incr nothing-here 1\r\n", b"NOT_FOUND\r\n");
    exchange(
        &mut c,
        b"cas nothing-here 0 0 1 5\r\nv\r\n",
        b"NOT_FOUND\r\n",
    );

    let body = scrape(metrics);
    let get = |series: &str| sample(&body, series);
    assert_eq!(get("memcached_up"), 1.0);
    assert_eq!(
        get(r#"memcached_commands_total{command="get",status="hit"}"#),
        4.0
    );
    assert_eq!(
        get(r#"memcached_commands_total{command="get",status="miss"}"#),
        1.0
    );
    assert_eq!(
        get(r#"memcached_commands_total{command="delete",status="hit"}"#),
        1.0
    );
    assert_eq!(
        get(r#"memcached_commands_total{command="incr",status="miss"}"#),
        1.0
    );
    assert_eq!(
        get(r#"memcached_commands_total{command="cas",status="miss"}"#),
        1.0
    );
    // set/hit is cmd_set without the cas commands, as the exporter has it.
    assert_eq!(
        get(r#"memcached_commands_total{command="set",status="hit"}"#),
        4.0
    );
    assert_eq!(get("memcached_current_items"), 3.0);
    assert_eq!(get("memcached_items_total"), 4.0);
    assert_eq!(get("memcached_current_connections"), 1.0);
    assert_eq!(get("memcached_max_connections"), 1024.0);
    assert_eq!(get("memcached_limit_bytes"), (16u64 << 20) as f64);
    assert!(get("memcached_read_bytes_total") > 0.0);
    assert!(get("memcached_written_bytes_total") > 0.0);
    assert!(get("memcached_connections_total") >= 1.0);
    assert_eq!(get("memcached_items_evicted_total"), 0.0);
    assert_eq!(get("memcached_items_reclaimed_total"), 0.0);
    assert!(get("memcached_current_bytes") > 0.0);
    assert!(get("memcached_uptime_seconds") >= 0.0);
    assert!(body.contains("memcached_version{version=\"1.6.21-segcore-"));
    // Per-core segcore_ metrics, with a core label.
    assert_eq!(get(r#"segcore_items{core="0"}"#), 1.0);
    assert_eq!(get(r#"segcore_items{core="1"}"#), 2.0);
    assert!(get(r#"segcore_segments_used{core="1"}"#) >= 1.0);
    // Types: counters end in _total, gauges do not.
    assert_eq!(type_of(&body, "memcached_commands_total"), "counter");
    assert_eq!(type_of(&body, "memcached_current_items"), "gauge");
    assert_eq!(type_of(&body, "segcore_requests_total"), "counter");
    // One TYPE line per family.
    let families = body
        .lines()
        .filter(|l| l.starts_with("# TYPE memcached_commands_total "))
        .count();
    assert_eq!(families, 1);
    server.stop();
}

#[test]
fn anything_but_get_metrics_is_not_found_and_bad_clients_are_bounded() {
    let (server, metrics) = start();
    assert_eq!(
        http(metrics, b"GET / HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http(metrics, b"POST /metrics HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http(metrics, b"stats\r\n\r\n").0,
        "HTTP/1.1 400 Bad Request"
    );
    // A head larger than the endpoint reads is refused, not buffered.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.resize(64 << 10, b'a');
    let mut c = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = c.write_all(&huge);
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    assert!(
        reply.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&reply[..reply.len().min(80)])
    );
    // Silent clients do not stop a scrape, and the memcached port is
    // unaffected.
    let silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", metrics)).unwrap())
        .collect();
    assert!(scrape(metrics).contains("memcached_up 1"));
    let mut m = server.connect();
    exchange(&mut m, b"version\r\n", b"VERSION 1.6.21-segcore-");
    drop(silent);
    server.stop();
}

/// `stats latency` counts each request in its class, on whichever core its
/// connection is, and `stats reset` clears it; /metrics carries the same
/// counts as a histogram.
#[test]
fn latency_is_counted_per_command_class() {
    let (server, metrics) = start();
    let mut c = server.connect();
    let mut pipeline = Vec::new();
    for i in 0..100 {
        pipeline.extend_from_slice(format!("set k{i} 0 0 1\r\nv\r\n").as_bytes());
    }
    c.write_all(&pipeline).unwrap();
    common::read_exact(&mut c, 100 * b"STORED\r\n".len());
    for i in 0..1000 {
        let k = i % 100;
        exchange(
            &mut c,
            format!("get k{k}\r\n").as_bytes(),
            format!("VALUE k{k} 0 1\r\nv\r\nEND\r\n").as_bytes(),
        );
    }
    exchange(&mut c, b"mg k1 v\r\n", b"VA 1\r\nv\r\n");
    exchange(&mut c, b"delete k1\r\n", b"DELETED\r\n");
    let mut second = server.connect();
    exchange(
        &mut second,
        b"incr k2 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );

    let stats = common::stats(&mut c, "latency");
    let stat = |name: &str| common::stat(&stats, name);
    assert_eq!(stat("get_count"), 1000);
    assert_eq!(stat("set_count"), 100);
    assert_eq!(stat("meta_get_count"), 1);
    assert_eq!(stat("delete_count"), 1);
    assert_eq!(stat("arith_count"), 1);
    assert_eq!(stat("touch_count"), 0);
    let value = |name: &str| -> f64 {
        stats
            .iter()
            .find(|(n, _)| n == name)
            .expect(name)
            .1
            .parse()
            .unwrap()
    };
    assert!(value("get_p50_us") > 0.0);
    assert!(value("get_p50_us") <= value("get_p99_us"));
    assert!(value("get_p99_us") <= value("get_max_us"));

    let body = scrape(metrics);
    assert_eq!(
        sample(
            &body,
            r#"segcore_request_duration_seconds_count{command="get"}"#
        ),
        1000.0
    );
    assert_eq!(
        sample(
            &body,
            r#"segcore_request_duration_seconds_bucket{command="get",le="+Inf"}"#
        ),
        1000.0
    );
    assert_eq!(
        type_of(&body, "segcore_request_duration_seconds"),
        "histogram"
    );

    exchange(&mut c, b"stats reset\r\n", b"RESET\r\n");
    let stats = common::stats(&mut c, "latency");
    assert_eq!(common::stat(&stats, "get_count"), 0);
    server.stop();
}

/// A key requested 1,000 times among many requested once tops `stats
/// hotkeys` whichever core owns it, with its owner named; `stats reset`
/// forgets the counts.
#[test]
fn a_hot_key_tops_the_list_on_either_core() {
    let (server, metrics) = start();
    let mut c = server.connect();
    for core in 0..2 {
        let hot = &keys_on(core, 1, &format!("hot{core}x"))[0];
        exchange(&mut c, b"stats reset\r\n", b"RESET\r\n");
        let mut pipeline = Vec::new();
        for i in 0..1000 {
            pipeline.extend_from_slice(format!("get {hot}\r\nget cold-{core}-{i}\r\n").as_bytes());
        }
        c.write_all(&pipeline).unwrap();
        common::read_exact(&mut c, 2000 * b"END\r\n".len());
        let stats = common::stats(&mut c, "hotkeys 3");
        assert_eq!(stats.len(), 3, "{stats:?}");
        let (name, value) = &stats[0];
        assert_eq!(name, "hotkey:1");
        let fields: Vec<&str> = value.split(' ').collect();
        assert_eq!(fields[0], hot, "{stats:?}");
        assert_eq!(fields[2], core.to_string(), "owner core");
        let estimate: u64 = fields[1].parse().unwrap();
        assert!((500..=2000).contains(&estimate), "{estimate}");
        if core == 1 {
            let body = scrape(metrics);
            let series = format!("segcore_hot_key_requests{{key=\"{hot}\",core=\"1\"}}");
            assert_eq!(sample(&body, &series), estimate as f64);
        }
    }
    exchange(&mut c, b"stats reset\r\n", b"RESET\r\n");
    assert!(common::stats(&mut c, "hotkeys").is_empty());
    server.stop();
}

/// `stats settings` shows each core's CPU, its NUMA node, and the node of
/// its shard's memory (first touched by the core itself, so the same node
/// wherever the kernel says).
#[test]
fn each_core_reports_its_cpu_and_numa_nodes() {
    let (server, metrics) = start();
    let mut c = server.connect();
    let settings = common::stats(&mut c, "settings");
    let get = |name: &str| -> i64 {
        settings
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {settings:?}"))
            .1
            .parse()
            .unwrap()
    };
    let mut cpus = Vec::new();
    for core in 0..2 {
        let cpu = get(&format!("core:{core}:cpu"));
        assert!(cpu >= 0);
        cpus.push(cpu);
        let node = get(&format!("core:{core}:numa_node"));
        if std::path::Path::new("/sys/devices/system/node/node0").exists() {
            let sys = format!("/sys/devices/system/cpu/cpu{cpu}/node{node}");
            assert!(std::path::Path::new(&sys).exists(), "{sys}");
        }
        let memory = get(&format!("core:{core}:memory_node"));
        assert!(
            memory == -1 || memory == node,
            "memory on node {memory}, cpu on {node}"
        );
    }
    assert_eq!(cpus.len(), 2);
    let body = scrape(metrics);
    assert!(
        body.contains(&format!(
            "segcore_core_info{{core=\"0\",cpu=\"{}\"",
            cpus[0]
        )),
        "{body}"
    );
    server.stop();
}
