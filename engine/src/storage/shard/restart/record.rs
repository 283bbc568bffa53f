//! The saved form of a segment: its record in the metadata file (state,
//! links, counts, CRC), read back field by field, every field checked
//! against the shard it is restored into.

use super::super::super::segment::{ExpiryBound, SegmentMeta, SegmentState};
use super::super::super::ttl::BUCKETS;
use super::RestartError;

/// How the file writes "no segment" (a chain end, no reserved segment).
const NO_SEGMENT: u32 = u32::MAX;

pub(super) fn encode_segment(id: Option<u32>) -> u32 {
    id.unwrap_or(NO_SEGMENT)
}

pub(super) fn decode_segment(raw: u32) -> Option<u32> {
    (raw != NO_SEGMENT).then_some(raw)
}

/// Set in a saved state byte for a segment of the main FIFO (`s3fifo`);
/// files from before it have it clear, so they still load.
pub(super) const MAIN_BIT: u8 = 0x80;

pub(super) fn state_code(state: SegmentState) -> u8 {
    match state {
        SegmentState::Free => 0,
        SegmentState::Open => 1,
        SegmentState::Sealed => 2,
        SegmentState::Spare => 3,
    }
}

pub(super) fn state_of(code: u8) -> Option<SegmentState> {
    Some(match code {
        0 => SegmentState::Free,
        1 => SegmentState::Open,
        2 => SegmentState::Sealed,
        3 => SegmentState::Spare,
        _ => return None,
    })
}

/// Reads little-endian fields off a byte slice.
pub(super) struct Fields<'a>(pub(super) &'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], RestartError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(RestartError::Torn("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }
    pub(super) fn u8(&mut self) -> Result<u8, RestartError> {
        Ok(self.take::<1>()?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16, RestartError> {
        self.take().map(u16::from_le_bytes)
    }
    pub(super) fn u32(&mut self) -> Result<u32, RestartError> {
        self.take().map(u32::from_le_bytes)
    }
    pub(super) fn u64(&mut self) -> Result<u64, RestartError> {
        self.take().map(u64::from_le_bytes)
    }
}

/// One segment's saved record: its metadata and the CRC of its bytes,
/// checked against the shard it is restored into (`count` segments of
/// `size` bytes): a record that points outside it is torn.
pub(super) fn read_segment_record(
    fields: &mut Fields<'_>,
    count: usize,
    size: u32,
) -> Result<(SegmentMeta, u32), RestartError> {
    let (write_offset, live_items, live_bytes, created_at, max_expire) = (
        fields.u32()?,
        fields.u32()?,
        fields.u32()?,
        fields.u32()?,
        fields.u32()?,
    );
    let (generation, bucket, prev, next) = (
        fields.u16()?,
        fields.u16()?,
        decode_segment(fields.u32()?),
        decode_segment(fields.u32()?),
    );
    let code = fields.u8()?;
    let crc = fields.u32()?;
    let state = state_of(code & !MAIN_BIT).ok_or(RestartError::Torn("segment state"))?;
    let link_ok = |id: Option<u32>| id.is_none_or(|id| (id as usize) < count);
    if write_offset > size || usize::from(bucket) >= BUCKETS || !link_ok(prev) || !link_ok(next) {
        return Err(RestartError::Torn("segment record"));
    }
    let meta = SegmentMeta {
        write_offset,
        live_items,
        live_bytes,
        created_at,
        max_expire: ExpiryBound::from_raw(max_expire),
        generation,
        bucket,
        prev: prev.into(),
        next: next.into(),
        state,
        main: code & MAIN_BIT != 0,
    };
    Ok((meta, crc))
}
