//! `oidb import FILE INPUT`: OpenIntent events (JSONL or a JSON array) into a file.
//!
//! JSONL is imported in chunks of [`CHUNK_LINES`] lines, each chunk one atomic import. The
//! library skips events whose id is already stored with the same content, so an import that
//! stopped (an error, Ctrl-C, a crash) goes on where it stopped when run again, and importing the
//! same input twice writes nothing new. A JSON array is imported whole, in one transaction.
//!
//! With `--gl --intent ID`, the input is a GL LM-invoker stream, imported whole into that intent
//! in one transaction; each line's event id is derived from the intent, the line number and the
//! line, so importing it again writes nothing, and importing it after lines were added writes
//! only those.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Instant;

use oidb::{Error, ImportReport, Store};
use serde_json::json;

use crate::args::ImportArgs;
use crate::command::import_stream;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::progress::{Progress, Unit};
use crate::table::{count, duration_ms};

/// Lines of JSONL per transaction.
const CHUNK_LINES: usize = 5_000;

/// What an import did, over all its chunks.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    read: u64,
    appended: u64,
    already_present: u64,
}

impl Totals {
    fn add(&mut self, report: ImportReport) {
        self.read += report.read;
        self.appended += report.appended;
        self.already_present += report.already_present;
    }
}

pub fn run(args: &ImportArgs) -> Outcome {
    let started = Instant::now();
    let (Some(input_path), None) = (&args.input, &args.nats) else {
        return import_stream::run(args);
    };
    let from_stdin = input_path.as_os_str() == "-";
    let name = if from_stdin {
        "stdin".to_owned()
    } else {
        input_path.display().to_string()
    };
    let (input, size): (Box<dyn Read>, Option<u64>) = if from_stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(input_path)
            .map_err(|e| Failure::Error(format!("cannot read {name}: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| Failure::Error(format!("cannot read {name}: {e}")))?;
        if meta.is_dir() {
            return Err(Failure::Error(format!(
                "cannot read {name}: it is a directory; give a JSONL or JSON file (or - for stdin)"
            )));
        }
        (Box::new(file), Some(meta.len()))
    };
    let created = !args.file.exists();
    let store = open::for_writing(&args.file, true)?;
    let progress = Progress::new(!args.json, size, Unit::Bytes, "importing");
    let totals = match (&args.intent, args.gl) {
        (Some(intent), true) => import_gl(&store, input, intent, &name, &progress),
        _ => import(&store, BufReader::new(input), &name, &progress),
    };
    progress.finish();
    let totals = totals.inspect_err(|_| {
        // A file this import created and put nothing in is not left behind.
        if created && store.last_position().is_ok_and(|last| last == 0) {
            let closed = store.close().is_ok();
            if closed {
                let _ = std::fs::remove_file(&args.file);
            }
        }
    })?;
    drop(store);
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = json!({
            "file": args.file.display().to_string(),
            "input": name,
            "intent": args.intent,
            "read": totals.read,
            "appended": totals.appended,
            "already_present": totals.already_present,
        });
        writeln!(out, "{report}")?;
    } else {
        writeln!(
            out,
            "imported {name} into {}{}: {} events read, {} new, {} already there ({})",
            args.file.display(),
            args.intent
                .as_ref()
                .map(|i| format!(", intent {i}"))
                .unwrap_or_default(),
            count(totals.read),
            count(totals.appended),
            count(totals.already_present),
            duration_ms(started.elapsed().as_millis() as i64)
        )?;
    }
    out.flush()?;
    Ok(())
}

fn import(
    store: &Store,
    mut input: impl BufRead,
    name: &str,
    progress: &Progress,
) -> Result<Totals, Failure> {
    let mut totals = Totals::default();
    // Bytes, not text: the library names the line of any byte that is not UTF-8.
    let mut chunk = Vec::new();
    let mut chunk_lines = 0;
    let mut lines_before_chunk = 0;
    let mut line = Vec::new();
    let mut first_content = true;
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::Error(format!("cannot read {name}: {e}")))?;
        if read == 0 {
            break;
        }
        if first_content && !line.trim_ascii().is_empty() {
            first_content = false;
            let content = line.trim_ascii_start();
            let content = content.strip_prefix(b"\xef\xbb\xbf").unwrap_or(content);
            if content.starts_with(b"[") {
                // A JSON array: read it whole and import it in one transaction.
                chunk.extend_from_slice(&line);
                input
                    .read_to_end(&mut chunk)
                    .map_err(|e| Failure::Error(format!("cannot read {name}: {e}")))?;
                let report = store
                    .import_json_named(chunk.as_slice(), name)
                    .map_err(|e| located(e, lines_before_chunk, &totals))?;
                totals.add(report);
                return Ok(totals);
            }
        }
        chunk.extend_from_slice(&line);
        chunk_lines += 1;
        if chunk_lines == CHUNK_LINES {
            import_chunk(store, &chunk, name, lines_before_chunk, &mut totals)?;
            progress.advance(chunk.len() as u64);
            lines_before_chunk += chunk_lines;
            chunk.clear();
            chunk_lines = 0;
        }
    }
    if !chunk.is_empty() {
        import_chunk(store, &chunk, name, lines_before_chunk, &mut totals)?;
        progress.advance(chunk.len() as u64);
    }
    Ok(totals)
}

/// A GL stream, into `intent`, in one transaction.
fn import_gl(
    store: &Store,
    input: impl Read,
    intent: &str,
    name: &str,
    progress: &Progress,
) -> Result<Totals, Failure> {
    let counted = Counted { input, progress };
    let report = store
        .import_gl_named(BufReader::new(counted), intent, name)
        .map_err(|e| located(e, 0, &Totals::default()))?;
    let mut totals = Totals::default();
    totals.add(report);
    Ok(totals)
}

/// A reader that moves a progress bar on by what it reads.
struct Counted<'a, R> {
    input: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

fn import_chunk(
    store: &Store,
    chunk: &[u8],
    name: &str,
    lines_before: usize,
    totals: &mut Totals,
) -> Result<(), Failure> {
    let report = store
        .import_json_named(chunk, name)
        .map_err(|e| located(e, lines_before, totals))?;
    totals.add(report);
    Ok(())
}

/// The message for an import error in a chunk that starts after `lines_before` lines, saying
/// what of the input is in the file already and how to go on.
fn located(error: Error, lines_before: usize, totals: &Totals) -> Failure {
    let Error::Import {
        source_name,
        line,
        event_id,
        reason,
        ..
    } = error
    else {
        return Failure::from(error);
    };
    let at = if line == 0 {
        String::new()
    } else {
        format!(" line {}", line + lines_before)
    };
    let event = event_id
        .map(|id| format!(" (event {id})"))
        .unwrap_or_default();
    let done = if lines_before == 0 {
        "nothing of it was imported".to_owned()
    } else {
        format!(
            "its first {} lines are imported ({} events, {} of them new); fix the input and run \
             the same command again: events already imported are skipped",
            count(lines_before as u64),
            count(totals.read),
            count(totals.appended)
        )
    };
    Failure::Error(format!("{source_name}{at}{event}: {reason}\n  {done}"))
}
