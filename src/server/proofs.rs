//! RFC-0019's proofs over the served file: an intent's chain verified, checkpoints listed and
//! read, an event's Merkle inclusion proof (one the SDK's `MerkleProof.verify()` accepts), and
//! the consistency of two checkpoints. Where the reference server answers each with a stub that
//! says "valid", these recompute from the log.
//!
//! oidb adds `POST /api/v1/checkpoints` (`{"intent_id": ...}` or `{"scope": "store"}`), since
//! the SDK has no call that makes one.
//!
//! Uses `audit::checkpoint`, `model::error`, `server::answer`, `server::shared`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query as Params, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::audit::checkpoint::CheckpointScope;
use crate::model::error::Error;
use crate::server::answer::ApiError;
use crate::server::shared::{blocking, body, intent_in, read_intent, Shared};

fn to_json<T: serde::Serialize>(value: &T) -> Json<Value> {
    Json(serde_json::to_value(value).unwrap_or(Value::Null))
}

/// 404 for a checkpoint or event that is not there, naming which; the rest as usual.
fn not_found_by_name(error: Error) -> ApiError {
    match &error {
        Error::CheckpointNotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, error.to_string()).field("checkpoint_id")
        }
        Error::EventNotFound(_) | Error::NotInCheckpoint { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, error.to_string()).field("event_id")
        }
        _ => error.into(),
    }
}

pub(crate) async fn verify_chain(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    let verification = blocking(move || {
        read_intent(&store, &intent_id)?;
        Ok(store.snapshot()?.verify_chain(&intent_id)?)
    })
    .await?;
    Ok(to_json(&verification))
}

/// A scope from `intent_id` and `scope` (`intent`, `store`, or OpenIntent's `server`).
fn scope_of(
    intent_id: Option<&String>,
    scope: Option<&String>,
) -> Result<Option<CheckpointScope>, ApiError> {
    match (intent_id, scope.map(String::as_str)) {
        (Some(intent), None | Some("intent")) => Ok(Some(CheckpointScope::intent(intent.as_str()))),
        (None, Some("store" | "server")) => Ok(Some(CheckpointScope::Store)),
        (None, None) => Ok(None),
        (None, Some("intent")) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an intent scope needs intent_id",
        )
        .field("intent_id")),
        (_, Some(other)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("scope {other:?} is not intent or store (without intent_id)"),
        )
        .field("scope")),
    }
}

pub(crate) async fn list_checkpoints(
    State(shared): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(unknown) = params.keys().find(|k| *k != "intent_id" && *k != "scope") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("unknown parameter {unknown:?}; this route takes intent_id, scope"),
        )
        .field(unknown));
    }
    let scope = scope_of(params.get("intent_id"), params.get("scope"))?;
    let store = shared.store.clone();
    let checkpoints = blocking(move || {
        let snapshot = store.snapshot()?;
        Ok(match &scope {
            Some(scope) => snapshot.checkpoints(scope)?,
            None => snapshot.all_checkpoints()?,
        })
    })
    .await?;
    Ok(to_json(&checkpoints))
}

pub(crate) async fn get_checkpoint(
    State(shared): State<Shared>,
    Path(checkpoint_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    let checkpoint = blocking(move || {
        store
            .snapshot()?
            .checkpoint(&checkpoint_id)
            .map_err(not_found_by_name)
    })
    .await?;
    Ok(to_json(&checkpoint))
}

pub(crate) async fn merkle_proof(
    State(shared): State<Shared>,
    Path((checkpoint_id, event_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let event_id = Uuid::parse_str(&event_id).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("event id {event_id:?} is not a UUID"),
        )
        .field("event_id")
    })?;
    let store = shared.store.clone();
    let proof = blocking(move || {
        store
            .snapshot()?
            .inclusion_proof(&checkpoint_id, event_id)
            .map_err(not_found_by_name)
    })
    .await?;
    Ok(to_json(&proof))
}

pub(crate) async fn consistency(
    State(shared): State<Shared>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let wanted = |name: &str| {
        params.get(name).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{name} is required"),
            )
            .field(name)
        })
    };
    let from = wanted("from_checkpoint")?;
    let to = wanted("to_checkpoint")?;
    let store = shared.store.clone();
    let proof = blocking(move || {
        store
            .snapshot()?
            .consistency(&from, &to)
            .map_err(not_found_by_name)
    })
    .await?;
    Ok(to_json(&proof))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointCreate {
    intent_id: Option<String>,
    scope: Option<String>,
}

/// `POST /api/v1/checkpoints`: seals what the scope's last checkpoint left out. 201 with the
/// checkpoint, or 200 with `null` when there was nothing new to seal.
pub(crate) async fn create_checkpoint(
    State(shared): State<Shared>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: CheckpointCreate = body(&bytes)?;
    let scope = scope_of(request.intent_id.as_ref(), request.scope.as_ref())?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give intent_id, or scope \"store\"",
        )
        .field("intent_id")
    })?;
    let store = shared.writer()?;
    let made = blocking(move || {
        if let Some(intent) = scope.intent_id() {
            intent_in(&store.snapshot()?, intent)?;
        }
        Ok(store.create_checkpoint(&scope)?)
    })
    .await?;
    Ok(match made {
        Some(checkpoint) => (StatusCode::CREATED, to_json(&checkpoint)),
        None => (StatusCode::OK, Json(Value::Null)),
    })
}
