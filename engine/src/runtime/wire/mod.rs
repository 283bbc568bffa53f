//! The wire protocols on top of ops: text (with meta) and binary, each
//! lowering its requests to [`crate::runtime::op::Op`]s and writing their
//! outcomes back; the authentication gate a connection passes first; the
//! `stats` queries.
//!
//! Architecture invariant: a wire parses with the protocol crate, lowers,
//! and encodes; it never runs an op or touches a socket, and it learns the
//! server only through its settings and what the ops report.

pub(crate) mod binary;
pub(crate) mod gate;
pub(crate) mod protocol;
pub(crate) mod stats;
pub(crate) mod text;
