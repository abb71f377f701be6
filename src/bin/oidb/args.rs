//! The command line: subcommands, their arguments, and the parsers that turn text into query terms.

use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use oidb::{Cursor, EventType, Level, Order, Query};

/// Look into a .oidb file: an embedded, single-file OpenIntent event store.
#[derive(Debug, Parser)]
#[command(name = "oidb", version, propagate_version = true, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 bad arguments, 3 verification failed.\n\
Start with `oidb demo`: it writes demo.oidb and shows the commands to try on it."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, one module each under `command/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a simulated agent run into a fresh file and show what is in it
    Demo(DemoArgs),
    /// What a file holds: events, intents, actors, types, time span, size
    Stats(StatsArgs),
    /// List events, with filters
    Events(EventsArgs),
    /// One event in full, its hash recomputed
    Show(ShowArgs),
    /// The last events; with -f, new ones as they are written
    Tail(TailArgs),
    /// Write events as OpenIntent JSONL (to stdout, or to a file with --out)
    Export(ExportArgs),
    /// Read OpenIntent events (JSONL or a JSON array), or GL streams, into a file
    Import(ImportArgs),
    /// Check every hash chain, the store's indexes and its checkpoints (exit 3 if broken)
    Verify(VerifyArgs),
    /// What was spent: costs and tokens by model, agent, intent or cost type
    Costs(CostsArgs),
    /// One trace as a tree, with the durations of its requests, tool calls and streams
    Trace(TraceArgs),
    /// An intent's GL thinking and code blocks, each put back together
    Blocks(BlocksArgs),
    /// Give a file's free space back to the file system
    Compact(CompactArgs),
    /// Serve a file over OpenIntent's REST API and SSE, for the OpenIntent SDK
    Serve(ServeArgs),
    /// Serve a file and open its viewer in the browser: runs, timelines, traces, costs, proofs
    Ui(UiArgs),
    /// Publish a file's events to a NATS JetStream stream, resumably; with --follow, as written
    Replicate(ReplicateArgs),
    /// Send a file's spans to an OpenTelemetry back end over OTLP/HTTP, resumably; with --follow, as they finish
    Ship(ShipArgs),
}

/// `oidb demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the run (a file an earlier demo wrote there is replaced; any other file is left alone)
    #[arg(default_value = "demo.oidb")]
    pub path: PathBuf,
}

/// `oidb stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

/// `oidb events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The .oidb file
    pub file: PathBuf,
    #[command(flatten)]
    pub selection: Selection,
    #[command(flatten)]
    pub paging: Paging,
    #[command(flatten)]
    pub format: Format,
}

/// `oidb show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// The event: its id (a UUID) or its position (a number)
    #[arg(value_parser = parse_event_ref)]
    pub id: EventRef,
    /// Print the event as OpenIntent JSON
    #[arg(long)]
    pub json: bool,
}

/// `oidb tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// How many of the last events to show first
    #[arg(short = 'n', long = "lines", default_value_t = 10, value_name = "N")]
    pub count: usize,
    /// Keep going: show new events as they are written (stop with Ctrl-C)
    #[arg(short, long)]
    pub follow: bool,
    /// Print OpenIntent JSONL instead of a table
    #[arg(long)]
    pub jsonl: bool,
    #[command(flatten)]
    pub selection: Selection,
}

/// `oidb export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// Write to this file (replaced only once the export is complete)
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub selection: Selection,
}

/// `oidb import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The .oidb file (created if missing)
    pub file: PathBuf,
    /// OpenIntent events: JSONL (imported 5,000 lines per transaction; run again to resume
    /// after an error) or one JSON array (imported whole); GL events with --gl; `-` reads stdin.
    /// Not with --nats
    #[arg(required_unless_present = "nats", conflicts_with = "nats")]
    pub input: Option<PathBuf>,
    /// Read the events from a NATS JetStream stream `oidb replicate` wrote (with --stream),
    /// in one transaction, every chain verified and every hash kept
    #[arg(long, value_name = "URL", requires = "stream", conflicts_with = "gl")]
    pub nats: Option<String>,
    /// The stream to read (with --nats)
    #[arg(long, value_name = "NAME", requires = "nats")]
    pub stream: Option<String>,
    /// The store whose events to read (with --nats); needed when the stream holds several
    #[arg(long, value_name = "ID", requires = "nats")]
    pub store_id: Option<String>,
    /// The subjects' first tokens, as given to `oidb replicate` (with --nats)
    #[arg(long, value_name = "PREFIX", default_value = "oidb", requires = "nats")]
    pub subject_prefix: String,
    /// INPUT is a GL LM-invoker stream (one GL event a line), written into the intent --intent
    #[arg(long, requires = "intent")]
    pub gl: bool,
    /// The intent GL events go into (with --gl)
    #[arg(long, value_name = "INTENT_ID", requires = "gl")]
    pub intent: Option<String>,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
}

