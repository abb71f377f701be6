//! Export: events as OpenIntent JSONL, oldest first, for any query, written straight from the
//! stored records (no event is built).
//!
//! Uses `model::error`, `model::filter`, `engine::record_json`, `store::reads`,
//! `store::snapshot`.

use std::io::Write;

use crate::engine::record_json;
use crate::model::error::Error;
use crate::model::error::Result;
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
        let mut count = 0;
        if query.order == Order::NewestFirst && (query.limit.is_some() || query.after.is_some()) {
            // A limit or cursor counted from the newest end picks the events: write them all
            // first (a damaged one fails the export before anything is written), then their
            // lines the other way round.
            let mut text = Vec::with_capacity(4096);
            let mut lines = Vec::new();
            let mut records = self.query_records(query);
            loop {
                let start = text.len();
                let Some(written) = records.next_with(|position, record| {
                    record_json::write_event(position, record, &mut text)
                }) else {
                    break;
                };
                written?;
                text.push(b'\n');
                lines.push(start..text.len());
            }
            for line in lines.into_iter().rev() {
                let line = text.get(line).unwrap_or_default();
                out.write_all(line).map_err(Error::Output)?;
                count += 1;
            }
        } else {
            let mut line = Vec::with_capacity(1024);
            let mut records = self.query_records(&query.clone().order(Order::OldestFirst));
            while let Some(written) = records.next_with(|position, record| {
                line.clear();
                record_json::write_event(position, record, &mut line)
            }) {
                written?;
                line.push(b'\n');
                out.write_all(&line).map_err(Error::Output)?;
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
