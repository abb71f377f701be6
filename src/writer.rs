//! The write path: validation, ids, sequences, the hash chain, index rows, and group commit.
//!
//! Appends from any number of threads meet in one queue. Whoever takes the commit lock becomes
//! the leader: it drains every request waiting, writes them all in one redb transaction, commits
//! once, publishes the new events, then answers each caller. While it is on disk, the next
//! requests gather for the next leader. Each request succeeds or fails on its own; an atomic
//! batch is one request, so it is written whole or not at all.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Sender};
use parking_lot::{Condvar, Mutex};
use redb::{ReadableTable, WriteTransaction};
use serde_json::Value;
use uuid::Uuid;

use crate::chain::{format_hash, parse_hash, Digest32, HashInput};
use crate::event::GivenChain;
use crate::format::{
    self, Facts, IntentHead, NameKind, BY_ACTOR, BY_ID, BY_INTENT, BY_TIME, BY_TRACE, BY_TYPE,
    CODES, EVENTS, INTENTS, INTENT_NAMES, NAMES,
};
use crate::{jcs, time, Error, Event, NewEvent, Position, Result};

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
    /// and never part of a transaction.
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

/// What a waiting caller is told: its answer, or that it is to lead the next commit.
enum Signal {
    Done(Result<Vec<Appended>>),
    Lead,
}

type Reply = Sender<Signal>;

struct Request {
    events: Vec<Prepared>,
    reply: Reply,
    caller: ThreadId,
}

/// An event as the caller handed it, with the checks and encodings that need no store done
/// before the commit lock is taken: the leader then only assigns, hashes and writes.
struct Prepared {
    new: NewEvent,
    /// The outcome of [`validate`], reported when the event's turn comes in [`plan`], so a
    /// request's first failing event names the error, as if everything were checked in order.
    checked: Result<Encoded>,
}

/// The encodings of a validated event.
struct Encoded {
    /// The payload's JSON text, as stored.
    payload_json: String,
    /// The payload's RFC 8785 form, as hashed.
    payload_canonical: Vec<u8>,
    proof_json: Option<String>,
}

impl Prepared {
    fn new(new: NewEvent, config: &WriteConfig) -> Prepared {
        let checked = validate(&new, config);
        Prepared { new, checked }
    }
}

/// What survives between transactions; reloaded from the file after a failed commit.
struct WriterState {
    next_position: Position,
    next_intent_code: u64,
    next_name_code: HashMap<NameKind, u32>,
    names: Names,
    unflushed: bool,
    failed: Option<String>,
    /// The threads whose requests the last commit answered: most call again at once.
    last_callers: HashSet<ThreadId>,
    /// How long the last commit took.
    last_commit: Duration,
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
                names: Names::default(),
                unflushed: false,
                failed: None,
                last_callers: HashSet::new(),
                last_commit: Duration::ZERO,
            }
        };
        txn.abort()?;
        Ok(state)
    }
}

/// Committed codes of event types and actors, by name: a cache of the `names` table.
#[derive(Default)]
struct Names {
    event_types: HashMap<String, u32>,
    actors: HashMap<String, u32>,
}

impl Names {
    fn of(&mut self, kind: NameKind) -> &mut HashMap<String, u32> {
        match kind {
            NameKind::EventType => &mut self.event_types,
            NameKind::Actor => &mut self.actors,
        }
    }

    fn get(&self, kind: NameKind, name: &str) -> Option<u32> {
        match kind {
            NameKind::EventType => self.event_types.get(name),
            NameKind::Actor => self.actors.get(name),
        }
        .copied()
    }
}

