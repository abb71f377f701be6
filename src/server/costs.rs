//! Costs and governance (RFC-0009, RFC-0013) as the SDK's `record_cost`, `get_costs`,
//! `set_governance_policy` and `get_governance_policy` ask for them, over the store's own cost
//! ledger: a policy's `max_cost` is the intent's budget, checked in the append's transaction, so
//! two clients cannot both pass it; a cost over it is refused with 403 and `rule: max_cost`, and
//! leaves a `governance.violation` event, as the reference server does.
//!
//! Uses `costs::budget`, `costs::record`, `model::cost`, `model::error`, `model::event_type`,
//! `server::answer`, `server::intents`, `server::shared`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::costs::budget::Budget;
use crate::costs::record::{IntentCost, NewCost};
use crate::model::cost::CostType;
use crate::model::error::Error;
use crate::model::event_type::EventType;
use crate::server::answer::ApiError;
use crate::server::intents::Intent;
use crate::server::shared::{
    blocking, body, change_intent, if_match, intent_in, read_intent, Shared,
};

/// The body of `POST /api/v1/intents/{id}/costs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CostRecord {
    agent_id: Option<String>,
    cost_type: String,
    amount: f64,
    unit: String,
    provider: Option<String>,
    #[serde(default, alias = "cost_metadata")]
    metadata: Map<String, Value>,
}

fn cost_json(cost: &IntentCost) -> Value {
    json!({
        "id": cost.id.to_string(),
        "intent_id": cost.intent_id,
        "agent_id": cost.agent_id,
        "cost_type": cost.cost_type.as_str(),
        "amount": cost.amount.as_f64(),
        "unit": cost.unit,
        "provider": cost.provider,
        "metadata": cost.metadata,
        "cost_metadata": cost.metadata,
        "recorded_at": cost.recorded_at.to_rfc3339(),
    })
}

pub(crate) async fn record_cost(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: CostRecord = body(&bytes)?;
    let cost_type = CostType::parse(&request.cost_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "cost_type {:?} is not one of tokens, api_call, compute, custom",
                request.cost_type
            ),
        )
        .field("cost_type")
    })?;
    if !request.amount.is_finite() || request.amount < 0.0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount must be a finite number, 0 or more",
        )
        .field("amount"));
    }
    if request.unit.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unit is empty").field("unit"));
    }
    let mut cost = NewCost::new(cost_type, request.amount, request.unit)
        .metadata(Value::Object(request.metadata));
    if let Some(agent) = request.agent_id.filter(|a| !a.is_empty()) {
        cost = cost.agent(agent);
    }
    if let Some(provider) = request.provider {
        cost = cost.provider(provider);
    }
    let store = shared.writer()?;
    let recorded = blocking(move || {
        intent_in(&store.snapshot()?, &intent_id)?;
        store.record_cost(&intent_id, cost).map_err(|error| match error {
            Error::BudgetExceeded { .. } => {
                let message = error.to_string();
                ApiError::new(StatusCode::FORBIDDEN, message.clone())
                    .with(
                        "detail",
                        json!({"error": "governance_violation", "rule": "max_cost", "message": message}),
                    )
                    .field("amount")
            }
            other => other.into(),
        })
    })
    .await?;
    Ok(Json(cost_json(&recorded)))
}

pub(crate) async fn get_costs(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    let answer = blocking(move || {
        read_intent(&store, &intent_id)?;
        let costs = store.snapshot()?.costs(&intent_id)?;
        let amounts = |map: &std::collections::BTreeMap<String, crate::model::amount::Amount>| {
            map.iter()
                .map(|(k, v)| (k.clone(), json!(v.as_f64())))
                .collect::<Map<String, Value>>()
        };
        Ok(json!({
            "costs": costs.costs.iter().map(cost_json).collect::<Vec<_>>(),
            "summary": {
                "total": costs.summary.total.as_f64(),
                "by_type": amounts(&costs.summary.by_type),
                "by_agent": amounts(&costs.summary.by_agent),
                "count": costs.summary.count,
            },
        }))
    })
    .await?;
    Ok(Json(answer))
}

