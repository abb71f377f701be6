//! Budgets as the ledger keeps them: the row a `max_cost` policy sets, the alert threshold
//! arithmetic, and the `governance.violation` and `budget_alert` events the ledger appends.
//!
//! Uses the ledger's entries and the model.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::engine::ledger::CostEntry;
use crate::model::amount::Amount;
use crate::model::cost::{MAX_COST_RULE, USD};
use crate::model::error::{Error, Result};
use crate::model::event::{Event, NewEvent, DEFAULT_ACTOR, MAX_NAME_BYTES};
use crate::model::event_type::EventType;
use crate::model::payload_fields;

/// A budget as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BudgetRow {
    #[serde(with = "picos")]
    pub(crate) max_cost: Amount,
    pub(crate) unit: String,
    pub(crate) alert_percent: Option<f64>,
    pub(crate) alerted: bool,
    pub(crate) set_by: [u8; 16],
}

mod picos {
    use super::Amount;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(a: &Amount, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i128(a.picos())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        i128::deserialize(d).map(Amount::from_picos)
    }
}

const BUDGET_V1: u8 = 1;

impl BudgetRow {
    /// The budget a `max_cost` policy payload sets, checked strictly.
    pub(crate) fn parse(payload: &Value, set_by: Uuid) -> Result<BudgetRow> {
        let invalid = |field: &'static str, reason: String| Error::InvalidEvent { field, reason };
        let max_cost = payload_fields::number(payload, "max_cost")
            .and_then(Amount::from_f64)
            .filter(|a| !a.is_negative())
            .ok_or_else(|| {
                invalid(
                    "payload.max_cost",
                    "must be a number, zero or more, for a max_cost budget".into(),
                )
            })?;
        let unit = match payload.get("unit") {
            None | Some(Value::Null) => USD.to_owned(),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_NAME_BYTES => s.clone(),
            Some(_) => {
                return Err(invalid(
                    "payload.unit",
                    format!(
                    "must be a non-empty string of at most {MAX_NAME_BYTES} bytes (default USD)"
                ),
                ))
            }
        };
        let alert_percent = match payload.get("alert_threshold_percent") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_f64() {
                Some(p) if p > 0.0 && p <= 100.0 => Some(p),
                _ => {
                    return Err(invalid(
                        "payload.alert_threshold_percent",
                        format!("is {v}; it must be a number above 0 and at most 100"),
                    ))
                }
            },
        };
        Ok(BudgetRow {
            max_cost,
            unit,
            alert_percent,
            alerted: false,
            set_by: set_by.into_bytes(),
        })
    }

    /// The budget a `governance.policy_set` event with `"rule": "max_cost"` sets.
    pub(crate) fn from_policy(event: &Event) -> Result<BudgetRow> {
        BudgetRow::parse(&event.payload, event.id)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![BUDGET_V1];
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    pub(crate) fn decode(bytes: &[u8], intent_id: &str) -> Result<BudgetRow> {
        let corrupt = |reason: String| Error::Corrupt {
            position: 0,
            reason: format!("budget of intent {intent_id:?}: {reason}"),
        };
        match bytes.split_first() {
            Some((&BUDGET_V1, body)) => {
                postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))
            }
            Some((version, _)) => Err(corrupt(format!("unknown version {version}"))),
            None => Err(corrupt("empty row".into())),
        }
    }

    /// Whether a spend of `spent` reaches the alert threshold.
    pub(crate) fn alert_due(&self, spent: Amount) -> bool {
        let Some(percent) = self.alert_percent else {
            return false;
        };
        // spent ≥ max × percent / 100, exactly while it fits in i128 (budgets under ~10⁹ units).
        let percent_picos = Amount::from_f64(percent).map_or(0, Amount::picos);
        let exact = self.max_cost.picos().checked_mul(percent_picos).zip(
            spent
                .picos()
                .checked_mul(100 * Amount::from_f64(1.0).map_or(1, Amount::picos)),
        );
        match exact {
            Some((threshold, spent)) => spent >= threshold,
            None => spent.as_f64() * 100.0 >= self.max_cost.as_f64() * percent,
        }
    }
}

