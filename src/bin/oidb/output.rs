//! Printing events: a table for people, or OpenIntent JSON (an array, or JSONL) for programs.

use std::io::{self, Write};

use oidb::Event;

use crate::args::Format;
use crate::table::{printable, Columns};

/// The forms events can be printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// Aligned columns with a payload summary; `wide` keeps long values whole.
    Table {
        /// Keep long values whole.
        wide: bool,
    },
    /// One JSON array, one event a line inside it.
    Json,
    /// One event a line: OpenIntent's wire format.
    Jsonl,
}

impl From<&Format> for EventFormat {
    fn from(format: &Format) -> Self {
        if format.json {
            EventFormat::Json
        } else if format.jsonl {
            EventFormat::Jsonl
        } else {
            EventFormat::Table { wide: format.wide }
        }
    }
}

/// Writes events one at a time in a chosen form, so nothing is held in memory.
pub struct EventPrinter<W: Write> {
    out: W,
    format: EventFormat,
    columns: Columns,
    printed: u64,
}

impl<W: Write> EventPrinter<W> {
    /// A printer for a log whose last position is `last_position` (it sets the table's widths).
    pub fn new(out: W, format: EventFormat, last_position: u64) -> Self {
        let wide = matches!(format, EventFormat::Table { wide: true });
        EventPrinter {
            out,
            format,
            columns: Columns::new(last_position, wide),
            printed: 0,
        }
    }

    /// Prints one event.
    pub fn print(&mut self, event: &Event) -> io::Result<()> {
        match self.format {
            EventFormat::Table { .. } => {
                if self.printed == 0 {
                    writeln!(self.out, "{}", self.columns.header())?;
                }
                writeln!(self.out, "{}", printable(&self.columns.row(event)))?;
            }
            EventFormat::Json => {
                self.out
                    .write_all(if self.printed == 0 { b"[\n" } else { b",\n" })?;
                serde_json::to_writer(&mut self.out, event)?;
            }
            EventFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, event)?;
                self.out.write_all(b"\n")?;
            }
        }
        self.printed += 1;
        Ok(())
    }

    /// Pushes what is buffered to the output (for `tail -f`, after each batch).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Ends the output (closes a JSON array) and flushes it.
    pub fn finish(mut self) -> io::Result<u64> {
        match self.format {
            EventFormat::Json if self.printed == 0 => self.out.write_all(b"[]\n")?,
            EventFormat::Json => self.out.write_all(b"\n]\n")?,
            EventFormat::Table { .. } if self.printed == 0 => eprintln!("(no events)"),
            _ => {}
        }
        self.out.flush()?;
        Ok(self.printed)
    }
}