/// The single writer of a store.
pub(crate) struct Writer {
    db: Arc<redb::Database>,
    config: WriteConfig,
    queue: Mutex<Vec<Request>>,
    /// Signalled whenever a request joins the queue.
    arrived: Condvar,
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
            queue: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            state: Mutex::new(state),
            listener,
        })
    }

    /// Appends `events` atomically: all are written, or none. Blocks until they are committed
    /// (and, under [`Durability::Immediate`], on disk).
    pub(crate) fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let events = events
            .into_iter()
            .map(|new| Prepared::new(new, &self.config))
            .collect();
        let (reply, signals) = unbounded();
        self.queue.lock().push(Request {
            events,
            reply,
            caller: std::thread::current().id(),
        });
        self.arrived.notify_one();
        self.lead_while_queued();
        loop {
            match signals.recv() {
                Ok(Signal::Done(result)) => return result,
                Ok(Signal::Lead) => self.lead_while_queued(),
                Err(_) => {
                    return Err(Error::NeedsReopen(
                        "the writer stopped while handling this append".into(),
                    ))
                }
            }
        }
    }

    /// Commits the queued requests as one group if no one else is committing, and makes sure
    /// that whatever was queued meanwhile gets a leader.
    ///
    /// Whoever lets go of the commit lock looks at the queue afterwards: a request queued while
    /// the lock was held found it taken and waits for that look. A leader that committed a group
    /// hands the next one to the first waiting caller (so its own caller gets its answer now);
    /// one that found nothing to commit tries again.
    fn lead_while_queued(&self) {
        loop {
            let Some(mut state) = self.state.try_lock() else {
                return;
            };
            let group = self.gather(&state);
            let led = !group.is_empty();
            if led {
                let started = Instant::now();
                state.last_callers = group.iter().map(|r| r.caller).collect();
                self.commit_group(&mut state, group);
                state.last_commit = started.elapsed();
            }
            drop(state);
            match self.queue.lock().first() {
                None => return,
                Some(next) if led => {
                    let _ = next.reply.send(Signal::Lead);
                    return;
                }
                Some(_) => {}
            }
        }
    }

    /// Takes the queued requests as the next group, first giving the callers of the last group a
    /// moment to queue again.
    ///
    /// Callers that each wait for their own answer queue their next request only once answered,
    /// which is after the leader that follows has already taken the queue: without a pause the
    /// group splits into two that alternate, each half the size. The pause ends as soon as every
    /// recent caller is back, and lasts at most a quarter of the last commit (at most 1 ms), so a
    /// caller who does not come back costs little next to the commit itself.
    fn gather(&self, state: &WriterState) -> Vec<Request> {
        let mut queue = self.queue.lock();
        let callers: HashSet<ThreadId> = state
            .last_callers
            .iter()
            .copied()
            .chain(queue.iter().map(|r| r.caller))
            .collect();
        if queue.len() < callers.len() {
            let deadline = Instant::now() + (state.last_commit / 4).min(Duration::from_millis(1));
            while queue.len() < callers.len() {
                if self.arrived.wait_until(&mut queue, deadline).timed_out() {
                    break;
                }
            }
        }
        std::mem::take(&mut *queue)
    }

    /// Makes every acknowledged append durable now (a no-op under [`Durability::Immediate`]).
    pub(crate) fn flush(&self) -> Result<()> {
        let flushed = self.flush_holding_lock();
        // Appends queued while the lock was held wait for whoever held it to look at the queue.
        if let Some(next) = self.queue.lock().first() {
            let _ = next.reply.send(Signal::Lead);
        }
        flushed
    }

    fn flush_holding_lock(&self) -> Result<()> {
        let mut state = self.state.lock();
        if !state.unflushed {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| Error::Storage(e.into()))?;
        txn.commit()?;
        state.unflushed = false;
        Ok(())
    }

    fn commit_group(&self, state: &mut WriterState, group: Vec<Request>) {
        if group.is_empty() {
            return;
        }
        if let Some(reason) = &state.failed {
            for request in group {
                let _ = request
                    .reply
                    .send(Signal::Done(Err(Error::NeedsReopen(reason.clone()))));
            }
            return;
        }
        let mut replies = Vec::with_capacity(group.len());
        let mut requests = Vec::with_capacity(group.len());
        for request in group {
            replies.push(request.reply);
            requests.push(request.events);
        }
        let mut answers: Vec<Result<Vec<Answer>>> = Vec::with_capacity(requests.len());
        let mut new_events = Vec::new();
        let mut new_names = Vec::new();
        let outcome = self.write_group(
            state,
            requests,
            &mut answers,
            &mut new_events,
            &mut new_names,
        );
        match outcome {
            Ok(()) => {
                for (kind, name, code) in new_names {
                    state.names.of(kind).insert(name, code);
                }
                if !new_events.is_empty() {
                    self.listener.committed(&new_events);
                }
                // New events go back to their callers in the order they were committed.
                let mut committed = new_events.into_iter();
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let answer = answer.map(|steps| {
                        steps
                            .into_iter()
                            .filter_map(|step| match step {
                                Answer::Existing(e) => Some(Appended::AlreadyAppended(*e)),
                                Answer::New => committed.next().map(Appended::New),
                            })
                            .collect()
                    });
                    let _ = reply.send(Signal::Done(answer));
                }
            }
            Err(error) => {
                let message = error.to_string();
                // The file did not take the transaction; the in-memory counters may have moved.
                match WriterState::load(&self.db) {
                    Ok(fresh) => *state = fresh,
                    Err(_) => state.failed = Some(message.clone()),
                }
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let failure = match answer {
                        Ok(_) => Error::NeedsReopen(message.clone()),
                        Err(own) => own,
                    };
                    let _ = reply.send(Signal::Done(Err(failure)));
                }
            }
        }
    }

    /// Writes the group in one transaction. Per-request failures go to `answers`; an `Err` here
    /// means the transaction itself failed and nothing was written.
    fn write_group(
        &self,
        state: &mut WriterState,
        requests: Vec<Vec<Prepared>>,
        answers: &mut Vec<Result<Vec<Answer>>>,
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
            for events in requests {
                let answer = match plan(&mut tables, state, events) {
                    Ok(planned) => {
                        tables.apply(&planned)?;
                        state.next_position += planned.new_count();
                        state.next_intent_code = planned.next_intent_code;
                        state.next_name_code.clone_from(&planned.next_name_code);
                        new_names.extend(planned.new_names);
                        let mut steps = Vec::with_capacity(planned.events.len());
                        for step in planned.events {
                            match step {
                                Step::Existing(e) => steps.push(Answer::Existing(e)),
                                Step::New(row) => {
                                    new_events.push(row.event);
                                    steps.push(Answer::New);
                                }
                            }
                        }
                        Ok(steps)
                    }
                    Err(e) => Err(e),
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
}

/// What a request's event comes to, before the commit hands the new ones back.
enum Answer {
    Existing(Box<Event>),
    /// The next of the group's new events, in commit order.
    New,
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
        insert_in_key_order(&mut self.events, &mut records)?;
        let mut ids: Vec<_> = rows
            .iter()
            .map(|r| (r.event.id.as_u128(), r.event.position))
            .collect();
        insert_in_key_order(&mut self.by_id, &mut ids)?;
        let mut by_intent: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    (r.intent_code, r.event.sequence),
                    (r.event.position, r.facts),
                )
            })
            .collect();
        insert_in_key_order(&mut self.by_intent, &mut by_intent)?;
        let mut by_type: Vec<_> = rows
            .iter()
            .map(|r| ((r.facts.1, r.event.position), r.facts))
            .collect();
        insert_in_key_order(&mut self.by_type, &mut by_type)?;
        let mut by_actor: Vec<_> = rows
            .iter()
            .map(|r| ((r.facts.2, r.event.position), r.facts))
            .collect();
        insert_in_key_order(&mut self.by_actor, &mut by_actor)?;
        let mut by_time: Vec<_> = rows
            .iter()
            .map(|r| ((r.facts.0, r.event.position), r.facts))
            .collect();
        insert_in_key_order(&mut self.by_time, &mut by_time)?;
        let mut by_trace: Vec<_> = rows
            .iter()
            .filter_map(|r| Some(((r.trace_code?, r.event.position), r.facts)))
            .collect();
        insert_in_key_order(&mut self.by_trace, &mut by_trace)?;
        Ok(())
    }
}

