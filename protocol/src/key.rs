//! What a memcached key may be.
//!
//! protocol.txt asks for at most 250 bytes, no control characters and no
//! whitespace, but memcached (1.6.18 and 1.6.38 alike) enforces only the
//! length and the space that ends a token: `set k\x01 ...` and `mg a\tb`
//! are stored and found. segcore does the same, so no key a memcached
//! client stores is refused. Binary-protocol keys are opaque bytes
//! (memcached only bounds their length).

use crate::MAX_KEY_LEN;

/// True when `key` may name an item in the text and meta protocols: what
/// memcached takes (a space can only be there if a caller split badly).
#[inline]
pub fn is_valid_text_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && !key.contains(&b' ')
}

/// Room for one key (a decoded base64 meta key, an error's stale key).
pub type KeyBuf = [u8; crate::MAX_KEY_LEN];

/// A key as text output shows it (`stats hotkeys`, `stats detail dump`,
/// logs, Prometheus labels). Binary-protocol keys are opaque bytes and may
/// hold `\r\n`, spaces or anything else: written raw, one could end a
/// line and forge the next (`STAT evil 1`, `END`). So the bytes a text key
/// may not hold (space, control bytes, DEL), `%` itself, and bytes that are
/// not UTF-8 are written `%XX`, as memcached URL-encodes keys in its dumps;
/// every key a text client could store prints unchanged.
#[derive(Clone, Copy, Debug)]
pub struct Printable<'a>(pub &'a [u8]);

impl std::fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c <= ' ' || c == '\x7f' || c == '%' {
                    write!(f, "%{:02X}", c as u32)?;
                } else {
                    f.write_char(c)?;
                }
            }
            for byte in chunk.invalid() {
                write!(f, "%{byte:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_printable_keys_up_to_250_bytes() {
        assert!(is_valid_text_key(b"a"));
        assert!(is_valid_text_key(&[b'k'; 250]));
        assert!(is_valid_text_key("ключ".as_bytes()));
    }

    #[test]
    fn printable_keys_cannot_forge_lines() {
        let shown = |key: &[u8]| Printable(key).to_string();
        assert_eq!(shown(b"user:42"), "user:42");
        assert_eq!(shown("ключ".as_bytes()), "ключ");
        assert_eq!(
            shown(b"k\r\nSTAT evil 1\r\nEND\r\n"),
            "k%0D%0ASTAT%20evil%201%0D%0AEND%0D%0A"
        );
        assert_eq!(shown(b"50%\x00\x7f\xff"), "50%25%00%7F%FF");
        // Every byte that could end a line or split a field is escaped.
        for b in 0..=255u8 {
            let out = shown(&[b]);
            assert!(!out.contains(['\r', '\n', ' ', '\0']), "{b}: {out:?}");
        }
    }

    #[test]
    fn refuses_empty_long_and_spaced_keys_only() {
        assert!(!is_valid_text_key(b""));
        assert!(!is_valid_text_key(&[b'k'; 251]));
        assert!(!is_valid_text_key(b"a b"));
        // memcached stores these (checked against 1.6.18 and 1.6.38).
        assert!(is_valid_text_key(b"a\tb"));
        assert!(is_valid_text_key(b"a\x00b"));
        assert!(is_valid_text_key(b"a\x7fb"));
    }
}
