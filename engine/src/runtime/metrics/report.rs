//! The typed per-core snapshot every `stats` view and `/metrics` are
//! rendered from: a core answers [`crate::runtime::op::CoreCommand::Stats`] with a
//! [`CoreReport`], and the reports of all cores sum into [`Totals`].

use std::ops::AddAssign;

use crate::runtime::conn::buffers::PoolUsage;
use crate::runtime::conn::table::ConnEntry;
use crate::runtime::metrics::latency::Latency;
use crate::storage::{ClassStats, ShardStats};

/// One core's contribution to `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoreReport {
    /// The core's index.
    pub core: usize,
    /// Its shard's counters.
    pub shard: ShardStats,
    /// Its connections' counters.
    pub conns: ConnCounters,
    /// Segments in all, free, and bytes each.
    pub segments: (usize, usize, usize),
    /// Segments per non-empty TTL bucket.
    pub buckets: Vec<(usize, usize)>,
    /// Bytes held by the index.
    pub index_bytes: usize,
    /// The index's pieces, and entries in its largest one.
    pub index_pieces: (usize, usize),
    /// The access sketch's bytes and halvings (`s3fifo` only).
    pub sketch: Option<(usize, u64)>,
    /// Dead bytes in segments in use.
    pub dead_bytes: u64,
    /// `stats detail` counts of this core's connections (when asked for).
    pub prefixes: Vec<(Box<[u8]>, PrefixCounts)>,
    /// Whether `stats detail` counting is on.
    pub detail_enabled: bool,
    /// Its listening socket (fd, address).
    pub listening: Option<(i32, std::net::SocketAddr)>,
    /// Its client connections (when asked for).
    pub clients: Vec<ConnEntry>,
    /// Connection slots allocated (its peak of open connections).
    pub conn_slots: usize,
    /// Tasks waiting on its stop signal.
    pub stop_waiters: usize,
    /// Its I/O buffers.
    pub buffers: PoolUsage,
    /// Items it took back at start (`-e`), `None` after a cold start.
    pub restored: Option<u64>,
    /// Its CPU, NUMA node and memory node.
    pub placement: crate::runtime::server::numa::Placement,
    /// Its latency histograms (when asked for).
    pub latency: Option<Box<Latency>>,
    /// Its most requested keys with estimated counts (when asked for).
    pub hot_keys: Vec<(Box<[u8]>, u64)>,
    /// Its per-class counters and oldest item's age (when asked for).
    pub classes: Option<Box<(ClassStats, u32)>>,
}

/// Per-core connection counters: plain integers, summed on request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Open connections.
    pub curr_connections: u64,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Connections closed at once for being over the limit.
    pub rejected_connections: u64,
    /// Requests parsed.
    pub requests: u64,
    /// Key ops sent to other cores.
    pub forwarded_out: u64,
    /// Key ops received from other cores.
    pub forwarded_in: u64,
    /// Bytes read from clients.
    pub bytes_read: u64,
    /// Bytes written to clients.
    pub bytes_written: u64,
    /// flush_all commands (counted once, on the core that received them,
    /// though every shard runs them).
    pub cmd_flush: u64,
    /// Storage commands refused because the value is over the item size
    /// limit (refused by the parser, so no shard sees them).
    pub store_too_large: u64,
    /// Storage commands refused because the core had no room left to
    /// receive their values (the large-request budget was spent).
    pub store_no_memory: u64,
    /// Connections closed for idling past `idle_timeout`.
    pub idle_kicks: u64,
    /// Times a request needed more read buffer than the core had room for.
    pub read_buf_oom: u64,
    /// Connections closed because they held part of the large-request
    /// budget without sending for `large_request_timeout` while another
    /// connection needed room.
    pub large_request_reclaims: u64,
    /// Authentication attempts (SASL Auth/Step, ASCII credentials).
    pub auth_cmds: u64,
    /// Attempts that failed.
    pub auth_errors: u64,
    /// TLS handshakes that failed or timed out.
    pub ssl_handshake_errors: u64,
    /// TLS handshakes completed.
    pub ssl_new_sessions: u64,
}

