//! Import: OpenIntent events as JSONL or a JSON array, server style or chained, atomically.
//!
//! Uses `model::error`, `model::event`, `model::wire`, `engine::writer`, `store::handle`.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::Value;
use uuid::Uuid;

use crate::engine::writer::Refused;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::NewEvent;
use crate::model::wire::WireEvent;
use crate::store::handle::Store;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ImportReport {
    /// Events read from the input.
    pub read: u64,
    /// Events written (new to this store).
    pub appended: u64,
    /// Events already in the store with the same content (written before; skipped), and events
    /// repeated with the same content within the input (skipped).
    pub already_present: u64,
}

/// Where each event of an input came from, to name it in errors.
struct Origin {
    line: usize,
    id: Uuid,
    /// What of the event as written oidb keeps in another form ([`WireEvent::rewritten`]).
    rewritten: Vec<String>,
}

impl Store {
    /// Imports OpenIntent events from JSONL (one object a line; blank lines are skipped) or from
    /// one JSON array. Server-style events (no `sequence`, no hashes) are chained as they are
    /// appended; chained events must continue the intent's chain in this store and hash to their
    /// `event_hash`, which is then kept as it is. Ids already stored with the same content are
    /// skipped, so importing a file twice writes nothing new; so is an event repeated with the
    /// same content within the input (both are counted in [`ImportReport::already_present`]).
    /// An id given again with other content is refused, naming its line and how far above the
    /// first one is.
    ///
    /// The import is atomic: on any error nothing of it is written, and the error names the line,
    /// the event id and what is wrong.
    ///
    /// # Errors
    /// [`Error::Import`] for input that cannot be read or does not chain; a storage error.
    pub fn import_json(&self, input: impl BufRead) -> Result<ImportReport> {
        self.import_json_named(input, "input")
    }

    /// As [`Store::import_json`], naming the input (a file name) in errors.
    ///
    /// # Errors
    /// As [`Store::import_json`].
    pub fn import_json_named(
        &self,
        input: impl BufRead,
        source_name: &str,
    ) -> Result<ImportReport> {
        let (events, repeated) = read_input(input, source_name)?;
        let origins: Vec<Origin> = events
            .iter()
            .map(|(line, wire)| Origin {
                line: *line,
                id: wire.id,
                rewritten: wire.rewritten.clone(),
            })
            .collect();
        let read = (events.len() + repeated) as u64;
        let batch: Vec<NewEvent> = events.into_iter().map(|(_, wire)| wire.event).collect();
        let appended = self
            .inner()
            .writer
            .append(batch)
            .map_err(|refused| locate(refused, &origins, source_name))?;
        let new = appended.iter().filter(|a| a.is_new()).count() as u64;
        Ok(ImportReport {
            read,
            appended: new,
            already_present: read - new,
        })
    }
}

