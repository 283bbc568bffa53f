//! The item: a compact header, then the key, then the value, appended to a
//! segment and never moved in place.
//!
//! ```text
//!  byte  0         1         2         3
//!       +---------+---------+-------------------+
//!    0  | key len | bits    | last access       |
//!       +---------+---------+-------------------+
//!    4  | value length (u32)                    |
//!       +---------------------------------------+
//!    8  | expires at (unix s, u32; 0 = never)   |
//!       +---------------------------------------+
//!   12  | client flags (u32)   only if HAS_FLAGS|
//!       +---------------------------------------+
//!       | cas (u64)            only if HAS_CAS  |
//!       +---------------------------------------+
//!       | key (1..=250 bytes) | value ...       |
//!       +---------------------------------------+
//! ```
//!
//! 12 bytes for the common item (flags 0, derived cas). Client flags cost 4
//! bytes only when non-zero. The cas is normally derived from where the item
//! sits (see [`super::Shard`]), so it is stored only when a client chose it
//! (meta `E`) or a merge moved the item and its cas had to survive the move.
//! All fields are little-endian and unaligned: items pack back to back.

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 12;

/// The longest key an item holds (memcached's limit; its length is one
/// byte of the header).
pub const MAX_KEY_LEN: usize = 250;

/// Overwritten, deleted, expired or evicted: its bytes are dead weight until
/// the segment is reused.
pub const DEAD: u8 = 1 << 0;
/// Read since the last merge pass looked at it (segment-level second chance).
pub const ACCESSED: u8 = 1 << 1;
/// Read at least once (meta `h`).
pub const FETCHED: u8 = 1 << 2;
/// Invalidated by meta `I`: still served, flagged `X`.
pub const STALE: u8 = 1 << 3;
/// A client was handed the recache token (`W`); later readers see `Z`.
pub const WIN_SENT: u8 = 1 << 4;
/// Client flags follow the header.
pub const HAS_FLAGS: u8 = 1 << 5;
/// An explicit cas follows the header (and the flags).
pub const HAS_CAS: u8 = 1 << 6;
/// A client may hold this item's cas (a reply showed it): a merge that
/// moves the item must keep the cas, so writes it explicitly. Items whose
/// cas no reply showed (text get/set traffic) move without those 8 bytes
/// and take the cas of their new place.
pub const CAS_SHOWN: u8 = 1 << 7;

/// The decoded fixed header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// 1..=250.
    pub key_len: u8,
    /// State bits (`DEAD`, `ACCESSED`, ...).
    pub bits: u8,
    /// Last access, relative to the segment's opening ([`super::access`]).
    pub last_access: u16,
    /// Value length.
    pub value_len: u32,
    /// Expiry as unix seconds; 0 means never.
    pub expire_at: u32,
}

impl Header {
    /// Bytes of the optional fields.
    #[inline]
    pub fn optional_len(&self) -> usize {
        optional_len(self.bits)
    }

    /// Bytes from the item's start to its key.
    #[inline]
    pub fn key_offset(&self) -> usize {
        HEADER_LEN + self.optional_len()
    }

    /// Bytes the whole item occupies.
    #[inline]
    pub fn total_len(&self) -> usize {
        self.key_offset() + usize::from(self.key_len) + self.value_len as usize
    }

    /// The bytes memcached would use for this item, which picks its
    /// memcached size class (see [`super::classes`]).
    #[inline]
    pub fn memcached_size(&self) -> usize {
        super::classes::memcached_size(
            usize::from(self.key_len),
            self.value_len as usize,
            self.bits & HAS_FLAGS != 0,
        )
    }

    /// Reads a header from the start of `bytes`.
    #[inline]
    pub fn read(bytes: &[u8]) -> Header {
        Header {
            key_len: bytes[0],
            bits: bytes[1],
            last_access: u16::from_le_bytes([bytes[2], bytes[3]]),
            value_len: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            expire_at: u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        }
    }

    /// Writes the header to the start of `bytes`.
    #[inline]
    pub fn write(&self, bytes: &mut [u8]) {
        bytes[0] = self.key_len;
        bytes[1] = self.bits;
        bytes[2..4].copy_from_slice(&self.last_access.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.value_len.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.expire_at.to_le_bytes());
    }
}

/// Bytes of the optional fields for a set of bits.
#[inline]
pub fn optional_len(bits: u8) -> usize {
    (if bits & HAS_FLAGS != 0 { 4 } else { 0 }) + (if bits & HAS_CAS != 0 { 8 } else { 0 })
}

