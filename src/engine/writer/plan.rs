//! Planning a request against the store: for each event, its id (or its stored twin), its place
//! in its intent's chain, the expected sequence, its hash, its signature when required, its costs,
//! the codes of its names, and its encoded record and index facts; nothing is written until the
//! whole request checks.
//!
//! Uses the planned rows and the tables it reads, the writer's state (read only), the validated
//! events, the writer's interface, the file format, the cost ledger's plan, the model and the
//! proofs.

use std::collections::{HashMap, HashSet};

use redb::ReadableTable;
use uuid::Uuid;

use crate::engine::format::{self, Facts, IntentHead, NameKind};
use crate::engine::ledger::LedgerPlan;
use crate::engine::writer::interface::Refused;
use crate::engine::writer::rows::{Plan, Row, Step, Tables};
use crate::engine::writer::state::WriterState;
use crate::engine::writer::validate::{check_given_chain, Prepared};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::GivenChain;
use crate::model::event::NewEvent;
use crate::model::event::Position;
use crate::model::time;
use crate::proof::chain::{format_hash, Digest32};

pub(super) fn plan(
    tables: &mut Tables<'_>,
    state: &WriterState,
    events: Vec<Prepared>,
) -> std::result::Result<Plan, Refused> {
    let mut plan = Plan {
        events: Vec::with_capacity(events.len()),
        heads: HashMap::new(),
        new_intents: Vec::new(),
        new_names: Vec::new(),
        found_names: Vec::new(),
        next_intent_code: state.next_intent_code,
        next_name_code: state.next_name_code.clone(),
        ledger: LedgerPlan::default(),
    };
    let mut ids = HashSet::with_capacity(events.len());
    let mut next_position = state.next_position;
    for (index, prepared) in events.into_iter().enumerate() {
        plan_event(
            tables,
            state,
            &mut plan,
            &mut ids,
            &mut next_position,
            prepared,
        )
        .map_err(|error| Refused {
            index: Some(index),
            error: Box::new(error),
        })?;
    }
    Ok(plan)
}

/// Checks one event of a request against the store and the events planned before it, and adds
/// its rows (or its stored twin) to the plan.
fn plan_event(
    tables: &mut Tables<'_>,
    state: &WriterState,
    plan: &mut Plan,
    ids: &mut HashSet<Uuid>,
    next_position: &mut Position,
    prepared: Prepared,
) -> Result<()> {
    let Prepared { new, checked } = prepared;
    let encoded = checked?;
    let id = new.id.unwrap_or_else(Uuid::now_v7);
    if !ids.insert(id) {
        return Err(Error::Conflict {
            id,
            reason: "the same id appears twice in one batch".into(),
        });
    }
    let stored = if id.as_u128() > state.last_id {
        None
    } else {
        stored_with_id(tables, id)?
    };
    if let Some(stored) = stored {
        if let Some(field) = new.differs_from(&stored) {
            return Err(Error::Conflict {
                id,
                reason: format!("`{field}` differs"),
            });
        }
        plan.events.push(Step::Existing(Box::new(stored)));
        return Ok(());
    }

    let head = match plan.heads.get(&new.intent_id) {
        Some(head) => Some(head.clone()),
        None => tables
            .intents
            .get(new.intent_id.as_str())?
            .map(|g| IntentHead::decode(g.value(), &new.intent_id))
            .transpose()?,
    };
    let last_sequence = head.as_ref().map_or(0, |h| h.last_sequence);
    check_expected_sequence(&new, last_sequence)?;
    let previous_digest = head.as_ref().map(|h| h.last_hash);
    let (mut event, given_chain) =
        placed(new, id, *next_position, last_sequence + 1, previous_digest);
    #[cfg(feature = "signatures")]
    crate::engine::signing::check_on_append(&tables.signing, &event)?;
    let digest = encoded
        .hash
        .finish(&event)
        .map_err(|e| Error::InvalidEvent {
            field: "payload",
            reason: e.to_string(),
        })?;
    event.event_hash = format_hash(&digest);
    if let Some(given) = &given_chain {
        check_given_chain(&event, given)?;
    }
    plan.ledger.add(&mut tables.ledger, &event)?;

    let type_code = name_code(
        tables,
        state,
        plan,
        NameKind::EventType,
        event.event_type.as_str(),
    )?;
    let actor_code = name_code(tables, state, plan, NameKind::Actor, &event.actor)?;
    let intent_code = advance_head(plan, head, &event, digest);

    let digests = format::Digests {
        event: digest,
        previous: previous_digest,
    };
    let record = format::encode_record(
        &event,
        &digests,
        &encoded.payload_binary,
        encoded.proof_binary.as_deref(),
    )?;
    let facts: Facts = (
        time::to_micros(event.created_at),
        type_code,
        actor_code,
        event.level.code(),
    );
    let trace_code = event.trace_id.as_deref().and_then(format::trace_code);
    plan.events.push(Step::New(Box::new(Row {
        event,
        record,
        facts,
        intent_code,
        trace_code,
    })));
    *next_position += 1;
    Ok(())
}