/// `oidb verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// Also check a checkpoint kept outside the file (its JSON, one object or an array).
    /// Repeatable
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Vec<PathBuf>,
    /// Print the whole report as one JSON object
    #[arg(long)]
    pub json: bool,
}

/// `oidb costs`.
#[derive(Debug, Args)]
pub struct CostsArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// Group by model, agent, intent or (cost) type
    #[arg(long, value_enum, default_value_t = CostGrouping::Model)]
    pub by: CostGrouping,
    /// Only this intent's costs
    #[arg(long, value_name = "INTENT_ID")]
    pub intent: Option<String>,
    /// Only costs at or after: RFC 3339, a date, or an age (30m, 1h, 2d, 1w)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only costs before: same forms as --since
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

/// What `oidb costs` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostGrouping {
    /// The LLM model (recorded costs that name no model are `(no model)`)
    Model,
    /// The agent (the actor) that incurred the cost
    Agent,
    /// The intent
    Intent,
    /// The cost type: `tokens`, `api_call`, `compute`, `custom`
    Type,
}

/// `oidb trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// The trace (32 lowercase hex digits)
    #[arg(value_parser = parse_trace)]
    pub trace_id: String,
    /// Print the tree as one JSON object (its nodes depth first, each naming its parent)
    #[arg(long, conflicts_with = "otlp")]
    pub json: bool,
    /// Write the trace's spans as OTLP/JSON to this file (`-` for stdout), for an OpenTelemetry
    /// collector's /v1/traces
    #[arg(long, value_name = "OUT")]
    pub otlp: Option<PathBuf>,
}

/// `oidb blocks`.
#[derive(Debug, Args)]
pub struct BlocksArgs {
    /// The .oidb file
    pub file: PathBuf,
    /// The intent whose blocks to show
    pub intent: String,
    /// Only thinking or only code blocks
    #[arg(long, value_enum)]
    pub kind: Option<BlockChoice>,
    /// Print one JSON array of blocks
    #[arg(long)]
    pub json: bool,
}

/// Which blocks `oidb blocks` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlockChoice {
    /// Model thinking
    Thinking,
    /// Model-written code
    Code,
}

/// `oidb compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The .oidb file (no other process may have it open)
    pub file: PathBuf,
}

/// `oidb serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The .oidb file (created if missing); this process becomes its writer, or serves it
    /// read-only when another process writes it
    pub file: PathBuf,
    /// Where to listen; an address other than loopback needs --api-key
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub addr: std::net::SocketAddr,
    /// Require this key in every request's `X-API-Key` header (the SDK's `api_key`)
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
}

/// `oidb ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Print the viewer's address without opening a browser
    #[arg(long)]
    pub no_open: bool,
}

/// `oidb replicate`.
#[derive(Debug, Args)]
pub struct ReplicateArgs {
    /// The .oidb file, read while its writer (in any process) keeps writing it
    pub file: PathBuf,
    /// The NATS server: `nats://HOST:4222` (several separated by commas)
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// The JetStream stream (created if missing, taking PREFIX.>)
    #[arg(long, value_name = "NAME", default_value = "OIDB")]
    pub stream: String,
    /// The subjects' first tokens: events go to PREFIX.<store id>.<intent>
    #[arg(long, value_name = "PREFIX", default_value = "oidb")]
    pub subject_prefix: String,
    /// Keep going once caught up, publishing each new event as it is written
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The checkpoint's name (the stream's unless given), kept in FILE.replicate-NAME
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
    /// Publishes awaiting their ack at once
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub in_flight: usize,
    /// The duplicate window of a stream this creates, in seconds (an existing stream keeps its own)
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub duplicate_window: u64,
    /// How long to wait for a publish's ack before publishing again from the checkpoint, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub ack_timeout: u64,
}

