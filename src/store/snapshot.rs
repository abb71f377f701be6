//! The read view: a [`Snapshot`] is one consistent state of a store, as of the last commit when
//! it was taken, and every reading feature (queries, stats, verification, costs, traces,
//! blocks, export) is written once against it.
//!
//! Both handles hand one out ([`Store::snapshot`](crate::Store::snapshot),
//! [`ReadOnlyStore::snapshot`](crate::ReadOnlyStore::snapshot)), and both offer each reading
//! method directly, each call on a fresh snapshot. Uses the engine's reader and the model.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `engine::format`, `engine::reader`,
//! `engine::source`, `store::events`.

use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableTable};
use uuid::Uuid;

use crate::engine::format::{self, EVENTS, INTENTS};
use crate::engine::reader;
use crate::engine::source::ReadSource;
use crate::model::error::Result;
use crate::model::event::{Event, Position};
use crate::model::filter::{EventFilter, Page, Query};
use crate::store::events::Pager;

/// A consistent, read-only view of a store as of one commit: what it reads does not change while
/// it lives, whatever is appended meanwhile. Take a new one to see newer events.
///
/// A snapshot keeps the pages of its version of the file from being reused, so hold one for a
/// piece of work, not for the life of a program.
///
/// ```
/// use oidb::{EventType, Query, Store};
/// use serde_json::json;
///
/// let store = Store::in_memory()?;
/// store.log_event("intent-42", EventType::Comment, json!({"n": 1}))?;
/// let snapshot = store.snapshot()?;
/// store.log_event("intent-42", EventType::Comment, json!({"n": 2}))?;
///
/// assert_eq!(snapshot.last_position()?, 1); // the snapshot does not move
/// assert_eq!(snapshot.query(&Query::new())?.events.len(), 1);
/// assert_eq!(store.snapshot()?.last_position()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Snapshot {
    txn: ReadTransaction,
    path: PathBuf,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// A snapshot of `db` as of its last commit; `path` names the file.
    pub(crate) fn begin(db: &dyn ReadSource, path: &Path) -> Result<Snapshot> {
        Ok(Snapshot {
            txn: db.begin_read()?,
            path: path.to_path_buf(),
        })
    }

    /// The read transaction the snapshot is, for the features written against it.
    pub(crate) fn txn(&self) -> &ReadTransaction {
        &self.txn
    }

    /// The path of the store's file (the name given, for a store not in a file).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position of the last event (0 when the log is empty).
    ///
    /// # Errors
    /// A storage error.
    pub fn last_position(&self) -> Result<Position> {
        format::last_position(&self.txn.open_table(EVENTS)?)
    }

    /// The event with this id, if stored.
    ///
    /// # Errors
    /// A storage error or a damaged record.
    pub fn get(&self, id: Uuid) -> Result<Option<Event>> {
        reader::event_with_id(&self.txn, id)
    }

    /// The event at this position, if any.
    ///
    /// # Errors
    /// A storage error or a damaged record.
    pub fn get_at(&self, position: Position) -> Result<Option<Event>> {
        reader::event_at(&self.txn, position)
    }

    /// The last sequence of an intent's chain (0 when it has no events).
    ///
    /// # Errors
    /// A storage error.
    pub fn last_sequence(&self, intent_id: &str) -> Result<u64> {
        let intents = self.txn.open_table(INTENTS)?;
        let Some(head) = intents.get(intent_id)? else {
            return Ok(0);
        };
        Ok(format::IntentHead::decode(head.value(), intent_id)?.last_sequence)
    }

    /// One intent's events, as OpenIntent's client `get_events` returns them: oldest first, at
    /// most 100 unless the filter says otherwise.
    ///
    /// # Errors
    /// A storage error or a damaged record.
    #[allow(clippy::needless_pass_by_value)] // taken by value to read as OpenIntent's `get_events(intent, filter)`
    pub fn get_events(&self, intent_id: &str, filter: EventFilter) -> Result<Vec<Event>> {
        let query = Query::from_filter(intent_id, &filter);
        Ok(reader::execute(&self.txn, &query, None, filter.limit, None)?.events)
    }

    /// One page of a query: at most `limit` events (default 100), and the cursor of the next page.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = oidb::Store::open(dir.path().join("q.oidb"))?;
    /// # for i in 0..5 { store.log_event("i", oidb::EventType::Comment, serde_json::json!({"i": i}))?; }
    /// use oidb::Query;
    /// let first = store.query(&Query::new().limit(3))?;
    /// let second = store.query(&Query::new().limit(3).after(first.next.unwrap()))?;
    /// assert_eq!(first.events.len() + second.events.len(), 5);
    /// assert!(second.next.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A storage error or a damaged record.
    pub fn query(&self, query: &Query) -> Result<Page> {
        reader::page(&self.txn, query)
    }

    /// Every event a query matches in this snapshot (up to its limit, if it has one), read lazily
    /// a page at a time. An error ends the iteration after the events before it.
    ///
    /// # Errors
    /// None at the start (the result matches the handles' `query_iter`); errors come from the
    /// iterator.
    pub fn query_iter<'s>(
        &'s self,
        query: &Query,
    ) -> Result<impl Iterator<Item = Result<Event>> + 's> {
        let mut pager = Pager::new(query, None);
        Ok(std::iter::from_fn(move || pager.next(&self.txn)))
    }

    /// The records a query matches in this snapshot (up to its limit, if it has one), read a
    /// page at a time: [`Snapshot::query_iter`] for a reader that makes its own of each record's
    /// bytes instead of decoding them.
    pub(crate) fn query_records(&self, query: &Query) -> QueryRecords<'_> {
        QueryRecords {
            txn: &self.txn,
            pager: Pager::new(query, None),
        }
    }

    /// The id the store was given when its file was created ([`Stats::store_id`](crate::Stats::store_id),
    /// read alone): a file at the same path with another id is another store, such as one that
    /// replaced it.
    ///
    /// # Errors
    /// A storage error.
    pub fn store_id(&self) -> Result<Option<String>> {
        format::read_store_id(&self.txn)
    }
}

/// The records of a query in one snapshot, from [`Snapshot::query_records`], taken one at a time.
pub(crate) struct QueryRecords<'s> {
    txn: &'s ReadTransaction,
    pager: Pager,
}

impl QueryRecords<'_> {
    /// The next record, as `read` makes it of its position and stored bytes; `None` once every
    /// record is taken, or after an error (`read`'s included).
    pub(crate) fn next_with<T>(
        &mut self,
        read: impl FnOnce(Position, &[u8]) -> Result<T>,
    ) -> Option<Result<T>> {
        self.pager.next_with(self.txn, read)
    }
}
