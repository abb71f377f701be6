//! The handle users hold: open a file, append, read, query, import and export.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `engine::format`,
//! `engine::setup`, `engine::wal`, `engine::writer`, `subscribe::hub`, `store::events`,
//! `store::snapshot`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::ReadableDatabase;
use serde_json::Value;

use crate::engine::format::{self, EVENTS};
use crate::engine::setup;
use crate::engine::writer::{Appended, Durability, Refused, WriteConfig, Writer};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event::Position;
use crate::model::event::DEFAULT_ACTOR;
use crate::model::event_type::EventType;
use crate::model::filter::Query;
use crate::store::events::Events;
use crate::store::snapshot::Snapshot;
use crate::subscribe::hub::{Filter, Hub, Start, Subscription, DEFAULT_CHANNEL_CAPACITY};

/// The default size of redb's page cache: 32 MiB (redb's own default is 1 GiB, too much for a
/// library embedded in an agent).
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The default cap on a payload's JSON size: 16 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// An open `.oidb` file. Cheap to clone; every clone shares the same file, writer and
/// subscribers, and can be sent to and used from any thread.
///
/// ```
/// use oidb::{EventFilter, EventType, NewEvent, Store};
/// use serde_json::json;
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("agent.oidb");
/// let store = Store::open(&path)?;
/// let event = store.append(
///     NewEvent::new("intent-42", EventType::Comment, "agent-research")
///         .payload(json!({"message": "Starting research phase"})),
/// )?;
/// assert_eq!(event.sequence, 1);
/// let events = store.get_events("intent-42", EventFilter::new())?;
/// assert_eq!(events, vec![event]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Arc<redb::Database>,
    pub(crate) writer: Writer,
    pub(crate) hub: Arc<Hub>,
    path: PathBuf,
    actor: String,
    channel_capacity: usize,
    /// Dropped with the store, which tells the flusher thread (if any) to stop.
    _flusher_stop: crossbeam_channel::Sender<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: write what waits, make it durable, end subscriptions.
        if !self.writer.is_closed() {
            let _ = self.writer.close();
        }
        self.hub.close();
    }
}

/// Under [`Durability::Deferred`], makes appends durable every `window` until the store goes away.
fn spawn_flusher(
    inner: std::sync::Weak<Inner>,
    window: std::time::Duration,
    stop: crossbeam_channel::Receiver<()>,
) {
    let spawned = std::thread::Builder::new()
        .name("oidb-flusher".into())
        .spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop.recv_timeout(window)
            {
                let Some(inner) = inner.upgrade() else { return };
                // A failed flush leaves the data for the next one (or for close) to write.
                let _ = inner.writer.flush();
            }
        });
    // Without a thread, appends still become durable on flush() and when the store closes.
    drop(spawned);
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Options for opening a store: `Store::builder().actor("agent-research").open(path)`.
#[derive(Debug, Clone)]
#[must_use]
pub struct StoreBuilder {
    actor: String,
    durability: Durability,
    cache_bytes: usize,
    max_payload_bytes: usize,
    channel_capacity: usize,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        StoreBuilder {
            actor: DEFAULT_ACTOR.to_owned(),
            durability: Durability::Immediate,
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
        }
    }
}

impl StoreBuilder {
    /// The actor that [`Store::log_event`] and the other `log_*` helpers write (default `oidb`).
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// When appends reach the disk (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The page cache size in bytes (default [`DEFAULT_CACHE_BYTES`], 32 MiB).
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// The largest payload accepted, as JSON bytes (default [`DEFAULT_MAX_PAYLOAD_BYTES`], 16 MiB).
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// How many events a subscriber's channel holds before that subscriber falls back to reading
    /// from disk (default [`DEFAULT_CHANNEL_CAPACITY`], 1024). It never blocks the writer either way.
    /// A commit with more matching events than this still goes whole to an empty channel.
    pub fn channel_capacity(mut self, events: usize) -> Self {
        self.channel_capacity = events.max(1);
        self
    }

    /// Opens the store at `path`, creating the file if it is missing. If the process that wrote
    /// it last stopped without closing it, its write-ahead log (`<path>-wal`) is replayed first.
    ///
    /// # Errors
    /// [`Error::FileInUse`] when another handle holds it; [`Error::NotAnOidbFile`] for a file that
    /// is not an oidb store (it is left unchanged); [`Error::UnsupportedFormat`] for another format
    /// version; [`Error::Open`] when the operating system refuses; [`Error::Wal`] when the
    /// write-ahead log beside it belongs to another store or does not continue it (both files
    /// are left unchanged).
    pub fn open(self, path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let exists = check_existing_file(&path)?;
        let mut builder = redb::Builder::new();
        builder.set_cache_size(self.cache_bytes);
        let opened = if exists {
            check_format_without_writing(&builder, &path)?;
            builder.open(&path)
        } else {
            builder.create(&path)
        };
        let db = opened.map_err(|e| open_error(&path, e))?;
        let wal = Some(crate::engine::wal::path_beside(&path)?);
        self.finish_open(db, path, wal)
    }

