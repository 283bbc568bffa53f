//! Random: a uniformly random segment in use, with no ordering state at
//! all.

use super::{evictable, pick_fifo, Picker, Policy, Victim};
use crate::storage::segment::Segments;
use crate::storage::ttl::TtlBuckets;

/// The random picker: its generator's state.
pub struct Random {
    rng: u64,
}

/// The generator's starting state (any nonzero value).
const SEED: u64 = 0x853c_49e6_748f_ea9b;

impl Default for Random {
    fn default() -> Self {
        Random { rng: SEED }
    }
}

impl Picker for Random {
    fn policy(&self) -> Policy {
        Policy::Random
    }

    fn pick(&mut self, segs: &Segments, buckets: &TtlBuckets, pin: Option<u32>) -> Option<Victim> {
        pick_random(segs, buckets, pin, &mut self.rng).map(Victim::Segment)
    }

    fn saved(&self) -> (u64, Option<u32>) {
        (self.rng, None)
    }

    fn restore(&mut self, rng: u64, _reserved: Option<u32>) {
        // xorshift never leaves zero: keep the seed rather than stall.
        if rng != 0 {
            self.rng = rng;
        }
    }
}

/// A uniformly random segment in use; FIFO if random draws keep missing.
pub fn pick_random(
    segs: &Segments,
    buckets: &TtlBuckets,
    pin: Option<u32>,
    rng: &mut u64,
) -> Option<u32> {
    for _ in 0..64 {
        let id = (next_random(rng) % segs.count() as u64) as u32;
        if evictable(segs, id, pin) {
            return Some(id);
        }
    }
    pick_fifo(segs, buckets, pin)
}

/// xorshift64*: eviction needs a cheap, seedable, allocation-free source.
pub fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}
