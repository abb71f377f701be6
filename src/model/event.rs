//! The event model: [`Event`] (what is stored and read), [`NewEvent`] (what is written) and [`Level`].
//!
//! Uses `model::event_type`, `model::payload`, `model::time`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::model::event_type::EventType;
use crate::model::payload::Payload;

/// The most bytes an intent id, actor, event type or parent id may have.
pub const MAX_NAME_BYTES: usize = 255;

/// The actor [`Store::log_event`](crate::Store::log_event) writes when the builder names none,
/// and the actor of the events oidb writes itself (budget alerts and violations).
pub const DEFAULT_ACTOR: &str = "oidb";

/// A position in the log: global, contiguous, from 1, in commit order.
pub type Position = u64;

/// A sequence number within one intent's chain, from 1.
pub type Sequence = u64;

/// Severity of an event, as GL's LM invoker events carry it. Defaults to [`Level::Info`].
///
/// Ordered from least to most severe, so queries can ask for a minimum level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation (the default).
    #[default]
    Info,
    /// Something unexpected that did not stop the work.
    Warn,
    /// A failure.
    Error,
    /// A failure that ended the work.
    Fatal,
}

impl Level {
    /// Every level, least severe first.
    pub const ALL: [Level; 6] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];

    /// The wire name: `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// Reads a level name, case-insensitively; `WARNING` and `CRITICAL` are read as `WARN` and `FATAL`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Level> {
        match name.to_ascii_uppercase().as_str() {
            "TRACE" => Some(Level::Trace),
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARN" | "WARNING" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            "FATAL" | "CRITICAL" => Some(Level::Fatal),
            _ => None,
        }
    }

    /// The level's code in the file format (0 for TRACE up to 5 for FATAL).
    #[must_use]
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The level with file-format code `code`.
    pub(crate) fn from_code(code: u8) -> Option<Level> {
        Level::ALL.get(usize::from(code)).copied()
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::parse(s).ok_or_else(|| {
            format!("unknown level {s:?}; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL")
        })
    }
}

/// An event as stored: what every read returns.
///
/// Its JSON form (`serde_json::to_value(&event)`) is exactly OpenIntent's `IntentEvent.to_dict()`:
/// `id, intent_id, event_type, actor, payload, created_at`, then `sequence, previous_event_hash,
/// event_hash, trace_id, parent_event_id, proof` where present, plus oidb's own `position` and
/// `level` (the latter only when not `INFO`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// Where the event sits in this store's log (store-local; not part of the hash).
    pub position: Position,
    /// The event's unique id (UUID v7 when oidb made it).
    pub id: Uuid,
    /// The intent the event belongs to.
    pub intent_id: String,
    /// What happened.
    pub event_type: EventType,
    /// Who did it.
    pub actor: String,
    /// The event's data: a JSON object, read as a [`Value`] (see [`Payload`]).
    pub payload: Payload,
    /// When it happened, UTC, microsecond precision.
    pub created_at: DateTime<Utc>,
    /// Its place in the intent's chain, from 1.
    pub sequence: Sequence,
    /// The hash of the intent's previous event (`None` for the first).
    pub previous_event_hash: Option<String>,
    /// RFC-0019 hash of this event: `sha256:` + base64url (no padding) of SHA-256 over its JCS form.
    pub event_hash: String,
    /// RFC-0020 trace id: 32 lowercase hex digits.
    pub trace_id: Option<String>,
    /// The id of the event that caused this one (RFC-0020).
    pub parent_event_id: Option<String>,
    /// Severity.
    pub level: Level,
    /// A signature (RFC-0018), kept as given.
    pub proof: Option<Value>,
}

/// An event to append: built with [`NewEvent::new`] and its setters.
///
/// The store fills what is not given: `id` (UUID v7), `created_at` (now), and always the position,
/// sequence and hash chain.
///
/// ```
/// use oidb::{EventType, NewEvent};
/// use serde_json::json;
///
/// let event = NewEvent::new("intent-42", EventType::Comment, "agent-research")
///     .payload(json!({"message": "Starting research phase"}));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct NewEvent {
    pub(crate) id: Option<Uuid>,
    pub(crate) intent_id: String,
    pub(crate) event_type: EventType,
    pub(crate) actor: String,
    pub(crate) payload: Value,
    pub(crate) created_at: Option<DateTime<Utc>>,
    pub(crate) trace_id: Option<String>,
    pub(crate) parent_event_id: Option<String>,
    pub(crate) level: Level,
    pub(crate) proof: Option<Value>,
    pub(crate) expected_sequence: Option<Sequence>,
    pub(crate) chain: Option<GivenChain>,
}

