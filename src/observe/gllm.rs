//! GL's LM-invoker events (`gllm_inference.schema.events`): read their JSON into an intent, and
//! read them back.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::time`, `store::handle`,
//! `store::import`, `observe::naive_time`.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::Level;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::time;
use crate::store::handle::Store;
use crate::store::import::ImportReport;

/// One GL LM-invoker event.
///
/// A GL event is `{id, value, level, type, timestamp, metadata}`. In oidb it becomes an event of
/// the intent with:
///
/// - `event_type`: the GL `type` (`thinking_start`, `code`, `activity`, `response`, …: the GL
///   variants of [`EventType`]; an unknown type is kept as [`EventType::Custom`]);
/// - `level`: the GL `level`, by name (`TRACE` … `FATAL`; `WARNING` and `CRITICAL` too);
/// - `created_at`: the GL `timestamp` (a naive ISO time is read as UTC);
/// - `actor`: the store's actor;
/// - `payload`: `{"block_id": <GL id or null>, "value": <GL value>, "metadata": <GL metadata>}`.
///
/// [`GlEvent::from_event`] turns such an event back into its GL form.
///
/// ```
/// use oidb::observe::GlEvent;
/// use oidb::{EventType, Level};
///
/// let line = r#"{"id": "think-0", "value": "plan ", "level": "INFO", "type": "thinking",
///                "timestamp": "2026-11-20T09:00:07.091000", "metadata": {}}"#;
/// let event = GlEvent::from_json(&serde_json::from_str(line)?)?;
/// assert_eq!(event.kind, EventType::Thinking);
/// assert_eq!(event.level, Level::Info);
/// assert_eq!(event.id.as_deref(), Some("think-0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GlEvent {
    /// The GL id: a block's id for `thinking_*` and `code_*` runs, an activity's id; often null.
    pub id: Option<String>,
    /// The GL value: text for block and response events, an object for activities.
    pub value: Value,
    /// The severity.
    pub level: Level,
    /// The GL type.
    pub kind: EventType,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// GL's metadata object.
    pub metadata: Map<String, Value>,
}

impl GlEvent {
    /// A GL event of `kind` with `value`, at INFO, now, without id or metadata.
    #[must_use]
    pub fn new(kind: EventType, value: Value) -> GlEvent {
        GlEvent {
            id: None,
            value,
            level: Level::Info,
            kind,
            timestamp: time::now(),
            metadata: Map::new(),
        }
    }

