//! The write path: validation, ids, sequences, the hash chain, index rows, and group commit.
//!
//! Appends from any number of threads meet in one queue. Whoever takes the commit lock becomes
//! the leader: it drains every request waiting, writes them all in one redb transaction, commits
//! once, publishes the new events, then answers each caller. While it is on disk, the next
//! requests gather for the next leader. Each request succeeds or fails on its own; an atomic
//! batch is one request, so it is written whole or not at all.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use redb::{ReadableTable, WriteTransaction};
use serde_json::Value;
use uuid::Uuid;

use crate::chain::{format_hash, parse_hash, Digest32, HashInput};
use crate::costs::ledger::{LedgerPlan, LedgerTables};
use crate::event::GivenChain;
use crate::format::{
    self, Facts, IntentHead, NameKind, BY_ACTOR, BY_ID, BY_INTENT, BY_TIME, BY_TRACE, BY_TYPE,
    CODES, EVENTS, INTENTS, INTENT_NAMES, NAMES,
};
use crate::{jcs, json_depth, time, Error, Event, NewEvent, Position, Result};

/// The most bytes an intent id, actor, event type or parent id may have.
pub const MAX_NAME_BYTES: usize = 255;

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// The event is new and now stored.
    New(Event),
    /// An event with this id and the same content was already stored; nothing was written.
    AlreadyAppended(Event),
}

impl Appended {
    /// The stored event, new or not.
    #[must_use]
    pub fn event(&self) -> &Event {
        match self {
            Appended::New(e) | Appended::AlreadyAppended(e) => e,
        }
    }

    /// The stored event, new or not.
    #[must_use]
    pub fn into_event(self) -> Event {
        match self {
            Appended::New(e) | Appended::AlreadyAppended(e) => e,
        }
    }

    /// Whether this append wrote the event.
    #[must_use]
    pub fn is_new(&self) -> bool {
        matches!(self, Appended::New(_))
    }
}

/// When an acknowledged append is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each append returns after its transaction is on disk (fsync). Survives a process crash
    /// and a power loss. The default.
    #[default]
    Immediate,
    /// Appends are visible at once and made durable together within `window` (and on
    /// [`Store::flush`](crate::Store::flush), and when the last handle closes). A process crash
    /// or a power loss can lose the appends acknowledged in the last `window`; never anything older,
    /// and never part of a transaction. If making them durable fails (an I/O error, a full disk),
    /// flushes and appends answer [`Error::NeedsReopen`](crate::Error::NeedsReopen) from then on,
    /// and the appends acknowledged since the last successful flush may be lost.
    Deferred {
        /// The longest an acknowledged append waits to reach the disk.
        window: std::time::Duration,
    },
}

/// Receives committed events, in position order, while the commit lock is held.
pub(crate) trait CommitListener: Send + Sync {
    /// Called once per commit with the events it made new.
    fn committed(&self, events: &[Event]);
}

/// Settings the write path needs.
#[derive(Debug, Clone)]
pub(crate) struct WriteConfig {
    pub(crate) durability: Durability,
    pub(crate) max_payload_bytes: usize,
}

/// Why a request failed, and which of its events (by index) failed, when one did.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) index: Option<usize>,
    pub(crate) error: Box<Error>,
}

impl Refused {
    /// The error, without the event index.
    pub(crate) fn into_error(self) -> Error {
        *self.error
    }
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Refused {
            index: None,
            error: Box::new(error),
        }
    }
}

type Outcome = std::result::Result<Vec<Appended>, Refused>;
type Reply = Sender<Outcome>;

struct Request {
    events: Vec<NewEvent>,
    reply: Reply,
}

/// What survives between transactions; reloaded from the file after a failed commit.
struct WriterState {
    next_position: Position,
    next_intent_code: u64,
    next_name_code: HashMap<NameKind, u32>,
    names: HashMap<(NameKind, String), u32>,
    unflushed: bool,
    failed: Option<String>,
}

impl WriterState {
    fn load(db: &redb::Database) -> Result<WriterState> {
        let txn = db.begin_write()?;
        let state = {
            let events = txn.open_table(EVENTS)?;
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
                next_intent_code: last_intent_code + 1,
                next_name_code,
                names: HashMap::new(),
                unflushed: false,
                failed: None,
            }
        };
        txn.abort()?;
        Ok(state)
    }
}

