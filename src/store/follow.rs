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

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::format::{self, EVENTS};
use crate::engine::reader::{self, Records};
use crate::engine::source::ReadSource;
use crate::model::error::Result;
use crate::model::event::Position;
use crate::model::filter::{Cursor, Order, Query};
use crate::subscribe::hub::{Delivery, Start};

/// How often a [`Follow`] waiting for new events looks at the file: one read transaction each
/// time, a few microseconds.
pub const FOLLOW_POLL: Duration = Duration::from_millis(5);

/// The most events read in one read transaction.
const PAGE: usize = 1024;

/// What [`Follow::next_with`] hands over next: a record as its reader made it, or the end of
/// history.
pub(crate) enum Next<T> {
    /// A record, as the reader made it.
    Record(T),
    /// Everything up to this position, history's end, is handed over.
    CaughtUp(Position),
}

/// The events a [`ReadOnlyStore`](crate::ReadOnlyStore) follows: from
/// [`ReadOnlyStore::subscribe`](crate::ReadOnlyStore::subscribe).
pub struct Follow {
    source: Arc<dyn ReadSource>,
    query: Query,
    /// Every matching event up to this position has been delivered (or is in `page`).
    covered: Position,
    /// Where history ends: [`Delivery::CaughtUp`] comes once everything up to it is delivered.
    until: Position,
    caught_up_sent: bool,
    /// The records read but not yet delivered, still encoded: each is decoded (or written as
    /// text) only as it is taken.
    page: Records,
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
            page: Records::default(),
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
        Ok(match self.next_with(timeout, format::decode_record)? {
            Some(Next::Record(event)) => Some(Delivery::Event(Arc::new(event))),
            Some(Next::CaughtUp(position)) => Some(Delivery::CaughtUp { position }),
            None => None,
        })
    }

    /// As [`Follow::recv_timeout`], for a reader that makes its own of each record's position
    /// and stored bytes instead of decoding them (a record `read` refuses is not taken: it is
    /// handed over again next time).
    pub(crate) fn next_with<T>(
        &mut self,
        timeout: Duration,
        mut read: impl FnMut(Position, &[u8]) -> Result<T>,
    ) -> Result<Option<Next<T>>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(taken) = self.page.take_with(&mut read) {
                return taken.map(|record| Some(Next::Record(record)));
            }
            if !self.caught_up_sent && self.covered >= self.until {
                self.caught_up_sent = true;
                return Ok(Some(Next::CaughtUp(self.until)));
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
            self.page
                .next_position()
                .map_or(Position::MAX, |position| position - 1),
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
        self.page.clear();
        let next = reader::select(
            &txn,
            &self.query,
            Some(self.covered),
            PAGE,
            Some(upto),
            &mut self.page,
        )?;
        self.covered = match next {
            Some(Cursor(next)) if next < upto => next,
            _ => upto,
        };
        Ok(true)
    }
}
