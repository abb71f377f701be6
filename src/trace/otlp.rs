//! OTLP/JSON export: LLM requests, tool calls and streams as OpenTelemetry spans, so the same
//! data can go to any OpenTelemetry back end (a collector, Jaeger, Langfuse, Phoenix).
//!
//! The output is one `ExportTraceServiceRequest` in OTLP's JSON encoding: ids in lowercase hex,
//! times as nanosecond strings, enums as numbers. Each span is one start/finish pair (see
//! [`SpanKind`]):
//!
//! - **ids.** The trace id is the events' `trace_id`; an untraced span takes its parent span's,
//!   and with no traced ancestor, one derived from its intent id (SHA-256, first 16 bytes). The
//!   span id is derived from the id of its first event (SHA-256, first 8 bytes), so exporting
//!   twice gives the same ids.
//! - **parents.** A span's parent is the span that owns the nearest ancestor event (by
//!   `parent_event_id`) of its first event. A parent in another trace becomes a link instead.
//! - **times.** From the start event's `created_at` to the finishing event's. A span without a
//!   start begins `duration_ms` before its finish; one without a finish ends where it starts and
//!   has `oidb.span.incomplete = true`.
//! - **attributes.** The GenAI semantic conventions (`gen_ai.operation.name`,
//!   `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.finish_reasons`,
//!   `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
//!   `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.reasoning.output_tokens`,
//!   `gen_ai.tool.name`, `gen_ai.tool.call.id`, `error.type`), and `openintent.intent_id`,
//!   `openintent.actor` and the event ids. A failed request or call has status ERROR with its
//!   error as the message.
//! - **resources.** Spans are grouped by agent: `service.name` is the actor of the span's first
//!   event.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `model::payload_fields`, `model::time`,
//! `store::reads`, `store::snapshot`, `trace::spans`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::spans::{self, Outcome, Pair, SpanKind};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::{Event, Position};
use crate::model::filter::Query;
use crate::model::payload_fields;
use crate::model::time;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// Which events [`Store::export_otlp_json`](crate::Store::export_otlp_json) exports: one trace, or whatever a query matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanSource {
    /// Every span of this trace (32 lowercase hex digits).
    Trace(String),
    /// Every span with an event the query matches. Parents are found in the whole traces those
    /// events belong to.
    Query(Query),
    /// Every complete span (one that has its finishing event) whose finishing event is at a
    /// position after `after` and up to `upto`: what `oidb ship` sends, a range at a time, so
    /// that a span goes once, when it is finished, with the ids a whole export gives it. The
    /// span's start is found by its key (`request_id`, `tool_id`, `stream_id`) among its
    /// intent's earlier events, wherever it lies.
    Finished {
        /// The position the range begins after.
        after: Position,
        /// The range's last position.
        upto: Position,
    },
}

impl From<&str> for SpanSource {
    fn from(trace_id: &str) -> Self {
        SpanSource::Trace(trace_id.to_owned())
    }
}

impl From<String> for SpanSource {
    fn from(trace_id: String) -> Self {
        SpanSource::Trace(trace_id)
    }
}

impl From<Query> for SpanSource {
    fn from(query: Query) -> Self {
        SpanSource::Query(query)
    }
}

impl From<&Query> for SpanSource {
    fn from(query: &Query) -> Self {
        SpanSource::Query(query.clone())
    }
}

// OTLP span kinds and status codes (opentelemetry/proto/trace/v1/trace.proto).
const SPAN_KIND_INTERNAL: i32 = 1;
const SPAN_KIND_CLIENT: i32 = 3;
const STATUS_CODE_ERROR: i32 = 2;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportTraceServiceRequest {
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    resource: Resource,
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Serialize)]
struct Resource {
    attributes: Vec<KeyValue>,
}

