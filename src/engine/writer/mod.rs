//! The write path: validation, ids, sequences, the hash chain, index rows, and group commit.
//!
//! Appends from any number of threads meet in one queue. Whoever takes the commit lock becomes
//! the leader: it drains every request waiting, writes them all into the writer's open redb
//! transaction and its write-ahead log entry, hands the new events to subscribers, then answers
//! each caller. While the entry is on disk, the next requests gather for the next leader. Each
//! request succeeds or fails on its own; an atomic batch is one request, so it is written whole
//! or not at all.
//!
//! The open transaction commits when the writer publishes: every publish interval (the store's
//! publisher thread) while a read-only handle has the file open, when the write-ahead log is
//! full, on flush and close, and before any read in this process ([`ReadSource`] for
//! [`Writer`]). Readers in other processes see the file as of the last publish; redb's
//! multi-process mode makes each of those commits durable. With no reader about, appends wait
//! in the open transaction, durable in the log, and a reader that opens the file waits for the
//! next tick to publish them ([`Writer::publish_if_read`]).
//!
//! This file holds the single writer: the queue, the mailboxes callers wait at, the leader's
//! loop, and what a committed group answers. Beneath it, in the order they build on each other:
//! `interface` (what the writer is given and answers), `validate` (the checks that need no
//! store), `rows` (a plan's rows and the tables they go into), `state` (what survives between
//! transactions, the write-ahead log's slot), `plan` (a request checked against the store),
//! `commit` (a group in one transaction) and `recover` (the write-ahead log replayed on open).
//! None of them uses this file.
//!
//! Uses `model::error`, `model::event`, `engine::presence`, `engine::source`, `engine::wal`,
//! `engine::writer::commit`, `engine::writer::interface`, `engine::writer::recover`,
//! `engine::writer::state`, `engine::writer::validate`.

mod commit;
mod interface;
mod plan;
mod recover;
mod rows;
mod state;
mod validate;

pub use crate::engine::writer::interface::{Appended, Durability};
pub(crate) use crate::engine::writer::interface::{CommitListener, Refused, WriteConfig};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redb::WriteTransaction;

use crate::engine::presence::Presence;
use crate::engine::source::ReadSource;
use crate::engine::wal::{self, Ticket};
use crate::engine::writer::commit::{write_group, Answer, Answers};
use crate::engine::writer::recover::recover;
use crate::engine::writer::state::WriterState;
use crate::engine::writer::validate::{refuse_too_deep, Prepared};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;

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