/// Total bytes of an item with these lengths and optional fields.
#[inline]
pub fn item_len(key_len: usize, value_len: usize, bits: u8) -> usize {
    HEADER_LEN + optional_len(bits) + key_len + value_len
}

/// A read-only view of one item in segment memory.
#[derive(Clone, Copy, Debug)]
pub struct RawItem<'a> {
    /// The header.
    pub header: Header,
    bytes: &'a [u8],
}

impl<'a> RawItem<'a> {
    /// Views the item starting at `bytes[0]`.
    #[inline]
    pub fn read(bytes: &'a [u8]) -> Self {
        let header = Header::read(bytes);
        RawItem {
            bytes: &bytes[..header.total_len()],
            header,
        }
    }

    /// Client flags (0 when not stored).
    #[inline]
    pub fn client_flags(&self) -> u32 {
        if self.header.bits & HAS_FLAGS == 0 {
            return 0;
        }
        let b = &self.bytes[HEADER_LEN..HEADER_LEN + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The stored cas, if the item carries one.
    #[inline]
    pub fn explicit_cas(&self) -> Option<u64> {
        if self.header.bits & HAS_CAS == 0 {
            return None;
        }
        let at = HEADER_LEN
            + if self.header.bits & HAS_FLAGS != 0 {
                4
            } else {
                0
            };
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&self.bytes[at..at + 8]);
        Some(u64::from_le_bytes(raw))
    }

    /// The key.
    #[inline]
    pub fn key(&self) -> &'a [u8] {
        let at = self.header.key_offset();
        &self.bytes[at..at + usize::from(self.header.key_len)]
    }

    /// The value.
    #[inline]
    pub fn value(&self) -> &'a [u8] {
        &self.bytes[self.header.key_offset() + usize::from(self.header.key_len)..]
    }
}

/// Writes the optional fields after a header already at `bytes[0..12]`.
#[inline]
pub fn write_optional(bytes: &mut [u8], bits: u8, client_flags: u32, cas: u64) {
    let mut at = HEADER_LEN;
    if bits & HAS_FLAGS != 0 {
        bytes[at..at + 4].copy_from_slice(&client_flags.to_le_bytes());
        at += 4;
    }
    if bits & HAS_CAS != 0 {
        bytes[at..at + 8].copy_from_slice(&cas.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_12_bytes_and_round_trips() {
        let h = Header {
            key_len: 250,
            bits: DEAD | HAS_FLAGS,
            last_access: 0xbeef,
            value_len: 0x0102_0304,
            expire_at: 0xa0b0_c0d0,
        };
        let mut buf = [0u8; HEADER_LEN];
        h.write(&mut buf);
        assert_eq!(Header::read(&buf), h);
        assert_eq!(HEADER_LEN, 12);
    }

    #[test]
    fn optional_fields_cost_only_when_present() {
        assert_eq!(item_len(24, 64, 0), 12 + 24 + 64);
        assert_eq!(item_len(24, 64, HAS_FLAGS), 16 + 24 + 64);
        assert_eq!(item_len(24, 64, HAS_FLAGS | HAS_CAS), 24 + 24 + 64);
        assert_eq!(item_len(24, 64, HAS_CAS), 20 + 24 + 64);
    }

    #[test]
    fn raw_item_reads_back_what_was_written() {
        for bits in [0, HAS_FLAGS, HAS_CAS, HAS_FLAGS | HAS_CAS] {
            let header = Header {
                key_len: 3,
                bits,
                last_access: 1,
                value_len: 5,
                expire_at: 9,
            };
            let mut buf = vec![0u8; header.total_len()];
            header.write(&mut buf);
            write_optional(&mut buf, bits, 77, 0x1122_3344_5566_7788);
            let at = header.key_offset();
            buf[at..at + 3].copy_from_slice(b"key");
            buf[at + 3..].copy_from_slice(b"value");
            let item = RawItem::read(&buf);
            assert_eq!((item.key(), item.value()), (&b"key"[..], &b"value"[..]));
            assert_eq!(
                item.client_flags(),
                if bits & HAS_FLAGS != 0 { 77 } else { 0 }
            );
            assert_eq!(
                item.explicit_cas(),
                (bits & HAS_CAS != 0).then_some(0x1122_3344_5566_7788)
            );
        }
    }
}
