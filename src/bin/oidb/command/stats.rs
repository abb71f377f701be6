//! `oidb stats FILE`: what a file holds.

use std::io::Write;

use oidb::Stats;
use serde_json::{json, Map, Value};

use crate::args::StatsArgs;
use crate::failure::Outcome;
use crate::open;
use crate::table::{bytes, count, printable, span, time};

pub fn run(args: &StatsArgs) -> Outcome {
    let stats = open::for_reading(&args.file)?.stats()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &as_json(&stats))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", printable(&as_text(&stats)))?;
    }
    out.flush()?;
    Ok(())
}

fn as_json(stats: &Stats) -> Value {
    let counts = |items: Vec<(String, u64)>| -> Map<String, Value> {
        items.into_iter().map(|(k, v)| (k, json!(v))).collect()
    };
    json!({
        "path": stats.path.display().to_string(),
        "format_version": stats.format_version,
        "store_id": stats.store_id,
        "created_by": stats.created_by,
        "events": stats.events,
        "last_position": stats.last_position,
        "intents": stats.intents,
        "actors": counts(stats.actors.clone()),
        "event_types": counts(
            stats.event_types.iter().map(|(t, n)| (t.as_str().to_owned(), *n)).collect()
        ),
        "first_event_at": stats.first_event_at.map(oidb::time::format),
        "last_event_at": stats.last_event_at.map(oidb::time::format),
        "file_bytes": stats.file_bytes,
        "live_bytes": stats.live_bytes,
        "fragmented_bytes": stats.fragmented_bytes,
        "damaged_logs": stats.damaged_logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}

fn as_text(stats: &Stats) -> String {
    let mut lines = vec![
        format!("file          {}", stats.path.display()),
        format!(
            "format        version {}{}{}",
            stats.format_version,
            stats
                .created_by
                .as_ref()
                .map(|c| format!(", created by {c}"))
                .unwrap_or_default(),
            stats
                .store_id
                .as_ref()
                .map(|id| format!(", store {id}"))
                .unwrap_or_default()
        ),
    ];
    let size = match stats.file_bytes {
        Some(file) if file > 0 => format!(
            "{} on disk, {} live ({}%)",
            bytes(file),
            bytes(stats.live_bytes),
            stats.live_bytes * 100 / file
        ),
        _ => format!("{} live", bytes(stats.live_bytes)),
    };
    lines.push(format!("size          {size}"));
    lines.push(format!(
        "events        {}{}",
        count(stats.events),
        if stats.events > 0 {
            format!(" (positions 1 to {})", count(stats.last_position))
        } else {
            String::new()
        }
    ));
    lines.push(format!("intents       {}", count(stats.intents)));
    if let (Some(first), Some(last)) = (stats.first_event_at, stats.last_event_at) {
        lines.push(format!(
            "time (UTC)    {} to {} ({})",
            time(first),
            time(last),
            span(first, last)
        ));
    }
    let listing = |title: &str, items: Vec<(String, u64)>, lines: &mut Vec<String>| {
        lines.push(format!("{title:<14}{}", items.len()));
        let width = items
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, n) in items {
            lines.push(format!("  {name:<width$}  {:>8}", count(n)));
        }
    };
    listing("actors", stats.actors.clone(), &mut lines);
    listing(
        "event types",
        stats
            .event_types
            .iter()
            .map(|(t, n)| (t.as_str().to_owned(), *n))
            .collect(),
        &mut lines,
    );
    for log in &stats.damaged_logs {
        lines.push(format!(
            "warning       {} is a write-ahead log kept because it was damaged: events \
             acknowledged after the damage may be missing from this file",
            log.display()
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}