/// The single writer of a store.
pub(crate) struct Writer {
    db: Arc<redb::Database>,
    config: WriteConfig,
    closed: AtomicBool,
    queue: Mutex<Vec<Request>>,
    state: Mutex<WriterState>,
    listener: Arc<dyn CommitListener>,
}

impl Writer {
    pub(crate) fn new(
        db: Arc<redb::Database>,
        config: WriteConfig,
        listener: Arc<dyn CommitListener>,
    ) -> Result<Writer> {
        let state = WriterState::load(&db)?;
        Ok(Writer {
            db,
            config,
            closed: AtomicBool::new(false),
            queue: Mutex::new(Vec::new()),
            state: Mutex::new(state),
            listener,
        })
    }

    /// Appends `events` atomically: all are written, or none. Blocks until they are committed
    /// (and, under [`Durability::Immediate`], on disk).
    pub(crate) fn append(&self, events: Vec<NewEvent>) -> Outcome {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed.into());
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let events = refuse_too_deep(events)?;
        let (reply, answer) = bounded(1);
        self.queue.lock().push(Request { events, reply });
        self.lead_until_answered(&answer)
    }

    fn lead_until_answered(&self, answer: &Receiver<Outcome>) -> Outcome {
        let answered = || match answer.try_recv() {
            Ok(result) => Some(result),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(Error::NeedsReopen(
                "the writer stopped while handling this append".into(),
            )
            .into())),
        };
        loop {
            if let Some(result) = answered() {
                return result;
            }
            let mut state = self.state.lock();
            // A leader answers every request it took before it lets go of the lock, so either our
            // answer is here now or our request is still queued and we lead the next group.
            if let Some(result) = answered() {
                return result;
            }
            let group = std::mem::take(&mut *self.queue.lock());
            self.commit_group(&mut state, group);
        }
    }

    /// Refuses new appends, writes those already waiting, and makes everything durable.
    pub(crate) fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        {
            let mut state = self.state.lock();
            let group = std::mem::take(&mut *self.queue.lock());
            self.commit_group(&mut state, group);
        }
        self.flush()
    }

    /// Whether [`Writer::close`] has run.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Runs `write` in a write transaction of its own, between groups, and commits it with the
    /// store's durability. For small bookkeeping writes (consumer checkpoints).
    pub(crate) fn write_exclusive<T>(
        &self,
        write: impl FnOnce(&WriteTransaction) -> Result<T>,
    ) -> Result<T> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let mut state = self.state.lock();
        if let Some(reason) = &state.failed {
            return Err(Error::NeedsReopen(reason.clone()));
        }
        let mut txn = self.db.begin_write()?;
        if matches!(self.config.durability, Durability::Deferred { .. }) {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| Error::Storage(e.into()))?;
            state.unflushed = true;
        }
        let value = write(&txn)?;
        txn.commit()?;
        Ok(value)
    }

    /// Makes every acknowledged append durable now (a no-op under [`Durability::Immediate`]).
    /// A failure leaves their durability unknown, so the store refuses writes until reopened.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut state = self.state.lock();
        if let Some(reason) = &state.failed {
            return Err(Error::NeedsReopen(reason.clone()));
        }
        if !state.unflushed {
            return Ok(());
        }
        let commit = || -> Result<()> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(redb::Durability::Immediate)
                .map_err(|e| Error::Storage(e.into()))?;
            txn.commit()?;
            Ok(())
        };
        match commit() {
            Ok(()) => {
                state.unflushed = false;
                Ok(())
            }
            Err(error) => {
                let reason = format!(
                    "making deferred appends durable failed: {error}; \
                     appends acknowledged since the last flush may be lost"
                );
                state.failed = Some(reason.clone());
                Err(Error::NeedsReopen(reason))
            }
        }
    }

    fn commit_group(&self, state: &mut WriterState, group: Vec<Request>) {
        if group.is_empty() {
            return;
        }
        if let Some(reason) = &state.failed {
            for request in group {
                let _ = request
                    .reply
                    .send(Err(Error::NeedsReopen(reason.clone()).into()));
            }
            return;
        }
        let mut answers: Vec<Outcome> = Vec::with_capacity(group.len());
        let mut new_events = Vec::new();
        let mut new_names = Vec::new();
        let outcome =
            self.write_group(state, &group, &mut answers, &mut new_events, &mut new_names);
        match outcome {
            Ok(()) => {
                for (kind, name, code) in new_names {
                    state.names.insert((kind, name), code);
                }
                if !new_events.is_empty() {
                    self.listener.committed(&new_events);
                }
                for (request, answer) in group.into_iter().zip(answers) {
                    let _ = request.reply.send(answer);
                }
            }
            Err(error) => {
                let message = error.to_string();
                // The file did not take the transaction; the in-memory counters may have moved.
                match WriterState::load(&self.db) {
                    Ok(fresh) => *state = fresh,
                    Err(_) => state.failed = Some(message.clone()),
                }
                for (request, answer) in group.into_iter().zip(answers) {
                    let failure = match answer {
                        Ok(_) => Error::NeedsReopen(message.clone()).into(),
                        Err(own) => own,
                    };
                    let _ = request.reply.send(Err(failure));
                }
            }
        }
    }

    /// Writes the group in one transaction. Per-request failures go to `answers`; an `Err` here
    /// means the transaction itself failed and nothing was written.
    fn write_group(
        &self,
        state: &mut WriterState,
        group: &[Request],
        answers: &mut Vec<Outcome>,
        new_events: &mut Vec<Event>,
        new_names: &mut Vec<(NameKind, String, u32)>,
    ) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        let durability = match self.config.durability {
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
            for request in group {
                let answer = match plan(&mut tables, written.state, &self.config, &request.events) {
                    Ok(mut planned) => {
                        let follow_ups = planned.ledger.take_follow_ups();
                        let appended = commit_plan(&mut tables, &mut written, planned)?;
                        self.write_follow_ups(&mut tables, &mut written, &follow_ups)?;
                        Ok(appended)
                    }
                    Err(e) => {
                        // A budget refusal fails its request, but is itself recorded.
                        let violation: Vec<NewEvent> =
                            tables.ledger.take_violation().into_iter().collect();
                        self.write_follow_ups(&mut tables, &mut written, &violation)?;
                        Err(e)
                    }
                };
                answers.push(answer);
            }
        }
        if state.next_position == start_position {
            txn.abort()?;
            return Ok(());
        }
        txn.commit()?;
        if matches!(self.config.durability, Durability::Deferred { .. }) {
            state.unflushed = true;
        }
        Ok(())
    }

    /// Appends, as their own request in this transaction, the events the cost ledger asks for:
    /// a budget alert after the cost that crossed the threshold, or the `governance.violation` of
    /// a refused cost. oidb builds them valid; should one still fail to plan, it is left out
    /// rather than failing the requests around it.
    fn write_follow_ups(
        &self,
        tables: &mut Tables<'_>,
        written: &mut Written<'_>,
        events: &[NewEvent],
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if let Ok(planned) = plan(tables, written.state, &self.config, events) {
            commit_plan(tables, written, planned)?;
        }
        // Follow-ups carry no cost, so no refusal of theirs can be pending; clear it regardless.
        tables.ledger.take_violation();
        Ok(())
    }
}

