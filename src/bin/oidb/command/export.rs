//! `oidb export FILE [--out F] [filters]`: events as OpenIntent JSONL.

use std::io::{BufWriter, IsTerminal, Write};

use crate::args::ExportArgs;
use crate::command::each_event;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::output_file;
use crate::progress::{Progress, Unit};
use crate::table::count;

pub fn run(args: &ExportArgs) -> Outcome {
    let reader = open::for_reading(&args.file)?;
    let query = args.selection.query();
    // Positions run from 1 without holes, so the last one counts the events of an unfiltered export.
    let total = if args.selection.is_everything() {
        Some(reader.last_position()?)
    } else {
        None
    };
    let Some(out_path) = &args.out else {
        let mut out = BufWriter::new(std::io::stdout().lock());
        // Progress only when the events are not on the screen too.
        let quiet_screen = !std::io::stdout().is_terminal();
        write_events(&reader, &query, &mut out, quiet_screen, total)?;
        out.flush()?;
        return Ok(());
    };
    let written = output_file::write_whole(out_path, &args.file, |out| {
        write_events(&reader, &query, out, true, total)
    })?;
    eprintln!(
        "exported {} event{} from {} to {}",
        count(written),
        if written == 1 { "" } else { "s" },
        args.file.display(),
        out_path.display()
    );
    Ok(())
}

fn write_events(
    reader: &oidb::ReadOnlyStore,
    query: &oidb::Query,
    out: &mut (impl Write + ?Sized),
    show_progress: bool,
    total: Option<u64>,
) -> Result<u64, Failure> {
    let progress = Progress::new(show_progress, total, Unit::Events, "exporting");
    let mut written = 0;
    each_event(reader, query, None, |event| {
        serde_json::to_writer(&mut *out, event).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        written += 1;
        progress.advance(1);
        Ok(())
    })?;
    progress.finish();
    Ok(written)
}
