//! Usage analytics: tokens, request counts, error rates and latency percentiles of LLM requests
//! and tool calls, grouped by model, provider, agent, intent or time bucket, over a time range.
//!
//! Read from OpenIntent's event payloads by key, so any producer's events count:
//! `llm_request_completed` (`prompt_tokens`, `completion_tokens`, `total_tokens`,
//! `cached_tokens`, `reasoning_tokens`, `duration_ms`, `time_to_first_token_ms`),
//! `llm_request_failed` (`error`, `duration_ms`), `tool_call_completed` / `tool_call_failed`
//! (`tool_name`, `tool_id`, `duration_ms`, `error`). A request or call is counted when it
//! finishes (completed or failed), in the bucket of its finishing event. Its provider and model
//! are its own, or else those of its `*_started` event (matched by `request_id` / `tool_id`)
//! when that is in the range. Its latency is the `duration_ms` it reports, or else the time from
//! its started event to its finishing event.
//!
//! Percentiles are nearest-rank: the p-th percentile of n values is the value at rank ⌈p·n/100⌉
//! of the sorted values (so it is always one of the values).
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `model::payload_fields`,
//! `model::time`, `store::reads`, `store::snapshot`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event_type::EventType;
use crate::model::filter::Query;
use crate::model::payload_fields;
use crate::model::time;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// A length of time to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeBucket {
    /// Whole minutes.
    Minute,
    /// Whole hours.
    Hour,
    /// Whole days (UTC).
    Day,
}

impl TimeBucket {
    fn length(self) -> TimeDelta {
        match self {
            TimeBucket::Minute => TimeDelta::minutes(1),
            TimeBucket::Hour => TimeDelta::hours(1),
            TimeBucket::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket `t` falls in.
    pub(crate) fn start(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.length()).unwrap_or(t)
    }
}

/// How a usage report is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupBy {
    /// One group, `all`.
    #[default]
    Nothing,
    /// By model (`unknown` when a request names none).
    Model,
    /// By provider (`unknown` when a request names none).
    Provider,
    /// By agent: the event's actor.
    Agent,
    /// By intent.
    Intent,
    /// By time bucket: the group key is the bucket's start, `2026-11-20T09:00:00Z`.
    Time(TimeBucket),
}

/// What a usage report covers and how it is grouped.
///
/// ```
/// use oidb::costs::{GroupBy, TimeBucket, UsageQuery};
/// let query = UsageQuery::new().group_by(GroupBy::Time(TimeBucket::Hour));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct UsageQuery {
    /// The LLM and tool events read, narrowed as asked.
    events: Query,
    group_by: GroupBy,
}

impl Default for UsageQuery {
    fn default() -> Self {
        UsageQuery {
            events: Query::new().event_types([
                EventType::LlmRequestStarted,
                EventType::LlmRequestCompleted,
                EventType::LlmRequestFailed,
                EventType::ToolCallStarted,
                EventType::ToolCallCompleted,
                EventType::ToolCallFailed,
            ]),
            group_by: GroupBy::default(),
        }
    }
}

impl UsageQuery {
    /// Everything, in one group.
    pub fn new() -> UsageQuery {
        UsageQuery::default()
    }

    /// Only this intent's requests and calls.
    pub fn intent(mut self, intent_id: impl Into<String>) -> UsageQuery {
        self.events = self.events.intent(intent_id);
        self
    }

    /// Only this agent's (actor's).
    pub fn agent(mut self, actor: impl Into<String>) -> UsageQuery {
        self.events = self.events.actor(actor);
        self
    }

    /// Only those that finished at or after `t`.
    pub fn since(mut self, t: DateTime<Utc>) -> UsageQuery {
        self.events = self.events.since(t);
        self
    }

    /// Only those that finished before `t`.
    pub fn until(mut self, t: DateTime<Utc>) -> UsageQuery {
        self.events = self.events.until(t);
        self
    }

    /// How to group (default: one group).
    pub fn group_by(mut self, group_by: GroupBy) -> UsageQuery {
        self.group_by = group_by;
        self
    }
}

/// Latency percentiles, in milliseconds; `None` when there were no values.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct Latency {
    /// How many values.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// The largest value.
    pub max: Option<f64>,
}

impl Latency {
    /// The nearest-rank percentiles of `values` (NaNs ignored).
    #[must_use]
    pub fn of(mut values: Vec<f64>) -> Latency {
        values.retain(|v| !v.is_nan());
        values.sort_by(f64::total_cmp);
        let rank = |p: u32| -> Option<f64> {
            let n = values.len();
            if n == 0 {
                return None;
            }
            // ⌈p·n/100⌉, at least 1
            let rank = (p as usize * n).div_ceil(100).max(1);
            values.get(rank - 1).copied()
        };
        Latency {
            count: values.len() as u64,
            p50: rank(50),
            p95: rank(95),
            p99: rank(99),
            max: values.last().copied(),
        }
    }
}

