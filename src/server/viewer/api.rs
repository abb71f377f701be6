//! The viewer's own reads, beside OpenIntent's routes (`/api/oidb/...`): runs (intents with
//! what they did and spent), an intent's events a page at a time by cursor, trace trees, usage
//! by model, provider, agent and time, costs and budgets, and the verification of every chain.
//! Each reads one snapshot and pages where a store can be large; none writes.
//!
//! Uses `model::event`, `model::filter`, `model::time`, `store::intents`, `store::snapshot`,
//! `costs`, `trace`, `observe::blocks`, `server::answer`, `server::intents`, `server::params`,
//! `server::shared`.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query as Params, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::costs::analytics::{GroupBy, Latency, TimeBucket, UsageGroup, UsageQuery};
use crate::costs::{CostQuery, CostSummary};
use crate::model::amount::Amount;
use crate::model::error::Result;
use crate::model::event::{Event, Level};
use crate::model::filter::{Cursor, Query};
use crate::model::time::format as format_time;
use crate::observe::BlockKind;
use crate::server::answer::ApiError;
use crate::server::intents;
use crate::server::params::{number, only, time};
use crate::server::shared::{blocking, Backing, Shared};
use crate::store::intents::IntentInfo;
use crate::store::snapshot::Snapshot;
use crate::trace::TraceTree;
use crate::trace::{Outcome, SpanKind};

/// An event as the viewer shows it: its OpenIntent JSON (with `position`) and its level.
fn event_json(event: &Event) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Some(members) = value.as_object_mut() {
        members.insert("level".into(), event.level.as_str().into());
    }
    value
}

fn amounts(map: &std::collections::BTreeMap<String, Amount>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), json!(v.as_f64())))
            .collect::<Map<String, Value>>(),
    )
}

/// A cost summary with every unit's sums, and the usage no price covers.
fn summary_json(summary: &CostSummary) -> Value {
    let units: Map<String, Value> = summary
        .by_unit
        .iter()
        .map(|(unit, s)| {
            (
                unit.clone(),
                json!({
                    "total": s.total.as_f64(),
                    "count": s.count,
                    "by_type": amounts(&s.by_type),
                    "by_agent": amounts(&s.by_agent),
                    "by_model": amounts(&s.by_model),
                    "by_provider": amounts(&s.by_provider),
                }),
            )
        })
        .collect();
    json!({
        "count": summary.count,
        "by_unit": units,
        "unpriced": summary.unpriced.iter().map(|u| json!({
            "provider": u.provider, "model": u.model, "requests": u.requests,
            "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
        })).collect::<Vec<_>>(),
    })
}

fn usage_json(group: &UsageGroup) -> Value {
    let latency = |l: &Latency| json!({"count": l.count, "p50": l.p50, "p95": l.p95, "p99": l.p99, "max": l.max});
    json!({
        "key": group.key,
        "llm": {
            "requests": group.llm.requests,
            "completed": group.llm.completed,
            "failed": group.llm.failed,
            "error_rate": group.llm.error_rate,
            "input_tokens": group.llm.input_tokens,
            "output_tokens": group.llm.output_tokens,
            "total_tokens": group.llm.total_tokens,
            "latency_ms": latency(&group.llm.latency_ms),
        },
        "tools": {
            "calls": group.tools.calls,
            "failed": group.tools.failed,
            "error_rate": group.tools.error_rate,
            "latency_ms": latency(&group.tools.latency_ms),
        },
    })
}

/// How many of the intent's events are errors (ERROR or FATAL) and how many warnings, in one
/// pass over the intent's events at WARN or above (an index-side filter: others are not read).
fn errors_and_warnings(snapshot: &Snapshot, intent_id: &str) -> Result<(u64, u64)> {
    let (mut errors, mut warnings) = (0, 0);
    for event in snapshot.query_iter(&Query::new().intent(intent_id).min_level(Level::Warn))? {
        if event?.level >= Level::Error {
            errors += 1;
        } else {
            warnings += 1;
        }
    }
    Ok((errors, warnings))
}

