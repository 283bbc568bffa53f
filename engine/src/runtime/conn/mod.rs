//! A client connection from accept to close.
//!
//! Architecture invariant: a connection knows its core, its transport and
//! its session; it reads, hands complete requests to the batch runner (or
//! the auth gate), writes what comes back, and holds buffers only while it
//! has bytes to read or write. Nothing here parses a protocol or touches
//! the shard.
//!
//! - [`listen`]: the accept loop, the TLS handshake, the refusal past `-c`.
//! - [`connection`]: one connection's read/execute/write loop.
//! - [`transport`], [`tls`]: what a connection is served over (and, in
//!   tests, `memory`: an in-memory duplex).
//! - [`session`]: its wire and authentication state.
//! - [`buffers`]: each core's pool of I/O buffers and the large-request
//!   budget.
//! - [`slots`]: recycled storage for the batch being served, so idle
//!   connections do not carry it.
//! - [`table`]: each core's open connections (`stats conns`, idle kicks,
//!   stopping).

pub(crate) mod buffers;
pub(crate) mod connection;
pub(crate) mod listen;
#[cfg(test)]
pub(crate) mod memory;
pub(crate) mod session;
pub(crate) mod slots;
pub(crate) mod table;
pub mod tls;
pub(crate) mod transport;
