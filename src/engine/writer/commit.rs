//! Writing a group into the writer's open redb transaction: each request planned and its rows
//! applied (or its refusal recorded), the cost ledger's follow-up events, the group's records
//! handed to the write-ahead log as one entry; and the commit that publishes the groups waiting
//! in the transaction.
//!
//! Uses the planning, the planned rows, the writer's state and interface, the validated events
//! and the model.

use std::time::Instant;

use crate::engine::format::NameKind;
use crate::engine::writer::interface::{Durability, Refused, WriteConfig};
use crate::engine::writer::plan::plan;
use crate::engine::writer::rows::{Plan, Step, Tables};
use crate::engine::writer::state::WriterState;
use crate::engine::writer::validate::Prepared;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;

/// Writes the group into the writer's open transaction (beginning one when none is open) and
/// leaves it open: the transaction commits on [`publish`], a few milliseconds later or when
/// this process reads. Per-request failures go to `answers`; an `Err` here means the
/// transaction itself failed, and with it every group written into it since the last publish.
pub(super) fn write_group(
    db: &redb::Database,
    config: &WriteConfig,
    state: &mut WriterState,
    requests: Vec<Vec<Prepared>>,
    answers: &mut Vec<Answers>,
    new_events: &mut Vec<Event>,
    new_names: &mut Vec<(NameKind, String, u32)>,
) -> Result<()> {
    let txn = match state.open_txn.take() {
        Some(txn) => txn,
        None => {
            let txn = db.begin_write()?;
            state.tails.begin();
            txn
        }
    };
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
    if state.next_position == start_position && state.open_since.is_none() {
        // Nothing written, now or before: no commit to make.
        txn.abort()?;
        state.tails.committed();
        return Ok(());
    }
    state.open_txn = Some(txn);
    if state.next_position != start_position {
        state.open_since.get_or_insert_with(Instant::now);
    }
    let log_full = state.wal.as_ref().is_some_and(|slot| slot.full);
    let durable_now = matches!(config.durability, Durability::Immediate) && state.wal.is_none();
    if log_full || durable_now || config.publish_at_once {
        // The log has no room for the group (or the store has no log): the group's commit is
        // what makes it durable, so it is made now; or the store publishes every group.
        publish(state)?;
    }
    Ok(())
}

/// Commits the writer's open transaction, if any: what it holds becomes visible to every reader
/// of the file, in this process and others, and durable in the file. redb's multi-process mode
/// makes every commit a durable, two-phase one; so the write-ahead log, which already made those
/// groups durable, starts over. Saving redb's allocator state with each commit spares the open
/// after a crash a walk of every tree.
pub(super) fn publish(state: &mut WriterState) -> Result<()> {
    let Some(mut txn) = state.open_txn.take() else {
        return Ok(());
    };
    state.open_since = None;
    txn.set_quick_repair(true);
    txn.commit()?;
    state.tails.committed();
    if let Some(slot) = &mut state.wal {
        slot.unconfirmed = false;
        slot.full = false;
        if let Some(wal) = slot.open.as_mut() {
            wal.restart();
        }
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
