//! The write path: validation, ids, sequences, the hash chain, index rows, and group commit.
//!
//! Appends from any number of threads meet in one queue. Whoever takes the commit lock becomes
//! the leader: it drains every request waiting, writes them all in one redb transaction, commits
//! once, publishes the new events, then answers each caller. While it is on disk, the next
//! requests gather for the next leader. Each request succeeds or fails on its own; an atomic
//! batch is one request, so it is written whole or not at all.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redb::{ReadableTable, WriteTransaction};
use serde_json::Value;
use uuid::Uuid;

use crate::engine::binary_json;
use crate::engine::format::{
    self, Facts, IntentHead, LazyTable, NameKind, BY_ID, BY_TIME, CODES, EVENTS, INTENTS,
    INTENT_NAMES, NAMES,
};
use crate::engine::ledger::{LedgerPlan, LedgerTables};
use crate::engine::postings;
use crate::engine::wal::{self, Ticket, Wal};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::GivenChain;
use crate::model::event::NewEvent;
use crate::model::event::Position;
use crate::model::event::MAX_NAME_BYTES;
use crate::model::json_depth;
use crate::model::time;
use crate::proof::chain::{format_hash, parse_hash, Digest32, HashStart};
use crate::proof::jcs;

/// How deep arrays and objects may nest in a payload or proof written from now on (a top-level
/// array or object is level 1). An exported event holds its payload one level deeper than the
/// payload itself, and JSON readers (`serde_json`, and so import) stop below 128 levels, so this
/// is two under [`jcs::MAX_DEPTH`]: every event the store accepts exports as a line that imports
/// back. Records are still decoded up to [`jcs::MAX_DEPTH`], so older files read as before.
pub(crate) const MAX_VALUE_DEPTH: usize = jcs::MAX_DEPTH - 2;

/// Why a payload or proof nested deeper than [`MAX_VALUE_DEPTH`] is refused.
fn too_deep_reason() -> String {
    format!(
        "value nests arrays/objects deeper than {MAX_VALUE_DEPTH} levels; an exported event \
         holds it one level deeper, and JSON readers stop at 128 levels"
    )
}

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
    ///
    /// A store in a file makes each commit durable with one write and one sync of its
    /// write-ahead log, `<file>-wal` beside it, which the store folds into the file from time
    /// to time and removes when it closes; after a crash, opening the store replays it. Copy an
    /// open store together with that file (or export it): the file alone holds the events up
    /// to its last fold.
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
    /// The write-ahead log's path, for a store in a file: replayed when the store opens, and
    /// under [`Durability::Immediate`] what makes each commit durable.
    pub(crate) wal: Option<PathBuf>,
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

/// What a waiting caller is told: its answer, or that it is to lead the next commit.
enum Signal {
    Done(Outcome),
    Lead,
}

/// Where a waiting caller's signals arrive: a lead, then its answer.
///
/// A mutex and a condition variable rather than a channel: a waiting caller sleeps at once
/// instead of spinning and yielding first, which with many callers on few cores took the CPU
/// the leader needed.
#[derive(Default)]
struct Mailbox {
    state: Mutex<Letters>,
    posted: Condvar,
}

#[derive(Default)]
struct Letters {
    signals: std::collections::VecDeque<Signal>,
    /// The writer dropped its end: no answer is coming.
    hung_up: bool,
}

impl Mailbox {
    /// The next signal; `None` when the writer dropped the request without answering it.
    fn recv(&self) -> Option<Signal> {
        let mut letters = self.state.lock();
        loop {
            if let Some(signal) = letters.signals.pop_front() {
                return Some(signal);
            }
            if letters.hung_up {
                return None;
            }
            self.posted.wait(&mut letters);
        }
    }
}

/// The writer's end of a caller's [`Mailbox`]; dropping it unanswered tells the caller so.
struct Reply(Arc<Mailbox>);

