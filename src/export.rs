//! Export: events as OpenIntent JSONL, in position order, for any query.

use std::io::Write;

use crate::{Error, Query, Result, Store};

impl Store {
    /// Writes the events a query matches as JSONL (one wire-form event a line), in position
    /// order, and returns how many were written. The output imports into another store with
    /// every `event_hash` unchanged.
    ///
    /// # Errors
    /// [`Error::Output`] when writing fails; a storage error.
    pub fn export_json(&self, mut out: impl Write, query: &Query) -> Result<u64> {
        let mut count = 0;
        let mut line = Vec::with_capacity(1024);
        for event in self.query_iter(query)? {
            line.clear();
            serde_json::to_writer(&mut line, &event?).map_err(|e| Error::Output(e.into()))?;
            line.push(b'\n');
            out.write_all(&line).map_err(Error::Output)?;
            count += 1;
        }
        out.flush().map_err(Error::Output)?;
        Ok(count)
    }
}
