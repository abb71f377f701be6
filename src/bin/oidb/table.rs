//! Text for people: event rows, payload summaries, times, sizes and counts.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use oidb::{Event, EventType, Level};
use serde_json::Value;

/// `text` as it may reach a terminal: every control character but newline and tab shown as a
/// visible sign, so that stored data printed for people (an escape sequence in an actor's name,
/// a carriage return in a payload) cannot recolour, clear or overwrite the screen. C0 controls
/// show as their control pictures (ESC as `␛`), DEL as `␡`, and C1 controls as `\u{9b}`.
pub fn printable(text: &str) -> Cow<'_, str> {
    let shown_as_is = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(shown_as_is) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if shown_as_is(c) => out.push(c),
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('?')),
            '\u{7f}' => out.push('␡'),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// Widths of the event table's columns.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    position: usize,
    intent: usize,
    event_type: usize,
    actor: usize,
    summary: Option<usize>,
}

const INTENT_WIDTH: usize = 13;
const TYPE_WIDTH: usize = 21;
const ACTOR_WIDTH: usize = 16;
const SUMMARY_WIDTH: usize = 76;

impl Columns {
    /// Columns for a log whose last position is `last_position`; `wide` keeps ids and summaries whole.
    pub fn new(last_position: u64, wide: bool) -> Columns {
        Columns {
            position: last_position.max(1).to_string().len().max(3),
            intent: INTENT_WIDTH,
            event_type: TYPE_WIDTH,
            actor: ACTOR_WIDTH,
            summary: (!wide).then_some(SUMMARY_WIDTH),
        }
    }

    /// The header line.
    pub fn header(&self) -> String {
        format!(
            "{:>pw$}  {:<23}  {:<iw$}  {:>4}  {:<tw$}  {:<aw$}  SUMMARY",
            "POS",
            "TIME (UTC)",
            "INTENT",
            "SEQ",
            "TYPE",
            "ACTOR",
            pw = self.position,
            iw = self.intent,
            tw = self.event_type,
            aw = self.actor,
        )
    }

    /// One event as a line.
    pub fn row(&self, event: &Event) -> String {
        let intent = match self.summary {
            Some(_) => shorten_middle(&event.intent_id, self.intent),
            None => event.intent_id.clone(),
        };
        let summary = summarize(event);
        let summary = match self.summary {
            Some(width) => shorten(&summary, width),
            None => summary,
        };
        let line = format!(
            "{:>pw$}  {:<23}  {:<iw$}  {:>4}  {:<tw$}  {:<aw$}  {}",
            event.position,
            time(event.created_at),
            intent,
            event.sequence,
            event.event_type.as_str(),
            shorten(&event.actor, self.actor),
            summary,
            pw = self.position,
            iw = self.intent,
            tw = self.event_type,
            aw = self.actor,
        );
        line.trim_end().to_owned()
    }
}

/// A time as `2026-11-20 09:00:07.097` (UTC, milliseconds).
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A span of time as `850 ms`, `7.6 s`, `3 min 12 s` or `2 h 5 min`.
pub fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    duration_ms((to - from).num_milliseconds())
}

/// Milliseconds, readable.
pub fn duration_ms(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// Bytes as `512 B`, `3.4 KiB`, `1.2 MiB`, `5.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("TiB"))
}

/// A count with thousands separators: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text` cut to `width` characters, ending in `…` when cut.
pub fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `text` cut to `width` characters by leaving out its middle, so that ids which share a prefix
/// (UUID v7 ids made in the same millisecond) still tell apart: `01a1fd…4ba9f5`.
pub fn shorten_middle(text: &str, width: usize) -> String {
    let length = text.chars().count();
    if length <= width {
        return text.to_owned();
    }
    let tail = (width.saturating_sub(1)) / 2;
    let head = width.saturating_sub(1) - tail;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(length - tail));
    out
}

/// Payload keys worth reading first, in this order.
const FIRST_KEYS: [&str; 16] = [
    "model",
    "tool_name",
    "title",
    "message",
    "value",
    "status",
    "error",
    "finish_reason",
    "total_tokens",
    "chunk_index",
    "token_count",
    "chunks_received",
    "tokens_streamed",
    "duration_ms",
    "amount",
    "unit",
];

/// Payload keys that say little at a glance: they come after every other key.
const LAST_KEYS: [&str; 9] = [
    "provider",
    "messages_count",
    "stream",
    "tools_available",
    "temperature",
    "max_tokens",
    "arguments",
    "started_at",
    "response_content",
];

/// A payload in one line: `key=value` for its fields, most telling first; a level other than
/// INFO comes first. Token counts read `tokens=PROMPT+COMPLETION`. Ids that are UUIDs are left
/// for `oidb show`.
pub fn summarize(event: &Event) -> String {
    let mut parts: Vec<String> = Vec::new();
    if event.level != Level::Info {
        parts.push(event.level.as_str().to_owned());
    }
    let Value::Object(fields) = &*event.payload else {
        return parts.join(" ");
    };
    let prompt = fields.get("prompt_tokens").and_then(Value::as_u64);
    let completion = fields.get("completion_tokens").and_then(Value::as_u64);
    let tokens_merged = prompt.is_some() && completion.is_some();
    let skipped = |key: &str| {
        tokens_merged && matches!(key, "prompt_tokens" | "completion_tokens" | "total_tokens")
    };
    let is_listed = |key: &str| FIRST_KEYS.contains(&key) || LAST_KEYS.contains(&key);
    let first = FIRST_KEYS.iter().filter_map(|k| fields.get_key_value(*k));
    let middle = fields.iter().filter(|(k, _)| !is_listed(k));
    let last = LAST_KEYS.iter().filter_map(|k| fields.get_key_value(*k));
    for (key, value) in first.chain(middle).chain(last) {
        if key == "duration_ms" {
            if let (Some(p), Some(c)) = (prompt, completion) {
                parts.push(format!("tokens={p}+{c}"));
            }
        }
        if skipped(key) {
            continue;
        }
        if let Some(text) = field_text(key, value) {
            parts.push(format!("{key}={text}"));
        }
    }
    if tokens_merged && !fields.contains_key("duration_ms") {
        if let (Some(p), Some(c)) = (prompt, completion) {
            parts.push(format!("tokens={p}+{c}"));
        }
    }
    parts.join(" ")
}