/// The stored event `new` becomes at `position`, `sequence` in its intent's chain, before it is
/// hashed (its `event_hash` is empty); and the chain it came with, if any, to check against.
/// The caller's values move into it rather than being copied.
fn placed(
    new: NewEvent,
    id: Uuid,
    position: Position,
    sequence: u64,
    previous_digest: Option<Digest32>,
) -> (Event, Option<GivenChain>) {
    let NewEvent {
        intent_id,
        event_type,
        actor,
        payload,
        created_at,
        trace_id,
        parent_event_id,
        level,
        proof,
        chain,
        ..
    } = new;
    let event = Event {
        position,
        id,
        intent_id,
        event_type,
        actor,
        payload: payload.into(),
        created_at: created_at.unwrap_or_else(time::now),
        sequence,
        previous_event_hash: previous_digest.as_ref().map(format_hash),
        event_hash: String::new(),
        trace_id,
        parent_event_id,
        level,
        proof,
    };
    (event, chain)
}

/// Moves the intent's head to `event` (creating the intent when it is new); returns its code.
fn advance_head(plan: &mut Plan, head: Option<IntentHead>, event: &Event, digest: Digest32) -> u64 {
    let moved = |h: &mut IntentHead| {
        h.last_sequence = event.sequence;
        h.last_hash = digest;
        h.last_position = event.position;
    };
    if let Some(planned) = plan.heads.get_mut(&event.intent_id) {
        moved(planned);
        return planned.code;
    }
    let head = match head {
        Some(mut h) => {
            moved(&mut h);
            h
        }
        None => {
            let code = plan.next_intent_code;
            plan.next_intent_code += 1;
            plan.new_intents.push((code, event.intent_id.clone()));
            IntentHead {
                code,
                last_sequence: event.sequence,
                last_hash: digest,
                first_position: event.position,
                last_position: event.position,
            }
        }
    };
    let code = head.code;
    plan.heads.insert(event.intent_id.clone(), head);
    code
}

/// Optimistic concurrency: the caller's expected last sequence must be the actual one.
fn check_expected_sequence(new: &NewEvent, last_sequence: u64) -> Result<()> {
    match new.expected_sequence {
        Some(expected) if expected != last_sequence => Err(Error::WrongExpectedSequence {
            intent_id: new.intent_id.clone(),
            expected,
            actual: last_sequence,
        }),
        _ => Ok(()),
    }
}

/// The stored event with this id, if any.
fn stored_with_id(tables: &mut Tables<'_>, id: Uuid) -> Result<Option<Event>> {
    let Some(position) = tables.by_id.get(id.as_u128())?.map(|g| g.value()) else {
        return Ok(None);
    };
    let stored = tables
        .events
        .get()?
        .get(position)?
        .ok_or_else(|| Error::Corrupt {
            position,
            reason: format!("index by_id points at it for event {id}, but it is missing"),
        })?;
    format::decode_record(position, stored.value()).map(Some)
}

/// The code of an event type or actor name, assigning a new one (in the plan) when it is new.
fn name_code(
    tables: &mut Tables<'_>,
    state: &WriterState,
    plan: &mut Plan,
    kind: NameKind,
    name: &str,
) -> Result<u32> {
    if let Some(code) = state.names.get(kind, name) {
        return Ok(code);
    }
    if let Some((_, _, code)) = plan
        .new_names
        .iter()
        .chain(&plan.found_names)
        .find(|(k, n, _)| *k == kind && n == name)
    {
        return Ok(*code);
    }
    if let Some(code) = tables
        .names
        .get()?
        .get((kind as u8, name))?
        .map(|g| g.value())
    {
        plan.found_names.push((kind, name.to_owned(), code));
        return Ok(code);
    }
    let next = plan.next_name_code.entry(kind).or_insert(1);
    let code = *next;
    *next += 1;
    plan.new_names.push((kind, name.to_owned(), code));
    Ok(code)
}
