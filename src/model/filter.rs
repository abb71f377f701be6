//! What a reader asks for: a [`Query`] across the log, an [`EventFilter`] over one intent (as
//! OpenIntent's `get_events`), the [`Page`] that answers them and the [`Cursor`] of the next.
//!
//! Owns the shapes only; the engine's reader plans and runs them. Uses only the model.

use chrono::{DateTime, Utc};

use crate::model::error::{Error, Result};
use crate::model::event::{Event, Level, Position, Sequence};
use crate::model::event_type::EventType;

/// Which way results run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first: ascending position (the default, as OpenIntent's client).
    #[default]
    OldestFirst,
    /// Newest first: descending position.
    NewestFirst,
}

impl Order {
    /// Whether results run from old to new.
    #[must_use]
    pub fn is_oldest_first(self) -> bool {
        self == Order::OldestFirst
    }
}

/// Where the next page starts: the position of the last event of the previous page.
///
/// Its text form (`Display`/`FromStr`) is the position in decimal, so a cursor can be passed
/// through a command line or a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor(pub Position);

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.trim()
            .parse()
            .map(Cursor)
            .map_err(|_| Error::InvalidCursor(s.to_owned()))
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The events, in the query's order.
    pub events: Vec<Event>,
    /// Where the next page starts; `None` when there are no more results.
    pub next: Option<Cursor>,
}

/// The filter of [`Store::get_events`](crate::Store::get_events): one intent's events, as
/// OpenIntent's client asks for them. Oldest first, at most 100 unless told otherwise.
///
/// ```
/// use oidb::{EventFilter, EventType};
/// let filter = EventFilter::new().event_type(EventType::StatePatched).limit(10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct EventFilter {
    pub(crate) types: Vec<EventType>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) until: Option<DateTime<Utc>>,
    pub(crate) limit: usize,
    pub(crate) order: Order,
    pub(crate) after: Option<Sequence>,
    pub(crate) before: Option<Sequence>,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            types: Vec::new(),
            since: None,
            until: None,
            limit: EventFilter::DEFAULT_LIMIT,
            order: Order::OldestFirst,
            after: None,
            before: None,
        }
    }
}

impl EventFilter {
    /// How many events `get_events` returns when no limit is given.
    pub const DEFAULT_LIMIT: usize = 100;

    /// Every event of the intent (up to the default limit), oldest first.
    pub fn new() -> Self {
        EventFilter::default()
    }

    /// Only events of this type; call again to allow several types.
    pub fn event_type(mut self, event_type: impl Into<EventType>) -> Self {
        self.types.push(event_type.into());
        self
    }

    /// Only events of these types.
    pub fn event_types<T: Into<EventType>>(mut self, types: impl IntoIterator<Item = T>) -> Self {
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Only events created at or after `t`.
    pub fn since(mut self, t: DateTime<Utc>) -> Self {
        self.since = Some(t);
        self
    }

    /// Only events created before `t`.
    pub fn until(mut self, t: DateTime<Utc>) -> Self {
        self.until = Some(t);
        self
    }

    /// At most `n` events (default 100).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// The order of results (default oldest first).
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Newest first.
    pub fn newest_first(self) -> Self {
        self.order(Order::NewestFirst)
    }

    /// Only events with a sequence greater than `sequence`.
    pub fn after(mut self, sequence: Sequence) -> Self {
        self.after = Some(sequence);
        self
    }

    /// Only events with a sequence less than `sequence`.
    pub fn before(mut self, sequence: Sequence) -> Self {
        self.before = Some(sequence);
        self
    }
}

/// A query across the whole log: any combination of intent, types (exact or by prefix), time
/// range, actor, trace and minimum level, in either order, a page at a time.
///
/// ```
/// use oidb::{Order, Query};
/// let query = Query::new().type_prefix("llm_").actor("agent-research").order(Order::NewestFirst).limit(50);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Query {
    pub(crate) intent: Option<String>,
    pub(crate) types: Vec<EventType>,
    pub(crate) prefixes: Vec<String>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) until: Option<DateTime<Utc>>,
    pub(crate) actor: Option<String>,
    pub(crate) trace_id: Option<String>,
    pub(crate) min_level: Option<Level>,
    pub(crate) after: Option<Cursor>,
    pub(crate) limit: Option<usize>,
    pub(crate) order: Order,
    pub(crate) sequence_after: Option<Sequence>,
    pub(crate) sequence_before: Option<Sequence>,
}

impl Query {
    /// How many events a page holds when no limit is given.
    pub const DEFAULT_PAGE: usize = 100;

    /// Everything, oldest first.
    pub fn new() -> Self {
        Query::default()
    }

    /// Only this intent's events.
    pub fn intent(mut self, intent_id: impl Into<String>) -> Self {
        self.intent = Some(intent_id.into());
        self
    }

    /// Only events of this type; call again (or use [`Query::type_prefix`]) to allow more.
    pub fn event_type(mut self, event_type: impl Into<EventType>) -> Self {
        self.types.push(event_type.into());
        self
    }

    /// Only events of these types.
    pub fn event_types<T: Into<EventType>>(mut self, types: impl IntoIterator<Item = T>) -> Self {
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Only events whose type starts with `prefix`, such as `llm_` or `task.`.
    pub fn type_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(prefix.into());
        self
    }

    /// Only events created at or after `t`.
    pub fn since(mut self, t: DateTime<Utc>) -> Self {
        self.since = Some(t);
        self
    }

    /// Only events created before `t`.
    pub fn until(mut self, t: DateTime<Utc>) -> Self {
        self.until = Some(t);
        self
    }

    /// Only events by this actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Only events of this trace (32 lowercase hex digits).
    pub fn trace(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// Only events at this level or more severe.
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = Some(level);
        self
    }

    /// Start after this cursor (from a previous [`Page`]).
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// At most `n` events: the page size of [`Store::query`](crate::Store::query) (default 100),
    /// and the total of [`Store::query_iter`](crate::Store::query_iter) (default: all).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// The order of results (default oldest first).
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Newest first.
    pub fn newest_first(self) -> Self {
        self.order(Order::NewestFirst)
    }

    /// The query `get_events(intent, filter)` runs.
    pub(crate) fn from_filter(intent_id: &str, filter: &EventFilter) -> Query {
        Query {
            intent: Some(intent_id.to_owned()),
            types: filter.types.clone(),
            since: filter.since,
            until: filter.until,
            limit: Some(filter.limit),
            order: filter.order,
            sequence_after: filter.after,
            sequence_before: filter.before,
            ..Query::default()
        }
    }
}
