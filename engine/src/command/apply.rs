//! Running a command: a key command on the owner's shard, a whole-core
//! command on the shard and the core's counters. The one place a command
//! runs, whatever wire it came in on and whichever core received it.

use crate::command::model::{CoreCommand, KeyCommand, Op, ReportLists};
use crate::command::outcome::{Hit, Outcome};
use crate::storage::{HashedKey, Shard};

/// What whole-core ops (`stats`, `stats reset`) need beyond the shard:
/// the core's own counters.
pub trait CoreAccess {
    /// What a core reports for `stats`.
    type Report;

    /// This core's contribution to `stats`, with the lists asked for.
    fn report(&self, shard: &Shard, also: ReportLists) -> Self::Report;
    /// Zeroes the core's connection counters (`stats reset`).
    fn reset_counters(&self);
    /// Turns per-prefix counting on or off (`stats detail on|off`).
    fn set_detail(&self, on: bool);
    /// Offers a requested key to the hot-key table (which samples).
    fn sample_key(&self, _key: &[u8]) {}
}

impl KeyCommand {
    /// Runs the command on `key` (with `value`, a store's data) in `shard`.
    /// The outcome borrows the shard's memory until the shard is next used.
    pub fn run<'s, R>(
        &self,
        shard: &'s mut Shard,
        key: HashedKey<'_>,
        value: &[u8],
    ) -> Outcome<&'s [u8], R> {
        match *self {
            KeyCommand::Read(opts) => match shard.read(key, &opts) {
                Some(hit) => Outcome::Hit(Hit {
                    value: hit.item.value,
                    flags: hit.item.flags,
                    cas: hit.item.cas,
                    ttl: hit.ttl,
                    facts: hit.facts,
                }),
                None => Outcome::Miss,
            },
            KeyCommand::Store(req) => Outcome::Stored(shard.store(key, value, &req)),
            KeyCommand::Delete(opts) => Outcome::Deleted(shard.delete(key, &opts)),
            KeyCommand::Arith(req) => Outcome::Arith(shard.arith(key, &req)),
            KeyCommand::Touch { exptime } => Outcome::Touched(shard.touch(key, exptime)),
            KeyCommand::Debug => Outcome::Debug(shard.debug(key)),
            KeyCommand::Unlink => {
                shard.unlink(key);
                Outcome::Unlinked
            }
        }
    }
}

impl CoreCommand {
    /// Runs the command on this core's `shard` and counters.
    pub fn run<C: CoreAccess + ?Sized>(
        &self,
        shard: &mut Shard,
        core: &C,
    ) -> Outcome<&'static [u8], C::Report> {
        match *self {
            CoreCommand::Flush { delay } => {
                shard.flush_all(delay);
                Outcome::Done
            }
            CoreCommand::Stats { also } => Outcome::Stats(Box::new(core.report(shard, also))),
            CoreCommand::ResetStats => {
                shard.reset_stats();
                core.reset_counters();
                Outcome::Done
            }
            CoreCommand::Detail { on } => {
                core.set_detail(on);
                Outcome::Done
            }
        }
    }
}

/// Runs `op` on `shard`. The outcome borrows the shard's memory until the
/// shard is next used. `core` answers the whole-core commands.
#[inline]
pub fn execute<'s, C: CoreAccess + ?Sized>(
    shard: &'s mut Shard,
    op: &Op<&[u8]>,
    core: &C,
) -> Outcome<&'s [u8], C::Report> {
    match op {
        Op::Key {
            key,
            hash,
            value,
            cmd,
        } => {
            core.sample_key(key);
            cmd.run(shard, HashedKey { key, hash: *hash }, value)
        }
        Op::Core(cmd) => cmd.run(shard, core),
    }
}
