//! Intents as the server shows them: a projection of their events, rebuilt from the log on each
//! request. `intent_created` sets the intent up, `state_patched` applies its patches,
//! `status_changed` sets the status, `governance.policy_set` (with a `governance_policy`) sets
//! the policy, and each of those three moves the version on by one; `agent_assigned` adds an
//! agent. An intent whose events were written without an
//! `intent_created` (by the library, or imported) is shown with its id as its title.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `store::snapshot`,
//! `server::answer`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::error::Result;
use crate::model::event::{Event, Sequence};
use crate::model::event_type::EventType;
use crate::model::filter::Query;
use crate::server::answer::ApiError;
use crate::store::snapshot::Snapshot;

/// The event types an intent's projection is made of.
pub(crate) const PROJECTED: [EventType; 5] = [
    EventType::IntentCreated,
    EventType::StatePatched,
    EventType::StatusChanged,
    EventType::AgentAssigned,
    EventType::GovernancePolicySet,
];

/// An intent, as `IntentResponse` of the reference server writes it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Intent {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) created_by: String,
    pub(crate) parent_intent_id: Option<String>,
    pub(crate) depends_on: Vec<Value>,
    pub(crate) constraints: Value,
    pub(crate) state: Map<String, Value>,
    pub(crate) status: String,
    pub(crate) confidence: f64,
    pub(crate) version: u64,
    pub(crate) governance_policy: Option<Value>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    /// The agents assigned, in the order they were.
    #[serde(skip)]
    pub(crate) agents: Vec<String>,
}

/// An intent and the last sequence of its chain, for an append that must follow what was read.
pub(crate) struct Read {
    pub(crate) intent: Intent,
    pub(crate) last_sequence: Sequence,
}

/// The intent `intent_id` as `snapshot` has it, or `None` when it has no events.
///
/// # Errors
/// A storage error or a damaged record.
pub(crate) fn read(snapshot: &Snapshot, intent_id: &str) -> Result<Option<Read>> {
    let last = snapshot
        .query(&Query::new().intent(intent_id).newest_first().limit(1))?
        .events;
    let Some(last) = last.into_iter().next() else {
        return Ok(None);
    };
    let mut intent: Option<Intent> = None;
    for event in snapshot.query_iter(
        &Query::new()
            .intent(intent_id)
            .event_types(PROJECTED.iter().cloned()),
    )? {
        let event = event?;
        let current = intent.get_or_insert_with(|| untitled(&event));
        apply(current, &event);
    }
    let intent = match intent {
        Some(intent) => intent,
        None => {
            let first = snapshot
                .query(&Query::new().intent(intent_id).limit(1))?
                .events;
            untitled(first.first().unwrap_or(&last))
        }
    };
    Ok(Some(Read {
        intent,
        last_sequence: last.sequence,
    }))
}

/// An intent known only by its events: its id for a title, its first event's actor and time.
fn untitled(first: &Event) -> Intent {
    let at = first.created_at.to_rfc3339();
    Intent {
        id: first.intent_id.clone(),
        title: first.intent_id.clone(),
        description: String::new(),
        created_by: first.actor.clone(),
        parent_intent_id: None,
        depends_on: Vec::new(),
        constraints: Value::Object(Map::new()),
        state: Map::new(),
        status: "active".into(),
        confidence: 0.0,
        version: 1,
        governance_policy: None,
        created_at: at.clone(),
        updated_at: at,
        agents: Vec::new(),
    }
}

/// Folds one of the intent's projected events into it.
fn apply(intent: &mut Intent, event: &Event) {
    let payload = &event.payload;
    let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_owned);
    match &event.event_type {
        EventType::IntentCreated => {
            if let Some(title) = text("title") {
                intent.title = title;
            }
            intent.description = text("description").unwrap_or_default();
            intent.created_by = text("created_by").unwrap_or_else(|| event.actor.clone());
            intent.parent_intent_id = text("parent_intent_id");
            if let Some(Value::Array(depends)) = payload.get("depends_on") {
                intent.depends_on.clone_from(depends);
            }
            if let Some(constraints) = payload.get("constraints") {
                intent.constraints = constraints.clone();
            }
            if let Some(Value::Object(state)) = payload.get("state") {
                intent.state.clone_from(state);
            }
            intent.status = text("status").unwrap_or_else(|| "draft".into());
            intent.governance_policy = payload.get("governance_policy").cloned();
        }
        EventType::StatePatched => {
            if let Some(Value::Array(patches)) = payload.get("patches") {
                // Patches were checked before they were written; one that no longer applies
                // (written by another program) is passed over.
                let _ = apply_patches(&mut intent.state, patches);
            } else if let Some(Value::Object(state)) = payload.get("state") {
                intent.state.extend(state.clone());
            }
            intent.version += 1;
        }
        EventType::StatusChanged => {
            if let Some(status) = text("status") {
                intent.status = status;
            }
            intent.version += 1;
        }
        EventType::AgentAssigned => {
            if let Some(agent) = text("agent_id") {
                intent.agents.push(agent);
            }
        }
        // A policy set through the API carries it whole; the ledger's own budget events (a
        // `rule` and its `max_cost`) follow one of those, or come from the library, and change
        // neither the policy shown nor the version.
        EventType::GovernancePolicySet => match payload.get("governance_policy") {
            Some(policy) => {
                intent.governance_policy = Some(policy.clone())
                    .filter(|p| p.as_object().is_some_and(|members| !members.is_empty()));
                intent.version += 1;
            }
            None => return,
        },
        _ => {}
    }
    intent.updated_at = event.created_at.to_rfc3339();
}

/// Applies state patches as the reference server takes them: `{"op", "path", "value"}` with op
/// `set` (or `add`, `replace`), `remove`, or `append` (to a list); a path of member names split
/// by `/` (a leading `/` is allowed).
///
/// # Errors
/// 400 naming `patches` for an op or path it cannot apply.
pub(crate) fn apply_patches(
    state: &mut Map<String, Value>,
    patches: &[Value],
) -> std::result::Result<(), ApiError> {
    for (index, patch) in patches.iter().enumerate() {
        let bad = |what: &str| ApiError::bad("patches", format!("patch {index}: {what}"));
        let op = patch
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`op` is missing or not a string"))?;
        let path = patch
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`path` is missing or not a string"))?;
        let names: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (last, parents) = names
            .split_last()
            .filter(|(last, _)| !last.is_empty())
            .ok_or_else(|| bad("`path` is empty"))?;
        let mut target = &mut *state;
        for name in parents {
            let next = target
                .entry((*name).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            target = next
                .as_object_mut()
                .ok_or_else(|| bad(&format!("`{name}` in `{path}` is not an object")))?;
        }
        let value = || patch.get("value").cloned().unwrap_or(Value::Null);
        match op {
            "set" | "add" | "replace" => {
                target.insert((*last).to_owned(), value());
            }
            "remove" | "delete" => {
                target.remove(*last);
            }
            "append" => match target
                .entry((*last).to_owned())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(items) => items.push(value()),
                _ => return Err(bad(&format!("`{path}` is not a list to append to"))),
            },
            other => {
                return Err(bad(&format!(
                    "op {other:?} is not one of set, add, replace, remove, append"
                )))
            }
        }
    }
    Ok(())
}
