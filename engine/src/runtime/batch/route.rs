//! Which core owns a key, and how a core routes the ops of a request.

use crate::runtime::op::Op;
use crate::storage::hash::shard_of;
use crate::storage::HashedKey;

/// The core that owns `key`.
#[inline]
pub fn owner_of(key: &[u8], cores: usize) -> usize {
    if cores == 1 {
        0
    } else {
        HashedKey::new(key).shard(cores)
    }
}

/// Which core owns a key: by hash over the cores when they share one port,
/// or always the receiving core with `--port-per-core`, where each core is
/// a node of the proxy's or client's ring and nothing is forwarded.
/// Commands for every core (`stats`, `flush_all`) go to every core either
/// way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Cores in the server.
    pub cores: usize,
    /// The core that owns every key (per-core endpoints).
    pub local: Option<usize>,
}

impl Route {
    /// Calls `f(core, op)` for every core: the ops of commands for the
    /// whole server (`flush_all`, `stats`), on every wire.
    pub fn each_core(&self, op: &Op<&[u8]>, f: &mut dyn FnMut(usize, &Op<&[u8]>)) {
        for core in 0..self.cores {
            f(core, op);
        }
    }

    /// The core that owns `key`.
    #[inline]
    pub fn owner(&self, key: &[u8]) -> usize {
        match self.local {
            Some(core) => core,
            None => owner_of(key, self.cores),
        }
    }

    /// The core that runs `op`: its key's owner, from the hash the op
    /// carries (a whole-core op is handed to each core by its lowering).
    #[inline]
    pub fn owner_of(&self, op: &Op<&[u8]>) -> usize {
        match (self.local, op) {
            (Some(core), _) => core,
            (None, Op::Key { hash, .. }) => shard_of(*hash, self.cores),
            (None, Op::Core(_)) => 0,
        }
    }
}