impl Reply {
    fn send(&self, signal: Signal) {
        self.0.state.lock().signals.push_back(signal);
        self.0.posted.notify_one();
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.0.state.lock().hung_up = true;
        self.0.posted.notify_one();
    }
}

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
    /// The payload's binary form, as stored.
    payload_binary: Vec<u8>,
    /// The event's hash, begun with what the caller gave (the payload's RFC 8785 form at least).
    hash: HashStart,
    proof_binary: Option<Vec<u8>>,
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
    /// The largest id stored, as a number (0 when none): an id above it is not stored yet, so
    /// planning it needs no look-up in `by_id`. Ids oidb makes (UUID v7) and most given ones grow.
    last_id: u128,
    next_intent_code: u64,
    next_name_code: HashMap<NameKind, u32>,
    names: Names,
    unflushed: bool,
    failed: Option<String>,
    /// The store is closed and its write-ahead log gone: nothing more is written.
    closed: bool,
    /// The threads whose requests the last commit answered: most call again at once.
    last_callers: HashSet<ThreadId>,
    /// How long the last commit took.
    last_commit: Duration,
    /// The write-ahead log, when commits are made durable through it.
    wal: Option<WalSlot>,
    /// The groups committed through the log so far.
    logged_groups: u64,
    /// The last block of each index code appended to lately, as committed.
    tails: postings::Tails,
}

/// The write-ahead log of a store in a file under [`Durability::Immediate`], created by the first
/// commit that needs it.
struct WalSlot {
    path: PathBuf,
    store_id: String,
    open: Option<Wal>,
    /// An entry went to the log whose redb commit has not succeeded (yet): if that commit fails,
    /// the log and the file disagree until the store is reopened and the log replayed.
    unconfirmed: bool,
    /// The log had no room for the group being written: it commits to the file durably.
    full: bool,
    /// Records of the group being written that are not in the log yet, and the position of the
    /// first: a group's requests go to the log as one entry, so one sync covers them.
    unlogged: Vec<Vec<u8>>,
    unlogged_from: Option<Position>,
}

impl WalSlot {
    fn get(&mut self) -> Result<&mut Wal> {
        if self.open.is_none() {
            self.open = Some(Wal::create(&self.path, &self.store_id)?);
        }
        self.open
            .as_mut()
            .ok_or_else(|| Error::NeedsReopen("the write-ahead log could not be created".into()))
    }

