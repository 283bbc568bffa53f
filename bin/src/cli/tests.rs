//! The command line against memcached's meanings and segcore's own flags.
use super::*;

fn parse_args(args: &[&str]) -> Result<Settings, String> {
    parse_all(args).map(|(settings, _)| settings)
}

fn parse_all(args: &[&str]) -> Result<(Settings, ProcessOptions), String> {
    let args = Args::try_parse_from(std::iter::once("segcore").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    settings(args)
}

#[test]
fn defaults_match_memcached() {
    let s = parse_args(&[]).unwrap();
    assert_eq!(s.listen, "127.0.0.1:11211".parse().unwrap());
    assert_eq!(s.memory_bytes, 64 << 20);
    assert_eq!(s.conn_limit, 1024);
    assert_eq!(s.max_item_size, 1 << 20);
    assert_eq!(s.eviction, Policy::S3Fifo);
    assert!(!s.enable_shutdown);
    assert!(!s.cpus.is_empty());
}

#[test]
fn memcached_flags_parse() {
    let s = parse_args(&[
        "-p", "22122", "-l", "0.0.0.0", "-m", "128", "-c", "10", "-t", "2", "-I", "2m", "-vv", "-A",
    ])
    .unwrap();
    assert_eq!(s.listen, "0.0.0.0:22122".parse().unwrap());
    assert_eq!(
        (s.memory_bytes, s.conn_limit, s.cpus.len()),
        (128 << 20, 10, 2)
    );
    assert_eq!(s.max_item_size, 2 << 20);
    assert_eq!(s.segment_size, 2 << 20, "segments grow to fit items");
    assert_eq!(s.verbosity, 2);
    assert!(s.enable_shutdown);
    // Harmless memcached flags are accepted.
    assert!(parse_args(&["-U", "0", "-o", "modern", "-f", "1.25", "-C"]).is_ok());
}

#[test]
fn idle_timeout_comes_from_o_or_its_own_flag() {
    assert_eq!(parse_args(&[]).unwrap().idle_timeout, 0, "off by default");
    let s = parse_args(&["-o", "modern,idle_timeout=30"]).unwrap();
    assert_eq!(s.idle_timeout, 30);
    assert_eq!(
        parse_args(&["--idle-timeout", "5"]).unwrap().idle_timeout,
        5
    );
    assert!(parse_args(&["-o", "idle_timeout=soon"]).is_err());
    // The per-core budget for large requests holds two of the largest.
    assert_eq!(parse_args(&[]).unwrap().large_request_bytes, 16 << 20);
    let s = parse_args(&["-I", "16m"]).unwrap();
    assert_eq!(s.large_request_bytes, 32 << 20);
    let s = parse_args(&["--port-per-core", "22000", "-p", "11211"]).unwrap();
    assert!(s.port_per_core);
    assert_eq!(s.listen.port(), 22000, "the base replaces -p");
    assert_eq!(s.core_listen(1).port(), 22001);
    assert!(!parse_args(&[]).unwrap().port_per_core);
    let s = parse_args(&["--large-request-memory", "256k"]).unwrap();
    assert_eq!(s.large_request_bytes, 256 << 10);
    let s = parse_args(&["--large-request-memory", "0"]).unwrap();
    assert_eq!(s.large_request_bytes, 0);
}

/// Debian's /etc/memcached.conf, as its wrapper passes it.
#[test]
fn a_packaged_memcached_command_line_starts() {
    let (s, p) = parse_all(&[
        "-d",
        "-m",
        "64",
        "-p",
        "11211",
        "-u",
        "memcache",
        "-l",
        "127.0.0.1",
        "-P",
        "/var/run/memcached/memcached.pid",
    ])
    .unwrap();
    assert_eq!(s.memory_bytes, 64 << 20);
    assert_eq!(
        p,
        ProcessOptions {
            user: Some("memcache".into()),
            daemon: true,
            pidfile: Some("/var/run/memcached/memcached.pid".into()),
            lock_memory: false,
            core_dumps: false,
        }
    );
    let (_, p) = parse_all(&["-k", "-r"]).unwrap();
    assert!(p.lock_memory && p.core_dumps && !p.daemon && p.user.is_none());
}

#[test]
fn flush_and_detail_flags() {
    let s = parse_args(&[]).unwrap();
    assert!(s.flush_enabled && !s.detail_enabled);
    assert_eq!(s.prefix_delimiter, b':');
    assert!(s.limits().flush_enabled);
    let s = parse_args(&["-F", "-D", "/"]).unwrap();
    assert!(!s.flush_enabled && !s.limits().flush_enabled);
    assert!(s.detail_enabled);
    assert_eq!(s.prefix_delimiter, b'/');
    for bad in [&["-D", ""][..], &["-D", "ab"], &["-D", " "]] {
        assert!(parse_args(bad).is_err(), "{bad:?}");
    }
}

/// Flags whose promise segcore cannot keep stop it, saying why.
#[test]
fn unkeepable_memcached_flags_are_refused() {
    for args in [&["-s", "/tmp/memcached.sock"][..], &["-M"]] {
        let e = parse_args(args).unwrap_err();
        assert!(
            e.contains(args[0]) && e.contains("cannot be honoured"),
            "{e}"
        );
    }
}

#[test]
fn segcore_flags_and_errors() {
    let s = parse_args(&[
        "--cores",
        "0",
        "--segment-size",
        "256k",
        "--eviction",
        "fifo",
    ])
    .unwrap();
    assert_eq!(s.cpus, vec![0]);
    for (list, cpus) in [
        ("0-1,3", vec![0, 1, 3]),
        ("0-1,0", vec![0, 1]),
        ("0-3,1", vec![0, 1, 2, 3]),
        ("2,0,2", vec![2, 0]),
    ] {
        assert_eq!(super::cpus::cpu_list(list).unwrap(), cpus, "{list}");
    }
    assert_eq!(
        (s.segment_size, s.eviction),
        (1 << 20, Policy::Fifo),
        "grown to fit 1m items"
    );
    assert_eq!(
        parse_args(&[]).unwrap().segment_size,
        1 << 20,
        "1 MiB by default"
    );
    for bad in [
        &["-I", "0"][..],
        &["-I", "17m"],
        &["--segment-size", "1000"],
        &["-l", "not-an-ip"],
        &["--cores", "3-1"],
        &["-t", "0"],
        &["--eviction", "lru"],
        &["-p", "70000"],
    ] {
        assert!(parse_args(bad).is_err(), "{bad:?}");
    }
}

/// The metrics endpoint is off unless asked for, and a bare port means
/// loopback.
#[test]
fn metrics_listen_takes_an_address_or_a_loopback_port() {
    assert_eq!(parse_args(&[]).unwrap().metrics_listen, None);
    assert_eq!(
        parse_args(&["--metrics-listen", "9150"])
            .unwrap()
            .metrics_listen,
        Some("127.0.0.1:9150".parse().unwrap())
    );
    assert_eq!(
        parse_args(&["--metrics-listen", "0.0.0.0:9150"])
            .unwrap()
            .metrics_listen,
        Some("0.0.0.0:9150".parse().unwrap())
    );
    let err = parse_args(&["--metrics-listen", "nowhere"]).unwrap_err();
    assert!(err.contains("--metrics-listen"), "{err}");
}

/// -S reads its users from MEMCACHED_SASL_PWDB, -Y from its file; a file
/// that is missing or malformed, or both flags at once, stop the server
/// with a line naming the problem.
#[test]
fn authentication_flags_load_their_users_or_say_why_not() {
    let dir = std::env::temp_dir().join(format!("segcore-cli-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("users");
    std::fs::write(&good, "foo:bar\n").unwrap();
    let bad = dir.join("bad");
    std::fs::write(&bad, "no colon here\n").unwrap();

    assert!(auth_config(false, None, None).unwrap().is_none());
    let ascii = auth_config(false, good.to_str(), None).unwrap().unwrap();
    assert_eq!(ascii.mode, AuthMode::Ascii);
    let sasl = auth_config(true, None, Some(good.clone().into_os_string()))
        .unwrap()
        .unwrap();
    assert_eq!(sasl.mode, AuthMode::Sasl);

    let e = auth_config(true, None, None).unwrap_err();
    assert!(e.contains("MEMCACHED_SASL_PWDB"), "{e}");
    let e = auth_config(false, Some("/nonexistent/auth"), None).unwrap_err();
    assert!(
        e.starts_with("-Y: cannot read the password file /nonexistent/auth"),
        "{e}"
    );
    let e = auth_config(false, bad.to_str(), None).unwrap_err();
    assert!(
        e.contains(bad.to_str().unwrap()) && e.contains("line 1"),
        "{e}"
    );
    let e = auth_config(true, good.to_str(), Some(good.clone().into_os_string())).unwrap_err();
    assert!(e.contains("-S and -Y"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// -Z needs its certificate and key; the ssl options are checked and the
/// files read at start.
#[test]
fn tls_flags_name_what_is_missing() {
    let e = parse_args(&["-Z"]).unwrap_err();
    assert!(e.contains("ssl_chain_cert"), "{e}");
    let e = parse_args(&["-Z", "-o", "ssl_chain_cert=/nonexistent/cert.pem"]).unwrap_err();
    assert!(e.contains("ssl_key"), "{e}");
    let e = parse_args(&[
        "-Z",
        "-o",
        "ssl_chain_cert=/nonexistent/cert.pem,ssl_key=/nonexistent/key.pem",
    ])
    .unwrap_err();
    assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    let e = parse_args(&["-o", "ssl_verify_mode=7"]).unwrap_err();
    assert!(e.contains("ssl_verify_mode=7"), "{e}");
    let e = parse_args(&["-o", "ssl_min_version=sslv3"]).unwrap_err();
    assert!(e.contains("tlsv1.2"), "{e}");
    // Without -Z the ssl options are accepted and unused, as memcached.
    assert!(parse_args(&["-o", "ssl_verify_mode=2"])
        .unwrap()
        .tls
        .is_none());
}

/// A memory budget too small for every core runs on fewer cores (as small
/// as memcached's test suites use), and one too small for a single core is
/// still refused at start.
#[test]
fn a_small_memory_limit_runs_on_fewer_cores() {
    let s = parse_args(&["-m", "3", "-t", "2"]).unwrap();
    assert_eq!(
        s.cpus.len(),
        1,
        "3 MiB holds one merge shard of 1 MiB segments"
    );
    let s = parse_args(&["-m", "6", "-t", "4"]).unwrap();
    assert_eq!(s.cpus.len(), 2);
    let s = parse_args(&["-m", "64", "-t", "2"]).unwrap();
    assert_eq!(s.cpus.len(), 2);
    // Too small even for one core: left for the server to refuse.
    assert_eq!(parse_args(&["-m", "2", "-t", "2"]).unwrap().cpus.len(), 2);
}

/// `--cores` names only CPUs the process may use (the error names the one
/// it may not), and `-t` past the CPUs runs one core per CPU.
#[test]
fn cores_are_cpus_the_process_may_use() {
    let allowed = [0, 1, 2, 3, 6];
    assert_eq!(
        super::cpus::usable_cpus("1-2", &allowed).unwrap(),
        vec![1, 2]
    );
    let e = super::cpus::usable_cpus("0,5", &allowed).unwrap_err();
    assert!(e.contains("CPU 5") && e.contains("0-3,6"), "{e}");
    assert_eq!(super::cpus::threads_on(2, &allowed), vec![0, 1]);
    assert_eq!(super::cpus::threads_on(21, &allowed), allowed.to_vec());
    let here = super::cpus::allowed_cpus();
    assert_eq!(parse_args(&["-t", "64"]).unwrap().cpus, here);
}

/// memcached 1.6.18's options as its `-h` lists them: (short, long, an
/// example value, or None for a switch). A packaged memcached command line
/// may use any of them, in either form.
const MEMCACHED_OPTIONS: &[(char, &str, Option<&str>)] = &[
    ('p', "port", Some("11211")),
    ('U', "udp-port", Some("0")),
    ('s', "unix-socket", Some("/tmp/m.sock")),
    ('a', "unix-mask", Some("0700")),
    ('A', "enable-shutdown", None),
    ('l', "listen", Some("127.0.0.1")),
    ('d', "daemon", None),
    ('r', "enable-coredumps", None),
    ('u', "user", Some("memcache")),
    ('m', "memory-limit", Some("64")),
    ('M', "disable-evictions", None),
    ('c', "conn-limit", Some("1024")),
    ('k', "lock-memory", None),
    ('v', "verbose", None),
    ('h', "help", None),
    ('i', "license", None),
    ('V', "version", None),
    ('P', "pidfile", Some("/tmp/m.pid")),
    ('f', "slab-growth-factor", Some("1.25")),
    ('n', "slab-min-size", Some("48")),
    ('L', "enable-largepages", None),
    ('t', "threads", Some("1")),
    ('R', "max-reqs-per-event", Some("20")),
    ('C', "disable-cas", None),
    ('b', "listen-backlog", Some("1024")),
    ('B', "protocol", Some("auto")),
    ('I', "max-item-size", Some("1m")),
    ('S', "enable-sasl", None),
    ('F', "disable-flush-all", None),
    ('X', "disable-dumping", None),
    ('Y', "auth-file", Some("/tmp/users")),
    ('e', "memory-file", Some("/tmp/mem")),
    ('Z', "enable-ssl", None),
    ('o', "extended", Some("idle_timeout=5")),
    ('N', "napi_ids", Some("1")),
];

/// Every option of memcached's, short and long, is known to the parser and
/// means what it means there: taken, ignored with a warning, or refused
/// where serving without it would break a promise (a unix socket, no
/// evictions) — never an unknown-option error.
#[test]
fn every_memcached_option_is_known_in_both_forms() {
    for &(short, long, value) in MEMCACHED_OPTIONS {
        let short_flag = format!("-{short}");
        let long_flag = format!("--{long}");
        for flag in [&short_flag, &long_flag] {
            let mut argv = vec!["segcore", flag.as_str()];
            argv.extend(value);
            match Args::try_parse_from(&argv) {
                Ok(_) => {}
                Err(e) => assert!(
                    matches!(
                        e.kind(),
                        clap::error::ErrorKind::DisplayHelp
                            | clap::error::ErrorKind::DisplayVersion
                    ),
                    "{argv:?}: {e}"
                ),
            }
        }
    }
    // The parser's own view: every long memcached name is one of its long
    // names, on the same short letter.
    let command = <Args as clap::CommandFactory>::command();
    for &(short, long, _) in MEMCACHED_OPTIONS {
        let known = command
            .get_arguments()
            .any(|a| a.get_short() == Some(short) && a.get_long() == Some(long))
            || (short == 'h' || short == 'V');
        assert!(known, "-{short}/--{long}");
    }
}

/// The list above is memcached's own: checked against its `-h` where
/// memcached is installed (CI installs it for the comparison scripts).
#[test]
fn the_option_list_is_memcacheds() {
    let Ok(out) = std::process::Command::new("memcached").arg("-h").output() else {
        return;
    };
    let help = String::from_utf8_lossy(&out.stdout);
    for line in help.lines() {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix('-') else {
            continue;
        };
        let mut chars = rest.chars();
        let (Some(short), Some(',')) = (chars.next(), chars.next()) else {
            continue;
        };
        let Some(long) = rest
            .split_once("--")
            .map(|(_, l)| l.split(['=', ' ']).next().unwrap_or_default())
        else {
            continue;
        };
        assert!(
            MEMCACHED_OPTIONS
                .iter()
                .any(|&(s, l, _)| s == short && l == long),
            "memcached -h lists -{short}/--{long}, missing here"
        );
    }
}