/// Inserts rows whose keys are not in `table`, sorted into key order first.
///
/// A run of keys that fall into the same gap between stored keys (the end of the log, or the end
/// of one intent's or type's range) goes through one cursor, which buffers the run and packs whole
/// leaves; one insert at a time would rebuild the leaf for every row. A cursor is repositioned
/// whenever the next key lies beyond a stored key.
fn insert_in_key_order<'v, K, V, W>(
    table: &mut redb::Table<'_, K, V>,
    rows: &mut [(K, W)],
) -> Result<()>
where
    K: redb::Key + Ord + Copy + 'static + for<'a> std::borrow::Borrow<K::SelfType<'a>>,
    V: redb::Value + 'static,
    W: Copy + std::borrow::Borrow<V::SelfType<'v>>,
{
    rows.sort_unstable_by_key(|row| row.0);
    let mut rows = rows.iter().copied().peekable();
    while let Some((key, value)) = rows.next() {
        if rows.peek().is_none() {
            table.insert(key, value)?;
            break;
        }
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
        while let Some((key, value)) = rows.peek().copied() {
            match gap.insert_before(key, value) {
                Ok(()) => {
                    rows.next();
                }
                Err(redb::CursorError::UnorderedKey) => break,
                Err(e) => return Err(redb::Error::from(e).into()),
            }
        }
        gap.close()?;
    }
    Ok(())
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
}