#[derive(Serialize)]
struct ScopeSpans {
    scope: Scope,
    spans: Vec<Span>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    trace_id: String,
    #[serde(rename = "spanId")]
    id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    parent_span_id: String,
    name: String,
    kind: i32,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Link {
    trace_id: String,
    span_id: String,
}

#[derive(Serialize)]
struct Status {
    code: i32,
    message: String,
}

#[derive(Serialize)]
struct KeyValue {
    key: &'static str,
    value: AnyValue,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::enum_variant_names)] // the names are OTLP's JSON keys
enum AnyValue {
    StringValue(String),
    /// int64, written as a decimal string as proto3's JSON mapping asks.
    IntValue(String),
    DoubleValue(f64),
    BoolValue(bool),
    ArrayValue {
        values: Vec<AnyValue>,
    },
}

#[derive(Default)]
struct Attributes(Vec<KeyValue>);

impl Attributes {
    fn text(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(v) = value {
            self.0.push(KeyValue {
                key,
                value: AnyValue::StringValue(v.to_owned()),
            });
        }
    }

    fn int(&mut self, key: &'static str, value: Option<u64>) {
        if let Some(v) = value {
            self.0.push(KeyValue {
                key,
                value: AnyValue::IntValue(v.min(i64::MAX as u64).to_string()),
            });
        }
    }

    fn double(&mut self, key: &'static str, value: Option<f64>) {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            self.0.push(KeyValue {
                key,
                value: AnyValue::DoubleValue(v),
            });
        }
    }

    fn flag(&mut self, key: &'static str, value: bool) {
        self.0.push(KeyValue {
            key,
            value: AnyValue::BoolValue(value),
        });
    }

    fn texts(&mut self, key: &'static str, values: Vec<String>) {
        if !values.is_empty() {
            self.0.push(KeyValue {
                key,
                value: AnyValue::ArrayValue {
                    values: values.into_iter().map(AnyValue::StringValue).collect(),
                },
            });
        }
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The span id of the span whose first event is `event_id`: 8 bytes of SHA-256, never all zero.
fn span_id(event_id: Uuid) -> String {
    let d = digest(&[b"oidb span ", event_id.as_bytes()]);
    let mut id = [0u8; 8];
    id.copy_from_slice(d.get(..8).unwrap_or(&[1; 8]));
    if id == [0; 8] {
        id[7] = 1;
    }
    hex(&id)
}

/// The trace id of untraced spans of an intent: 16 bytes of SHA-256, never all zero.
fn intent_trace_id(intent_id: &str) -> String {
    let d = digest(&[b"oidb intent ", intent_id.as_bytes()]);
    let mut id = [0u8; 16];
    id.copy_from_slice(d.get(..16).unwrap_or(&[1; 16]));
    if id == [0; 16] {
        id[15] = 1;
    }
    hex(&id)
}

/// An event's time in nanoseconds since 1970, as OTLP counts it (a `u64`: 1970 to 2554); an
/// error naming the event when its time is outside.
fn unix_nanos(event: &Event) -> Result<u64> {
    u64::try_from(time::to_micros(event.created_at))
        .ok()
        .and_then(|micros| micros.checked_mul(1000))
        .ok_or_else(|| Error::InvalidEvent {
            field: "created_at",
            reason: format!(
                "event {} (position {}) is at {}, which OTLP cannot hold (it counts nanoseconds \
                 from 1970 to 2554): export a query that leaves it out",
                event.id,
                event.position,
                time::format(event.created_at)
            ),
        })
}

/// The spans among some events and how they hang together: pair `p`'s parent is `parents[p]`.
struct SpanGraph<'a> {
    events: &'a [Event],
    pairs: &'a [Pair],
    parents: Vec<Option<usize>>,
}

