//! The writer's interface: the settings it is given ([`WriteConfig`], [`Durability`]), what an
//! append comes to ([`Appended`], or [`Refused`] naming the event that failed), and who hears of
//! each commit ([`CommitListener`]).
//!
//! Uses only the model; every other part of the writer may use it.

use std::path::PathBuf;

use crate::model::error::Error;
use crate::model::event::Event;

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// The event is new and now stored.
    New(Event),
    /// An event with this id and the same content was already stored; nothing was written.
    AlreadyAppended(Event),
}

impl Appended {
    /// The stored event, new or not.
    #[must_use]
    pub fn event(&self) -> &Event {
        match self {
            Appended::New(e) | Appended::AlreadyAppended(e) => e,
        }
    }

    /// The stored event, new or not.
    #[must_use]
    pub fn into_event(self) -> Event {
        match self {
            Appended::New(e) | Appended::AlreadyAppended(e) => e,
        }
    }

    /// Whether this append wrote the event.
    #[must_use]
    pub fn is_new(&self) -> bool {
        matches!(self, Appended::New(_))
    }
}

/// When an acknowledged append is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each append returns after its transaction is on disk (fsync). Survives a process crash
    /// and a power loss. The default.
    ///
    /// A store in a file makes each commit durable with one write and one sync of its
    /// write-ahead log, `<file>-wal` beside it, which the store folds into the file from time
    /// to time and removes when it closes; after a crash, opening the store replays it. Copy an
    /// open store together with that file (or export it): the file alone holds the events up
    /// to its last fold.
    #[default]
    Immediate,
    /// Appends are visible at once and made durable together within `window` (and on
    /// [`Store::flush`](crate::Store::flush), and when the last handle closes). A process crash
    /// or a power loss can lose the appends acknowledged in the last `window`; never anything older,
    /// and never part of a transaction. If making them durable fails (an I/O error, a full disk),
    /// flushes and appends answer [`Error::NeedsReopen`] from then on,
    /// and the appends acknowledged since the last successful flush may be lost.
    Deferred {
        /// The longest an acknowledged append waits to reach the disk.
        window: std::time::Duration,
    },
}

/// Receives committed events, in position order, while the commit lock is held.
pub(crate) trait CommitListener: Send + Sync {
    /// Called once per commit with the events it made new.
    fn committed(&self, events: &[Event]);
}

/// Settings the write path needs.
#[derive(Debug, Clone)]
pub(crate) struct WriteConfig {
    pub(crate) durability: Durability,
    pub(crate) max_payload_bytes: usize,
    /// Zero: every group is committed (published) as it is written, instead of waiting in the
    /// open transaction for the publisher.
    pub(crate) publish_at_once: bool,
    /// The write-ahead log's path, for a store in a file: replayed when the store opens, and
    /// under [`Durability::Immediate`] what makes each commit durable.
    pub(crate) wal: Option<PathBuf>,
}

/// Why a request failed, and which of its events (by index) failed, when one did.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) index: Option<usize>,
    pub(crate) error: Box<Error>,
}

impl Refused {
    /// The error, without the event index.
    pub(crate) fn into_error(self) -> Error {
        *self.error
    }
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Refused {
            index: None,
            error: Box::new(error),
        }
    }
}
