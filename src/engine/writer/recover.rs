//! Opening a store that has a write-ahead log: the events it holds beyond the file's last durable
//! commit written again at their positions, their chains checked, committed durably, and the log
//! removed (or kept, when damaged with intact entries after the damage); then, under
//! [`Durability::Immediate`], the slot for the log the commits to come use.
//!
//! Uses the group's writing of planned requests, the planning, the planned rows, the writer's
//! state and interface, the validated events, the write-ahead log and the file format.

use std::path::PathBuf;

use crate::engine::format;
use crate::engine::wal;
use crate::engine::writer::commit::{commit_plan, Log, Written};
use crate::engine::writer::interface::{CommitListener, Durability, WriteConfig};
use crate::engine::writer::plan::plan;
use crate::engine::writer::rows::Tables;
use crate::engine::writer::state::{WalSlot, WriterState};
use crate::engine::writer::validate::Prepared;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event::Position;

/// Replays what the write-ahead log at `path` holds beyond the file's last durable commit
/// (what a crash took from the file), makes it durable, and removes the log; then, under
/// [`Durability::Immediate`], readies a new log for the commits to come.
pub(super) fn recover(
    db: &redb::Database,
    durability: Durability,
    state: &mut WriterState,
    listener: &dyn CommitListener,
    path: PathBuf,
) -> Result<()> {
    let store_id = format::store_id(db)?;
    if let Some(logged) = wal::read_all(&path, &store_id)? {
        let last = state.next_position - 1;
        let events = logged
            .records
            .into_iter()
            .filter(|(position, _)| *position > last)
            .map(|(position, record)| format::decode_record(position, &record))
            .collect::<Result<Vec<Event>>>()
            .map_err(|e| wal_refusal(&path, &format!("a record in it is damaged: {e}")))?;
        if let Some(first) = events.first() {
            if first.position != last + 1 {
                return Err(wal_refusal(
                    &path,
                    &format!(
                        "it goes on from position {}, but the store ends at {last}: it is not                              the log of this copy of the store",
                        first.position
                    ),
                ));
            }
            replay(db, state, listener, events)
                .map_err(|e| wal_refusal(&path, &format!("replaying it failed: {e}")))?;
        }
        let replayed_to = state.next_position - 1;
        if logged
            .intact_beyond
            .is_some_and(|first| first > replayed_to)
        {
            // An entry was damaged with intact ones after it, which may hold acknowledged
            // events: the store opens with what came before the damage, and the log is kept.
            wal::keep_damaged(&path)?;
        } else {
            std::fs::remove_file(&path).map_err(|e| Error::Wal {
                path: path.clone(),
                reason: format!("cannot remove it after replaying it: {e}"),
            })?;
        }
    }
    if durability == Durability::Immediate {
        state.wal = Some(WalSlot {
            path,
            store_id,
            open: None,
            unconfirmed: false,
            full: false,
            unlogged: Vec::new(),
            unlogged_from: None,
        });
    }
    Ok(())
}

/// Writes `events` (read back from the write-ahead log) again, at the positions they had,
/// checking each one's hash chain, and commits them durably.
fn replay(
    db: &redb::Database,
    state: &mut WriterState,
    listener: &dyn CommitListener,
    events: Vec<Event>,
) -> Result<()> {
    let config = WriteConfig {
        durability: Durability::Immediate,
        max_payload_bytes: usize::MAX,
        publish_at_once: true,
        wal: None,
    };
    let positions: Vec<Position> = events.iter().map(|e| e.position).collect();
    let prepared = events
        .into_iter()
        .map(|e| Prepared::new(NewEvent::restoring(e), &config))
        .collect();
    let mut txn = db.begin_write()?;
    state.tails.begin();
    txn.set_quick_repair(true);
    let mut new_events = Vec::new();
    let mut new_names = Vec::new();
    {
        let mut tables = Tables::open(&txn)?;
        let mut planned = plan(&mut tables, state, prepared).map_err(|refused| {
            let at = refused.index.and_then(|i| positions.get(i)).copied();
            let error = refused.into_error();
            match at {
                Some(position) => Error::Corrupt {
                    position,
                    reason: error.to_string(),
                },
                None => error,
            }
        })?;
        // Budget alerts were written with the events that raised them: they are in the log.
        planned.ledger.take_follow_ups();
        let mut written = Written {
            state,
            new_events: &mut new_events,
            new_names: &mut new_names,
        };
        commit_plan(&mut tables, &mut written, planned, Log::Write)?;
    }
    let written: Vec<Position> = new_events.iter().map(|e| e.position).collect();
    if written != positions {
        return Err(Error::Corrupt {
            position: positions.first().copied().unwrap_or_default(),
            reason: "the log's events do not come out at the positions they were written at".into(),
        });
    }
    txn.commit()?;
    state.tails.committed();
    for (kind, name, code) in new_names {
        state.names.of(kind).insert(name, code);
    }
    listener.committed(&new_events);
    Ok(())
}

/// Why the write-ahead log at `path` cannot be replayed, and what to do.
fn wal_refusal(path: &std::path::Path, reason: &str) -> Error {
    Error::Wal {
        path: path.to_path_buf(),
        reason: format!(
            "{reason}. The store was not opened and neither file was changed; keep both, and \
             move the log away only to open the store without the events in it"
        ),
    }
}
