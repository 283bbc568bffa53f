//! Text-protocol replies, appended to a caller's buffer.
//!
//! Fixed replies are static byte strings; numbers go through a stack buffer.
//! Nothing here allocates beyond growing `out`.

use crate::number::{write_i64, write_u64};

/// The fixed one-line replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A storage command succeeded.
    Stored,
    /// `add`/`replace`/`append`/`prepend` condition not met.
    NotStored,
    /// `cas` lost: the item changed since the client's `gets`.
    Exists,
    /// No such item.
    NotFound,
    /// `delete` removed the item.
    Deleted,
    /// `touch` changed the expiry.
    Touched,
    /// `flush_all`, `verbosity`.
    Ok,
    /// Ends a retrieval or a `stats` listing.
    End,
    /// `stats reset`.
    Reset,
    /// `incr`/`decr` on a value that is not a decimal number.
    NonNumeric,
    /// The item does not fit the item size limit.
    TooLarge,
    /// The shard could not find room even after evicting.
    OutOfMemory,
    /// `shutdown` when it is not enabled.
    ShutdownDisabled,
    /// The core owning the key stopped before it answered (server exit).
    ShuttingDown,
    /// A request (a long multi-get line) needs more buffer than the server
    /// has room for: the connection is closed after it.
    NoRoomForRequest,
    /// Sent to a connection over the connection limit, before closing it.
    TooManyConnections,
    /// A command before ASCII authentication (`-Y`).
    Unauthenticated,
    /// `stats detail` without on, off or dump.
    DetailUsage,
    /// `refresh_certs` on a server without TLS.
    TlsNotEnabled,
    /// `refresh_certs` could not load the new files (the old ones stay).
    RefreshCertsFailed,
    /// Credentials that do not match (`-Y`).
    AuthenticationFailure,
    /// An unknown command (also used by the server for commands it refuses).
    Error,
}

impl Reply {
    /// The reply's bytes, `\r\n` included, exactly as memcached words them.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Reply::Stored => b"STORED\r\n",
            Reply::NotStored => b"NOT_STORED\r\n",
            Reply::Exists => b"EXISTS\r\n",
            Reply::NotFound => b"NOT_FOUND\r\n",
            Reply::Deleted => b"DELETED\r\n",
            Reply::Touched => b"TOUCHED\r\n",
            Reply::Ok => b"OK\r\n",
            Reply::End => b"END\r\n",
            Reply::Reset => b"RESET\r\n",
            Reply::NonNumeric => {
                b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
            }
            Reply::TooLarge => b"SERVER_ERROR object too large for cache\r\n",
            Reply::OutOfMemory => b"SERVER_ERROR out of memory storing object\r\n",
            Reply::ShutdownDisabled => b"ERROR: shutdown not enabled\r\n",
            Reply::ShuttingDown => b"SERVER_ERROR shutting down\r\n",
            Reply::NoRoomForRequest => b"SERVER_ERROR out of memory reading request\r\n",
            Reply::TooManyConnections => b"ERROR Too many open connections\r\n",
            Reply::Unauthenticated => b"CLIENT_ERROR unauthenticated\r\n",
            Reply::DetailUsage => b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
            Reply::TlsNotEnabled => b"Error TLS not enabled\r\n",
            Reply::RefreshCertsFailed => {
                b"Error failed to refresh the certificate or key (see the server log)\r\n"
            }
            Reply::AuthenticationFailure => b"CLIENT_ERROR authentication failure\r\n",
            Reply::Error => b"ERROR\r\n",
        }
    }

    /// Appends the reply.
    #[inline]
    pub fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.bytes());
    }
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`; the cas only for
/// `gets`/`gats`.
pub fn write_value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    out.reserve(key.len() + data.len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    write_u64(out, u64::from(flags));
    out.push(b' ');
    write_u64(out, data.len() as u64);
    if let Some(cas) = cas {
        out.push(b' ');
        write_u64(out, cas);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The new value after `incr`/`decr`: `<n>\r\n`.
pub fn write_number(out: &mut Vec<u8>, n: u64) {
    write_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `VERSION <version>\r\n`.
pub fn write_version(out: &mut Vec<u8>, version: &[u8]) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version);
    out.extend_from_slice(b"\r\n");
}

/// A statistic's value, formatted as memcached does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StatValue<'a> {
    /// An unsigned counter or gauge.
    U64(u64),
    /// A signed value.
    I64(i64),
    /// Seconds and microseconds, written `s.uuuuuu` (rusage_user, ...).
    Seconds {
        /// Whole seconds.
        secs: u64,
        /// Microseconds, below one million.
        micros: u32,
    },
    /// A string (version, settings such as the eviction policy).
    Str(&'a [u8]),
    /// `yes`/`no`, for boolean settings.
    Bool(bool),
}

/// `STAT <name> <value>\r\n`.
pub fn write_stat(out: &mut Vec<u8>, name: &[u8], value: StatValue<'_>) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    out.push(b' ');
    match value {
        StatValue::U64(n) => write_u64(out, n),
        StatValue::I64(n) => write_i64(out, n),
        StatValue::Seconds { secs, micros } => {
            write_u64(out, secs);
            out.push(b'.');
            let mut digits = [b'0'; 6];
            let mut rest = micros.min(999_999);
            for d in digits.iter_mut().rev() {
                *d = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            out.extend_from_slice(&digits);
        }
        StatValue::Str(s) => out.extend_from_slice(s),
        StatValue::Bool(b) => out.extend_from_slice(if b { b"yes" } else { b"no" }),
    }
    out.extend_from_slice(b"\r\n");
}

/// One line of `stats detail dump`: `PREFIX <prefix> get <n> hit <n> set
/// <n> del <n>\r\n` (the dump ends with `END`).
pub fn write_prefix(
    out: &mut Vec<u8>,
    prefix: &[u8],
    gets: u64,
    hits: u64,
    sets: u64,
    deletes: u64,
) {
    out.extend_from_slice(b"PREFIX ");
    // A prefix is part of a key: shown escaped, never raw (see Printable).
    let _ = std::io::Write::write_fmt(out, format_args!("{}", crate::key::Printable(prefix)));
    for (label, n) in [
        (&b" get "[..], gets),
        (b" hit ", hits),
        (b" set ", sets),
        (b" del ", deletes),
    ] {
        out.extend_from_slice(label);
        write_u64(out, n);
    }
    out.extend_from_slice(b"\r\n");
}
