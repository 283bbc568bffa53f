//! Warm restart with `-e`: a SIGUSR1 stop keeps the cache, a start with the
//! same settings takes it back; anything else starts empty and says why.

mod common;

use common::{read_until, stat, stats, TestServer};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A folder for memory files (on tmpfs when there is one), removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!("segcore-warm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("folder");
        Folder(path)
    }

    fn file(&self) -> String {
        self.0.join("mem").display().to_string()
    }

    fn log(&self) -> PathBuf {
        self.0.join("stderr.log")
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends `requests` pipelined and reads `replies` lines back.
fn pipeline(c: &mut TcpStream, requests: &[u8], replies: usize) {
    c.write_all(requests).expect("write");
    let mut seen = 0;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while seen < replies {
        let n = std::io::Read::read(c, &mut buf).expect("read");
        assert!(n > 0, "closed");
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = pending.drain(..end + 2).collect();
            assert!(
                line == b"STORED\r\n" || line.ends_with(b"\r\n") && line[0].is_ascii_digit(),
                "{:?}",
                String::from_utf8_lossy(&line)
            );
            seen += 1;
        }
    }
}

/// `get` of `keys` as (key, flags, value, cas) via `gets`.
fn gets(c: &mut TcpStream, keys: &[String]) -> HashMap<String, (u32, Vec<u8>, u64)> {
    c.write_all(format!("gets {}\r\n", keys.join(" ")).as_bytes())
        .expect("write");
    let reply = read_until(c, b"END\r\n");
    let mut out = HashMap::new();
    let mut at = 0;
    while reply[at..].starts_with(b"VALUE ") {
        let line_end = at
            + reply[at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("line");
        let line = String::from_utf8(reply[at..line_end].to_vec()).expect("utf8");
        let parts: Vec<&str> = line.split(' ').collect();
        let len: usize = parts[3].parse().expect("len");
        let value = reply[line_end + 2..line_end + 2 + len].to_vec();
        out.insert(
            parts[1].to_string(),
            (
                parts[2].parse().expect("flags"),
                value,
                parts[4].parse().expect("cas"),
            ),
        );
        at = line_end + 2 + len + 2;
    }
    out
}

fn value_for(i: usize) -> Vec<u8> {
    let len = if i % 1000 == 7 { 100_000 } else { 5 + i % 200 };
    (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect()
}

#[test]
fn a_sigusr1_stop_keeps_the_cache() {
    let folder = Folder::new("keep");
    let file = folder.file();
    let args = ["-e", file.as_str(), "-m", "256"];
    let server = TestServer::start(&args);
    let mut c = server.connect();
    // 100k items: flags, sizes up to 100 KB, no TTL, 2 s or 1 h.
    let count = 100_000;
    let mut expected: HashMap<String, (u32, Vec<u8>)> = HashMap::new();
    let mut batch = Vec::new();
    let mut in_batch = 0;
    let stored_at = Instant::now();
    for i in 0..count {
        let key = format!("k{i}");
        let value = value_for(i);
        let ttl = [0, 2, 3600][i % 3];
        batch.extend_from_slice(format!("set {key} {i} {ttl} {}\r\n", value.len()).as_bytes());
        batch.extend_from_slice(&value);
        batch.extend_from_slice(b"\r\n");
        in_batch += 1;
        if ttl != 2 {
            expected.insert(key, (i as u32, value));
        }
        if in_batch == 500 || i + 1 == count {
            pipeline(&mut c, &batch, in_batch);
            batch.clear();
            in_batch = 0;
        }
    }
    // Appended, incremented and cas-replaced items.
    let mut old_cas = HashSet::new();
    for j in 0..300 {
        let (a, n, x) = (format!("k{}", j * 3), format!("n{j}"), format!("c{j}"));
        pipeline(&mut c, format!("append {a} 0 0 1\r\n+\r\n").as_bytes(), 1);
        expected.get_mut(&a).expect("no-TTL item").1.push(b'+');
        pipeline(
            &mut c,
            format!(
                "set {n} 0 0 {}\r\n{j}\r\nincr {n} 5\r\n",
                j.to_string().len()
            )
            .as_bytes(),
            2,
        );
        expected.insert(n, (0, (j + 5).to_string().into_bytes()));
        pipeline(&mut c, format!("set {x} 9 0 3\r\nold\r\n").as_bytes(), 1);
        let cas = gets(&mut c, std::slice::from_ref(&x))[&x].2;
        pipeline(
            &mut c,
            format!("cas {x} 9 0 3 {cas}\r\nnew\r\n").as_bytes(),
            1,
        );
        old_cas.insert(cas);
        old_cas.insert(gets(&mut c, std::slice::from_ref(&x))[&x].2);
        expected.insert(x, (9, b"new".to_vec()));
    }
    let held = stat(&stats(&mut c, ""), "curr_items");
    assert!(server.stop_with(libc::SIGUSR1).success());

    let server = TestServer::start_logging(&args, Some(&folder.log()));
    let mut c = server.connect();
    let s = stats(&mut c, "");
    assert_eq!(stat(&s, "restart_warm_start"), 1, "{}", folder.logged());
    // Everything but the 2 s items that expired while it was down.
    let restored = stat(&s, "restart_restored_items");
    assert!(
        (expected.len() as u64..=held).contains(&restored),
        "{restored} restored of {held}"
    );
    assert_eq!(stat(&s, "curr_items"), restored);
    assert_eq!(stat(&s, "cmd_set"), 0, "counters restart from zero");
    // Wait out the 2 s items, then every other item reads as it was.
    let wait = Duration::from_secs(3).saturating_sub(stored_at.elapsed());
    std::thread::sleep(wait);
    let keys: Vec<String> = (0..count)
        .map(|i| format!("k{i}"))
        .chain((0..300).map(|j| format!("n{j}")))
        .chain((0..300).map(|j| format!("c{j}")))
        .collect();
    for chunk in keys.chunks(100) {
        let got = gets(&mut c, chunk);
        for key in chunk {
            let want = expected.get(key);
            let have = got.get(key).map(|(f, v, _)| (*f, v.clone()));
            assert_eq!(have.as_ref(), want, "{key}");
        }
    }
    // Writes after the restart get cas values never handed out before it.
    for j in 0..300 {
        let x = format!("c{j}");
        pipeline(&mut c, format!("set {x} 0 0 5\r\nnewer\r\n").as_bytes(), 1);
        let cas = gets(&mut c, std::slice::from_ref(&x))[&x].2;
        assert!(!old_cas.contains(&cas), "cas {cas} handed out again");
    }
    assert!(server.stop().success());
}

/// One item stored, the server stopped by `stop`, `tamper` applied to the
/// folder, and a start with `restart_args`: nothing may come back, and the
/// log says why (when `why` is given).
fn starts_empty(
    name: &str,
    stop: i32,
    tamper: impl Fn(&Path),
    restart_args: &[&str],
    why: Option<&str>,
) {
    let folder = Folder::new(name);
    let file = folder.file();
    let server = TestServer::start(&["-e", &file, "-m", "32"]);
    let mut c = server.connect();
    pipeline(&mut c, b"set kept 0 0 5\r\nvalue\r\n", 1);
    server.stop_with(stop);
    tamper(&folder.0);
    let mut args = vec!["-e", file.as_str()];
    args.extend_from_slice(restart_args);
    let server = TestServer::start_logging(&args, Some(&folder.log()));
    let mut c = server.connect();
    assert!(
        gets(&mut c, &["kept".to_string()]).is_empty(),
        "{name}: nothing restored"
    );
    let s = stats(&mut c, "");
    assert_eq!(stat(&s, "restart_warm_start"), 0, "{name}");
    assert_eq!(stat(&s, "restart_restored_items"), 0, "{name}");
    // It serves as an empty cache.
    pipeline(&mut c, b"set after 0 0 2\r\nok\r\n", 1);
    assert_eq!(gets(&mut c, &["after".to_string()])["after"].1, b"ok");
    if let Some(why) = why {
        let log = folder.logged();
        assert!(
            log.contains("starting empty") && log.contains(why),
            "{name}: {log}"
        );
    }
    server.stop();
}

#[test]
fn other_settings_or_an_unclean_stop_start_empty() {
    let none = |_: &Path| {};
    let usr1 = libc::SIGUSR1;
    starts_empty("memory", usr1, none, &["-m", "64"], Some("-m"));
    starts_empty(
        "cores",
        usr1,
        none,
        &["-m", "32", "--threads", "1"],
        Some("core"),
    );
    starts_empty(
        "segment",
        usr1,
        none,
        &["-m", "32", "--segment-size", "2m"],
        Some("segment size"),
    );
    starts_empty(
        "sigkill",
        libc::SIGKILL,
        none,
        &["-m", "32"],
        Some("not SIGUSR1"),
    );
    starts_empty(
        "sigterm",
        libc::SIGTERM,
        none,
        &["-m", "32"],
        Some("not SIGUSR1"),
    );
    let truncate = |dir: &Path| {
        for core in 0..2 {
            let meta = dir.join(format!("mem.{core}.meta"));
            let bytes = std::fs::read(&meta).expect("metadata");
            std::fs::write(&meta, &bytes[..bytes.len() / 2]).expect("truncate");
        }
    };
    starts_empty("truncated", usr1, truncate, &["-m", "32"], Some("damaged"));
    let other_version = |dir: &Path| {
        for core in 0..2 {
            let meta = dir.join(format!("mem.{core}.meta"));
            let mut bytes = std::fs::read(&meta).expect("metadata");
            bytes[8] = 0xee;
            std::fs::write(&meta, &bytes).expect("rewrite");
        }
    };
    starts_empty(
        "version",
        usr1,
        other_version,
        &["-m", "32"],
        Some("format"),
    );
}

#[test]
fn a_memory_file_in_a_missing_folder_is_refused() {
    let out = common::segcore()
        .args(["-e", "/nonexistent-segcore-folder/mem", "-p", "1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not exist") && !err.contains("panicked"),
        "{err}"
    );
}

/// `keys` all set to `value` through one connection.
fn set_all(c: &mut TcpStream, keys: &[String], value: &str) {
    let mut batch = Vec::new();
    for key in keys {
        batch.extend_from_slice(format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes());
    }
    pipeline(c, &batch, keys.len());
}

/// Starts a server on the memory file with `args`, logging to the folder.
fn start_on(folder: &Folder, args: &[&str]) -> TestServer {
    let file = folder.file();
    let mut all = vec!["-e", file.as_str()];
    all.extend_from_slice(args);
    TestServer::start_logging(&all, Some(&folder.log()))
}

/// A run that changes the settings between two runs with the first ones
/// (stopped by `middle_stop`, after overwriting every key) must never make
/// the third run serve the first run's values.
fn overwritten_values_never_come_back(name: &str, middle: &[&str], middle_stop: i32) {
    let folder = Folder::new(name);
    let keys: Vec<String> = (0..2000).map(|i| format!("key{i}")).collect();
    let first = ["--threads", "2", "-m", "32"];

    let server = start_on(&folder, &first);
    set_all(&mut server.connect(), &keys, "old");
    assert!(server.stop_with(libc::SIGUSR1).success());

    let server = start_on(&folder, middle);
    let mut c = server.connect();
    assert!(
        gets(&mut c, &keys).is_empty(),
        "{name}: the middle run starts empty"
    );
    set_all(&mut c, &keys, "new");
    server.stop_with(middle_stop);

    let server = start_on(&folder, &first);
    let mut c = server.connect();
    let seen = gets(&mut c, &keys);
    for (key, (_, value, _)) in &seen {
        assert_eq!(
            value, b"new",
            "{name}: {key} came back with an overwritten value"
        );
    }
    assert!(
        seen.is_empty(),
        "{name}: nothing is restored from a mix of stops"
    );
    assert!(folder.logged().contains("starting empty"), "{name}");
    server.stop();
}

#[test]
fn a_restart_never_serves_values_overwritten_after_the_save() {
    let usr1 = libc::SIGUSR1;
    overwritten_values_never_come_back("fewer-cores", &["--threads", "1", "-m", "32"], usr1);
    overwritten_values_never_come_back(
        "fewer-cores-crash",
        &["--threads", "1", "-m", "32"],
        libc::SIGKILL,
    );
    overwritten_values_never_come_back("other-memory", &["--threads", "2", "-m", "64"], usr1);
}

#[test]
fn memory_files_swapped_between_cores_start_empty() {
    let swap = |dir: &Path| {
        for suffix in ["", ".meta"] {
            let (a, b) = (
                dir.join(format!("mem.0{suffix}")),
                dir.join(format!("mem.1{suffix}")),
            );
            let tmp = dir.join("swap");
            std::fs::rename(&a, &tmp).unwrap();
            std::fs::rename(&b, &a).unwrap();
            std::fs::rename(&tmp, &b).unwrap();
        }
    };
    starts_empty(
        "swapped",
        libc::SIGUSR1,
        swap,
        &["-m", "32"],
        Some("another core"),
    );
}

#[test]
fn a_second_server_on_the_same_memory_file_is_refused() {
    let folder = Folder::new("twice");
    let file = folder.file();
    let server = start_on(&folder, &["-m", "32"]);
    let mut c = server.connect();
    pipeline(&mut c, b"set mine 0 0 5\r\nfirst\r\n", 1);
    let port = common::free_port().to_string();
    let out = common::segcore()
        .args(["-e", &file, "-m", "32", "-p", &port])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another server") && err.contains(&server.pid().to_string()),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // The first server's data is untouched.
    assert_eq!(gets(&mut c, &["mine".to_string()])["mine"].1, b"first");
    assert!(server.stop_with(libc::SIGUSR1).success());
    // Once it is gone, the path is free again and the cache comes back.
    let server = start_on(&folder, &["-m", "32"]);
    let mut c = server.connect();
    assert_eq!(gets(&mut c, &["mine".to_string()])["mine"].1, b"first");
    server.stop();
}
