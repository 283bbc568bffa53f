//! `stats detail`: get/hit/set/delete counts per key prefix (the bytes
//! before the first `:`), which memcached users turn on to see which part
//! of an application's key space is busy.
//!
//! Each core counts the requests its own connections make, whichever core
//! owns the keys; `stats detail dump` sums the cores' tables by prefix. Off
//! by default: while it is off a request costs one flag test.

use hashbrown::HashMap;

pub use crate::runtime::metrics::report::PrefixCounts;
use crate::runtime::op::{KeyCommand, Op, Outcome};
use segcore_protocol::text;

/// The byte that ends a key's prefix unless `-D` says otherwise
/// (memcached's default).
pub const DEFAULT_DELIMITER: u8 = b':';

/// Most distinct prefixes one core tracks: the table is grown by what
/// clients send, so it is bounded; prefixes past the cap go uncounted.
pub const MAX_PREFIXES: usize = 100_000;

impl PrefixCounts {
    pub(crate) fn add(&mut self, other: &PrefixCounts) {
        self.gets += other.gets;
        self.hits += other.hits;
        self.sets += other.sets;
        self.deletes += other.deletes;
    }
}

/// One core's `stats detail` state.
#[derive(Debug)]
pub struct PrefixStats {
    delimiter: u8,
    enabled: bool,
    counts: HashMap<Box<[u8]>, PrefixCounts>,
}

impl Default for PrefixStats {
    fn default() -> Self {
        PrefixStats::new(DEFAULT_DELIMITER, false)
    }
}

impl PrefixStats {
    /// Counts prefixes ending at `delimiter`, from the start if `enabled`.
    pub fn new(delimiter: u8, enabled: bool) -> PrefixStats {
        PrefixStats {
            delimiter,
            enabled,
            counts: HashMap::new(),
        }
    }

    /// The prefix of `key`, or `None` when it has no delimiter (memcached
    /// also stops looking at a NUL byte).
    fn prefix_of<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        let end = key.iter().position(|&b| b == self.delimiter || b == 0)?;
        (key[end] == self.delimiter).then_some(&key[..end])
    }

    /// Whether requests are being counted (`stats detail on`).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `stats detail on|off`.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Counts one op of a classic get, storage or delete command with what
    /// it came to. Other ops are not counted (memcached's meta, touch and
    /// arithmetic commands are not).
    pub fn record<B>(&mut self, op: &Op<&[u8]>, outcome: &Outcome<B>) {
        let Op::Key { key, cmd, .. } = *op else {
            return;
        };
        let counted: fn(&mut PrefixCounts, bool) = match cmd {
            KeyCommand::Read(_) => |c, hit| {
                c.gets += 1;
                c.hits += u64::from(hit);
            },
            KeyCommand::Store(_) => |c, _| c.sets += 1,
            KeyCommand::Delete(_) => |c, _| c.deletes += 1,
            _ => return,
        };
        let Some(prefix) = self.prefix_of(key) else {
            return;
        };
        let hit = matches!(outcome, Outcome::Hit(_));
        if let Some(counts) = self.counts.get_mut(prefix) {
            counted(counts, hit);
        } else if self.counts.len() < MAX_PREFIXES {
            let mut counts = PrefixCounts::default();
            counted(&mut counts, hit);
            self.counts.insert(prefix.into(), counts);
        }
    }

    /// `stats reset` forgets every prefix (the on/off switch stays).
    pub fn clear(&mut self) {
        self.counts.clear();
    }

    /// A copy of the counts, for `stats detail dump`.
    pub fn snapshot(&self) -> Vec<(Box<[u8]>, PrefixCounts)> {
        self.counts
            .iter()
            .map(|(prefix, counts)| (prefix.clone(), *counts))
            .collect()
    }
}

