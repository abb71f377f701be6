//! Writing the postings: appending entries after each code's last, filling its last block and
//! starting new ones, and the last blocks the writer keeps between its transactions.
//!
//! Uses the layout, the block codec and the file format's lazily opened tables.

use std::collections::HashMap;

use redb::{ReadableTable, WriteTransaction};

use crate::engine::format::LazyTable;
use crate::engine::postings::codec::{decode_block, encode_entry};
use crate::engine::postings::layout::{
    Code, CodeKey, Entry, ACTOR_POSTINGS, BLOCK_BYTES, BLOCK_ENTRIES, INTENT_POSTINGS,
    TRACE_POSTINGS, TYPE_POSTINGS,
};
use crate::model::error::Error;
use crate::model::error::Result;

/// The four index tables of a write transaction, for appending entries.
pub(crate) struct Writer<'txn> {
    intents: LazyTable<'txn, (u64, u64), &'static [u8]>,
    types: LazyTable<'txn, (u32, u64), &'static [u8]>,
    actors: LazyTable<'txn, (u32, u64), &'static [u8]>,
    traces: LazyTable<'txn, (u128, u64), &'static [u8]>,
}

impl<'txn> Writer<'txn> {
    /// The tables of `txn`, each opened when an entry first needs it.
    pub(crate) fn new(txn: &'txn WriteTransaction) -> Writer<'txn> {
        Writer {
            intents: LazyTable::new(txn, INTENT_POSTINGS),
            types: LazyTable::new(txn, TYPE_POSTINGS),
            actors: LazyTable::new(txn, ACTOR_POSTINGS),
            traces: LazyTable::new(txn, TRACE_POSTINGS),
        }
    }

    /// Appends new entries, each after every stored entry of its code (positions and sequences
    /// only grow): grouped by code, each code's last block is filled and rewritten once (taken
    /// from `tails` when it is there, else read from the table), and new blocks started as
    /// needed. `tails` is left holding the codes' new last blocks.
    ///
    /// # Errors
    /// A storage error; [`Error::Corrupt`] when the code's last block is damaged or an entry
    /// would not come after its last entry.
    pub(crate) fn append(&mut self, new: &mut [(Code, Entry)], tails: &mut Tails) -> Result<()> {
        // Each code's entries are in order of the key's second half, which no two share.
        new.sort_unstable_by_key(|(code, entry)| (*code, entry.order(code.index())));
        let mut entries = Vec::with_capacity(new.len());
        for run in new.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(code, _)) = run.first() else {
                continue;
            };
            entries.clear();
            entries.extend(run.iter().map(|(_, entry)| *entry));
            match code {
                Code::Intent(c) => append_run(self.intents.get()?, c, code, &entries, tails)?,
                Code::Type(c) => append_run(self.types.get()?, c, code, &entries, tails)?,
                Code::Actor(c) => append_run(self.actors.get()?, c, code, &entries, tails)?,
                Code::Trace(c) => append_run(self.traces.get()?, c, code, &entries, tails)?,
            }
        }
        Ok(())
    }
}

/// The last block of each code appended to lately, as the writer's transactions left it: the
/// next append to a code extends its block from here, without reading and decoding it again.
///
/// A writer calls [`Tails::begin`] as each write transaction starts and [`Tails::committed`] once
/// it has committed: what a transaction that never committed left here is dropped when the next
/// begins, so the blocks kept are always the file's.
pub(crate) struct Tails {
    blocks: HashMap<Code, Tail>,
    /// The most codes kept, about a kilobyte each: beyond it, a code appended to is kept in
    /// place of another.
    most: usize,
    /// A transaction began and has not committed (yet).
    open: bool,
}

impl Default for Tails {
    fn default() -> Self {
        Tails {
            blocks: HashMap::new(),
            most: 1024,
            open: false,
        }
    }
}

/// A code's last block: its key's first, its bytes, how many entries it holds, the last one.
struct Tail {
    first: u64,
    bytes: Vec<u8>,
    count: usize,
    last: Entry,
}

impl Tails {
    /// A write transaction starts; the blocks a transaction begun before it left, if that one
    /// did not commit, are dropped.
    pub(crate) fn begin(&mut self) {
        if self.open {
            self.blocks.clear();
        }
        self.open = true;
    }