    /// Keeps the records `planned` adds for the group's entry in the log; [`WalSlot::write`]
    /// writes them.
    fn keep(&mut self, planned: &Plan) {
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
    fn write(&mut self, last: Option<&Plan>) -> Result<()> {
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
    fn discard(&mut self) {
        self.unlogged.clear();
        self.unlogged_from = None;
    }
}

/// A group committed to the file whose entry in the write-ahead log may not be durable yet: its
/// events are published and its callers answered once it is, in the order groups committed.
struct Pending {
    /// The group's number, from 1: groups finish in this order.
    number: u64,
    /// What to wait for: the last entry written when the group committed.
    durable: Option<(wal::Sync, Ticket)>,
    new_events: Vec<Event>,
    replies: Vec<Reply>,
    answers: Vec<Answers>,
}

impl WriterState {
    fn load(db: &redb::Database) -> Result<WriterState> {
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
                unflushed: false,
                failed: None,
                closed: false,
                last_callers: HashSet::new(),
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
    closed: AtomicBool,
    queue: Mutex<Vec<Request>>,
    /// Signalled whenever a request joins the queue.
    arrived: Condvar,
    state: Mutex<WriterState>,
    listener: Arc<dyn CommitListener>,
    /// The last group committed through the log that finished (published, answered).
    finished: Mutex<u64>,
    /// Signalled whenever `finished` moves.
    finished_moved: Condvar,
}

impl Writer {
    pub(crate) fn new(
        db: Arc<redb::Database>,
        config: WriteConfig,
        listener: Arc<dyn CommitListener>,
    ) -> Result<Writer> {
        let state = WriterState::load(&db)?;
        let writer = Writer {
            db,
            config,
            closed: AtomicBool::new(false),
            queue: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            state: Mutex::new(state),
            listener,
            finished: Mutex::new(0),
            finished_moved: Condvar::new(),
        };
        if let Some(path) = writer.config.wal.clone() {
            writer.recover(path)?;
        }
        Ok(writer)
    }

    /// Replays what the write-ahead log at `path` holds beyond the file's last durable commit
    /// (what a crash took from the file), makes it durable, and removes the log; then, under
    /// [`Durability::Immediate`], readies a new log for the commits to come.
    fn recover(&self, path: PathBuf) -> Result<()> {
        let store_id = format::store_id(&*self.db)?;
        let mut state = self.state.lock();
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
                self.replay(&mut state, events)
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
        if self.config.durability == Durability::Immediate {
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
    fn replay(&self, state: &mut WriterState, events: Vec<Event>) -> Result<()> {
        let config = WriteConfig {
            durability: Durability::Immediate,
            max_payload_bytes: usize::MAX,
            wal: None,
        };
        let positions: Vec<Position> = events.iter().map(|e| e.position).collect();
        let prepared = events
            .into_iter()
            .map(|e| Prepared::new(NewEvent::restoring(e), &config))
            .collect();
        let mut txn = self.db.begin_write()?;
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
                reason: "the log's events do not come out at the positions they were written at"
                    .into(),
            });
        }
        txn.commit()?;
        state.tails.committed();
        for (kind, name, code) in new_names {
            state.names.of(kind).insert(name, code);
        }
        self.listener.committed(&new_events);
        Ok(())
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
        let events = refuse_too_deep(events)?
            .into_iter()
            .map(|new| Prepared::new(new, &self.config))
            .collect();
        let mailbox = Arc::new(Mailbox::default());
        self.queue.lock().push(Request {
            events,
            reply: Reply(Arc::clone(&mailbox)),
            caller: std::thread::current().id(),
        });
        self.arrived.notify_one();
        self.lead_while_queued();
        loop {
            match mailbox.recv() {
                Some(Signal::Done(outcome)) => return outcome,
                Some(Signal::Lead) => self.lead_while_queued(),
                None => {
                    return Err(Error::NeedsReopen(
                        "the writer stopped while handling this append".into(),
                    )
                    .into())
                }
            }
        }
    }

    /// Commits the queued requests as one group if no one else is committing, and makes sure
    /// that whatever was queued meanwhile gets a leader.
    ///
    /// Whoever lets go of the commit lock looks at the queue afterwards: a request queued while
    /// the lock was held found it taken and waits for that look. A leader that committed a group
    /// hands the next one to the first waiting caller (so that its own caller gets its answer
    /// now); one that found nothing to commit tries again.
    fn lead_while_queued(&self) {
        loop {
            let Some(mut state) = self.state.try_lock() else {
                return;
            };
            let group = self.gather(&state);
            let led = !group.is_empty();
            let mut pending = None;
            if led {
                let started = Instant::now();
                state.last_callers = group.iter().map(|r| r.caller).collect();
                pending = self.commit_group(&mut state, group);
                state.last_commit = started.elapsed();
            }
            drop(state);
            if led {
                // The next group can be written while this one's log entry reaches the disk.
                self.hand_off();
                if let Some(pending) = pending {
                    self.finish(pending);
                }
                return;
            }
            if self.queue.lock().is_empty() {
                return;
            }
        }
    }

    /// Tells the first waiting caller, if any, to lead: called by whoever lets go of the commit
    /// lock, since a request queued while it was held waits for someone to look.
    fn hand_off(&self) {
        if let Some(next) = self.queue.lock().first() {
            next.reply.send(Signal::Lead);
        }
    }

    /// Takes the queued requests as the next group, first giving the callers of the last group a
    /// moment to queue again.
    ///
    /// Callers that each wait for their own answer queue their next request only once answered,
    /// which is after the leader that follows has already taken the queue (and, through the
    /// write-ahead log, after their entry's sync): without a pause the group splits into two
    /// that alternate, each half the size. The pause ends as soon as every recent caller is
    /// back, and lasts at most as long as the last commit took (at most 1 ms), so a caller who
    /// does not come back costs at most one commit's time, once.
    fn gather(&self, state: &WriterState) -> Vec<Request> {
        let mut queue = self.queue.lock();
        let callers: HashSet<ThreadId> = state
            .last_callers
            .iter()
            .copied()
            .chain(queue.iter().map(|r| r.caller))
            .collect();
        if queue.len() < callers.len() {
            let deadline = Instant::now() + state.last_commit.min(Duration::from_millis(1));
            while queue.len() < callers.len() {
                if self.arrived.wait_until(&mut queue, deadline).timed_out() {
                    break;
                }
            }
        }
        std::mem::take(&mut *queue)
    }

    /// Refuses new appends, writes those already waiting, and makes everything durable.
    pub(crate) fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        let pending = {
            let mut state = self.state.lock();
            let group = std::mem::take(&mut *self.queue.lock());
            self.commit_group(&mut state, group)
        };
        if let Some(pending) = pending {
            self.finish(pending);
        }
        // `flush` hands off whatever was queued after the group above.
        self.flush()?;
        // Everything is durable in the file: the write-ahead log has nothing left to give.
        let slot = {
            let mut state = self.state.lock();
            state.closed = true;
            state.wal.take()
        };
        // An append that found the store open just before it closed may have queued since the
        // flush let go: whoever leads it now answers it Closed.
        self.hand_off();
        match slot.and_then(|slot| slot.open) {
            Some(wal) => wal.remove(),
            None => Ok(()),
        }
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
        let written = self.write_exclusive_holding_lock(write);
        self.hand_off();
        written
    }

    fn write_exclusive_holding_lock<T>(
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
        let flushed = self.flush_holding_lock();
        self.hand_off();
        flushed
    }

    fn flush_holding_lock(&self) -> Result<()> {
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
            // Durable commits are rare now: each saves redb's allocator state, so that opening
            // the file after a crash need not rebuild it by walking every tree.
            txn.set_quick_repair(true);
            txn.commit()?;
            Ok(())
        };
        match commit() {
            Ok(()) => {
                state.unflushed = false;
                if let Some(wal) = state.wal.as_mut().and_then(|slot| slot.open.as_mut()) {
                    wal.restart();
                }
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

    /// Writes and commits `group`. A group committed through the write-ahead log comes back
    /// [`Pending`], for [`Writer::finish`] once the commit lock is let go; any other is answered
    /// here.
    fn commit_group(&self, state: &mut WriterState, group: Vec<Request>) -> Option<Pending> {
        if group.is_empty() {
            return None;
        }
        if state.closed {
            for request in group {
                request.reply.send(Signal::Done(Err(Error::Closed.into())));
            }
            return None;
        }
        if let Some(reason) = &state.failed {
            for request in group {
                request
                    .reply
                    .send(Signal::Done(Err(Error::NeedsReopen(reason.clone()).into())));
            }
            return None;
        }
        let mut replies = Vec::with_capacity(group.len());
        let mut requests = Vec::with_capacity(group.len());
        for request in group {
            replies.push(request.reply);
            requests.push(request.events);
        }
        let mut answers: Vec<Answers> = Vec::with_capacity(requests.len());
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
                if let Some(slot) = &state.wal {
                    // Even a group that wrote nothing waits for the log: an answer of "already
                    // appended" must not come before the event it names is durable.
                    state.logged_groups += 1;
                    let durable = slot
                        .open
                        .as_ref()
                        .map(|wal| (wal.sync().clone(), wal.written()));
                    return Some(Pending {
                        number: state.logged_groups,
                        durable,
                        new_events,
                        replies,
                        answers,
                    });
                }
                if !new_events.is_empty() {
                    self.listener.committed(&new_events);
                }
                answer(new_events, replies, answers);
            }
            Err(error) => {
                let message = error.to_string();
                if let Some(slot) = &mut state.wal {
                    slot.full = false;
                    slot.discard();
                }
                if state.wal.as_ref().is_some_and(|slot| slot.unconfirmed) {
                    // The log may hold the group the file did not take: only a replay, when
                    // the store is opened again, can bring the two back together.
                    state.failed = Some(format!(
                        "{message}; the events of the failed commit may be in the write-ahead \
                         log, and come back when the store is opened again"
                    ));
                } else {
                    // The file did not take the transaction; the in-memory counters may have moved.
                    match WriterState::load(&self.db) {
                        Ok(mut fresh) => {
                            fresh.wal = state.wal.take();
                            *state = fresh;
                        }
                        Err(_) => state.failed = Some(message.clone()),
                    }
                }
                // The requests after the one the transaction failed in have no answer yet.
                let mut answers = answers.into_iter();
                for reply in replies {
                    let failure = match answers.next() {
                        Some(Err(own)) => own,
                        Some(Ok(_)) | None => Error::NeedsReopen(message.clone()).into(),
                    };
                    reply.send(Signal::Done(Err(failure)));
                }
            }
        }
        None
    }

    /// Waits until a group's log entry is durable, then, in the order groups committed,
    /// publishes its events and answers its callers. Runs without the commit lock.
    fn finish(&self, pending: Pending) {
        let Pending {
            number,
            durable,
            new_events,
            replies,
            answers,
        } = pending;
        let synced = match durable {
            Some((sync, ticket)) => sync.wait_durable(ticket),
            None => Ok(()),
        };
        let mut finished = self.finished.lock();
        while *finished + 1 < number {
            self.finished_moved.wait(&mut finished);
        }
        match synced {
            Ok(()) => {
                if !new_events.is_empty() {
                    self.listener.committed(&new_events);
                }
                answer(new_events, replies, answers);
            }
            Err(reason) => {
                let reason = format!(
                    "{reason}; the events of the commits since the last successful sync may be \
                     in the write-ahead log, and come back when the store is opened again"
                );
                self.state
                    .lock()
                    .failed
                    .get_or_insert_with(|| reason.clone());
                for reply in replies {
                    reply.send(Signal::Done(Err(Error::NeedsReopen(reason.clone()).into())));
                }
            }
        }
        *finished = number;
        self.finished_moved.notify_all();
    }

    /// Writes the group in one transaction. Per-request failures go to `answers`; an `Err` here
    /// means the transaction itself failed and nothing was written.
    fn write_group(
        &self,
        state: &mut WriterState,
        requests: Vec<Vec<Prepared>>,
        answers: &mut Vec<Answers>,
        new_events: &mut Vec<Event>,
        new_names: &mut Vec<(NameKind, String, u32)>,
    ) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        state.tails.begin();
        let durability = match self.config.durability {
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
        let events = events
            .iter()
            .map(|new| Prepared::new(new.clone(), &self.config))
            .collect();
        if let Ok(planned) = plan(tables, written.state, events) {
            commit_plan(tables, written, planned, Log::Keep)?;
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

/// What a request's events come to, before the commit hands the new ones back.
type Answers = std::result::Result<Vec<Answer>, Refused>;

/// One event of a request, written: already stored, or the group's new event at this index.
enum Answer {
    Existing(Box<Event>),
    New(usize),
}

/// What a planned request's records do in the write-ahead log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Log {
    /// They wait for the group's entry: more requests follow in the group.
    Keep,
    /// They go to the log now, with those kept before them, as one entry: the group's last.
    Write,
}

/// Writes a planned request and moves the writer's counters past it; returns what it appended.
fn commit_plan(
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

/// Every table an append touches, in one write transaction. Those only rows are written to
/// open when first used: for a single append under the write-ahead log, after its entry is
/// written, while the disk syncs it.
struct Tables<'txn> {
    events: LazyTable<'txn, u64, &'static [u8]>,
    by_id: redb::Table<'txn, u128, u64>,
    postings: postings::Writer<'txn>,
    by_time: LazyTable<'txn, (i64, u64), Facts>,
    intents: redb::Table<'txn, &'static str, &'static [u8]>,
    intent_names: LazyTable<'txn, u64, &'static str>,
    names: LazyTable<'txn, (u8, &'static str), u32>,
    codes: LazyTable<'txn, (u8, u32), &'static str>,
    ledger: LedgerTables<'txn>,
    #[cfg(feature = "signatures")]
    signing: crate::engine::signing::SigningTables<'txn>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Tables<'txn>> {
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
    fn apply(&mut self, planned: &Plan, tails: &mut postings::Tails) -> Result<()> {
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
    /// Names already stored that the writer's cache did not hold: it holds them once committed.
    found_names: Vec<(NameKind, String, u32)>,
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
        payload,
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

/// Refuses a request with a payload or proof nested deeper than [`MAX_VALUE_DEPTH`], naming the
/// event, before anything serializes or drops it recursively: a value nested 100,000 deep would
/// overflow the stack. The refused values are torn down without recursion.
fn refuse_too_deep(events: Vec<NewEvent>) -> std::result::Result<Vec<NewEvent>, Refused> {
    let too_deep = |value: &Value| json_depth::exceeds(value, MAX_VALUE_DEPTH);
    let refused = events.iter().enumerate().find_map(|(index, event)| {
        if too_deep(&event.payload) {
            Some((index, "payload"))
        } else if event.proof.as_ref().is_some_and(too_deep) {
            Some((index, "proof"))
        } else {
            None
        }
    });
    let Some((index, field)) = refused else {
        return Ok(events);
    };
    for event in events {
        json_depth::dismantle(event.payload);
        if let Some(proof) = event.proof {
            json_depth::dismantle(proof);
        }
    }
    Err(Refused {
        index: Some(index),
        error: Box::new(Error::InvalidEvent {
            field,
            reason: too_deep_reason(),
        }),
    })
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
    if let Some(t) = new.created_at {
        if !time::has_wire_form(t) {
            return Err(invalid(
                "created_at",
                format!("{t} is outside the years 0000 to 9999 that an RFC 3339 time can hold"),
            ));
        }
    }
    if let Some(trace_id) = &new.trace_id {
        // W3C Trace Context and OTLP hold an all-zero trace id invalid: such an event could be
        // stored but never read back by its trace nor exported as a span.
        if format::trace_code(trace_id).is_none_or(|code| code == 0) {
            return Err(invalid(
                "trace_id",
                format!(
                    "{trace_id:?} must be 32 lowercase hex digits, not all zero (RFC-0020 / W3C trace id)"
                ),
            ));
        }
    }
    if !new.payload.is_object() {
        return Err(invalid(
            "payload",
            format!(
                "must be a JSON object, found {}; wrap it, e.g. {{\"value\": …}}",
                crate::model::wire::kind(&new.payload)
            ),
        ));
    }
    let too_deep = |field| invalid(field, too_deep_reason());
    let mut payload_binary = Vec::with_capacity(256);
    let payload_json_len =
        binary_json::encode(&new.payload, &mut payload_binary).map_err(|_| too_deep("payload"))?;
    if payload_json_len > config.max_payload_bytes {
        return Err(invalid(
            "payload",
            format!(
                "is {payload_json_len} bytes, over the limit of {} bytes (StoreBuilder::max_payload_bytes raises it)",
                config.max_payload_bytes
            ),
        ));
    }
    let hash = HashStart::of(new).map_err(|e| invalid("payload", e.to_string()))?;
    if let Some(proof) = &new.proof {
        jcs::to_canonical_vec(proof).map_err(|e| invalid("proof", e.to_string()))?;
    }
    let proof_binary = new
        .proof
        .as_ref()
        .map(binary_json::to_vec)
        .transpose()
        .map_err(|_| too_deep("proof"))?;
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
        payload_binary,
        hash,
        proof_binary,
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

/// Answers each caller of a committed group; the new events go back to them without a copy.
fn answer(new_events: Vec<Event>, replies: Vec<Reply>, answers: Vec<Answers>) {
    let mut committed: Vec<Option<Event>> = new_events.into_iter().map(Some).collect();
    for (reply, answer) in replies.into_iter().zip(answers) {
        let answer = answer.map(|steps| {
            steps
                .into_iter()
                .filter_map(|step| match step {
                    Answer::Existing(e) => Some(Appended::AlreadyAppended(*e)),
                    Answer::New(i) => committed
                        .get_mut(i)
                        .and_then(Option::take)
                        .map(Appended::New),
                })
                .collect()
        });
        reply.send(Signal::Done(answer));
    }
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