/// `oidb ship`.
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// The .oidb file, read while its writer (in any process) keeps writing it
    pub file: PathBuf,
    /// The OTLP/HTTP receiver: `http://HOST:4318` (spans go to its /v1/traces)
    #[arg(long, value_name = "URL")]
    pub otlp: String,
    /// Send OTLP's JSON encoding instead of protobuf
    #[arg(long)]
    pub json: bool,
    /// Keep going once caught up, sending each span as it finishes
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The checkpoint's name, kept in FILE.ship-NAME
    #[arg(long, value_name = "NAME", default_value = "otlp")]
    pub consumer: String,
    /// Positions of the file one request covers at most
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub batch: u64,
    /// How long one request may take before it is sent again, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

/// Which events: the filters `events`, `tail` and `export` share.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Filters")]
pub struct Selection {
    /// Only this intent's events
    #[arg(long, value_name = "INTENT_ID")]
    pub intent: Option<String>,
    /// Only this type, or every type with a prefix: `llm_*`. Repeatable
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub types: Vec<TypeSpec>,
    /// Only events at or after: RFC 3339, a date, or an age (30m, 1h, 2d, 1w)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only events before: same forms as --since
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// Only events by this actor
    #[arg(long, value_name = "ACTOR")]
    pub actor: Option<String>,
    /// Only events of this trace (32 lowercase hex digits)
    #[arg(long, value_name = "TRACE_ID", value_parser = parse_trace)]
    pub trace: Option<String>,
    /// Only events at this level or above (TRACE DEBUG INFO WARN ERROR FATAL)
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub level: Option<Level>,
}

impl Selection {
    /// The query these filters describe, oldest first and unlimited.
    pub fn query(&self) -> Query {
        let mut query = Query::new();
        if let Some(intent) = &self.intent {
            query = query.intent(intent.clone());
        }
        for spec in &self.types {
            query = match spec {
                TypeSpec::Exact(t) => query.event_type(t.clone()),
                TypeSpec::Prefix(p) => query.type_prefix(p.clone()),
            };
        }
        if let Some(t) = self.since {
            query = query.since(t);
        }
        if let Some(t) = self.until {
            query = query.until(t);
        }
        if let Some(actor) = &self.actor {
            query = query.actor(actor.clone());
        }
        if let Some(trace) = &self.trace {
            query = query.trace(trace.clone());
        }
        if let Some(level) = self.level {
            query = query.min_level(level);
        }
        query
    }

    /// Whether any filter is given.
    pub fn is_everything(&self) -> bool {
        self.intent.is_none()
            && self.types.is_empty()
            && self.since.is_none()
            && self.until.is_none()
            && self.actor.is_none()
            && self.trace.is_none()
            && self.level.is_none()
    }
}

/// Which page: `events` only.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Paging")]
pub struct Paging {
    /// At most N events (then the next page's cursor is printed on stderr)
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub limit: Option<usize>,
    /// Newest first
    #[arg(long)]
    pub reverse: bool,
    /// Start after this cursor: the position a previous page ended at
    #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
    pub after: Option<Cursor>,
}

impl Paging {
    /// The order asked for.
    pub fn order(&self) -> Order {
        if self.reverse {
            Order::NewestFirst
        } else {
            Order::OldestFirst
        }
    }
}

/// How to print events.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Output")]
pub struct Format {
    /// Print one JSON array of OpenIntent events
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print OpenIntent JSONL: one event a line, the wire format
    #[arg(long)]
    pub jsonl: bool,
    /// Do not shorten long intent ids and payload summaries
    #[arg(long, conflicts_with_all = ["json", "jsonl"])]
    pub wide: bool,
}

/// One `--type` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeSpec {
    /// Exactly this type.
    Exact(EventType),
    /// Every type starting with this.
    Prefix(String),
}

/// What `oidb show` looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRef {
    /// By event id.
    Id(uuid::Uuid),
    /// By position in the log.
    Position(u64),
}

