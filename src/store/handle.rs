//! The handle users hold: open a file, append, read, query, import and export.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `engine::format`,
//! `engine::presence`, `engine::setup`, `engine::wal`, `engine::writer`, `subscribe::hub`,
//! `store::events`, `store::snapshot`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::ReadableDatabase;
use serde_json::Value;

use crate::engine::format::{self, EVENTS};
use crate::engine::presence::{Presence, LINGERING_LOCK_WAIT};
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
    pub(crate) writer: Arc<Writer>,
    pub(crate) hub: Arc<Hub>,
    path: PathBuf,
    actor: String,
    channel_capacity: usize,
    /// The writer's mark on the file, which readers look for; `None` for a store not in a file.
    _presence: Option<Arc<Presence>>,
    /// The thread that publishes waiting appends, stopped before the store closes.
    publisher: Publisher,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: write what waits, make it durable, end subscriptions. The
        // publisher goes first, so that nothing of the store outlives this drop on its thread.
        self.publisher.stop();
        if !self.writer.is_closed() {
            let _ = self.writer.close();
        }
        self.hub.close();
    }
}

/// How long an acknowledged append waits, at most, before readers of the file in other
/// processes can see it: while one has the file open, the writer commits the transaction its
/// latest groups wait in this often (and whenever its own process reads). Each of those commits
/// is a durable, two-phase redb commit; see `docs/design.md`. While no read-only handle has the
/// file open, appends under [`Durability::Immediate`] wait in that transaction (durable in the
/// write-ahead log) until the log is full; a [`ReadOnlyStore`](crate::ReadOnlyStore) that opens
/// the file waits for the next tick to publish them, so it sees every append acknowledged before
/// its open began.
pub const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// The thread that publishes a store's waiting appends every so often. It holds the writer only
/// while it publishes, and [`Publisher::stop`] waits for it to end: the last handle's drop then
/// releases the file before it returns, as a caller that copies or reopens the file expects.
struct Publisher {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    /// Publishes `writer`'s waiting appends every `every`; none when `every` is zero.
    fn spawn(writer: &Arc<Writer>, every: std::time::Duration) -> Publisher {
        if every.is_zero() {
            return Publisher {
                stop: None,
                thread: None,
            };
        }
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let writer = Arc::downgrade(writer);
        let thread = std::thread::Builder::new()
            .name("oidb-publisher".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    let Some(writer) = writer.upgrade() else {
                        return;
                    };
                    // A failed publish fails the store; its appends come back on the next open.
                    let _ = writer.publish_if_read();
                }
            })
            // Without a thread, appends still become visible on the next read in this process,
            // on flush() and when the store closes.
            .ok();
        Publisher {
            stop: Some(stop),
            thread,
        }
    }

    /// Tells the thread to stop and waits until it has.
    fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
    publish_interval: std::time::Duration,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        StoreBuilder {
            actor: DEFAULT_ACTOR.to_owned(),
            durability: Durability::Immediate,
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            publish_interval: PUBLISH_INTERVAL,
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

    /// How long an acknowledged append may wait before readers in other processes see it
    /// (default [`PUBLISH_INTERVAL`], 20 ms). Every publish is a durable redb commit of what
    /// waited, so a longer interval costs the disk less; `Duration::ZERO` publishes each commit
    /// as it is made (each append then pays a durable redb commit, two syncs). Reads in this
    /// process always see every acknowledged append, whatever the interval. A read-only open
    /// waits up to 5 s for the writer's next tick (see [`PUBLISH_INTERVAL`]): an interval longer
    /// than that lets it read the file as of the last publish.
    pub fn publish_interval(mut self, interval: std::time::Duration) -> Self {
        self.publish_interval = interval;
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
        if exists && check_format_without_writing(&builder, &path)? == Checked::NeedsRepair {
            // redb repairs a file best with the whole file to itself: its exclusive mode checks
            // a damaged file where the multi-process one gives up. It is not tried while readers
            // follow the file (the multi-process open repairs it then): its locks, taken a range
            // at a time, would make a reader starting a read meanwhile see the file as damaged.
            // A reader arriving during the attempt has its open refused until it is over.
            if !Presence::readers_present(&path)? {
                match guarded_open(&path, || builder.open(&path))? {
                    Ok(db) => drop(db),
                    Err(redb::DatabaseError::DatabaseAlreadyOpen) => {}
                    Err(other) => return Err(open_error(&path, other)),
                }
            }
        }
        // Other processes may open the file read-only meanwhile, and follow its commits.
        builder.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
        let opened = if exists {
            guarded_open(&path, || builder.open(&path))?
        } else {
            builder.create(&path)
        };
        let db = opened.map_err(|e| open_error(&path, e))?;
        let presence = Presence::writer(&path)?;
        let wal = Some(crate::engine::wal::path_beside(&path)?);
        self.finish_open(db, path, wal, Some(presence))
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
        self.finish_open(db, path, None, None)
    }

    fn finish_open(
        self,
        db: redb::Database,
        path: PathBuf,
        wal: Option<PathBuf>,
        presence: Option<Presence>,
    ) -> Result<Store> {
        match format::check_format(&db, &path)? {
            format::FileState::Uninitialized => setup::initialize(&db)?,
            format::FileState::Earlier => {
                // A reader of the old layout must not see the new one appear under it.
                if let Some(presence) = &presence {
                    presence.keep_readers_out("a format upgrade")?;
                }
                setup::upgrade(&db)?;
                if let Some(presence) = &presence {
                    presence.let_readers_in()?;
                }
            }
            format::FileState::Current => {}
        }
        let last_position = {
            let txn = db.begin_read()?;
            format::last_position(&txn.open_table(EVENTS)?)?
        };
        let db = Arc::new(db);
        let hub = Arc::new(Hub::new(last_position));
        let presence = presence.map(Arc::new);
        // Appends may wait unpublished while nobody reads the file only where the publisher
        // looks for readers at every tick.
        let hold_back = presence
            .clone()
            .filter(|_| !self.publish_interval.is_zero());
        let writer = Arc::new(Writer::new(
            Arc::clone(&db),
            WriteConfig {
                durability: self.durability,
                max_payload_bytes: self.max_payload_bytes,
                publish_at_once: self.publish_interval.is_zero(),
                wal,
            },
            hub.clone(),
            hold_back,
        )?);
        let every = match self.durability {
            Durability::Deferred { window } => window.min(self.publish_interval),
            Durability::Immediate => self.publish_interval,
        };
        let publisher = Publisher::spawn(&writer, every);
        let inner = Arc::new(Inner {
            writer,
            hub,
            path,
            actor: self.actor,
            channel_capacity: self.channel_capacity,
            publisher,
            _presence: presence,
        });
        Ok(Store { inner })
    }
}