/// The single writer of a store.
pub(crate) struct Writer {
    db: Arc<redb::Database>,
    config: WriteConfig,
    closed: AtomicBool,
    /// Whether the open transaction holds appends that no reader can see yet.
    unpublished: AtomicBool,
    /// The file's presence, when the writer may hold unpublished appends back while no
    /// read-only handle has the file open (see [`Writer::publish_if_read`]).
    hold_back: Option<Arc<Presence>>,
    /// Whether this writer holds the presence's unpublished byte now.
    holding: AtomicBool,
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
    /// A writer of `db`. With `hold_back`, the file's presence, appends made durable by the
    /// write-ahead log may wait unpublished while no read-only handle has the file open; only a
    /// store whose publisher asks [`Writer::publish_if_read`] at every tick may pass it.
    pub(crate) fn new(
        db: Arc<redb::Database>,
        config: WriteConfig,
        listener: Arc<dyn CommitListener>,
        hold_back: Option<Arc<Presence>>,
    ) -> Result<Writer> {
        let mut state = WriterState::load(&db)?;
        if let Some(path) = config.wal.clone() {
            recover(&db, config.durability, &mut state, &*listener, path)?;
        }
        // Only where the log makes every group durable: without it, publishing does.
        let hold_back = hold_back.filter(|_| state.wal.is_some());
        Ok(Writer {
            db,
            config,
            closed: AtomicBool::new(false),
            unpublished: AtomicBool::new(false),
            hold_back,
            holding: AtomicBool::new(false),
            queue: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            state: Mutex::new(state),
            listener,
            finished: Mutex::new(0),
            finished_moved: Condvar::new(),
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
        let events = refuse_too_deep(events)?
            .into_iter()
            .map(|new| Prepared::new(new, &self.config))
            .collect();
        let mailbox = Arc::new(Mailbox::default());
        self.queue.lock().push(Request {
            events,
            reply: Reply(Arc::clone(&mailbox)),
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
                state.last_group = group.len();
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
    /// that alternate, each half the size. The pause ends as soon as as many requests wait as
    /// the last group had, and lasts at most as long as the last commit took (at most 1 ms), so
    /// a caller who does not come back costs at most one commit's time, once.
    ///
    /// Requests are counted, not their threads: a server's calls come from a pool of threads,
    /// one after another on a different one, and a wait for the thread that called last would
    /// then hold every lone append for a caller who is already back.
    fn gather(&self, state: &WriterState) -> Vec<Request> {
        let mut queue = self.queue.lock();
        if queue.len() < state.last_group {
            let deadline = Instant::now() + state.last_commit.min(Duration::from_millis(1));
            while queue.len() < state.last_group {
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

    /// Runs `write` in a write transaction of its own, between groups, and commits it (after
    /// publishing the groups waiting): for small bookkeeping writes (consumer checkpoints).
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
        // A write that fails part way must not take the waiting groups down with it.
        self.publish_holding_lock(&mut state)?;
        let txn = self.db.begin_write()?;
        let value = write(&txn)?;
        txn.commit()?;
        Ok(value)
    }

    /// Makes every acknowledged append visible to readers of the file, in this process and
    /// others, and durable in the file: commits the writer's open transaction, if it has one.
    /// A failure leaves the appends in it unknown to the file, so the store refuses writes
    /// until reopened (under [`Durability::Immediate`] the reopen replays them from the log).
    pub(crate) fn publish(&self) -> Result<()> {
        if !self.unpublished.load(Ordering::SeqCst) {
            return Ok(());
        }
        let published = {
            let mut state = self.state.lock();
            self.publish_holding_lock(&mut state)
        };
        self.hand_off();
        published
    }

    /// The publisher's tick: publishes, unless every append waiting is held back (see
    /// [`Writer::set_unpublished`]) and no read-only handle, in any process, has the file open.
    /// Held-back appends are durable in the write-ahead log already; what a publish adds is a
    /// durable commit of the file (two syncs), which only other processes' readers need. One
    /// that opens the file waits for this writer's unpublished byte, so the next tick sees it
    /// and publishes. The log filling up publishes too, as it always does.
    pub(crate) fn publish_if_read(&self) -> Result<()> {
        if let Some(presence) = &self.hold_back {
            // Should the probe fail, publishing is what is always safe.
            if self.holding.load(Ordering::SeqCst)
                && !presence.readers_present_now().unwrap_or(true)
            {
                return Ok(());
            }
        }
        self.publish()
    }

    /// Records whether the open transaction holds appends no reader can see yet, and keeps the
    /// presence's unpublished byte in step: taken before such appends are answered, let go once
    /// they are published (or lost to a failed commit). Called with the commit lock held.
    fn set_unpublished(&self, unpublished: bool) {
        self.unpublished.store(unpublished, Ordering::SeqCst);
        let Some(presence) = &self.hold_back else {
            return;
        };
        let holding = self.holding.load(Ordering::SeqCst);
        if unpublished && !holding {
            // A reader opening at this instant holds the byte for a moment: the appends then
            // are not held back, and the next tick publishes them.
            let taken = presence.hold_unpublished().unwrap_or(false);
            self.holding.store(taken, Ordering::SeqCst);
        } else if !unpublished && holding {
            // Should the byte stay taken, a reader's open waits its time out and reads the file
            // as it is (which is then everything).
            let _ = presence.release_unpublished();
            self.holding.store(false, Ordering::SeqCst);
        }
    }

    fn publish_holding_lock(&self, state: &mut WriterState) -> Result<()> {
        if let Some(reason) = &state.failed {
            return Err(Error::NeedsReopen(reason.clone()));
        }
        let published = commit::publish(state);
        self.set_unpublished(false);
        published.map_err(|error| {
            let reason = self.lost_reason(&error);
            state.failed = Some(reason.clone());
            Error::NeedsReopen(reason)
        })
    }

    /// What a failed commit of the open transaction did to the appends it held.
    fn lost_reason(&self, error: &Error) -> String {
        match self.config.durability {
            Durability::Immediate => format!(
                "committing appends to the file failed: {error}; they are in the write-ahead \
                 log, and come back when the store is opened again"
            ),
            Durability::Deferred { .. } => format!(
                "making deferred appends durable failed: {error}; appends acknowledged since \
                 the last flush may be lost"
            ),
        }
    }

    /// Makes every acknowledged append durable now: under [`Durability::Immediate`] they are
    /// already, so this publishes them (see [`Writer::publish`]).
    pub(crate) fn flush(&self) -> Result<()> {
        self.publish()
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
        let outcome = write_group(
            &self.db,
            &self.config,
            state,
            requests,
            &mut answers,
            &mut new_events,
            &mut new_names,
        );
        match outcome {
            Ok(()) => {
                // Before any caller is answered, so that a read after an answer publishes.
                self.set_unpublished(state.open_txn.is_some());
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
                self.set_unpublished(false);
                state.open_txn = None;
                if state.open_since.take().is_some() {
                    // The transaction held groups already answered: only a replay of the log
                    // (or nothing, without one) can bring them back.
                    state.failed = Some(self.lost_reason(&error));
                }
                if let Some(slot) = &mut state.wal {
                    slot.full = false;
                    slot.discard();
                }
                if state.failed.is_some() {
                    // Said above.
                } else if state.wal.as_ref().is_some_and(|slot| slot.unconfirmed) {
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

impl ReadSource for Writer {
    /// Publishes what waits in the open transaction first: a reader in the writer's process
    /// sees every append acknowledged before it began.
    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        match self.publish() {
            // A writer that failed leaves the file as its last commit; that can still be read.
            Ok(()) | Err(Error::NeedsReopen(_)) => {}
            Err(other) => return Err(other),
        }
        Ok(redb::ReadableDatabase::begin_read(&*self.db)?)
    }
}
