//! Subscriptions: committed events delivered to in-process subscribers, in position order, with
//! no gap and no duplicate, and with no subscriber able to block the writer or lose an event.
//!
//! How it holds together:
//! - The writer calls [`Hub::committed`] after every commit, in position order. The hub sends
//!   each live subscriber that the commit has events for one message per commit, with
//!   `try_send`: it never blocks, and a subscriber wakes once per commit, not once per event.
//!   The message names the commit's positions; the first subscriber to receive it reads those
//!   records from the file (they are committed, so readable) and every other subscriber shares
//!   what it read, one [`Arc`] per event, delivering straight from that shared list. The
//!   writer's own events go back to the appenders; it copies one for subscribers only when a
//!   commit holds a single event.
//! - A subscriber registers by taking the hub's lock and reading the last published position P.
//!   Everything up to P is on disk; everything after P will come through its channel. It reads
//!   history from disk up to P, says [`Delivery::CaughtUp`], then reads its channel.
//! - When a channel would hold more events than its capacity, the hub marks that subscriber
//!   lagging and stops sending to it. The subscriber drains its channel, registers again at the
//!   new last published position, reads the missed events from disk, and goes on with its
//!   channel. Positions it has already delivered are skipped, so nothing is delivered twice.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `engine::format`,
//! `engine::reader`, `engine::source`, `engine::writer`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use redb::ReadableTable;

use crate::engine::format::{self, EVENTS};
use crate::engine::reader::{self, PageOut as _, Records};
use crate::engine::source::ReadSource;
use crate::engine::writer::CommitListener;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::Level;
use crate::model::event::Position;
use crate::model::event_type::EventType;
use crate::model::filter::Query;

/// The default capacity of a subscriber's channel, in events.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;

/// Which events a subscription receives. Everything, unless narrowed.
///
/// ```
/// use oidb::{EventType, Filter};
/// let llm_calls = Filter::new().intent("intent-42").type_prefix("llm_");
/// let tasks = Filter::new().event_types([EventType::TaskCreated, EventType::TaskCompleted]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Filter {
    intent: Option<String>,
    types: Vec<EventType>,
    prefixes: Vec<String>,
    actor: Option<String>,
    trace_id: Option<String>,
    min_level: Option<Level>,
}

impl Filter {
    /// Every event.
    pub fn new() -> Self {
        Filter::default()
    }

    /// Only this intent's events.
    pub fn intent(mut self, intent_id: impl Into<String>) -> Self {
        self.intent = Some(intent_id.into());
        self
    }

    /// Only events of this type (call again, or add prefixes, to allow more).
    pub fn event_type(mut self, event_type: impl Into<EventType>) -> Self {
        self.types.push(event_type.into());
        self
    }

    /// Only events of these types.
    pub fn event_types<T: Into<EventType>>(mut self, types: impl IntoIterator<Item = T>) -> Self {
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Only events whose type starts with `prefix`, such as `llm_` or `task.`.
    pub fn type_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(prefix.into());
        self
    }

    /// Only events by this actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Only events of this trace.
    pub fn trace(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// Only events at this level or more severe.
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = Some(level);
        self
    }

    /// Whether `event` passes.
    #[must_use]
    pub fn matches(&self, event: &Event) -> bool {
        let any_type = self.types.is_empty() && self.prefixes.is_empty();
        let type_ok = any_type
            || self.types.contains(&event.event_type)
            || self
                .prefixes
                .iter()
                .any(|p| event.event_type.as_str().starts_with(p.as_str()));
        type_ok
            && self.intent.as_ref().is_none_or(|i| *i == event.intent_id)
            && self.actor.as_ref().is_none_or(|a| *a == event.actor)
            && self
                .trace_id
                .as_ref()
                .is_none_or(|t| event.trace_id.as_ref() == Some(t))
            && self.min_level.is_none_or(|l| event.level >= l)
    }