fn parse_type(text: &str) -> Result<TypeSpec, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("give an event type such as `comment`, or a prefix such as `llm_*`".into());
    }
    let only_trailing = || Err("only a trailing `*` is supported, as in `llm_*`".into());
    Ok(match text.strip_suffix('*') {
        Some(prefix) if !prefix.contains('*') => TypeSpec::Prefix(prefix.to_owned()),
        Some(_) => return only_trailing(),
        // No event type holds a `*`: one inside the name is a pattern this does not read.
        None if text.contains('*') => return only_trailing(),
        None => TypeSpec::Exact(EventType::parse(text)),
    })
}

/// Reads an RFC 3339 time, a naive ISO time (UTC), a date (its midnight, UTC), or an age before now.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Some(age) = parse_age(text) {
        return age.and_then(|d| {
            oidb::time::now()
                .checked_sub_signed(d)
                .ok_or_else(|| format!("{text:?} reaches too far back"))
        });
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("{text:?} is not a date"));
    }
    oidb::time::parse(text).map_err(|_| {
        format!(
            "{text:?} is not a time; use RFC 3339 (2026-11-20T09:00:00Z), a date (2026-11-20), \
             or an age such as 90s, 30m, 1h, 2d or 1w"
        )
    })
}

/// `Some` when `text` looks like an age (digits then one unit letter).
fn parse_age(text: &str) -> Option<Result<Duration, String>> {
    let unit = text.chars().last()?;
    let digits = text.strip_suffix(unit)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = match digits.parse() {
        Ok(n) => n,
        Err(_) => return Some(Err(format!("{text:?}: the number is too large"))),
    };
    let duration = match unit {
        's' => Duration::try_seconds(n),
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        'd' => Duration::try_days(n),
        'w' => Duration::try_weeks(n),
        _ => {
            return Some(Err(format!(
                "{text:?}: unknown unit {unit:?}; use s, m, h, d or w"
            )))
        }
    };
    Some(duration.ok_or_else(|| format!("{text:?} is too long")))
}

/// Reads a trace id: 32 lowercase hex digits, not all zero (W3C's invalid trace id).
pub fn parse_trace(text: &str) -> Result<String, String> {
    let well_formed = text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0');
    if well_formed {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a trace id; a trace id is 32 lowercase hex digits, not all zero"
        ))
    }
}

/// Reads a page size: a whole number, at least 1.
fn parse_limit(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("a page holds at least 1 event".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of events")),
    }
}

fn parse_level(text: &str) -> Result<Level, String> {
    text.parse()
}

fn parse_cursor(text: &str) -> Result<Cursor, String> {
    text.parse().map_err(|e: oidb::Error| e.to_string())
}

fn parse_event_ref(text: &str) -> Result<EventRef, String> {
    let text = text.trim();
    if let Ok(position) = text.trim_start_matches('#').parse::<u64>() {
        return Ok(EventRef::Position(position));
    }
    uuid::Uuid::parse_str(text)
        .map(EventRef::Id)
        .map_err(|_| format!("{text:?} is neither an event id (a UUID) nor a position (a number)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_exact_or_prefixes() {
        assert_eq!(
            parse_type("llm_*").unwrap(),
            TypeSpec::Prefix("llm_".into())
        );
        assert_eq!(
            parse_type("comment").unwrap(),
            TypeSpec::Exact(EventType::Comment)
        );
        assert!(parse_type("l*m*").is_err());
        assert!(parse_type(" ").is_err());
    }

    #[test]
    fn times_are_absolute_dates_or_ages() {
        let t = parse_time("2026-11-20T09:00:07Z").unwrap();
        assert_eq!(oidb::time::format(t), "2026-11-20T09:00:07.000000Z");
        let d = parse_time("2026-11-20").unwrap();
        assert_eq!(oidb::time::format(d), "2026-11-20T00:00:00.000000Z");
        let hour_ago = parse_time("1h").unwrap();
        let age = oidb::time::now() - hour_ago;
        assert!(age >= Duration::hours(1) && age < Duration::hours(2));
        assert!(parse_time("3x").unwrap_err().contains("unknown unit"));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn event_refs_are_ids_or_positions() {
        assert_eq!(parse_event_ref("12").unwrap(), EventRef::Position(12));
        assert_eq!(parse_event_ref("#12").unwrap(), EventRef::Position(12));
        let id = "81e74ef5-e8e2-4d94-8ed9-04759531985d";
        assert_eq!(
            parse_event_ref(id).unwrap(),
            EventRef::Id(id.parse().unwrap())
        );
        assert!(parse_event_ref("nope").is_err());
    }
}
