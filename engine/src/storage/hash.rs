//! One hash function per key, used twice: to pick the owning shard and to
//! find the key's slot in that shard's index. The runtime hashes a key
//! where it lowers the request to an op, and the hash travels with the op
//! (across cores too) to the index, the prefetch and the frequency sketch.
//! A batch is lowered once per pass (pass 1 only when it has something to
//! forward or prefetch), so a key is hashed once or twice per request,
//! never again on the owning core.
//!
//! ahash with fixed seeds, so every core (and every process of the same
//! build) agrees on which shard owns a key.

/// Fixed seeds: changing them moves every key to another shard.
const SEEDS: [u64; 4] = [
    0x5e9c_0c0f_a11e_d5e6,
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
];

/// A key together with its hash, so the hash is computed once and handed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashedKey<'a> {
    /// The key's bytes.
    pub key: &'a [u8],
    /// `hash_key(key)`.
    pub hash: u64,
}

impl<'a> HashedKey<'a> {
    /// Hashes `key`.
    #[inline]
    pub fn new(key: &'a [u8]) -> Self {
        HashedKey {
            key,
            hash: hash_key(key),
        }
    }

    /// The shard (out of `shards`) that owns this key.
    #[inline]
    pub fn shard(&self, shards: usize) -> usize {
        shard_of(self.hash, shards)
    }
}

fn hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3])
}

/// The key's 64-bit hash.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    hasher().hash_one(key)
}

/// Which of `shards` owns a hash. The index uses the hash's low bits for the
/// bucket and its top 7 for the control byte, so the shard is taken from a
/// remix of the whole hash: taking plain low bits would leave each shard's
/// table using only a fraction of its buckets.
#[inline]
pub fn shard_of(hash: u64, shards: usize) -> usize {
    let mixed = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    ((mixed * shards as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_shards_are_balanced() {
        assert_eq!(hash_key(b"foo"), hash_key(b"foo"));
        assert_ne!(hash_key(b"foo"), hash_key(b"bar"));
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            counts[HashedKey::new(format!("key:{i}").as_bytes()).shard(4)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        // Within one shard of two, low hash bits still vary (index buckets).
        let low_bits: std::collections::HashSet<u64> = (0..1000)
            .map(|i| hash_key(format!("k{i}").as_bytes()))
            .filter(|&h| shard_of(h, 2) == 0)
            .map(|h| h & 0xf)
            .collect();
        assert_eq!(low_bits.len(), 16);
    }
}