/// Sequence and hashes that came with an event (on import); checked, never trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GivenChain {
    pub(crate) sequence: Sequence,
    pub(crate) previous_event_hash: Option<String>,
    pub(crate) event_hash: String,
}

impl NewEvent {
    /// An event of `event_type` by `actor` in `intent_id`, with an empty payload.
    pub fn new(
        intent_id: impl Into<String>,
        event_type: impl Into<EventType>,
        actor: impl Into<String>,
    ) -> Self {
        NewEvent {
            id: None,
            intent_id: intent_id.into(),
            event_type: event_type.into(),
            actor: actor.into(),
            payload: Value::Object(serde_json::Map::new()),
            created_at: None,
            trace_id: None,
            parent_event_id: None,
            level: Level::Info,
            proof: None,
            expected_sequence: None,
            chain: None,
        }
    }

    /// The payload: a JSON object (anything else is refused on append). A `Value`, or another
    /// event's [`Payload`].
    pub fn payload(mut self, payload: impl Into<Value>) -> Self {
        self.payload = payload.into();
        self
    }

    /// Use this id instead of a new UUID v7. Appending an id that exists with the same content
    /// writes nothing and answers the stored event; with other content it is [`Error::Conflict`](crate::Error::Conflict).
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Use this time instead of now (kept to the microsecond).
    pub fn created_at(mut self, created_at: DateTime<Utc>) -> Self {
        self.created_at = Some(crate::model::time::truncate(created_at));
        self
    }

    /// The RFC-0020 trace this event belongs to: 32 lowercase hex digits.
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// The id of the event that caused this one.
    pub fn parent_event_id(mut self, parent: impl Into<String>) -> Self {
        self.parent_event_id = Some(parent.into());
        self
    }

    /// The severity (default [`Level::Info`]).
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// An RFC-0018 proof (signature), kept as given.
    pub fn proof(mut self, proof: Value) -> Self {
        self.proof = Some(proof);
        self
    }

    /// Optimistic concurrency: append only if the intent's last sequence is `last_sequence`
    /// (0 for an intent with no events yet); otherwise fail with
    /// [`Error::WrongExpectedSequence`](crate::Error::WrongExpectedSequence) carrying the actual one.
    pub fn expect_last_sequence(mut self, last_sequence: Sequence) -> Self {
        self.expected_sequence = Some(last_sequence);
        self
    }

    /// The event as it was stored, to be written again with its id, time, sequence and hashes
    /// (checked as an import's are): how the write-ahead log is replayed after a crash.
    pub(crate) fn restoring(event: Event) -> NewEvent {
        NewEvent {
            id: Some(event.id),
            intent_id: event.intent_id,
            event_type: event.event_type,
            actor: event.actor,
            payload: event.payload.into_value(),
            created_at: Some(event.created_at),
            trace_id: event.trace_id,
            parent_event_id: event.parent_event_id,
            level: event.level,
            proof: event.proof,
            expected_sequence: None,
            chain: Some(GivenChain {
                sequence: event.sequence,
                previous_event_hash: event.previous_event_hash,
                event_hash: event.event_hash,
            }),
        }
    }

    /// Whether the event's content (not its store-assigned fields) matches a stored event: what
    /// decides between "already appended" and a conflict when an id is reused.
    pub(crate) fn differs_from(&self, stored: &Event) -> Option<&'static str> {
        if self.intent_id != stored.intent_id {
            return Some("intent_id");
        }
        if self.event_type != stored.event_type {
            return Some("event_type");
        }
        if self.actor != stored.actor {
            return Some("actor");
        }
        if self.payload != stored.payload {
            return Some("payload");
        }
        if self.created_at.is_some_and(|t| t != stored.created_at) {
            return Some("created_at");
        }
        if self.trace_id != stored.trace_id {
            return Some("trace_id");
        }
        if self.parent_event_id != stored.parent_event_id {
            return Some("parent_event_id");
        }
        if self.level != stored.level {
            return Some("level");
        }
        if self.proof != stored.proof {
            return Some("proof");
        }
        if let Some(chain) = &self.chain {
            if chain.event_hash != stored.event_hash {
                return Some("event_hash");
            }
        }
        None
    }
}
