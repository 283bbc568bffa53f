//! Self-checking values for `--verify`: each value says which run wrote it,
//! for which key, at which version, and the rest of its bytes are a
//! deterministic function of those, so any hit can be checked byte for byte
//! without remembering what was written. A hit for key K must carry K, this
//! run's id, and exactly the bytes that (run, version, K, length) produce.
//!
//! ```text
//! <run:16 hex>:<version:16 hex>:<length:8 hex>:<key>:<filler ...>
//! ```
//!
//! The length is in the value so a truncated value (a prefix of a valid
//! one) is caught too.

/// The bytes every value starts with, before the filler.
fn header_len(key: &[u8]) -> usize {
    min_value_len(key.len())
}

/// The smallest value that can carry the header for a key this long.
pub fn min_value_len(key_len: usize) -> usize {
    16 + 1 + 16 + 1 + 8 + 1 + key_len + 1
}

fn hex(out: &mut Vec<u8>, n: u64, digits: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..digits).rev() {
        out.push(DIGITS[((n >> (shift * 4)) & 0xf) as usize]);
    }
}

fn filler_seed(run: u64, version: u64, key: &[u8]) -> u64 {
    let mut h = run ^ version.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
    for &b in key {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

/// Writes the value for (`run`, `version`, `key`) of length `len` (at
/// least [`min_value_len`]) into `out`.
pub fn write_value(out: &mut Vec<u8>, run: u64, version: u64, key: &[u8], len: usize) {
    out.clear();
    let len = len.max(header_len(key));
    hex(out, run, 16);
    out.push(b':');
    hex(out, version, 16);
    out.push(b':');
    hex(out, len as u64, 8);
    out.push(b':');
    out.extend_from_slice(key);
    out.push(b':');
    let mut state = filler_seed(run, version, key);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(b'a' + (state % 26) as u8);
    }
    out.truncate(len);
}

fn parse_hex(bytes: &[u8]) -> Option<u64> {
    bytes.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | u64::from(d))
    })
}

/// Whether `value`, returned for `key`, is exactly a value this run wrote
/// for that key. `scratch` is reused to avoid allocating per check.
pub fn check(value: &[u8], run: u64, key: &[u8], scratch: &mut Vec<u8>) -> bool {
    if value.len() < header_len(key) || value[16] != b':' || value[33] != b':' || value[42] != b':'
    {
        return false;
    }
    let (Some(value_run), Some(version), Some(len)) = (
        parse_hex(&value[..16]),
        parse_hex(&value[17..33]),
        parse_hex(&value[34..42]),
    ) else {
        return false;
    };
    if value_run != run || len != value.len() as u64 || &value[43..43 + key.len()] != key {
        return false;
    }
    write_value(scratch, run, version, key, value.len());
    scratch.as_slice() == value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_check_and_corruption_is_caught() {
        let mut v = Vec::new();
        let mut scratch = Vec::new();
        write_value(&mut v, 7, 42, b"key:1", 100);
        assert_eq!(v.len(), 100);
        assert!(check(&v, 7, b"key:1", &mut scratch));
        assert!(!check(&v, 8, b"key:1", &mut scratch), "another run");
        assert!(!check(&v, 7, b"key:2", &mut scratch), "another key");
        for i in 0..v.len() {
            let mut bad = v.clone();
            bad[i] ^= 0x01;
            assert!(!check(&bad, 7, b"key:1", &mut scratch), "flip at {i}");
        }
        assert!(!check(&v[..99], 7, b"key:1", &mut scratch), "truncated");
        assert!(!check(b"", 7, b"key:1", &mut scratch));
        // Minimal length: header only.
        write_value(&mut v, 1, 2, b"k", min_value_len(1));
        assert!(check(&v, 1, b"k", &mut scratch));
    }
}
