//! What the load asks for: which keys (distribution), which operations
//! (get:set mix, multi-get size) and which value sizes. Deterministic for a
//! seed, allocation-free per request.

/// A small, fast, seedable generator (xorshift64*): each load thread has
/// its own, so threads never share state.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// How keys are chosen from the key space `0..keys`.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyPattern {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `alpha`: rank r has weight 1/r^alpha.
    Zipf(f64),
    /// Normal around the middle of the key space, with this standard
    /// deviation as a fraction of the key space.
    Gaussian(f64),
    /// 0, 1, 2, ... wrapping (prefill, scans).
    Sequential,
}

impl std::str::FromStr for KeyPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let number = |default: f64| -> Result<f64, String> {
            if arg.is_empty() {
                Ok(default)
            } else {
                arg.parse().map_err(|_| format!("bad number in {s:?}"))
            }
        };
        match name {
            "uniform" => Ok(KeyPattern::Uniform),
            "zipf" => Ok(KeyPattern::Zipf(number(0.99)?)),
            "gaussian" => Ok(KeyPattern::Gaussian(number(0.1)?)),
            "sequential" => Ok(KeyPattern::Sequential),
            _ => Err(format!(
                "unknown key pattern {s:?} (uniform, zipf[:alpha], gaussian[:stddev], sequential)"
            )),
        }
    }
}

/// Draws key indexes. Zipf uses a table of cumulative weights (built once,
/// shared read-only) and a binary search per draw.
#[derive(Clone, Debug)]
pub struct KeyChooser {
    keys: u64,
    pattern: KeyPattern,
    cdf: std::sync::Arc<Vec<f64>>,
    next: u64,
}

impl KeyChooser {
    /// A chooser over `0..keys`.
    pub fn new(keys: u64, pattern: KeyPattern) -> Self {
        let keys = keys.max(1);
        let cdf = match pattern {
            KeyPattern::Zipf(alpha) => {
                let mut cdf = Vec::with_capacity(keys as usize);
                let mut sum = 0.0;
                for rank in 1..=keys {
                    sum += 1.0 / (rank as f64).powf(alpha);
                    cdf.push(sum);
                }
                cdf.iter_mut().for_each(|c| *c /= sum);
                cdf
            }
            _ => Vec::new(),
        };
        KeyChooser {
            keys,
            pattern,
            cdf: std::sync::Arc::new(cdf),
            next: 0,
        }
    }

    /// The popularity rank (0 = most asked for) of the next Zipf draw: the
    /// draw [`KeyChooser::next`] makes, before it scatters ranks over the
    /// key space. Only for a Zipf pattern.
    pub fn zipf_rank(&self, rng: &mut Rng) -> u64 {
        let u = rng.next_f64();
        (self.cdf.partition_point(|&c| c < u) as u64).min(self.keys - 1)
    }

    /// The share of draws that fall on the `count` most popular ranks.
    /// Only for a Zipf pattern.
    pub fn top_share(&self, count: usize) -> f64 {
        match count.min(self.cdf.len()) {
            0 => 0.0,
            n => self.cdf[n - 1],
        }
    }

    /// The next key index.
    pub fn next(&mut self, rng: &mut Rng) -> u64 {
        match self.pattern {
            KeyPattern::Uniform => rng.below(self.keys),
            KeyPattern::Zipf(_) => {
                // Scatter ranks over the key space: hot keys land on every core.
                (self.zipf_rank(rng).wrapping_mul(2_654_435_761)) % self.keys
            }
            KeyPattern::Gaussian(sd) => {
                // Box-Muller.
                let (u1, u2) = (rng.next_f64().max(f64::MIN_POSITIVE), rng.next_f64());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let x = self.keys as f64 / 2.0 + z * sd * self.keys as f64;
                (x.round().max(0.0) as u64).min(self.keys - 1)
            }
            KeyPattern::Sequential => {
                let k = self.next % self.keys;
                self.next += 1;
                k
            }
        }
    }
}

/// Writes key `index` as `prefix` + zero-padded decimal into `out`.
pub fn key_name(prefix: &str, index: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(prefix.as_bytes());
    let mut digits = [b'0'; 12];
    let mut n = index;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Value sizes: fixed, or uniform in a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueSize {
    /// Smallest.
    pub min: usize,
    /// Largest.
    pub max: usize,
}

impl std::str::FromStr for ValueSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad value size {s:?} (e.g. 64 or 32-1024)");
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n = s.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if min > max {
            return Err(bad());
        }
        Ok(ValueSize { min, max })
    }
}

