//! An item's last-access time in the 16 bits its header has for it.
//!
//! The time is kept as seconds since the item's segment was opened (an item
//! is never older than its segment, except one a merge moved, which counts
//! from the move), in a small floating-point form: a 4-bit exponent and a
//! 12-bit mantissa with an implied leading bit. Offsets below 8192 s are
//! exact; past that the step doubles with each power of two, so an offset
//! is rounded down by less than 1/4096 of itself (16 s for a segment a day
//! old), up to about four years. Right after a store the age reads to the
//! second, as memcached's `l` does; an absolute clock of 16 bits would have
//! to give up either that or the range.

/// Offsets below this are stored exactly with exponent 0 or 1.
const MANTISSA_BITS: u32 = 12;
const MANTISSA_MASK: u32 = (1 << MANTISSA_BITS) - 1;
const MAX_EXPONENT: u32 = 15;

/// The code for `at` (unix seconds) in a segment opened at `opened`. Times
/// before `opened` count as `opened`; offsets past the range saturate.
#[inline]
pub fn encode(at: u32, opened: u32) -> u16 {
    let offset = at.saturating_sub(opened);
    if offset <= MANTISSA_MASK {
        return offset as u16;
    }
    let exponent = (u32::BITS - offset.leading_zeros()) - MANTISSA_BITS;
    if exponent > MAX_EXPONENT {
        return u16::MAX;
    }
    let mantissa = (offset >> (exponent - 1)) & MANTISSA_MASK;
    ((exponent << MANTISSA_BITS) | mantissa) as u16
}

/// The time (unix seconds) `code` stands for in a segment opened at
/// `opened`: never later than the time encoded.
#[inline]
pub fn decode(code: u16, opened: u32) -> u32 {
    let code = u32::from(code);
    let exponent = code >> MANTISSA_BITS;
    let mantissa = code & MANTISSA_MASK;
    let offset = if exponent == 0 {
        mantissa
    } else {
        (mantissa | (1 << MANTISSA_BITS)) << (exponent - 1)
    };
    opened.saturating_add(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENED: u32 = 1_700_000_000;

    fn round_trip(offset: u32) -> u32 {
        decode(encode(OPENED + offset, OPENED), OPENED) - OPENED
    }

    #[test]
    fn offsets_below_8192_seconds_are_exact() {
        for offset in 0..8192 {
            assert_eq!(round_trip(offset), offset);
        }
    }

    #[test]
    fn larger_offsets_round_down_by_less_than_a_4096th() {
        let mut offset = 8192u32;
        while offset < (8191 << 14) {
            let back = round_trip(offset);
            assert!(back <= offset, "{offset} -> {back}");
            assert!(offset - back < offset / 4096 + 1, "{offset} -> {back}");
            offset = offset + offset / 7 + 3;
        }
        // A day into a segment, the step is 16 s.
        assert_eq!(round_trip(86_400), 86_400);
        assert_eq!(round_trip(86_415), 86_400);
        assert_eq!(round_trip(86_416), 86_416);
    }

    #[test]
    fn codes_are_monotonic_and_saturate() {
        let mut last = 0;
        for offset in (0..(8191u32 << 14)).step_by(997) {
            let code = encode(OPENED + offset, OPENED);
            assert!(code >= last);
            last = code;
        }
        assert_eq!(encode(OPENED + (8191 << 14), OPENED), u16::MAX);
        assert_eq!(encode(u32::MAX, 0), u16::MAX);
        assert_eq!(decode(u16::MAX, OPENED) - OPENED, 8191 << 14);
        // Before the segment opened (a merge moved it, or the clock went
        // back): the opening time.
        assert_eq!(encode(OPENED - 50, OPENED), 0);
    }
}
