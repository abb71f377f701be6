//! What the writer keeps between transactions: the next position, id and codes, the committed
//! names, the transaction its latest groups wait in, whether it has failed, the index blocks last
//! written, and the write-ahead log's slot, which hands a group's records to the log as one
//! entry.
//!
//! Uses the planned rows (for the log's records), the file format, the postings' tails, the
//! write-ahead log and the model.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redb::ReadableTable;

use crate::engine::format::{self, NameKind, BY_ID, CODES, EVENTS, INTENT_NAMES};
use crate::engine::postings;
use crate::engine::wal::Wal;
use crate::engine::writer::rows::{Plan, Step};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Position;

/// What survives between transactions; reloaded from the file after a failed commit.
pub(super) struct WriterState {
    pub(super) next_position: Position,
    /// The largest id stored, as a number (0 when none): an id above it is not stored yet, so
    /// planning it needs no look-up in `by_id`. Ids oidb makes (UUID v7) and most given ones grow.
    pub(super) last_id: u128,
    pub(super) next_intent_code: u64,
    pub(super) next_name_code: HashMap<NameKind, u32>,
    pub(super) names: Names,
    /// The write transaction the groups written since the last commit wait in, and when the
    /// first of them was written: it commits on [`publish`](super::commit::publish).
    pub(super) open_txn: Option<redb::WriteTransaction>,
    pub(super) open_since: Option<Instant>,
    pub(super) failed: Option<String>,
    /// The store is closed and its write-ahead log gone: nothing more is written.
    pub(super) closed: bool,
    /// How many requests the last commit answered: most of their callers call again at once.
    pub(super) last_group: usize,
    /// How long the last commit took.
    pub(super) last_commit: Duration,
    /// The write-ahead log, when commits are made durable through it.
    pub(super) wal: Option<WalSlot>,
    /// The groups committed through the log so far.
    pub(super) logged_groups: u64,
    /// The last block of each index code appended to lately, as committed.
    pub(super) tails: postings::Tails,
}

impl WriterState {
    pub(super) fn load(db: &redb::Database) -> Result<WriterState> {
        let txn = db.begin_write()?;
        let state = {
            let events = txn.open_table(EVENTS)?;
            let last_id = txn.open_table(BY_ID)?.last()?.map_or(0, |(k, _)| k.value());
            let intent_names = txn.open_table(INTENT_NAMES)?;
            let codes = txn.open_table(CODES)?;
            let last_intent_code = intent_names.last()?.map_or(0, |(k, _)| k.value());
            let mut next_name_code = HashMap::new();
            for kind in [NameKind::EventType, NameKind::Actor] {
                let last = codes
                    .range((kind as u8, 0)..=(kind as u8, u32::MAX))?
                    .next_back()
                    .transpose()?
                    .map_or(0, |(k, _)| k.value().1);
                next_name_code.insert(kind, last + 1);
            }
            WriterState {
                next_position: format::last_position(&events)? + 1,
                last_id,
                next_intent_code: last_intent_code + 1,
                next_name_code,
                names: Names::default(),
                open_txn: None,
                open_since: None,
                failed: None,
                closed: false,
                last_group: 0,
                last_commit: Duration::ZERO,
                wal: None,
                logged_groups: 0,
                tails: postings::Tails::default(),
            }
        };
        txn.abort()?;
        Ok(state)
    }
}

/// Committed codes of event types and actors, by name: a cache of the `names` table.
#[derive(Default)]
pub(super) struct Names {
    event_types: HashMap<String, u32>,
    actors: HashMap<String, u32>,
}

impl Names {
    pub(super) fn of(&mut self, kind: NameKind) -> &mut HashMap<String, u32> {
        match kind {
            NameKind::EventType => &mut self.event_types,
            NameKind::Actor => &mut self.actors,
        }
    }

    pub(super) fn get(&self, kind: NameKind, name: &str) -> Option<u32> {
        match kind {
            NameKind::EventType => self.event_types.get(name),
            NameKind::Actor => self.actors.get(name),
        }
        .copied()
    }
}

/// The write-ahead log of a store in a file under
/// [`Durability::Immediate`](crate::engine::writer::interface::Durability::Immediate), created by
/// the first commit that needs it.
pub(super) struct WalSlot {
    pub(super) path: PathBuf,
    pub(super) store_id: String,
    pub(super) open: Option<Wal>,
    /// An entry went to the log whose redb commit has not succeeded (yet): if that commit fails,
    /// the log and the file disagree until the store is reopened and the log replayed.
    pub(super) unconfirmed: bool,
    /// The log had no room for the group being written: it commits to the file durably.
    pub(super) full: bool,
    /// Records of the group being written that are not in the log yet, and the position of the
    /// first: a group's requests go to the log as one entry, so one sync covers them.
    pub(super) unlogged: Vec<Vec<u8>>,
    pub(super) unlogged_from: Option<Position>,
}

impl WalSlot {
    pub(super) fn get(&mut self) -> Result<&mut Wal> {
        if self.open.is_none() {
            self.open = Some(Wal::create(&self.path, &self.store_id)?);
        }
        self.open
            .as_mut()
            .ok_or_else(|| Error::NeedsReopen("the write-ahead log could not be created".into()))
    }

    /// Keeps the records `planned` adds for the group's entry in the log; [`WalSlot::write`]
    /// writes them.
    pub(super) fn keep(&mut self, planned: &Plan) {
        if self.full {
            return;
        }
        for step in &planned.events {
            if let Step::New(row) = step {
                self.unlogged_from.get_or_insert(row.event.position);
                self.unlogged.push(row.record.clone());
            }
        }
    }

    /// Writes the records kept so far and those `last` adds as one entry, before `last`'s rows
    /// go into the transaction, so that the disk syncs them while those rows are applied and the
    /// group commits. When the log has no room, the group is marked to commit to the file
    /// durably instead.
    pub(super) fn write(&mut self, last: Option<&Plan>) -> Result<()> {
        let kept = std::mem::take(&mut self.unlogged);
        let mut first = self.unlogged_from.take();
        let mut records: Vec<&[u8]> = kept.iter().map(Vec::as_slice).collect();
        for step in last.map_or(&[][..], |planned| planned.events.as_slice()) {
            if let Step::New(row) = step {
                first.get_or_insert(row.event.position);
                records.push(row.record.as_slice());
            }
        }
        let Some(first) = first else { return Ok(()) };
        if self.full {
            return Ok(());
        }
        if !self.get()?.has_room_for(&records) {
            self.full = true;
            return Ok(());
        }
        self.unconfirmed = true;
        self.get()?.write(first, &records)?;
        Ok(())
    }

    /// Forgets what was kept for a group that failed: none of it reached the log.
    pub(super) fn discard(&mut self) {
        self.unlogged.clear();
        self.unlogged_from = None;
    }
}
