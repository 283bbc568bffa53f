//! The binary protocol's numbers: request opcodes and response statuses.
//! A leaf module (it depends on nothing), so the error types can name a
//! binary status without depending on the binary parser.

macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $value:expr,)*) => {
        /// The binary commands memcached implements for a cache.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode { $($(#[$doc])* $name = $value,)* }

        impl Opcode {
            /// The opcode for a byte, `None` when memcached does not know it.
            pub fn from_u8(byte: u8) -> Option<Opcode> {
                match byte { $($value => Some(Opcode::$name),)* _ => None }
            }
        }
    };
}

opcodes! {
    /// Get a value.
    Get = 0x00,
    /// Store unconditionally.
    Set = 0x01,
    /// Store if absent.
    Add = 0x02,
    /// Store if present.
    Replace = 0x03,
    /// Remove.
    Delete = 0x04,
    /// Add to a number.
    Increment = 0x05,
    /// Subtract from a number.
    Decrement = 0x06,
    /// Close the connection after replying.
    Quit = 0x07,
    /// Invalidate every item.
    Flush = 0x08,
    /// Get; no reply on a miss.
    GetQ = 0x09,
    /// No operation: flushes the replies of quiet commands before it.
    NoOp = 0x0a,
    /// Server version.
    Version = 0x0b,
    /// Get, with the key in the reply.
    GetK = 0x0c,
    /// GetK; no reply on a miss.
    GetKQ = 0x0d,
    /// Append to a value.
    Append = 0x0e,
    /// Prepend to a value.
    Prepend = 0x0f,
    /// Statistics, one reply per stat, ended by an empty one.
    Stat = 0x10,
    /// Set; no reply on success.
    SetQ = 0x11,
    /// Add; no reply on success.
    AddQ = 0x12,
    /// Replace; no reply on success.
    ReplaceQ = 0x13,
    /// Delete; no reply on success.
    DeleteQ = 0x14,
    /// Increment; no reply on success.
    IncrementQ = 0x15,
    /// Decrement; no reply on success.
    DecrementQ = 0x16,
    /// Close the connection without replying.
    QuitQ = 0x17,
    /// Flush; no reply on success.
    FlushQ = 0x18,
    /// Append; no reply on success.
    AppendQ = 0x19,
    /// Prepend; no reply on success.
    PrependQ = 0x1a,
    /// Set the log level (accepted, no effect).
    Verbosity = 0x1b,
    /// Change an item's expiry.
    Touch = 0x1c,
    /// Get and touch.
    Gat = 0x1d,
    /// Get and touch; no reply on a miss.
    GatQ = 0x1e,
    /// SASL: list mechanisms.
    SaslListMechs = 0x20,
    /// SASL: authenticate.
    SaslAuth = 0x21,
    /// SASL: continue authentication.
    SaslStep = 0x22,
    /// Get and touch, with the key in the reply.
    GatK = 0x23,
    /// GatK; no reply on a miss.
    GatKQ = 0x24,
}

/// Response status codes, as memcached sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    /// Success.
    NoError = 0x0000,
    /// No such item.
    KeyNotFound = 0x0001,
    /// Item exists (add) or cas mismatch.
    KeyExists = 0x0002,
    /// Value over the item size limit.
    TooLarge = 0x0003,
    /// Lengths or extras that do not fit the opcode.
    InvalidArguments = 0x0004,
    /// Condition for append/prepend/replace not met.
    NotStored = 0x0005,
    /// incr/decr on a value that is not a number.
    NonNumeric = 0x0006,
    /// Authentication failed.
    AuthError = 0x0020,
    /// Authentication needs another step.
    AuthContinue = 0x0021,
    /// Opcode not known.
    UnknownCommand = 0x0081,
    /// No memory for the item, even after eviction.
    OutOfMemory = 0x0082,
    /// The server cannot serve the request now (memcached's ETMPFAIL): the
    /// core owning the key stopped before it answered.
    TemporaryFailure = 0x0086,
}

impl Status {
    /// The message memcached puts in the body of an error response.
    pub fn message(self) -> &'static [u8] {
        match self {
            Status::NoError => b"",
            Status::KeyNotFound => b"Not found",
            Status::KeyExists => b"Data exists for key.",
            Status::TooLarge => b"Too large.",
            Status::InvalidArguments => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::NonNumeric => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::AuthContinue => b"",
            Status::UnknownCommand => b"Unknown command",
            Status::OutOfMemory => b"Out of memory",
            Status::TemporaryFailure => b"Temporary failure",
        }
    }
}