/// One run: an intent, what it did and what it spent; with `usage`, its LLM requests and tokens
/// too (a scan of its requests, where the rest reads heads, running totals and indexes).
fn run_json(snapshot: &Snapshot, info: &IntentInfo, usage: bool) -> Result<Value> {
    let id = info.intent_id.as_str();
    let read = intents::read(snapshot, id)?;
    let first = snapshot.get_at(info.first_position)?;
    let last = snapshot.get_at(info.last_position)?;
    let costs = snapshot.cost_summary(&CostQuery::new().intent(id))?;
    let llm = if usage {
        let report = snapshot.usage_report(&UsageQuery::new().intent(id))?;
        Some(
            report
                .groups
                .first()
                .map(|g| g.llm.clone())
                .unwrap_or_default(),
        )
    } else {
        None
    };
    let (errors, warnings) = errors_and_warnings(snapshot, id)?;
    let mut actors: BTreeSet<String> = BTreeSet::new();
    let (title, status) = match &read {
        Some(read) => {
            actors.insert(read.intent.created_by.clone());
            actors.extend(read.intent.agents.iter().cloned());
            (read.intent.title.clone(), read.intent.status.clone())
        }
        None => (id.to_owned(), "active".to_owned()),
    };
    for event in [&first, &last].into_iter().flatten() {
        actors.insert(event.actor.clone());
    }
    let started = first.as_ref().map(|e| e.created_at);
    let ended = last.as_ref().map(|e| e.created_at);
    Ok(json!({
        "id": id,
        "title": title,
        "status": status,
        "actors": actors,
        "events": info.events,
        "first_position": info.first_position,
        "last_position": info.last_position,
        "started_at": started.map(|t| t.to_rfc3339()),
        "ended_at": ended.map(|t| t.to_rfc3339()),
        "duration_ms": started.zip(ended).map(|(a, b)| (b - a).num_milliseconds()),
        "cost": Value::Object(costs.by_unit.iter().map(|(u, s)| (u.clone(), json!(s.total.as_f64()))).collect()),
        "unpriced_requests": costs.unpriced.iter().map(|u| u.requests).sum::<u64>(),
        "llm_requests": llm.as_ref().map(|l| l.requests),
        "failed_requests": llm.as_ref().map(|l| l.failed),
        "tokens": llm.as_ref().map(|l| l.total_tokens),
        "errors": errors,
        "warnings": warnings,
    }))
}

/// `GET /api/oidb/runs?after=ID&limit=N`: a page of runs by intent id, and the id to ask for
/// the next page after (`next`, `null` at the end). Their tokens and requests are `null`: each
/// needs a scan of the intent's requests, which `GET /api/oidb/runs/{id}` makes.
pub(crate) async fn runs(
    State(shared): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&params, &["after", "limit"])?;
    let limit = number(&params, "limit", 50, 1, 500)?;
    let after = params.get("after").cloned().filter(|a| !a.is_empty());
    let store = shared.store.clone();
    blocking(move || {
        let snapshot = store.snapshot()?;
        let page = snapshot.intents(after.as_deref(), limit + 1)?;
        let more = page.len() > limit;
        let mut runs = Vec::new();
        for info in page.iter().take(limit) {
            runs.push(run_json(&snapshot, info, false)?);
        }
        let next = more
            .then(|| page.get(limit - 1).map(|i| i.intent_id.clone()))
            .flatten();
        Ok(Json(json!({
            "runs": runs,
            "next": next,
            "last_position": snapshot.last_position()?,
            "writer": writer_json(&store),
        })))
    })
    .await
}

/// `GET /api/oidb/runs/{id}`: one run, as in the list, with its LLM requests and tokens.
pub(crate) async fn run(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    blocking(move || {
        let snapshot = store.snapshot()?;
        let info = snapshot
            .intent(&intent_id)?
            .ok_or_else(|| ApiError::no_intent(&intent_id))?;
        Ok(Json(json!({
            "run": run_json(&snapshot, &info, true)?,
            "writer": writer_json(&store),
        })))
    })
    .await
}

