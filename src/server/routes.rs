//! The routes: OpenIntent's paths, each a handler that checks the request whole before it
//! touches the store, then runs the store call on a blocking thread.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `store::handle`,
//! `server::answer`, `server::auth`, `server::costs`, `server::intents`, `server::proofs`,
//! `server::shared`, `server::stream`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query as Params, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::event::{Event, NewEvent};
use crate::model::event_type::EventType;
use crate::model::filter::Query;
use crate::server::answer::ApiError;
use crate::server::auth;
use crate::server::costs;
use crate::server::intents::{self, Intent};
use crate::server::params::{number, only, time};
use crate::server::proofs;
use crate::server::shared::{
    actor, blocking, body, change_intent, if_match, intent_in, read_intent, Shared,
};
use crate::server::stream;
use crate::server::viewer;
use crate::store::handle::DEFAULT_MAX_PAYLOAD_BYTES;

/// Every route, behind the API key check and the body limit.
pub(crate) fn router(shared: Shared) -> Router {
    let key = shared.key.clone();
    Router::new()
        .route("/api/v1/intents", post(create_intent).get(list_intents))
        .route("/api/v1/intents/{intent_id}", get(get_intent))
        .route("/api/v1/intents/{intent_id}/state", post(update_state))
        .route("/api/v1/intents/{intent_id}/status", post(set_status))
        .route(
            "/api/v1/intents/{intent_id}/agents",
            post(assign_agent).get(list_agents),
        )
        .route(
            "/api/v1/intents/{intent_id}/events",
            post(log_event).get(get_events),
        )
        .route(
            "/api/v1/intents/{intent_id}/costs",
            post(costs::record_cost).get(costs::get_costs),
        )
        .route(
            "/api/v1/intents/{intent_id}/governance",
            axum::routing::put(costs::set_governance_policy).get(costs::get_governance_policy),
        )
        .route(
            "/api/v1/intents/{intent_id}/events/verify",
            get(proofs::verify_chain),
        )
        .route(
            "/api/v1/checkpoints",
            get(proofs::list_checkpoints).post(proofs::create_checkpoint),
        )
        .route(
            "/api/v1/checkpoints/{checkpoint_id}",
            get(proofs::get_checkpoint),
        )
        .route(
            "/api/v1/checkpoints/{checkpoint_id}/proof/{event_id}",
            get(proofs::merkle_proof),
        )
        .route("/api/v1/verify/consistency", get(proofs::consistency))
        .route("/api/v1/events", get(events_of_trace))
        .route("/api/v1/intents/{intent_id}/subscribe", get(stream::intent))
        .route("/api/v1/subscribe/intents/{intent_id}", get(stream::intent))
        .merge(viewer::api_routes())
        .fallback(not_served)
        .layer(axum::middleware::from_fn_with_state(key, auth::check))
        .merge(viewer::page_routes())
        // A payload at the store's cap, with room for the members around it.
        .layer(DefaultBodyLimit::max(DEFAULT_MAX_PAYLOAD_BYTES + 64 * 1024))
        .with_state(shared)
}

fn wire(event: &Event) -> Value {
    serde_json::to_value(event).unwrap_or(Value::Null)
}

fn intent_json(intent: &Intent) -> Value {
    serde_json::to_value(intent).unwrap_or(Value::Null)
}

/// The body of `POST /api/v1/intents` (the reference server's `IntentCreate`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentCreate {
    title: String,
    #[serde(default)]
    description: String,
    created_by: Option<String>,
    #[serde(alias = "parent_id")]
    parent_intent_id: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    constraints: Map<String, Value>,
    #[serde(default)]
    state: Map<String, Value>,
    status: Option<String>,
    governance_policy: Option<Map<String, Value>>,
}

/// The statuses an intent can have (the SDK's `IntentStatus`).
const STATUSES: [&str; 6] = [
    "draft",
    "active",
    "blocked",
    "suspended_awaiting_input",
    "completed",
    "abandoned",
];

fn check_status(status: &str) -> Result<(), ApiError> {
    if STATUSES.contains(&status) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("status {status:?} is not one of {}", STATUSES.join(", ")),
    )
    .field("status"))
}

