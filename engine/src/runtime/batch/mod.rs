//! One read's worth of pipelined requests, executed in two passes so that
//! replies leave in request order while keys owned by other cores are
//! served by those cores.
//!
//! Pass 1 parses every complete request in the buffer and copies each op
//! whose key another core owns into that core's [`Batch`]. The batches go
//! out together (one message per destination per read) and their replies
//! are awaited together. Pass 2 parses the same bytes again (cheaper than
//! keeping the parsed requests), runs local ops inline against the shard,
//! takes remote outcomes in order, and encodes every reply into the output
//! buffer. Each key has one owner, and each owner runs a connection's ops in
//! the order they were sent, so per-key order is the client's order.
//!
//! Architecture invariant: a batch runs a connection's requests in the
//! order they came and answers them in that order; every op on a key runs
//! on the key's owner, and nothing a batch holds grows with what a client
//! asks for beyond the bounds in [`bounds`].

pub(crate) mod bounds;
pub(crate) mod message;
mod pass2;
mod plan;
mod remote;
pub(crate) mod route;
pub(crate) mod router;
mod run;

pub(crate) use run::run_batch;
