//! Export: events as OpenIntent JSONL, oldest first, for any query.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `store::reads`, `store::snapshot`.

use std::io::Write;

use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::filter::Order;
use crate::model::filter::Query;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

impl Snapshot {
    /// Writes the events a query matches as JSONL (one wire-form event a line), oldest first
    /// (ascending position), and returns how many were written. The output imports into another
    /// store with every `event_hash` unchanged.
    ///
    /// A query asked for newest first selects the same events as it would for a page (with
    /// [`Query::newest_first`] and [`Query::limit`], the newest ones), but they are written
    /// oldest first all the same: a chained import needs each intent's events in order.
    ///
    /// # Errors
    /// [`Error::Output`] when writing fails; a storage error.
    pub fn export_json(&self, mut out: impl Write, query: &Query) -> Result<u64> {
        let mut line = Vec::with_capacity(1024);
        let mut write = |event: &Event| -> Result<()> {
            line.clear();
            serde_json::to_writer(&mut line, event).map_err(|e| Error::Output(e.into()))?;
            line.push(b'\n');
            out.write_all(&line).map_err(Error::Output)
        };
        let mut count = 0;
        if query.order == Order::NewestFirst && (query.limit.is_some() || query.after.is_some()) {
            // A limit or cursor counted from the newest end picks the events: read them, then
            // write them the other way round.
            let mut events = self.query_iter(query)?.collect::<Result<Vec<Event>>>()?;
            events.reverse();
            for event in &events {
                write(event)?;
                count += 1;
            }
        } else {
            for event in self.query_iter(&query.clone().order(Order::OldestFirst))? {
                write(&event?)?;
                count += 1;
            }
        }
        out.flush().map_err(Error::Output)?;
        Ok(count)
    }
}

read_on_handles! {
    /// Writes the events a query matches as JSONL (one wire-form event a line), oldest first
    /// (ascending position), and returns how many were written.
    fn export_json(&self, out: impl Write, query: &Query) -> Result<u64>;
}
