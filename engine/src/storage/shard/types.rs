//! What the shard's commands take and return: requests, options and
//! outcomes, in storage terms.

/// Outcome of a storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreResult {
    /// Stored; the item's new cas.
    Stored(u64),
    /// The add/replace/append/prepend condition failed.
    NotStored,
    /// The cas did not match.
    Exists,
    /// cas (or a cas-checked command) on a missing key.
    NotFound,
    /// Larger than a segment.
    TooLarge,
    /// No memory even after eviction.
    OutOfMemory,
}

impl StoreResult {
    /// True for [`StoreResult::Stored`].
    pub fn is_stored(&self) -> bool {
        matches!(self, StoreResult::Stored(_))
    }
}

/// Outcome of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteResult {
    /// Removed (or, for meta invalidate, marked stale).
    Deleted,
    /// No such key.
    NotFound,
    /// The cas did not match.
    Exists,
}

/// Outcome of incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithResult {
    /// The new value and the item's new cas.
    Value {
        /// The number after the operation.
        value: u64,
        /// The item's cas.
        cas: u64,
        /// Remaining TTL (-1 for never), for meta `t`.
        ttl: i64,
    },
    /// No such key (and no auto-create requested).
    NotFound,
    /// The stored value is not a decimal number.
    NonNumeric,
    /// The cas did not match.
    Exists,
    /// No memory for the new value.
    OutOfMemory,
}

/// Storage conditions (text, binary and meta spell them differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// Unconditional.
    Set,
    /// Only if absent.
    Add,
    /// Only if present.
    Replace,
    /// Present: append the data.
    Append,
    /// Present: prepend the data.
    Prepend,
}

/// How a value is stored: the condition and what the item gets beside
/// its data. It holds no bytes, so a command copies it across cores as it
/// is; the data travels beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreRequest {
    /// The condition.
    pub mode: StoreMode,
    /// Client flags (ignored by append/prepend).
    pub flags: u32,
    /// memcached exptime (ignored by append/prepend).
    pub exptime: i64,
    /// Store only if the item's cas equals this (`cas` command, binary cas,
    /// meta `C`).
    pub compare_cas: Option<u64>,
    /// Meta `E`: give the stored item this cas.
    pub new_cas: Option<u64>,
    /// Meta `I` with `C`: a cas older than the item's stores the value as
    /// stale instead of failing.
    pub invalidate: bool,
    /// Meta `N` with append/prepend: create the item (with this exptime)
    /// when missing.
    pub vivify: Option<i64>,
    /// The reply will not show the new item's cas (text storage commands,
    /// meta without `c`), so no client can hold it yet.
    pub hides_cas: bool,
}

impl StoreRequest {
    /// A plain request: `mode`, flags, exptime; no cas conditions.
    pub fn new(mode: StoreMode, flags: u32, exptime: i64) -> Self {
        StoreRequest {
            mode,
            flags,
            exptime,
            compare_cas: None,
            new_cas: None,
            invalidate: false,
            vivify: None,
            hides_cas: false,
        }
    }
}

/// A live item, borrowed from segment memory until the next `&mut` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemView<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// The cas unique.
    pub cas: u64,
    /// Expiry (unix seconds, 0 = never).
    pub expire_at: u32,
}

/// What a read found: the item, its time left and what only meta get
/// asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadHit<'a> {
    /// The item after the request's changes.
    pub item: ItemView<'a>,
    /// Seconds left (-1 = never), after any `T`.
    pub ttl: i64,
    /// Its access history and recache token.
    pub facts: ReadFacts,
}

/// An item's access history and recache token as a read found them (the
/// part of a hit only meta get asks about; zero for every other read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadFacts {
    /// Read before this request (`h`).
    pub hit_before: bool,
    /// Seconds since the previous access (`l`), minute resolution.
    pub last_access: u64,
    /// This client won the recache token (`W`).
    pub win: bool,
    /// The item is stale (`X`).
    pub stale: bool,
    /// Another client already holds the token (`Z`).
    pub win_sent: bool,
}

/// How a read treats the item beyond returning it, and how it is counted.
/// Every read command is one of these: get/gets, gat/gats, binary
/// Get/GAT/Touch and meta get differ only in the options they set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// gat, binary GAT/Touch, meta `T`: new exptime. A hit is then counted
    /// as a touch, not a get (memcached counts them so).
    pub touch: Option<i64>,
    /// With `touch`: a miss is counted as a touch miss (gat and binary
    /// GAT/Touch). Meta get's `T` leaves it false: memcached counts those
    /// misses as get misses.
    pub touch_counts_misses: bool,
    /// Meta get: the first reader of a stale item, or of one under
    /// `recache`, wins its recache token (`W`); later ones see `Z`; the
    /// hit carries its [`ReadFacts`]. A classic get leaves the token alone
    /// and gets default facts.
    pub takes_token: bool,
    /// `N`: create an empty item with this exptime on a miss; the creator wins.
    pub vivify: Option<i64>,
    /// `R`: win the recache token when fewer seconds than this remain.
    pub recache: Option<i64>,
    /// `u`: do not mark the item accessed.
    pub no_bump: bool,
    /// The reply does not show the cas (text get/gat, meta without `c`).
    pub hides_cas: bool,
}

impl ReadOptions {
    /// get (`shows_cas` false) or gets; binary Get.
    pub const fn get(shows_cas: bool) -> Self {
        ReadOptions {
            touch: None,
            touch_counts_misses: false,
            takes_token: false,
            vivify: None,
            recache: None,
            no_bump: false,
            hides_cas: !shows_cas,
        }
    }

    /// gat (`shows_cas` false) or gats; binary GAT and Touch: read and give
    /// the item a new exptime, counted as a touch whether it hits or not.
    pub const fn get_and_touch(exptime: i64, shows_cas: bool) -> Self {
        ReadOptions {
            touch: Some(exptime),
            touch_counts_misses: true,
            ..ReadOptions::get(shows_cas)
        }
    }
}

/// What a delete may be made conditional on or turned into (meta
/// delete's flags; a plain delete uses the defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// `C`: delete only if the cas matches.
    pub compare_cas: Option<u64>,
    /// `I`: mark stale (and give it a new cas) instead of deleting.
    pub invalidate: bool,
    /// `T` (with `I`): new exptime for the stale item.
    pub ttl: Option<i64>,
    /// `x`: drop the value but keep the item.
    pub remove_value: bool,
}

/// An arithmetic request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArithRequest {
    /// Increment (else decrement).
    pub incr: bool,
    /// Amount.
    pub delta: u64,
    /// Create the item with this value and exptime when missing.
    pub create: Option<(u64, i64)>,
    /// Only if the cas matches.
    pub compare_cas: Option<u64>,
    /// Meta `T`: new exptime on success.
    pub touch: Option<i64>,
    /// The reply does not show the new value's cas (text incr/decr, meta
    /// without `c`).
    pub hides_cas: bool,
}

/// Debug information for `me`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugInfo {
    /// Seconds until expiry, -1 for never.
    pub ttl: i64,
    /// Seconds since last access.
    pub last_access: u64,
    /// The cas unique.
    pub cas: u64,
    /// Read at least once.
    pub fetched: bool,
    /// Value length.
    pub value_len: usize,
    /// Total item bytes.
    pub item_len: usize,
}