/// Who writes the file: this server, or another process (live, or gone).
fn writer_json(store: &Backing) -> Value {
    match store {
        Backing::Writer(_) => json!("this server"),
        Backing::Reader(reader) => match reader.writer_status() {
            Ok(status) => json!(format!("{status:?}").to_lowercase()),
            Err(e) => json!(e.to_string()),
        },
    }
}

/// `GET /api/oidb/intents/{id}/events`: a page of an intent's events, newest first unless
/// `order=oldest`, filtered by `type` (a prefix with a trailing `*`), `actor`, `level` (that
/// level or above), `since`, `until`; `after` is the cursor a page gave as `next`.
pub(crate) async fn intent_events(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(
        &params,
        &[
            "after", "limit", "order", "type", "actor", "level", "since", "until",
        ],
    )?;
    let limit = number(&params, "limit", 100, 1, 1000)?;
    let mut query = Query::new().intent(intent_id.as_str()).limit(limit);
    query = match params.get("order").map(String::as_str) {
        None | Some("newest") => query.newest_first(),
        Some("oldest") => query,
        Some(other) => {
            return Err(ApiError::bad(
                "order",
                format!("order must be newest or oldest, not {other:?}"),
            ))
        }
    };
    if let Some(after) = params.get("after").filter(|a| !a.is_empty()) {
        let cursor: Cursor = after.parse().map_err(|_| {
            ApiError::bad(
                "after",
                "after must be the `next` cursor a page gave (a position)",
            )
        })?;
        query = query.after(cursor);
    }
    if let Some(kind) = params.get("type").filter(|t| !t.is_empty()) {
        query = match kind.strip_suffix('*') {
            Some(prefix) => query.type_prefix(prefix),
            None => query.event_type(kind.as_str()),
        };
    }
    if let Some(actor) = params.get("actor").filter(|a| !a.is_empty()) {
        query = query.actor(actor.as_str());
    }
    if let Some(level) = params.get("level").filter(|l| !l.is_empty()) {
        let level: Level = level.parse().map_err(|_| {
            ApiError::bad(
                "level",
                "level must be trace, debug, info, warn, error or fatal",
            )
        })?;
        query = query.min_level(level);
    }
    if let Some(since) = time(&params, "since")? {
        query = query.since(since);
    }
    if let Some(until) = time(&params, "until")? {
        query = query.until(until);
    }
    let store = shared.store.clone();
    blocking(move || {
        let snapshot = store.snapshot()?;
        if snapshot.last_sequence(&intent_id)? == 0 {
            return Err(ApiError::no_intent(&intent_id));
        }
        let page = snapshot.query(&query)?;
        Ok(Json(json!({
            "events": page.events.iter().map(event_json).collect::<Vec<_>>(),
            "next": page.next.map(|c| c.to_string()),
            "last_position": snapshot.last_position()?,
        })))
    })
    .await
}

/// `GET /api/oidb/intents/{id}/blocks`: the intent's thinking and code, each put back together.
pub(crate) async fn blocks(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    blocking(move || {
        let blocks = store.snapshot()?.blocks(&intent_id)?;
        Ok(Json(Value::Array(
            blocks
                .iter()
                .map(|b| {
                    json!({
                        "kind": match b.kind { BlockKind::Thinking => "thinking", BlockKind::Code => "code" },
                        "id": b.id,
                        "text": b.text,
                        "started_at": b.started_at.to_rfc3339(),
                        "ended_at": b.ended_at.map(|t| t.to_rfc3339()),
                        "first_sequence": b.first_sequence,
                        "last_sequence": b.last_sequence,
                    })
                })
                .collect(),
        )))
    })
    .await
}