impl Plan {
    fn new_count(&self) -> u64 {
        self.events
            .iter()
            .filter(|s| matches!(s, Step::New(_)))
            .count() as u64
    }
}

fn plan(tables: &mut Tables<'_>, state: &WriterState, events: Vec<Prepared>) -> Result<Plan> {
    let mut plan = Plan {
        events: Vec::with_capacity(events.len()),
        heads: HashMap::new(),
        new_intents: Vec::new(),
        new_names: Vec::new(),
        next_intent_code: state.next_intent_code,
        next_name_code: state.next_name_code.clone(),
    };
    let mut ids_in_request = HashSet::with_capacity(events.len());
    let mut next_position = state.next_position;
    for Prepared { new, checked } in events {
        let encoded = checked?;
        let id = new.id.unwrap_or_else(Uuid::now_v7);
        if !ids_in_request.insert(id) {
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
            continue;
        }

        let head = match plan.heads.get(&new.intent_id) {
            Some(head) => Some(head.clone()),
            None => tables
                .intents
                .get(new.intent_id.as_str())?
                .map(|g| IntentHead::decode(g.value(), &new.intent_id))
                .transpose()?,
        };
        let (event, digest, previous_digest) =
            chain_event(new, id, next_position, head.as_ref(), &encoded)?;

        let type_code = name_code(
            tables,
            state,
            &mut plan,
            NameKind::EventType,
            event.event_type.as_str(),
        )?;
        let actor_code = name_code(tables, state, &mut plan, NameKind::Actor, &event.actor)?;
        let intent_code = advance_head(&mut plan, head, &event, digest);

        let record = format::encode_record(
            &event,
            &format::Digests {
                event: digest,
                previous: previous_digest,
            },
            &encoded.payload_json,
            encoded.proof_json.as_deref(),
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
        next_position += 1;
    }
    Ok(plan)
}

/// Makes the stored event of `new`: its place in the log and in its intent's chain, and its hash.
/// Returns it with its digest and its predecessor's.
fn chain_event(
    new: NewEvent,
    id: Uuid,
    position: Position,
    head: Option<&IntentHead>,
    encoded: &Encoded,
) -> Result<(Event, Digest32, Option<Digest32>)> {
    let last_sequence = head.map_or(0, |h| h.last_sequence);
    check_expected_sequence(&new, last_sequence)?;
    let previous_digest = head.map(|h| h.last_hash);
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
    let mut event = Event {
        position,
        id,
        intent_id,
        event_type,
        actor,
        payload,
        created_at: created_at.unwrap_or_else(time::now),
        sequence: last_sequence + 1,
        previous_event_hash: previous_digest.as_ref().map(format_hash),
        event_hash: String::new(),
        trace_id,
        parent_event_id,
        level,
        proof,
    };
    let digest = HashInput::of(&event)
        .digest_with_canonical_payload(&encoded.payload_canonical)
        .map_err(|e| Error::InvalidEvent {
            field: "payload",
            reason: e.to_string(),
        })?;
    event.event_hash = format_hash(&digest);
    if let Some(given) = &chain {
        check_given_chain(&event, given)?;
    }
    Ok((event, digest, previous_digest))
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

/// Validates what can be checked without the store, and encodes the payload and proof.
fn validate(new: &NewEvent, config: &WriteConfig) -> Result<Encoded> {
    let invalid = |field: &'static str, reason: String| Error::InvalidEvent { field, reason };
    check_name("intent_id", &new.intent_id)?;
    check_name("actor", &new.actor)?;
    check_name("event_type", new.event_type.as_str())?;
    if let Some(parent) = &new.parent_event_id {
        check_name("parent_event_id", parent)?;
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
    let payload_canonical =
        jcs::to_canonical_vec(&new.payload).map_err(|e| invalid("payload", e.to_string()))?;
    if let Some(proof) = &new.proof {
        jcs::to_canonical_vec(proof).map_err(|e| invalid("proof", e.to_string()))?;
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
    Ok(Encoded {
        payload_json,
        payload_canonical,
        proof_json: new.proof.as_ref().map(Value::to_string),
    })
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
    if let Some(code) = state.names.get(kind, name) {
        return Ok(code);
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
