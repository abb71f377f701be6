//! Automatic checkpoints: the [`CheckpointPolicy`] of when to make them, the [`Checkpointer`]
//! that watches the log and makes them, and the thread that runs it.
//!
//! Uses checkpoint creation, the store's handles and the model.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use redb::{ReadTransaction, ReadableTable};

use crate::engine::format::{self, IntentHead, NameKind, EVENTS, INTENTS, NAMES};
use crate::engine::postings::{self, Code};
use crate::engine::source::ReadSource;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Position;
use crate::model::event_type::EventType;
use crate::model::time;
use crate::store::handle::Store;

use super::SigningKey;

use super::create::create;
use super::stored::{load, numbers};
use super::{
    CheckpointScope, LogCheckpoint, DEFAULT_CHECKPOINT_EVENTS, DEFAULT_CHECKPOINT_INTERVAL,
};

/// When automatic checkpoints are made, for a [`Checkpointer`]: per intent or for the whole
/// store, after every N events and after T has passed, whichever comes first. OpenIntent's
/// defaults are N = 100 ([`DEFAULT_CHECKPOINT_EVENTS`]) and T = 5 minutes
/// ([`DEFAULT_CHECKPOINT_INTERVAL`]).
///
/// `log.checkpoint.created` events do not count toward N, and a batch holding nothing else is
/// never sealed by the time trigger, so checkpoints do not beget checkpoints.
///
/// ```
/// use std::time::Duration;
/// use oidb::checkpoint::CheckpointPolicy;
///
/// let policy = CheckpointPolicy::per_intent().every_events(500).every(Duration::from_secs(60));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CheckpointPolicy {
    whole_store: bool,
    every_events: Option<u64>,
    every: Option<Duration>,
    poll: Duration,
    key: Option<SigningKey>,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy::per_intent()
    }
}

impl CheckpointPolicy {
    /// One checkpoint per intent that has new events; OpenIntent's default triggers.
    pub fn per_intent() -> CheckpointPolicy {
        CheckpointPolicy {
            whole_store: false,
            every_events: Some(DEFAULT_CHECKPOINT_EVENTS),
            every: Some(DEFAULT_CHECKPOINT_INTERVAL),
            poll: Duration::from_secs(1),
            key: None,
        }
    }

    /// Store-scoped checkpoints over the whole log; OpenIntent's default triggers.
    pub fn whole_store() -> CheckpointPolicy {
        CheckpointPolicy {
            whole_store: true,
            ..CheckpointPolicy::per_intent()
        }
    }

    /// Checkpoint once `events` new events (at least 1) have come since the last checkpoint.
    pub fn every_events(mut self, events: u64) -> CheckpointPolicy {
        self.every_events = Some(events.max(1));
        self
    }

    /// No count trigger.
    pub fn no_event_trigger(mut self) -> CheckpointPolicy {
        self.every_events = None;
        self
    }

    /// Checkpoint once the oldest event not yet in a checkpoint has waited `interval`.
    pub fn every(mut self, interval: Duration) -> CheckpointPolicy {
        self.every = Some(interval);
        self
    }

    /// No time trigger.
    pub fn no_time_trigger(mut self) -> CheckpointPolicy {
        self.every = None;
        self
    }

    /// How often a [`CheckpointThread`] looks for new events (default 1 second).
    pub fn poll_interval(mut self, interval: Duration) -> CheckpointPolicy {
        self.poll = interval;
        self
    }

    /// Sign every checkpoint (and the events that log them) with `key`.
    #[cfg(feature = "signatures")]
    pub fn signing_key(mut self, key: SigningKey) -> CheckpointPolicy {
        self.key = Some(key);
        self
    }
}

