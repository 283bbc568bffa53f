//! Warm restart (`-e`): a shard whose segments live in a file keeps its
//! items across a graceful stop.
//!
//! Segments are self-describing runs of items, so the only state a restart
//! needs besides the file is the per-segment side table (write offsets,
//! TTL-bucket links, generations: cas values stay unique because each
//! segment's generation carries over) and a few shard fields. [`Shard::save`]
//! writes that to `<file>.meta` at a graceful stop; [`Shard::restore`] reads
//! it at start, rebuilds the TTL buckets from the segment links and the
//! index by scanning every segment in use, drops what expired while the
//! server was down, and removes the metadata so that a later crash can never
//! restore stale state. Anything that does not match exactly (format
//! version, the run and core that wrote it, memory, segment size, policy,
//! the server settings in the layout tag, a checksum, an item that does not
//! parse) is refused with a reason, and the shard starts empty.
//!
//! Every save names the run that wrote it (one id shared by all cores of
//! one server, see [`super::super::memory_files`]) and which core of how
//! many it was: the server restores every core from one run's saves or
//! none. Each segment in use carries a CRC-32 of its bytes, taken at save
//! and checked before anything in it is indexed: a segment that changed
//! while the server was down (a flipped bit, a file copied over) is
//! dropped, never served.
//!
//! ```text
//!  "SEGCMETA" | format u32 | run u64 | cores u32 | core u32 | memory u64 |
//!  segment size u64 | policy u8 | layout tag u64 | now u32 |
//!  flush at u32 (0: none) | rng u64 | spare u32 | segments u32 |
//!  per segment: write offset, live items, live bytes, created at,
//!  max expire (u32 each), generation u16, bucket u16, prev u32, next u32,
//!  state u8, CRC-32 of its written bytes u32 (0 when not in use) |
//!  FNV-1a 64 of everything before
//! ```
//!
//! All little-endian.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::super::hash::HashedKey;
use super::super::item::{DEAD, HEADER_LEN};
use super::super::segment::{SegmentMeta, SegmentState};
use super::super::ttl::TtlBucket;
use super::{Shard, ShardConfig};
use record::{decode_segment, encode_segment, read_segment_record, state_code, Fields, MAIN_BIT};

/// The metadata format; a file of another format is not restored.
pub const RESTART_FORMAT: u32 = 2;

const MAGIC: &[u8; 8] = b"SEGCMETA";
const SEGMENT_RECORD: usize = 37;

/// What a warm restart took back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restored {
    /// Live items indexed again.
    pub items: u64,
    /// Segments in use whose bytes changed after the save (dropped, with
    /// every item in them).
    pub dropped_segments: usize,
}

/// Who wrote a save, and the layout they wrote it with: the run, which of
/// its cores, and the settings that decide what a shard holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedBy {
    /// The run's id (shared by every core of one server).
    pub run: u64,
    /// How many cores that run had.
    pub cores: u32,
    /// Which of them wrote this save.
    pub core: u32,
    memory: u64,
    segment_size: u64,
    policy: u8,
    layout_tag: u64,
}

impl SavedBy {
    /// Who `config`'s shard is: what its save records and a restore must
    /// find again.
    fn of_config(config: &ShardConfig) -> SavedBy {
        let file = config.restart.as_ref();
        SavedBy {
            run: file.map_or(0, |f| f.run),
            cores: file.map_or(1, |f| f.cores),
            core: file.map_or(0, |f| f.core),
            memory: config.memory_bytes as u64,
            segment_size: config.segment_size as u64,
            policy: config.eviction as u8,
            layout_tag: file.map_or(0, |f| f.layout_tag),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.run.to_le_bytes());
        out.extend_from_slice(&self.cores.to_le_bytes());
        out.extend_from_slice(&self.core.to_le_bytes());
        out.extend_from_slice(&self.memory.to_le_bytes());
        out.extend_from_slice(&self.segment_size.to_le_bytes());
        out.push(self.policy);
        out.extend_from_slice(&self.layout_tag.to_le_bytes());
    }

    fn read(fields: &mut Fields<'_>) -> Result<SavedBy, RestartError> {
        Ok(SavedBy {
            run: fields.u64()?,
            cores: fields.u32()?,
            core: fields.u32()?,
            memory: fields.u64()?,
            segment_size: fields.u64()?,
            policy: fields.u8()?,
            layout_tag: fields.u64()?,
        })
    }

