//! Each core's hottest keys, by requests to the keys it owns: the
//! space-saving algorithm over a fixed table of [`TRACKED`] keys, fed a
//! random sample of one request in [`SAMPLE_ONE_IN`].
//!
//! Bounded and allocation-free: the table is [`TRACKED`] entries with the
//! key stored inline (250 bytes, memcached's longest key), about 8.5 KiB
//! per core, allocated once. Sampling keeps the cost per request to a
//! random-number step; a sampled request costs a scan of [`TRACKED`]
//! hashes. Space-saving guarantees that any key with more than
//! 1/[`TRACKED`] of the sampled requests is in the table, and its count
//! overestimates by at most the smallest count in it; counts are
//! reported scaled back up by the sampling rate, so they are approximate.

use segcore_protocol::key::Printable;
use segcore_protocol::MAX_KEY_LEN;

/// Keys tracked per core.
pub const TRACKED: usize = 32;
/// One request in this many is counted (a power of two).
pub const SAMPLE_ONE_IN: u64 = 16;

#[derive(Clone, Copy)]
struct Entry {
    hash: u64,
    count: u64,
    len: u8,
    key: [u8; MAX_KEY_LEN],
}

/// A key and its estimated request count.
pub type KeyCount = (Box<[u8]>, u64);

/// One core's table.
pub struct HotKeys {
    entries: Vec<Entry>,
}

impl Default for HotKeys {
    fn default() -> Self {
        HotKeys {
            entries: Vec::with_capacity(TRACKED),
        }
    }
}

/// A nonzero start for a sampler's state.
pub const SAMPLER_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Steps a sampler (xorshift64, a few instructions) and says whether this
/// request is one of the one in [`SAMPLE_ONE_IN`] to count.
#[inline]
pub fn sampled(state: &std::cell::Cell<u64>) -> bool {
    let mut x = state.get();
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.set(x);
    x & (SAMPLE_ONE_IN - 1) == 0
}

/// FNV-1a: keys are short, and this is only reached for sampled requests.
fn hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl HotKeys {
    /// The space-saving step: a tracked key's count goes up; an untracked
    /// key takes a free entry, or the entry with the smallest count and
    /// that count plus one.
    pub fn count(&mut self, key: &[u8]) {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return;
        }
        let h = hash(key);
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.hash == h && &e.key[..usize::from(e.len)] == key)
        {
            e.count += 1;
            return;
        }
        let mut entry = Entry {
            hash: h,
            count: 1,
            len: key.len() as u8,
            key: [0; MAX_KEY_LEN],
        };
        entry.key[..key.len()].copy_from_slice(key);
        if self.entries.len() < TRACKED {
            self.entries.push(entry);
        } else if let Some(min) = self.entries.iter_mut().min_by_key(|e| e.count) {
            entry.count = min.count + 1;
            *min = entry;
        }
    }

    /// The tracked keys with their estimated request counts (sampled
    /// counts scaled up), most requested first.
    pub fn top(&self) -> Vec<KeyCount> {
        let mut top: Vec<KeyCount> = self
            .entries
            .iter()
            .map(|e| {
                (
                    Box::from(&e.key[..usize::from(e.len)]),
                    e.count * SAMPLE_ONE_IN,
                )
            })
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top
    }

    /// Forgets every key (`stats reset`).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The `n` most requested keys over every core's table, as (owner core,
/// key, estimated count), most requested first.
pub fn ranking<'a>(per_core: &[(usize, &'a [KeyCount])], n: usize) -> Vec<(usize, &'a [u8], u64)> {
    let mut all: Vec<(usize, &[u8], u64)> = per_core
        .iter()
        .flat_map(|&(core, keys)| keys.iter().map(move |(k, c)| (core, &k[..], *c)))
        .collect();
    all.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(b.1)));
    all.truncate(n);
    all
}

/// `stats hotkeys [N]` lines from every core's top keys: the `n` most
/// requested over all cores, as `hotkey:<rank>` = `<key> <count> <core>`.
pub fn stat_lines(per_core: &[(usize, &[KeyCount])], n: usize) -> Vec<(String, String)> {
    ranking(per_core, n)
        .iter()
        .enumerate()
        .map(|(rank, (core, key, count))| {
            (
                format!("hotkey:{}", rank + 1),
                format!("{} {count} {core}", Printable(key)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frequent_key_tops_the_table_among_many_rare_ones() {
        let mut hot = HotKeys::default();
        let sampler = std::cell::Cell::new(SAMPLER_SEED);
        for i in 0..20_000u32 {
            let key = if i % 4 == 0 {
                "the-hot-one".to_string()
            } else {
                format!("cold-{i}")
            };
            if sampled(&sampler) {
                hot.count(key.as_bytes());
            }
        }
        let top = hot.top();
        assert!(top.len() <= TRACKED);
        assert_eq!(&*top[0].0, b"the-hot-one");
        // 5,000 requests, sampled one in 16: within a generous margin.
        assert!((3_000..=7_000).contains(&top[0].1), "{}", top[0].1);
    }

    #[test]
    fn space_saving_replaces_the_least_counted_entry() {
        let mut hot = HotKeys::default();
        for i in 0..TRACKED {
            for _ in 0..=i {
                hot.count(format!("k{i}").as_bytes());
            }
        }
        hot.count(b"newcomer");
        let top = hot.top();
        assert_eq!(top.len(), TRACKED);
        // k0 (count 1) made room; the newcomer inherits 1 + 1.
        assert!(top.iter().all(|(k, _)| &**k != b"k0"));
        let newcomer = top.iter().find(|(k, _)| &**k == b"newcomer").unwrap();
        assert_eq!(newcomer.1, 2 * SAMPLE_ONE_IN);
        hot.clear();
        assert!(hot.top().is_empty());
    }

    #[test]
    fn cores_merge_into_one_ranking() {
        let a: Vec<(Box<[u8]>, u64)> = vec![(Box::from(&b"x"[..]), 50), (Box::from(&b"y"[..]), 5)];
        let b: Vec<(Box<[u8]>, u64)> = vec![(Box::from(&b"z"[..]), 70)];
        let lines = stat_lines(&[(0, &a), (1, &b)], 2);
        assert_eq!(
            lines,
            [
                ("hotkey:1".to_string(), "z 70 1".to_string()),
                ("hotkey:2".to_string(), "x 50 0".to_string())
            ]
        );
    }
}
