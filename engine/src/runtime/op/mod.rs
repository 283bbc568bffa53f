//! The runtime's view of the command layer ([`crate::command`]): the ops
//! every wire lowers to — one [`Op`] per key (or per core) — and their
//! [`Outcome`], with a core's `stats` report as the whole-core outcome.
//!
//! Connections turn each request (text, meta or binary) into ops. A command
//! whose meaning the wires share is one [`KeyCommand`] or [`CoreCommand`]
//! whatever wire it came in on (text `set`, meta `ms` and binary Set are all
//! a [`KeyCommand::Store`]), and each command runs in one place:
//! [`KeyCommand::run`] or [`CoreCommand::run`]. An op for the local shard
//! runs inline, borrowing the key and value from the read buffer; an op for
//! another core's shard is copied into a [`Batch`] (one per destination per
//! read) and its outcome comes back in a [`Replies`]. Both sides use the
//! same types, generic over how bytes are held: `&[u8]` inline, a [`Span`]
//! of the message's arena when crossing cores. Only the key and the value
//! are bytes, so a new command never touches that plumbing.

pub use crate::command::{execute, CoreAccess, CoreCommand, Hit, KeyCommand, Op, ReportLists};

use crate::runtime::metrics::report::CoreReport;
use crate::storage::StoreMode;

/// What an op produced, a core's `stats` report being the outcome of a
/// `stats` op.
pub type Outcome<B> = crate::command::Outcome<B, CoreReport>;

/// The storage mode a wire's storage mode means (text, meta and binary
/// share one type). `cas` stores as `set` does, on the condition the
/// caller adds.
pub fn store_mode(mode: segcore_protocol::StoreMode) -> StoreMode {
    use segcore_protocol::StoreMode as Wire;
    match mode {
        Wire::Set | Wire::Cas => StoreMode::Set,
        Wire::Add => StoreMode::Add,
        Wire::Replace => StoreMode::Replace,
        Wire::Append => StoreMode::Append,
        Wire::Prepend => StoreMode::Prepend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::wire::binary::Binary;
    use crate::runtime::wire::text::Text;
    use crate::runtime::{batch::route::Route, wire::protocol::WireProtocol};
    use crate::storage::hash::hash_key;
    use crate::storage::ReadOptions;
    use segcore_protocol::Limits;

    /// The ops `P` lowers the first request in `buf` to.
    fn lowered<P: WireProtocol>(buf: &[u8]) -> Vec<Op<Vec<u8>>> {
        let (req, _) = P::parse(buf, &Limits::default())
            .expect("valid")
            .expect("complete");
        let route = Route {
            cores: 1,
            local: None,
        };
        let mut ops = Vec::new();
        P::for_each_op(&req, route, &mut |_, op| ops.push(op.map(<[u8]>::to_vec)));
        ops
    }

    /// A binary request: header, extras, key, value.
    fn binary(opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
        let body = (extras.len() + key.len() + value.len()) as u32;
        let mut p = vec![0x80, opcode];
        p.extend_from_slice(&(key.len() as u16).to_be_bytes());
        p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
        p.extend_from_slice(&body.to_be_bytes());
        p.extend_from_slice(&[0; 12]); // opaque, cas
        p.extend_from_slice(extras);
        p.extend_from_slice(key);
        p.extend_from_slice(value);
        p
    }

    /// A command the wires share is one op whatever wire it came in on, so
    /// it runs (and is forwarded) the same way.
    #[test]
    fn the_wires_lower_a_shared_command_to_one_op() {
        let gets = lowered::<Text>(b"gets k\r\n");
        assert_eq!(gets, lowered::<Binary>(&binary(0x00, &[], b"k", &[])));
        assert_eq!(
            gets,
            [Op::on(b"k", KeyCommand::Read(ReadOptions::get(true))).map(<[u8]>::to_vec)]
        );

        let ten = 10u32.to_be_bytes();
        let gats = lowered::<Text>(b"gats 10 k\r\n");
        assert_eq!(gats, lowered::<Binary>(&binary(0x1d, &ten, b"k", &[])));
        assert_eq!(gats, lowered::<Binary>(&binary(0x1c, &ten, b"k", &[])));

        let set = lowered::<Text>(b"set k 5 10 1\r\nv\r\n");
        assert_eq!(set, lowered::<Text>(b"ms k 1 F5 T10\r\nv\r\n"));
        let Op::Key {
            key,
            hash,
            value,
            cmd,
        } = &set[0]
        else {
            panic!("a set is keyed: {set:?}");
        };
        assert_eq!(value, b"v");
        assert_eq!(*hash, hash_key(key), "the hash travels with its key");
        assert!(matches!(cmd, KeyCommand::Store(f) if f.flags == 5 && f.exptime == 10));

        assert_eq!(
            lowered::<Text>(b"delete k\r\n"),
            lowered::<Text>(b"md k\r\n")
        );
        assert_eq!(
            lowered::<Text>(b"incr k 1\r\n"),
            lowered::<Text>(b"ma k\r\n")
        );

        let flush = lowered::<Text>(b"flush_all 5\r\n");
        let delay = 5u32.to_be_bytes();
        assert_eq!(flush, lowered::<Binary>(&binary(0x08, &delay, &[], &[])));
        assert_eq!(flush, [Op::Core(CoreCommand::Flush { delay: Some(5) })]);
    }
}
