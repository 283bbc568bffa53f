//! FIFO: the oldest segment goes. Cheap, and scan-resistant enough for
//! uniform traffic.

use super::{pick_among_heads, Picker, Policy, Victim};
use crate::storage::segment::Segments;
use crate::storage::ttl::TtlBuckets;

/// The FIFO picker (no state).
pub struct Fifo;

impl Picker for Fifo {
    fn policy(&self) -> Policy {
        Policy::Fifo
    }

    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Victim> {
        pick_fifo(segs, buckets, pin).map(Victim::Segment)
    }
}

/// The oldest segment (never `pin`).
pub fn pick_fifo(segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<u32> {
    pick_among_heads(segs, buckets, pin, |a, b| {
        segs.meta(a).created_at < segs.meta(b).created_at
    })
}
