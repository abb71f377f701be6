//! The store-only checks: every record's position, every index row against the record it
//! points at, every intent head against what its chain was seen to be.
//!
//! Uses the engine's tables and postings, the proofs' hash arithmetic and the model.

use std::collections::HashMap;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};
use uuid::Uuid;

use super::{ProblemKind, StoreProblem, VerifyProgress, VerifyStage, PROGRESS_EVERY};
use crate::engine::format::{
    self, Facts, IntentHead, NameKind, BY_ID, BY_TIME, EVENTS, INTENT_NAMES, NAMES,
};
use crate::engine::postings::{self, Code, Index};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::Position;
use crate::model::event::Sequence;
use crate::model::time;

/// What each intent's events were seen to be, to compare with its head.
#[derive(Default)]
pub(super) struct Seen {
    count: u64,
    first_position: Position,
    last_position: Position,
    last_sequence: Sequence,
}

/// The tables the store-only checks read, in one read transaction.
pub(super) struct Tables {
    events: ReadOnlyTable<u64, &'static [u8]>,
    by_id: ReadOnlyTable<u128, u64>,
    by_time: ReadOnlyTable<(i64, u64), Facts>,
    names: ReadOnlyTable<(u8, &'static str), u32>,
}

impl Tables {
    pub(super) fn open(txn: &ReadTransaction) -> Result<Tables> {
        Ok(Tables {
            events: txn.open_table(EVENTS)?,
            by_id: txn.open_table(BY_ID)?,
            by_time: txn.open_table(BY_TIME)?,
            names: txn.open_table(NAMES)?,
        })
    }

    fn record_at(&self, position: Position) -> Result<Option<Event>> {
        Ok(match self.events.get(position)? {
            Some(bytes) => format::decode_record(position, bytes.value()).ok(),
            None => None,
        })
    }
}

/// The store-only checks: what they have seen so far and what they found wrong.
pub(super) struct StoreScan<'t> {
    txn: &'t ReadTransaction,
    tables: Tables,
    lookup: postings::Lookup,
    heads: HashMap<String, IntentHead>,
    names: HashMap<(NameKind, String), Option<u32>>,
    seen: HashMap<String, Seen>,
    traced: u64,
    pub(super) records_read: u64,
    pub(super) last_position: Position,
    pub(super) problems: Vec<StoreProblem>,
}

