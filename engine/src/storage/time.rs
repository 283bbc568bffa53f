//! memcached's exptime rules, turned into an absolute expiry.
//!
//! - 0: never expires;
//! - negative: already expired;
//! - 1 ..= 30 days (2,592,000 s): seconds from now;
//! - larger: a unix timestamp (in the past means already expired).

/// The largest exptime read as relative seconds.
pub const MAX_RELATIVE_EXPTIME: i64 = 60 * 60 * 24 * 30;

/// When an item expires, in shard time (unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Lives until evicted or deleted.
    Never,
    /// Expires once `now >= t`.
    At(u32),
    /// Expired on arrival: storing it only removes the old value.
    Past,
}

impl Expiry {
    /// Applies memcached's rules to `exptime` at time `now`.
    pub fn from_exptime(exptime: i64, now: u32) -> Expiry {
        match exptime {
            0 => Expiry::Never,
            e if e < 0 => Expiry::Past,
            e if e <= MAX_RELATIVE_EXPTIME => {
                Expiry::At((i64::from(now) + e).min(i64::from(u32::MAX - 1)) as u32)
            }
            e if e <= i64::from(now) => Expiry::Past,
            e => Expiry::At(e.min(i64::from(u32::MAX - 1)) as u32),
        }
    }

    /// The value stored in an item header (0 = never).
    pub fn stored(self) -> u32 {
        match self {
            Expiry::Never => 0,
            Expiry::At(t) => t,
            Expiry::Past => 1,
        }
    }
}

/// Whether an item with stored expiry `expire_at` is gone at `now`.
#[inline]
pub fn is_expired(expire_at: u32, now: u32) -> bool {
    expire_at != 0 && expire_at <= now
}

/// Seconds left for a stored expiry, -1 for never (meta `t`).
#[inline]
pub fn ttl_remaining(expire_at: u32, now: u32) -> i64 {
    if expire_at == 0 {
        -1
    } else {
        i64::from(expire_at.saturating_sub(now))
    }
}

/// The current unix time in seconds: what a shard's clock is set from.
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u32 = 1_700_000_000;

    #[test]
    fn memcached_exptime_rules() {
        assert_eq!(Expiry::from_exptime(0, NOW), Expiry::Never);
        assert_eq!(Expiry::from_exptime(-1, NOW), Expiry::Past);
        assert_eq!(Expiry::from_exptime(1, NOW), Expiry::At(NOW + 1));
        // The 30-day boundary: relative up to and including it, absolute after.
        assert_eq!(
            Expiry::from_exptime(MAX_RELATIVE_EXPTIME, NOW),
            Expiry::At(NOW + MAX_RELATIVE_EXPTIME as u32)
        );
        assert_eq!(
            Expiry::from_exptime(MAX_RELATIVE_EXPTIME + 1, NOW),
            Expiry::Past
        );
        assert_eq!(Expiry::from_exptime(i64::from(NOW), NOW), Expiry::Past);
        assert_eq!(
            Expiry::from_exptime(i64::from(NOW) + 5, NOW),
            Expiry::At(NOW + 5)
        );
    }

    #[test]
    fn expired_and_remaining() {
        assert!(!is_expired(0, NOW));
        assert!(!is_expired(NOW + 1, NOW));
        assert!(is_expired(NOW, NOW));
        assert_eq!(ttl_remaining(0, NOW), -1);
        assert_eq!(ttl_remaining(NOW + 30, NOW), 30);
    }
}
