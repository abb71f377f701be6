//! Budgets: a per-intent `max_cost` with an optional alert threshold, kept as policy events in
//! the log and enforced by the ledger inside the append's transaction.
//!
//! A budget is set by a `governance.policy_set` event with payload
//! `{"rule": "max_cost", "max_cost": 10.0, "unit": "USD", "alert_threshold_percent": 80}` and
//! removed by `governance.policy_removed` with `{"rule": "max_cost"}`; [`Store::set_budget`] and
//! [`Store::remove_budget`] write them. Being events, budget changes are chained and audited,
//! and an import replays them in order, so it reaches the same decisions.
//!
//! **Refusal.** A cost (in the budget's unit) that would take the intent's spend over `max_cost`
//! is refused with [`Error::BudgetExceeded`], and its request writes nothing. In the *same
//! transaction* the writer appends a `governance.violation` event
//! `{"rule": "max_cost", "max_cost", "unit", "spent", "attempted", "refused_event_id", …}` to the
//! intent, as its own internal request after the refused one: the refusal is on disk whenever
//! the caller sees the error, and the refused cost is never counted. Two appends cannot both
//! pass a budget, because every budget decision is made by the single writer, in order.
//!
//! **Alert.** When a counted cost first brings the spend to `alert_threshold_percent` of
//! `max_cost` or more, one `budget_alert` event is appended right after its request, in the same
//! transaction. Setting the budget again re-arms the alert. A `budget_alert` that arrives in the
//! same request as the crossing cost (an import replaying a log) is taken as the alert, so an
//! import does not write a second one.

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::record::USD;
use crate::engine::format::{COST_BUDGETS, COST_TOTALS};
use crate::engine::ledger::{CostEntry, Dimension};
use crate::engine::writer::MAX_NAME_BYTES;
use crate::model::amount::Amount;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::payload;
use crate::store::handle::Store;
use crate::store::handle::DEFAULT_ACTOR;

/// The `rule` of budget policy and violation events.
pub const MAX_COST_RULE: &str = "max_cost";

/// A budget for one intent: at most `max_cost` of `unit` (default `USD`), with an optional alert
/// when the spend reaches a percentage of it.
///
/// ```
/// use oidb::costs::{Budget, CostType, NewCost};
///
/// # let store = oidb::Store::in_memory()?;
/// store.set_budget("intent-42", &Budget::new(1.0).alert_at_percent(80.0))?;
/// store.record_cost("intent-42", NewCost::new(CostType::ApiCall, 0.9, "USD"))?; // alert written
/// let refused = store.record_cost("intent-42", NewCost::new(CostType::ApiCall, 0.2, "USD"));
/// assert!(matches!(refused, Err(oidb::Error::BudgetExceeded { .. })));
/// let status = store.budget("intent-42")?.unwrap();
/// assert_eq!(status.spent.to_string(), "0.9");
/// assert!(status.alerted);
/// # Ok::<(), oidb::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Budget {
    max_cost: f64,
    unit: String,
    alert_threshold_percent: Option<f64>,
}

impl Budget {
    /// At most `max_cost` USD.
    pub fn new(max_cost: f64) -> Budget {
        Budget {
            max_cost,
            unit: USD.to_owned(),
            alert_threshold_percent: None,
        }
    }

    /// The unit the budget counts (default `USD`); costs in other units do not count against it.
    pub fn unit(mut self, unit: impl Into<String>) -> Budget {
        self.unit = unit.into();
        self
    }

    /// Write one `budget_alert` event when the spend reaches `percent` of `max_cost`.
    pub fn alert_at_percent(mut self, percent: f64) -> Budget {
        self.alert_threshold_percent = Some(percent);
        self
    }

    fn payload(&self) -> Value {
        let mut payload = Map::new();
        payload.insert("rule".into(), MAX_COST_RULE.into());
        payload.insert("max_cost".into(), json!(self.max_cost));
        payload.insert("unit".into(), Value::String(self.unit.clone()));
        if let Some(percent) = self.alert_threshold_percent {
            payload.insert("alert_threshold_percent".into(), json!(percent));
        }
        Value::Object(payload)
    }
}

/// An intent's budget and what it has spent against it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BudgetStatus {
    /// The most the intent may spend.
    pub max_cost: Amount,
    /// The unit of `max_cost`; only costs in this unit count.
    pub unit: String,
    /// The alert threshold, in percent of `max_cost`.
    pub alert_threshold_percent: Option<f64>,
    /// What the intent has spent in `unit`.
    pub spent: Amount,
    /// `max_cost - spent`: below zero if the budget was lowered under the spend.
    pub remaining: Amount,
    /// Whether the alert was written for this budget.
    pub alerted: bool,
    /// The policy event that set the budget.
    pub set_by: Uuid,
}

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
    fn parse(payload: &Value, set_by: Uuid) -> Result<BudgetRow> {
        let invalid = |field: &'static str, reason: String| Error::InvalidEvent { field, reason };
        let max_cost = payload::number(payload, "max_cost")
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

impl Store {
    /// Sets `intent_id`'s budget (replacing any earlier one and re-arming its alert) by appending
    /// a `governance.policy_set` event by this store's actor; returns that event. See the
    /// [`budget`](crate::costs::budget) module for what a budget does.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] for a negative or non-finite `max_cost`, an empty unit, or an alert
    /// threshold outside (0, 100]; a storage error.
    pub fn set_budget(&self, intent_id: &str, budget: &Budget) -> Result<Event> {
        let payload = budget.payload();
        BudgetRow::parse(&payload, Uuid::nil())?;
        self.append(
            NewEvent::new(intent_id, EventType::GovernancePolicySet, self.actor()).payload(payload),
        )
    }

    /// Removes `intent_id`'s budget by appending a `governance.policy_removed` event
    /// `{"rule": "max_cost"}`; returns that event.
    ///
    /// # Errors
    /// A storage error.
    pub fn remove_budget(&self, intent_id: &str) -> Result<Event> {
        self.append(
            NewEvent::new(intent_id, EventType::GovernancePolicyRemoved, self.actor())
                .payload(json!({"rule": MAX_COST_RULE})),
        )
    }

    /// `intent_id`'s budget and its spend, if it has a budget.
    ///
    /// # Errors
    /// A storage error, or a damaged ledger row.
    pub fn budget(&self, intent_id: &str) -> Result<Option<BudgetStatus>> {
        let txn = self.inner().db.begin_read()?;
        let budgets = match txn.open_table(COST_BUDGETS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(row) = budgets.get(intent_id)? else {
            return Ok(None);
        };
        let row = BudgetRow::decode(row.value(), intent_id)?;
        let totals = txn.open_table(COST_TOTALS)?;
        let spent = totals
            .get((intent_id, row.unit.as_str(), Dimension::Total as u8, ""))?
            .map_or(Amount::ZERO, |g| Amount::from_picos(g.value().0));
        Ok(Some(BudgetStatus {
            max_cost: row.max_cost,
            remaining: row.max_cost - spent,
            unit: row.unit,
            alert_threshold_percent: row.alert_percent,
            spent,
            alerted: row.alerted,
            set_by: Uuid::from_bytes(row.set_by),
        }))
    }
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