    /// The query that reads the same events from disk.
    pub(crate) fn to_query(&self) -> Query {
        let mut query = Query::new().event_types(self.types.iter().cloned());
        query.intent.clone_from(&self.intent);
        query.prefixes.clone_from(&self.prefixes);
        query.actor.clone_from(&self.actor);
        query.trace_id.clone_from(&self.trace_id);
        query.min_level = self.min_level;
        query
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the first event in the log.
    Beginning,
    /// With the first event committed after the subscription is made.
    Now,
    /// With the first event after this position.
    After(Position),
}

/// What a subscription yields.
///
/// Events come as [`Arc<Event>`]: every subscriber that receives an event shares one copy of it,
/// so a commit costs the same whether one subscriber watches or a hundred. Read it through the
/// `Arc` (`event.position`, `&*event`), or take an owned [`Event`] with
/// [`Arc::unwrap_or_clone`], which copies only when others still hold it.
///
/// ```
/// # let store = oidb::Store::in_memory()?;
/// use oidb::{Delivery, Event, EventType, Filter, Start};
/// store.log_event("intent-42", EventType::Comment, serde_json::json!({"n": 1}))?;
/// let mut sub = store.subscribe(Filter::new(), Start::Beginning)?;
/// if let Some(Delivery::Event(shared)) = sub.recv()? {
///     assert_eq!(shared.sequence, 1);
///     let owned: Event = std::sync::Arc::unwrap_or_clone(shared);
///     assert_eq!(owned.intent_id, "intent-42");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// A committed event, in position order, shared with the other subscribers that receive it.
    Event(Arc<Event>),
    /// History is done: every matching event up to `position` has been delivered, and what
    /// follows is live. Comes exactly once per subscription.
    CaughtUp {
        /// The last position history covered.
        position: Position,
    },
}

/// One commit as every subscriber sees it: the positions it made, and its events once the first
/// subscriber that needs them has read them from the file, shared by all from then on.
///
/// The writer's own copies go back to the appenders; reading the committed records again on a
/// subscriber's thread keeps the copy for subscribers off the commit lock. Only a single
/// append's event is copied by the hub instead.
struct Commit {
    first: Position,
    last: Position,
    /// The events once read (`None` if reading them failed). The first subscriber to get here
    /// reads them while any others wait, rather than each reading them too. Every subscriber
    /// holds the commit itself, so the list is not shared again behind an `Arc` of its own.
    events: OnceLock<Option<Vec<Arc<Event>>>>,
}

impl Commit {
    /// The commit's events, in position order; `None` when an earlier attempt to read them
    /// failed, and the caller must read them as history.
    fn events(&self, db: &dyn ReadSource) -> Result<Option<&[Arc<Event>]>> {
        let mut failure = None;
        let events = self.events.get_or_init(|| match self.read(db) {
            Ok(events) => Some(events),
            Err(error) => {
                failure = Some(error);
                None
            }
        });
        match failure {
            Some(error) => Err(error),
            None => Ok(events.as_deref()),
        }
    }

    /// The events once read; empty before, or when reading them failed.
    fn events_read(&self) -> &[Arc<Event>] {
        self.events.get().and_then(Option::as_deref).unwrap_or(&[])
    }

    fn read(&self, db: &dyn ReadSource) -> Result<Vec<Arc<Event>>> {
        let txn = db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        // Sized once: growing a list this large as records come would reallocate it several
        // times, each time a request large enough to make the allocator sweep up what the
        // previous commit's events freed.
        let count = self.last.saturating_sub(self.first).saturating_add(1);
        let mut events = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for row in table.range(self.first..=self.last)? {
            let (position, record) = row?;
            let position = position.value();
            events.push(Arc::new(format::decode_record(position, record.value())?));
        }
        Ok(events)
    }
}

/// What the hub sends a subscriber: a commit, and how many of its events pass the filter.
struct Batch {
    commit: Arc<Commit>,
    matching: usize,
}

/// What the hub and a subscriber share about the subscriber's channel.
#[derive(Default)]
struct Inbox {
    /// Matching events in the channel: added by the hub before it sends a batch, taken off by
    /// the subscriber as it receives one.
    queued: AtomicUsize,
    /// Set by the hub when the channel would hold too much; it then sends nothing more until
    /// the subscriber has read what it missed from disk.
    lagging: AtomicBool,
}

