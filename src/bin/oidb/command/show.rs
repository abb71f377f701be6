//! `oidb show FILE ID`: one event in full, with its hash recomputed.

use std::io::Write;

use oidb::chain::compute_event_hash;
use oidb::Event;

use crate::args::{EventRef, ShowArgs};
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::table::printable;

pub fn run(args: &ShowArgs) -> Outcome {
    let reader = open::for_reading(&args.file)?;
    let found = match args.id {
        EventRef::Id(id) => reader.get(id)?,
        EventRef::Position(position) => reader.get_at(position)?,
    };
    let Some(event) = found else {
        let what = match args.id {
            EventRef::Id(id) => format!("no event with id {id}"),
            EventRef::Position(p) => format!(
                "no event at position {p} (positions run from 1 to {})",
                reader.last_position()?
            ),
        };
        return Err(Failure::Error(format!("{what} in {}", args.file.display())));
    };
    let recomputed = compute_event_hash(&event).map_err(|e| {
        Failure::Verification(format!(
            "event {} (position {}): its hash cannot be recomputed: {e}",
            event.id, event.position
        ))
    })?;
    let written = write_event(args, &event, &recomputed);
    if recomputed == event.event_hash {
        written
    } else {
        // The verdict is the exit status, whether or not anyone read the event.
        Err(Failure::Verification(format!(
            "event {} (position {}): its content hashes to {recomputed}, not to the stored \
             event_hash {}; the event was changed after it was written",
            event.id, event.position, event.event_hash
        )))
    }
}

fn write_event(args: &ShowArgs, event: &Event, recomputed: &str) -> Outcome {
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, event)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", printable(&as_text(event, recomputed)))?;
    }
    out.flush()?;
    Ok(())
}

fn as_text(event: &Event, recomputed: &str) -> String {
    let mut lines = vec![
        format!("id                   {}", event.id),
        format!("position             {}", event.position),
        format!("intent_id            {}", event.intent_id),
        format!("sequence             {}", event.sequence),
        format!("event_type           {}", event.event_type),
        format!("actor                {}", event.actor),
        format!(
            "created_at           {}",
            oidb::time::format(event.created_at)
        ),
        format!("level                {}", event.level),
    ];
    if let Some(trace) = &event.trace_id {
        lines.push(format!("trace_id             {trace}"));
    }
    if let Some(parent) = &event.parent_event_id {
        lines.push(format!("parent_event_id      {parent}"));
    }
    lines.push(format!(
        "previous_event_hash  {}",
        event
            .previous_event_hash
            .as_deref()
            .unwrap_or("(none: first of its intent)")
    ));
    let verdict = if recomputed == event.event_hash {
        "recomputed: matches".to_owned()
    } else {
        format!("recomputed: DOES NOT MATCH, content hashes to {recomputed}")
    };
    lines.push(format!(
        "event_hash           {} ({verdict})",
        event.event_hash
    ));
    if let Some(proof) = &event.proof {
        lines.push(format!("proof                {proof}"));
    }
    lines.push("payload".to_owned());
    let payload = serde_json::to_string_pretty(&event.payload).unwrap_or_default();
    lines.extend(payload.lines().map(|l| format!("  {l}")));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}
