//! Closest to expiry: the segment whose items all expire soonest loses the
//! least remaining lifetime; FIFO when none will expire.

use super::pick_among_heads;
use super::{pick_fifo, Picker, Policy, Victim};
use crate::storage::segment::Segments;
use crate::storage::ttl::TtlBuckets;

/// The closest-to-expiry picker (no state).
pub struct Cte;

impl Picker for Cte {
    fn policy(&self) -> Policy {
        Policy::Cte
    }

    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Victim> {
        pick_cte(segs, buckets, pin).map(Victim::Segment)
    }
}

/// The segment whose items all expire soonest; FIFO when none will expire.
pub fn pick_cte(segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<u32> {
    pick_among_heads(segs, buckets, pin, |a, b| {
        let (ea, eb) = (segs.meta(a).max_expire, segs.meta(b).max_expire);
        ea < eb || (ea == eb && segs.meta(a).created_at < segs.meta(b).created_at)
    })
    .filter(|&id| segs.meta(id).max_expire.expires())
    .or_else(|| pick_fifo(segs, buckets, pin))
}
