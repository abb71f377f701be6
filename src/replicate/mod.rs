//! Replication into NATS JetStream: a store's events published to a stream, in position order,
//! each exactly once in the stream (within its duplicate window), resumable after a crash; and a
//! store rebuilt from such a stream ([`import_stream`]).
//!
//! Each event is published to `<prefix>.<store id>.<intent>` (both ids written as subject tokens
//! by [`encode_token`]), with the header `Nats-Msg-Id: <event id>` (JetStream drops a message
//! whose id it already holds within the stream's duplicate window) and `Oidb-Position:
//! <position>`, and the event's OpenIntent wire JSON as its payload: the bytes
//! [`Store::export_json`](crate::Store::export_json) writes for it, so an import keeps every
//! hash.
//!
//! Publishes are pipelined ([`ReplicatorBuilder::in_flight`] at a time) and their acks awaited in
//! order; the checkpoint (a side file, see below) moves only over acknowledged events. After a
//! failure (the server gone, an ack timed out) the replicator backs off and publishes again from
//! the checkpoint: at least once from oidb, exactly once in the stream, since a resend carries
//! the same `Nats-Msg-Id` and comes within the duplicate window of the first send as long as the
//! outage is shorter than that window. The checkpoint lives in `<file>.replicate-<consumer>`
//! beside the store, not in it, because the store is read through a
//! [`ReadOnlyStore`] while its agent keeps writing it (docs/replication.md).
//!
//! ```no_run
//! # async fn run() -> Result<(), oidb::replicate::Error> {
//! use oidb::replicate::{Replicator, Report};
//! let replicator = Replicator::builder()
//!     .nats("nats://127.0.0.1:4222")
//!     .stream("OIDB")
//!     .follow(true)
//!     .build("agent.oidb")?;
//! replicator
//!     .run(|report| {
//!         if let Report::Retrying { error, progress, .. } = report {
//!             eprintln!("{error}; {} events behind", progress.lag);
//!         }
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Uses `model::error`, `model::event`, `model::filter`, `store::handle`, `store::read_only`,
//! `store::import`, `store::side_checkpoint`, `subscribe::hub`.

mod import;
mod publish;
mod subject;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::event::Position;
use crate::store::read_only::ReadOnlyStore;

pub use import::{import_stream, StreamImport};
pub use subject::{decode_token, encode_token};

use crate::store::side_checkpoint::{name_problem, CheckpointFile};

/// The stream events go to unless told otherwise.
pub const DEFAULT_STREAM: &str = "OIDB";
/// The subject prefix unless told otherwise: subjects are `oidb.<store id>.<intent>`.
pub const DEFAULT_SUBJECT_PREFIX: &str = "oidb";
/// The duplicate window a stream the replicator creates gets: JetStream's own default.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Publishes awaiting their ack at once, unless told otherwise.
pub const DEFAULT_IN_FLIGHT: usize = 1024;
/// The header that carries an event's position in its store.
pub const POSITION_HEADER: &str = "Oidb-Position";

/// Why replication or an import from a stream stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting that cannot work, named.
    #[error("{parameter}: {reason}")]
    Parameter {
        /// The setting (as the command line names it).
        parameter: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::model::error::Error),
    /// The checkpoint beside the store could not be read or written.
    #[error("{0}")]
    Checkpoint(String),
    /// NATS refused something that retrying cannot mend (a stream that does not take the
    /// subjects, an event over the server's payload limit, a stream that does not import).
    #[error("{0}")]
    Nats(String),
}

/// How a replicator is set up: from [`Replicator::builder`].
#[derive(Debug, Clone)]
pub struct ReplicatorBuilder {
    nats: String,
    stream: String,
    prefix: String,
    follow: bool,
    consumer: Option<String>,
    in_flight: usize,
    duplicate_window: Duration,
    ack_timeout: Duration,
}

impl Default for ReplicatorBuilder {
    fn default() -> Self {
        ReplicatorBuilder {
            nats: "nats://127.0.0.1:4222".to_owned(),
            stream: DEFAULT_STREAM.to_owned(),
            prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            follow: false,
            consumer: None,
            in_flight: DEFAULT_IN_FLIGHT,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            ack_timeout: Duration::from_secs(5),
        }
    }
}

impl ReplicatorBuilder {
    /// The NATS server(s): a URL such as `nats://host:4222`, or several separated by commas.
    #[must_use]
    pub fn nats(mut self, url: impl Into<String>) -> Self {
        self.nats = url.into();
        self
    }

