//! Ops crossing to another core and their outcomes coming back: the bytes
//! they borrow inline are copied into one arena per message.

use crate::runtime::metrics::report::CoreReport;
use crate::runtime::op::{execute, CoreAccess, Op, Outcome};
use crate::storage::Shard;

// Everything in a `Batch` or `Replies` crosses cores.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Batch>();
    assert_send::<Replies>();
};

/// A byte range in a message arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// The bytes of this span in `arena`.
    #[inline]
    pub fn get<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        &arena[self.start as usize..(self.start + self.len) as usize]
    }

    /// Copies `bytes` to the end of `arena`.
    #[inline]
    pub fn push(arena: &mut Vec<u8>, bytes: &[u8]) -> Span {
        let start = arena.len() as u32;
        arena.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len() as u32,
        }
    }
}

/// Ops bound for one other core, from one connection's read. The bytes live
/// in `arena`; the message is `Send` and owns everything it refers to.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Key and value bytes.
    pub arena: Vec<u8>,
    /// The ops, in request order.
    pub ops: Vec<Op<Span>>,
}

impl Batch {
    /// Copies an op into the batch.
    pub fn push(&mut self, op: &Op<&[u8]>) {
        let arena = &mut self.arena;
        self.ops.push(op.map(|bytes| Span::push(arena, bytes)));
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Ops on a key (what `forwarded_*` count: commands for every core,
    /// such as `stats`, are not forwarding of data).
    pub fn keyed_ops(&self) -> u64 {
        self.ops.iter().filter(|op| op.key().is_some()).count() as u64
    }

    /// Runs the ops from `start` on `shard`, in order, copying outcomes
    /// into `replies`, and stops early once the copied bytes reach
    /// `budget` (after at least one op): the asking core takes the
    /// outcomes so far and sends the batch back for the rest, so a batch
    /// of many reads of large values never copies more than about
    /// `budget` plus one value at a time. Returns the index of the first
    /// op not run (`ops.len()` when all ran).
    pub fn execute<C: CoreAccess<Report = CoreReport> + ?Sized>(
        &self,
        start: usize,
        budget: usize,
        shard: &mut Shard,
        core: &C,
        replies: &mut Replies,
    ) -> usize {
        for (at, op) in self.ops.iter().enumerate().skip(start) {
            if at > start && replies.arena.len() >= budget {
                return at;
            }
            let op = op.map(|span| span.get(&self.arena));
            let outcome = execute(shard, &op, core);
            let arena = &mut replies.arena;
            replies
                .outcomes
                .push(outcome.map(|bytes| Span::push(arena, bytes)));
        }
        self.ops.len()
    }
}

/// The outcomes of a [`Batch`], in the same order.
#[derive(Debug, Default)]
pub struct Replies {
    /// Value bytes.
    pub arena: Vec<u8>,
    /// One outcome per op.
    pub outcomes: Vec<Outcome<Span>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::metrics::report::CoreReport;
    use crate::runtime::op::{CoreCommand, Hit, KeyCommand, ReportLists};
    use crate::storage::{
        ArithRequest, ArithResult, DeleteOptions, ReadOptions, ShardConfig, StoreMode, StoreRequest,
    };

    /// A core that is only its shard: reports the shard's counters.
    struct ShardOnly;

    impl CoreAccess for ShardOnly {
        type Report = CoreReport;

        fn report(&self, s: &Shard, _: ReportLists) -> CoreReport {
            CoreReport {
                shard: *s.stats(),
                ..CoreReport::default()
            }
        }
        fn reset_counters(&self) {}
        fn set_detail(&self, _: bool) {}
    }

    fn shard() -> Shard {
        let mut shard = Shard::new(&ShardConfig {
            memory_bytes: 1 << 20,
            segment_size: 64 << 10,
            ..ShardConfig::default()
        })
        .unwrap();
        shard.set_time(1_700_000_000);
        shard
    }

    #[test]
    fn a_batch_runs_remotely_as_it_would_inline() {
        let get = KeyCommand::Read(ReadOptions::get(true));
        let ops: Vec<Op<&[u8]>> = vec![
            Op::with_value(
                b"a",
                b"hello",
                KeyCommand::Store(StoreRequest::new(StoreMode::Set, 7, 0)),
            ),
            Op::on(b"a", get),
            Op::on(b"b", get),
            Op::on(
                b"a",
                KeyCommand::Arith(ArithRequest {
                    incr: true,
                    delta: 1,
                    ..ArithRequest::default()
                }),
            ),
            Op::on(b"a", KeyCommand::Delete(DeleteOptions::default())),
            Op::Core(CoreCommand::Stats {
                also: ReportLists::default(),
            }),
        ];
        let report = ShardOnly;
        let mut inline = shard();
        let expected: Vec<Outcome<Vec<u8>>> = ops
            .iter()
            .map(|op| execute(&mut inline, op, &report).map(|b| b.to_vec()))
            .collect();

        let mut batch = Batch::default();
        for op in &ops {
            batch.push(op);
        }
        let mut remote = shard();
        let mut replies = Replies::default();
        batch.execute(0, usize::MAX, &mut remote, &report, &mut replies);
        let got: Vec<Outcome<Vec<u8>>> = replies
            .outcomes
            .iter()
            .map(|o| o.clone().map(|span| span.get(&replies.arena).to_vec()))
            .collect();
        // cas values differ only if placement differs; both shards are fresh.
        assert_eq!(got, expected);
        assert!(matches!(got[1], Outcome::Hit(Hit { flags: 7, .. })));
        assert_eq!(got[2], Outcome::Miss);
        assert_eq!(got[3], Outcome::Arith(ArithResult::NonNumeric));
    }

    /// Past its reply budget an owner stops at an op boundary; the batch
    /// sent again from there runs the rest, in order, each op once.
    #[test]
    fn a_batch_stops_at_its_reply_budget_and_resumes_in_order() {
        let get = KeyCommand::Read(ReadOptions::get(false));
        let value = [7u8; 1000];
        let mut shard = shard();
        let mut batch = Batch::default();
        batch.push(&Op::with_value(
            b"a",
            &value,
            KeyCommand::Store(StoreRequest::new(StoreMode::Set, 0, 0)),
        ));
        for _ in 0..3 {
            batch.push(&Op::on(b"a", get));
        }
        // A write after the stop must not run before the stop's reads.
        batch.push(&Op::on(b"a", KeyCommand::Delete(DeleteOptions::default())));
        batch.push(&Op::on(b"a", get));

        let mut runs = Vec::new();
        let mut start = 0;
        while start < batch.ops.len() {
            let mut replies = Replies::default();
            let next = batch.execute(start, 1500, &mut shard, &ShardOnly, &mut replies);
            assert!(next > start, "every run makes progress");
            assert!(replies.arena.len() <= 1500 + value.len());
            runs.push(replies.outcomes.len());
            let hits = replies
                .outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Hit(_)))
                .count();
            assert!(hits <= 2, "two values pass the budget: {hits}");
            start = next;
        }
        assert_eq!(runs.iter().sum::<usize>(), batch.ops.len());
        assert!(runs.len() > 1, "the budget split the batch: {runs:?}");
        // The delete ran after every read of the value, once.
        assert_eq!(shard.stats().curr_items, 0);
    }
}