impl<'a> SpanGraph<'a> {
    fn new(events: &'a [Event], pairs: &'a [Pair]) -> SpanGraph<'a> {
        let by_id: HashMap<Uuid, usize> =
            events.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        let mut owner: HashMap<usize, usize> = HashMap::new();
        for (p, pair) in pairs.iter().enumerate() {
            for e in pair.events() {
                owner.insert(e, p);
            }
        }
        // The pair owning the nearest ancestor event of the pair's first event.
        let parent_of = |p: usize, pair: &Pair| -> Option<usize> {
            let mut seen = BTreeSet::new();
            let mut at = pair.first();
            while seen.insert(at) {
                let parent = events.get(at)?.parent_event_id.as_deref()?;
                at = *by_id.get(&Uuid::parse_str(parent).ok()?)?;
                match owner.get(&at) {
                    Some(&q) if q != p => return Some(q),
                    _ => {}
                }
            }
            None
        };
        let parents = pairs
            .iter()
            .enumerate()
            .map(|(p, pair)| parent_of(p, pair))
            .collect();
        SpanGraph {
            events,
            pairs,
            parents,
        }
    }

    fn first_event(&self, p: usize) -> Option<&'a Event> {
        self.events.get(self.pairs.get(p)?.first())
    }

    fn span_id(&self, p: usize) -> Option<String> {
        self.first_event(p).map(|e| span_id(e.id))
    }

    /// A pair's trace id: its own events', else its nearest traced ancestor's, else that of the
    /// intent of its oldest ancestor.
    fn trace_id(&self, p: usize) -> String {
        let mut seen = BTreeSet::new();
        let mut at = Some(p);
        let mut intent = "";
        while let Some(q) = at.filter(|q| seen.insert(*q)) {
            let Some(pair) = self.pairs.get(q) else { break };
            let own = pair
                .events()
                .filter_map(|e| self.events.get(e))
                .find_map(|e| e.trace_id.clone());
            if let Some(trace_id) = own {
                return trace_id;
            }
            intent = self.first_event(q).map_or(intent, |e| e.intent_id.as_str());
            at = self.parents.get(q).copied().flatten();
        }
        intent_trace_id(intent)
    }
}

/// The events of one span, and what is read from them.
struct SpanEvents<'a> {
    pair: &'a Pair,
    start: Option<&'a Event>,
    end: Option<&'a Event>,
    /// The start's payload (`null` without a start).
    sp: &'a Value,
    /// The finish's payload (`null` without a finish).
    ep: &'a Value,
}

static NO_PAYLOAD: Value = Value::Null;

