//! The command layer between storage and the runtime: what a request
//! means once its wire is set aside, and running it.
//!
//! Every wire lowers its requests to [`Op`]s — one per key (or one per core
//! for commands on the whole server) — and a command runs in one place,
//! [`KeyCommand::run`] or [`CoreCommand::run`], on the shard of the core
//! that owns the key. An op borrows its key and value (`Op<&[u8]>`) where
//! it runs inline, and holds them in a message arena (`Op<Span>`) when it
//! crosses to another core: only key and value are bytes, so a new command
//! never touches that plumbing.
//!
//! - [`model`]: the ops and their commands.
//! - [`outcome`]: what a command produced, as the reply encoders read it.
//! - [`apply`]: running a command, and what a whole-core command needs
//!   of its core ([`CoreAccess`]).
//!
//! Architecture invariant: this layer knows storage and nothing above it:
//! no wire, no socket, no core's state but what [`CoreAccess`] gives.

pub mod apply;
pub mod model;
pub mod outcome;

pub use apply::{execute, CoreAccess};
pub use model::{CoreCommand, KeyCommand, Op, ReportLists};
pub use outcome::{Hit, Outcome};
