//! `oidb tail FILE [-n N] [-f]`: the last events, then (with `-f`) new ones as they are committed.
//!
//! Following keeps the file open read-only beside its writer, in whatever process that is, and
//! prints each event once the writer has committed it to the file: within the writer's publish
//! interval of its append (20 ms by default), plus a poll. If the path comes to name another file
//! (a compaction, a store written anew), it follows that one from its start; while the path names
//! no file, it waits for one.

use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use oidb::{Delivery, Error, Query, ReadOnlyStore, Start, WriterStatus};

use crate::args::TailArgs;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::output::{EventFormat, EventPrinter};

/// How long to wait for a missing file before looking again.
const MISSING_POLL: Duration = Duration::from_millis(200);

/// How long without events before looking whether the writer is still there.
const QUIET: Duration = Duration::from_secs(1);

/// How long to gather new events before printing them in one go.
const GATHER: Duration = Duration::from_millis(1);

pub fn run(args: &TailArgs) -> Outcome {
    let format = if args.jsonl {
        EventFormat::Jsonl
    } else {
        EventFormat::Table { wide: false }
    };
    let query = args.selection.query();
    let reader = open::for_reading(&args.file)?;
    let snapshot = reader.snapshot()?;
    let last_position = snapshot.last_position()?;
    let mut last_events = snapshot
        .query(&query.clone().newest_first().limit(args.count))?
        .events;
    drop(snapshot);
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
    let mut reader = reader;
    let mut start = Start::After(last_position);
    loop {
        follow(&reader, &query, start, &mut printer)?;
        eprintln!("(the file was replaced; following the new one from its start)");
        reader = reopen(&args.file)?;
        start = Start::Beginning;
    }
}

/// Prints each event `query` matches after `start` as it is committed; returns when the path
/// comes to name another file.
fn follow<W: std::io::Write>(
    reader: &ReadOnlyStore,
    query: &Query,
    start: Start,
    printer: &mut EventPrinter<W>,
) -> Result<(), Failure> {
    let explain = |error| open::explain(reader.path(), error);
    let mut follow = reader.follow(query, start).map_err(explain)?;
    let mut said = WriterStatus::Live;
    loop {
        let delivery = match follow.recv_timeout(QUIET) {
            Err(Error::FileReplaced { .. }) => return Ok(()),
            other => other.map_err(explain)?,
        };
        match delivery {
            Some(Delivery::Event(event)) => {
                printer.print(&event)?;
                // Print what came with it before flushing: one write for a burst.
                while let Some(Delivery::Event(event)) =
                    follow.recv_timeout(GATHER).map_err(explain)?
                {
                    printer.print(&event)?;
                }
                printer.flush()?;
            }
            Some(Delivery::CaughtUp { .. }) => {}
            None => {
                // Quiet for a while: say once if the writer stopped without closing the file.
                let status = reader.writer_status().map_err(explain)?;
                if status == WriterStatus::Stopped && said != WriterStatus::Stopped {
                    eprintln!(
                        "(the writer of {} stopped without closing it: showing what it \
                         committed; its next writer replays the rest)",
                        reader.path().display()
                    );
                }
                said = status;
            }
        }
    }
}

/// Opens the file again, waiting while the path names no file.
fn reopen(path: &Path) -> Result<ReadOnlyStore, Failure> {
    loop {
        match ReadOnlyStore::open(path) {
            Err(Error::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(MISSING_POLL);
            }
            Err(Error::NeedsRepair { .. }) => return open::for_reading(path),
            opened => return opened.map_err(|e| open::explain(path, e)),
        }
    }
}