impl ConnCounters {
    /// `stats reset`: zeroes the counters, keeping `curr_connections`.
    pub fn reset(&mut self) {
        *self = ConnCounters {
            curr_connections: self.curr_connections,
            ..ConnCounters::default()
        };
    }
}

/// One key prefix's counts (`stats detail`): part of the snapshot, kept
/// by `prefix_stats` on the core a connection lives on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixCounts {
    /// get/gets/gat/gats keys (text and binary).
    pub gets: u64,
    /// Of those, the ones found.
    pub hits: u64,
    /// Storage commands (set/add/replace/append/prepend/cas).
    pub sets: u64,
    /// delete commands.
    pub deletes: u64,
}

/// Server-wide totals are the cores' counters summed.
impl AddAssign<&ConnCounters> for ConnCounters {
    fn add_assign(&mut self, o: &ConnCounters) {
        // Destructured so a new counter cannot be left out of the sum.
        let ConnCounters {
            curr_connections,
            total_connections,
            rejected_connections,
            requests,
            forwarded_out,
            forwarded_in,
            bytes_read,
            bytes_written,
            cmd_flush,
            store_too_large,
            store_no_memory,
            idle_kicks,
            read_buf_oom,
            large_request_reclaims,
            auth_cmds,
            auth_errors,
            ssl_handshake_errors,
            ssl_new_sessions,
        } = *o;
        self.curr_connections += curr_connections;
        self.total_connections += total_connections;
        self.rejected_connections += rejected_connections;
        self.requests += requests;
        self.forwarded_out += forwarded_out;
        self.forwarded_in += forwarded_in;
        self.bytes_read += bytes_read;
        self.bytes_written += bytes_written;
        self.cmd_flush += cmd_flush;
        self.store_too_large += store_too_large;
        self.store_no_memory += store_no_memory;
        self.idle_kicks += idle_kicks;
        self.read_buf_oom += read_buf_oom;
        self.large_request_reclaims += large_request_reclaims;
        self.auth_cmds += auth_cmds;
        self.auth_errors += auth_errors;
        self.ssl_handshake_errors += ssl_handshake_errors;
        self.ssl_new_sessions += ssl_new_sessions;
    }
}

/// Every core's report summed: what the server-wide `stats` and the
/// `memcached_*` metrics show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// The shards' counters.
    pub shard: ShardStats,
    /// The connections' counters.
    pub conns: ConnCounters,
    /// Connection slots allocated.
    pub conn_slots: usize,
    /// I/O buffers lent and idle, and bytes of grown read buffers.
    pub buffers: PoolUsage,
    /// Bytes held by the indexes.
    pub index_bytes: usize,
    /// Bytes of segments in use.
    pub segment_bytes_used: usize,
    /// Items taken back at start (`-e`).
    pub restored: u64,
    /// Every core started warm.
    pub warm_start: bool,
}

impl Totals {
    /// Sums `reports`.
    pub fn of(reports: &[CoreReport]) -> Totals {
        let mut totals = Totals {
            warm_start: !reports.is_empty() && reports.iter().all(|r| r.restored.is_some()),
            ..Totals::default()
        };
        for r in reports {
            totals.shard += &r.shard;
            totals.conns += &r.conns;
            totals.conn_slots += r.conn_slots;
            totals.buffers.lent += r.buffers.lent;
            totals.buffers.idle += r.buffers.idle;
            totals.buffers.large_bytes += r.buffers.large_bytes;
            totals.index_bytes += r.index_bytes;
            let (total, free, size) = r.segments;
            totals.segment_bytes_used += (total - free) * size;
            totals.restored += r.restored.unwrap_or(0);
        }
        totals
    }
}