/// Makes checkpoints when a [`CheckpointPolicy`] says so. Call [`Checkpointer::tick`] from your
/// own loop, or [`Checkpointer::spawn`] a thread that does.
///
/// ```
/// use oidb::checkpoint::{CheckpointPolicy, CheckpointScope};
/// # let store = oidb::Store::in_memory()?;
/// let checkpointer = store.checkpointer(CheckpointPolicy::per_intent().every_events(10))?;
/// for i in 0..25 {
///     store.log_event("intent-42", oidb::EventType::Comment, serde_json::json!({"i": i}))?;
/// }
/// let made = checkpointer.tick()?;
/// assert_eq!(made.len(), 1);
/// assert_eq!(made[0].last_sequence, 25);
/// # Ok::<(), oidb::Error>(())
/// ```
#[derive(Debug)]
pub struct Checkpointer {
    store: Store,
    policy: CheckpointPolicy,
    state: Mutex<Watch>,
}

/// What a checkpointer has seen: the log up to `seen`, and each scope's events not yet sealed.
#[derive(Debug)]
struct Watch {
    seen: Position,
    scopes: HashMap<String, Waiting>,
}

/// A scope with events that no checkpoint holds yet.
#[derive(Debug)]
struct Waiting {
    scope: CheckpointScope,
    /// Events not yet sealed, `log.checkpoint.created` ones not counted.
    events: u64,
    /// The last sequence (position, for the store) the scope's newest checkpoint holds.
    covered: u64,
    /// When the oldest of them was first seen.
    since: DateTime<Utc>,
}

impl Store {
    /// A checkpointer for this store under `policy`. It starts from what the file holds: events
    /// appended before, and not yet in a checkpoint, count toward the triggers.
    ///
    /// # Errors
    /// A storage error.
    pub fn checkpointer(&self, policy: CheckpointPolicy) -> Result<Checkpointer> {
        let txn = self.inner().writer.begin_read()?;
        let seen = format::last_position(&txn.open_table(EVENTS)?)?;
        let checkpoint_code = txn
            .open_table(NAMES)?
            .get((
                NameKind::EventType as u8,
                EventType::LogCheckpointCreated.as_str(),
            ))?
            .map(|g| g.value());
        let now = time::now();
        let mut scopes = HashMap::new();
        if policy.whole_store {
            let covered = covered(&txn, &CheckpointScope::Store)?;
            let mut events = seen.saturating_sub(covered);
            if let (Some(code), true) = (checkpoint_code, events > 0) {
                for entry in postings::entries(&txn, Code::Type(code), covered + 1, seen, true)? {
                    entry?;
                    events = events.saturating_sub(1);
                }
            }
            if events > 0 {
                let scope = CheckpointScope::Store;
                scopes.insert(
                    scope.key(),
                    Waiting {
                        scope,
                        events,
                        covered,
                        since: now,
                    },
                );
            }
        } else {
            for row in txn.open_table(INTENTS)?.iter()? {
                let (name, value) = row?;
                let intent_id = name.value();
                let head = IntentHead::decode(value.value(), intent_id)?;
                let scope = CheckpointScope::intent(intent_id);
                let covered = covered(&txn, &scope)?;
                if head.last_sequence <= covered {
                    continue;
                }
                let mut events = 0;
                let intent = Code::Intent(head.code);
                for entry in postings::entries(&txn, intent, covered + 1, head.last_sequence, true)?
                {
                    if Some(entry?.facts.1) != checkpoint_code {
                        events += 1;
                    }
                }
                if events > 0 {
                    scopes.insert(
                        scope.key(),
                        Waiting {
                            scope,
                            events,
                            covered,
                            since: now,
                        },
                    );
                }
            }
        }
        Ok(Checkpointer {
            store: self.clone(),
            policy,
            state: Mutex::new(Watch { seen, scopes }),
        })
    }
}

/// The last sequence (position) the scope's newest checkpoint holds; 0 when it has none.
fn covered(txn: &ReadTransaction, scope: &CheckpointScope) -> Result<u64> {
    match numbers(txn, Some(scope))?.pop() {
        Some(number) => Ok(load(txn, number)?.checkpoint.last_sequence),
        None => Ok(0),
    }
}