/// How one field reads in a summary; `None` to leave it out.
fn field_text(key: &str, value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s)
            if (key == "id" || key.ends_with("_id")) && uuid::Uuid::parse_str(s).is_ok() =>
        {
            None
        }
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => {
            let one_line = s.replace('\n', "⏎");
            Some(if one_line.contains(' ') || one_line.contains('=') {
                serde_json::to_string(&shorten(&one_line, 60)).unwrap_or_default()
            } else {
                shorten(&one_line, 60)
            })
        }
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(format!("[{}]", items.len())),
        Value::Object(map) if map.is_empty() => None,
        Value::Object(_) => Some("{…}".to_owned()),
        other => Some(other.to_string()),
    }
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

/// What an event says, in a few words: the model and tokens of an LLM request, the tool of a
/// tool call, the amount of a cost, the text of a GL block; other events as [`summarize`] says
/// them. A level other than INFO comes first.
pub fn brief(event: &Event) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sizes_and_spans_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(7_624), "7.6 s");
        assert_eq!(duration_ms(192_000), "3 min 12 s");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(
            shorten_middle("01a1fd9b-2d82-7225-b4b6-a01a7bb249f5", 13),
            "01a1fd…b249f5"
        );
        assert_eq!(shorten_middle("intent-42", 13), "intent-42");
    }

    #[test]
    fn summaries_put_the_telling_fields_first() {
        let line = r#"{"id": "b2f14c94-2e05-419a-8b5c-74273f98e277", "intent_id": "6513270e-269e-4d37-b2a7-4de452e6b438",
            "event_type": "llm_request_failed", "actor": "agent-critic", "created_at": "2026-11-20T09:00:07Z",
            "sequence": 4, "event_hash": "sha256:eBKuLvsCeprVjJW-N0Q5STCDsVTvFiu1ceY9d1mhfiE", "level": "ERROR",
            "payload": {"request_id": "a09f76b5-a170-4338-b926-3059f28c105d", "provider": "openai",
            "tools_available": ["a", "b"], "model": "gpt-4o", "error": "RateLimitError: 429", "duration_ms": 349}}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        assert_eq!(
            summarize(&event),
            r#"ERROR model=gpt-4o error="RateLimitError: 429" duration_ms=349 provider=openai tools_available=[2]"#
        );
        let completed: Event = serde_json::from_str(
            &line
                .replace(r#""level": "ERROR","#, "")
                .replace(r#""error": "RateLimitError: 429","#, r#""prompt_tokens": 1840, "completion_tokens": 96, "total_tokens": 1936, "finish_reason": "stop","#),
        )
        .unwrap();
        assert_eq!(
            summarize(&completed),
            "model=gpt-4o finish_reason=stop tokens=1840+96 duration_ms=349 provider=openai tools_available=[2]"
        );
    }

    #[test]
    fn control_characters_are_shown_as_signs() {
        assert_eq!(printable("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(printable("a\u{1b}[31m\r\u{0}"), "a␛[31m␍␀");
        assert_eq!(printable("\u{7f}\u{9b}é"), "␡\\u{9b}é");
    }

    #[test]
    fn briefs_say_what_an_event_did_in_a_few_words() {
        let event = |kind: &str, payload: &str, level: &str| -> Event {
            serde_json::from_str(&format!(
                r#"{{"id": "b2f14c94-2e05-419a-8b5c-74273f98e277", "intent_id": "i", "event_type": "{kind}",
                "actor": "a", "created_at": "2026-11-20T09:00:07Z", "sequence": 1, "level": "{level}",
                "event_hash": "sha256:eBKuLvsCeprVjJW-N0Q5STCDsVTvFiu1ceY9d1mhfiE", "payload": {payload}}}"#
            ))
            .unwrap()
        };
        let completed = r#"{"model": "gpt-4o", "prompt_tokens": 1840, "completion_tokens": 96, "duration_ms": 349}"#;
        assert_eq!(
            brief(&event("llm_request_completed", completed, "INFO")),
            "gpt-4o 1840+96 tokens in 349 ms"
        );
        let failed = r#"{"model": "deepseek-chat", "error": "RateLimitError: 429"}"#;
        assert_eq!(
            brief(&event("llm_request_failed", failed, "ERROR")),
            "ERROR deepseek-chat: RateLimitError: 429"
        );
        let alert = r#"{"max_cost": 0.05, "unit": "USD", "percent_used": 86.01, "alert_threshold_percent": 80.0}"#;
        assert_eq!(
            brief(&event("budget_alert", alert, "WARN")),
            "WARN 86% of 0.05 USD spent (alert at 80%)"
        );
        let opened = r#"{"block_id": null, "value": "", "metadata": {}}"#;
        assert_eq!(brief(&event("code_start", opened, "INFO")), "block opens");
        // A comment says its level once.
        let warned = r#"{"message": "retrying"}"#;
        assert_eq!(
            brief(&event("comment", warned, "WARN")),
            "WARN message=retrying"
        );
    }
}
