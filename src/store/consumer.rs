//! Durable consumers: named subscribers whose place in the log is kept in the file, so they
//! resume where they left off after a restart or a crash (at-least-once delivery).
//!
//! Uses `model::error`, `model::event`, `engine::format`, `engine::source`, `subscribe::hub`,
//! `store::handle`, `store::reads`, `store::snapshot`.

use redb::ReadableTable;

use crate::engine::format::{self, CONSUMERS, EVENTS};
use crate::engine::source::ReadSource;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Position;
use crate::store::handle::Store;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;
use crate::subscribe::hub::{Filter, Start, Subscription};

/// A named, durable place in the log: from [`Store::consumer`].
///
/// Delivery is at least once: events after the last [`ack`](Consumer::ack) are delivered again
/// after a restart, so acknowledge an event once its effects are done (and make handlers
/// idempotent, e.g. by event id).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let store = oidb::Store::open(dir.path().join("c.oidb"))?;
/// use oidb::{Delivery, Filter};
/// store.log_event("i", oidb::EventType::Comment, serde_json::json!({}))?;
/// let indexer = store.consumer("indexer")?;
/// let mut sub = indexer.subscribe(Filter::new())?;
/// if let Some(Delivery::Event(event)) = sub.recv()? {
///     indexer.ack(event.position)?; // next time, delivery resumes after it
/// }
/// assert_eq!(indexer.checkpoint()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Consumer {
    store: Store,
    name: String,
}

/// A durable consumer's name and checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerInfo {
    /// The consumer's name.
    pub name: String,
    /// The last position it acknowledged (0 for none).
    pub checkpoint: Position,
}

impl Consumer {
    /// The consumer's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last position acknowledged (0 for none).
    pub fn checkpoint(&self) -> Result<Position> {
        let txn = self.store.inner().writer.begin_read()?;
        let table = txn.open_table(CONSUMERS)?;
        let checkpoint = table.get(self.name.as_str())?.map_or(0, |v| v.value());
        Ok(checkpoint)
    }

    /// A subscription that starts after the checkpoint.
    pub fn subscribe(&self, filter: Filter) -> Result<Subscription> {
        self.store
            .subscribe(filter, Start::After(self.checkpoint()?))
    }

    /// Moves the checkpoint to `position` (a position delivered to this consumer). The
    /// checkpoint never moves back: acknowledging an earlier position changes nothing.
    pub fn ack(&self, position: Position) -> Result<()> {
        let name = self.name.as_str();
        self.store.inner().writer.write_exclusive(|txn| {
            let last = format::last_position(&txn.open_table(EVENTS)?)?;
            if position > last {
                return Err(Error::AckBeyondLog {
                    consumer: name.to_owned(),
                    position,
                    last,
                });
            }
            let mut table = txn.open_table(CONSUMERS)?;
            let current = table.get(name)?.map_or(0, |v| v.value());
            if position > current {
                table.insert(name, position)?;
            }
            Ok(())
        })
    }
}

impl Store {
    /// The durable consumer `name`, created (at the start of the log) if it does not exist.
    pub fn consumer(&self, name: &str) -> Result<Consumer> {
        if name.is_empty() {
            return Err(Error::InvalidEvent {
                field: "consumer name",
                reason: "must not be empty".into(),
            });
        }
        self.inner().writer.write_exclusive(|txn| {
            let mut table = txn.open_table(CONSUMERS)?;
            if table.get(name)?.is_none() {
                table.insert(name, 0)?;
            }
            Ok(())
        })?;
        Ok(Consumer {
            store: self.clone(),
            name: name.to_owned(),
        })
    }

    /// Deletes a durable consumer; returns whether it existed.
    pub fn delete_consumer(&self, name: &str) -> Result<bool> {
        self.inner().writer.write_exclusive(|txn| {
            let mut table = txn.open_table(CONSUMERS)?;
            let existed = table.remove(name)?.is_some();
            Ok(existed)
        })
    }
}

impl Snapshot {
    /// Every durable consumer, by name.
    pub fn consumers(&self) -> Result<Vec<ConsumerInfo>> {
        let txn = self.txn();
        let table = txn.open_table(CONSUMERS)?;
        let mut all = Vec::new();
        for row in table.iter()? {
            let (name, checkpoint) = row?;
            all.push(ConsumerInfo {
                name: name.value().to_owned(),
                checkpoint: checkpoint.value(),
            });
        }
        Ok(all)
    }
}

read_on_handles! {
    /// Every durable consumer, by name.
    fn consumers(&self) -> Result<Vec<ConsumerInfo>>;
}