    /// The transaction begun last has committed (or was let go having appended nothing): the
    /// blocks it left are the file's.
    pub(crate) fn committed(&mut self) {
        self.open = false;
    }

    fn take(&mut self, code: Code) -> Option<Tail> {
        self.blocks.remove(&code)
    }

    fn keep(&mut self, code: Code, tail: Tail) {
        if self.blocks.len() >= self.most && !self.blocks.contains_key(&code) {
            if let Some(other) = self.blocks.keys().next().copied() {
                self.blocks.remove(&other);
            }
        }
        self.blocks.insert(code, tail);
    }
}

/// `code`'s last block in `table`, read and decoded.
fn stored_tail<C: CodeKey>(
    table: &redb::Table<'_, (C, u64), &'static [u8]>,
    raw: C,
    code: Code,
) -> Result<Option<Tail>> {
    let Some(row) = table.range((raw, 0)..=(raw, u64::MAX))?.next_back() else {
        return Ok(None);
    };
    let (key, value) = row?;
    let first = key.value().1;
    let mut bytes = Vec::with_capacity(BLOCK_BYTES);
    bytes.extend_from_slice(value.value());
    let mut decoded = Vec::with_capacity(BLOCK_ENTRIES);
    decode_block(code, first, &bytes, &mut decoded)?;
    Ok(decoded.last().map(|&last| Tail {
        first,
        bytes,
        count: decoded.len(),
        last,
    }))
}