impl<'t> StoreScan<'t> {
    pub(super) fn open(
        txn: &'t ReadTransaction,
        heads: Vec<(String, std::result::Result<IntentHead, String>)>,
    ) -> Result<StoreScan<'t>> {
        let mut problems = Vec::new();
        let intent_names = txn.open_table(INTENT_NAMES)?;
        let mut decoded = HashMap::with_capacity(heads.len());
        for (intent_id, head) in heads {
            match head {
                Ok(head) => {
                    let named = intent_names.get(head.code)?.map(|g| g.value().to_owned());
                    if named.as_deref() != Some(intent_id.as_str()) {
                        problems.push(StoreProblem {
                            kind: ProblemKind::HeadDisagrees,
                            table: "intent_names".into(),
                            position: None,
                            message: format!(
                                "intent {intent_id:?} has code {}, but intent_names maps that code to {named:?}",
                                head.code
                            ),
                        });
                    }
                    decoded.insert(intent_id, head);
                }
                Err(reason) => problems.push(StoreProblem {
                    kind: ProblemKind::HeadDisagrees,
                    table: "intents".into(),
                    position: None,
                    message: reason,
                }),
            }
        }
        Ok(StoreScan {
            txn,
            tables: Tables::open(txn)?,
            lookup: postings::Lookup::default(),
            heads: decoded,
            names: HashMap::new(),
            seen: HashMap::new(),
            traced: 0,
            records_read: 0,
            last_position: 0,
            problems,
        })
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        table: &str,
        position: Option<Position>,
        message: String,
    ) {
        self.problems.push(StoreProblem {
            kind,
            table: table.to_owned(),
            position,
            message,
        });
    }

    fn name_code(&mut self, kind: NameKind, name: &str) -> Result<Option<u32>> {
        if let Some(code) = self.names.get(&(kind, name.to_owned())) {
            return Ok(*code);
        }
        let code = self
            .tables
            .names
            .get((kind as u8, name))?
            .map(|g| g.value());
        self.names.insert((kind, name.to_owned()), code);
        Ok(code)
    }

    /// Reads every record in position order: contiguous positions, decodable records, and each
    /// record's row in every index.
    pub(super) fn records(&mut self, progress: &mut impl FnMut(VerifyProgress)) -> Result<()> {
        let last = format::last_position(&self.tables.events)?;
        self.last_position = last;
        let mut expected: Position = 1;
        let mut from: Position = 0;
        loop {
            // A page of records at a time, so checking one does not hold the table borrowed.
            let mut page: Vec<(Position, Result<Event>)> = Vec::with_capacity(256);
            for row in self.tables.events.range(from..)?.take(256) {
                let (key, value) = row?;
                let position = key.value();
                page.push((position, format::decode_record(position, value.value())));
            }
            let Some((end, _)) = page.last() else { break };
            from = end + 1;
            for (position, decoded) in page {
                if position != expected {
                    let gap = if position == expected + 1 {
                        format!("position {expected} holds no record")
                    } else {
                        format!("positions {expected} to {} hold no record", position - 1)
                    };
                    self.problem(
                        ProblemKind::PositionGap,
                        "events",
                        Some(expected),
                        format!("{gap}; positions must run from 1 without holes"),
                    );
                }
                expected = position + 1;
                self.records_read += 1;
                match decoded {
                    Ok(event) => self.check_rows(&event)?,
                    Err(e) => self.problem(
                        ProblemKind::DamagedRecord,
                        "events",
                        Some(position),
                        e.to_string(),
                    ),
                }
                if self.records_read.is_multiple_of(PROGRESS_EVERY) {
                    progress(VerifyProgress {
                        stage: VerifyStage::Records,
                        done: self.records_read,
                        total: last,
                    });
                }
            }
        }
        progress(VerifyProgress {
            stage: VerifyStage::Records,
            done: self.records_read,
            total: last,
        });
        Ok(())
    }

    /// Checks that each index holds the row `event` should have, with the facts it should carry.
    fn check_rows(&mut self, event: &Event) -> Result<()> {
        let position = event.position;
        let type_code = self.name_code(NameKind::EventType, event.event_type.as_str())?;
        let actor_code = self.name_code(NameKind::Actor, &event.actor)?;
        let (Some(type_code), Some(actor_code)) = (type_code, actor_code) else {
            self.problem(
                ProblemKind::MissingName,
                "names",
                Some(position),
                format!(
                    "event {} has type {:?} and actor {:?}, which are not both in the name table",
                    event.id,
                    event.event_type.as_str(),
                    event.actor
                ),
            );
            return Ok(());
        };
        let micros = time::to_micros(event.created_at);
        let facts: Facts = (micros, type_code, actor_code, event.level.code());

        let row = self
            .tables
            .by_id
            .get(event.id.as_u128())?
            .map(|g| (g.value(), facts));
        self.expect_row("by_id", position, row, facts, || {
            format!("event id {}", event.id)
        });
        match self.heads.get(&event.intent_id).map(|h| h.code) {
            Some(code) => {
                self.expect_entry(Code::Intent(code), event.sequence, position, facts, || {
                    format!("intent {:?} sequence {}", event.intent_id, event.sequence)
                })?;
            }
            None => self.problem(
                ProblemKind::HeadDisagrees,
                "intents",
                Some(position),
                format!(
                    "event {} belongs to intent {:?}, which has no head",
                    event.id, event.intent_id
                ),
            ),
        }
        self.expect_entry(Code::Type(type_code), position, position, facts, || {
            format!("type {:?}", event.event_type.as_str())
        })?;
        self.expect_entry(Code::Actor(actor_code), position, position, facts, || {
            format!("actor {:?}", event.actor)
        })?;
        let row = self
            .tables
            .by_time
            .get((micros, position))?
            .map(|g| (position, g.value()));
        self.expect_row("by_time", position, row, facts, || {
            time::format(event.created_at)
        });
        if let Some(trace) = event.trace_id.as_deref().and_then(format::trace_code) {
            self.traced += 1;
            self.expect_entry(Code::Trace(trace), position, position, facts, || {
                format!("trace {trace:032x}")
            })?;
        }

        let seen = self.seen.entry(event.intent_id.clone()).or_default();
        seen.count += 1;
        if seen.first_position == 0 {
            seen.first_position = position;
        }
        seen.last_position = position;
        seen.last_sequence = seen.last_sequence.max(event.sequence);
        Ok(())
    }

    /// Looks up the entry of `code` at `order` (the event's sequence in its intent, else its
    /// position) and compares it with the record; a damaged block is a problem of its table.
    fn expect_entry(
        &mut self,
        code: Code,
        order: u64,
        position: Position,
        facts: Facts,
        key: impl FnOnce() -> String,
    ) -> Result<()> {
        let table = code.index().table();
        match self.lookup.find(self.txn, code, order) {
            Ok(entry) => {
                let row = entry.map(|e| (e.position, e.facts));
                self.expect_row(table, position, row, facts, key);
                Ok(())
            }
            Err(e @ crate::model::error::Error::Corrupt { .. }) => {
                self.problem(
                    ProblemKind::IndexRowDisagrees,
                    table,
                    Some(position),
                    e.to_string(),
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Compares an index row (the position it names and the facts it carries) with the record.
    fn expect_row(
        &mut self,
        table: &str,
        position: Position,
        row: Option<(Position, Facts)>,
        facts: Facts,
        key: impl FnOnce() -> String,
    ) {
        let message = match row {
            None => (
                ProblemKind::MissingIndexRow,
                format!("{table} has no row for {} (the record at position {position})", key()),
            ),
            Some((at, _)) if at != position => (
                ProblemKind::IndexRowDisagrees,
                format!(
                    "{table} maps {} to position {at}, but the record is at position {position}",
                    key()
                ),
            ),
            Some((_, carried)) if carried != facts => (
                ProblemKind::IndexRowDisagrees,
                format!(
                    "{table}'s row for {} carries {carried:?} (time, type, actor, level), but the record at position {position} has {facts:?}",
                    key()
                ),
            ),
            Some(_) => return,
        };
        self.problem(message.0, table, Some(position), message.1);
    }

    /// Every record's rows were found above; an index with more rows than that holds rows that
    /// point at nothing (or at a record that does not agree). Only then is it read row by row.
    pub(super) fn indexes(&mut self, progress: &mut impl FnMut(VerifyProgress)) -> Result<()> {
        let mut step = |done: u64| {
            progress(VerifyProgress {
                stage: VerifyStage::Indexes,
                done,
                total: 6,
            });
        };
        self.extra_by_id()?;
        step(1);
        self.extra_entries(Index::Intent)?;
        step(2);
        self.extra_entries(Index::Type)?;
        step(3);
        self.extra_entries(Index::Actor)?;
        step(4);
        self.extra_by_time()?;
        step(5);
        self.extra_entries(Index::Trace)?;
        step(6);
        Ok(())
    }

    fn extra_by_id(&mut self) -> Result<()> {
        if self.tables.by_id.len()? <= self.records_read {
            return Ok(());
        }
        let rows: Vec<(u128, u64)> = self
            .tables
            .by_id
            .iter()?
            .map(|r| r.map(|(k, v)| (k.value(), v.value())))
            .collect::<Result<_, _>>()?;
        for (id, position) in rows {
            let agrees = self
                .tables
                .record_at(position)?
                .is_some_and(|e| e.id.as_u128() == id);
            self.extra_row(agrees, "by_id", position, || {
                format!("event id {}", Uuid::from_u128(id))
            });
        }
        Ok(())
    }

    /// Reads every block of `index` (each must decode, and one code's blocks must not overlap)
    /// and counts its entries; when there are more than the records gave it, checks each entry
    /// against the record at its position.
    fn extra_entries(&mut self, index: Index) -> Result<()> {
        let table = index.table();
        let expected = if index == Index::Trace {
            self.traced
        } else {
            self.records_read
        };
        let mut count: u64 = 0;
        for entry in postings::all_entries(self.txn, index)? {
            match entry {
                Ok(_) => count += 1,
                Err(e @ crate::model::error::Error::Corrupt { .. }) => {
                    let position = match &e {
                        crate::model::error::Error::Corrupt { position, .. } => Some(*position),
                        _ => None,
                    };
                    self.problem(
                        ProblemKind::IndexRowDisagrees,
                        table,
                        position,
                        e.to_string(),
                    );
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if count <= expected {
            return Ok(());
        }
        let entries: Vec<(Code, postings::Entry)> =
            postings::all_entries(self.txn, index)?.collect::<Result<_>>()?;
        let intents: HashMap<u64, String> = self
            .heads
            .iter()
            .map(|(i, h)| (h.code, i.clone()))
            .collect();
        for (code, entry) in entries {
            let position = entry.position;
            let record = self.tables.record_at(position)?;
            let agrees = match (code, record) {
                (_, None) => false,
                (Code::Intent(c), Some(e)) => {
                    intents.get(&c) == Some(&e.intent_id) && e.sequence == entry.sequence
                }
                (Code::Type(c), Some(e)) => {
                    self.name_code(NameKind::EventType, e.event_type.as_str())? == Some(c)
                }
                (Code::Actor(c), Some(e)) => self.name_code(NameKind::Actor, &e.actor)? == Some(c),
                (Code::Trace(c), Some(e)) => {
                    e.trace_id.as_deref().and_then(format::trace_code) == Some(c)
                }
            };
            self.extra_row(agrees, table, position, || match code {
                Code::Intent(c) => format!("intent code {c} sequence {}", entry.sequence),
                Code::Type(c) | Code::Actor(c) => format!("code {c}"),
                Code::Trace(c) => format!("trace {c:032x}"),
            });
        }
        Ok(())
    }

    fn extra_by_time(&mut self) -> Result<()> {
        if self.tables.by_time.len()? <= self.records_read {
            return Ok(());
        }
        let rows: Vec<(i64, u64)> = self
            .tables
            .by_time
            .iter()?
            .map(|r| r.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for (micros, position) in rows {
            let agrees = self
                .tables
                .record_at(position)?
                .is_some_and(|e| time::to_micros(e.created_at) == micros);
            self.extra_row(agrees, "by_time", position, || format!("time {micros}µs"));
        }
        Ok(())
    }

    fn extra_row(
        &mut self,
        agrees: bool,
        table: &str,
        position: Position,
        key: impl FnOnce() -> String,
    ) {
        if !agrees {
            self.problem(
                ProblemKind::IndexRowDisagrees,
                table,
                Some(position),
                format!(
                    "{table} has a row for {} pointing at position {position}, whose record does not agree with it or is missing",
                    key()
                ),
            );
        }
    }

    /// Compares each head with the events seen for its intent.
    pub(super) fn heads(&mut self) {
        let mut intents: Vec<&String> = self.heads.keys().collect();
        intents.sort();
        let mut found = Vec::new();
        for intent_id in intents {
            let Some(head) = self.heads.get(intent_id) else {
                continue;
            };
            let message = match self.seen.get(intent_id) {
                Some(seen) => {
                    let agrees = head.first_position == seen.first_position
                        && head.last_position == seen.last_position
                        && head.last_sequence == seen.last_sequence;
                    (!agrees).then(|| {
                        format!(
                            "intent {intent_id:?}: its head says positions {} to {} and last sequence {}, but its {} events sit at positions {} to {} and end at sequence {}",
                            head.first_position,
                            head.last_position,
                            head.last_sequence,
                            seen.count,
                            seen.first_position,
                            seen.last_position,
                            seen.last_sequence
                        )
                    })
                }
                None => Some(format!(
                    "intent {intent_id:?}: its head says it has {} events, but the log holds none",
                    head.last_sequence
                )),
            };
            found.extend(message);
        }
        for message in found {
            self.problem(ProblemKind::HeadDisagrees, "intents", None, message);
        }
    }
}
