//! Why the server could not start, said so that an operator knows what to
//! change.

use std::net::SocketAddr;

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// Bad settings (memory, segment size).
    Config(String),
    /// The address could not be bound: the address, the flag that chose
    /// it, and why.
    Bind(SocketAddr, &'static str, std::io::Error),
    /// An executor could not start (io_uring or locked memory unavailable).
    Executor(String),
    /// A stop was asked for (SIGTERM, SIGINT) before every core had started.
    Interrupted,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Interrupted => write!(f, "stopped while starting"),
            StartError::Bind(addr, flag, e) if e.kind() == std::io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {addr} ({flag}): the address is already in use (another \
                 memcached or segcore?). Stop it or choose another with {flag}."
            ),
            StartError::Bind(addr, flag, e) => write!(f, "cannot listen on {addr} ({flag}): {e}"),
            StartError::Executor(e) => write!(
                f,
                "cannot start the per-core executors: {e}. segcore needs io_uring (Linux 5.8+, \
                 not disabled by /proc/sys/kernel/io_uring_disabled or a seccomp profile) and \
                 enough locked memory: raise `ulimit -l` (LimitMEMLOCK= in systemd, \
                 --ulimit memlock=-1 in docker) or run with CAP_IPC_LOCK."
            ),
        }
    }
}

impl std::error::Error for StartError {}
