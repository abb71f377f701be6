//! Writing a group in one redb transaction: each request planned and its rows applied (or its
//! refusal recorded), the cost ledger's follow-up events, the group's records handed to the
//! write-ahead log as one entry, and the commit with the durability the store asks for.
//!
//! Uses the planning, the planned rows, the writer's state and interface, the validated events
//! and the model.

use crate::engine::format::NameKind;
use crate::engine::writer::interface::{Durability, Refused, WriteConfig};
use crate::engine::writer::plan::plan;
use crate::engine::writer::rows::{Plan, Step, Tables};
use crate::engine::writer::state::WriterState;
use crate::engine::writer::validate::Prepared;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;

/// Writes the group in one transaction. Per-request failures go to `answers`; an `Err` here
/// means the transaction itself failed and nothing was written.
pub(super) fn write_group(
    db: &redb::Database,
    config: &WriteConfig,
    state: &mut WriterState,
    requests: Vec<Vec<Prepared>>,
    answers: &mut Vec<Answers>,
    new_events: &mut Vec<Event>,
    new_names: &mut Vec<(NameKind, String, u32)>,
) -> Result<()> {
    let mut txn = db.begin_write()?;
    state.tails.begin();
    let durability = match config.durability {
        // The write-ahead log makes the commit durable.
        Durability::Immediate if state.wal.is_some() => redb::Durability::None,
        Durability::Immediate => redb::Durability::Immediate,
        Durability::Deferred { .. } => redb::Durability::None,
    };
    txn.set_durability(durability)
        .map_err(|e| Error::Storage(e.into()))?;
    let start_position = state.next_position;
    {
        let mut tables = Tables::open(&txn)?;
        let mut written = Written {
            state,
            new_events,
            new_names,
        };
        let last = requests.len().saturating_sub(1);
        for (index, events) in requests.into_iter().enumerate() {
            let answer = match plan(&mut tables, written.state, events) {
                Ok(mut planned) => {
                    let follow_ups = planned.ledger.take_follow_ups();
                    // One entry in the log for the group, written before the last request's
                    // rows go in: one sync covers the group's requests.
                    let log = if index == last { Log::Write } else { Log::Keep };
                    let appended = commit_plan(&mut tables, &mut written, planned, log)?;
                    write_follow_ups(config, &mut tables, &mut written, &follow_ups)?;
                    Ok(appended)
                }
                Err(e) => {
                    // A budget refusal fails its request, but is itself recorded.
                    let violation: Vec<NewEvent> =
                        tables.ledger.take_violation().into_iter().collect();
                    write_follow_ups(config, &mut tables, &mut written, &violation)?;
                    Err(e)
                }
            };
            answers.push(answer);
        }
    }
    if let Some(slot) = &mut state.wal {
        // What came after the last request's entry (its follow-ups), or every request's
        // records when the last was refused.
        slot.write(None)?;
    }
    if state.next_position == start_position {
        txn.abort()?;
        state.tails.committed();
        return Ok(());
    }
    if let Some(slot) = &mut state.wal {
        if slot.full {
            // The log is full (or the group alone would fill it): this commit goes to the
            // file durably, which makes everything before it durable too, and the log
            // starts over.
            txn.set_durability(redb::Durability::Immediate)
                .map_err(|e| Error::Storage(e.into()))?;
            txn.set_quick_repair(true);
            txn.commit()?;
            state.tails.committed();
            slot.get()?.restart();
            slot.full = false;
            state.unflushed = false;
        } else {
            txn.commit()?;
            state.tails.committed();
            state.unflushed = true;
        }
        slot.unconfirmed = false;
        return Ok(());
    }
    txn.commit()?;
    state.tails.committed();
    if matches!(config.durability, Durability::Deferred { .. }) {
        state.unflushed = true;
    }
    Ok(())
}

/// Appends, as their own request in this transaction, the events the cost ledger asks for:
/// a budget alert after the cost that crossed the threshold, or the `governance.violation` of
/// a refused cost. oidb builds them valid; should one still fail to plan, it is left out
/// rather than failing the requests around it.
fn write_follow_ups(
    config: &WriteConfig,
    tables: &mut Tables<'_>,
    written: &mut Written<'_>,
    events: &[NewEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let events = events
        .iter()
        .map(|new| Prepared::new(new.clone(), config))
        .collect();
    if let Ok(planned) = plan(tables, written.state, events) {
        commit_plan(tables, written, planned, Log::Keep)?;
    }
    // Follow-ups carry no cost, so no refusal of theirs can be pending; clear it regardless.
    tables.ledger.take_violation();
    Ok(())
}

/// What the requests written so far in a group have changed.
pub(super) struct Written<'a> {
    pub(super) state: &'a mut WriterState,
    pub(super) new_events: &'a mut Vec<Event>,
    pub(super) new_names: &'a mut Vec<(NameKind, String, u32)>,
}

/// What a request's events come to, before the commit hands the new ones back.
pub(super) type Answers = std::result::Result<Vec<Answer>, Refused>;

/// One event of a request, written: already stored, or the group's new event at this index.
pub(super) enum Answer {
    Existing(Box<Event>),
    New(usize),
}

/// What a planned request's records do in the write-ahead log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Log {
    /// They wait for the group's entry: more requests follow in the group.
    Keep,
    /// They go to the log now, with those kept before them, as one entry: the group's last.
    Write,
}

/// Writes a planned request and moves the writer's counters past it; returns what it appended.
pub(super) fn commit_plan(
    tables: &mut Tables<'_>,
    written: &mut Written<'_>,
    planned: Plan,
    log: Log,
) -> Result<Vec<Answer>> {
    if let Some(slot) = &mut written.state.wal {
        match log {
            Log::Keep => slot.keep(&planned),
            Log::Write => slot.write(Some(&planned))?,
        }
    }
    let state = &mut *written.state;
    tables.apply(&planned, &mut state.tails)?;
    state.next_position += planned.new_count();
    state.next_intent_code = planned.next_intent_code;
    state.next_name_code.clone_from(&planned.next_name_code);
    written.new_names.extend(planned.new_names);
    written.new_names.extend(planned.found_names);
    let mut appended = Vec::with_capacity(planned.events.len());
    for step in planned.events {
        match step {
            Step::Existing(e) => appended.push(Answer::Existing(e)),
            Step::New(row) => {
                state.last_id = state.last_id.max(row.event.id.as_u128());
                appended.push(Answer::New(written.new_events.len()));
                written.new_events.push(row.event);
            }
        }
    }
    Ok(appended)
}
