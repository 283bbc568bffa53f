//! The storage modes every wire shares: text's six storage commands, the
//! meta `ms` modes (`M` flag) and binary Set/Add/Replace all mean one of
//! these, so the server maps one type onto its storage.

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