impl Checkpointer {
    /// Looks at the events appended since the last look and makes every checkpoint that is due.
    /// Returns the checkpoints made.
    ///
    /// # Errors
    /// As [`Store::create_checkpoint`]; a scope that failed is tried again at the next tick.
    pub fn tick(&self) -> Result<Vec<LogCheckpoint>> {
        let mut watch = self.state.lock();
        self.look(&mut watch)?;
        let now = time::now();
        let due: Vec<String> = watch
            .scopes
            .iter()
            .filter(|(_, w)| self.is_due(w, now))
            .map(|(key, _)| key.clone())
            .collect();
        let mut made = Vec::new();
        for key in due {
            let Some(waiting) = watch.scopes.get(&key) else {
                continue;
            };
            let checkpoint = create(&self.store, &waiting.scope, self.policy.key.as_ref())?;
            // Sealed (or nothing left to seal): later events of the scope start a new wait.
            watch.scopes.remove(&key);
            made.extend(checkpoint);
        }
        Ok(made)
    }

    fn is_due(&self, waiting: &Waiting, now: DateTime<Utc>) -> bool {
        let by_count = self
            .policy
            .every_events
            .is_some_and(|n| waiting.events >= n);
        let by_time = self.policy.every.is_some_and(|interval| {
            (now - waiting.since)
                .to_std()
                .is_ok_and(|waited| waited >= interval)
        });
        waiting.events > 0 && (by_count || by_time)
    }

    /// Counts the events appended since the last look into their scopes.
    fn look(&self, watch: &mut Watch) -> Result<()> {
        let txn = self.store.inner().writer.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let last = format::last_position(&events)?;
        if last <= watch.seen {
            return Ok(());
        }
        let now = time::now();
        for row in events.range(watch.seen + 1..=last)? {
            let (key, value) = row?;
            let event = format::decode_record(key.value(), value.value())?;
            if event.event_type == EventType::LogCheckpointCreated {
                continue;
            }
            let (scope, at) = if self.policy.whole_store {
                (CheckpointScope::Store, event.position)
            } else {
                (CheckpointScope::Intent(event.intent_id), event.sequence)
            };
            let key = scope.key();
            let waiting = match watch.scopes.get_mut(&key) {
                Some(waiting) => waiting,
                None => {
                    let covered = covered(&txn, &scope)?;
                    watch.scopes.entry(key).or_insert(Waiting {
                        scope,
                        events: 0,
                        covered,
                        since: now,
                    })
                }
            };
            if at > waiting.covered {
                waiting.events += 1;
            }
        }
        watch.scopes.retain(|_, w| w.events > 0);
        watch.seen = last;
        Ok(())
    }

    /// Runs [`Checkpointer::tick`] on a thread of its own every poll interval, until the returned
    /// handle is stopped or dropped.
    ///
    /// # Errors
    /// [`Error::Output`] when the thread cannot be started.
    pub fn spawn(self) -> Result<CheckpointThread> {
        let (stop, stopped) = bounded::<()>(1);
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let record = Arc::clone(&failure);
        let poll = self.policy.poll;
        let thread = std::thread::Builder::new()
            .name("oidb-checkpoints".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(poll) {
                    if let Err(e) = self.tick() {
                        *record.lock() = Some(e);
                    }
                }
            })
            .map_err(Error::Output)?;
        Ok(CheckpointThread {
            stop: Some(stop),
            thread: Some(thread),
            failure,
        })
    }
}

/// A thread making checkpoints; stops (after finishing the tick under way) when dropped.
#[derive(Debug)]
pub struct CheckpointThread {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    failure: Arc<Mutex<Option<Error>>>,
}

impl CheckpointThread {
    /// The last error a tick met, if any (the thread goes on and tries again).
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.failure.lock().as_ref().map(ToString::to_string)
    }

    /// Stops the thread and waits for it.
    ///
    /// # Errors
    /// The last error a tick met, if any.
    pub fn stop(mut self) -> Result<()> {
        self.halt();
        match self.failure.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CheckpointThread {
    fn drop(&mut self) {
        self.halt();
    }
}