/// What the requests written so far in a group have changed.
struct Written<'a> {
    state: &'a mut WriterState,
    new_events: &'a mut Vec<Event>,
    new_names: &'a mut Vec<(NameKind, String, u32)>,
}

/// Writes a planned request and moves the writer's counters past it; returns what it appended.
fn commit_plan(
    tables: &mut Tables<'_>,
    written: &mut Written<'_>,
    planned: Plan,
) -> Result<Vec<Appended>> {
    tables.apply(&planned)?;
    let state = &mut *written.state;
    state.next_position += planned.new_count();
    state.next_intent_code = planned.next_intent_code;
    state.next_name_code.clone_from(&planned.next_name_code);
    written.new_names.extend(planned.new_names.iter().cloned());
    let mut appended = Vec::with_capacity(planned.events.len());
    for step in planned.events {
        match step {
            Step::Existing(e) => appended.push(Appended::AlreadyAppended(*e)),
            Step::New(row) => {
                written.new_events.push(row.event.clone());
                appended.push(Appended::New(row.event));
            }
        }
    }
    Ok(appended)
}

/// Every table an append touches, open in one write transaction.
struct Tables<'txn> {
    events: redb::Table<'txn, u64, &'static [u8]>,
    by_id: redb::Table<'txn, u128, u64>,
    by_intent: redb::Table<'txn, (u64, u64), (u64, Facts)>,
    by_type: redb::Table<'txn, (u32, u64), Facts>,
    by_actor: redb::Table<'txn, (u32, u64), Facts>,
    by_trace: redb::Table<'txn, (u128, u64), Facts>,
    by_time: redb::Table<'txn, (i64, u64), Facts>,
    intents: redb::Table<'txn, &'static str, &'static [u8]>,
    intent_names: redb::Table<'txn, u64, &'static str>,
    names: redb::Table<'txn, (u8, &'static str), u32>,
    codes: redb::Table<'txn, (u8, u32), &'static str>,
    ledger: LedgerTables<'txn>,
    #[cfg(feature = "signatures")]
    signing: crate::signature::SigningTables<'txn>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Tables<'txn>> {
        Ok(Tables {
            events: txn.open_table(EVENTS)?,
            by_id: txn.open_table(BY_ID)?,
            by_intent: txn.open_table(BY_INTENT)?,
            by_type: txn.open_table(BY_TYPE)?,
            by_actor: txn.open_table(BY_ACTOR)?,
            by_trace: txn.open_table(BY_TRACE)?,
            by_time: txn.open_table(BY_TIME)?,
            intents: txn.open_table(INTENTS)?,
            intent_names: txn.open_table(INTENT_NAMES)?,
            names: txn.open_table(NAMES)?,
            codes: txn.open_table(CODES)?,
            ledger: LedgerTables::open(txn)?,
            #[cfg(feature = "signatures")]
            signing: crate::signature::SigningTables::open(txn)?,
        })
    }

    fn apply(&mut self, planned: &Plan) -> Result<()> {
        for (kind, name, code) in &planned.new_names {
            self.names.insert((*kind as u8, name.as_str()), *code)?;
            self.codes.insert((*kind as u8, *code), name.as_str())?;
        }
        for (code, intent_id) in &planned.new_intents {
            self.intent_names.insert(*code, intent_id.as_str())?;
        }
        for (intent_id, head) in &planned.heads {
            self.intents
                .insert(intent_id.as_str(), head.encode().as_slice())?;
        }
        for step in &planned.events {
            let Step::New(row) = step else { continue };
            let event = &row.event;
            let position = event.position;
            let facts = row.facts;
            self.events.insert(position, row.record.as_slice())?;
            self.by_id.insert(event.id.as_u128(), position)?;
            self.by_intent
                .insert((row.intent_code, event.sequence), (position, facts))?;
            self.by_type.insert((facts.1, position), facts)?;
            self.by_actor.insert((facts.2, position), facts)?;
            self.by_time.insert((facts.0, position), facts)?;
            if let Some(trace) = row.trace_code {
                self.by_trace.insert((trace, position), facts)?;
            }
        }
        planned.ledger.apply(&mut self.ledger)?;
        Ok(())
    }
}