impl<'a> SpanEvents<'a> {
    fn new(events: &'a [Event], pair: &'a Pair) -> SpanEvents<'a> {
        let start = pair.start.and_then(|i| events.get(i));
        let end = pair.end.and_then(|(i, _)| events.get(i));
        SpanEvents {
            pair,
            start,
            end,
            sp: start.map_or(&NO_PAYLOAD, |e| &e.payload),
            ep: end.map_or(&NO_PAYLOAD, |e| &e.payload),
        }
    }

    /// A text field of the finish, else of the start.
    fn either(&self, key: &str) -> Option<&'a str> {
        payload_fields::text(self.ep, key).or_else(|| payload_fields::text(self.sp, key))
    }

    /// Start and end, in nanoseconds since the epoch; the end never before the start.
    fn times(&self) -> Result<(u64, u64)> {
        let end = self.end.map(unix_nanos).transpose()?;
        let start = match (self.start, end) {
            (Some(s), _) => unix_nanos(s)?,
            (None, Some(end)) => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // finite, ≥ 0
                let back = payload_fields::number(self.ep, "duration_ms")
                    .map_or(0, |ms| (ms.max(0.0) * 1e6) as u64);
                end.saturating_sub(back)
            }
            (None, None) => 0,
        };
        Ok((start, end.unwrap_or(start).max(start)))
    }

    /// The span's name and kind, and its `gen_ai.operation.name`.
    fn name_and_kind(&self, a: &mut Attributes) -> (String, i32) {
        let named = |operation: &str, what: Option<&str>| match what {
            Some(w) => format!("{operation} {w}"),
            None => operation.to_owned(),
        };
        match self.pair.kind {
            SpanKind::LlmRequest => {
                a.text("gen_ai.operation.name", Some("chat"));
                (named("chat", self.either("model")), SPAN_KIND_CLIENT)
            }
            SpanKind::ToolCall => {
                a.text("gen_ai.operation.name", Some("execute_tool"));
                (
                    named("execute_tool", self.either("tool_name")),
                    SPAN_KIND_INTERNAL,
                )
            }
            SpanKind::Stream => (named("stream", self.either("model")), SPAN_KIND_INTERNAL),
        }
    }

    fn llm_attributes(&self, a: &mut Attributes) {
        let (sp, ep) = (self.sp, self.ep);
        let finish_reasons = match ep.get("finish_reasons").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            None => payload_fields::text(ep, "finish_reason")
                .map(str::to_owned)
                .into_iter()
                .collect(),
        };
        a.texts("gen_ai.response.finish_reasons", finish_reasons);
        for (key, field) in [
            ("gen_ai.usage.input_tokens", "prompt_tokens"),
            ("gen_ai.usage.output_tokens", "completion_tokens"),
            ("gen_ai.usage.cache_read.input_tokens", "cached_tokens"),
            ("gen_ai.usage.reasoning.output_tokens", "reasoning_tokens"),
        ] {
            a.int(key, payload_fields::count(ep, field));
        }
        a.double(
            "gen_ai.request.temperature",
            payload_fields::number(sp, "temperature")
                .or_else(|| payload_fields::number(ep, "temperature")),
        );
        a.int(
            "gen_ai.request.max_tokens",
            payload_fields::count(sp, "max_tokens")
                .or_else(|| payload_fields::count(ep, "max_tokens")),
        );
        a.text("openintent.request_id", self.either("request_id"));
        a.double("openintent.cost_usd", payload_fields::number(ep, "cost"));
        a.double(
            "openintent.time_to_first_token_ms",
            payload_fields::number(ep, "time_to_first_token_ms"),
        );
    }

    fn attributes(&self, first: &Event, a: &mut Attributes) {
        a.text("gen_ai.provider.name", self.either("provider"));
        a.text("gen_ai.request.model", self.either("model"));
        match self.pair.kind {
            SpanKind::LlmRequest => self.llm_attributes(a),
            SpanKind::ToolCall => {
                a.text("gen_ai.tool.name", self.either("tool_name"));
                a.text("gen_ai.tool.call.id", self.either("tool_id"));
            }
            SpanKind::Stream => {
                a.text("openintent.stream_id", self.either("stream_id"));
                for (key, field) in [
                    ("openintent.stream.chunks_received", "chunks_received"),
                    ("openintent.stream.tokens_streamed", "tokens_streamed"),
                ] {
                    a.int(key, payload_fields::count(self.ep, field));
                }
                a.text(
                    "openintent.stream.cancel_reason",
                    payload_fields::text(self.ep, "cancel_reason"),
                );
            }
        }
        a.double(
            "openintent.reported_duration_ms",
            payload_fields::number(self.ep, "duration_ms"),
        );
        a.text("openintent.intent_id", Some(&first.intent_id));
        a.text("openintent.actor", Some(&first.actor));
        let id = |e: Option<&Event>| e.map(|e| e.id.to_string());
        a.text("openintent.start_event_id", id(self.start).as_deref());
        a.text("openintent.end_event_id", id(self.end).as_deref());
        if self.end.is_none() {
            a.flag("oidb.span.incomplete", true);
        }
    }

    /// ERROR (with `error.type`) for a failure or a finish that reports an error; else unset.
    fn status(&self, a: &mut Attributes) -> Option<Status> {
        let error = payload_fields::text(self.ep, "error");
        let failed = matches!(self.pair.end, Some((_, Outcome::Failed)));
        if !failed && error.is_none() {
            return None;
        }
        let message = error.unwrap_or("failed").to_owned();
        // "RateLimitError: 429 Too Many Requests" has type RateLimitError.
        let error_type = message
            .split(':')
            .next()
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.contains(' '))
            .unwrap_or("_OTHER");
        a.text("error.type", Some(error_type));
        Some(Status {
            code: STATUS_CODE_ERROR,
            message,
        })
    }
}

