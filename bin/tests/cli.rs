//! Start-up errors are clear, one-paragraph messages with a non-zero exit,
//! never a panic.

mod common;

use std::os::unix::process::ExitStatusExt;

fn run(args: &[&str]) -> (i32, String) {
    let out = common::segcore().args(args).output().expect("run segcore");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn port_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, text) = run(&["-p", &port, "--threads", "1"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("already in use") && text.contains("-p/-l") && !text.contains("panicked"),
        "{text}"
    );
    // Every listener, each error naming the flag that chose the port: the
    // metrics endpoint (it used to share the port through SO_REUSEPORT),
    // a plaintext listener, and with -d before the fork.
    let free = common::free_port().to_string();
    let (code, text) = run(&["-p", &free, "--metrics-listen", &port]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("--metrics-listen") && text.contains("already in use"),
        "{text}"
    );
    let notls = format!("notls:127.0.0.1:{port}");
    let (code, text) = run(&["-p", &free, "-l", "127.0.0.1", "-l", &notls]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("-l notls:"), "{text}");
    let (code, text) = run(&["-d", "-p", &port]);
    assert_eq!(code, 1, "-d reports the failure before it forks: {text}");
    assert!(text.contains("already in use"), "{text}");
}

#[test]
fn too_little_memory_says_what_to_change() {
    let port = common::free_port().to_string();
    let (code, text) = run(&["-p", &port, "--threads", "2", "-m", "2"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("raise -m") && !text.contains("panicked"),
        "{text}"
    );
}

#[test]
fn bad_values_are_refused() {
    for args in [
        &["-I", "0"][..],
        &["-I", "10"],
        &["-I", "1023"],
        &["--segment-size", "1000"],
        &["-l", "nowhere"],
        &["--eviction", "lru"],
        &["-S"],
        &["-M"],
        &["-D", "ab"],
    ] {
        let (code, text) = run(args);
        assert_eq!(code, 64, "{args:?}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[test]
fn help_documents_the_flags() {
    let (code, text) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--port",
        "--listen",
        "--memory-limit",
        "--conn-limit",
        "--threads",
        "--cores",
        "--max-item-size",
        "--segment-size",
        "--eviction",
        "--enable-shutdown",
    ] {
        assert!(text.contains(flag), "missing {flag}");
    }
}

/// Waits until `done` holds.
#[track_caller]
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    common::eventually(|| done().then_some(()).ok_or_else(|| what.to_string()))
}

/// A packaged memcached's command line (`-d -P ...`): the command returns
/// at once, the daemon serves from its own session, its pid is in the pid
/// file, and SIGTERM stops it and removes the file.
#[test]
fn daemon_mode_with_a_pid_file() {
    let dir = std::env::temp_dir().join(format!("segcore-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("segcore.pid");
    let port = common::free_port();
    let (code, text) = run(&[
        "-d",
        "-P",
        pidfile.to_str().unwrap(),
        "-p",
        &port.to_string(),
        "--threads",
        "1",
        "-m",
        "8",
    ]);
    assert_eq!(code, 0, "{text}");
    eventually("the daemon answers", || common::answers_version(port));
    eventually("the pid file", || pidfile.exists());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: getsid/kill on a pid; no memory is passed.
    let (session, own_session) = unsafe { (libc::getsid(pid), libc::getsid(0)) };
    assert_eq!(session, pid, "the daemon leads its own session");
    assert_ne!(session, own_session);
    // SAFETY: as above.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    eventually("the pid file is removed at exit", || !pidfile.exists());
    // SAFETY: signal 0 only checks that the process exists.
    eventually("the daemon exits", || unsafe { libc::kill(pid, 0) } != 0);
    std::fs::remove_dir(&dir).unwrap();
}

/// `-u`: started as root, the server runs as that user; otherwise the flag
/// changes nothing (memcached ignores it too).
#[test]
fn user_flag_drops_root() {
    let server = common::TestServer::start(&["-u", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|u| u.parse().unwrap())
        .collect();
    // SAFETY: getuid cannot fail.
    let ours = unsafe { libc::getuid() };
    if ours == 0 {
        // SAFETY: getpwnam on a NUL-terminated literal; read at once.
        let nobody = unsafe { (*libc::getpwnam(c"nobody".as_ptr())).pw_uid };
        assert!(uids.iter().all(|&u| u == nobody), "{uid_line}");
    } else {
        assert_eq!(uids[0], ours, "{uid_line}");
    }
    // And it still serves.
    let mut c = server.connect();
    common::exchange(&mut c, b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
}

/// More cores than CPUs runs one core per CPU and says so, even with every
/// CPU busy; it never hangs
/// (64 executors on a 2-CPU machine took minutes to connect their meshes).
#[test]
fn more_threads_than_cpus_run_one_core_per_cpu() {
    let log = std::env::temp_dir().join(format!("segcore-threads-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    // Under CPU load: one spinning thread per CPU while the server starts.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spinners: Vec<_> = (0..allowed)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let server = common::TestServer::start_logging(&["--threads", "64"], Some(&log));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for spinner in spinners {
        spinner.join().unwrap();
    }
    let mut c = server.connect();
    let cpus = common::stat(&common::stats(&mut c, ""), "threads");
    let allowed = allowed as u64;
    assert!(
        cpus <= allowed && cpus >= 1,
        "{cpus} cores on {allowed} CPUs"
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    if allowed < 64 {
        assert!(logged.contains("-t 64: this process may use"), "{logged}");
    }
    assert!(server.stop().success());
    let _ = std::fs::remove_file(&log);
}

/// A CPU the process may not use is named, in one line, before anything
/// starts.
#[test]
fn a_cpu_that_is_not_available_is_named() {
    let out = common::segcore()
        .args(["--cores", "0,4095", "-p", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CPU 4095"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// SIGTERM at any point of start-up stops the process promptly (it used
/// to wait for the start to finish, however long that took).
#[test]
fn sigterm_during_start_up_stops_it() {
    for delay_ms in [0, 5, 20, 60] {
        let port = common::free_port().to_string();
        let mut child = common::segcore()
            .args(["-p", &port])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SAFETY: kill(2) on our own child's pid with a valid signal.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let status = common::eventually(|| match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ => Err(format!("still running {delay_ms} ms after start + SIGTERM")),
        });
        // Before the mask is set the default action ends it; after, a
        // graceful exit.
        assert!(
            status.success() || status.signal() == Some(libc::SIGTERM),
            "{status:?}"
        );
    }
}

/// `-l` lists as memcached takes them (comma-separated or repeated, IPv4
/// and IPv6): every address is listened on.
#[test]
fn every_listed_address_is_listened_on() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 loopback here: nothing to test
    }
    for args in [
        &["-l", "127.0.0.1,::1"][..],
        &["-l", "127.0.0.1", "-l", "::1"],
    ] {
        let server = common::TestServer::start(args);
        for addr in ["127.0.0.1", "::1"] {
            let mut c = std::net::TcpStream::connect((addr, server.port)).expect(addr);
            c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            common::exchange(&mut c, b"version\r\n", b"VERSION ");
        }
        assert!(server.stop().success());
    }
}

/// memcached's rule: as root, `-u` must name the user to run as (refused
/// with memcached's line and EX_USAGE otherwise); for anyone else no `-u`
/// is needed.
#[test]
fn root_must_name_a_user() {
    let port = common::free_port().to_string();
    let mut bare = std::process::Command::new(env!("CARGO_BIN_EXE_segcore"));
    bare.args(["-p", &port, "-l", "127.0.0.1"]);
    if common::user_name() == "root" {
        let out = bare.output().unwrap();
        assert_eq!(out.status.code(), Some(64));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "can't run as root without the -u switch\n"
        );
    } else {
        let mut child = bare.stderr(std::process::Stdio::null()).spawn().unwrap();
        let port: u16 = port.parse().unwrap();
        common::eventually(|| {
            common::answers_version(port)
                .then_some(())
                .ok_or_else(|| "not answering".to_string())
        });
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
