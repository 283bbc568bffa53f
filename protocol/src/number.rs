//! Decimal numbers as memcached reads and writes them.
//!
//! memcached parses with `strtoul`/`strtol` plus range checks: an optional
//! sign, digits, nothing after them, no overflow, and no minus sign on an
//! unsigned value. These functions accept exactly that, from a token that
//! holds no spaces, without going through `str`.

/// Writes `n` in decimal. A stack buffer, never a `String`.
#[inline]
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

/// Writes `n` in decimal, with a minus sign when negative.
#[inline]
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

/// Splits an optional sign from the digits; `None` when there are no digits
/// or a non-digit follows.
fn sign_and_digits(token: &[u8]) -> Option<(bool, &[u8])> {
    let (negative, digits) = match token.first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((negative, digits))
}

fn digits_value(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// An unsigned 64-bit value (`strtoull` without its quirks: `-0` is 0, any
/// other negative is refused).
pub fn parse_u64(token: &[u8]) -> Option<u64> {
    let (negative, digits) = sign_and_digits(token)?;
    let value = digits_value(digits)?;
    if negative && value != 0 {
        return None;
    }
    Some(value)
}

/// An unsigned 32-bit value: client flags.
pub fn parse_u32(token: &[u8]) -> Option<u32> {
    parse_u64(token).and_then(|v| u32::try_from(v).ok())
}

/// A signed 32-bit value: exptimes and lengths (memcached's `safe_strtol`).
pub fn parse_i32(token: &[u8]) -> Option<i32> {
    let (negative, digits) = sign_and_digits(token)?;
    let magnitude = digits_value(digits)?;
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    i32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_accepts_memcached_forms() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"+7"), Some(7));
        assert_eq!(parse_u64(b"-0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"007"), Some(7));
    }

    #[test]
    fn unsigned_refuses_the_rest() {
        for bad in [
            &b""[..],
            b"-1",
            b"18446744073709551616",
            b"1a",
            b"a1",
            b"+",
            b"-",
            b" 1",
            b"1.0",
        ] {
            assert_eq!(parse_u64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
    }

    #[test]
    fn signed_covers_i32_range() {
        assert_eq!(parse_i32(b"-1"), Some(-1));
        assert_eq!(parse_i32(b"2147483647"), Some(i32::MAX));
        assert_eq!(parse_i32(b"-2147483648"), Some(i32::MIN));
        assert_eq!(parse_i32(b"2147483648"), None);
        assert_eq!(parse_i32(b"-2147483649"), None);
        assert_eq!(parse_i32(b"99999999999999999999999"), None);
        assert_eq!(parse_i32(b"12x"), None);
    }

    #[test]
    fn writes_decimal() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        out.push(b' ');
        write_i64(&mut out, -1);
        assert_eq!(out, b"0 18446744073709551615 -1");
    }
}
