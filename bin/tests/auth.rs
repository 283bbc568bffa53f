//! Authentication over real sockets, as memcached does it: ASCII
//! authentication with `-Y` (the exchange of memcached's t/ascii-auth.t)
//! and SASL PLAIN with `-S` and MEMCACHED_SASL_PWDB.

mod common;

use common::{exchange, is_closed, read_exact, stat, stats, TestServer};
use segcore_protocol::binary::{Command, Header, Opcode, Request, StoreMode, HEADER_LEN};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

/// A password file with memcached's test users, removed on drop.
struct Users(PathBuf);

impl Users {
    fn new(name: &str) -> Users {
        let path = std::env::temp_dir().join(format!("segcore-auth-{}-{name}", std::process::id()));
        std::fs::write(&path, "foo:bar\nbaaaz:quux\n").unwrap();
        Users(path)
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn line(c: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        c.read_exact(&mut byte).expect("a reply line");
        out.push(byte[0]);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn ascii_auth_follows_memcached() {
    let users = Users::new("ascii");
    let server = TestServer::start(&["-Y", users.0.to_str().unwrap()]);
    let mut c = server.connect();
    // Unauthenticated: a set whose data is not credentials, then a read.
    c.write_all(b"set foo 0 0 2\r\nhi\r\n").unwrap();
    assert_eq!(line(&mut c), "CLIENT_ERROR authentication failure\r\n");
    exchange(&mut c, b"get foo\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    // Wrong, then right.
    exchange(
        &mut c,
        b"set foo 0 0 7\r\nfoo bab\r\n",
        b"CLIENT_ERROR authentication failure\r\n",
    );
    exchange(&mut c, b"set foo 0 0 7\r\nfoo bar\r\n", b"STORED\r\n");
    // Authenticated: a set that does not look like credentials stores.
    exchange(&mut c, b"set toast 0 0 2\r\nhi\r\n", b"STORED\r\n");
    exchange(
        &mut c,
        b"get toast\r\n",
        b"VALUE toast 0 2\r\nhi\r\nEND\r\n",
    );
    // And one that does is plain data now.
    exchange(&mut c, b"set cred 0 0 7\r\nfoo bar\r\n", b"STORED\r\n");
    exchange(
        &mut c,
        b"get cred\r\n",
        b"VALUE cred 0 7\r\nfoo bar\r\nEND\r\n",
    );

    // A second connection authenticates on its own.
    let mut c2 = server.connect();
    exchange(
        &mut c2,
        b"get toast\r\n",
        b"CLIENT_ERROR unauthenticated\r\n",
    );
    exchange(&mut c2, b"set foo 0 0 10\r\nbaaaz quux\r\n", b"STORED\r\n");
    exchange(&mut c2, b"set toast2 0 0 2\r\nho\r\n", b"STORED\r\n");
    exchange(
        &mut c2,
        b"get toast2\r\n",
        b"VALUE toast2 0 2\r\nho\r\nEND\r\n",
    );

    // A storage command other than set is refused, its data consumed.
    let mut c3 = server.connect();
    exchange(
        &mut c3,
        b"add x 0 0 7\r\nfoo bar\r\n",
        b"CLIENT_ERROR unauthenticated\r\n",
    );
    exchange(&mut c3, b"get x\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    // A 16 MB "password" is refused as too large, not buffered, and the
    // connection goes on.
    let mut huge = b"set foo 0 0 16777216\r\n".to_vec();
    huge.resize(huge.len() + (16 << 20), b'p');
    huge.extend_from_slice(b"\r\n");
    c3.write_all(&huge).unwrap();
    assert_eq!(line(&mut c3), "SERVER_ERROR object too large for cache\r\n");
    exchange(&mut c3, b"get x\r\n", b"CLIENT_ERROR unauthenticated\r\n");

    let s = stats(&mut c, "");
    // hi, foo bab, foo bar, baaaz quux: four attempts, two failed.
    assert_eq!((stat(&s, "auth_cmds"), stat(&s, "auth_errors")), (4, 2));
    let settings = stats(&mut c, "settings");
    assert!(settings.contains(&("auth_enabled_ascii".into(), "yes".into())));
    assert!(settings.contains(&("auth_enabled_sasl".into(), "no".into())));

    // Binary clients are not served in this mode.
    let mut b = server.connect();
    b.write_all(&binary(Opcode::Version, Command::Version, b"", b""))
        .unwrap();
    assert!(is_closed(&mut b));
    server.stop();
}

fn binary(opcode: Opcode, command: Command, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Request {
        opcode,
        command,
        opaque: 7,
        cas: 0,
        key,
        value,
    }
    .encode(&mut out);
    out
}

/// (status, value) of one binary response.
fn response(c: &mut TcpStream) -> (u16, Vec<u8>) {
    let head = read_exact(c, HEADER_LEN);
    let h = Header::decode(head[..].try_into().unwrap());
    assert_eq!(h.magic, 0x81);
    let body = read_exact(c, h.body_len as usize);
    let skip = usize::from(h.extras_len) + usize::from(h.key_len);
    (h.vbucket_or_status, body[skip..].to_vec())
}

fn sasl_auth(c: &mut TcpStream, user: &str, password: &str) -> (u16, Vec<u8>) {
    let message = format!("\0{user}\0{password}");
    c.write_all(&binary(
        Opcode::SaslAuth,
        Command::SaslAuth,
        b"PLAIN",
        message.as_bytes(),
    ))
    .unwrap();
    response(c)
}

fn get(key: &[u8]) -> Vec<u8> {
    binary(
        Opcode::Get,
        Command::Get {
            quiet: false,
            with_key: false,
        },
        key,
        b"",
    )
}

#[test]
fn sasl_plain_follows_memcached() {
    let users = Users::new("sasl");
    let server = TestServer::start_env(&["-S"], &[("MEMCACHED_SASL_PWDB", users.0.as_os_str())]);

    // Text clients are not served under SASL.
    let mut t = server.connect();
    t.write_all(b"version\r\n").unwrap();
    assert!(is_closed(&mut t));

    // Before authenticating: mechanisms and version are answered; anything
    // else gets the auth error and a close.
    let mut c = server.connect();
    c.write_all(&binary(
        Opcode::SaslListMechs,
        Command::SaslListMechs,
        b"",
        b"",
    ))
    .unwrap();
    assert_eq!(response(&mut c), (0, b"PLAIN".to_vec()));
    c.write_all(&binary(Opcode::Version, Command::Version, b"", b""))
        .unwrap();
    assert_eq!(response(&mut c).0, 0);
    // A wrong password leaves the connection open for another try.
    assert_eq!(sasl_auth(&mut c, "foo", "bab").0, 0x20);
    assert_eq!(sasl_auth(&mut c, "nobody", "bar").0, 0x20);
    assert_eq!(
        sasl_auth(&mut c, "foo", "bar"),
        (0, b"Authenticated".to_vec())
    );
    let set = Command::Store {
        mode: StoreMode::Set,
        flags: 0,
        exptime: 0,
        quiet: false,
    };
    c.write_all(&binary(Opcode::Set, set, b"k", b"v")).unwrap();
    assert_eq!(response(&mut c).0, 0);
    c.write_all(&get(b"k")).unwrap();
    assert_eq!(response(&mut c), (0, b"v".to_vec()));

    // Another connection is not authenticated by the first one.
    let mut c2 = server.connect();
    c2.write_all(&get(b"k")).unwrap();
    assert_eq!(response(&mut c2).0, 0x20);
    assert!(is_closed(&mut c2));
    let mut c3 = server.connect();
    assert_eq!(sasl_auth(&mut c3, "baaaz", "quux").0, 0);
    c3.write_all(&get(b"k")).unwrap();
    assert_eq!(response(&mut c3), (0, b"v".to_vec()));

    // A SASL Auth whose lengths cannot be (key longer than the body) is
    // refused and closed; the server goes on.
    let mut bad = binary(Opcode::SaslAuth, Command::SaslAuth, b"PLAIN", b"\0foo\0bar");
    bad[2..4].copy_from_slice(&200u16.to_be_bytes());
    let mut c4 = server.connect();
    c4.write_all(&bad).unwrap();
    assert_eq!(response(&mut c4).0, 0x04);
    assert!(is_closed(&mut c4));

    // foo/bab, nobody/bar, foo/bar, baaaz/quux.
    let stat_value = |c: &mut TcpStream, name: &[u8]| -> u64 {
        c.write_all(&binary(Opcode::Stat, Command::Stat, b"", b""))
            .unwrap();
        let mut found = None;
        loop {
            let head = read_exact(c, HEADER_LEN);
            let h = Header::decode(head[..].try_into().unwrap());
            let body = read_exact(c, h.body_len as usize);
            if h.key_len == 0 {
                return found.expect("stat present");
            }
            let (key, value) = body.split_at(usize::from(h.key_len));
            if key == name {
                found = Some(String::from_utf8_lossy(value).parse().unwrap());
            }
        }
    };
    assert_eq!(stat_value(&mut c, b"auth_cmds"), 4);
    assert_eq!(stat_value(&mut c, b"auth_errors"), 2);
    server.stop();
}

#[test]
fn a_missing_password_file_stops_the_server_with_one_line() {
    let out = common::segcore()
        .args(["-Y", "/nonexistent/segcore-users", "-p", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/segcore-users"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = common::segcore()
        .args(["-S", "-p", "0"])
        .env_remove("MEMCACHED_SASL_PWDB")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MEMCACHED_SASL_PWDB"));
}

/// As memcached: a failed re-authentication leaves the connection
/// unauthenticated, and nothing pipelined behind it runs as the old user.
#[test]
fn a_failed_reauthentication_leaves_the_connection_unauthenticated() {
    let users = Users::new("reauth");
    let server = TestServer::start_env(&["-S"], &[("MEMCACHED_SASL_PWDB", users.0.as_os_str())]);
    let mut c = server.connect();
    assert_eq!(sasl_auth(&mut c, "foo", "bar").0, 0);
    let set = Command::Store {
        mode: StoreMode::Set,
        flags: 0,
        exptime: 0,
        quiet: false,
    };
    // A wrong password, with a set pipelined behind it.
    let mut pipelined = binary(Opcode::SaslAuth, Command::SaslAuth, b"PLAIN", b"\0foo\0bab");
    pipelined.extend(binary(Opcode::Set, set, b"sneaky", b"v"));
    c.write_all(&pipelined).unwrap();
    assert_eq!(response(&mut c).0, 0x20, "the failed attempt");
    assert_eq!(response(&mut c).0, 0x20, "the set is refused");
    assert!(is_closed(&mut c));
    // Nothing was stored under the old identity.
    let mut other = server.connect();
    assert_eq!(sasl_auth(&mut other, "baaaz", "quux").0, 0);
    other.write_all(&get(b"sneaky")).unwrap();
    assert_eq!(response(&mut other).0, 0x01, "not found");
    // A good re-authentication keeps it authenticated.
    assert_eq!(sasl_auth(&mut other, "foo", "bar").0, 0);
    other.write_all(&get(b"sneaky")).unwrap();
    assert_eq!(response(&mut other).0, 0x01);
    server.stop();
}

/// Failed attempts are answered more slowly the more a connection makes,
/// and every one is counted.
#[test]
fn failed_attempts_are_counted_and_the_connection_stays_usable() {
    let users = Users::new("guess");
    let server = TestServer::start_env(&["-S"], &[("MEMCACHED_SASL_PWDB", users.0.as_os_str())]);
    let mut c = server.connect();
    for i in 0..30 {
        assert_eq!(sasl_auth(&mut c, "foo", &format!("guess{i}")).0, 0x20);
    }
    assert_eq!(sasl_auth(&mut c, "foo", "bar").0, 0);
    c.write_all(&binary(Opcode::Stat, Command::Stat, b"", b""))
        .unwrap();
    let mut errors = None;
    loop {
        let head = read_exact(&mut c, HEADER_LEN);
        let h = Header::decode(head[..].try_into().unwrap());
        let body = read_exact(&mut c, h.body_len as usize);
        if h.key_len == 0 {
            break;
        }
        let (key, value) = body.split_at(usize::from(h.key_len));
        if key == b"auth_errors" {
            errors = Some(String::from_utf8_lossy(value).to_string());
        }
    }
    assert_eq!(errors.as_deref(), Some("30"));
    server.stop();
}

/// With -S or -Y the metrics endpoint wants the same users' credentials
/// (HTTP Basic); without them it answers 401 and shows nothing.
#[test]
fn metrics_need_credentials_when_the_server_does() {
    let users = Users::new("metrics");
    for (flag, env) in [("-S", true), ("-Y", false)] {
        let metrics = common::free_port();
        let metrics_arg = metrics.to_string();
        let path = users.0.to_str().unwrap();
        let mut args = vec![flag];
        if !env {
            args.push(path);
        }
        args.extend(["--metrics-listen", &metrics_arg]);
        let server = if env {
            TestServer::start_env(&args, &[("MEMCACHED_SASL_PWDB", users.0.as_os_str())])
        } else {
            TestServer::start(&args)
        };
        let scrape = |head: &str| -> String {
            let mut m = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
            m.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            m.write_all(head.as_bytes()).unwrap();
            let mut reply = String::new();
            m.read_to_string(&mut reply).unwrap();
            reply
        };
        let denied = scrape("GET /metrics HTTP/1.1\r\n\r\n");
        assert!(denied.starts_with("HTTP/1.1 401"), "{flag}: {denied}");
        assert!(denied.contains("WWW-Authenticate: Basic"), "{flag}");
        assert!(!denied.contains("memcached_"), "{flag}: nothing shown");
        // foo:bab
        let wrong = scrape("GET /metrics HTTP/1.1\r\nAuthorization: Basic Zm9vOmJhYg==\r\n\r\n");
        assert!(wrong.starts_with("HTTP/1.1 401"), "{flag}: {wrong}");
        // foo:bar
        let ok = scrape("GET /metrics HTTP/1.1\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200"), "{flag}: {ok}");
        assert!(ok.contains("memcached_up 1"), "{flag}");
        // Both refused scrapes count as failed attempts.
        assert!(
            ok.contains("segcore_auth_failures_total 2\n"),
            "{flag}: {ok}"
        );
        server.stop();
    }
}

/// SIGHUP never stops the server: it rereads the password file, so a user
/// added to it can authenticate and one removed cannot.
#[test]
fn sighup_rereads_the_password_file_and_keeps_serving() {
    let users = Users::new("hup");
    let server = TestServer::start(&["-Y", users.0.to_str().unwrap()]);
    let mut c = server.connect();
    exchange(&mut c, b"set k 0 0 7\r\nfoo bar\r\n", b"STORED\r\n");
    std::fs::write(&users.0, "alice:wonderland\n").unwrap();
    // SAFETY: kill(2) on our own child's pid with a valid signal.
    unsafe {
        libc::kill(server.pid() as i32, libc::SIGHUP);
    }
    common::eventually(|| {
        let mut fresh = server.connect();
        fresh
            .write_all(b"set k 0 0 16\r\nalice wonderland\r\n")
            .unwrap();
        match line(&mut fresh).as_str() {
            "STORED\r\n" => Ok(()),
            other => Err(format!("alice not accepted yet: {other:?}")),
        }
    });
    let mut old = server.connect();
    exchange(
        &mut old,
        b"set k 0 0 7\r\nfoo bar\r\n",
        b"CLIENT_ERROR authentication failure\r\n",
    );
    // The connection that authenticated before stays served.
    exchange(&mut c, b"get k\r\n", b"END\r\n");
    assert!(server.stop().success(), "still running after SIGHUP");
}