    /// Whether `config`'s shard may take this save back: the run it was
    /// told to restore, the same core of as many, the same layout.
    pub fn check(&self, config: &ShardConfig) -> Result<(), RestartError> {
        let me = SavedBy::of_config(config);
        let wanted = config.restart.as_ref().and_then(|f| f.restore_run);
        if wanted.is_some_and(|run| run != self.run) {
            return Err(RestartError::Mismatch(
                "run (the cores' saves are of different stops)",
            ));
        }
        if self.cores != me.cores {
            return Err(RestartError::Mismatch("core count"));
        }
        if self.core != me.core {
            return Err(RestartError::Mismatch(
                "core (the file holds another core's save)",
            ));
        }
        if self.memory != me.memory {
            return Err(RestartError::Mismatch("memory limit (-m) or core count"));
        }
        if self.segment_size != me.segment_size {
            return Err(RestartError::Mismatch("segment size"));
        }
        if self.policy != me.policy {
            return Err(RestartError::Mismatch("eviction policy"));
        }
        if self.layout_tag != me.layout_tag {
            return Err(RestartError::Mismatch(
                "core count, core placement or item size limit (-I)",
            ));
        }
        Ok(())
    }

    /// Reads who wrote the metadata at `meta` (checking that it is whole),
    /// without taking anything back.
    pub fn of(meta: &Path) -> Result<SavedBy, RestartError> {
        let bytes = match std::fs::read(meta) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RestartError::NoMetadata)
            }
            Err(e) => return Err(RestartError::Unreadable(e.to_string())),
        };
        let body = checked_body(&bytes)?;
        SavedBy::read(&mut Fields(&body[MAGIC.len() + 4..]))
    }
}

/// The body of a metadata file (without its checksum) once magic, format
/// and checksum are right.
fn checked_body(bytes: &[u8]) -> Result<&[u8], RestartError> {
    let (body, sum) = bytes
        .split_last_chunk::<8>()
        .ok_or(RestartError::Torn("truncated"))?;
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(RestartError::Torn("not a segcore restart file"));
    }
    let version = u32::from_le_bytes([
        body[MAGIC.len()],
        body[MAGIC.len() + 1],
        body[MAGIC.len() + 2],
        body[MAGIC.len() + 3],
    ]);
    if version != RESTART_FORMAT {
        return Err(RestartError::Version(version));
    }
    if fnv1a(body) != u64::from_le_bytes(*sum) {
        return Err(RestartError::Torn("checksum"));
    }
    Ok(body)
}

/// Why a shard started empty instead of taking its items back.
#[derive(Debug, PartialEq, Eq)]
pub enum RestartError {
    /// No metadata: the last stop was not a graceful `SIGUSR1` stop (or
    /// there was none).
    NoMetadata,
    /// The metadata could not be read.
    Unreadable(String),
    /// Written by another format version.
    Version(u32),
    /// Written with other settings.
    Mismatch(&'static str),
    /// Truncated, corrupt, or inconsistent with the memory file.
    Torn(&'static str),
}

impl std::fmt::Display for RestartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartError::NoMetadata => {
                write!(f, "no restart metadata (the last stop was not SIGUSR1)")
            }
            RestartError::Unreadable(e) => write!(f, "restart metadata unreadable: {e}"),
            RestartError::Version(v) => write!(
                f,
                "restart metadata of format {v}, this build reads {RESTART_FORMAT}"
            ),
            RestartError::Mismatch(what) => write!(f, "started with another {what}"),
            RestartError::Torn(what) => write!(f, "restart metadata is damaged ({what})"),
        }
    }
}