/// One subscriber as the hub sees it.
struct Slot {
    id: u64,
    filter: Filter,
    /// Whether the filter passes every event, so that a commit is sent without looking.
    takes_everything: bool,
    capacity: usize,
    sender: Sender<Batch>,
    inbox: Arc<Inbox>,
}

impl Slot {
    /// Sends this subscriber a commit that has events for it, or marks it lagging when its
    /// channel would hold more events than its capacity. A commit larger than the capacity still
    /// goes to an empty channel: the subscriber would otherwise read every such commit back from
    /// disk the slow way. Returns false when the subscription is gone.
    fn offer(&self, commit: &Arc<Commit>, events: &[Event]) -> bool {
        if self.inbox.lagging.load(Ordering::SeqCst) {
            return true;
        }
        let matching = if self.takes_everything {
            events.len()
        } else {
            events.iter().filter(|e| self.filter.matches(e)).count()
        };
        if matching == 0 {
            return true;
        }
        let queued = self.inbox.queued.load(Ordering::SeqCst);
        if queued > 0 && queued + matching > self.capacity {
            // It reads the rest from disk when it has drained its channel.
            self.inbox.lagging.store(true, Ordering::SeqCst);
            return true;
        }
        // Counted before it is sent, so the subscriber never takes off more than was added.
        self.inbox.queued.fetch_add(matching, Ordering::SeqCst);
        let batch = Batch {
            commit: Arc::clone(commit),
            matching,
        };
        match self.sender.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.inbox.queued.fetch_sub(matching, Ordering::SeqCst);
                self.inbox.lagging.store(true, Ordering::SeqCst);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

#[derive(Default)]
struct HubState {
    slots: Vec<Slot>,
    last_published: Position,
    closed: bool,
}

/// The registry of subscribers, told of every commit by the writer.
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub whose log ends at `last_position`.
    pub(crate) fn new(last_position: Position) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                last_published: last_position,
                ..HubState::default()
            }),
            next_id: AtomicU64::new(1),
        }
    }

    /// Registers a subscriber; returns the last published position (its history ends there), or
    /// `None` when the hub is closed.
    fn register(&self, slot: Slot) -> Option<Position> {
        let mut state = self.state.lock();
        if state.closed {
            return None;
        }
        state.slots.push(slot);
        Some(state.last_published)
    }

    /// Puts a lagging subscriber back on its channel; returns the last published position (it
    /// must read up to there from disk), or `None` when the hub is closed.
    fn resume(&self, inbox: &Inbox) -> Option<Position> {
        let state = self.state.lock();
        if state.closed {
            return None;
        }
        inbox.lagging.store(false, Ordering::SeqCst);
        Some(state.last_published)
    }

    fn unregister(&self, id: u64) {
        self.state.lock().slots.retain(|s| s.id != id);
    }

    /// Ends every subscription: their channels close, and their iterators end.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.slots.clear();
    }

    /// How many subscriptions are registered.
    pub(crate) fn subscriber_count(&self) -> usize {
        self.state.lock().slots.len()
    }
}

impl CommitListener for Hub {
    fn committed(&self, events: &[Event]) {
        let mut state = self.state.lock();
        if let Some(last) = events.last() {
            state.last_published = last.position;
        }
        if state.slots.is_empty() {
            return;
        }
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let commit = Arc::new(Commit {
            first: first.position,
            last: last.position,
            events: OnceLock::new(),
        });
        // A single append's event is copied here: one copy costs the writer about 1% of such a
        // commit, and spares the subscribers a read transaction (about a third of the time
        // from commit to receive, at p50). Larger commits are read back by a subscriber.
        if let [event] = events {
            let _ = commit.events.set(Some(vec![Arc::new(event.clone())]));
        }
        state.slots.retain(|slot| slot.offer(&commit, events));
    }
}

