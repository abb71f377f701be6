//! [`ReadOnlyStore`]: a handle that reads a `.oidb` file and never writes to it.
//!
//! redb lets one process at a time open a file for writing, and that process keeps every other
//! one out, readers included. Read-only handles share the file with each other: several
//! processes may read one file at once while nobody writes it.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `engine::format`, `engine::wal`,
//! `store::events`, `store::handle`, `store::snapshot`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::format;
use crate::model::error::{Error, Result};
use crate::model::event::Position;
use crate::model::filter::Query;
use crate::store::events::Events;
use crate::store::handle::{check_existing_file, open_error, DEFAULT_CACHE_BYTES};
use crate::store::snapshot::Snapshot;

/// A read-only handle on a `.oidb` file: it never creates, repairs or writes the file.
///
/// Several handles, in one process or many, may read the same file at once; a
/// [`Store`](crate::Store) cannot open it for writing meanwhile, and while a `Store` has it open,
/// opening a `ReadOnlyStore` answers [`Error::FileInUse`].
///
/// ```
/// use oidb::{EventType, Query, ReadOnlyStore, Store};
/// use serde_json::json;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("agent.oidb");
/// let store = Store::open(&path)?;
/// store.log_event("intent-42", EventType::Comment, json!({"message": "hello"}))?;
/// drop(store);
///
/// let reader = ReadOnlyStore::open(&path)?;
/// assert_eq!(reader.last_position()?, 1);
/// assert_eq!(reader.query(&Query::new())?.events[0].payload["message"], "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadOnlyStore {
    db: Arc<redb::ReadOnlyDatabase>,
    path: PathBuf,
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ReadOnlyStore {
    /// Opens an existing store for reading.
    ///
    /// # Errors
    /// [`Error::Open`] when the file is missing or the operating system refuses;
    /// [`Error::FileInUse`] when a [`Store`](crate::Store) has it open;
    /// [`Error::NeedsRepair`] when its writer stopped without closing it (the file needs
    /// repair, or its write-ahead log, `<path>-wal`, is there to replay); [`Error::Wal`] when the
    /// file beside it at that path is not its log;
    /// [`Error::NotAnOidbFile`] and [`Error::UnsupportedFormat`] as [`Store::open`](crate::Store::open).
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
        let mut builder = redb::Builder::new();
        builder.set_cache_size(DEFAULT_CACHE_BYTES);
        let db = builder.open_read_only(&path).map_err(|e| match e {
            redb::DatabaseError::RepairAborted => Error::NeedsRepair { path: path.clone() },
            other => open_error(&path, other),
        })?;
        if format::check_format(&db, &path)? == format::FileState::Uninitialized {
            return Err(Error::NotAnOidbFile {
                path,
                reason: "it is an empty redb database, without oidb's tables".into(),
            });
        }
        // A write-ahead log beside a file no writer holds was left by a writer that stopped
        // without closing: it may hold acknowledged events the file does not have yet, and
        // only a writable open replays it.
        let wal = crate::engine::wal::path_beside(&path)?;
        if wal.exists() {
            // One a writable open would refuse (another store's, or not a log) is named as such:
            // a repair would not get past it.
            crate::engine::wal::read(&wal, &format::store_id(&db)?)?;
            return Err(Error::NeedsRepair { path });
        }
        Ok(ReadOnlyStore {
            db: Arc::new(db),
            path,
        })
    }

    /// The file this handle reads.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent view of the store as of its last commit; see [`Snapshot`].
    ///
    /// # Errors
    /// A storage error.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::begin(&*self.db, &self.path)
    }

    /// Every event a query matches, read lazily a page at a time, as
    /// [`Store::query_iter`](crate::Store::query_iter).
    ///
    /// # Errors
    /// A storage error at the start; later errors come from the iterator.
    pub fn query_iter(&self, query: &Query) -> Result<Events> {
        let bound = self.snapshot()?.last_position()?;
        Ok(Events::new(self.db.clone(), query, bound))
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::model::error::Error;
    use crate::model::event_type::EventType;
    use crate::model::filter::Query;
    use crate::store::handle::Store;
    use crate::store::read_only::ReadOnlyStore;

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
    fn readers_share_the_file_and_keep_writers_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.oidb");
        let store = Store::open(&path).unwrap();
        let event = store
            .log_event("intent-42", EventType::Comment, json!({"message": "hi"}))
            .unwrap();
        assert!(matches!(
            ReadOnlyStore::open(&path).unwrap_err(),
            Error::FileInUse { .. }
        ));
        drop(store);

        let first = ReadOnlyStore::open(&path).unwrap();
        let second = ReadOnlyStore::open(&path).unwrap();
        assert_eq!(first.get(event.id).unwrap(), Some(event.clone()));
        assert_eq!(second.get_at(1).unwrap(), Some(event.clone()));
        assert_eq!(second.get_at(2).unwrap(), None);
        assert_eq!(first.query(&Query::new()).unwrap().events, vec![event]);
        assert_eq!(first.stats().unwrap().events, 1);
        assert!(matches!(
            Store::open(&path).unwrap_err(),
            Error::FileInUse { .. }
        ));
        drop((first, second));
        Store::open(&path).unwrap();
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
