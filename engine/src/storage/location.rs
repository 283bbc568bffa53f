//! Where an item lives, packed into the 4 bytes an index slot holds.
//!
//! ```text
//!  31                                                0
//! +---------------------------------------------------+
//! |  byte offset of the item in the shard's memory    |
//! |  >> align_shift                                   |
//! +---------------------------------------------------+
//! ```
//!
//! The shard's memory is one allocation, so one number locates an item:
//! `segment = offset / segment_size`, `within = offset % segment_size`
//! (segment sizes are powers of two, so both are shifts). Up to 4 GiB per
//! shard, items are byte-packed (`align_shift` 0); a larger shard aligns
//! items to 2^`align_shift` bytes so the offset still fits 32 bits.
//!
//! Four bytes, not eight, because the index is the largest per-item cost
//! after the item itself: hashbrown keeps between 7/16 and 7/8 of its
//! power-of-two slot count filled, so each slot byte costs 1.1 to 2.3 bytes
//! per item.

/// A packed item location. See the module docs for the layout;
/// [`super::segment::Segments`] converts it to and from segment + offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location(u32);

impl Location {
    /// The packed bits, as stored in an index slot.
    #[inline]
    pub fn raw(self) -> u32 {
        self.0
    }

    /// Rebuilds a location from an index slot.
    #[inline]
    pub fn from_raw(raw: u32) -> Self {
        Location(raw)
    }
}

/// Largest segment, and so the largest item: 16 MiB keeps a merge pass's
/// copying (a few segments) short enough to run inline.
pub const MAX_SEGMENT_SIZE: usize = 1 << 24;

/// The alignment shift that lets 32 bits address `memory_bytes`.
pub fn align_shift_for(memory_bytes: usize) -> u32 {
    let bits = usize::BITS - memory_bytes.saturating_sub(1).leading_zeros();
    bits.saturating_sub(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_is_one_u32() {
        assert_eq!(std::mem::size_of::<Location>(), 4);
        assert_eq!(Location::from_raw(77).raw(), 77);
    }

    #[test]
    fn alignment_only_beyond_4_gib() {
        assert_eq!(align_shift_for(64 << 20), 0);
        assert_eq!(align_shift_for(4 << 30), 0);
        assert_eq!(align_shift_for((4 << 30) + 1), 1);
        assert_eq!(align_shift_for(16 << 30), 2);
        assert_eq!(align_shift_for(100 << 30), 5);
    }
}
