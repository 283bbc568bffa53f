//! `stats conns`: every open socket — each core's listener and its client
//! connections — by file descriptor, with memcached's fields, so operators
//! can see who is connected and who has gone quiet.
//!
//! Each core keeps a table of its own connections (no sharing); a
//! connection updates its slot once per batch of requests, without hashing.
//! The table is also how a core reaches its connections from outside their
//! tasks: to close idle ones (`idle_timeout`) and, at shutdown, to end the
//! reads they wait in. Both act on the socket (`shutdown(2)`), so a waiting
//! connection needs no timer or signal of its own. A connection removes its
//! entry before its socket is closed, so every fd in the table is open and
//! is that connection's.

use std::net::SocketAddr;

/// One client connection as `stats conns` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnEntry {
    /// The socket's file descriptor.
    pub fd: i32,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address it connected to.
    pub local: SocketAddr,
    /// When it last sent a complete request (unix seconds).
    pub last_cmd: u32,
    /// Holds part of a request and waits for the rest (memcached's
    /// `conn_nread`) rather than for a new command (`conn_parse_cmd`).
    pub mid_request: bool,
    /// Already closed for idling; its task has yet to notice.
    pub kicked: bool,
    /// Bytes of the core's large-request budget its read buffer holds.
    pub large: usize,
    /// When it last received bytes while holding some of that budget
    /// (unix seconds).
    pub last_read: u32,
}

/// One core's open connections, in reusable slots.
#[derive(Debug, Default)]
pub struct ConnTable {
    slots: Vec<Option<ConnEntry>>,
    free: Vec<usize>,
}

impl ConnTable {
    /// Adds a connection; the slot number finds it again.
    pub fn add(&mut self, entry: ConnEntry) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        }
    }

    /// The connection in `slot`.
    #[inline]
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut ConnEntry> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// Forgets the connection in `slot`, handing back its entry.
    pub fn remove(&mut self, slot: usize) -> Option<ConnEntry> {
        let entry = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(entry)
    }

    /// Slots allocated: the most connections this core has had open at
    /// once (memcached's `connection_structures`).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Connections registered now.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Ends the read every connection waits in (the server is stopping):
    /// each finishes what it was doing, then sees end of input and closes.
    pub fn shut_down_reads(&self) {
        for entry in self.slots.iter().flatten() {
            shut_down(entry.fd, libc::SHUT_RD);
        }
    }

    /// Closes the connections that sent no command for more than `timeout`
    /// seconds up to `now` and are not in the middle of a request, as
    /// memcached's `idle_timeout` does. Returns how many it closed.
    pub fn kick_idle(&mut self, now: u32, timeout: u32) -> u64 {
        let mut kicked = 0;
        for entry in self.slots.iter_mut().flatten() {
            if !entry.kicked && !entry.mid_request && now.saturating_sub(entry.last_cmd) > timeout {
                entry.kicked = true;
                log::debug!("<{} closing idle connection", entry.fd);
                shut_down(entry.fd, libc::SHUT_RDWR);
                kicked += 1;
            }
        }
        kicked
    }

    /// Closes the connections that hold part of the large-request budget
    /// and have received nothing for at least `timeout` seconds up to
    /// `now`, so that their share goes to a connection that needs it (a
    /// client that declares a large value and stalls half-way must not
    /// lock out everyone else's). Returns how many it closed; their tasks
    /// give the budget back as they notice.
    pub fn reclaim_stalled(&mut self, now: u32, timeout: u32) -> u64 {
        if timeout == 0 {
            return 0;
        }
        let mut closed = 0;
        for entry in self.slots.iter_mut().flatten() {
            if !entry.kicked && entry.large > 0 && now.saturating_sub(entry.last_read) >= timeout {
                entry.kicked = true;
                log::debug!(
                    "<{} closing: holds {} bytes of a large request and sent nothing for {}s",
                    entry.fd,
                    entry.large,
                    now.saturating_sub(entry.last_read)
                );
                shut_down(entry.fd, libc::SHUT_RDWR);
                closed += 1;
            }
        }
        closed
    }

    /// The open connections, for a `stats` report.
    pub fn snapshot(&self) -> Vec<ConnEntry> {
        self.slots.iter().flatten().copied().collect()
    }
}

fn shut_down(fd: i32, how: i32) {
    // SAFETY: shutdown(2) takes an fd and a flag and touches no memory of
    // ours. The fd is open and is this connection's: an entry leaves the
    // table before its socket is closed (module doc), and the table is
    // only used on its own core.
    unsafe {
        libc::shutdown(fd, how);
    }
}

/// memcached's address text: `tcp:1.2.3.4:11211`, `tcp6:[::1]:11211`.
pub fn addr_text(addr: &SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("tcp:{a}"),
        SocketAddr::V6(a) => format!("tcp6:[{}]:{}", a.ip(), a.port()),
    }
}

