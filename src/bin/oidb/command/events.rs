//! `oidb events FILE [filters]`: list events as a table, a JSON array, or JSONL.

use std::io::BufWriter;

use crate::args::EventsArgs;
use crate::command::each_event;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::output::{EventFormat, EventPrinter};

pub fn run(args: &EventsArgs) -> Outcome {
    let reader = open::for_reading(&args.file)?;
    let mut query = args.selection.query().order(args.paging.order());
    if let Some(cursor) = args.paging.after {
        query = query.after(cursor);
    }
    let out = BufWriter::new(std::io::stdout().lock());
    let mut printer = EventPrinter::new(
        out,
        EventFormat::from(&args.format),
        reader.last_position()?,
    );
    let rest = each_event(&reader, &query, args.paging.limit, |event| {
        printer.print(event).map_err(Failure::from)
    })?;
    printer.finish()?;
    if let Some(cursor) = rest {
        eprintln!("more events follow; the next page: add --after {cursor}");
    }
    Ok(())
}