/// Names the line of the event an append failed on.
fn locate(refused: Refused, origins: &[Origin], source_name: &str) -> Error {
    let index = refused.index;
    let error = refused.into_error();
    let origin = index.and_then(|i| origins.get(i));
    let Some(origin) = origin else {
        return error;
    };
    let reason = match &error {
        Error::ChainMismatch { reason, .. } if reason.contains("continues at") => format!(
            "{reason} (an export filtered by type or time has gaps in its chains; import a whole \
             export, or remove `sequence` and the hashes to append the events as new links)"
        ),
        Error::ChainMismatch { reason, .. }
            if reason.contains("does not match its content") && !origin.rewritten.is_empty() =>
        {
            format!(
                "{reason}, or hashed as written here while oidb keeps it in its own form ({}): \
                 re-hash the event over that form, or remove `sequence` and the hashes to append \
                 it as a new link",
                origin.rewritten.join("; ")
            )
        }
        Error::ChainMismatch { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    Error::Import {
        source_name: source_name.to_owned(),
        line: origin.line,
        event_id: Some(origin.id.to_string()),
        reason,
    }
}

/// Reads every event of the input, with the line each starts on, and how many events repeated
/// an earlier one with the same content (they are left out, as an event already stored is
/// skipped). Checks what needs no store: JSON syntax, field types, and that an id is not given
/// twice with different content.
fn read_input(
    mut input: impl BufRead,
    source_name: &str,
) -> Result<(Vec<(usize, WireEvent)>, usize)> {
    let error = |line: usize, event_id: Option<String>, reason: String| Error::Import {
        source_name: source_name.to_owned(),
        line,
        event_id,
        reason,
    };
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| error(0, None, format!("cannot read: {e}")))?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let line = 1 + bytes
                .iter()
                .take(e.valid_up_to())
                .filter(|b| **b == b'\n')
                .count();
            return Err(error(line, None, "is not valid UTF-8".into()));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let values = if text.trim_start().starts_with('[') {
        read_array(text).map_err(|(line, reason)| error(line, None, reason))?
    } else {
        read_lines(text).map_err(|(line, reason)| error(line, None, reason))?
    };
    let mut events: Vec<(usize, WireEvent)> = Vec::with_capacity(values.len());
    let mut repeated = 0;
    // Each id's first event, by its index in `events`.
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    for (line, value) in values {
        let event_id = value.get("id").and_then(Value::as_str).map(str::to_owned);
        let wire =
            WireEvent::from_value(value).map_err(|reason| error(line, event_id.clone(), reason))?;
        if let Some((first_line, first)) = seen.get(&wire.id).and_then(|i| events.get(*i)) {
            if first.event != wire.event {
                return Err(error(
                    line,
                    event_id,
                    // Counted back from this line, so that it stays true for a caller that
                    // imports a file in pieces and adds the lines before each piece.
                    format!(
                        "the same id is {} above, with other content; an id names one event: \
                         give this one a new id or remove one of the two",
                        match line - first_line {
                            1 => "1 line".to_owned(),
                            n => format!("{n} lines"),
                        }
                    ),
                ));
            }
            repeated += 1;
            continue;
        }
        seen.insert(wire.id, events.len());
        events.push((line, wire));
    }
    Ok((events, repeated))
}

fn read_lines(text: &str) -> Result<Vec<(usize, Value)>, (usize, String)> {
    let mut values = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| (index + 1, format!("is not JSON: {e}")))?;
        values.push((index + 1, value));
    }
    Ok(values)
}

fn read_array(text: &str) -> Result<Vec<(usize, Value)>, (usize, String)> {
    // Offsets only grow, so each line is counted once: counting from the start for every
    // element made a large array's import quadratic.
    let mut counted = (0, 1);
    let mut line_at = |offset: usize| {
        let (from, line) = counted;
        let (from, line) = if offset < from { (0, 1) } else { (from, line) };
        // Offsets come from the text's own slicing, so they fall between characters.
        let newlines = text
            .get(from..offset)
            .map_or(0, |t| t.matches('\n').count());
        counted = (offset.max(from), line + newlines);
        counted.1
    };
    let start = text.find('[').map_or(0, |i| i + 1);
    let mut offset = start;
    let mut values = Vec::new();
    loop {
        let rest = text.get(offset..).unwrap_or("");
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        if let Some(after) = trimmed.strip_prefix(']') {
            if !after.trim().is_empty() {
                return Err((
                    line_at(offset + 1),
                    "unexpected text after the closing `]`".into(),
                ));
            }
            return Ok(values);
        }
        if !values.is_empty() {
            let Some(after_comma) = trimmed.strip_prefix(',') else {
                return Err((
                    line_at(offset),
                    "expected `,` or `]` between array elements".into(),
                ));
            };
            let skipped = trimmed.len() - after_comma.len();
            let after_comma_trimmed = after_comma.trim_start();
            offset += skipped + (after_comma.len() - after_comma_trimmed.len());
        }
        let element = text.get(offset..).unwrap_or("");
        let mut stream = serde_json::Deserializer::from_str(element).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                values.push((line_at(offset), value));
                offset += stream.byte_offset();
            }
            Some(Err(e)) => {
                return Err((
                    line_at(offset) + e.line().saturating_sub(1),
                    format!("is not JSON: {e}"),
                ))
            }
            None => {
                return Err((
                    line_at(offset),
                    "the JSON array is not closed with `]`".into(),
                ))
            }
        }
    }
}