/// Checks an existing file's format through a read-only open, so that a file oidb must refuse
/// (another version, another program's redb file, a damaged file) is refused unchanged: a
/// writable open alone would already write to it. A file that was not closed cleanly cannot be
/// read before redb repairs it; its format is checked after the writable open instead.
fn check_format_without_writing(builder: &redb::Builder, path: &Path) -> Result<Checked> {
    match guarded_open(path, || builder.open_read_only(path))? {
        Ok(db) => guarded(path, || format::check_format(&db, path))?
            .map(|_| Checked::Readable)
            .map_err(|e| truncated_as_not_oidb(path, e)),
        Err(redb::DatabaseError::RepairAborted) if !closed_cleanly(path)? => {
            Ok(Checked::NeedsRepair)
        }
        // redb wants to repair a file its last writer closed: the file was damaged since (cut
        // short, say), and a repair would only write over what is left of it.
        Err(redb::DatabaseError::RepairAborted) => Err(Error::NotAnOidbFile {
            path: path.to_path_buf(),
            reason: "the file is damaged or truncated: its writer closed it, yet it does not \
                     read as it was left"
                .into(),
        }),
        Err(error) => Err(open_error(path, error)),
    }
}

/// Runs one of redb's opens of an existing file. redb panics on some damaged files (a copy cut
/// short whose last commit saved its allocator state, which then points past the end): that is
/// answered as the damaged file it is, not as a panic of the caller.
pub(crate) fn guarded<T>(path: &Path, open: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(open))
        .map_err(|panic| damaged(path, &*panic))
}

/// [`guarded`] for one of redb's opens that may find the file taken: tries again for
/// [`LINGERING_LOCK_WAIT`] before answering `DatabaseAlreadyOpen`.
pub(crate) fn guarded_open<T>(
    path: &Path,
    open: impl Fn() -> std::result::Result<T, redb::DatabaseError>,
) -> Result<std::result::Result<T, redb::DatabaseError>> {
    let deadline = std::time::Instant::now() + LINGERING_LOCK_WAIT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match guarded(path, &open)? {
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            opened => return Ok(opened),
        }
    }
}

fn damaged(path: &Path, panic: &(dyn std::any::Any + Send)) -> Error {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    Error::NotAnOidbFile {
        path: path.to_path_buf(),
        reason: format!("the file is damaged or truncated (redb could not load it: {what})"),
    }
}

/// Whether the file's last writer closed it: redb's header (its file format, `docs/design.md`
/// in redb) keeps a "recovery required" flag, the second bit of the byte after its 9-byte magic
/// number, set while a writer has the file open and cleared when it closes it.
fn closed_cleanly(path: &Path) -> Result<bool> {
    const GOD_BYTE: usize = 9;
    const RECOVERY_REQUIRED: u8 = 0b10;
    let mut start = Vec::with_capacity(GOD_BYTE + 1);
    std::fs::File::open(path)
        .and_then(|f| f.take(GOD_BYTE as u64 + 1).read_to_end(&mut start))
        .map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(start
        .get(GOD_BYTE)
        .is_some_and(|flags| flags & RECOVERY_REQUIRED == 0))
}

/// What [`check_format_without_writing`] found.
#[derive(Debug, PartialEq, Eq)]
enum Checked {
    /// A file of oidb's whose format this build opens.
    Readable,
    /// A file that was not closed cleanly, whose format is checked once redb has repaired it.
    NeedsRepair,
}

/// A read that ran past the end of the file: the file is cut short, which is no storage fault.
pub(crate) fn truncated_as_not_oidb(path: &Path, error: Error) -> Error {
    match error {
        Error::Storage(redb::Error::Io(source))
            if source.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Error::NotAnOidbFile {
                path: path.to_path_buf(),
                reason: "it is truncated: it ends before the data its header points at".into(),
            }
        }
        other => other,
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
            self.inner.writer.clone(),
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
        Snapshot::begin(&*self.inner.writer, &self.inner.path)
    }

    /// Every event a query matches (up to its limit, if it has one), read lazily a page at a time.
    /// The iterator sees the log as it was when it was made: events appended later are not in it.
    /// It holds no read transaction between pages.
    ///
    /// # Errors
    /// A storage error at the start; later errors come from the iterator.
    pub fn query_iter(&self, query: &Query) -> Result<Events> {
        let bound = self.snapshot()?.last_position()?;
        Ok(Events::new(self.inner.writer.clone(), query, bound))
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