async fn create_intent(
    State(shared): State<Shared>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let create: IntentCreate = body(&bytes)?;
    if create.title.trim().is_empty() {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "title is empty").field("title"),
        );
    }
    let status = create.status.unwrap_or_else(|| "draft".into());
    check_status(&status)?;
    let budget = match &create.governance_policy {
        Some(policy) => costs::check_policy(policy)?,
        None => None,
    };
    let created_by = create.created_by.unwrap_or_else(|| actor(&headers));
    let mut payload = json!({
        "title": create.title,
        "description": create.description,
        "created_by": created_by,
        "depends_on": create.depends_on,
        "constraints": create.constraints,
        "state": create.state,
        "status": status,
    });
    if let Some(members) = payload.as_object_mut() {
        if let Some(parent) = create.parent_intent_id {
            members.insert("parent_intent_id".into(), parent.into());
        }
        if let Some(policy) = create.governance_policy {
            members.insert("governance_policy".into(), Value::Object(policy));
        }
    }
    let intent_id = Uuid::new_v4().to_string();
    let store = shared.writer()?;
    let intent = blocking(move || {
        store.append(
            NewEvent::new(
                intent_id.as_str(),
                EventType::IntentCreated,
                created_by.as_str(),
            )
            .payload(payload),
        )?;
        if let Some(budget) = &budget {
            store.set_budget(&intent_id, budget)?;
        }
        intent_in(&store.snapshot()?, &intent_id)
    })
    .await?;
    Ok(Json(intent_json(&intent)))
}

async fn get_intent(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    let intent = blocking(move || read_intent(&store, &intent_id)).await?;
    Ok(Json(intent_json(&intent)))
}

async fn list_intents(
    State(shared): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&params, &["status", "limit", "offset"])?;
    let limit = number(&params, "limit", 50, 1, 1000)?;
    let offset = number(&params, "offset", 0, 0, usize::MAX)?;
    let status = params.get("status").cloned();
    if let Some(status) = &status {
        check_status(status)?;
    }
    let store = shared.store.clone();
    let found = blocking(move || {
        let snapshot = store.snapshot()?;
        let mut found = Vec::new();
        let mut skipped = 0;
        for created in snapshot.query_iter(&Query::new().event_type(EventType::IntentCreated))? {
            let created = created?;
            let Some(read) = intents::read(&snapshot, &created.intent_id)? else {
                continue;
            };
            if status.as_ref().is_some_and(|s| *s != read.intent.status) {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            found.push(intent_json(&read.intent));
            if found.len() == limit {
                break;
            }
        }
        Ok(found)
    })
    .await?;
    Ok(Json(json!({ "intents": found })))
}

#[derive(Deserialize)]
struct StatePatch {
    patches: Option<Vec<Value>>,
    state: Option<Map<String, Value>>,
}