/// Writes memcached's dump (one `PREFIX` line per prefix, then `END`) of
/// the cores' counts summed by prefix, sorted by prefix so the output is
/// stable.
pub fn write_dump<'a>(
    out: &mut Vec<u8>,
    tables: impl IntoIterator<Item = &'a [(Box<[u8]>, PrefixCounts)]>,
) {
    let mut merged: std::collections::BTreeMap<&[u8], PrefixCounts> = Default::default();
    for table in tables {
        for (prefix, counts) in table {
            merged.entry(prefix).or_default().add(counts);
        }
    }
    for (prefix, c) in merged {
        text::write_prefix(out, prefix, c.gets, c.hits, c.sets, c.deletes);
    }
    text::Reply::End.write(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::op::Hit;
    use crate::storage::{DeleteOptions, ReadOptions, StoreMode, StoreRequest, StoreResult};

    fn get(key: &[u8]) -> Op<&[u8]> {
        Op::on(key, KeyCommand::Read(ReadOptions::get(true)))
    }

    fn hit() -> Outcome<&'static [u8]> {
        Outcome::Hit(Hit {
            value: b"v",
            flags: 0,
            cas: 1,
            ttl: -1,
            facts: Default::default(),
        })
    }

    type Table = Vec<(Box<[u8]>, PrefixCounts)>;

    fn dump(tables: &[Table]) -> String {
        let mut out = Vec::new();
        write_dump(&mut out, tables.iter().map(Vec::as_slice));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_gets_hits_sets_and_deletes_by_prefix() {
        let mut stats = PrefixStats::default();
        stats.record(&get(b"user:1"), &hit());
        stats.record(&get(b"user:2"), &Outcome::<&[u8]>::Miss);
        stats.record(
            &Op::with_value(
                b"user:3",
                b"x",
                KeyCommand::Store(StoreRequest::new(StoreMode::Set, 0, 0)),
            ),
            &Outcome::<&[u8]>::Stored(StoreResult::Stored(1)),
        );
        stats.record(
            &Op::on(b"sess:9", KeyCommand::Delete(DeleteOptions::default())),
            &Outcome::<&[u8]>::Miss,
        );
        // No delimiter (or a NUL before it): not counted.
        stats.record(&get(b"plain"), &hit());
        stats.record(&get(b"a\0b:c"), &hit());
        // Not one of the counted commands.
        stats.record(&Op::on(b"user:1", KeyCommand::Touch { exptime: 0 }), &hit());
        assert_eq!(
            dump(&[stats.snapshot()]),
            "PREFIX sess get 0 hit 0 set 0 del 1\r\n\
             PREFIX user get 2 hit 1 set 1 del 0\r\nEND\r\n"
        );
        stats.clear();
        assert_eq!(dump(&[stats.snapshot()]), "END\r\n");
    }

    #[test]
    fn a_dump_sums_the_cores_tables() {
        let mut a = PrefixStats::default();
        let mut b = PrefixStats::default();
        a.record(&get(b"k:1"), &hit());
        b.record(&get(b"k:2"), &hit());
        b.record(&get(b":empty"), &Outcome::<&[u8]>::Miss);
        assert_eq!(
            dump(&[a.snapshot(), b.snapshot()]),
            "PREFIX  get 1 hit 0 set 0 del 0\r\nPREFIX k get 2 hit 2 set 0 del 0\r\nEND\r\n"
        );
    }

    #[test]
    fn the_delimiter_can_be_chosen() {
        let mut stats = PrefixStats::new(b'/', true);
        assert!(stats.enabled());
        stats.record(&get(b"img/1"), &hit());
        stats.record(&get(b"user:1"), &hit());
        assert_eq!(
            dump(&[stats.snapshot()]),
            "PREFIX img get 1 hit 1 set 0 del 0\r\nEND\r\n"
        );
    }

    #[test]
    fn the_table_stops_growing_at_its_cap() {
        let mut stats = PrefixStats::default();
        for i in 0..MAX_PREFIXES + 10 {
            let key = format!("{i}:x");
            stats.record(&get(key.as_bytes()), &hit());
        }
        assert_eq!(stats.snapshot().len(), MAX_PREFIXES);
        // Known prefixes still count.
        stats.record(&get(b"0:y"), &hit());
        let zero = stats.counts.get(&b"0"[..]).copied().unwrap();
        assert_eq!(zero.gets, 2);
    }
}
