//! Test plumbing: start the real `segcore` binary on a free loopback port,
//! wait for the port (never a fixed sleep), talk raw bytes, stop it with
//! SIGTERM. Shared by the integration test files.
#![allow(dead_code)] // each test file uses part of this

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use segcore_engine::storage::HashedKey;

/// The `segcore` binary under test, with `-u` and this process's user:
/// as root memcached's rule needs a user named, and for anyone else `-u`
/// changes nothing.
pub fn segcore() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_segcore"));
    command.args(["-u", &user_name()]);
    command
}

/// This process's user name (effective uid).
pub fn user_name() -> String {
    // SAFETY: getpwuid returns static storage or null; it is read at once
    // and copied, before any other passwd call of this thread.
    unsafe {
        let entry = libc::getpwuid(libc::geteuid());
        assert!(!entry.is_null(), "this process's uid has no passwd entry");
        std::ffi::CStr::from_ptr((*entry).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// A running server process, killed on drop if not stopped.
pub struct TestServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// It speaks TLS (readiness is the port accepting).
    tls: bool,
    /// Ports it must answer on before it is ready: one, or one per core
    /// with `--port-per-core` (core 0 answering says nothing of core 1).
    ports: u16,
}

/// A port nobody listens on right now, below the kernel's ephemeral range
/// (32768+ by default). Picked before the server starts: with SO_REUSEPORT
/// each core binding port 0 would get a different port. Staying out of the
/// ephemeral range matters: a probe `connect` to an ephemeral port nobody
/// listens on can be given that same port as its source and connect to
/// itself (TCP simultaneous open), and a client socket of a parallel test
/// can hold it — both made a test see a "listening" port that was not ours.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for _ in 0..1000 {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(step.wrapping_mul(2_654_435_761)) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// Whether something on `port` answers `version` as memcached does.
pub fn answers_version(port: u16) -> bool {
    let Ok(mut probe) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = probe.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = [0u8; 8];
    probe.write_all(b"version\r\n").is_ok()
        && probe.read_exact(&mut reply).is_ok()
        && &reply == b"VERSION "
}

/// Whether a server that requires authentication is up on `port`: a text
/// `version` is refused as unauthenticated (`-Y`), or a binary Version is
/// answered (`-S` allows it before authentication).
fn answers_unauthenticated(port: u16) -> bool {
    let probe = |request: &[u8], reply: &mut [u8]| {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        c.write_all(request).is_ok() && c.read_exact(reply).is_ok()
    };
    let mut text = [0u8; 30];
    if probe(b"version\r\n", &mut text) && &text == b"CLIENT_ERROR unauthenticated\r\n" {
        return true;
    }
    let mut version = [0u8; 24];
    version[0] = 0x80;
    version[1] = 0x0b;
    let mut head = [0u8; 24];
    probe(&version, &mut head) && head[0] == 0x81 && head[1] == 0x0b
}

impl TestServer {
    /// Starts `segcore --threads 2 -m 16` plus `extra` arguments (which may
    /// set `--threads` and `-m` themselves), on a fresh
    /// port; if the server exits before it answers (its port was taken in
    /// the meantime), tries again on another port.
    pub fn start(extra: &[&str]) -> TestServer {
        TestServer::start_logging(extra, None)
    }

    /// As [`TestServer::start`], with the server's stderr appended to `log`
    /// when given.
    pub fn start_logging(extra: &[&str], log: Option<&std::path::Path>) -> TestServer {
        for _ in 0..5 {
            if let Some(server) = TestServer::try_start(extra, false, log, &[], false) {
                return server;
            }
        }
        panic!("segcore did not start on any of 5 ports");
    }

    /// Starts `segcore --port-per-core <port> --threads 2 -m 16` plus
    /// `extra`: core 0 on `port`, core 1 on `port + 1`.
    pub fn start_per_core(extra: &[&str]) -> TestServer {
        for _ in 0..5 {
            if let Some(server) = TestServer::try_start(extra, true, None, &[], false) {
                return server;
            }
        }
        panic!("segcore did not start on any of 5 port pairs");
    }

    /// As [`TestServer::start`], with `env` set for the server (and ready
    /// once it answers, authenticated or not).
    pub fn start_env(extra: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> TestServer {
        for _ in 0..5 {
            if let Some(server) = TestServer::try_start(extra, false, None, env, false) {
                return server;
            }
        }
        panic!("segcore did not start on any of 5 ports");
    }

    /// As [`TestServer::start`] for a server that speaks TLS: ready once
    /// its port accepts (and the process still runs).
    pub fn start_tls(extra: &[&str]) -> TestServer {
        for _ in 0..5 {
            if let Some(server) = TestServer::try_start(extra, false, None, &[], true) {
                return server;
            }
        }
        panic!("segcore did not start on any of 5 ports");
    }

    fn try_start(
        extra: &[&str],
        per_core: bool,
        log: Option<&std::path::Path>,
        env: &[(&str, &std::ffi::OsStr)],
        tls: bool,
    ) -> Option<TestServer> {
        let port = if per_core {
            (0..100)
                .map(|_| free_port())
                .find(|&p| p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok())
                .expect("two free ports in a row")
        } else {
            free_port()
        };
        let port_arg = port.to_string();
        let port_flag = if per_core { "--port-per-core" } else { "-p" };
        // Two cores and 16 MB unless the test says otherwise.
        let mut args = vec![port_flag, port_arg.as_str()];
        if !extra.contains(&"--threads") {
            args.extend_from_slice(&["--threads", "2"]);
        }
        if !extra.contains(&"-m") {
            args.extend_from_slice(&["-m", "16"]);
        }
        args.extend_from_slice(extra);
        let mut command = if extra.contains(&"-u") {
            Command::new(env!("CARGO_BIN_EXE_segcore"))
        } else {
            segcore()
        };
        let child = command
            .args(&args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("log file"),
                ),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("spawn segcore");
        let mut server = TestServer {
            child: Some(child),
            port,
            tls,
            ports: if per_core {
                args.iter()
                    .position(|&a| a == "--threads")
                    .and_then(|i| args.get(i + 1)?.parse().ok())
                    .unwrap_or(2)
            } else {
                1
            },
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Ready means it answers `version` — not merely that something
            // accepted a connection on the port.
            if server.answers_version() {
                return Some(server);
            }
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
                .is_some();
            if exited {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "segcore did not open port {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn answers_version(&self) -> bool {
        if self.tls {
            return TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        }
        (0..self.ports).all(|i| {
            let port = self.port + i;
            answers_version(port) || answers_unauthenticated(port)
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A new client connection with a read timeout.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        stream
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal` (SIGUSR1: stop keeping the cache; SIGKILL: a crash)
    /// and waits for the exit status.
    pub fn stop_with(mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid with a valid signal.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        wait_with_timeout(&mut child, Duration::from_secs(20))
    }

    /// Waits for the process to exit by itself (e.g. after `shutdown`).
    pub fn wait_exit(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_with_timeout(&mut child, Duration::from_secs(20))
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("segcore did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every 10 ms until it gives `Ok`; panics with the last
/// `Err` after 20 s. Servers change state asynchronously (a close is
/// counted when the server sees it, a log line lands when it happens), so
/// tests wait for a state, never for a fixed time.
#[track_caller]
pub fn eventually<T>(mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => assert!(Instant::now() < deadline, "timed out: {last}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads exactly `n` bytes (or panics after the read timeout).
pub fn read_exact(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    stream
        .read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    buf
}

/// Sends `request` and asserts the reply is exactly `expected`.
#[track_caller]
pub fn exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) {
    stream.write_all(request).expect("write");
    let got = read_exact(stream, expected.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Reads until `marker` ends the data read so far.
pub fn read_until(stream: &mut TcpStream, marker: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(marker) {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed before {:?}", String::from_utf8_lossy(marker));
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// True when the server closes the connection (read returns 0 or reset).
pub fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// `n` keys owned by core `core` of 2.
pub fn keys_on(core: usize, n: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| HashedKey::new(k.as_bytes()).shard(2) == core)
        .take(n)
        .collect()
}

/// `stats` as (name, value) pairs.
pub fn stats(stream: &mut TcpStream, group: &str) -> Vec<(String, String)> {
    let cmd = if group.is_empty() {
        "stats\r\n".to_string()
    } else {
        format!("stats {group}\r\n")
    };
    stream.write_all(cmd.as_bytes()).expect("write");
    let text = String::from_utf8(read_until(stream, b"END\r\n")).expect("utf8");
    text.lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Each core's `core:N:<name>` from `stats cores`, in core order.
pub fn per_core(stream: &mut TcpStream, name: &str) -> Vec<u64> {
    let suffix = format!(":{name}");
    stats(stream, "cores")
        .iter()
        .filter(|(k, _)| k.ends_with(&suffix))
        .map(|(_, v)| v.parse().expect("numeric stat"))
        .collect()
}

/// One stat as a number.
pub fn stat(stats: &[(String, String)], name: &str) -> u64 {
    stats
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no stat {name}"))
        .1
        .parse()
        .expect("numeric stat")
}
