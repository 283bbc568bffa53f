//! The command vocabulary the wires share: text's six storage commands,
//! the meta `ms` modes (`M` flag) and binary Set/Add/Replace all mean a
//! [`StoreMode`]; `incr`/`decr` and `ma`'s modes an [`ArithOp`]. The server
//! maps each onto its storage once.

/// How a value is stored, whichever wire asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally (`set`, `ms` `MS`, binary Set).
    Set,
    /// Store only if the key is absent (`add`, `ME`, binary Add).
    Add,
    /// Store only if the key is present (`replace`, `MR`, binary Replace).
    Replace,
    /// Add the data after the existing value (flags and exptime ignored).
    Append,
    /// Add the data before the existing value (flags and exptime ignored).
    Prepend,
    /// Store only if the item's cas still equals the one given (text `cas`;
    /// meta and binary carry a cas beside any mode instead).
    Cas,
}

/// `incr` or `decr` (text `incr`/`decr`, meta `ma` with `MI`/`MD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    /// Add, wrapping at 2^64.
    Incr,
    /// Subtract, stopping at 0.
    Decr,
}