/// One span: `parent` is the parent's (trace id, span id).
fn build_span(
    events: &[Event],
    pair: &Pair,
    first: &Event,
    trace_id: String,
    id: String,
    parent: Option<(String, String)>,
) -> Result<Span> {
    let span = SpanEvents::new(events, pair);
    let (start, end) = span.times()?;
    let mut attributes = Attributes::default();
    let (name, kind) = span.name_and_kind(&mut attributes);
    span.attributes(first, &mut attributes);
    let status = span.status(&mut attributes);
    let (parent_span_id, links) = match parent {
        Some((parent_trace, parent_span)) if parent_trace == trace_id => (parent_span, Vec::new()),
        Some((parent_trace, parent_span)) => (
            String::new(),
            vec![Link {
                trace_id: parent_trace,
                span_id: parent_span,
            }],
        ),
        None => (String::new(), Vec::new()),
    };
    Ok(Span {
        trace_id,
        id,
        parent_span_id,
        name,
        kind,
        start_time_unix_nano: start.to_string(),
        end_time_unix_nano: end.to_string(),
        attributes: attributes.0,
        links,
        status,
    })
}

impl Snapshot {
    /// Writes the LLM requests, tool calls and streams of a trace (or of a query's events) as an
    /// OTLP/JSON `ExportTraceServiceRequest` (see the [module docs](crate::trace::otlp) for the
    /// mapping), and returns how many spans it wrote. POST the output to a collector's
    /// `/v1/traces` with `Content-Type: application/json`.
    ///
    /// ```
    /// use oidb::{EventType, NewEvent, Query, TraceContext};
    /// use serde_json::json;
    /// # let store = oidb::Store::in_memory()?;
    /// let trace = TraceContext::new_root();
    /// store.append(NewEvent::new("i", EventType::LlmRequestStarted, "agent")
    ///     .payload(json!({"request_id": "r1", "provider": "openai", "model": "gpt-4o"})).in_trace(&trace))?;
    /// store.append(NewEvent::new("i", EventType::LlmRequestCompleted, "agent")
    ///     .payload(json!({"request_id": "r1", "prompt_tokens": 12, "completion_tokens": 3})).in_trace(&trace))?;
    ///
    /// let mut out = Vec::new();
    /// assert_eq!(store.export_otlp_json(trace.trace_id(), &mut out)?, 1);
    /// let json: serde_json::Value = serde_json::from_slice(&out)?;
    /// let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    /// assert_eq!(span["name"], "chat gpt-4o");
    /// assert_eq!(span["traceId"], trace.trace_id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidTraceId`](crate::Error::InvalidTraceId) for a malformed trace id; [`Error::InvalidEvent`](crate::Error::InvalidEvent) (field
    /// `created_at`) when a span's event is dated before 1970 or after 2554, which OTLP's times
    /// cannot hold (nothing is written); [`Error::Output`](crate::Error::Output) when writing fails; a storage error.
    pub fn export_otlp_json(
        &self,
        source: impl Into<SpanSource>,
        mut out: impl Write,
    ) -> Result<u64> {
        let (events, keep) = self.span_events(&source.into())?;
        let pairs = spans::pair(&events);
        let graph = SpanGraph::new(&events, &pairs);
        let mut by_service: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        for (p, pair) in pairs.iter().enumerate() {
            let selected = pair
                .events()
                .any(|e| events.get(e).is_some_and(|ev| keep.contains(&ev.position)));
            let (Some(first), Some(id), true) = (graph.first_event(p), graph.span_id(p), selected)
            else {
                continue;
            };
            let parent = graph
                .parents
                .get(p)
                .copied()
                .flatten()
                .and_then(|q| Some((graph.trace_id(q), graph.span_id(q)?)));
            let span = build_span(&events, pair, first, graph.trace_id(p), id, parent)?;
            by_service
                .entry(first.actor.clone())
                .or_default()
                .push(span);
        }
        let count = by_service.values().map(Vec::len).sum::<usize>() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: by_service
                .into_iter()
                .map(|(service, spans)| ResourceSpans {
                    resource: Resource {
                        attributes: vec![KeyValue {
                            key: "service.name",
                            value: AnyValue::StringValue(service),
                        }],
                    },
                    scope_spans: vec![ScopeSpans {
                        scope: Scope {
                            name: "oidb",
                            version: env!("CARGO_PKG_VERSION"),
                        },
                        spans,
                    }],
                })
                .collect(),
        };
        serde_json::to_writer(&mut out, &request).map_err(|e| Error::Output(e.into()))?;
        out.write_all(b"\n").map_err(Error::Output)?;
        out.flush().map_err(Error::Output)?;
        Ok(count)
    }

    /// The events spans are made from (in position order) and the positions of those selected.
    /// Besides the selected events, these are the whole traces they belong to, and then the
    /// events their parent links lead to outside them (with those events' traces), so that every
    /// span finds its parent span.
    fn span_events(&self, source: &SpanSource) -> Result<(Vec<Event>, HashSet<u64>)> {
        let selected: Vec<Event> = match source {
            SpanSource::Trace(trace_id) => self.trace(trace_id)?,
            SpanSource::Query(query) => self.query_iter(query)?.collect::<Result<_>>()?,
            SpanSource::Finished { after, upto } => self.finishes_between(*after, *upto)?,
        };
        let keep: HashSet<u64> = selected.iter().map(|e| e.position).collect();
        let mut context: BTreeMap<u64, Event> = BTreeMap::new();
        let mut ids: HashSet<Uuid> = HashSet::new();
        let mut traces: HashSet<String> = HashSet::new();
        let mut pending: Vec<Event> = Vec::new();
        if matches!(source, SpanSource::Finished { .. }) {
            for finish in &selected {
                pending.extend(self.starts_before(finish)?);
            }
        }
        pending.extend(selected);
        while let Some(event) = pending.pop() {
            if !ids.insert(event.id) {
                continue;
            }
            if let Some(trace_id) = &event.trace_id {
                if traces.insert(trace_id.clone()) {
                    pending.extend(self.trace(trace_id)?);
                }
            }
            let parent = event
                .parent_event_id
                .as_deref()
                .and_then(|p| Uuid::parse_str(p).ok())
                .filter(|p| !ids.contains(p));
            if let Some(parent) = parent {
                pending.extend(self.get(parent)?);
            }
            context.insert(event.position, event);
        }
        Ok((context.into_values().collect(), keep))
    }

    /// The finishing events (of a request, a tool call or a stream) after `after`, up to `upto`.
    fn finishes_between(&self, after: Position, upto: Position) -> Result<Vec<Event>> {
        let mut finishes = Vec::new();
        for position in after.saturating_add(1)..=upto {
            if let Some(event) = self.get_at(position)? {
                if spans::finish_of(&event.event_type).is_some() {
                    finishes.push(event);
                }
            }
        }
        Ok(finishes)
    }

    /// The events that decide which start a finishing event closes: its intent's starts and
    /// finishes of its kind, with its key, before it.
    fn starts_before(&self, finish: &Event) -> Result<Vec<Event>> {
        let Some(kind) = spans::finish_of(&finish.event_type) else {
            return Ok(Vec::new());
        };
        let Some(key) = payload_fields::text(&finish.payload, kind.key_field()) else {
            return Ok(Vec::new());
        };
        let query = Query::new()
            .intent(finish.intent_id.clone())
            .event_types(kind.event_types());
        let mut starts = Vec::new();
        for event in self.query_iter(&query)? {
            let event = event?;
            if event.position >= finish.position {
                break;
            }
            if payload_fields::text(&event.payload, kind.key_field()) == Some(key) {
                starts.push(event);
            }
        }
        Ok(starts)
    }
}

read_on_handles! {
    /// Writes the LLM requests, tool calls and streams of a trace (or of a query's events) as an
    /// OTLP/JSON `ExportTraceServiceRequest`, and returns how many spans it wrote.
    fn export_otlp_json(&self, source: impl Into<SpanSource>, out: impl Write) -> Result<u64>;
}
