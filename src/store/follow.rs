//! [`Follow`]: a read-only handle's subscription, which follows a file as its writer (in any
//! process) commits to it.
//!
//! It has no channel to be fed from: it reads. History, then each poll, is a query after the
//! last position it covered, bounded by the file's last position in the same read transaction;
//! since positions only grow and a commit is seen whole or not at all, nothing is passed over
//! and nothing comes twice.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `engine::format`, `engine::reader`,
//! `engine::source`, `subscribe::hub`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::format::{self, EVENTS};
use crate::engine::reader;
use crate::engine::source::ReadSource;
use crate::model::error::Result;
use crate::model::event::{Event, Position};
use crate::model::filter::{Cursor, Order, Query};
use crate::subscribe::hub::{Delivery, Start};

/// How often a [`Follow`] waiting for new events looks at the file: one read transaction each
/// time, a few microseconds.
pub const FOLLOW_POLL: Duration = Duration::from_millis(5);

/// The most events read in one read transaction.
const PAGE: usize = 1024;

/// The events a [`ReadOnlyStore`](crate::ReadOnlyStore) follows: from
/// [`ReadOnlyStore::subscribe`](crate::ReadOnlyStore::subscribe).
pub struct Follow {
    source: Arc<dyn ReadSource>,
    query: Query,
    /// Every matching event up to this position has been delivered (or is in `buffered`).
    covered: Position,
    /// Where history ends: [`Delivery::CaughtUp`] comes once everything up to it is delivered.
    until: Position,
    caught_up_sent: bool,
    buffered: VecDeque<Arc<Event>>,
}

impl std::fmt::Debug for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follow")
            .field("query", &self.query)
            .field("covered", &self.covered)
            .finish_non_exhaustive()
    }
}

impl Follow {
    /// Follows the events of `query` in `source` from `start`, oldest first; `last` is its last
    /// position now (where history ends).
    pub(crate) fn new(
        source: Arc<dyn ReadSource>,
        query: &Query,
        start: Start,
        last: Position,
    ) -> Follow {
        let covered = match start {
            Start::Beginning => 0,
            Start::Now => last,
            Start::After(position) => position,
        };
        Follow {
            source,
            query: query.clone().order(Order::OldestFirst),
            covered,
            until: last,
            caught_up_sent: false,
            buffered: VecDeque::new(),
        }
    }

    /// The next delivery, waiting as long as it takes.
    ///
    /// # Errors
    /// [`Error::FileReplaced`](crate::Error::FileReplaced) once the path names another file; a
    /// storage error or a damaged record (named by its position), each time it is due.
    pub fn recv(&mut self) -> Result<Delivery> {
        loop {
            if let Some(delivery) = self.recv_timeout(Duration::from_secs(60))? {
                return Ok(delivery);
            }
        }
    }

    /// The next delivery, or `None` when none came within `timeout`.
    ///
    /// # Errors
    /// As [`Follow::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Delivery>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Ok(Some(Delivery::Event(event)));
            }
            if !self.caught_up_sent && self.covered >= self.until {
                self.caught_up_sent = true;
                return Ok(Some(Delivery::CaughtUp {
                    position: self.until,
                }));
            }
            if self.read_page()? {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(FOLLOW_POLL.min(deadline - now));
        }
    }

    /// Every delivery, as they come; an error ends it.
    pub fn iter(&mut self) -> impl Iterator<Item = Result<Delivery>> + '_ {
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let next = self.recv();
            failed = next.is_err();
            Some(next)
        })
    }

    /// The last position this follow has covered: every matching event up to it was delivered.
    #[must_use]
    pub fn position(&self) -> Position {
        self.covered.min(
            self.buffered
                .front()
                .map_or(Position::MAX, |e| e.position - 1),
        )
    }

    /// Reads the next page of matching events after `covered`, up to the end of history while in
    /// history, else up to the file's last position. Whether it covered anything new.
    fn read_page(&mut self) -> Result<bool> {
        let txn = self.source.begin_read()?;
        let last = format::last_position(&txn.open_table(EVENTS)?)?;
        let upto = if self.caught_up_sent {
            last
        } else {
            self.until.min(last)
        };
        if upto <= self.covered {
            return Ok(false);
        }
        let page = reader::page(
            &txn,
            &self.query.clone().after(Cursor(self.covered)).limit(PAGE),
        )?;
        for event in page.events {
            if event.position > upto {
                break;
            }
            self.buffered.push_back(Arc::new(event));
        }
        self.covered = match page.next {
            Some(Cursor(next)) if next < upto => next,
            _ => upto,
        };
        Ok(true)
    }
}
