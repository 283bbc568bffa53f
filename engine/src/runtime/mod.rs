//! The thread-per-core runtime: one pinned glommio executor per CPU, each
//! owning one [`Shard`](crate::storage::Shard), its listener and its
//! connections. Its folders are its floors, each using only the ones below
//! it (docs/architecture.md has the code map and each floor's invariant):
//!
//! - [`server`]: starting and stopping the cores; a core's state
//!   ([`server::core::Core`]), the settings every core reads, NUMA
//!   placement, the stop signal.
//! - [`conn`]: a client connection from accept to close: listening and the
//!   TLS handshake, the transport, the session, the buffers it borrows, the
//!   core's table of connections.
//! - [`wire`]: the wire protocols on top of ops (text with meta, binary),
//!   the authentication gate, `stats` queries.
//! - [`batch`]: running one read's worth of pipelined requests in two
//!   passes, routing ops to their owners and the cross-core mesh.
//! - [`op`]: the command model every wire lowers to, and its outcomes.
//! - [`metrics`]: everything that counts or reports: the typed per-core
//!   reports, the rows `stats` and Prometheus render, latency, hot keys,
//!   prefix counts, the `--metrics-listen` endpoint.
//!
//! Nothing on the request path is shared between cores: each core's state
//! lives in `Rc`/`RefCell` on its own thread. The only cross-thread state is
//! read-only [`Settings`], the mesh rings, a shutdown phase polled by a
//! timer every 20 ms with the count of cores that have drained, and the
//! server-wide count of open connections (one atomic add per accept and
//! per close, never per request) that enforces `-c`.

pub(crate) mod batch;
pub mod conn;
pub(crate) mod metrics;
pub(crate) mod op;
pub mod server;
pub(crate) mod wire;

pub use crate::storage::time::unix_now;
pub use conn::tls;
pub use metrics::prefix_stats::DEFAULT_DELIMITER;
pub use server::auth;
pub use server::core::current_core;
pub use server::settings::Settings;
pub use server::verbosity::{set_verbosity, verbosity};
pub use server::{Server, StartError, Started};
