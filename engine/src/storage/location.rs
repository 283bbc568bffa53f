//! Where an item lives, packed into the 8 bytes an index slot holds.
//!
//! ```text
//!  63            40 39            16 15             0
//! +----------------+----------------+----------------+
//! |  segment id    |  byte offset   |      tag       |
//! |   24 bits      |   24 bits      |    16 bits     |
//! +----------------+----------------+----------------+
//! ```
//!
//! The tag is 16 bits of the key's hash that the index does not already use
//! for placement: a probe compares tags before it reads the key out of
//! segment memory, so a mismatch costs no cache miss. 24-bit offsets bound a
//! segment at 16 MiB; 24-bit ids allow 16 M segments per shard.

/// Largest segment the offset field can address.
pub const MAX_SEGMENT_SIZE: usize = 1 << 24;
/// Most segments one shard can hold.
pub const MAX_SEGMENTS: usize = 1 << 24;

/// A packed item location. See the module docs for the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location(u64);

impl Location {
    /// Packs a location; `segment` and `offset` must fit 24 bits.
    #[inline]
    pub fn new(segment: u32, offset: u32, tag: u16) -> Self {
        debug_assert!((segment as usize) < MAX_SEGMENTS);
        debug_assert!((offset as usize) < MAX_SEGMENT_SIZE);
        Location((u64::from(segment) << 40) | (u64::from(offset) << 16) | u64::from(tag))
    }

    /// The segment holding the item.
    #[inline]
    pub fn segment(self) -> u32 {
        (self.0 >> 40) as u32
    }

    /// The item's byte offset inside its segment.
    #[inline]
    pub fn offset(self) -> u32 {
        ((self.0 >> 16) & 0xff_ffff) as u32
    }

    /// Hash bits used to skip non-matching keys.
    #[inline]
    pub fn tag(self) -> u16 {
        self.0 as u16
    }

    /// The packed bits, as stored in an index slot.
    #[inline]
    pub fn raw(self) -> u64 {
        self.0
    }

    /// Rebuilds a location from an index slot.
    #[inline]
    pub fn from_raw(raw: u64) -> Self {
        Location(raw)
    }
}

/// The tag for a key hash: bits 40..56, clear of the low bits the index
/// uses for the bucket and the top 7 it keeps in its control bytes.
#[inline]
pub fn tag_of(hash: u64) -> u16 {
    (hash >> 40) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_is_one_u64() {
        assert_eq!(std::mem::size_of::<Location>(), 8);
    }

    #[test]
    fn fields_round_trip_at_their_limits() {
        let loc = Location::new(
            (MAX_SEGMENTS - 1) as u32,
            (MAX_SEGMENT_SIZE - 1) as u32,
            0xffff,
        );
        assert_eq!(loc.segment() as usize, MAX_SEGMENTS - 1);
        assert_eq!(loc.offset() as usize, MAX_SEGMENT_SIZE - 1);
        assert_eq!(loc.tag(), 0xffff);
        let loc = Location::new(5, 1234, 0xabcd);
        assert_eq!((loc.segment(), loc.offset(), loc.tag()), (5, 1234, 0xabcd));
        assert_eq!(Location::from_raw(loc.raw()), loc);
    }
}
