//! `oidb demo [PATH]`: the whole product in one run. A simulated agent writes into a fresh
//! file through the library (LLM requests, streams, a failure, tool calls, costs priced from a
//! price table, a budget alert, GL thinking and code blocks, all in one trace) while a
//! subscriber prints each event as it commits; then the file is sealed with a checkpoint and
//! read back: events by type, tokens and cost by model, the budget, the verification, and the
//! commands to try next.

mod feed;
mod script;
mod summary;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use oidb::{CheckpointScope, Error, EventType, ReadOnlyStore, Store};

use crate::args::DemoArgs;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::table::count;

pub fn run(args: &DemoArgs) -> Outcome {
    let path = &args.path;
    let replaced = remove_old_demo(path)?;
    let store = Store::builder()
        .actor("agent-research")
        .open(path)
        .map_err(|e| open::explain(path, e))?;
    {
        let mut out = std::io::stdout().lock();
        if replaced {
            writeln!(out, "(replaced the earlier {})", path.display())?;
        }
        writeln!(
            out,
            "A simulated agent run writes into {}; a subscriber thread prints each event as it \
             commits\n(store.subscribe(Filter::new(), Start::Beginning)):\n",
            path.display()
        )?;
        writeln!(out, "{}", feed::header())?;
        out.flush()?;
    }
    let started = Instant::now();
    let feed = feed::Feed::start(&store)?;
    let written = script::write(&store).and_then(|run| {
        let checkpoint = store
            .create_checkpoint(&CheckpointScope::Store)?
            .ok_or_else(|| Failure::Error("the run left nothing to checkpoint".into()))?;
        Ok((run, checkpoint))
    });
    let took = started.elapsed();
    let shown = feed.finish(store.last_position()?)?;
    let (run, checkpoint) = written?;
    let report = summary::Report::read(&store, &run, checkpoint, shown)?;
    drop(store);

    let mut out = std::io::stdout().lock();
    write!(out, "{}", report.text(path, took))?;
    out.flush()?;
    report.verdict()
}

/// Removes an earlier demo file at `path`; refuses to touch any other file, an oidb store the
/// demo did not write included. Returns whether there was one.
fn remove_old_demo(path: &Path) -> Result<bool, Failure> {
    if !path.exists() {
        return Ok(false);
    }
    let not_replaced = |what: String| {
        Failure::Error(format!(
            "{} exists and {what}; the demo replaces only a file an earlier demo wrote: give it \
             another path, as in `oidb demo run.oidb`",
            path.display()
        ))
    };
    let reader = match ReadOnlyStore::open(path) {
        Ok(reader) => reader,
        Err(Error::NotAnOidbFile { reason, .. }) => {
            return Err(not_replaced(format!("is not an oidb file ({reason})")))
        }
        Err(
            e @ (Error::NeedsRepair { .. }
            | Error::UnsupportedFormat { .. }
            | Error::Corrupt { .. }),
        ) => {
            return Err(not_replaced(format!(
                "cannot be read to tell whether an earlier demo wrote it ({e}); remove it \
                 yourself if one did"
            )))
        }
        Err(other) => return Err(open::explain(path, other)),
    };
    let first = reader.get_at(1)?;
    let written_by_demo = first.is_some_and(|event| {
        event.event_type == EventType::IntentCreated
            && event.actor == script::FIRST_ACTOR
            && event
                .payload
                .get("title")
                .and_then(serde_json::Value::as_str)
                == Some(script::RESEARCH_TITLE)
    });
    if !written_by_demo {
        return Err(not_replaced(format!(
            "holds {} events the demo did not write",
            count(reader.last_position()?)
        )));
    }
    drop(reader);
    std::fs::remove_file(path)
        .map_err(|e| Failure::Error(format!("cannot replace {}: {e}", path.display())))?;
    Ok(true)
}
