//! The subcommands, one module each, and the paging loop they share.

mod blocks;
mod compact;
mod costs;
mod demo;
mod events;
mod export;
mod import;
mod import_stream;
mod replicate;
mod serve;
mod ship;
mod show;
mod stats;
mod tail;
mod trace;
mod verify;

use oidb::{Cursor, Event, Query, ReadOnlyStore};

use crate::args::Command;
use crate::failure::{Failure, Outcome};

/// Runs one subcommand.
pub fn run(command: Command) -> Outcome {
    match command {
        Command::Demo(args) => demo::run(&args),
        Command::Stats(args) => stats::run(&args),
        Command::Events(args) => events::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Tail(args) => tail::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Costs(args) => costs::run(&args),
        Command::Trace(args) => trace::run(&args),
        Command::Blocks(args) => blocks::run(&args),
        Command::Compact(args) => compact::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Ui(args) => serve::run_ui(&args),
        Command::Replicate(args) => replicate::run(&args),
        Command::Ship(args) => ship::run(&args),
    }
}

/// Events read per page.
const PAGE: usize = 512;

/// Hands every event `query` matches to `each`, a page at a time, stopping after `limit` events.
/// Returns the cursor of the next page when the limit left events unread.
pub fn each_event(
    reader: &ReadOnlyStore,
    query: &Query,
    limit: Option<usize>,
    mut each: impl FnMut(&Event) -> Result<(), Failure>,
) -> Result<Option<Cursor>, Failure> {
    let mut remaining = limit;
    let mut query = query.clone();
    loop {
        let page_size = remaining.map_or(PAGE, |r| r.min(PAGE));
        let page = reader.query(&query.clone().limit(page_size))?;
        for event in &page.events {
            each(event)?;
        }
        if let Some(r) = &mut remaining {
            *r -= page.events.len().min(*r);
        }
        match page.next {
            None => return Ok(None),
            Some(next) if remaining == Some(0) => return Ok(Some(next)),
            Some(next) => query = query.after(next),
        }
    }
}
