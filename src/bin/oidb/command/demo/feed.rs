//! The live feed: a subscriber thread that prints each event, one short line, as it commits.

use std::io::Write;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use oidb::{Delivery, Event, EventType, Filter, Level, Position, Start, Store, Subscription};
use serde_json::Value;

use crate::failure::Failure;
use crate::table::{shorten, summarize};

/// How long the feed waits for an event before it looks whether it has been told to stop.
const POLL: Duration = Duration::from_millis(50);

/// How wide a line's detail may be.
const DETAIL_WIDTH: usize = 52;

/// A running feed; [`Feed::finish`] waits until it has printed every event up to a position.
pub struct Feed {
    stop_at: Sender<Position>,
    thread: JoinHandle<Result<u64, Failure>>,
}

/// The line above the feed's lines.
pub fn header() -> String {
    format!(
        "{:>3}  {:>7}  {:<22} {:<14} {}",
        "POS", "AT", "EVENT", "ACTOR", "WHAT"
    )
}

impl Feed {
    /// Subscribes to everything from the start of the log and prints on a thread of its own.
    pub fn start(store: &Store) -> Result<Feed, Failure> {
        let subscription = store.subscribe(Filter::new(), Start::Beginning)?;
        let (stop_at, stopped) = bounded::<Position>(1);
        let thread = std::thread::Builder::new()
            .name("oidb-demo-feed".into())
            .spawn(move || print_until(subscription, &stopped))
            .map_err(|e| Failure::Error(format!("cannot start the live feed: {e}")))?;
        Ok(Feed { stop_at, thread })
    }

    /// Waits until every event up to `last` has been printed; returns how many were.
    pub fn finish(self, last: Position) -> Result<u64, Failure> {
        // The feed may have ended early (its output closed); then there is nobody to tell.
        let _ = self.stop_at.send(last);
        self.thread
            .join()
            .map_err(|_| Failure::Error("the live feed stopped unexpectedly".into()))?
    }
}

fn print_until(
    mut subscription: Subscription,
    stopped: &crossbeam_channel::Receiver<Position>,
) -> Result<u64, Failure> {
    let started = Instant::now();
    let mut stop_at = None;
    let mut printed = 0;
    loop {
        if stop_at.is_none() {
            stop_at = stopped.try_recv().ok();
        }
        if stop_at.is_some_and(|last| subscription.position() >= last) {
            return Ok(printed);
        }
        // `CaughtUp` comes once, before the first event: the file is new, so all is live.
        if let Some(Delivery::Event(event)) = subscription.recv_timeout(POLL)? {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", line(&event, started.elapsed()))?;
            out.flush()?;
            printed += 1;
        }
    }
}

/// One event, one line: position, when (from the feed's start), type, actor, what it says.
fn line(event: &Event, at: Duration) -> String {
    let text = format!(
        "{:>3}  {:>6.3}s  {:<22} {:<14} {}",
        event.position,
        at.as_secs_f64(),
        shorten(event.event_type.as_str(), 22),
        shorten(&event.actor, 14),
        shorten(&detail(event), DETAIL_WIDTH)
    );
    text.trim_end().to_owned()
}

fn text<'a>(payload: &'a Value, key: &str) -> &'a str {
    payload.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A number as people write it: `80`, not `80.0`.
fn number(payload: &Value, key: &str) -> String {
    match payload.get(key) {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// `think-0 opens`, or `block opens` for a block without an id.
fn block(payload: &Value, what: &str) -> String {
    match text(payload, "block_id") {
        "" => format!("block {what}"),
        id => format!("{id} {what}"),
    }
}

/// What an event says, in a few words.
fn detail(event: &Event) -> String {
    let p = &event.payload;
    let said = match &event.event_type {
        EventType::LlmRequestStarted => format!(
            "{} ({}){}",
            text(p, "model"),
            text(p, "provider"),
            if p["stream"] == true {
                ", streamed"
            } else {
                ""
            }
        ),
        EventType::LlmRequestCompleted => format!(
            "{} {}+{} tokens in {} ms",
            text(p, "model"),
            number(p, "prompt_tokens"),
            number(p, "completion_tokens"),
            number(p, "duration_ms")
        ),
        EventType::LlmRequestFailed => format!("{}: {}", text(p, "model"), text(p, "error")),
        EventType::ToolCallStarted => format!(
            "{} {}",
            text(p, "tool_name"),
            p.get("arguments").unwrap_or(&Value::Null)
        ),
        EventType::ToolCallCompleted => format!(
            "{} in {} ms",
            text(p, "tool_name"),
            number(p, "duration_ms")
        ),
        EventType::StreamStarted => format!("{} stream", text(p, "model")),
        EventType::StreamChunk => format!("chunk {}", number(p, "chunk_index")),
        EventType::StreamCompleted => format!(
            "{} chunks, {} tokens",
            number(p, "chunks_received"),
            number(p, "tokens_streamed")
        ),
        EventType::ThinkingStart | EventType::CodeStart => block(p, "opens"),
        EventType::ThinkingEnd | EventType::CodeEnd => block(p, "ends"),
        EventType::Thinking | EventType::Code => {
            serde_json::to_string(&text(p, "value")).unwrap_or_default()
        }
        other => match other.as_str() {
            "cost_recorded" => format!(
                "{} {} {} ({})",
                number(p, "amount"),
                text(p, "unit"),
                text(p, "cost_type"),
                text(p, "provider")
            ),
            "budget_alert" => format!(
                "{}% of {} {} spent (alert at {}%)",
                p.get("percent_used")
                    .and_then(Value::as_f64)
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_default(),
                number(p, "max_cost"),
                text(p, "unit"),
                number(p, "alert_threshold_percent")
            ),
            "governance.policy_set" => format!(
                "budget {} {}, alert at {}%",
                number(p, "max_cost"),
                text(p, "unit"),
                number(p, "alert_threshold_percent")
            ),
            "log.checkpoint.created" => format!(
                "{} events sealed, root {}",
                number(p, "event_count"),
                shorten(text(p, "merkle_root"), 20)
            ),
            _ => summarize(event),
        },
    };
    match event.level {
        Level::Info => said,
        // `summarize` says the level itself.
        level if matches!(said.split(' ').next(), Some(w) if w == level.as_str()) => said,
        level => format!("{level} {said}"),
    }
}
