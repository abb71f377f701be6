//! `oidb trace FILE TRACE_ID`: a trace (RFC-0020) as a tree, each event under the event that
//! caused it, with when it happened from the trace's start and how long each request, tool call
//! and stream took; `--json` for programs, `--otlp` for OpenTelemetry back ends.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use oidb::trace::{Outcome as SpanOutcome, SpanKind, SpanTiming};
use oidb::{Snapshot, TraceTree};
use serde_json::{json, Value};

use crate::args::TraceArgs;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::output_file;
use crate::table::{brief, count, duration_ms, printable, shorten, shorten_middle, time};

/// How many branchings deep the outline indents; deeper branches stay in that column.
const MAX_INDENT: usize = 24;

/// How wide a line's summary may be.
const SUMMARY_WIDTH: usize = 56;

pub fn run(args: &TraceArgs) -> Outcome {
    let store = open::for_reading(&args.file)?.snapshot()?;
    if let Some(out) = &args.otlp {
        return write_otlp(&store, args, out);
    }
    let tree = store.trace_tree(&args.trace_id)?;
    drop(store);
    if tree.is_empty() {
        return Err(no_such_trace(args));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &as_json(&tree))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", printable(&as_text(&tree)))?;
    }
    out.flush()?;
    Ok(())
}

fn no_such_trace(args: &TraceArgs) -> Failure {
    Failure::Error(format!(
        "no event of trace {} in {}; `oidb events {} --jsonl` shows the trace ids events carry",
        args.trace_id,
        args.file.display(),
        args.file.display()
    ))
}

/// Writes the trace's spans as OTLP/JSON to `out` (`-`: stdout).
fn write_otlp(store: &Snapshot, args: &TraceArgs, out: &Path) -> Outcome {
    if store.trace(&args.trace_id)?.is_empty() {
        return Err(no_such_trace(args));
    }
    if out.as_os_str() == "-" {
        let mut stdout = std::io::stdout().lock();
        store.export_otlp_json(args.trace_id.as_str(), &mut stdout)?;
        writeln!(stdout)?;
        stdout.flush()?;
        return Ok(());
    }
    let spans = output_file::write_whole(out, &args.file, |file| {
        Ok(store.export_otlp_json(args.trace_id.as_str(), file)?)
    })?;
    println!(
        "wrote {} of trace {} to {} (OTLP/JSON: POST it to a collector's /v1/traces)",
        if spans == 1 {
            "1 span".to_owned()
        } else {
            format!("{} spans", count(spans))
        },
        args.trace_id,
        out.display()
    );
    Ok(())
}

fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::LlmRequest => "llm_request",
        SpanKind::ToolCall => "tool_call",
        SpanKind::Stream => "stream",
    }
}

fn outcome_name(outcome: SpanOutcome) -> &'static str {
    match outcome {
        SpanOutcome::Completed => "completed",
        SpanOutcome::Failed => "failed",
        SpanOutcome::Cancelled => "cancelled",
    }
}

/// `completed in 2.3 s`.
fn span_text(span: &SpanTiming) -> String {
    let ms = span.duration.num_milliseconds();
    format!("{} in {}", outcome_name(span.outcome), duration_ms(ms))
}

/// The outline: one line an event, under the event that caused it.
fn as_text(tree: &TraceTree) -> String {
    let order = tree.depth_first();
    let nodes = tree.nodes();
    let first = nodes.iter().map(|n| n.event.created_at).min();
    let last = nodes.iter().map(|n| n.event.created_at).max();
    let mut intents: Vec<&str> = nodes.iter().map(|n| n.event.intent_id.as_str()).collect();
    intents.sort_unstable();
    intents.dedup();
    let mut actors: Vec<&str> = nodes.iter().map(|n| n.event.actor.as_str()).collect();
    actors.sort_unstable();
    actors.dedup();
    let mut lines = vec![format!(
        "trace {}: {} events, {} {}, {} {}{}",
        tree.trace_id(),
        count(nodes.len() as u64),
        intents.len(),
        if intents.len() == 1 {
            "intent"
        } else {
            "intents"
        },
        actors.len(),
        if actors.len() == 1 { "actor" } else { "actors" },
        match (first, last) {
            (Some(a), Some(b)) =>
                format!(", {} UTC, lasting {}", time(a), crate::table::span(a, b)),
            _ => String::new(),
        }
    )];
    let Some(start) = first else {
        return lines.join("\n") + "\n";
    };
    // The prefix each node's children are drawn under. An only child continues its parent's
    // column with no glyph (a chain of causes stays in one column); siblings branch with ├ and └.
    let mut base: HashMap<usize, String> = HashMap::new();
    let mut offsets = Vec::with_capacity(order.len());
    for at in &order {
        let event = &tree.node(*at).event;
        offsets.push(format!(
            "+{}",
            duration_ms((event.created_at - start).num_milliseconds())
        ));
    }
    let offset_width = offsets.iter().map(String::len).max().unwrap_or(0);
    for (at, offset) in order.iter().zip(&offsets) {
        let node = tree.node(*at);
        let event = &node.event;
        let parent = node.parent.map(|p| tree.node(p));
        let inherited = node
            .parent
            .and_then(|p| base.get(&p))
            .cloned()
            .unwrap_or_default();
        let (glyph, below) = match parent {
            Some(parent) if parent.children.len() > 1 => {
                let last = parent.children.last() == Some(at);
                let glyph = format!("{inherited}{}", if last { "└ " } else { "├ " });
                let below = if inherited.chars().count() >= 2 * MAX_INDENT {
                    inherited
                } else {
                    format!("{inherited}{}", if last { "  " } else { "│ " })
                };
                (glyph, below)
            }
            _ => (inherited.clone(), inherited),
        };
        if !node.children.is_empty() {
            base.insert(*at, below);
        }
        let mut who = Vec::new();
        if parent.is_none_or(|p| p.event.actor != event.actor) {
            who.push(format!("by {}", event.actor));
        }
        if parent.is_none_or(|p| p.event.intent_id != event.intent_id) {
            who.push(format!("in {}", shorten_middle(&event.intent_id, 13)));
        }
        let mut line = format!(
            "  {offset:>offset_width$}  {glyph}{}",
            event.event_type.as_str()
        );
        let said = brief(event);
        if !said.is_empty() {
            let _ = write!(line, "  {}", shorten(&said, SUMMARY_WIDTH));
        }
        if let Some(span) = &node.span {
            let _ = write!(line, "  [{}]", span_text(span));
        }
        if !who.is_empty() {
            let _ = write!(line, "  ({})", who.join(", "));
        }
        lines.push(line);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn as_json(tree: &TraceTree) -> Value {
    let nodes: Vec<Value> = tree
        .depth_first()
        .into_iter()
        .map(|at| {
            let node = tree.node(at);
            let span = node.span.as_ref().map(|s| {
                json!({
                    "kind": kind_name(s.kind),
                    "outcome": outcome_name(s.outcome),
                    "duration_ms": s.duration.num_microseconds().map(|us| us as f64 / 1000.0),
                    "reported_duration_ms": s.reported_duration_ms,
                    "end_event_id": tree.node(s.end).event.id,
                })
            });
            json!({
                "depth": node.depth,
                "parent": node.parent.map(|p| tree.node(p).event.id),
                "children": node.children.len(),
                "span": span,
                "event": node.event,
            })
        })
        .collect();
    json!({
        "trace_id": tree.trace_id(),
        "events": tree.len(),
        "roots": tree.roots().len(),
        "nodes": nodes,
    })
}
