//! [`ReadOnlyStore`]: a handle that reads a `.oidb` file and never writes to it, while its
//! writer (in another process, or this one) goes on writing it.
//!
//! The writer opens the file in redb's single-writer mode, so any number of read-only handles
//! share it and see each of its commits as soon as it is made. A reader sees whole commits
//! only, and only durable ones (redb's commits in that mode are all durable). Each read
//! begins a fresh read transaction; [`ReadOnlyStore::subscribe`] follows new commits.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `engine::format`, `engine::presence`,
//! `engine::source`, `engine::wal`, `subscribe::hub`, `store::events`, `store::follow`,
//! `store::handle`, `store::snapshot`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::ReadableDatabase;

use crate::engine::format;
use crate::engine::presence::Presence;
use crate::engine::source::ReadSource;
use crate::model::error::{Error, Result};
use crate::model::event::Position;
use crate::model::filter::Query;
use crate::store::events::Events;
use crate::store::follow::Follow;
use crate::store::handle::{
    check_existing_file, guarded_open, open_error, truncated_as_not_oidb, DEFAULT_CACHE_BYTES,
};
use crate::store::snapshot::Snapshot;
use crate::subscribe::hub::{Filter, Start};

/// A read-only handle on a `.oidb` file: it never creates, repairs or writes the file.
///
/// Any number of handles, in one process or many, may read the same file at once, while one
/// [`Store`](crate::Store) (in another process or this one) writes it. The open sees every
/// append acknowledged before it began (it waits, for at most one of the writer's publish
/// intervals, for the writer to commit what it held back while nobody read the file). After
/// that, each read sees the file as of the writer's last commit: appends are committed a few
/// milliseconds after they are acknowledged ([`PUBLISH_INTERVAL`](crate::PUBLISH_INTERVAL) at
/// most), and under [`Durability::Immediate`](crate::Durability::Immediate) a reader never sees
/// an event a crash could take back. [`ReadOnlyStore::subscribe`] follows the new events as they
/// come.
///
/// ```
/// use oidb::{Delivery, EventType, Filter, Query, ReadOnlyStore, Start, Store, WriterStatus};
/// use serde_json::json;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("agent.oidb");
/// let store = Store::open(&path)?;
/// store.log_event("intent-42", EventType::Comment, json!({"message": "hello"}))?;
///
/// // Another process (here, the same one) reads the file while its writer has it open, and
/// // sees every append acknowledged before its open.
/// let reader = ReadOnlyStore::open(&path)?;
/// assert_eq!(reader.writer_status()?, WriterStatus::Live);
/// let mut follow = reader.subscribe(Filter::new(), Start::Beginning)?;
/// assert!(matches!(follow.recv()?, Delivery::Event(e) if e.payload["message"] == "hello"));
/// assert!(matches!(follow.recv()?, Delivery::CaughtUp { position: 1 }));
///
/// store.log_event("intent-42", EventType::Comment, json!({"message": "again"}))?;
/// // Comes once the writer publishes it, without a flush.
/// assert!(matches!(follow.recv()?, Delivery::Event(e) if e.position == 2));
/// assert_eq!(reader.query(&Query::new())?.events.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadOnlyStore {
    file: Arc<ReadOnlyFile>,
}

/// Whether a store's file has a writer: from [`ReadOnlyStore::writer_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterStatus {
    /// A [`Store`](crate::Store) has the file open, in this process or another.
    Live,
    /// No writer has it open, and the last one closed it: everything it acknowledged is in the
    /// file.
    Closed,
    /// No writer has it open, and the last one stopped without closing it: its write-ahead log
    /// is beside the file, and may hold acknowledged events the file does not have yet, which
    /// the next writable open replays.
    Stopped,
}

/// The file a [`ReadOnlyStore`] reads: redb's read-only handle, and this handle's presence.
pub(crate) struct ReadOnlyFile {
    db: redb::ReadOnlyDatabase,
    presence: Presence,
    path: PathBuf,
}

impl ReadSource for ReadOnlyFile {
    /// A read transaction on the file's last commit; [`Error::FileReplaced`] once the path
    /// names another file than the one opened.
    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        self.presence.check_same_file()?;
        Ok(ReadableDatabase::begin_read(&self.db)?)
    }
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("path", &self.file.path)
            .finish_non_exhaustive()
    }
}