impl ValueSize {
    /// A size for the next value.
    pub fn next(&self, rng: &mut Rng) -> usize {
        if self.min == self.max {
            self.min
        } else {
            self.min + rng.below((self.max - self.min + 1) as u64) as usize
        }
    }
}

/// Operation mix: `gets` out of every `gets + sets`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    /// Gets per round.
    pub gets: u32,
    /// Sets per round.
    pub sets: u32,
}

impl std::str::FromStr for Ratio {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad ratio {s:?} (GETS:SETS, e.g. 9:1)");
        let (g, st) = s.split_once(':').ok_or_else(bad)?;
        let ratio = Ratio {
            gets: g.parse().map_err(|_| bad())?,
            sets: st.parse().map_err(|_| bad())?,
        };
        if ratio.gets + ratio.sets == 0 {
            return Err(bad());
        }
        Ok(ratio)
    }
}

impl Ratio {
    /// True when the next operation is a get.
    pub fn next_is_get(&self, rng: &mut Rng) -> bool {
        rng.below(u64::from(self.gets + self.sets)) < u64::from(self.gets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_covers_the_key_space_evenly() {
        let mut rng = Rng::new(1);
        let mut chooser = KeyChooser::new(10, KeyPattern::Uniform);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[chooser.next(&mut rng) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn zipf_is_skewed_as_its_exponent_says() {
        let mut rng = Rng::new(2);
        let keys = 1000;
        let mut chooser = KeyChooser::new(keys, KeyPattern::Zipf(0.99));
        let mut counts = vec![0u32; keys as usize];
        let draws = 200_000;
        for _ in 0..draws {
            counts[chooser.next(&mut rng) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // Expected share of the top rank: 1 / H(1000, 0.99) ~ 0.131.
        let top = f64::from(counts[0]) / f64::from(draws);
        assert!((0.12..0.145).contains(&top), "top share {top}");
        // Rank 10 gets about a tenth of rank 1.
        let ratio = f64::from(counts[9]) / f64::from(counts[0]);
        assert!((0.07..0.14).contains(&ratio), "rank-10 ratio {ratio}");
        // The top 10% of keys take most requests.
        let head: u32 = counts[..100].iter().sum();
        assert!(f64::from(head) / f64::from(draws) > 0.65);
    }

    #[test]
    fn gaussian_centres_on_the_middle() {
        let mut rng = Rng::new(3);
        let mut chooser = KeyChooser::new(10_000, KeyPattern::Gaussian(0.1));
        let draws: Vec<u64> = (0..50_000).map(|_| chooser.next(&mut rng)).collect();
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        let within = draws.iter().filter(|&&k| (4000..6000).contains(&k)).count();
        assert!((4900.0..5100.0).contains(&mean), "mean {mean}");
        // One standard deviation (1000 keys) each side: ~68%.
        let share = within as f64 / draws.len() as f64;
        assert!((0.64..0.72).contains(&share), "{share}");
    }

    #[test]
    fn sequential_wraps() {
        let mut rng = Rng::new(4);
        let mut chooser = KeyChooser::new(3, KeyPattern::Sequential);
        let got: Vec<u64> = (0..7).map(|_| chooser.next(&mut rng)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn ratio_and_value_sizes() {
        let mut rng = Rng::new(5);
        let ratio: Ratio = "9:1".parse().unwrap();
        let gets = (0..100_000).filter(|_| ratio.next_is_get(&mut rng)).count();
        assert!((89_000..91_000).contains(&gets), "{gets}");
        let sizes: ValueSize = "32-64".parse().unwrap();
        let drawn: Vec<usize> = (0..10_000).map(|_| sizes.next(&mut rng)).collect();
        assert!(drawn.iter().all(|s| (32..=64).contains(s)));
        assert!(drawn.contains(&32) && drawn.contains(&64));
        assert_eq!("64".parse::<ValueSize>().unwrap().next(&mut rng), 64);
        assert!("64-32".parse::<ValueSize>().is_err());
        assert!("0:0".parse::<Ratio>().is_err());
        assert_eq!("zipf:0.8".parse::<KeyPattern>(), Ok(KeyPattern::Zipf(0.8)));
        assert!("pareto".parse::<KeyPattern>().is_err());
    }

    #[test]
    fn key_names_are_fixed_width() {
        let mut out = Vec::new();
        key_name("key:", 42, &mut out);
        assert_eq!(out, b"key:000000000042");
    }
}