/// Checks a governance policy as the reference server does; 422 naming the member otherwise.
pub(crate) fn check_policy(policy: &Map<String, Value>) -> Result<Option<Budget>, ApiError> {
    let invalid = |field: &str, message: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).field(field)
    };
    let one_of = |name: &str, default: &str, allowed: &[&str]| -> Result<(), ApiError> {
        let value = policy.get(name).and_then(Value::as_str).unwrap_or(default);
        if policy.get(name).is_some_and(|v| !v.is_string()) || !allowed.contains(&value) {
            return Err(invalid(
                name,
                format!("{name} must be one of {}", allowed.join(", ")),
            ));
        }
        Ok(())
    };
    one_of(
        "completion_mode",
        "auto",
        &["auto", "require_approval", "quorum"],
    )?;
    one_of("write_scope", "any", &["any", "assigned_only"])?;
    if let Some(t) = policy.get("quorum_threshold") {
        if !t.as_f64().is_some_and(|t| t > 0.0 && t <= 1.0) {
            return Err(invalid(
                "quorum_threshold",
                "quorum_threshold must be a number above 0 and at most 1".into(),
            ));
        }
    }
    let Some(max_cost) = policy.get("max_cost") else {
        return Ok(None);
    };
    let Some(max_cost) = max_cost.as_f64().filter(|m| m.is_finite() && *m >= 0.0) else {
        return Err(invalid(
            "max_cost",
            "max_cost must be a non-negative number".into(),
        ));
    };
    let mut budget = Budget::new(max_cost);
    if let Some(unit) = policy.get("max_cost_unit") {
        let Some(unit) = unit.as_str().filter(|u| !u.is_empty()) else {
            return Err(invalid(
                "max_cost_unit",
                "max_cost_unit must be a unit name".into(),
            ));
        };
        budget = budget.unit(unit);
    }
    Ok(Some(budget))
}

pub(crate) async fn set_governance_policy(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let version = if_match(&headers)?;
    let policy: Map<String, Value> = body(&bytes)?;
    let budget = check_policy(&policy)?;
    let who = crate::server::shared::actor(&headers);
    let store = shared.writer()?;
    let intent: Intent = blocking(move || {
        let intent = change_intent(&store, &intent_id, version, |intent| {
            Ok(crate::model::event::NewEvent::new(
                intent_id.as_str(),
                EventType::GovernancePolicySet,
                who.as_str(),
            )
            .payload(json!({"governance_policy": policy, "version": intent.version + 1})))
        })?;
        // The budget the ledger checks each cost against, in the same order as the policy.
        match &budget {
            Some(budget) => store.set_budget(&intent_id, budget)?,
            None if store.budget(&intent_id)?.is_some() => store.remove_budget(&intent_id)?,
            None => return Ok(intent),
        };
        Ok(intent)
    })
    .await?;
    Ok(Json(serde_json::to_value(&intent).unwrap_or(Value::Null)))
}

pub(crate) async fn get_governance_policy(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = shared.store.clone();
    let intent = blocking(move || read_intent(&store, &intent_id)).await?;
    let policy = intent
        .governance_policy
        .clone()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let get = |name: &str, default: Value| policy.get(name).cloned().unwrap_or(default);
    Ok(Json(json!({
        "intent_id": intent.id,
        "governance_policy": policy,
        "effective_policy": {
            "completion_mode": get("completion_mode", json!("auto")),
            "write_scope": get("write_scope", json!("any")),
            "quorum_threshold": get("quorum_threshold", json!(0.6)),
            "allowed_agents": get("allowed_agents", json!([])),
            "max_cost": get("max_cost", Value::Null),
            "require_status_reason": get("require_status_reason", json!(false)),
        },
    })))
}
