//! How often each key was asked for lately: a count-min sketch of 4-bit
//! counters that the `s3fifo` policy consults when it decides which
//! items to keep.
//!
//! Zipf traffic rewards frequency over recency, and a key's history must
//! outlive the key's eviction: a hot key evicted in a burst of one-off keys
//! comes back with its count intact (the sketch is the "ghost" memory of
//! TinyLFU). Every lookup counts, hit or miss. Counters saturate at 15 and
//! are all halved after as many counts as forty times the keys the sketch
//! is planned for, so old popularity fades.
//!
//! Layout: blocks of 64 bytes (eight u64 words of sixteen counters), one
//! block per key, so a count or an estimate touches one cache line. The
//! key's four counters sit in four different word pairs. Updates are
//! conservative (only the smallest of the four counters rises), which
//! keeps hot keys from inflating their neighbours.

use super::memory::Memory;

/// The largest count a counter holds.
pub const MAX_COUNT: u8 = 15;

/// Words per block: one cache line.
const BLOCK_WORDS: usize = 8;

/// Most bytes a sketch takes, however large the shard.
const MAX_BYTES: usize = 4 << 20;

/// Counters planned per key the shard may hold: one byte a key. Four or
/// eight measured no better on the Zipf replay.
const COUNTERS_PER_KEY: usize = 2;

/// Counts before every counter is halved, per key planned for. Longer
/// than TinyLFU's usual 10: the keys at a Zipf cache's edge are asked for
/// less than once per ten, and a steady-state replay (2M keys, zipf 0.99,
/// 64 MiB) measured 0.9033 with 10 and 0.9069 with 40.
const SAMPLE_PER_KEY: u64 = 40;

/// A count-min sketch of recent accesses, one per shard (single writer).
pub struct FrequencySketch {
    /// Reserved, not committed: pages become resident as keys touch them.
    memory: Memory,
    /// Blocks - 1 (a power of two).
    block_mask: usize,
    /// Counts since the last halving.
    additions: u64,
    /// Counts that trigger a halving.
    sample: u64,
    /// Halvings so far (for `stats`).
    halvings: u64,
}

impl FrequencySketch {
    /// A sketch for a shard expected to hold about `keys` keys.
    pub fn for_keys(keys: usize) -> std::io::Result<FrequencySketch> {
        let counters = (keys.max(64) * COUNTERS_PER_KEY).next_power_of_two();
        let bytes = (counters / 2).clamp(64, MAX_BYTES);
        let blocks = bytes / 64;
        Ok(FrequencySketch {
            memory: Memory::new(blocks * 64)?,
            block_mask: blocks - 1,
            additions: 0,
            sample: keys.max(64) as u64 * SAMPLE_PER_KEY,
            halvings: 0,
        })
    }

    /// Bytes of counters.
    pub fn bytes(&self) -> usize {
        self.memory.len()
    }

    /// Halvings so far.
    pub fn halvings(&self) -> u64 {
        self.halvings
    }

    /// The block and the four (word, shift) counter positions of `hash`.
    #[inline]
    fn slots(&self, hash: u64) -> (usize, [(usize, u32); 4]) {
        // The block from a remix of the hash (its raw low bits also pick
        // the index bucket: independent structures, but keep them apart),
        // the counters from the raw low 20 bits.
        let block = (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.block_mask;
        let mut at = [(0, 0); 4];
        for (i, slot) in at.iter_mut().enumerate() {
            let bits = (hash >> (i * 5)) as usize;
            let word = block * BLOCK_WORDS + 2 * i + (bits & 1);
            let shift = ((bits >> 1) & 15) as u32 * 4;
            *slot = (word, shift);
        }
        (block, at)
    }

    #[inline]
    fn word(&self, i: usize) -> u64 {
        let b = &self.memory[i * 8..i * 8 + 8];
        u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    #[inline]
    fn set_word(&mut self, i: usize, w: u64) {
        self.memory[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }

    /// Starts loading the line `hash` counts in (a hint).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let (block, _) = self.slots(hash);
        super::index::prefetch(self.memory.as_ptr() as usize + block * 64);
    }

    /// How often `hash` was counted lately (an overestimate, never under).
    #[inline]
    pub fn estimate(&self, hash: u64) -> u8 {
        let (_, at) = self.slots(hash);
        at.iter()
            .map(|&(w, s)| ((self.word(w) >> s) & 15) as u8)
            .min()
            .unwrap_or(0)
    }

    /// Counts one access to `hash`.
    #[inline]
    pub fn increment(&mut self, hash: u64) {
        let (_, at) = self.slots(hash);
        let counts = at.map(|(w, s)| ((self.word(w) >> s) & 15) as u8);
        let min = counts.iter().copied().min().unwrap_or(0);
        if min < MAX_COUNT {
            for (&(w, s), &c) in at.iter().zip(&counts) {
                if c == min {
                    let word = self.word(w) + (1 << s);
                    self.set_word(w, word);
                }
            }
        }
        self.additions += 1;
        if self.additions >= self.sample {
            self.halve();
        }
    }

    /// Halves every counter (ageing). A pass over the whole sketch, at
    /// most [`MAX_BYTES`]: well under a millisecond.
    fn halve(&mut self) {
        for chunk in self.memory.chunks_exact_mut(8) {
            let w = u64::from_ne_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ]);
            chunk.copy_from_slice(&((w >> 1) & 0x7777_7777_7777_7777).to_ne_bytes());
        }
        self.additions /= 2;
        self.halvings += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::hash::hash_key;

    #[test]
    fn counts_saturate_and_estimates_never_undercount() {
        let mut s = FrequencySketch::for_keys(10_000).unwrap();
        let hashes: Vec<u64> = (0..10_000u64).map(|i| hash_key(&i.to_le_bytes())).collect();
        // Key i asked i % 20 times.
        for (i, &h) in hashes.iter().enumerate() {
            for _ in 0..i % 20 {
                s.increment(h);
            }
        }
        let mut exact = 0;
        for (i, &h) in hashes.iter().enumerate() {
            let truth = (i % 20).min(15) as u8;
            let est = s.estimate(h);
            assert!(est >= truth, "key {i}: {est} < {truth}");
            exact += usize::from(est == truth);
        }
        assert!(exact * 10 >= hashes.len() * 8, "{exact} exact of 10000");
    }

    #[test]
    fn ageing_halves_every_count() {
        let mut s = FrequencySketch::for_keys(64).unwrap();
        let hot = hash_key(b"hot");
        for _ in 0..12 {
            s.increment(hot);
        }
        assert_eq!(s.estimate(hot), 12);
        // Fill the sample with other keys: one halving.
        let mut i = 0u64;
        while s.halvings() == 0 {
            s.increment(hash_key(&i.to_le_bytes()));
            i += 1;
        }
        assert!(s.estimate(hot) <= 7 && s.estimate(hot) >= 6);
    }
}
