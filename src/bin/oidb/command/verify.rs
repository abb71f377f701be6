//! `oidb verify FILE`: every intent's hash chain recomputed (RFC-0019), the store checked
//! against itself (positions, index rows, intent heads), and every checkpoint checked against
//! the events it sealed. Exit 3 when anything does not hold, with each break named.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use oidb::checkpoint::{CheckpointScope, CheckpointVerification};
use oidb::verify::{ChainBreak, StoreVerification, VerifyProgress, VerifyStage};
use oidb::{LogCheckpoint, Snapshot};
use serde_json::{json, Value};

use crate::args::VerifyArgs;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::progress::{Progress, Unit};
use crate::table::{count, printable};

/// A checkpoint and what checking it found; `source` is the file it came from, when it was not
/// read from the store.
struct CheckedCheckpoint {
    checkpoint: LogCheckpoint,
    verification: CheckpointVerification,
    source: Option<String>,
}

/// Everything `verify` found.
struct Report {
    store: StoreVerification,
    checkpoints: Vec<CheckedCheckpoint>,
    /// Write-ahead logs kept beside the file because they were damaged ([`oidb::Stats`]).
    damaged_logs: Vec<std::path::PathBuf>,
}

impl Report {
    fn valid(&self) -> bool {
        self.store.valid
            && self.checkpoints.iter().all(|c| c.verification.valid)
            && self.damaged_logs.is_empty()
    }
}

pub fn run(args: &VerifyArgs) -> Outcome {
    let outside = args
        .checkpoint
        .iter()
        .map(|path| read_checkpoints(path))
        .collect::<Result<Vec<_>, _>>()?;
    let store = open::for_verification(&args.file)?.snapshot()?;
    let progress = Progress::new(!args.json, Some(0), Unit::Steps, "verifying");
    let report = check(&store, outside, &progress);
    progress.finish();
    let report = report?;
    drop(store);

    let written = write_report(args, &report);
    if !report.valid() {
        // The verdict is the exit status, whether or not anyone read the report.
        return Err(Failure::Verification(verdict(&args.file, &report)));
    }
    written
}

fn write_report(args: &VerifyArgs, report: &Report) -> Outcome {
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &as_json(&args.file, report))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", printable(&as_text(&args.file, report)))?;
    }
    out.flush()?;
    Ok(())
}

/// Runs every check in one go, reporting progress by stage.
fn check(
    store: &Snapshot,
    outside: Vec<(String, Vec<LogCheckpoint>)>,
    progress: &Progress,
) -> Result<Report, Failure> {
    let mut stage = None;
    let verification = store.verify_all(|p: VerifyProgress| {
        if stage != Some(p.stage) {
            stage = Some(p.stage);
            let what = match p.stage {
                VerifyStage::Chains => "checking chains (intents)",
                VerifyStage::Records => "checking records and their index rows",
                VerifyStage::Indexes => "checking index tables",
                _ => "verifying",
            };
            progress.stage(what, p.total);
        }
        progress.set(p.done);
    })?;
    let stored = store.all_checkpoints()?;
    let total = stored.len() + outside.iter().map(|(_, c)| c.len()).sum::<usize>();
    progress.stage("checking checkpoints", total as u64);
    let mut checkpoints = Vec::with_capacity(total);
    let sources = stored.into_iter().map(|c| (None, c)).chain(
        outside
            .into_iter()
            .flat_map(|(file, list)| list.into_iter().map(move |c| (Some(file.clone()), c))),
    );
    for (source, checkpoint) in sources {
        let verification = store.verify_checkpoint(&checkpoint)?;
        checkpoints.push(CheckedCheckpoint {
            checkpoint,
            verification,
            source,
        });
        progress.advance(1);
    }
    Ok(Report {
        store: verification,
        checkpoints,
        damaged_logs: store.stats()?.damaged_logs,
    })
}

