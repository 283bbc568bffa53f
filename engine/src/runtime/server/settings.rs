//! The server-wide settings: what the command line decided, read-only
//! once the server starts and shared by every core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use segcore_protocol::Limits;

use crate::runtime::conn::tls;
use crate::runtime::server::auth;
use crate::storage::{Policy, RestartFile, ShardConfig};

/// Server-wide settings, read-only once the server starts.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address every core listens on (SO_REUSEPORT); with
    /// `port_per_core`, core *i* listens on this port + *i*.
    pub listen: SocketAddr,
    /// Per-core endpoints (`--port-per-core`): each core has a port of its
    /// own and owns every key that arrives there, so a proxy's or client's
    /// consistent-hash ring, not segcore's hash, decides ownership and
    /// nothing is forwarded.
    pub port_per_core: bool,
    /// CPUs to run on, one executor and one shard each.
    pub cpus: Vec<usize>,
    /// Item memory for the whole server (`-m`), split evenly among cores.
    pub memory_bytes: usize,
    /// Segment size.
    pub segment_size: usize,
    /// Eviction policy.
    pub eviction: Policy,
    /// Keep item memory in files `<path>.<core>` (memcached's `-e`): a
    /// graceful stop with SIGUSR1 saves what a warm restart needs.
    pub memory_file: Option<std::path::PathBuf>,
    /// Largest value accepted (`-I`).
    pub max_item_size: usize,
    /// Connection limit (`-c`) for the whole server.
    pub conn_limit: usize,
    /// Close connections idle for longer than this many seconds (memcached's
    /// `-o idle_timeout`); 0 keeps them forever.
    pub idle_timeout: u32,
    /// Bytes each core may hold in read buffers grown past the pooled size
    /// for large requests (values being received); over it, a new large
    /// value is refused with `SERVER_ERROR out of memory storing object`.
    pub large_request_bytes: usize,
    /// Seconds a connection holding part of that budget may send nothing
    /// before its share is reclaimed for another connection that needs it
    /// (the stalled one is closed); 0 never reclaims.
    pub large_request_timeout: u32,
    /// `-v` count.
    pub verbosity: u8,
    /// Honour the `shutdown` command (memcached's `-A`).
    pub enable_shutdown: bool,
    /// Allow `flush_all` (memcached's `-F` turns it off).
    pub flush_enabled: bool,
    /// The byte ending a key's prefix in `stats detail` (memcached's `-D`).
    pub prefix_delimiter: u8,
    /// Count `stats detail` from the start (memcached's `-D` does).
    pub detail_enabled: bool,
    /// The `version` reply.
    pub version: String,
    /// Unix time the server started.
    pub started_at: u32,
    /// How long an idle executor spins before parking: trades idle CPU for
    /// cross-core latency.
    pub spin_before_park: Duration,
    /// How many segments the background expiry looks at per step.
    pub expire_budget: usize,
    /// Where core 0 serves `GET /metrics` (`--metrics-listen`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Authentication required of every connection (`-S` or `-Y`).
    pub auth: Option<Arc<auth::AuthConfig>>,
    /// TLS on the listeners (`-Z`).
    pub tls: Option<Arc<tls::TlsContext>>,
    /// How long a client has to finish its TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Plaintext listeners beside the main one (memcached's
    /// `-l notls:<ip>:<port>`, for clients inside the trust boundary when
    /// the main listener speaks TLS). Every core listens on each.
    pub plain_listen: Vec<SocketAddr>,
    /// More listeners like the main one (`-l 127.0.0.1,::1`): every core
    /// listens on each, with TLS when the main one has it.
    pub more_listen: Vec<SocketAddr>,
}

impl Settings {
    /// Core `core`'s share of the memory, as a shard config.
    pub fn shard_config(&self, core: usize) -> ShardConfig {
        ShardConfig {
            memory_bytes: self.memory_bytes / self.cpus.len().max(1),
            segment_size: self.segment_size,
            eviction: self.eviction,
            index_pieces: None,
            restart: self.memory_file.as_ref().map(|path| {
                let mut name = path.clone().into_os_string();
                name.push(format!(".{core}"));
                RestartFile {
                    path: name.into(),
                    layout_tag: self.layout_tag(core),
                    run: 0,
                    core: core as u32,
                    cores: self.cpus.len() as u32,
                    restore_run: None,
                }
            }),
        }
    }

    /// What, besides the shard's own config, decides which keys a core's
    /// shard holds: the number of cores (keys are hashed over them), the
    /// core's id, the item size limit and the routing mode.
    fn layout_tag(&self, core: usize) -> u64 {
        let fields = [
            self.cpus.len() as u64,
            core as u64,
            self.max_item_size as u64,
            u64::from(self.port_per_core),
        ];
        fields.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &f| {
            (h ^ f).wrapping_mul(0x0100_0000_01b3).rotate_left(17)
        })
    }

    /// The default per-core budget for large requests (see
    /// [`Settings::large_request_bytes`]): room for two of the largest
    /// values being received at once, and at least 16 MiB.
    pub fn default_large_request_bytes(max_item_size: usize) -> usize {
        max_item_size.saturating_mul(2).max(16 << 20)
    }

    /// The address core `core` listens on.
    pub fn core_listen(&self, core: usize) -> SocketAddr {
        let mut addr = self.listen;
        if self.port_per_core {
            addr.set_port(self.listen.port().saturating_add(core as u16));
        }
        addr
    }

    /// Every address the server listens on, with the flag that chose it
    /// (for errors), the metrics endpoint's included.
    pub fn listeners(&self) -> Vec<(SocketAddr, &'static str)> {
        let main = if self.port_per_core {
            "--port-per-core"
        } else {
            "-p/-l"
        };
        let mut all: Vec<(SocketAddr, &'static str)> = if self.port_per_core {
            (0..self.cpus.len())
                .map(|c| (self.core_listen(c), main))
                .collect()
        } else {
            vec![(self.listen, main)]
        };
        all.extend(self.more_listen.iter().map(|&a| (a, "-l")));
        all.extend(self.plain_listen.iter().map(|&a| (a, "-l notls:")));
        all.extend(self.metrics_listen.map(|a| (a, "--metrics-listen")));
        all
    }

    /// Binds every listening address once, plainly: the cores bind with
    /// SO_REUSEPORT, which would silently share a port another process
    /// holds (two servers answering on one port, scrapes going to the
    /// wrong one); this makes "address in use" an error naming its flag.
    /// Run before the fork of `-d`, so its failure is reported.
    pub fn check_ports(&self) -> Result<(), crate::runtime::server::start_error::StartError> {
        for (addr, flag) in self.listeners() {
            std::net::TcpListener::bind(addr).map_err(|e| {
                crate::runtime::server::start_error::StartError::Bind(addr, flag, e)
            })?;
        }
        Ok(())
    }

    /// The parser limits these settings imply.
    pub fn limits(&self) -> Limits {
        Limits {
            max_value_len: self.max_item_size,
            flush_enabled: self.flush_enabled,
            ..Limits::default()
        }
    }
}