impl ReadOnlyStore {
    /// Opens an existing store for reading, whether or not a writer has it open.
    ///
    /// # Errors
    /// [`Error::Open`] when the file is missing or the operating system refuses;
    /// [`Error::NeedsRepair`] when its writer stopped without closing it and no writer has
    /// opened it since (the file needs repair, or its write-ahead log, `<path>-wal`, holds
    /// acknowledged events to replay); [`Error::Wal`] when the file beside it at that path is
    /// not its log; [`Error::NotAnOidbFile`] and [`Error::UnsupportedFormat`] as
    /// [`Store::open`](crate::Store::open). While a format upgrade or a compaction has the file
    /// to itself, the open waits for it to finish.
    pub fn open(path: impl AsRef<Path>) -> Result<ReadOnlyStore> {
        let path = path.as_ref().to_path_buf();
        if !check_existing_file(&path)? {
            return Err(Error::Open {
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file (a read-only open never creates one)",
                ),
            });
        }
        let presence = Presence::reader(&path)?;
        let mut builder = redb::Builder::new();
        builder.set_cache_size(DEFAULT_CACHE_BYTES);
        // Shares the file with its writer, if it has one, and follows its commits.
        builder.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
        let db = guarded_open(&path, || builder.open_read_only(&path))?.map_err(|e| match e {
            redb::DatabaseError::RepairAborted => Error::NeedsRepair { path: path.clone() },
            other => open_error(&path, other),
        })?;
        let state =
            format::check_format(&db, &path).map_err(|e| truncated_as_not_oidb(&path, e))?;
        if state == format::FileState::Uninitialized {
            return Err(Error::NotAnOidbFile {
                path,
                reason: "it is an empty redb database, without oidb's tables".into(),
            });
        }
        // A write-ahead log beside a file no writer holds was left by a writer that stopped
        // without closing: it may hold acknowledged events the file does not have yet, and
        // only a writable open replays it. Beside a live writer, it is that writer's.
        let wal = crate::engine::wal::path_beside(&path)?;
        if wal.exists() && !presence.writer_live()? {
            // One a writable open would refuse (another store's, or not a log) is named as such:
            // a repair would not get past it.
            crate::engine::wal::read(&wal, &format::store_id(&db)?)?;
            return Err(Error::NeedsRepair { path });
        }
        Ok(ReadOnlyStore {
            file: Arc::new(ReadOnlyFile { db, presence, path }),
        })
    }

    /// The file this handle reads.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Whether a [`Store`](crate::Store) has the file open for writing now, in any process,
    /// and if not, whether the last one closed it. When its writer stops without closing it, a
    /// reader keeps reading the last commit it made; when a writer opens it again (and replays
    /// its log), reads follow that writer.
    ///
    /// # Errors
    /// [`Error::Open`] when the operating system refuses to say.
    pub fn writer_status(&self) -> Result<WriterStatus> {
        if self.file.presence.writer_live()? {
            return Ok(WriterStatus::Live);
        }
        let wal = crate::engine::wal::path_beside(&self.file.path)?;
        Ok(if wal.exists() {
            WriterStatus::Stopped
        } else {
            WriterStatus::Closed
        })
    }

    /// A consistent view of the store as of its writer's last commit; see [`Snapshot`]. Each
    /// call sees the commits made since the last.
    ///
    /// # Errors
    /// [`Error::FileReplaced`] when the path now names another file; a storage error.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::begin(&*self.file, &self.file.path)
    }

    /// Every event a query matches, read lazily a page at a time, as
    /// [`Store::query_iter`](crate::Store::query_iter).
    ///
    /// # Errors
    /// A storage error at the start; later errors come from the iterator.
    pub fn query_iter(&self, query: &Query) -> Result<Events> {
        let bound = self.snapshot()?.last_position()?;
        Ok(Events::new(self.file.clone(), query, bound))
    }

    /// Every event from `from` on, in position order, as [`Store::scan`](crate::Store::scan).
    ///
    /// # Errors
    /// A storage error at the start; later errors come from the iterator.
    pub fn scan(&self, from: Position) -> Result<Events> {
        Ok(self
            .query_iter(&Query::new())?
            .starting_after(from.saturating_sub(1)))
    }

    /// Follows the events `filter` matches, from `start`, as they are committed: history first,
    /// then [`Delivery::CaughtUp`](crate::Delivery::CaughtUp) once, then each new event, in
    /// position order, none twice and none passed over, like
    /// [`Store::subscribe`](crate::Store::subscribe). It looks for new commits every
    /// [`FOLLOW_POLL`](crate::FOLLOW_POLL) while waiting.
    ///
    /// # Errors
    /// A storage error reading where to start.
    #[allow(clippy::needless_pass_by_value)] // as Store::subscribe takes it
    pub fn subscribe(&self, filter: Filter, start: Start) -> Result<Follow> {
        self.follow(&filter.to_query(), start)
    }

    /// As [`ReadOnlyStore::subscribe`], for the events a [`Query`] matches (time and level
    /// filters included); its order, limit and cursor do not apply: a follow goes oldest first,
    /// from `start`, without end.
    ///
    /// # Errors
    /// A storage error reading where to start.
    pub fn follow(&self, query: &Query, start: Start) -> Result<Follow> {
        let last = self.snapshot()?.last_position()?;
        Ok(Follow::new(self.file.clone(), query, start, last))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::model::error::Error;
    use crate::model::event_type::EventType;
    use crate::model::filter::Query;
    use crate::store::handle::Store;
    use crate::store::read_only::{ReadOnlyStore, WriterStatus};

    #[test]
    fn a_missing_file_is_an_error_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.oidb");
        let error = ReadOnlyStore::open(&path).unwrap_err();
        assert!(matches!(error, Error::Open { .. }), "{error}");
        assert!(error.to_string().contains("missing.oidb"), "{error}");
        assert!(!path.exists());
    }

    #[test]
    fn readers_share_the_file_with_its_writer_and_see_each_published_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.oidb");
        let store = Store::open(&path).unwrap();
        let event = store
            .log_event("intent-42", EventType::Comment, json!({"message": "hi"}))
            .unwrap();
        store.flush().unwrap();
        let first = ReadOnlyStore::open(&path).unwrap();
        let second = ReadOnlyStore::open(&path).unwrap();
        assert_eq!(first.writer_status().unwrap(), WriterStatus::Live);
        assert_eq!(first.get(event.id).unwrap(), Some(event.clone()));
        assert_eq!(second.get_at(1).unwrap(), Some(event.clone()));
        assert_eq!(second.get_at(2).unwrap(), None);
        assert_eq!(
            first.query(&Query::new()).unwrap().events,
            vec![event.clone()]
        );
        assert!(matches!(
            Store::open(&path).unwrap_err(),
            Error::FileInUse { .. }
        ));

        let later = store
            .log_event("intent-42", EventType::Comment, json!({"message": "again"}))
            .unwrap();
        store.flush().unwrap();
        assert_eq!(second.get_at(2).unwrap(), Some(later));
        drop(store);
        assert_eq!(first.writer_status().unwrap(), WriterStatus::Closed);
        assert_eq!(first.stats().unwrap().events, 2);
        // A writer opens beside its readers, and they follow it.
        let store = Store::open(&path).unwrap();
        store
            .log_event("intent-42", EventType::Comment, json!({}))
            .unwrap();
        store.flush().unwrap();
        assert_eq!(first.writer_status().unwrap(), WriterStatus::Live);
        assert_eq!(first.last_position().unwrap(), 3);
    }

    #[test]
    fn a_replaced_file_is_an_error_not_another_stores_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.oidb");
        Store::open(&path)
            .unwrap()
            .log_event("intent-42", EventType::Comment, json!({}))
            .unwrap();
        let reader = ReadOnlyStore::open(&path).unwrap();
        let other = dir.path().join("other.oidb");
        Store::open(&other).unwrap();
        std::fs::rename(&other, &path).unwrap();
        let error = reader.last_position().unwrap_err();
        assert!(matches!(error, Error::FileReplaced { .. }), "{error}");
        assert!(error.to_string().contains("agent.oidb"), "{error}");
    }

    #[test]
    fn compaction_needs_the_file_without_readers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.oidb");
        Store::open(&path)
            .unwrap()
            .log_event("intent-42", EventType::Comment, json!({}))
            .unwrap();
        let reader = ReadOnlyStore::open(&path).unwrap();
        let error = crate::store::compact::compact(&path).unwrap_err();
        assert!(matches!(error, Error::FileBeingRead { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("compaction needs the file to itself"),
            "{error}"
        );
        assert_eq!(reader.last_position().unwrap(), 1);
        drop(reader);
        crate::store::compact::compact(&path).unwrap();
    }

    #[test]
    fn a_redb_file_without_oidb_tables_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.redb");
        drop(redb::Database::create(&path).unwrap());
        let before = std::fs::read(&path).unwrap();
        let error = ReadOnlyStore::open(&path).unwrap_err();
        assert!(matches!(error, Error::NotAnOidbFile { .. }), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
