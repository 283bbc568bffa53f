//! Standard base64 (RFC 4648, `+/`, `=` padding) for meta keys sent with `b`.
//!
//! Keys are at most 250 bytes, so both directions work on caller buffers and
//! never allocate. Decoding accepts padded and unpadded input, like
//! memcached's decoder; anything else is refused.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Bytes needed to decode `encoded_len` characters (an upper bound).
pub const fn decoded_len_bound(encoded_len: usize) -> usize {
    encoded_len.div_ceil(4) * 3
}

/// Decodes `input` into `out`, returning the decoded length, or `None` for
/// invalid base64 or an `out` too small.
pub fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    // Padded groups of four only, as memcached's decoder requires.
    if !input.len().is_multiple_of(4) {
        return None;
    }
    let trimmed = match input {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        _ => input,
    };
    if input.len() != trimmed.len() && !input.len().is_multiple_of(4) {
        return None;
    }
    if trimmed.len() % 4 == 1 {
        return None;
    }
    let mut written = 0;
    for chunk in trimmed.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= sextet(c)? << (18 - 6 * i);
        }
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        let n = chunk.len() - 1;
        out.get_mut(written..written + n)?
            .copy_from_slice(&bytes[..n]);
        written += n;
    }
    Some(written)
}

/// Appends the padded base64 encoding of `input`.
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let acc = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((acc >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(raw: &[u8], encoded: &[u8]) {
        let mut out = Vec::new();
        encode(raw, &mut out);
        assert_eq!(out, encoded);
        let mut buf = [0u8; 64];
        let n = decode(encoded, &mut buf).unwrap();
        assert_eq!(&buf[..n], raw);
    }

    #[test]
    fn rfc4648_vectors() {
        roundtrip(b"", b"");
        roundtrip(b"f", b"Zg==");
        roundtrip(b"fo", b"Zm8=");
        roundtrip(b"foo", b"Zm9v");
        roundtrip(b"foob", b"Zm9vYg==");
        roundtrip(b"fooba", b"Zm9vYmE=");
        roundtrip(b"foobar", b"Zm9vYmFy");
        roundtrip(&[0, 0xff, 0x10], b"AP8Q");
    }

    #[test]
    fn refuses_unpadded_input_and_garbage() {
        let mut buf = [0u8; 8];
        // memcached 1.6.18 answers `ms bk 2 b` with "error decoding key".
        assert_eq!(decode(b"Zm8", &mut buf), None);
        assert_eq!(decode(b"bk", &mut buf), None);
        assert_eq!(decode(b"Zm8=", &mut buf), Some(2));
        assert_eq!(decode(b"Zm9v!", &mut buf), None);
        assert_eq!(decode(b"Z", &mut buf), None);
        assert_eq!(decode(b"Zm=", &mut buf), None);
        assert_eq!(decode(b"Zm9vYmFyZm9v", &mut [0u8; 4]), None);
    }
}