/// Appends `entries` (in order) to `code`'s blocks in `table`, and keeps its new last block in
/// `tails`.
fn append_run<C: CodeKey>(
    table: &mut redb::Table<'_, (C, u64), &'static [u8]>,
    raw: C,
    code: Code,
    entries: &[Entry],
    tails: &mut Tails,
) -> Result<()> {
    let index = code.index();
    let tail = match tails.take(code) {
        Some(tail) => Some(tail),
        None => stored_tail(table, raw, code)?,
    };
    let (mut first, mut block, mut count, mut previous) = match tail {
        Some(tail) => (tail.first, tail.bytes, tail.count, Some(tail.last)),
        None => (0, Vec::with_capacity(BLOCK_BYTES), 0, None),
    };
    let mut entries = entries.iter().peekable();
    while let Some(entry) = entries.next() {
        if let Some(previous) = &previous {
            if entry.order(index) <= previous.order(index) || entry.position <= previous.position {
                return Err(Error::Corrupt {
                    position: entry.position,
                    reason: format!(
                        "its index entry would not come after the last of {} (at position {}, sequence {}): the index does not agree with the log",
                        code.describe(first),
                        previous.position,
                        previous.sequence
                    ),
                });
            }
        }
        let mark = block.len();
        if previous.is_some() {
            encode_entry(&mut block, index, previous.as_ref(), entry);
        }
        let full = count == BLOCK_ENTRIES || block.len() > BLOCK_BYTES;
        if previous.is_none() || full {
            if full {
                block.truncate(mark);
                table.insert((raw, first), block.as_slice())?;
            }
            block.clear();
            block.push(0);
            first = entry.order(index);
            count = 0;
            encode_entry(&mut block, index, None, entry);
        }
        count += 1;
        if let Some(slot) = block.first_mut() {
            *slot = u8::try_from(count).unwrap_or(u8::MAX);
        }
        previous = Some(*entry);
        if entries.peek().is_none() {
            table.insert((raw, first), block.as_slice())?;
        }
    }
    if let Some(last) = previous {
        let tail = Tail {
            first,
            bytes: block,
            count,
            last,
        };
        tails.keep(code, tail);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use redb::backends::InMemoryBackend;
    use redb::{ReadableDatabase, TableDefinition};

    use super::*;
    use crate::engine::postings::layout::Index;
    use crate::engine::postings::read::{
        all_entries, entries, entry_at, first_sequence_at_or_after, last_sequence_at_or_before,
        Lookup,
    };

    fn entry(position: u64, sequence: u64, micros: i64, type_code: u32, actor_code: u32) -> Entry {
        Entry {
            position,
            sequence,
            facts: (micros, type_code, actor_code, 2),
        }
    }

    /// A store of just the four index tables, in memory.
    fn database() -> redb::Database {
        redb::Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .unwrap()
    }

    /// Appends `new` in a transaction of its own, reading each code's last block from the table.
    fn append(db: &redb::Database, new: &[(Code, Entry)]) -> Result<()> {
        append_keeping(db, new, &mut Tails::default())
    }

    /// Appends `new` in a transaction of its own, as the store's writer does, with `tails`.
    fn append_keeping(db: &redb::Database, new: &[(Code, Entry)], tails: &mut Tails) -> Result<()> {
        let txn = db.begin_write()?;
        tails.begin();
        {
            let mut writer = Writer::new(&txn);
            writer.append(&mut new.to_vec(), tails)?;
        }
        txn.commit()?;
        tails.committed();
        Ok(())
    }

    /// Every row of `table`, keys and bytes.
    fn rows<C: CodeKey>(
        db: &redb::Database,
        table: TableDefinition<(C, u64), &'static [u8]>,
    ) -> Vec<((C, u64), Vec<u8>)> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(table).unwrap();
        table
            .iter()
            .unwrap()
            .map(|row| {
                let (key, value) = row.unwrap();
                (key.value(), value.value().to_vec())
            })
            .collect()
    }

    #[test]
    fn a_transaction_that_does_not_commit_leaves_no_tail_behind() {
        let db = database();
        let code = Code::Type(3);
        let mut tails = Tails::default();
        let first: Vec<_> = (1..=3).map(|p| (code, entry(p, 0, 10, 3, 1))).collect();
        append_keeping(&db, &first, &mut tails).unwrap();
        // Appended, then never committed: the file does not have 4 and 5.
        let txn = db.begin_write().unwrap();
        tails.begin();
        {
            let mut writer = Writer::new(&txn);
            let mut lost: Vec<_> = (4..=5).map(|p| (code, entry(p, 0, 20, 3, 1))).collect();
            writer.append(&mut lost, &mut tails).unwrap();
        }
        txn.abort().unwrap();
        let then: Vec<_> = (4..=6).map(|p| (code, entry(p, 0, 30, 3, 9))).collect();
        append_keeping(&db, &then, &mut tails).unwrap();
        let expected: Vec<Entry> = first.iter().chain(&then).map(|(_, e)| *e).collect();
        assert_eq!(read(&db, code, 0, u64::MAX, true), expected);
    }

    fn read(db: &redb::Database, code: Code, low: u64, high: u64, forward: bool) -> Vec<Entry> {
        let txn = db.begin_read().unwrap();
        entries(&txn, code, low, high, forward)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn appends_fill_blocks_and_windows_start_and_end_mid_block() {
        let db = database();
        let code = Code::Intent(7);
        let all: Vec<Entry> = (1..=200u64)
            .map(|s| entry(s * 2, s, s.cast_signed() * 10, 1, 2))
            .collect();
        // One, then a run that fills the first block and starts more, then singles.
        append(&db, &[(code, all[0])]).unwrap();
        let run: Vec<_> = all[1..150].iter().map(|e| (code, *e)).collect();
        append(&db, &run).unwrap();
        for e in &all[150..] {
            append(&db, &[(code, *e)]).unwrap();
        }
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(INTENT_POSTINGS).unwrap();
        let sizes: Vec<u8> = table
            .iter()
            .unwrap()
            .map(|row| row.unwrap().1.value()[0])
            .collect();
        assert_eq!(sizes, [64, 64, 64, 8], "full blocks but the last");
        assert_eq!(read(&db, code, 0, u64::MAX, true), all);
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(read(&db, code, 0, u64::MAX, false), reversed);
        for (low, high) in [
            (5, 70),
            (64, 65),
            (65, 128),
            (1, 1),
            (200, 200),
            (100, 99),
            (201, 300),
        ] {
            let window: Vec<Entry> = all
                .iter()
                .copied()
                .filter(|e| e.sequence >= low && e.sequence <= high)
                .collect();
            assert_eq!(read(&db, code, low, high, true), window, "{low}..={high}");
            let mut back = window.clone();
            back.reverse();
            assert_eq!(
                read(&db, code, low, high, false),
                back,
                "{low}..={high} reversed"
            );
        }
        assert_eq!(entry_at(&txn, code, 65).unwrap(), Some(all[64]));
        assert_eq!(entry_at(&txn, code, 201).unwrap(), None);
        assert_eq!(first_sequence_at_or_after(&txn, 7, 200, 131).unwrap(), 66);
        assert_eq!(last_sequence_at_or_before(&txn, 7, 200, 131).unwrap(), 65);
        let mut lookup = Lookup::default();
        for e in &all {
            assert_eq!(lookup.find(&txn, code, e.sequence).unwrap(), Some(*e));
        }
        assert_eq!(lookup.find(&txn, Code::Intent(8), 1).unwrap(), None);
    }

    #[test]
    fn an_entry_that_would_not_come_last_is_refused() {
        let db = database();
        let code = Code::Type(1);
        append(&db, &[(code, entry(10, 0, 0, 1, 1))]).unwrap();
        for position in [10, 9] {
            match append(&db, &[(code, entry(position, 0, 0, 1, 1))]) {
                Err(Error::Corrupt { reason, .. }) => {
                    assert!(reason.contains("would not come after"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(read(&db, code, 0, u64::MAX, true), [entry(10, 0, 0, 1, 1)]);
    }

    #[test]
    fn far_apart_entries_start_blocks_before_they_pass_the_byte_cap() {
        let db = database();
        let code = Code::Trace(1);
        let all: Vec<Entry> = (0..300u64)
            .map(|i| entry(1 + (i << 40), 0, i.cast_signed() << 50, u32::MAX, u32::MAX))
            .collect();
        let run: Vec<_> = all.iter().map(|e| (code, *e)).collect();
        append(&db, &run).unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TRACE_POSTINGS).unwrap();
        for row in table.iter().unwrap() {
            assert!(row.unwrap().1.value().len() <= BLOCK_BYTES);
        }
        assert_eq!(read(&db, code, 0, u64::MAX, true), all);
    }

    proptest! {
        /// Whatever runs of entries are appended to a few codes, in however many commits, each
        /// code's window reads as a filter of a plain list, in both directions; and blocks
        /// extended from kept tails are the blocks extended from the table.
        #[test]
        fn entries_read_as_a_list_does(
            steps in prop::collection::vec((0u32..3, 1u64..2_000, -5_000i64..5_000, 1usize..40), 1..20),
            low in 0u64..60_000,
            span in 0u64..60_000,
        ) {
            let db = database();
            // The same appends through kept tails, of at most two of the three codes.
            let kept = database();
            let mut tails = Tails { most: 2, ..Tails::default() };
            let mut model: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
            let mut position = 0u64;
            let mut micros = 0i64;
            for (code, gap, drift, count) in steps {
                let mut commit = Vec::new();
                for _ in 0..count {
                    position += gap;
                    micros += drift;
                    let e = entry(position, 0, micros, 5, code);
                    model.entry(code).or_default().push(e);
                    commit.push((Code::Actor(code), e));
                }
                append(&db, &commit).unwrap();
                append_keeping(&kept, &commit, &mut tails).unwrap();
            }
            prop_assert_eq!(rows(&kept, ACTOR_POSTINGS), rows(&db, ACTOR_POSTINGS));
            let high = low.saturating_add(span);
            for (code, list) in &model {
                let window: Vec<Entry> = list
                    .iter()
                    .copied()
                    .filter(|e| e.position >= low && e.position <= high)
                    .collect();
                prop_assert_eq!(&read(&db, Code::Actor(*code), low, high, true), &window);
                let mut back = window.clone();
                back.reverse();
                prop_assert_eq!(&read(&db, Code::Actor(*code), low, high, false), &back);
            }
            let txn = db.begin_read().unwrap();
            let all: Vec<(Code, Entry)> = all_entries(&txn, Index::Actor)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
            let expected: Vec<(Code, Entry)> = model
                .iter()
                .flat_map(|(code, list)| list.iter().map(|e| (Code::Actor(*code), *e)))
                .collect();
            prop_assert_eq!(all, expected);
        }
    }
}