    /// The JetStream stream ([`DEFAULT_STREAM`] unless set); created if missing.
    #[must_use]
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The first tokens of every subject ([`DEFAULT_SUBJECT_PREFIX`] unless set).
    #[must_use]
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Whether to keep following the file once caught up (off: stop once every event there was
    /// at the start is acknowledged).
    #[must_use]
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// The checkpoint's name (the stream's name unless set): two replicators of one file with
    /// different names each keep their own place.
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// How many publishes may await their ack at once ([`DEFAULT_IN_FLIGHT`] unless set).
    #[must_use]
    pub fn in_flight(mut self, publishes: usize) -> Self {
        self.in_flight = publishes;
        self
    }

    /// The duplicate window of a stream this replicator creates ([`DEFAULT_DUPLICATE_WINDOW`]
    /// unless set); an existing stream keeps its own.
    #[must_use]
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// How long to wait for a publish's ack before publishing again from the checkpoint (5 s
    /// unless set).
    #[must_use]
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// A replicator of the store at `file`, opened for reading (its writer, in any process,
    /// keeps writing it).
    ///
    /// # Errors
    /// [`Error::Parameter`] for a setting that cannot work; [`Error::Store`] when the file does
    /// not open; [`Error::Checkpoint`] when its checkpoint is unreadable or another store's.
    pub fn build(self, file: impl AsRef<Path>) -> Result<Replicator, Error> {
        let bad = |parameter, reason: &str| Error::Parameter {
            parameter,
            reason: reason.to_owned(),
        };
        if self.nats.trim().is_empty() {
            return Err(bad("--nats", "no server URL given"));
        }
        if let Some(reason) = name_problem(&self.stream) {
            return Err(bad("--stream", reason));
        }
        if let Some(reason) = subject::prefix_problem(&self.prefix) {
            return Err(bad("--subject-prefix", reason));
        }
        let consumer = self.consumer.clone().unwrap_or_else(|| self.stream.clone());
        if let Some(reason) = name_problem(&consumer) {
            return Err(bad("--consumer", reason));
        }
        if self.in_flight == 0 {
            return Err(bad("--in-flight", "it must be at least 1"));
        }
        if self.duplicate_window.is_zero() {
            return Err(bad("--duplicate-window", "it must be longer than zero"));
        }
        if self.ack_timeout.is_zero() {
            return Err(bad("--ack-timeout", "it must be longer than zero"));
        }
        let path = file.as_ref().to_path_buf();
        let store = ReadOnlyStore::open(&path)?;
        let store_id = store.snapshot()?.store_id()?.unwrap_or_default();
        let checkpoint = CheckpointFile::beside(&path, "replicate", &consumer, &store_id);
        checkpoint.load().map_err(Error::Checkpoint)?;
        Ok(Replicator {
            subject_base: format!("{}.{}.", self.prefix, encode_token(&store_id)),
            settings: self,
            path,
            store: Arc::new(store),
            store_id,
            checkpoint,
        })
    }
}

/// One store's events into a JetStream stream: from [`Replicator::builder`]; see the
/// [module](self).
#[derive(Debug)]
pub struct Replicator {
    settings: ReplicatorBuilder,
    path: PathBuf,
    store: Arc<ReadOnlyStore>,
    store_id: String,
    /// `<prefix>.<store id token>.`: each subject is this and the intent's token.
    subject_base: String,
    checkpoint: CheckpointFile,
}

/// Where replication stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Every event up to this position is in the stream (JetStream acknowledged it).
    pub checkpoint: Position,
    /// The file's last position, as last read.
    pub last: Position,
    /// Events in the file not yet acknowledged: `last - checkpoint`.
    pub lag: u64,
    /// Events published in this run (resends included).
    pub published: u64,
}

/// A stream's settings, as JetStream reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSettings {
    /// The stream's name.
    pub name: String,
    /// The subjects it takes.
    pub subjects: Vec<String>,
    /// Within this window, a message whose `Nats-Msg-Id` the stream holds is dropped.
    pub duplicate_window: Duration,
    /// `file` or `memory`.
    pub storage: String,
    /// Copies kept in a cluster.
    pub replicas: usize,
    /// How long messages are kept (zero: no limit).
    pub max_age: Duration,
    /// Messages in it when the replicator looked.
    pub messages: u64,
    /// Whether this replicator created it.
    pub created: bool,
}

/// What a running replicator tells its caller.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Report {
    /// The stream, once it is found or created.
    Stream(StreamSettings),
    /// The checkpoint moved.
    Acked(Progress),
    /// Every event the file held when the pass began is in the stream (once a pass; a pass
    /// begins at the start and after each failure).
    CaughtUp(Progress),
    /// Publishing failed; it starts again from the checkpoint after `delay`.
    Retrying {
        /// What failed.
        error: String,
        /// How long it waits first.
        delay: Duration,
        /// Where it stands.
        progress: Progress,
    },
}

impl Replicator {
    /// A builder with the defaults: `nats://127.0.0.1:4222`, [`DEFAULT_STREAM`],
    /// [`DEFAULT_SUBJECT_PREFIX`], follow off.
    #[must_use]
    pub fn builder() -> ReplicatorBuilder {
        ReplicatorBuilder::default()
    }

    /// The file replicated.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's id, the subject token after the prefix (written by [`encode_token`]).
    #[must_use]
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// The subject an intent's events go to.
    #[must_use]
    pub fn subject(&self, intent_id: &str) -> String {
        format!("{}{}", self.subject_base, encode_token(intent_id))
    }

    /// The side file that holds the checkpoint.
    #[must_use]
    pub fn checkpoint_path(&self) -> &Path {
        self.checkpoint.path()
    }

    /// The last position JetStream acknowledged, as saved.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the side file cannot be read.
    pub fn checkpoint(&self) -> Result<Position, Error> {
        self.checkpoint.load().map_err(Error::Checkpoint)
    }

    /// Replicates: from the checkpoint to the end of the file, then (with follow on) each new
    /// event as it is committed, until an error retrying cannot mend. Without follow it returns
    /// once every event the file held at the start is acknowledged. Network and server failures
    /// are retried with backoff (reported to `report`, with the lag), never skipped.
    ///
    /// # Errors
    /// [`Error::Store`] when the file cannot be read (it was replaced, say);
    /// [`Error::Checkpoint`]; [`Error::Nats`] for a refusal retrying cannot mend.
    pub async fn run(&self, report: impl FnMut(Report)) -> Result<Progress, Error> {
        publish::run(self, report).await
    }
}