    /// Reads GL's JSON form. `type` and `timestamp` are required; `id` defaults to null,
    /// `value` to `""`, `level` to INFO and `metadata` to `{}`.
    ///
    /// # Errors
    /// A message naming the field that is missing or wrong.
    pub fn from_json(json: &Value) -> std::result::Result<GlEvent, String> {
        let Value::Object(object) = json else {
            return Err("a GL event is a JSON object".to_owned());
        };
        let id = match object.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("`id` must be a string or null, not {other}")),
        };
        let kind = match object.get("type") {
            Some(Value::String(s)) if !s.is_empty() => EventType::parse(s),
            Some(other) => return Err(format!("`type` must be a non-empty string, not {other}")),
            None => return Err("`type` is missing".to_owned()),
        };
        let level = match object.get("level") {
            None | Some(Value::Null) => Level::Info,
            Some(Value::String(name)) => Level::parse(name).ok_or_else(|| {
                format!(
                    "`level` {name:?} is not a level; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL"
                )
            })?,
            Some(other) => return Err(format!("`level` must be a level name, not {other}")),
        };
        let timestamp = match object.get("timestamp") {
            Some(Value::String(s)) => time::parse(s).map_err(|e| format!("`timestamp`: {e}"))?,
            Some(other) => {
                return Err(format!("`timestamp` must be an ISO 8601 time, not {other}"))
            }
            None => return Err("`timestamp` is missing".to_owned()),
        };
        let metadata = match object.get("metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => return Err(format!("`metadata` must be an object, not {other}")),
        };
        Ok(GlEvent {
            id,
            value: object.get("value").cloned().unwrap_or_else(|| json!("")),
            level,
            kind,
            timestamp,
            metadata,
        })
    }

    /// GL's JSON form, the timestamp written as GL writes it (naive ISO, here UTC).
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "value": self.value,
            "level": self.level.as_str(),
            "type": self.kind.as_str(),
            "timestamp": super::naive_time::format(self.timestamp),
            "metadata": self.metadata,
        })
    }

    /// The GL event an oidb event holds, if it holds one (a GL type and a payload with `value`).
    #[must_use]
    pub fn from_event(event: &Event) -> Option<GlEvent> {
        let payload = event.payload.as_object()?;
        let value = payload.get("value")?.clone();
        if !event.event_type.is_gl() && !payload.contains_key("block_id") {
            return None;
        }
        Some(GlEvent {
            id: payload
                .get("block_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            value,
            level: event.level,
            kind: event.event_type.clone(),
            timestamp: event.created_at,
            metadata: payload
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// The payload oidb stores (see [`GlEvent`]).
    #[must_use]
    pub fn to_payload(&self) -> Value {
        json!({"block_id": self.id, "value": self.value, "metadata": self.metadata})
    }

    /// The oidb event for this GL event, in `intent_id`, by `actor`.
    pub fn to_new_event(&self, intent_id: &str, actor: &str) -> NewEvent {
        NewEvent::new(intent_id, self.kind.clone(), actor)
            .payload(self.to_payload())
            .level(self.level)
            .created_at(self.timestamp)
    }
}

impl Store {
    /// Imports GL LM-invoker events, one JSON object a line (blank lines skipped), into
    /// `intent_id`, by this store's actor, as [`GlEvent`] describes.
    ///
    /// The import is atomic: on any error nothing of it is written, and the error names the
    /// line. Each line's event id is derived from the intent, the line number and the line's
    /// text, so importing the same file again writes nothing new, and importing it after more
    /// lines were added writes only those.
    ///
    /// ```
    /// let store = oidb::Store::in_memory()?;
    /// let input = r#"{"id": null, "value": "done", "level": "DEBUG", "type": "status", "timestamp": "2026-11-20T09:00:07.379000", "metadata": {}}"#;
    /// let report = store.import_gl(input.as_bytes(), "intent-42")?;
    /// assert_eq!(report.appended, 1);
    /// assert_eq!(store.import_gl(input.as_bytes(), "intent-42")?.already_present, 1);
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Import`] naming the line of input that cannot be read or whose event the store
    /// refuses (an empty intent id, a `type` over 255 bytes, a value over the payload limit or
    /// nested too deep); a storage error.
    pub fn import_gl(&self, input: impl BufRead, intent_id: &str) -> Result<ImportReport> {
        self.import_gl_named(input, intent_id, "GL input")
    }

    /// As [`Store::import_gl`], naming the input (a file name) in errors.
    ///
    /// # Errors
    /// As [`Store::import_gl`].
    pub fn import_gl_named(
        &self,
        input: impl BufRead,
        intent_id: &str,
        source_name: &str,
    ) -> Result<ImportReport> {
        let error = |line: usize, reason: String| Error::Import {
            source_name: source_name.to_owned(),
            line,
            event_id: None,
            reason,
        };
        let mut batch = Vec::new();
        let mut lines = Vec::new();
        for (index, text) in input.lines().enumerate() {
            let line = index + 1;
            let text = text.map_err(|e| error(line, format!("cannot read: {e}")))?;
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let json: Value =
                serde_json::from_str(text).map_err(|e| error(line, format!("not JSON: {e}")))?;
            let gl = GlEvent::from_json(&json).map_err(|reason| error(line, reason))?;
            batch.push(
                gl.to_new_event(intent_id, self.actor())
                    .id(line_id(intent_id, line, text)),
            );
            lines.push(line);
        }
        let read = batch.len() as u64;
        let appended = self.inner().writer.append(batch).map_err(|refused| {
            match refused.index.and_then(|index| lines.get(index).copied()) {
                Some(line) => error(line, refused.into_error().to_string()),
                None => refused.into_error(),
            }
        })?;
        let new = appended.iter().filter(|a| a.is_new()).count() as u64;
        Ok(ImportReport {
            read,
            appended: new,
            already_present: read - new,
        })
    }

    /// Logs one GL event into `intent_id` by this store's actor, as an agent emits them live.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_gl_event(&self, intent_id: &str, event: &GlEvent) -> Result<Event> {
        self.append(event.to_new_event(intent_id, self.actor()))
    }
}

/// The event id of an imported line: a UUID v8 from SHA-256 of the intent, line number and text.
fn line_id(intent_id: &str, line: usize, text: &str) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(b"oidb gl line\0");
    hasher.update(intent_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(line.to_string().as_bytes());
    hasher.update(b"\0");
    hasher.update(text.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