/// `GET /api/oidb/intents/{id}/traces`: the traces the intent's events belong to, in the order
/// they first appear, each with how many of the intent's events are in it.
pub(crate) async fn intent_traces(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    blocking(move || {
        let snapshot = store.snapshot()?;
        let mut traces: Vec<(String, u64, String)> = Vec::new();
        for event in snapshot.query_iter(&Query::new().intent(intent_id.as_str()))? {
            let event = event?;
            let Some(trace) = event.trace_id.as_deref() else {
                continue;
            };
            match traces.iter_mut().find(|(t, _, _)| t == trace) {
                Some(found) => found.1 += 1,
                None => traces.push((trace.to_owned(), 1, event.created_at.to_rfc3339())),
            }
        }
        Ok(Json(Value::Array(
            traces
                .into_iter()
                .map(|(trace_id, events, first_at)| {
                    json!({"trace_id": trace_id, "events": events, "first_at": first_at})
                })
                .collect(),
        )))
    })
    .await
}

/// `GET /api/oidb/traces/{trace_id}`: the trace as a tree in depth-first order, each node with
/// its start, and for a request, tool call or stream its kind, outcome and duration.
pub(crate) async fn trace(
    State(shared): State<Shared>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    blocking(move || {
        let tree: TraceTree = store.snapshot()?.trace_tree(&trace_id)?;
        if tree.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no events in trace {trace_id:?}"),
            )
            .field("trace_id"));
        }
        let nodes: Vec<Value> = tree
            .depth_first()
            .into_iter()
            .map(|index| {
                let node = tree.node(index);
                let span = node.span.as_ref().map(|span| {
                    let end = &tree.node(span.end).event;
                    json!({
                        "kind": match span.kind {
                            SpanKind::LlmRequest => "llm_request",
                            SpanKind::ToolCall => "tool_call",
                            SpanKind::Stream => "stream",
                        },
                        "outcome": match span.outcome {
                            Outcome::Completed => "completed",
                            Outcome::Failed => "failed",
                            Outcome::Cancelled => "cancelled",
                        },
                        "duration_ms": span.duration.as_seconds_f64() * 1000.0,
                        "reported_duration_ms": span.reported_duration_ms,
                        "end": event_json(end),
                    })
                });
                json!({
                    "index": index,
                    "parent": node.parent,
                    "depth": node.depth,
                    "event": event_json(&node.event),
                    "span": span,
                })
            })
            .collect();
        Ok(Json(json!({"trace_id": trace_id, "nodes": nodes})))
    })
    .await
}

/// The `intent`, `since` and `until` parameters that narrow a usage or cost read.
struct Scope {
    intent: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Scope {
    fn of(params: &HashMap<String, String>) -> Result<Scope, ApiError> {
        Ok(Scope {
            intent: params.get("intent").filter(|i| !i.is_empty()).cloned(),
            since: time(params, "since")?,
            until: time(params, "until")?,
        })
    }
}

/// A `bucket` parameter (`minute`, `hour` or `day`).
fn time_bucket(name: &str) -> Result<TimeBucket, ApiError> {
    match name {
        "minute" => Ok(TimeBucket::Minute),
        "hour" => Ok(TimeBucket::Hour),
        "day" => Ok(TimeBucket::Day),
        other => Err(ApiError::bad(
            "bucket",
            format!("bucket must be minute, hour or day, not {other:?}"),
        )),
    }
}

/// `GET /api/oidb/usage?group_by=model|provider|agent|intent|minute|hour|day&intent=ID`: LLM
/// requests and tool calls, grouped.
pub(crate) async fn usage(
    State(shared): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&params, &["group_by", "intent", "since", "until"])?;
    let group_by = match params.get("group_by").map_or("model", String::as_str) {
        "model" => GroupBy::Model,
        "provider" => GroupBy::Provider,
        "agent" => GroupBy::Agent,
        "intent" => GroupBy::Intent,
        bucket @ ("minute" | "hour" | "day") => GroupBy::Time(time_bucket(bucket)?),
        "all" => GroupBy::Nothing,
        other => {
            return Err(ApiError::bad(
                "group_by",
                format!(
                    "group_by must be model, provider, agent, intent, minute, hour, day or all, \
                     not {other:?}"
                ),
            ))
        }
    };
    let scope = Scope::of(&params)?;
    let mut query = UsageQuery::new().group_by(group_by);
    if let Some(intent) = scope.intent {
        query = query.intent(intent);
    }
    if let Some(since) = scope.since {
        query = query.since(since);
    }
    if let Some(until) = scope.until {
        query = query.until(until);
    }
    let store = shared.store.clone();
    blocking(move || {
        let report = store.snapshot()?.usage_report(&query)?;
        Ok(Json(Value::Array(
            report.groups.iter().map(usage_json).collect(),
        )))
    })
    .await
}

