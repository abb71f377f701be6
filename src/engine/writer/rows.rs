//! What a request is planned into and where it goes: its steps (stored already, or a new row), the
//! plan (rows, intent heads, new names and codes, the ledger's part), and every table an append
//! touches, which writes a plan's rows, in key order, through cursors where runs are long.
//!
//! Uses the file format, the postings, the cost ledger and the model; nothing else of the writer.

use std::collections::HashMap;
use std::ops::Bound;

use redb::WriteTransaction;

use crate::engine::format::{
    Facts, IntentHead, LazyTable, NameKind, BY_ID, BY_TIME, CODES, EVENTS, INTENTS, INTENT_NAMES,
    NAMES,
};
use crate::engine::ledger::{LedgerPlan, LedgerTables};
use crate::engine::postings;
use crate::model::error::Result;
use crate::model::event::Event;

/// One event of a request, planned: either already stored, or a new row ready to write.
pub(super) enum Step {
    Existing(Box<Event>),
    New(Box<Row>),
}

pub(super) struct Row {
    pub(super) event: Event,
    pub(super) record: Vec<u8>,
    pub(super) facts: Facts,
    pub(super) intent_code: u64,
    pub(super) trace_code: Option<u128>,
}

/// A request checked against the store and turned into rows; nothing is written until it all checks.
pub(super) struct Plan {
    pub(super) events: Vec<Step>,
    pub(super) heads: HashMap<String, IntentHead>,
    pub(super) new_intents: Vec<(u64, String)>,
    pub(super) new_names: Vec<(NameKind, String, u32)>,
    /// Names already stored that the writer's cache did not hold: it holds them once committed.
    pub(super) found_names: Vec<(NameKind, String, u32)>,
    pub(super) next_intent_code: u64,
    pub(super) next_name_code: HashMap<NameKind, u32>,
    /// What the request does to the cost ledger (costs, budgets), checked with it.
    pub(super) ledger: LedgerPlan,
}

impl Plan {
    pub(super) fn new_count(&self) -> u64 {
        self.events
            .iter()
            .filter(|s| matches!(s, Step::New(_)))
            .count() as u64
    }
}

/// Every table an append touches, in one write transaction. Those only rows are written to
/// open when first used: for a single append under the write-ahead log, after its entry is
/// written, while the disk syncs it.
pub(super) struct Tables<'txn> {
    pub(super) events: LazyTable<'txn, u64, &'static [u8]>,
    pub(super) by_id: redb::Table<'txn, u128, u64>,
    postings: postings::Writer<'txn>,
    by_time: LazyTable<'txn, (i64, u64), Facts>,
    pub(super) intents: redb::Table<'txn, &'static str, &'static [u8]>,
    intent_names: LazyTable<'txn, u64, &'static str>,
    pub(super) names: LazyTable<'txn, (u8, &'static str), u32>,
    codes: LazyTable<'txn, (u8, u32), &'static str>,
    pub(super) ledger: LedgerTables<'txn>,
    #[cfg(feature = "signatures")]
    pub(super) signing: crate::engine::signing::SigningTables<'txn>,
}

impl<'txn> Tables<'txn> {
    pub(super) fn open(txn: &'txn WriteTransaction) -> Result<Tables<'txn>> {
        Ok(Tables {
            events: LazyTable::new(txn, EVENTS),
            by_id: txn.open_table(BY_ID)?,
            postings: postings::Writer::new(txn),
            by_time: LazyTable::new(txn, BY_TIME),
            intents: txn.open_table(INTENTS)?,
            intent_names: LazyTable::new(txn, INTENT_NAMES),
            names: LazyTable::new(txn, NAMES),
            codes: LazyTable::new(txn, CODES),
            ledger: LedgerTables::open(txn),
            #[cfg(feature = "signatures")]
            signing: crate::engine::signing::SigningTables::open(txn)?,
        })
    }

    /// Writes a planned request's rows; `tails` are the index blocks the writer's last commits
    /// left (a failed transaction must not leave its own in them for the next).
    pub(super) fn apply(&mut self, planned: &Plan, tails: &mut postings::Tails) -> Result<()> {
        for (kind, name, code) in &planned.new_names {
            self.names
                .get()?
                .insert((*kind as u8, name.as_str()), *code)?;
            self.codes
                .get()?
                .insert((*kind as u8, *code), name.as_str())?;
        }
        for (code, intent_id) in &planned.new_intents {
            self.intent_names.get()?.insert(*code, intent_id.as_str())?;
        }
        for (intent_id, head) in &planned.heads {
            self.intents
                .insert(intent_id.as_str(), head.encode().as_slice())?;
        }
        let rows: Vec<&Row> = planned
            .events
            .iter()
            .filter_map(|step| match step {
                Step::New(row) => Some(&**row),
                Step::Existing(_) => None,
            })
            .collect();
        let mut records: Vec<_> = rows
            .iter()
            .map(|r| (r.event.position, r.record.as_slice()))
            .collect();
        insert_in_key_order(self.events.get()?, &mut records, |_| ())?;
        let mut ids: Vec<_> = rows
            .iter()
            .map(|r| (r.event.id.as_u128(), r.event.position))
            .collect();
        insert_in_key_order(&mut self.by_id, &mut ids, |_| ())?;
        let mut by_time: Vec<_> = rows
            .iter()
            .map(|r| ((r.facts.0, r.event.position), r.facts))
            .collect();
        insert_in_key_order(self.by_time.get()?, &mut by_time, |_| ())?;
        let mut entries = Vec::with_capacity(rows.len() * 4);
        for r in &rows {
            let entry = |sequence| postings::Entry {
                position: r.event.position,
                sequence,
                facts: r.facts,
            };
            entries.push((
                postings::Code::Intent(r.intent_code),
                entry(r.event.sequence),
            ));
            entries.push((postings::Code::Type(r.facts.1), entry(0)));
            entries.push((postings::Code::Actor(r.facts.2), entry(0)));
            if let Some(trace) = r.trace_code {
                entries.push((postings::Code::Trace(trace), entry(0)));
            }
        }
        self.postings.append(&mut entries, tails)?;
        planned.ledger.apply(&mut self.ledger)?;
        Ok(())
    }
}

/// Fewer rows than this, in one run, go in one insert at a time: positioning a cursor costs about
/// what it saves on so few.
const CURSOR_RUN: usize = 16;

/// Inserts rows whose keys are not in `table`, sorted into key order first.
///
/// Rows with the same `run_of` (the same intent, type or actor code; everything, for tables
/// whose keys mostly grow) most likely fall into the same gap between stored keys (the end of
/// the log, or of one code's range). A long enough run goes through one cursor there, which
/// buffers it and packs whole leaves, where one insert at a time would rebuild the leaf for every
/// row.
fn insert_in_key_order<'v, K, V, W, G: PartialEq>(
    table: &mut redb::Table<'_, K, V>,
    rows: &mut [(K, W)],
    run_of: impl Fn(&K) -> G,
) -> Result<()>
where
    K: redb::Key + Ord + Copy + 'static + for<'a> std::borrow::Borrow<K::SelfType<'a>>,
    V: redb::Value + 'static,
    W: Copy + std::borrow::Borrow<V::SelfType<'v>>,
{
    rows.sort_unstable_by_key(|row| row.0);
    for run in rows.chunk_by(|a, b| run_of(&a.0) == run_of(&b.0)) {
        if run.len() < CURSOR_RUN {
            for (key, value) in run {
                table.insert(*key, *value)?;
            }
        } else {
            insert_run(table, run)?;
        }
    }
    Ok(())
}