/// The `governance.violation` event of a refused cost.
pub(crate) fn violation_event(
    refused: &Event,
    entry: &CostEntry,
    budget: &BudgetRow,
    spent: Amount,
    attempted: Amount,
) -> NewEvent {
    let mut payload = Map::new();
    payload.insert("rule".into(), MAX_COST_RULE.into());
    payload.insert("max_cost".into(), json!(budget.max_cost));
    payload.insert("unit".into(), Value::String(budget.unit.clone()));
    payload.insert("spent".into(), json!(spent));
    payload.insert("attempted".into(), json!(attempted));
    payload.insert("refused_event_id".into(), refused.id.to_string().into());
    payload.insert(
        "refused_event_type".into(),
        refused.event_type.as_str().into(),
    );
    payload.insert("agent_id".into(), Value::String(entry.agent.clone()));
    if let Some(provider) = &entry.provider {
        payload.insert("provider".into(), Value::String(provider.clone()));
    }
    if let Some(model) = &entry.model {
        payload.insert("model".into(), Value::String(model.clone()));
    }
    payload.insert(
        "message".into(),
        format!(
            "refused a cost of {attempted} {unit}: the intent has spent {spent} {unit} of its max_cost {max} {unit}",
            unit = budget.unit,
            max = budget.max_cost
        )
        .into(),
    );
    let mut event = NewEvent::new(
        refused.intent_id.clone(),
        EventType::GovernanceViolation,
        DEFAULT_ACTOR,
    )
    .payload(Value::Object(payload));
    if let Some(trace_id) = &refused.trace_id {
        event = event.trace_id(trace_id.clone());
    }
    if let Some(parent) = &refused.parent_event_id {
        event = event.parent_event_id(parent.clone());
    }
    event
}

/// The `budget_alert` event written after the cost `cause` brought the spend to `spent`.
pub(crate) fn alert_event(cause: &Event, budget: &BudgetRow, spent: Amount) -> NewEvent {
    let percent_used = if budget.max_cost > Amount::ZERO {
        spent.as_f64() / budget.max_cost.as_f64() * 100.0
    } else {
        100.0
    };
    let mut event = NewEvent::new(
        cause.intent_id.clone(),
        EventType::BudgetAlert,
        DEFAULT_ACTOR,
    )
    .payload(json!({
        "rule": MAX_COST_RULE,
        "max_cost": budget.max_cost,
        "unit": budget.unit,
        "spent": spent,
        "alert_threshold_percent": budget.alert_percent,
        "percent_used": percent_used,
        "cost_event_id": cause.id.to_string(),
    }))
    .parent_event_id(cause.id.to_string());
    if let Some(trace_id) = &cause.trace_id {
        event = event.trace_id(trace_id.clone());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(max: f64, percent: Option<f64>) -> BudgetRow {
        BudgetRow {
            max_cost: Amount::from_f64(max).unwrap(),
            unit: USD.into(),
            alert_percent: percent,
            alerted: false,
            set_by: [0; 16],
        }
    }

    #[test]
    fn the_alert_is_due_exactly_at_the_threshold() {
        let budget = row(10.0, Some(80.0));
        assert!(!budget.alert_due(Amount::from_f64(7.999_999).unwrap()));
        assert!(budget.alert_due(Amount::from_f64(8.0).unwrap()));
        assert!(!row(10.0, None).alert_due(Amount::from_f64(10.0).unwrap()));
        // Too large for exact arithmetic: still decided.
        assert!(row(1e20, Some(50.0)).alert_due(Amount::from_f64(6e19).unwrap()));
    }

    #[test]
    fn a_policy_payload_is_checked() {
        let field_of = |payload: Value| match BudgetRow::parse(&payload, Uuid::nil()) {
            Err(Error::InvalidEvent { field, .. }) => field,
            other => panic!("expected an invalid event, got {other:?}"),
        };
        assert_eq!(field_of(json!({"rule": "max_cost"})), "payload.max_cost");
        assert_eq!(
            field_of(json!({"rule": "max_cost", "max_cost": -1})),
            "payload.max_cost"
        );
        assert_eq!(
            field_of(json!({"rule": "max_cost", "max_cost": 1, "unit": 3})),
            "payload.unit"
        );
        assert_eq!(
            field_of(json!({"rule": "max_cost", "max_cost": 1, "alert_threshold_percent": 150})),
            "payload.alert_threshold_percent"
        );
        let ok =
            BudgetRow::parse(&json!({"rule": "max_cost", "max_cost": 5}), Uuid::nil()).unwrap();
        assert_eq!(ok.unit, USD);
        let back = BudgetRow::decode(&ok.encode(), "i").unwrap();
        assert_eq!(back, ok);
    }
}
