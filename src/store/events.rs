//! Lazy iteration over a query's events a page at a time: the [`Events`] a handle hands out
//! (a fresh read transaction per page, none held between them), and the pager it shares with
//! [`Snapshot::query_iter`](crate::Snapshot::query_iter) (every page from one snapshot).
//!
//! Uses the engine's reader, record codec and read sources, and the model.

use std::sync::Arc;

use redb::ReadTransaction;

use crate::engine::format;
use crate::engine::reader::{self, PageOut as _, Records};
use crate::engine::source::ReadSource;
use crate::model::error::Result;
use crate::model::event::{Event, Position};
use crate::model::filter::{Cursor, Query};

/// Where a paged read of a query stands: the last position taken, how many events are left to
/// take, and the current page's records, decoded one by one as they are taken.
pub(crate) struct Pager {
    query: Query,
    after: Option<Position>,
    bound: Option<Position>,
    remaining: Option<usize>,
    page: Records,
    finished: bool,
}

impl Pager {
    const PAGE: usize = 512;

    /// A pager over `query`, from its cursor on, no further than `bound` (the last position when
    /// a read that spans several transactions began).
    pub(crate) fn new(query: &Query, bound: Option<Position>) -> Pager {
        Pager {
            query: query.clone(),
            after: query.after.map(|c| c.0),
            bound,
            remaining: query.limit,
            page: Records::default(),
            finished: false,
        }
    }

    fn fill(&mut self, txn: &ReadTransaction) -> Result<()> {
        let page_size = self.remaining.map_or(Self::PAGE, |r| r.min(Self::PAGE));
        if page_size == 0 {
            self.finished = true;
            return Ok(());
        }
        self.page.clear();
        let next = reader::select(
            txn,
            &self.query,
            self.after,
            page_size,
            self.bound,
            &mut self.page,
        )?;
        if let Some(last) = self.page.last_position() {
            self.after = Some(last);
        }
        if next.is_none() {
            self.finished = true;
        }
        if let Some(r) = &mut self.remaining {
            *r = r.saturating_sub(self.page.len());
        }
        Ok(())
    }

    /// Whether the current page is used up and another must be read.
    fn needs_page(&self) -> bool {
        !self.finished && self.page.next_position().is_none()
    }

    /// The next event, reading the next page from `txn` when this one is used up; after an
    /// error, `None`.
    pub(crate) fn next(&mut self, txn: &ReadTransaction) -> Option<Result<Event>> {
        self.next_with(txn, format::decode_record)
    }

    /// The next record, as `read` makes it of its position and bytes, reading the next page
    /// from `txn` when this one is used up; after an error (`read`'s included), `None`.
    pub(crate) fn next_with<T>(
        &mut self,
        txn: &ReadTransaction,
        read: impl FnOnce(Position, &[u8]) -> Result<T>,
    ) -> Option<Result<T>> {
        if self.needs_page() {
            if let Err(e) = self.fill(txn) {
                self.finished = true;
                return Some(Err(e));
            }
        }
        self.take_with(read)
    }

    /// The next event of the current page, if any.
    fn take(&mut self) -> Option<Result<Event>> {
        self.take_with(format::decode_record)
    }

    /// The next record of the current page, as `read` makes it, if any.
    fn take_with<T>(
        &mut self,
        read: impl FnOnce(Position, &[u8]) -> Result<T>,
    ) -> Option<Result<T>> {
        let taken = self.page.take_with(read);
        if matches!(taken, Some(Err(_))) {
            self.finished = true;
            self.page = Records::default();
        }
        taken
    }
}

/// A lazy iterator over the events of a query, from [`Store::query_iter`](crate::Store::query_iter)
/// or [`Store::scan`](crate::Store::scan) (and the same methods of
/// [`ReadOnlyStore`](crate::ReadOnlyStore)).
///
/// It reads a page of records at a time, each in its own read transaction, and decodes each event
/// as it is taken. It sees the log as it was when it was made: events appended later are not in
/// it. An error (from storage, or a damaged record, named by its position) comes after the events
/// before it, and ends the iteration.
pub struct Events {
    db: Arc<dyn ReadSource>,
    pager: Pager,
}

impl Events {
    /// The events of `query` in `db`, no further than `bound`.
    pub(crate) fn new(db: Arc<dyn ReadSource>, query: &Query, bound: Position) -> Events {
        Events {
            db,
            pager: Pager::new(query, Some(bound)),
        }
    }

    /// Starts after `position` (0: from the first event), whatever the query's cursor says.
    pub(crate) fn starting_after(mut self, position: Position) -> Events {
        self.pager.after = Some(position).filter(|p| *p > 0);
        self
    }
}

impl Iterator for Events {
    type Item = Result<Event>;

    /// The next event; after an error, `None`.
    fn next(&mut self) -> Option<Result<Event>> {
        if self.pager.needs_page() {
            let txn = match self.db.begin_read() {
                Ok(txn) => txn,
                Err(e) => {
                    self.pager.finished = true;
                    return Some(Err(e));
                }
            };
            return self.pager.next(&txn);
        }
        self.pager.take()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("query", &self.pager.query)
            .field("after", &self.pager.after.map(Cursor))
            .finish_non_exhaustive()
    }
}