/// Inserts sorted rows through a cursor at the gap of the first, moving it to the gap of the next
/// row whenever a stored key lies in between. When a gap takes a single row, the rows do not
/// share gaps (ids chosen by callers, times out of order), and the rest go in one by one.
fn insert_run<'v, K, V, W>(table: &mut redb::Table<'_, K, V>, run: &[(K, W)]) -> Result<()>
where
    K: redb::Key + Ord + Copy + 'static + for<'a> std::borrow::Borrow<K::SelfType<'a>>,
    V: redb::Value + 'static,
    W: Copy + std::borrow::Borrow<V::SelfType<'v>>,
{
    let mut rows = run.iter().copied().peekable();
    while let Some((key, value)) = rows.next() {
        let mut gap = table.upper_bound_mut(Bound::Included(key))?;
        match gap.insert_before(key, value) {
            Ok(()) => {}
            Err(redb::CursorError::UnorderedKey) => {
                // Only a key already stored gets here; an insert replaces it, as it always did.
                gap.close()?;
                table.insert(key, value)?;
                continue;
            }
            Err(e) => return Err(redb::Error::from(e).into()),
        }
        let mut taken = 1;
        while let Some((key, value)) = rows.peek().copied() {
            match gap.insert_before(key, value) {
                Ok(()) => {
                    rows.next();
                    taken += 1;
                }
                Err(redb::CursorError::UnorderedKey) => break,
                Err(e) => return Err(redb::Error::from(e).into()),
            }
        }
        gap.close()?;
        if taken == 1 {
            for (key, value) in rows {
                table.insert(key, value)?;
            }
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use redb::{ReadableTable, TableDefinition};

    use super::insert_in_key_order;

    const TABLE: TableDefinition<(u32, u64), u64> = TableDefinition::new("rows");

    proptest! {
        /// Whatever the keys already stored and the order new rows come in, the table ends up
        /// holding exactly what inserting them one at a time would leave.
        #[test]
        fn cursor_inserts_leave_what_single_inserts_would(
            stored in proptest::collection::vec((0u32..6, 0u64..400, any::<u64>()), 0..300),
            new in proptest::collection::vec((0u32..6, 0u64..400, any::<u64>()), 0..300),
        ) {
            let db = redb::Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .unwrap();
            let mut model = BTreeMap::new();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(TABLE).unwrap();
                for (code, position, value) in &stored {
                    table.insert((*code, *position), *value).unwrap();
                    model.insert((*code, *position), *value);
                }
                // One row per key, as the writer has: a later duplicate in `new` is dropped.
                let mut rows: Vec<((u32, u64), u64)> = Vec::new();
                for (code, position, value) in &new {
                    if rows.iter().all(|(k, _)| *k != (*code, *position)) {
                        rows.push(((*code, *position), *value));
                        model.insert((*code, *position), *value);
                    }
                }
                insert_in_key_order(&mut table, &mut rows, |k| k.0).unwrap();
                let stored: Vec<((u32, u64), u64)> = table
                    .iter()
                    .unwrap()
                    .map(|row| {
                        let (k, v) = row.unwrap();
                        (k.value(), v.value())
                    })
                    .collect();
                let expected: Vec<((u32, u64), u64)> = model.into_iter().collect();
                prop_assert_eq!(stored, expected);
            }
            txn.commit().unwrap();
        }
    }
}