/// Where a subscription is in its stream.
enum Phase {
    /// Reading from disk up to `until`.
    History { until: Position },
    /// Reading its channel.
    Live,
    /// The store closed.
    Ended,
}

/// A live feed of committed events, from [`Store::subscribe`](crate::Store::subscribe).
///
/// Dropping it unsubscribes. It never blocks the writer: when it falls behind its channel, it
/// reads what it missed from disk and catches up on its own.
pub struct Subscription {
    db: Option<Arc<dyn ReadSource>>,
    hub: Arc<Hub>,
    id: u64,
    inbox: Arc<Inbox>,
    receiver: Receiver<Batch>,
    filter: Filter,
    query: Query,
    /// Whether the filter passes every event, so that a commit's events are delivered without
    /// looking at them.
    takes_everything: bool,
    /// Every matching event up to here has been delivered or is in `history` or `delivering`.
    buffered_to: Position,
    /// Events to deliver next, in position order: a page of history, each decoded as it is
    /// delivered.
    history: Records,
    /// The commit whose events are delivered next, straight from the list every subscriber
    /// shares.
    delivering: Option<Delivering>,
    phase: Phase,
    caught_up_sent: bool,
    fallbacks: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("query", &self.query)
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

const HISTORY_PAGE: usize = 256;

/// A commit being delivered: `next` is the index of its next event to deliver, which passes the
/// filter and was not delivered yet.
struct Delivering {
    commit: Arc<Commit>,
    next: usize,
}

/// The index of the first event of `events`, from `from` on, that comes after `after` and
/// passes `filter` (every one does when `everything`).
fn next_deliverable(
    events: &[Arc<Event>],
    from: usize,
    after: Position,
    filter: &Filter,
    everything: bool,
) -> Option<usize> {
    events
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, e)| e.position > after && (everything || filter.matches(e)))
        .map(|(index, _)| index)
}

impl Subscription {
    /// Registers a subscription on `hub`; history is read from `db`.
    pub(crate) fn register(
        db: Arc<dyn ReadSource>,
        hub: Arc<Hub>,
        filter: Filter,
        start: Start,
        capacity: usize,
    ) -> Result<Subscription> {
        let capacity = capacity.max(1);
        // Every batch holds an event at least, so the count of events bounds the channel first.
        let (sender, receiver) = bounded(capacity);
        let inbox = Arc::new(Inbox::default());
        let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
        let query = filter.to_query();
        let takes_everything = filter == Filter::new();
        let slot = Slot {
            id,
            takes_everything,
            filter: filter.clone(),
            capacity,
            sender,
            inbox: Arc::clone(&inbox),
        };
        let registered_at = hub.register(slot).ok_or(Error::Closed)?;
        let buffered_to = match start {
            Start::Beginning => 0,
            Start::Now => registered_at,
            Start::After(position) => position,
        };
        Ok(Subscription {
            db: Some(db),
            hub,
            id,
            inbox,
            receiver,
            filter,
            query,
            takes_everything,
            buffered_to,
            history: Records::default(),
            delivering: None,
            phase: Phase::History {
                until: registered_at,
            },
            caught_up_sent: false,
            fallbacks: 0,
        })
    }

    /// The next delivery, waiting as long as it takes; `Ok(None)` once the store has closed.
    ///
    /// # Errors
    /// A storage error while reading history from disk.
    pub fn recv(&mut self) -> Result<Option<Delivery>> {
        self.next_delivery(None)
    }