    /// Opens a store on any redb storage backend: `redb::backends::InMemoryBackend` for a store
    /// that lives in memory only, or a wrapper that injects faults in tests. `name` stands for the
    /// path in messages.
    pub fn open_backend(self, backend: impl redb::StorageBackend, name: &str) -> Result<Store> {
        let mut builder = redb::Builder::new();
        builder.set_cache_size(self.cache_bytes);
        let path = PathBuf::from(name);
        let db = builder
            .create_with_backend(backend)
            .map_err(|e| open_error(&path, e))?;
        self.finish_open(db, path, None)
    }

    fn finish_open(self, db: redb::Database, path: PathBuf, wal: Option<PathBuf>) -> Result<Store> {
        match format::check_format(&db, &path)? {
            format::FileState::Uninitialized => setup::initialize(&db)?,
            format::FileState::Earlier => setup::upgrade(&db)?,
            format::FileState::Current => {}
        }
        let last_position = {
            let txn = db.begin_read()?;
            format::last_position(&txn.open_table(EVENTS)?)?
        };
        let db = Arc::new(db);
        let hub = Arc::new(Hub::new(last_position));
        let writer = Writer::new(
            Arc::clone(&db),
            WriteConfig {
                durability: self.durability,
                max_payload_bytes: self.max_payload_bytes,
                wal,
            },
            hub.clone(),
        )?;
        let (flusher_stop, stop_signal) = crossbeam_channel::bounded::<()>(0);
        let inner = Arc::new(Inner {
            db,
            writer,
            hub,
            path,
            actor: self.actor,
            channel_capacity: self.channel_capacity,
            _flusher_stop: flusher_stop,
        });
        if let Durability::Deferred { window } = self.durability {
            spawn_flusher(Arc::downgrade(&inner), window, stop_signal);
        }
        Ok(Store { inner })
    }
}

/// Checks an existing file's format through a read-only open, so that a file oidb must refuse
/// (another version, another program's redb file, a damaged file) is refused unchanged: a
/// writable open alone would already write to it. A file that was not closed cleanly cannot be
/// read before redb repairs it; its format is checked after the writable open instead.
fn check_format_without_writing(builder: &redb::Builder, path: &Path) -> Result<()> {
    match builder.open_read_only(path) {
        Ok(db) => format::check_format(&db, path).map(drop),
        Err(redb::DatabaseError::RepairAborted) => Ok(()),
        Err(error) => Err(open_error(path, error)),
    }
}

/// Refuses, before redb touches it, an existing path that cannot be an oidb store.
/// Returns whether the file exists.
pub(crate) fn check_existing_file(path: &Path) -> Result<bool> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(Error::Open {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let not_oidb = |reason: &str| Error::NotAnOidbFile {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    if metadata.is_dir() {
        return Err(not_oidb("it is a directory; give the path of a file"));
    }
    if metadata.len() == 0 {
        return Err(not_oidb(
            "the file is empty (an oidb store never is); delete it, or pick another path, to create a new store",
        ));
    }
    let mut start = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut start))
        .map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
    if start.starts_with(b"SQLite format 3\0") {
        return Err(not_oidb("it is a SQLite database"));
    }
    if !start.starts_with(b"redb\x1a\x0a\xa9\x0d\x0a") {
        return Err(not_oidb("it does not start with the redb file signature"));
    }
    Ok(true)
}

