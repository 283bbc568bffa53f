//! How much one connection's batch may take and hold: requests per read,
//! output before it is written out, forwarded outcomes in hand.

/// Most requests taken from one read before replying: bounds the memory one
/// pipelining client can pin in flight.
pub const MAX_BATCH_REQUESTS: usize = 256;
/// Output is written out once it passes this many bytes, mid-batch if need be.
pub const FLUSH_BYTES: usize = 256 << 10;

/// Bytes of forwarded outcomes one connection asks its owners to copy at a
/// time, shared among the owners of a batch (each gets at least
/// [`MIN_REPLY_PIECE`]); an owner stops once its share is full and the
/// rest of its batch is fetched when pass 2 reaches it.
pub const REPLY_BYTES: usize = 256 << 10;
/// The smallest share of [`REPLY_BYTES`] one owner gets.
pub const MIN_REPLY_PIECE: usize = 16 << 10;

/// The most reply bytes one connection holds at once, whatever it asks
/// for: its output (written out past [`FLUSH_BYTES`], so at most that plus
/// one reply) and the forwarded outcomes in hand (each owner's share, plus
/// the one value that may pass it). `max_reply` is the largest single
/// reply (an item at the size limit with its header).
pub fn reply_memory_bound(cores: usize, max_reply: usize) -> usize {
    let remotes = cores.saturating_sub(1);
    let pieces = REPLY_BYTES
        .checked_div(remotes)
        .map_or(0, |piece| piece.max(MIN_REPLY_PIECE) * remotes);
    FLUSH_BYTES + max_reply + pieces + remotes * max_reply
}