/// LLM requests of one group.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct LlmUsage {
    /// Finished requests: completed + failed.
    pub requests: u64,
    /// Completed requests.
    pub completed: u64,
    /// Failed requests.
    pub failed: u64,
    /// `failed / requests` (0 when there were none).
    pub error_rate: f64,
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// Input tokens read from cache.
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// All tokens (`total_tokens`, or input + output where a request does not report it).
    pub total_tokens: u64,
    /// Latency of finished requests.
    pub latency_ms: Latency,
    /// Time to first token, where requests report it.
    pub time_to_first_token_ms: Latency,
}

impl LlmUsage {
    /// Adds the token counts a finished request's payload reports. Counts come from payloads
    /// anyone may write: a sum stops at `u64::MAX` instead of wrapping around.
    fn add_tokens(&mut self, payload: &serde_json::Value) {
        let tokens = |name| payload_fields::count(payload, name).unwrap_or(0);
        let (input, output) = (tokens("prompt_tokens"), tokens("completion_tokens"));
        self.input_tokens = self.input_tokens.saturating_add(input);
        self.output_tokens = self.output_tokens.saturating_add(output);
        self.cached_tokens = self.cached_tokens.saturating_add(tokens("cached_tokens"));
        self.reasoning_tokens = self
            .reasoning_tokens
            .saturating_add(tokens("reasoning_tokens"));
        let total = payload_fields::count(payload, "total_tokens")
            .unwrap_or_else(|| input.saturating_add(output));
        self.total_tokens = self.total_tokens.saturating_add(total);
    }
}

/// Tool calls of one group.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct ToolUsage {
    /// Finished calls: completed + failed.
    pub calls: u64,
    /// Completed calls.
    pub completed: u64,
    /// Failed calls.
    pub failed: u64,
    /// `failed / calls` (0 when there were none).
    pub error_rate: f64,
    /// Latency of finished calls.
    pub latency_ms: Latency,
}

/// The usage of one group.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct UsageGroup {
    /// The group: a model, provider, agent, intent, bucket start, or `all`.
    pub key: String,
    /// Its LLM requests.
    pub llm: LlmUsage,
    /// Its tool calls.
    pub tools: ToolUsage,
}

/// A usage report: one entry per group, in key order.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct UsageReport {
    /// The groups.
    pub groups: Vec<UsageGroup>,
}

impl UsageReport {
    /// The group with this key.
    #[must_use]
    pub fn group(&self, key: &str) -> Option<&UsageGroup> {
        self.groups.iter().find(|g| g.key == key)
    }
}

/// What a started event says about the request or call it starts.
struct Started {
    at: DateTime<Utc>,
    provider: Option<String>,
    model: Option<String>,
}

#[derive(Default)]
struct Accumulator {
    llm: LlmUsage,
    tools: ToolUsage,
    llm_latencies: Vec<f64>,
    ttft: Vec<f64>,
    tool_latencies: Vec<f64>,
}

const UNKNOWN: &str = "unknown";

fn group_key(
    group_by: GroupBy,
    event: &Event,
    provider: Option<&str>,
    model: Option<&str>,
) -> String {
    match group_by {
        GroupBy::Nothing => "all".to_owned(),
        GroupBy::Model => model.unwrap_or(UNKNOWN).to_owned(),
        GroupBy::Provider => provider.unwrap_or(UNKNOWN).to_owned(),
        GroupBy::Agent => event.actor.clone(),
        GroupBy::Intent => event.intent_id.clone(),
        GroupBy::Time(bucket) => {
            time::format(bucket.start(event.created_at)).replace(".000000Z", "Z")
        }
    }
}

/// The latency a finishing event reports (`duration_ms`), or else the time since its started
/// event, when that is known.
fn latency(finished: &Event, start: Option<&Started>) -> Option<f64> {
    payload_fields::number(&finished.payload, "duration_ms")
        .or_else(|| start.map(|s| millis_between(s.at, finished.created_at)))
}

#[allow(clippy::cast_precision_loss)] // a duration in ms as f64
fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

