//! `-l`: memcached's listen list. Entries are comma-separated (or given
//! with several `-l`), each `[notls:]host[:port]`; a missing port is `-p`'s.
//! Every entry is listened on (TLS on all but the `notls:` ones with
//! `-Z`); the first is the main one (`stats settings` `inter`).

use std::net::{IpAddr, SocketAddr};

/// Where to listen: the main address, the others like it, and the
/// plaintext ones.
#[derive(Debug, PartialEq, Eq)]
pub struct Listen {
    /// The main listener.
    pub main: SocketAddr,
    /// More listeners like the main one (`-l 127.0.0.1,::1`).
    pub more: Vec<SocketAddr>,
    /// `notls:` listeners.
    pub plain: Vec<SocketAddr>,
}

fn host(text: &str) -> Option<IpAddr> {
    if text == "localhost" {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// One `host[:port]` (IPv6 in brackets when a port follows).
fn address(text: &str, default_port: u16) -> Option<SocketAddr> {
    if let Some(ip) = host(text) {
        return Some(SocketAddr::new(ip, default_port));
    }
    let (h, port) = text.rsplit_once(':')?;
    Some(SocketAddr::new(host(h)?, port.parse().ok()?))
}

/// Parses every `-l` given, with `port` for entries that name none.
pub fn parse(entries: &[String], port: u16) -> Result<Listen, String> {
    let mut main = None;
    let mut more = Vec::new();
    let mut plain = Vec::new();
    for entry in entries.iter().flat_map(|e| e.split(',')) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (notls, addr_text) = match entry.strip_prefix("notls:") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let addr = address(addr_text, port).ok_or_else(|| {
            format!(
                "invalid listen address {entry:?} (expected an IP such as 127.0.0.1 or \
                 0.0.0.0, optionally with :port, or notls:IP:PORT)"
            )
        })?;
        let list = if notls {
            &mut plain
        } else if main.is_none() {
            main = Some(addr);
            continue;
        } else {
            &mut more
        };
        if Some(addr) == main || list.contains(&addr) {
            continue; // the same address twice is one listener
        }
        list.push(addr);
    }
    Ok(Listen {
        main: main.unwrap_or_else(|| SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port)),
        more,
        plain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(entries: &[&str]) -> Result<Listen, String> {
        parse(
            &entries.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            11211,
        )
    }

    #[test]
    fn listen_lists_follow_memcached() {
        let l = p(&["127.0.0.1"]).unwrap();
        assert_eq!(l.main, "127.0.0.1:11211".parse().unwrap());
        assert!(l.plain.is_empty());
        assert_eq!(
            p(&["localhost"]).unwrap().main,
            "127.0.0.1:11211".parse().unwrap()
        );
        assert_eq!(
            p(&["0.0.0.0:22122"]).unwrap().main,
            "0.0.0.0:22122".parse().unwrap()
        );
        assert_eq!(
            p(&["[::1]:22122"]).unwrap().main,
            "[::1]:22122".parse().unwrap()
        );
        assert_eq!(p(&["::1"]).unwrap().main, "[::1]:11211".parse().unwrap());
        let l = p(&["127.0.0.1,notls:127.0.0.1:11212"]).unwrap();
        assert_eq!(l.main, "127.0.0.1:11211".parse().unwrap());
        assert_eq!(l.plain, vec!["127.0.0.1:11212".parse().unwrap()]);
        let l = p(&["notls:127.0.0.1:11212", "127.0.0.2"]).unwrap();
        assert_eq!(l.main, "127.0.0.2:11211".parse().unwrap());
        let l = p(&["notls:127.0.0.1:11212"]).unwrap();
        assert_eq!(
            l.main,
            "127.0.0.1:11211".parse().unwrap(),
            "loopback by default"
        );
        // Every address listed is listened on, as memcached (Debian's
        // memcached.service suggests -l 127.0.0.1,::1).
        for entries in [&["127.0.0.1,::1"][..], &["127.0.0.1", "::1"]] {
            let l = p(entries).unwrap();
            assert_eq!(l.main, "127.0.0.1:11211".parse().unwrap());
            assert_eq!(l.more, vec!["[::1]:11211".parse().unwrap()]);
        }
        assert!(p(&["127.0.0.1,127.0.0.1"]).unwrap().more.is_empty());
        assert!(p(&["nowhere"])
            .unwrap_err()
            .contains("invalid listen address"));
    }
}