/// Reads checkpoints kept outside the store: one `LogCheckpoint` JSON object, or an array.
fn read_checkpoints(path: &Path) -> Result<(String, Vec<LogCheckpoint>), Failure> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Error(format!("cannot read {name}: {e}")))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Error(format!("{name} is not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    let checkpoints = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_json::from_value(item).map_err(|e| {
                Failure::Error(format!(
                    "{name}: checkpoint {} is not an OpenIntent LogCheckpoint: {e}",
                    i + 1
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, checkpoints))
}

fn scope_text(checkpoint: &LogCheckpoint) -> String {
    match &checkpoint.scope {
        CheckpointScope::Store => format!(
            "store, positions {} to {}",
            checkpoint.first_sequence, checkpoint.last_sequence
        ),
        CheckpointScope::Intent(intent) => format!(
            "intent {intent}, sequences {} to {}",
            checkpoint.first_sequence, checkpoint.last_sequence
        ),
    }
}

/// How many checkpoints are listed one by one when all of them hold.
const LISTED_CHECKPOINTS: usize = 5;

fn as_text(file: &Path, report: &Report) -> String {
    let store = &report.store;
    let broken: Vec<_> = store.broken_chains().collect();
    let chain_events: u64 = store.chains.iter().map(|c| c.event_count).sum();
    let mut lines = vec![format!(
        "{} {}",
        file.display(),
        if report.valid() {
            "verifies: intact"
        } else {
            "does NOT verify"
        }
    )];
    lines.push(format!(
        "  chains       {} intents, {} events: every event_hash recomputed, every link and sequence checked: {}",
        count(store.chains.len() as u64),
        count(chain_events),
        if broken.is_empty() {
            "intact".to_owned()
        } else {
            format!("{} broken", broken.len())
        }
    ));
    lines.push(format!(
        "  store        {} records, positions 1 to {}; index rows and intent heads checked against them: {}",
        count(store.event_count),
        count(store.last_position),
        match store.problems.len() {
            0 => "agree".to_owned(),
            n => format!("{n} problems"),
        }
    ));
    let failed_checkpoints = report
        .checkpoints
        .iter()
        .filter(|c| !c.verification.valid)
        .count();
    lines.push(match report.checkpoints.len() {
        0 => "  checkpoints  none (a checkpoint seals events under a Merkle root)".to_owned(),
        n => format!(
            "  checkpoints  {n}: each one's events re-read and hashed to its Merkle root: {}",
            if failed_checkpoints == 0 {
                "match".to_owned()
            } else {
                format!("{failed_checkpoints} no longer match")
            }
        ),
    });
    checkpoint_lines(report, &mut lines);
    damage_lines(report, &mut lines);
    for log in &report.damaged_logs {
        lines.push(format!(
            "  log          {} was kept because it was damaged when the store was opened after a \
             crash: events acknowledged after the damage may be missing (docs/format.md)",
            log.display()
        ));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The checkpoints, one a line, when there are few or some do not match (then only those).
fn checkpoint_lines(report: &Report, lines: &mut Vec<String>) {
    let failed = report.checkpoints.iter().any(|c| !c.verification.valid);
    if report.checkpoints.len() <= LISTED_CHECKPOINTS || failed {
        for checked in &report.checkpoints {
            if report.checkpoints.len() > LISTED_CHECKPOINTS && checked.verification.valid {
                continue;
            }
            let c = &checked.checkpoint;
            lines.push(format!(
                "    {} ({}{}) root {}: {}",
                c.checkpoint_id,
                scope_text(c),
                checked
                    .source
                    .as_ref()
                    .map(|s| format!(", from {s}"))
                    .unwrap_or_default(),
                c.merkle_root,
                if checked.verification.valid {
                    "matches"
                } else {
                    "DOES NOT MATCH"
                }
            ));
            for problem in &checked.verification.problems {
                lines.push(format!("      {problem}"));
            }
        }
    }
}

/// Each chain break and store problem, named.
fn damage_lines(report: &Report, lines: &mut Vec<String>) {
    let store = &report.store;
    let broken: Vec<_> = store.broken_chains().collect();
    if !broken.is_empty() {
        lines.push(String::new());
        lines.push("Chain breaks".to_owned());
        for chain in &broken {
            lines.push(format!(
                "  intent {} ({} events read)",
                chain.intent_id,
                count(chain.event_count)
            ));
            for b in &chain.breaks {
                lines.push(format!("    {}", break_line(b)));
                lines.push(format!(
                    "      {}",
                    without_sequence(&b.message, b.sequence)
                ));
            }
        }
    }
    if !store.problems.is_empty() {
        lines.push(String::new());
        lines.push("Store problems".to_owned());
        for problem in &store.problems {
            let at = problem
                .position
                .map(|p| format!(" position {p}"))
                .unwrap_or_default();
            lines.push(format!(
                "  {}  table {}{at}: {}",
                kind_name(&problem.kind),
                problem.table,
                problem.message
            ));
        }
    }
}

/// `sequence 4  event b2f1…  position 28  hash_mismatch`.
fn break_line(b: &ChainBreak) -> String {
    let mut line = format!("sequence {}", b.sequence);
    if let Some(id) = b.event_id {
        let _ = write!(line, "  event {id}");
    }
    if let Some(position) = b.position {
        let _ = write!(line, "  position {position}");
    }
    let _ = write!(line, "  {}", kind_name(&b.kind));
    line
}

/// A break's message without the `sequence N: ` it starts with (the line above says it).
fn without_sequence(message: &str, sequence: u64) -> &str {
    message
        .strip_prefix(&format!("sequence {sequence}: "))
        .unwrap_or(message)
}

/// The `snake_case` name a kind has in JSON.
fn kind_name(kind: &impl serde::Serialize) -> String {
    match serde_json::to_value(kind) {
        Ok(Value::String(name)) => name,
        _ => "unknown".to_owned(),
    }
}

fn verdict(file: &Path, report: &Report) -> String {
    let store = &report.store;
    let broken: Vec<_> = store.broken_chains().collect();
    let breaks: usize = broken.iter().map(|c| c.breaks.len()).sum();
    let failed_checkpoints = report
        .checkpoints
        .iter()
        .filter(|c| !c.verification.valid)
        .count();
    let mut parts = Vec::new();
    if breaks > 0 {
        parts.push(format!(
            "{} in {} of {} intents",
            plural(breaks, "chain break"),
            broken.len(),
            store.chains.len()
        ));
    }
    if !store.problems.is_empty() {
        parts.push(plural(store.problems.len(), "store problem"));
    }
    if failed_checkpoints > 0 {
        parts.push(format!(
            "{failed_checkpoints} of {} checkpoints no longer match",
            report.checkpoints.len()
        ));
    }
    if !report.damaged_logs.is_empty() {
        parts.push(format!(
            "{} kept beside it",
            plural(report.damaged_logs.len(), "damaged write-ahead log")
        ));
    }
    format!("{}: {} (see above)", file.display(), parts.join(", "))
}

/// `1 chain break`, `2 chain breaks`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn as_json(file: &Path, report: &Report) -> Value {
    let checkpoints: Vec<Value> = report
        .checkpoints
        .iter()
        .map(|c| {
            json!({
                "checkpoint": c.checkpoint,
                "source": c.source.as_deref().unwrap_or("store"),
                "verification": c.verification,
            })
        })
        .collect();
    json!({
        "file": file.display().to_string(),
        "valid": report.valid(),
        "event_count": report.store.event_count,
        "last_position": report.store.last_position,
        "chains": report.store.chains,
        "problems": report.store.problems,
        "checkpoints": checkpoints,
        "damaged_logs": report.damaged_logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}