    /// The next delivery, waiting at most `timeout`; `Ok(None)` when none came in time.
    ///
    /// # Errors
    /// [`Error::Closed`] once the store has closed; a storage error while reading history.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Delivery>> {
        match self.next_delivery(Some(Instant::now() + timeout))? {
            Some(delivery) => Ok(Some(delivery)),
            None if matches!(self.phase, Phase::Ended) => Err(Error::Closed),
            None => Ok(None),
        }
    }

    /// The deliveries as a blocking iterator that ends when the store closes.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<Delivery>> + '_ {
        std::iter::from_fn(move || self.recv().transpose())
    }

    /// How many times this subscription overflowed its channel and read what it missed from
    /// disk. Often above zero means the reader is slower than the writers (or the channel small).
    #[must_use]
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks
    }

    /// The last position delivered (or passed over as not matching).
    #[must_use]
    pub fn position(&self) -> Position {
        // Everything before the next event to deliver is behind.
        let next = self.history.next_position().or_else(|| {
            let delivering = self.delivering.as_ref()?;
            let event = delivering.commit.events_read().get(delivering.next)?;
            Some(event.position)
        });
        match next {
            Some(next) => next - 1,
            None => self.buffered_to,
        }
    }

    fn next_delivery(&mut self, deadline: Option<Instant>) -> Result<Option<Delivery>> {
        loop {
            if let Some(event) = self.history.next() {
                return match event {
                    Ok(event) => Ok(Some(Delivery::Event(Arc::new(event)))),
                    Err(error) => {
                        // Read from the file again next time, from the record that failed: it
                        // may be mended by then.
                        if let Some(failed) = self.history.next_position() {
                            self.buffered_to = failed - 1;
                        }
                        self.history.clear();
                        Err(error)
                    }
                };
            }
            if let Some(event) = self.next_live() {
                return Ok(Some(Delivery::Event(event)));
            }
            match self.phase {
                Phase::Ended => return Ok(None),
                Phase::History { until } => {
                    if self.buffered_to < until {
                        self.read_history(until)?;
                        continue;
                    }
                    self.phase = Phase::Live;
                    if !self.caught_up_sent {
                        self.caught_up_sent = true;
                        return Ok(Some(Delivery::CaughtUp { position: until }));
                    }
                }
                Phase::Live => {
                    if self.receive_live(deadline)? {
                        continue;
                    }
                    if matches!(self.phase, Phase::Live) {
                        return Ok(None); // timed out
                    }
                }
            }
        }
    }

    /// One page of history in `(buffered_to, until]` into `history`, once every event of the
    /// page before was delivered.
    fn read_history(&mut self, until: Position) -> Result<()> {
        let Some(db) = &self.db else {
            self.phase = Phase::Ended;
            return Ok(());
        };
        let txn = db.begin_read()?;
        self.history.clear();
        let next = reader::select(
            &txn,
            &self.query,
            Some(self.buffered_to),
            HISTORY_PAGE,
            Some(until),
            &mut self.history,
        )?;
        match (self.history.last_position(), next) {
            (Some(last), Some(_)) => self.buffered_to = last,
            _ => self.buffered_to = until,
        }
        Ok(())
    }

    /// The next event of the commit being delivered, if any is left.
    fn next_live(&mut self) -> Option<Arc<Event>> {
        let delivering = self.delivering.as_mut()?;
        let events = delivering.commit.events_read();
        let event = events.get(delivering.next).cloned();
        let following = event.as_ref().and_then(|event| {
            next_deliverable(
                events,
                delivering.next + 1,
                event.position,
                &self.filter,
                self.takes_everything,
            )
        });
        match following {
            Some(next) => delivering.next = next,
            None => self.delivering = None,
        }
        event
    }

    /// Takes the next commit to deliver from the channel; false when the deadline passed, when the subscription
    /// must read history (it fell behind, or a commit could not be read), or when the store closed.
    fn receive_live(&mut self, deadline: Option<Instant>) -> Result<bool> {
        while let Some(batch) = self.next_batch(deadline) {
            if self.take(batch)? {
                return Ok(true);
            }
            if !matches!(self.phase, Phase::Live) {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// The next batch from the channel; `None` when the deadline passed, when the subscription
    /// fell behind (it is then set to read what it missed as history), or when the store closed.
    fn next_batch(&mut self, deadline: Option<Instant>) -> Option<Batch> {
        match self.receiver.try_recv() {
            Ok(batch) => return Some(batch),
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                self.end();
                return None;
            }
            Err(crossbeam_channel::TryRecvError::Empty) => {}
        }
        if self.inbox.lagging.load(Ordering::SeqCst) {
            match self.hub.resume(&self.inbox) {
                Some(until) => {
                    self.fallbacks += 1;
                    self.phase = Phase::History { until };
                }
                None => self.end(),
            }
            return None;
        }
        // An empty channel cannot overflow, so waiting on it cannot miss a lag.
        let received = match deadline {
            Some(deadline) => self.receiver.recv_deadline(deadline),
            None => self
                .receiver
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(batch) => Some(batch),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.end();
                None
            }
        }
    }

    /// Makes `batch`'s commit the one to deliver from, if it has events that pass the filter and
    /// were not delivered yet (history may have covered some); whether it has. Should the
    /// commit's events not be readable (here or by another subscriber), the subscription reads
    /// them as history instead, so that none is skipped.
    fn take(&mut self, batch: Batch) -> Result<bool> {
        self.inbox
            .queued
            .fetch_sub(batch.matching, Ordering::SeqCst);
        let commit = batch.commit;
        if commit.last <= self.buffered_to {
            return Ok(false);
        }
        let Some(db) = &self.db else {
            return Ok(false);
        };
        let events = match commit.events(&**db) {
            Ok(Some(events)) => events,
            Ok(None) => {
                self.phase = Phase::History { until: commit.last };
                return Ok(false);
            }
            Err(error) => {
                self.phase = Phase::History { until: commit.last };
                return Err(error);
            }
        };
        let first = next_deliverable(
            events,
            0,
            self.buffered_to,
            &self.filter,
            self.takes_everything,
        );
        self.buffered_to = commit.last;
        let Some(next) = first else {
            return Ok(false);
        };
        self.delivering = Some(Delivering { commit, next });
        Ok(true)
    }

    fn end(&mut self) {
        self.phase = Phase::Ended;
        self.db = None;
        self.history.clear();
        self.delivering = None;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::handle::Store;

    /// Replaces the record at `position` with `bytes`, behind the writer's back.
    fn overwrite_record(store: &Store, position: Position, bytes: &[u8]) {
        store
            .inner()
            .writer
            .write_exclusive(|txn| {
                txn.open_table(EVENTS)?.insert(position, bytes)?;
                Ok(())
            })
            .unwrap();
    }

    fn record(store: &Store, position: Position) -> Vec<u8> {
        let txn = store.inner().writer.begin_read().unwrap();
        let table = txn.open_table(EVENTS).unwrap();
        let bytes = table.get(position).unwrap().unwrap().value().to_vec();
        bytes
    }

    #[test]
    fn a_commit_that_cannot_be_read_is_reported_and_never_skipped() {
        let store = Store::in_memory().unwrap();
        let mut first = store.subscribe(Filter::new(), Start::Now).unwrap();
        let mut second = store.subscribe(Filter::new(), Start::Now).unwrap();
        for sub in [&mut first, &mut second] {
            assert!(matches!(
                sub.recv().unwrap(),
                Some(Delivery::CaughtUp { position: 0 })
            ));
        }
        // Two events in one commit, so that subscribers read it back from the file.
        store
            .append_batch((1..=2).map(|n| {
                crate::model::event::NewEvent::new("i", EventType::Comment, "a")
                    .payload(serde_json::json!({"n": n}))
            }))
            .unwrap();
        let good = record(&store, 1);
        overwrite_record(&store, 1, b"not a record");
        store
            .log_event("i", EventType::Comment, serde_json::json!({"n": 3}))
            .unwrap();

        // The first to read the commit meets the damage; the other finds it unread and reads
        // it as history, meeting it too. Neither goes on to the next commit.
        assert!(first.recv().is_err());
        assert!(second.recv().is_err());
        assert!(first.recv().is_err(), "still unreadable, still not skipped");

        overwrite_record(&store, 1, &good);
        for sub in [&mut first, &mut second] {
            let positions: Vec<Position> = (0..3)
                .map(|_| match sub.recv().unwrap() {
                    Some(Delivery::Event(e)) => e.position,
                    other => panic!("expected an event, got {other:?}"),
                })
                .collect();
            assert_eq!(positions, [1, 2, 3]);
        }
    }
}