/// `GET /api/oidb/costs`: the store's costs by unit, model, provider, agent and type, the usage
/// no price covers, cost over time, and every intent's budget with what it has spent.
pub(crate) async fn costs(State(shared): State<Shared>) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    blocking(move || {
        let snapshot = store.snapshot()?;
        let summary = snapshot.cost_summary(&CostQuery::new())?;
        let mut budgets = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = snapshot.intents(after.as_deref(), 512)?;
            for info in &page {
                if let Some(budget) = snapshot.budget(&info.intent_id)? {
                    budgets.push(json!({
                        "intent_id": info.intent_id,
                        "max_cost": budget.max_cost.as_f64(),
                        "unit": budget.unit,
                        "spent": budget.spent.as_f64(),
                        "remaining": budget.remaining.as_f64(),
                        "alert_threshold_percent": budget.alert_threshold_percent,
                        "alerted": budget.alerted,
                    }));
                }
            }
            match page.last() {
                Some(last) if page.len() == 512 => after = Some(last.intent_id.clone()),
                _ => break,
            }
        }
        Ok(Json(json!({
            "summary": summary_json(&summary),
            "budgets": budgets,
        })))
    })
    .await
}

/// `GET /api/oidb/costs/over_time?bucket=minute|hour|day&intent=ID&since=T&until=T`: the costs
/// summed by unit in time buckets, oldest first, with the requests no price covers in each.
pub(crate) async fn cost_over_time(
    State(shared): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&params, &["bucket", "intent", "since", "until"])?;
    let bucket = time_bucket(params.get("bucket").map_or("hour", String::as_str))?;
    let scope = Scope::of(&params)?;
    let mut query = CostQuery::new();
    if let Some(intent) = scope.intent {
        query = query.intent(intent);
    }
    if let Some(since) = scope.since {
        query = query.since(since);
    }
    if let Some(until) = scope.until {
        query = query.until(until);
    }
    let store = shared.store.clone();
    blocking(move || {
        let buckets = store.snapshot()?.cost_over_time(&query, bucket)?;
        Ok(Json(Value::Array(
            buckets
                .iter()
                .map(|b| {
                    json!({
                        "start": format_time(b.start),
                        "by_unit": amounts(&b.by_unit),
                        "count": b.count,
                        "unpriced_requests": b.unpriced_requests,
                    })
                })
                .collect(),
        )))
    })
    .await
}

/// `GET /api/oidb/proofs`: every chain's verification (each break at its event, with what was
/// expected and found), the store's own problems, and each checkpoint with its events re-read
/// and hashed to its Merkle root.
pub(crate) async fn proofs(State(shared): State<Shared>) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    blocking(move || {
        let snapshot = store.snapshot()?;
        let verification = snapshot.verify_all(|_| {})?;
        let mut checkpoints = Vec::new();
        for checkpoint in snapshot.all_checkpoints()? {
            let checked = snapshot.verify_checkpoint(&checkpoint)?;
            checkpoints.push(json!({
                "checkpoint": serde_json::to_value(&checkpoint).unwrap_or(Value::Null),
                "verification": serde_json::to_value(&checked).unwrap_or(Value::Null),
            }));
        }
        Ok(Json(json!({
            "verification": serde_json::to_value(&verification).unwrap_or(Value::Null),
            "checkpoints": checkpoints,
        })))
    })
    .await
}