/// One event of a request, planned: either already stored, or a new row ready to write.
enum Step {
    Existing(Box<Event>),
    New(Box<Row>),
}

struct Row {
    event: Event,
    record: Vec<u8>,
    facts: Facts,
    intent_code: u64,
    trace_code: Option<u128>,
}

/// A request checked against the store and turned into rows; nothing is written until it all checks.
struct Plan {
    events: Vec<Step>,
    heads: HashMap<String, IntentHead>,
    new_intents: Vec<(u64, String)>,
    new_names: Vec<(NameKind, String, u32)>,
    next_intent_code: u64,
    next_name_code: HashMap<NameKind, u32>,
    /// What the request does to the cost ledger (costs, budgets), checked with it.
    ledger: LedgerPlan,
}

impl Plan {
    fn new_count(&self) -> u64 {
        self.events
            .iter()
            .filter(|s| matches!(s, Step::New(_)))
            .count() as u64
    }
}

fn plan(
    tables: &mut Tables<'_>,
    state: &WriterState,
    config: &WriteConfig,
    events: &[NewEvent],
) -> std::result::Result<Plan, Refused> {
    let mut plan = Plan {
        events: Vec::with_capacity(events.len()),
        heads: HashMap::new(),
        new_intents: Vec::new(),
        new_names: Vec::new(),
        next_intent_code: state.next_intent_code,
        next_name_code: state.next_name_code.clone(),
        ledger: LedgerPlan::default(),
    };
    let mut ids = HashSet::new();
    let mut next_position = state.next_position;
    for (index, new) in events.iter().enumerate() {
        plan_event(
            tables,
            state,
            config,
            &mut plan,
            &mut ids,
            &mut next_position,
            new,
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
    config: &WriteConfig,
    plan: &mut Plan,
    ids: &mut HashSet<Uuid>,
    next_position: &mut Position,
    new: &NewEvent,
) -> Result<()> {
    let payload_json = validate(new, config)?;
    let id = new.id.unwrap_or_else(Uuid::now_v7);
    if !ids.insert(id) {
        return Err(Error::Conflict {
            id,
            reason: "the same id appears twice in one batch".into(),
        });
    }
    if let Some(stored) = stored_with_id(tables, id)? {
        if let Some(field) = new.differs_from(&stored) {
            return Err(Error::Conflict {
                id,
                reason: format!("`{field}` differs"),
            });
        }
        plan.events.push(Step::Existing(Box::new(stored)));
        return Ok(());
    }

    let mut head = match plan.heads.get(&new.intent_id) {
        Some(head) => Some(head.clone()),
        None => tables
            .intents
            .get(new.intent_id.as_str())?
            .map(|g| IntentHead::decode(g.value(), &new.intent_id))
            .transpose()?,
    };
    let last_sequence = head.as_ref().map_or(0, |h| h.last_sequence);
    check_expected_sequence(new, last_sequence)?;
    let previous_event_hash = head.as_ref().map(|h| format_hash(&h.last_hash));
    let position = *next_position;
    let mut event = Event {
        position,
        id,
        intent_id: new.intent_id.clone(),
        event_type: new.event_type.clone(),
        actor: new.actor.clone(),
        payload: new.payload.clone(),
        created_at: new.created_at.unwrap_or_else(time::now),
        sequence: last_sequence + 1,
        previous_event_hash,
        event_hash: String::new(),
        trace_id: new.trace_id.clone(),
        parent_event_id: new.parent_event_id.clone(),
        level: new.level,
        proof: new.proof.clone(),
    };
    #[cfg(feature = "signatures")]
    crate::signature::check_on_append(&tables.signing, &event)?;
    let digest = HashInput::of(&event)
        .digest()
        .map_err(|e| Error::InvalidEvent {
            field: "payload",
            reason: e.to_string(),
        })?;
    event.event_hash = format_hash(&digest);
    if let Some(given) = &new.chain {
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
    let intent_code = advance_head(plan, head.take(), &event, digest);

    let proof_json = event.proof.as_ref().map(Value::to_string);
    let record = format::encode_record(&event, &payload_json, proof_json.as_deref())?;
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

/// Moves the intent's head to `event` (creating the intent when it is new); returns its code.
fn advance_head(plan: &mut Plan, head: Option<IntentHead>, event: &Event, digest: Digest32) -> u64 {
    let head = match head {
        Some(mut h) => {
            h.last_sequence = event.sequence;
            h.last_hash = digest;
            h.last_position = event.position;
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
fn stored_with_id(tables: &Tables<'_>, id: Uuid) -> Result<Option<Event>> {
    let Some(position) = tables.by_id.get(id.as_u128())?.map(|g| g.value()) else {
        return Ok(None);
    };
    let stored = tables.events.get(position)?.ok_or_else(|| Error::Corrupt {
        position,
        reason: format!("index by_id points at it for event {id}, but it is missing"),
    })?;
    format::decode_record(position, stored.value()).map(Some)
}

/// Checks the sequence and hashes an imported event came with against what the store computed.
fn check_given_chain(event: &Event, given: &GivenChain) -> Result<()> {
    let mismatch = |reason: String| Error::ChainMismatch {
        id: event.id,
        reason,
    };
    if given.sequence != event.sequence {
        return Err(mismatch(format!(
            "it has sequence {} but intent {:?} continues at {}",
            given.sequence, event.intent_id, event.sequence
        )));
    }
    if given.previous_event_hash != event.previous_event_hash {
        return Err(mismatch(format!(
            "its previous_event_hash {} does not match the hash of the intent's event {} ({})",
            given.previous_event_hash.as_deref().unwrap_or("(none)"),
            event.sequence - 1,
            event
                .previous_event_hash
                .as_deref()
                .unwrap_or("(none: it is the first)")
        )));
    }
    if given.event_hash != event.event_hash {
        return Err(mismatch(format!(
            "its event_hash {} does not match its content (recomputed: {}); the event was altered after it was hashed",
            given.event_hash, event.event_hash
        )));
    }
    Ok(())
}

/// Refuses a request with a payload or proof nested deeper than a hash can be computed over
/// ([`jcs::MAX_DEPTH`]), before anything serializes or drops it recursively: a value nested
/// 100,000 deep would overflow the stack. The refused values are torn down without recursion.
fn refuse_too_deep(events: Vec<NewEvent>) -> Result<Vec<NewEvent>> {
    let too_deep = |value: &Value| json_depth::exceeds(value, jcs::MAX_DEPTH);
    let field = events.iter().find_map(|event| {
        if too_deep(&event.payload) {
            Some("payload")
        } else if event.proof.as_ref().is_some_and(too_deep) {
            Some("proof")
        } else {
            None
        }
    });
    let Some(field) = field else {
        return Ok(events);
    };
    for event in events {
        json_depth::dismantle(event.payload);
        if let Some(proof) = event.proof {
            json_depth::dismantle(proof);
        }
    }
    Err(Error::InvalidEvent {
        field,
        reason: jcs::NotCanonicalizable::TooDeep.to_string(),
    })
}

/// Validates what can be checked without the store; returns the payload's JSON text.
fn validate(new: &NewEvent, config: &WriteConfig) -> Result<String> {
    let invalid = |field: &'static str, reason: String| Error::InvalidEvent { field, reason };
    check_name("intent_id", &new.intent_id)?;
    check_name("actor", &new.actor)?;
    check_name("event_type", new.event_type.as_str())?;
    if let Some(parent) = &new.parent_event_id {
        check_name("parent_event_id", parent)?;
    }
    if let Some(t) = new.created_at {
        if !time::has_wire_form(t) {
            return Err(invalid(
                "created_at",
                format!("{t} is outside the years 0000 to 9999 that an RFC 3339 time can hold"),
            ));
        }
    }
    if let Some(trace_id) = &new.trace_id {
        if format::trace_code(trace_id).is_none() {
            return Err(invalid(
                "trace_id",
                format!("{trace_id:?} must be 32 lowercase hex digits (RFC-0020 / W3C trace id)"),
            ));
        }
    }
    if !new.payload.is_object() {
        return Err(invalid(
            "payload",
            format!(
                "must be a JSON object, found {}; wrap it, e.g. {{\"value\": …}}",
                crate::wire::kind(&new.payload)
            ),
        ));
    }
    let payload_json = new.payload.to_string();
    if payload_json.len() > config.max_payload_bytes {
        return Err(invalid(
            "payload",
            format!(
                "is {} bytes, over the limit of {} bytes (StoreBuilder::max_payload_bytes raises it)",
                payload_json.len(),
                config.max_payload_bytes
            ),
        ));
    }
    for (field, value) in [
        ("payload", Some(&new.payload)),
        ("proof", new.proof.as_ref()),
    ] {
        if let Some(value) = value {
            jcs::to_canonical_vec(value).map_err(|e| invalid(field, e.to_string()))?;
        }
    }
    if let Some(given) = &new.chain {
        for (field, hash) in [
            ("event_hash", Some(&given.event_hash)),
            ("previous_event_hash", given.previous_event_hash.as_ref()),
        ] {
            if let Some(hash) = hash {
                if parse_hash(hash).is_none() {
                    return Err(invalid(
                        field,
                        format!(
                            "{hash:?} is not an RFC-0019 hash (sha256: + 43 base64url characters)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(payload_json)
}

fn check_name(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidEvent {
            field,
            reason: "must not be empty".into(),
        });
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidEvent {
            field,
            reason: format!("is {} bytes; the limit is {MAX_NAME_BYTES}", value.len()),
        });
    }
    Ok(())
}

/// The code of an event type or actor name, assigning a new one (in the plan) when it is new.
fn name_code(
    tables: &Tables<'_>,
    state: &WriterState,
    plan: &mut Plan,
    kind: NameKind,
    name: &str,
) -> Result<u32> {
    if let Some(code) = state.names.get(&(kind, name.to_owned())) {
        return Ok(*code);
    }
    if let Some((_, _, code)) = plan
        .new_names
        .iter()
        .find(|(k, n, _)| *k == kind && n == name)
    {
        return Ok(*code);
    }
    if let Some(code) = tables.names.get((kind as u8, name))?.map(|g| g.value()) {
        return Ok(code);
    }
    let next = plan.next_name_code.entry(kind).or_insert(1);
    let code = *next;
    *next += 1;
    plan.new_names.push((kind, name.to_owned(), code));
    Ok(code)
}
