//! Export: events as OpenIntent JSONL, oldest first, for any query, and as a JSON array for the
//! server's answers, both written straight from the stored records (no event is built).
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

    /// The events a query matches, in its order, past the first `skip` and at most `take` of
    /// them, as one JSON array of wire-form events written straight from their records (what
    /// `serde_json` writes for the `Vec<Event>` they decode to).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a damaged record; a storage error.
    pub(crate) fn events_json_array(
        &self,
        query: &Query,
        skip: usize,
        take: usize,
    ) -> Result<Vec<u8>> {
        let mut records = self.query_records(&query.clone().limit(skip.saturating_add(take)));
        for _ in 0..skip {
            match records.next_with(|_, _| Ok(())) {
                Some(skipped) => skipped?,
                None => return Ok(b"[]".to_vec()),
            }
        }
        let mut text = Vec::with_capacity(1024);
        text.push(b'[');
        for taken in 0..take {
            let Some(event) = records.next_with(|position, record| {
                if taken > 0 {
                    text.push(b',');
                }
                record_json::write_event(position, record, &mut text)
            }) else {
                break;
            };
            event?;
        }
        text.push(b']');
        Ok(text)
    }
}

read_on_handles! {
    /// Writes the events a query matches as JSONL (one wire-form event a line), oldest first
    /// (ascending position), and returns how many were written.
    fn export_json(&self, out: impl Write, query: &Query) -> Result<u64>;
}