/// `<path>.meta`.
pub fn meta_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".meta");
    PathBuf::from(name)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Shard {
    /// Writes the metadata a warm restart needs beside the memory file
    /// (atomically: a torn write leaves no metadata, not a bad one). Call it
    /// once requests have stopped. Does nothing without a memory file.
    pub fn save(&self, config: &ShardConfig) -> std::io::Result<()> {
        let Some(file) = &config.restart else {
            return Ok(());
        };
        let metas = self.segments.metas();
        let mut out = Vec::with_capacity(64 + metas.len() * SEGMENT_RECORD);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&RESTART_FORMAT.to_le_bytes());
        debug_assert_eq!(self.evictor.policy(), config.eviction);
        SavedBy::of_config(config).write(&mut out);
        out.extend_from_slice(&self.now.to_le_bytes());
        out.extend_from_slice(&self.pending_flush.unwrap_or(0).to_le_bytes());
        let (rng, spare) = self.evictor.saved();
        out.extend_from_slice(&rng.to_le_bytes());
        out.extend_from_slice(&encode_segment(spare).to_le_bytes());
        out.extend_from_slice(&(metas.len() as u32).to_le_bytes());
        for (id, m) in metas.iter().enumerate() {
            for field in [
                m.write_offset,
                m.live_items,
                m.live_bytes,
                m.created_at,
                m.max_expire.raw(),
            ] {
                out.extend_from_slice(&field.to_le_bytes());
            }
            out.extend_from_slice(&m.generation.to_le_bytes());
            out.extend_from_slice(&m.bucket.to_le_bytes());
            out.extend_from_slice(&encode_segment(m.prev.get()).to_le_bytes());
            out.extend_from_slice(&encode_segment(m.next.get()).to_le_bytes());
            out.push(state_code(m.state) | if m.main { MAIN_BIT } else { 0 });
            out.extend_from_slice(&self.segment_crc(id as u32).to_le_bytes());
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        let final_path = meta_path(&file.path);
        let mut temp = final_path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&temp, &final_path)
    }

    /// Takes back the items a graceful stop saved: reads and checks the
    /// metadata, rebuilds buckets and index, drops items that expired in
    /// the meantime, removes the metadata. Returns the items restored; on
    /// any error the shard is left empty (as built) and the error says why.
    /// Call it right after [`Shard::new`] and [`Shard::set_time`].
    pub fn restore(&mut self, config: &ShardConfig) -> Result<Restored, RestartError> {
        let Some(file) = &config.restart else {
            return Err(RestartError::NoMetadata);
        };
        let path = meta_path(&file.path);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RestartError::NoMetadata)
            }
            Err(e) => return Err(RestartError::Unreadable(e.to_string())),
        };
        // Whatever happens next, this metadata is used at most once.
        let _ = std::fs::remove_file(&path);
        let result = self.restore_from(&bytes, config);
        if result.is_err() {
            // Back to the state `Shard::new` left.
            self.index.clear();
            self.buckets.clear();
            self.stats.curr_items = 0;
            self.stats.bytes = 0;
            self.classes.clear_live();
            self.segments.reset();
            self.evictor = super::eviction::picker(self.evictor.policy());
            self.evictor.reserve(&mut self.segments);
        }
        result
    }

    /// The CRC-32 of the bytes written to segment `id` (0 for a segment
    /// not in use, whose bytes mean nothing).
    fn segment_crc(&self, id: u32) -> u32 {
        let meta = self.segments.meta(id);
        if !matches!(meta.state, SegmentState::Open | SegmentState::Sealed) {
            return 0;
        }
        let start = self.segments.absolute(id, 0);
        crc32fast::hash(&self.segments.memory()[start..start + meta.write_offset as usize])
    }

    fn restore_from(
        &mut self,
        bytes: &[u8],
        config: &ShardConfig,
    ) -> Result<Restored, RestartError> {
        let body = checked_body(bytes)?;
        let mut fields = Fields(&body[MAGIC.len() + 4..]);
        let saved = SavedBy::read(&mut fields)?;
        saved.check(config)?;
        let saved_now = fields.u32()?;
        let flush_at = fields.u32()?;
        let rng = fields.u64()?;
        let spare = decode_segment(fields.u32()?);
        let count = fields.u32()? as usize;
        if count != self.segments.count() {
            return Err(RestartError::Torn("segment count"));
        }
        let size = self.segments.segment_size() as u32;
        let mut metas = Vec::with_capacity(count);
        let mut crcs = Vec::with_capacity(count);
        for _ in 0..count {
            let (meta, crc) = read_segment_record(&mut fields, count, size)?;
            metas.push(meta);
            crcs.push(crc);
        }
        if !fields.0.is_empty() {
            return Err(RestartError::Torn("trailing bytes"));
        }
        if spare
            .is_some_and(|s| metas.get(s as usize).map(|m| m.state) != Some(SegmentState::Spare))
        {
            return Err(RestartError::Torn("spare segment"));
        }
        // The shard was built with its own spare; the saved one replaces it.
        self.segments.restore_metas(&metas);
        let dropped_segments = self.drop_changed_segments(&mut metas, &crcs);
        self.evictor.restore(rng, spare);
        self.pending_flush = (flush_at != 0).then_some(flush_at);
        // Kept in the file for diagnosis; expiry is judged by the clock now.
        let _ = saved_now;
        self.rebuild_buckets()?;
        let restored = self.rebuild_index()?;
        // A delayed flush_all whose time came while the server was down.
        self.set_time(self.now);
        Ok(Restored {
            items: if self.stats.curr_items == 0 {
                0
            } else {
                restored
            },
            dropped_segments,
        })
    }

    /// Frees every segment in use whose bytes no longer match the CRC taken
    /// at save, unlinking it from its bucket's chain: none of its items is
    /// indexed, so nothing in it is ever served. Returns how many.
    fn drop_changed_segments(&mut self, metas: &mut [SegmentMeta], crcs: &[u32]) -> usize {
        let changed: Vec<u32> = (0..metas.len() as u32)
            .filter(|&id| {
                matches!(
                    metas[id as usize].state,
                    SegmentState::Open | SegmentState::Sealed
                ) && self.segment_crc(id) != crcs[id as usize]
            })
            .collect();
        for &id in &changed {
            let (prev, next) = (metas[id as usize].prev, metas[id as usize].next);
            if let Some(p) = prev.get() {
                metas[p as usize].next = next;
            }
            if let Some(n) = next.get() {
                metas[n as usize].prev = prev;
            }
            let m = &mut metas[id as usize];
            *m = SegmentMeta {
                generation: m.generation,
                ..SegmentMeta::FREE
            };
        }
        if !changed.is_empty() {
            self.segments.restore_metas(metas);
        }
        changed.len()
    }

    /// Bucket chain ends from the restored segment links.
    fn rebuild_buckets(&mut self) -> Result<(), RestartError> {
        for id in 0..self.segments.count() as u32 {
            let meta = *self.segments.meta(id);
            let in_use = matches!(meta.state, SegmentState::Open | SegmentState::Sealed);
            if !in_use || meta.prev.get().is_some() {
                continue;
            }
            let mut tail = id;
            let mut steps = 0;
            while let Some(next) = self.segments.meta(tail).next.get() {
                tail = next;
                steps += 1;
                if steps > self.segments.count() {
                    return Err(RestartError::Torn("bucket chain loops"));
                }
            }
            self.buckets.set(
                usize::from(meta.bucket),
                TtlBucket {
                    head: Some(id),
                    tail: Some(tail),
                },
            );
        }
        Ok(())
    }

    /// Indexes every live item of every segment in use; items that expired
    /// while the server was down are marked dead instead.
    fn rebuild_index(&mut self) -> Result<u64, RestartError> {
        let now = self.now;
        let mut restored = 0u64;
        let (mut items, mut bytes) = (0u64, 0u64);
        for id in 0..self.segments.count() as u32 {
            let state = self.segments.meta(id).state;
            if !matches!(state, SegmentState::Open | SegmentState::Sealed) {
                continue;
            }
            let end = self.segments.meta(id).write_offset as usize;
            let (mut live_items, mut live_bytes) = (0u32, 0u32);
            let mut offset = 0usize;
            while offset < end {
                let loc = self.segments.location(id, offset as u32);
                let mut header = self.segments.header(loc);
                let total = header.total_len();
                if header.key_len == 0 || total < HEADER_LEN || offset + total > end {
                    return Err(RestartError::Torn("an item does not parse"));
                }
                let next = offset + self.segments.aligned(total);
                if header.bits & DEAD == 0 {
                    if header.expire_at != 0 && header.expire_at <= now {
                        header.bits |= DEAD;
                        self.segments.set_header(loc, &header);
                    } else {
                        let item = self.segments.item(loc);
                        let key = HashedKey::new(item.key());
                        if self.index.upsert(key, loc, &self.segments).is_some() {
                            // A clean stop leaves one live copy per key.
                            return Err(RestartError::Torn("a key is live twice"));
                        }
                        live_items += 1;
                        live_bytes += total as u32;
                        self.classes.added(header.memcached_size(), total);
                        restored += 1;
                    }
                }
                offset = next;
            }
            let meta = self.segments.meta_mut(id);
            meta.live_items = live_items;
            meta.live_bytes = live_bytes;
            items += u64::from(live_items);
            bytes += u64::from(live_bytes);
        }
        self.stats.curr_items = items;
        self.stats.bytes = bytes;
        Ok(restored)
    }
}
mod record;
#[cfg(test)]
mod tests;