/// The `stats conns` lines for these listeners (fd, address) and clients,
/// in fd order as memcached lists them.
pub fn lines(
    listeners: &[(i32, SocketAddr)],
    clients: &[ConnEntry],
    now: u32,
) -> Vec<(String, String)> {
    let mut sockets: Vec<(i32, Option<&ConnEntry>, SocketAddr)> = listeners
        .iter()
        .map(|&(fd, addr)| (fd, None, addr))
        .chain(clients.iter().map(|c| (c.fd, Some(c), c.peer)))
        .collect();
    sockets.sort_by_key(|&(fd, ..)| fd);
    let mut out = Vec::new();
    for (fd, client, addr) in sockets {
        out.push((format!("{fd}:addr"), addr_text(&addr)));
        let (state, since) = match client {
            Some(c) => {
                out.push((format!("{fd}:listen_addr"), addr_text(&c.local)));
                let state = if c.mid_request {
                    "conn_nread"
                } else {
                    "conn_parse_cmd"
                };
                (state, now.saturating_sub(c.last_cmd))
            }
            None => ("conn_listening", 0),
        };
        out.push((format!("{fd}:state"), state.to_string()));
        out.push((format!("{fd}:secs_since_last_cmd"), since.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(fd: i32, last_cmd: u32, mid_request: bool) -> ConnEntry {
        ConnEntry {
            fd,
            peer: "127.0.0.1:50000".parse().unwrap(),
            local: "127.0.0.1:11211".parse().unwrap(),
            last_cmd,
            mid_request,
            kicked: false,
            large: 0,
            last_read: 0,
        }
    }

    #[test]
    fn only_stalled_holders_of_large_budget_are_reclaimed() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (stalled, mut stalled_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let (sending, sending_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let (small, small_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut table = ConnTable::default();
        for (fd, large, last_read) in [
            (stalled.as_raw_fd(), 1 << 20, 100),
            (sending.as_raw_fd(), 1 << 20, 103),
            (small.as_raw_fd(), 0, 0),
        ] {
            let slot = table.add(client(fd, 0, true));
            let entry = table.get_mut(slot).unwrap();
            entry.large = large;
            entry.last_read = last_read;
        }
        assert_eq!(table.reclaim_stalled(104, 0), 0, "0: never");
        assert_eq!(table.reclaim_stalled(101, 2), 0, "not stalled long enough");
        assert_eq!(table.reclaim_stalled(104, 2), 1);
        assert_eq!(table.reclaim_stalled(104, 2), 0, "closed once");
        let mut buf = [0u8; 4];
        assert_eq!(
            stalled_peer.read(&mut buf).unwrap(),
            0,
            "the client sees the close"
        );
        for peer in [&sending_peer, &small_peer] {
            peer.set_nonblocking(true).unwrap();
            let err = (&*peer).read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        }
    }

    #[test]
    fn idle_connections_are_kicked_once_and_busy_ones_kept() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (idle, mut idle_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let (busy, busy_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let (mid, mid_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut table = ConnTable::default();
        table.add(client(idle.as_raw_fd(), 100, false));
        table.add(client(busy.as_raw_fd(), 108, false));
        table.add(client(mid.as_raw_fd(), 100, true));
        // Idle for exactly the timeout is not yet past it.
        assert_eq!(table.kick_idle(105, 5), 0);
        assert_eq!(table.kick_idle(110, 5), 1);
        assert_eq!(table.kick_idle(111, 5), 0, "kicked once");
        let mut buf = [0u8; 4];
        assert_eq!(
            idle_peer.read(&mut buf).unwrap(),
            0,
            "the client sees the close"
        );
        for peer in [&busy_peer, &mid_peer] {
            peer.set_nonblocking(true).unwrap();
            let err = (&*peer).read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        }
        assert_eq!(table.open(), 3, "entries stay until their tasks end");
        // At shutdown every connection's read ends.
        table.shut_down_reads();
        let mut byte = [0u8; 1];
        assert_eq!((&busy).read(&mut byte).unwrap(), 0);
        assert_eq!((&mid).read(&mut byte).unwrap(), 0);
    }

    #[test]
    fn slots_are_reused_and_removed_once() {
        let mut table = ConnTable::default();
        let a = table.add(client(10, 0, false));
        let b = table.add(client(11, 0, false));
        table.remove(a);
        table.remove(a);
        let c = table.add(client(12, 0, false));
        assert_eq!(c, a);
        assert_eq!(
            table.add(client(13, 0, false)),
            2,
            "a freed slot is used once"
        );
        table.get_mut(b).unwrap().last_cmd = 5;
        let mut fds: Vec<(i32, u32)> = table
            .snapshot()
            .iter()
            .map(|e| (e.fd, e.last_cmd))
            .collect();
        fds.sort();
        assert_eq!(fds, [(11, 5), (12, 0), (13, 0)]);
        assert!(table.get_mut(99).is_none());
    }

    #[test]
    fn lines_follow_memcached() {
        let listeners = [(7, "127.0.0.1:11211".parse().unwrap())];
        let lines = lines(
            &listeners,
            &[client(12, 90, true), client(9, 100, false)],
            100,
        );
        let text: Vec<String> = lines.iter().map(|(k, v)| format!("{k} {v}")).collect();
        assert_eq!(
            text,
            [
                "7:addr tcp:127.0.0.1:11211",
                "7:state conn_listening",
                "7:secs_since_last_cmd 0",
                "9:addr tcp:127.0.0.1:50000",
                "9:listen_addr tcp:127.0.0.1:11211",
                "9:state conn_parse_cmd",
                "9:secs_since_last_cmd 0",
                "12:addr tcp:127.0.0.1:50000",
                "12:listen_addr tcp:127.0.0.1:11211",
                "12:state conn_nread",
                "12:secs_since_last_cmd 10",
            ]
        );
        assert_eq!(
            addr_text(&"[::1]:11211".parse().unwrap()),
            "tcp6:[::1]:11211"
        );
        // t/stats-conns.t reads the port from a wildcard listener this way.
        assert_eq!(
            addr_text(&"0.0.0.0:11211".parse().unwrap()),
            "tcp:0.0.0.0:11211"
        );
    }
}
