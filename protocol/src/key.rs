//! What a memcached key may be.
//!
//! protocol.txt: at most 250 bytes, no control characters, no whitespace.
//! Text keys are checked here; binary-protocol keys are opaque bytes
//! (memcached only bounds their length), so they skip the character rule.

use crate::MAX_KEY_LEN;

/// True when `key` may name an item in the text and meta protocols.
#[inline]
pub fn is_valid_text_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// Room for one key (a decoded base64 meta key, an error's stale key).
pub type KeyBuf = [u8; crate::MAX_KEY_LEN];

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
    fn refuses_empty_long_and_control_keys() {
        assert!(!is_valid_text_key(b""));
        assert!(!is_valid_text_key(&[b'k'; 251]));
        assert!(!is_valid_text_key(b"a b"));
        assert!(!is_valid_text_key(b"a\tb"));
        assert!(!is_valid_text_key(b"a\x00b"));
        assert!(!is_valid_text_key(b"a\x7fb"));
    }
}
