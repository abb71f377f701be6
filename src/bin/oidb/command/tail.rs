//! `oidb tail FILE [-n N] [-f]`: the last events, then (with `-f`) new ones as they are written.
//!
//! Following polls: when the file changes (its size, time or identity), it is opened read-only,
//! the events after the last one shown are read, and it is closed again at once. Between polls
//! the file is left alone, so a writer can open it; while a writer has it open, new events wait
//! until the writer closes it (a writing process keeps readers in other processes out).

use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, SystemTime};

use oidb::{Cursor, Error, Event, Position, Query, ReadOnlyStore};

use crate::args::TailArgs;
use crate::command::each_event;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::output::{EventFormat, EventPrinter};

/// How often a followed file is looked at.
const POLL: Duration = Duration::from_millis(200);

/// The most events read in one go while following; more are read at once after printing these.
const BATCH: usize = 10_000;

pub fn run(args: &TailArgs) -> Outcome {
    let format = if args.jsonl {
        EventFormat::Jsonl
    } else {
        EventFormat::Table { wide: false }
    };
    let query = args.selection.query();
    let seen = FileState::of(&args.file);
    let reader = open::for_reading(&args.file)?;
    let last_position = reader.last_position()?;
    let store_id = reader.store_id()?;
    let mut last_events = reader
        .query(&query.clone().newest_first().limit(args.count))?
        .events;
    drop(reader);
    last_events.reverse();

    let out = BufWriter::new(std::io::stdout().lock());
    let mut printer = EventPrinter::new(out, format, last_position);
    for event in &last_events {
        printer.print(event)?;
    }
    if !args.follow {
        printer.finish()?;
        return Ok(());
    }
    printer.flush()?;
    follow(
        &args.file,
        &query,
        &mut printer,
        last_position,
        seen,
        store_id,
    )
}

/// What says a file has changed since it was last read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    len: u64,
    modified: Option<SystemTime>,
    identity: u64,
}

impl FileState {
    fn of(path: &Path) -> Option<FileState> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileState {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            identity: identity(&metadata),
        })
    }
}

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn identity(_metadata: &std::fs::Metadata) -> u64 {
    0
}

fn follow<W: std::io::Write>(
    path: &Path,
    query: &Query,
    printer: &mut EventPrinter<W>,
    mut after: Position,
    mut seen: Option<FileState>,
    mut store_id: Option<String>,
) -> Outcome {
    let mut said_waiting = false;
    let mut more_waiting = false;
    loop {
        if !more_waiting {
            std::thread::sleep(POLL);
        }
        let now = FileState::of(path);
        if now == seen && !more_waiting {
            continue;
        }
        let reader = match ReadOnlyStore::open(path) {
            Ok(reader) => reader,
            Err(Error::FileInUse { .. }) => {
                if !said_waiting {
                    eprintln!(
                        "(waiting: another process has {} open for writing; its new events \
                         show here once it closes the file)",
                        path.display()
                    );
                    said_waiting = true;
                }
                continue;
            }
            Err(Error::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(Error::NeedsRepair { .. }) => open::for_reading(path)?,
            Err(other) => return Err(open::explain(path, other)),
        };
        said_waiting = false;
        let last = reader.last_position()?;
        // A file removed and written anew can get the same inode number; its store id differs.
        let id = reader.store_id()?;
        let replaced = match (&seen, &now) {
            (Some(before), Some(now)) => before.identity != now.identity,
            _ => false,
        } || matches!((&store_id, &id), (Some(before), Some(now)) if before != now);
        store_id = id;
        if last < after || replaced {
            eprintln!("(the file was replaced; following the new one from its start)");
            after = 0;
        }
        let mut batch: Vec<Event> = Vec::new();
        let rest = each_event(
            &reader,
            &query.clone().after(Cursor(after)),
            Some(BATCH),
            |event| {
                batch.push(event.clone());
                Ok(())
            },
        )?;
        drop(reader);
        after = rest.map_or(last, |cursor| cursor.0);
        more_waiting = rest.is_some();
        if !more_waiting {
            seen = now;
        }
        for event in &batch {
            printer.print(event)?;
        }
        printer.flush().map_err(Failure::from)?;
    }
}
