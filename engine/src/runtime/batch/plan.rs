//! Pass 1: which ops of a read go to which core, and where pass 2 stops.

use segcore_protocol::{Limits, ParseError, Recovery, MAX_KEY_LEN};

use crate::runtime::batch::bounds::MAX_BATCH_REQUESTS;
use crate::runtime::batch::route::Route;
use crate::runtime::batch::router::Fanout;
use crate::runtime::op::{KeyCommand, Op};
use crate::runtime::server::core::Core;
use crate::runtime::wire::protocol::WireProtocol;
use crate::storage::Shard;

/// Keys of one batch whose items are prefetched (the rest still get their
/// index lines prefetched).
const PREFETCH_KEYS: usize = 64;

/// Where pass 1 stopped, so pass 2 stops at the same place.
pub(crate) enum Stop {
    /// Ran out of complete requests (or hit the batch cap).
    More,
    /// An error's skip reaches past the buffer.
    Discard(usize),
    /// An error closes the connection.
    Close,
}

/// What pass 1 leaves for pass 2: the forwarded batches, where to stop and
/// why, and (once they are sent) each owner's share of the outcome budget.
pub(crate) struct Planned {
    pub(crate) fanout: Option<Fanout>,
    pub(crate) end: usize,
    pub(crate) stop: Stop,
    pub(crate) budget: usize,
}

/// Pass 1: parses the requests at the start of `buf`, collects the ops
/// other cores own into one batch per owner, and starts loading the index
/// and item memory of local ops so pass 2 finds it in cache (a lone request
/// gains nothing from that, so only batches pay for the extra hashing).
/// Returns the batches (none when every op is local), where pass 2 must
/// stop, and why.
pub(crate) fn plan<P: WireProtocol>(core: &Core, buf: &[u8], limits: &Limits) -> Planned {
    let route = core.route();
    let mut pass = Pass1 {
        core,
        fanout: None,
        shard: core.shard.borrow(),
        hashes: [0u64; PREFETCH_KEYS],
        prefetched: 0,
    };
    let mut at = 0;
    let mut requests = 0;
    let mut stop = Stop::More;
    while at < buf.len() && requests < MAX_BATCH_REQUESTS {
        match P::parse(&buf[at..], limits) {
            Ok(Some((req, used))) => {
                let pipelined = at + used < buf.len() || requests > 0;
                // Even with per-core ports, commands for every core
                // (stats, flush_all) cross to the others.
                if core.cores > 1 || pipelined {
                    P::for_each_op(&req, route, &mut |owner, op| {
                        pass.place(owner, op, pipelined)
                    });
                }
                at += used;
                requests += 1;
                if P::kind(&req).ends_batch {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                // A refused set's unlink goes to the key's owner like an op.
                let mut scratch = [0; MAX_KEY_LEN];
                if let Some((owner, key)) = unlink_target(&e, &buf[at..], route, &mut scratch) {
                    pass.place(owner, &Op::on(key, KeyCommand::Unlink), false);
                }
                match e.recovery {
                    Recovery::Skip(n) if at + n <= buf.len() => {
                        at += n;
                        requests += 1;
                    }
                    Recovery::Skip(n) => {
                        stop = Stop::Discard(at + n - buf.len());
                        break;
                    }
                    Recovery::Close => {
                        stop = Stop::Close;
                        break;
                    }
                }
            }
        }
    }
    // By now the first keys' index lines have arrived: start loading the
    // items those lookups will read.
    for &hash in &pass.hashes[..pass.prefetched] {
        pass.shard.prefetch_item(hash);
    }
    Planned {
        fanout: pass.fanout,
        end: at,
        stop,
        budget: 0,
    }
}

/// What pass 1 gathers while it parses.
struct Pass1<'c> {
    core: &'c Core,
    fanout: Option<Fanout>,
    shard: std::cell::Ref<'c, Shard>,
    /// The first local keys, whose items are prefetched at the end.
    hashes: [u64; PREFETCH_KEYS],
    prefetched: usize,
}

impl Pass1<'_> {
    /// Puts an op another core owns in that core's batch; prefetches a
    /// local key's index line when the read holds more than one request.
    #[inline]
    fn place(&mut self, owner: usize, op: &Op<&[u8]>, pipelined: bool) {
        let core = self.core;
        if owner != core.id {
            self.fanout
                .get_or_insert_with(|| core.router.fanout(core.cores))
                .batches[owner]
                .push(op);
        } else if pipelined {
            if let Some(key) = op.hashed_key() {
                self.shard.prefetch(key);
                if self.prefetched < self.hashes.len() {
                    self.hashes[self.prefetched] = key.hash;
                    self.prefetched += 1;
                }
            }
        }
    }
}

/// The key a refused set must unlink (memcached drops its old value) and
/// the core that owns it, or `None` for every other error. `parsed` is the
/// buffer the error was parsed from.
pub(super) fn unlink_target<'a>(
    e: &ParseError,
    parsed: &'a [u8],
    route: Route,
    scratch: &'a mut [u8; MAX_KEY_LEN],
) -> Option<(usize, &'a [u8])> {
    let key = e.stale_key?.key(parsed, scratch)?;
    Some((route.owner(key), key))
}