#[allow(clippy::cast_precision_loss)] // a rate
fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Snapshot {
    /// Tokens, request counts, error rates and latency percentiles of LLM requests and tool
    /// calls, grouped as the query says. Reads the LLM and tool events in the range (see the
    /// [module docs](crate::costs::analytics) for how they are read).
    ///
    /// ```
    /// use oidb::costs::{GroupBy, UsageQuery};
    /// use oidb::EventType;
    /// use serde_json::json;
    /// # let store = oidb::Store::in_memory()?;
    /// for (model, ms) in [("gpt-4o", 900), ("gpt-4o", 1100), ("deepseek-chat", 400)] {
    ///     store.log_event("i", EventType::LlmRequestCompleted, json!({
    ///         "request_id": ms.to_string(), "provider": "p", "model": model,
    ///         "prompt_tokens": 10, "completion_tokens": 5, "duration_ms": ms}))?;
    /// }
    /// let report = store.usage_report(&UsageQuery::new().group_by(GroupBy::Model))?;
    /// let gpt = &report.group("gpt-4o").unwrap().llm;
    /// assert_eq!((gpt.requests, gpt.input_tokens, gpt.latency_ms.p50), (2, 20, Some(900.0)));
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// A storage error.
    pub fn usage_report(&self, query: &UsageQuery) -> Result<UsageReport> {
        let mut llm_started: HashMap<String, Started> = HashMap::new();
        let mut tool_started: HashMap<String, Started> = HashMap::new();
        let mut groups: BTreeMap<String, Accumulator> = BTreeMap::new();
        for event in self.query_iter(&query.events)? {
            let event = event?;
            let p = &event.payload;
            let started = || Started {
                at: event.created_at,
                provider: payload_fields::text(p, "provider").map(str::to_owned),
                model: payload_fields::text(p, "model").map(str::to_owned),
            };
            match &event.event_type {
                EventType::LlmRequestStarted => {
                    if let Some(id) = payload_fields::text(p, "request_id") {
                        llm_started.insert(id.to_owned(), started());
                    }
                }
                EventType::ToolCallStarted => {
                    if let Some(id) = payload_fields::text(p, "tool_id") {
                        tool_started.insert(id.to_owned(), started());
                    }
                }
                EventType::LlmRequestCompleted | EventType::LlmRequestFailed => {
                    let start =
                        payload_fields::text(p, "request_id").and_then(|id| llm_started.remove(id));
                    let provider = payload_fields::text(p, "provider")
                        .or_else(|| start.as_ref().and_then(|s| s.provider.as_deref()));
                    let model = payload_fields::text(p, "model")
                        .or_else(|| start.as_ref().and_then(|s| s.model.as_deref()));
                    let key = group_key(query.group_by, &event, provider, model);
                    let group = groups.entry(key).or_default();
                    let failed = event.event_type == EventType::LlmRequestFailed;
                    let llm = &mut group.llm;
                    llm.requests += 1;
                    if failed {
                        llm.failed += 1;
                    } else {
                        llm.completed += 1;
                    }
                    llm.add_tokens(p);
                    group.llm_latencies.extend(latency(&event, start.as_ref()));
                    group
                        .ttft
                        .extend(payload_fields::number(p, "time_to_first_token_ms"));
                }
                EventType::ToolCallCompleted | EventType::ToolCallFailed => {
                    let start =
                        payload_fields::text(p, "tool_id").and_then(|id| tool_started.remove(id));
                    let provider = start
                        .as_ref()
                        .and_then(|s| s.provider.as_deref())
                        .or_else(|| payload_fields::text(p, "provider"));
                    let model = start
                        .as_ref()
                        .and_then(|s| s.model.as_deref())
                        .or_else(|| payload_fields::text(p, "model"));
                    let key = group_key(query.group_by, &event, provider, model);
                    let group = groups.entry(key).or_default();
                    group.tools.calls += 1;
                    if event.event_type == EventType::ToolCallFailed {
                        group.tools.failed += 1;
                    } else {
                        group.tools.completed += 1;
                    }
                    group.tool_latencies.extend(latency(&event, start.as_ref()));
                }
                _ => {}
            }
        }
        let groups = groups
            .into_iter()
            .map(|(key, acc)| {
                let mut llm = acc.llm;
                llm.error_rate = rate(llm.failed, llm.requests);
                llm.latency_ms = Latency::of(acc.llm_latencies);
                llm.time_to_first_token_ms = Latency::of(acc.ttft);
                let mut tools = acc.tools;
                tools.error_rate = rate(tools.failed, tools.calls);
                tools.latency_ms = Latency::of(acc.tool_latencies);
                UsageGroup { key, llm, tools }
            })
            .collect();
        Ok(UsageReport { groups })
    }
}

read_on_handles! {
    /// Tokens, request counts, error rates and latency percentiles of LLM requests and tool calls,
    /// grouped as the query says.
    fn usage_report(&self, query: &UsageQuery) -> Result<UsageReport>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let latency = Latency::of((1..=100).map(f64::from).rev().collect());
        assert_eq!(latency.count, 100);
        assert_eq!(
            (latency.p50, latency.p95, latency.p99, latency.max),
            (Some(50.0), Some(95.0), Some(99.0), Some(100.0))
        );
        let few = Latency::of(vec![300.0, 100.0, 200.0]);
        // ranks ⌈1.5⌉ = 2, ⌈2.85⌉ = 3, ⌈2.97⌉ = 3
        assert_eq!(
            (few.p50, few.p95, few.p99),
            (Some(200.0), Some(300.0), Some(300.0))
        );
        let one = Latency::of(vec![7.0]);
        assert_eq!((one.p50, one.p99), (Some(7.0), Some(7.0)));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }

    #[test]
    fn buckets_start_on_the_boundary() {
        let t = time::parse("2026-11-20T09:41:07.5Z").unwrap();
        assert_eq!(
            time::format(TimeBucket::Hour.start(t)),
            "2026-11-20T09:00:00.000000Z"
        );
        assert_eq!(
            time::format(TimeBucket::Minute.start(t)),
            "2026-11-20T09:41:00.000000Z"
        );
        assert_eq!(
            time::format(TimeBucket::Day.start(t)),
            "2026-11-20T00:00:00.000000Z"
        );
    }
}
