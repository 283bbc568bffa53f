//! The text wire's lexical rules, shared by the classic and meta commands:
//! tokens are separated by runs of spaces, and a data block's declared
//! length is what memcached accepts.

/// Space-separated tokens, empty ones (runs of spaces) skipped.
pub(crate) fn tokens(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b' ').filter(|t| !t.is_empty())
}

/// The first token and everything after it.
pub(crate) fn split_first_token(raw: &[u8]) -> (&[u8], &[u8]) {
    let raw = trim_start(raw);
    match memchr::memchr(b' ', raw) {
        Some(i) => (&raw[..i], &raw[i + 1..]),
        None => (raw, &[]),
    }
}

/// Up to `N` tokens into an array, plus how many tokens there are in all.
pub(crate) fn split_args<const N: usize>(raw: &[u8]) -> ([&[u8]; N], usize) {
    let mut args: [&[u8]; N] = [&[]; N];
    let mut count = 0;
    for token in tokens(raw) {
        if let Some(slot) = args.get_mut(count) {
            *slot = token;
        }
        count += 1;
    }
    (args, count)
}

pub(crate) fn trim_start(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&b| b != b' ').unwrap_or(raw.len());
    &raw[start..]
}

pub(crate) fn trim_spaces(raw: &[u8]) -> &[u8] {
    let raw = trim_start(raw);
    let end = raw.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &raw[..end]
}

/// A declared data length as memcached accepts it: `0..=i32::MAX - 2`.
pub(crate) fn block_len(declared: i32) -> Option<usize> {
    if declared > i32::MAX - 2 {
        return None;
    }
    usize::try_from(declared).ok()
}