async fn update_state(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let version = if_match(&headers)?;
    let request: StatePatch = body(&bytes)?;
    let patches: Vec<Value> = match (request.patches, request.state) {
        (Some(patches), _) if !patches.is_empty() => patches,
        (_, Some(state)) => state
            .into_iter()
            .map(|(path, value)| json!({"op": "set", "path": path, "value": value}))
            .collect(),
        _ => Vec::new(),
    };
    // Checked on an empty state first: a patch that can never apply (no op, no path, an op
    // that is not one) is refused before anything is read or written.
    intents::apply_patches(&mut Map::new(), &patches)?;
    let who = actor(&headers);
    let store = shared.writer()?;
    let intent = blocking(move || {
        change_intent(&store, &intent_id, version, |intent| {
            let mut state = intent.state.clone();
            intents::apply_patches(&mut state, &patches)?;
            Ok(
                NewEvent::new(intent_id.as_str(), EventType::StatePatched, who.as_str())
                    .payload(json!({"patches": patches, "version": intent.version + 1})),
            )
        })
    })
    .await?;
    Ok(Json(intent_json(&intent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusUpdate {
    status: String,
    reason: Option<String>,
}

async fn set_status(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let version = if_match(&headers)?;
    let request: StatusUpdate = body(&bytes)?;
    check_status(&request.status)?;
    let who = actor(&headers);
    let store = shared.writer()?;
    let intent = blocking(move || {
        change_intent(&store, &intent_id, version, |intent| {
            let mut payload = Map::new();
            payload.insert("status".into(), request.status.clone().into());
            payload.insert("version".into(), (intent.version + 1).into());
            if let Some(reason) = &request.reason {
                payload.insert("reason".into(), reason.clone().into());
            }
            let payload = Value::Object(payload);
            Ok(
                NewEvent::new(intent_id.as_str(), EventType::StatusChanged, who.as_str())
                    .payload(payload),
            )
        })
    })
    .await?;
    Ok(Json(intent_json(&intent)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentAssign {
    agent_id: String,
    #[serde(default = "worker")]
    role: String,
}

fn worker() -> String {
    "worker".into()
}

fn agent_json(event: &Event) -> Value {
    json!({
        "id": event.id.to_string(),
        "intent_id": event.intent_id,
        "agent_id": event.payload.get("agent_id").cloned().unwrap_or(Value::Null),
        "role": event.payload.get("role").cloned().unwrap_or_else(|| "worker".into()),
        "assigned_at": event.created_at.to_rfc3339(),
    })
}

async fn assign_agent(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: AgentAssign = body(&bytes)?;
    if request.agent_id.is_empty() {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "agent_id is empty").field("agent_id"),
        );
    }
    let who = actor(&headers);
    let store = shared.writer()?;
    let event = blocking(move || {
        intent_in(&store.snapshot()?, &intent_id)?;
        Ok(store.append(
            NewEvent::new(intent_id.as_str(), EventType::AgentAssigned, who.as_str())
                .payload(json!({"agent_id": request.agent_id, "role": request.role})),
        )?)
    })
    .await?;
    Ok(Json(agent_json(&event)))
}

async fn list_agents(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    let agents = blocking(move || {
        read_intent(&store, &intent_id)?;
        let snapshot = store.snapshot()?;
        let mut agents = Vec::new();
        for event in snapshot.query_iter(
            &Query::new()
                .intent(intent_id.as_str())
                .event_type(EventType::AgentAssigned),
        )? {
            agents.push(agent_json(&event?));
        }
        Ok(agents)
    })
    .await?;
    Ok(Json(Value::Array(agents)))
}

/// The body of `POST /api/v1/intents/{id}/events` (the reference server's `EventCreate`, with
/// RFC-0020's trace fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventCreate {
    event_type: String,
    actor: Option<String>,
    #[serde(default)]
    payload: Map<String, Value>,
    trace_id: Option<String>,
    parent_event_id: Option<String>,
}

async fn log_event(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: EventCreate = body(&bytes)?;
    if request.event_type.is_empty() {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "event_type is empty")
                .field("event_type"),
        );
    }
    let who = request
        .actor
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| actor(&headers));
    let mut event = NewEvent::new(intent_id.as_str(), EventType::from(request.event_type), who)
        .payload(Value::Object(request.payload));
    if let Some(trace) = request.trace_id {
        event = event.trace_id(trace);
    }
    if let Some(parent) = request.parent_event_id {
        event = event.parent_event_id(parent);
    }
    let store = shared.writer()?;
    let known = shared.known.clone();
    let appended = blocking(move || {
        if !known.check(&store, &intent_id)? {
            return Err(ApiError::no_intent(&intent_id));
        }
        Ok(store.append(event)?)
    })
    .await?;
    Ok(Json(wire(&appended)))
}

async fn get_events(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    only(
        &params,
        &["event_type", "since", "until", "limit", "offset"],
    )?;
    let limit = number(&params, "limit", 100, 1, 1000)?;
    let offset = number(&params, "offset", 0, 0, usize::MAX)?;
    let mut query = Query::new().intent(intent_id.as_str());
    if let Some(event_type) = params.get("event_type").filter(|t| !t.is_empty()) {
        query = query.event_type(EventType::from(event_type.as_str()));
    }
    if let Some(since) = time(&params, "since")? {
        query = query.since(since);
    }
    if let Some(until) = time(&params, "until")? {
        query = query.until(until);
    }
    let store = shared.store.clone();
    let events =
        blocking(move || Ok(store.snapshot()?.events_json_array(&query, offset, limit)?)).await?;
    // Written straight from the stored records, without an event or a JSON tree in between.
    Ok(([(header::CONTENT_TYPE, "application/json")], events).into_response())
}

/// RFC-0020: `GET /api/v1/events?trace_id=...`, every event of a trace, across intents.
async fn events_of_trace(
    State(shared): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    only(&params, &["trace_id", "limit"])?;
    let trace = params.get("trace_id").cloned().ok_or_else(|| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "trace_id is required").field("trace_id")
    })?;
    let limit = number(&params, "limit", 1000, 1, 10_000)?;
    let store = shared.store.clone();
    let events = blocking(move || {
        let snapshot = store.snapshot()?;
        Ok(snapshot.events_json_array(&Query::new().trace(trace), 0, limit)?)
    })
    .await?;
    let body = [br#"{"events":"#.as_slice(), &events, b"}"].concat();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Every other path: 501 for one of OpenIntent's (`/api/v1/...`), 404 for any other.
async fn not_served(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/api/v1/") {
        return ApiError::not_served(method.as_str(), uri.path()).into_response();
    }
    ApiError::new(StatusCode::NOT_FOUND, format!("no route {}", uri.path())).into_response()
}