pub(crate) fn open_error(path: &Path, error: redb::DatabaseError) -> Error {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::FileInUse {
            path: path.to_path_buf(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(source))
            if source.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Error::NotAnOidbFile {
                path: path.to_path_buf(),
                reason: "it is truncated: it ends before the data its header points at".into(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => Error::Open {
            path: path.to_path_buf(),
            source,
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => {
            Error::NotAnOidbFile {
                path: path.to_path_buf(),
                reason: format!("the file is damaged or truncated ({reason})"),
            }
        }
        redb::DatabaseError::UpgradeRequired(version) => Error::NotAnOidbFile {
            path: path.to_path_buf(),
            reason: format!("it is a redb file of an older file format ({version})"),
        },
        other => Error::Storage(other.into()),
    }
}

impl Store {
    /// Opens the store at `path` with default settings, creating the file if it is missing.
    ///
    /// # Errors
    /// As [`StoreBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        StoreBuilder::default().open(path)
    }

    /// A store that lives in memory only: for tests and scratch work. Gone when the last handle is.
    pub fn in_memory() -> Result<Store> {
        StoreBuilder::default().open_backend(redb::backends::InMemoryBackend::new(), ":memory:")
    }

    /// Options for opening a store.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// The file this store is in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The actor the `log_*` helpers write.
    #[must_use]
    pub fn actor(&self) -> &str {
        &self.inner.actor
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Appends one event and returns it as stored. An id that is already stored with the same
    /// content returns the stored event and writes nothing.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the field at fault, [`Error::Conflict`] for a reused id with
    /// other content, [`Error::WrongExpectedSequence`] when an expected sequence does not hold,
    /// or a storage error.
    pub fn append(&self, event: NewEvent) -> Result<Event> {
        self.append_outcome(event).map(Appended::into_event)
    }

    /// Appends one event and says whether it was new or already stored.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn append_outcome(&self, event: NewEvent) -> Result<Appended> {
        let mut appended = self
            .inner
            .writer
            .append(vec![event])
            .map_err(Refused::into_error)?;
        appended.pop().ok_or(Error::Closed)
    }

    /// Appends events atomically: all of them, or (on any error) none. Returns them as stored,
    /// in order.
    ///
    /// # Errors
    /// The first error any event meets; nothing of the batch is written then.
    pub fn append_batch(&self, events: impl IntoIterator<Item = NewEvent>) -> Result<Vec<Event>> {
        let appended = self.append_batch_outcome(events)?;
        Ok(appended.into_iter().map(Appended::into_event).collect())
    }

    /// As [`Store::append_batch`], saying of each event whether it was new.
    ///
    /// # Errors
    /// As [`Store::append_batch`].
    pub fn append_batch_outcome(
        &self,
        events: impl IntoIterator<Item = NewEvent>,
    ) -> Result<Vec<Appended>> {
        self.inner
            .writer
            .append(events.into_iter().collect())
            .map_err(Refused::into_error)
    }

    /// Appends an event by this store's actor (see [`StoreBuilder::actor`]), as OpenIntent's
    /// client `log_event` does.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_event(
        &self,
        intent_id: impl Into<String>,
        event_type: impl Into<EventType>,
        payload: Value,
    ) -> Result<Event> {
        self.append(NewEvent::new(intent_id, event_type, self.inner.actor.clone()).payload(payload))
    }

    /// Subscribes to committed events that pass `filter`, from `start`: first the history up to
    /// the moment of subscribing, then [`Delivery::CaughtUp`](crate::Delivery::CaughtUp), then
    /// live events as they commit, with no gap and no duplicate.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = oidb::Store::open(dir.path().join("s.oidb"))?;
    /// use oidb::{Delivery, EventType, Filter, Start};
    /// use serde_json::json;
    ///
    /// store.log_event("intent-42", EventType::LlmRequestStarted, json!({}))?;
    /// let mut sub = store.subscribe(Filter::new().intent("intent-42").type_prefix("llm_"), Start::Beginning)?;
    /// store.log_event("intent-42", EventType::LlmRequestCompleted, json!({}))?;
    /// let kinds: Vec<_> = sub.iter().take(3).map(|d| match d.unwrap() {
    ///     Delivery::Event(e) => e.event_type.to_string(),
    ///     Delivery::CaughtUp { position } => format!("caught up at {position}"),
    /// }).collect();
    /// assert_eq!(kinds, ["llm_request_started", "caught up at 1", "llm_request_completed"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, filter: Filter, start: Start) -> Result<Subscription> {
        if self.inner.writer.is_closed() {
            return Err(Error::Closed);
        }
        Subscription::register(
            Arc::clone(&self.inner.db),
            Arc::clone(&self.inner.hub),
            filter,
            start,
            self.inner.channel_capacity,
        )
    }

    /// How many subscriptions are open.
    #[must_use]
    pub fn subscriber_count(&self) -> usize {
        self.inner.hub.subscriber_count()
    }

    /// Closes the store for every handle: appends waiting are written, everything is made
    /// durable, and every subscription's iterator ends. Later calls on any handle answer
    /// [`Error::Closed`]. The file itself is released when the last handle is dropped.
    pub fn close(&self) -> Result<()> {
        let result = self.inner.writer.close();
        self.inner.hub.close();
        result
    }

    /// Makes every acknowledged append durable in the file itself now: under
    /// [`Durability::Deferred`], the appends of the current window; under
    /// [`Durability::Immediate`], the commits its write-ahead log holds (which are durable
    /// already), so that the file alone is complete and the log starts over.
    ///
    /// # Errors
    /// A storage error.
    pub fn flush(&self) -> Result<()> {
        self.inner.writer.flush()
    }

    /// A consistent view of the store as of the last commit, for reads that must agree with each
    /// other; see [`Snapshot`].
    ///
    /// # Errors
    /// A storage error.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::begin(&*self.inner.db, &self.inner.path)
    }

    /// Every event a query matches (up to its limit, if it has one), read lazily a page at a time.
    /// The iterator sees the log as it was when it was made: events appended later are not in it.
    /// It holds no read transaction between pages.
    ///
    /// # Errors
    /// A storage error at the start; later errors come from the iterator.
    pub fn query_iter(&self, query: &Query) -> Result<Events> {
        let bound = self.snapshot()?.last_position()?;
        Ok(Events::new(self.inner.db.clone(), query, bound))
    }

    /// Every event from `from` on, in position order.
    ///
    /// # Errors
    /// A storage error at the start; later errors come from the iterator.
    pub fn scan(&self, from: Position) -> Result<Events> {
        Ok(self
            .query_iter(&Query::new())?
            .starting_after(from.saturating_sub(1)))
    }
}
