//! Budgets: a per-intent `max_cost` with an optional alert threshold, kept as policy events in
//! the log and enforced by the ledger inside the append's transaction.
//!
//! A budget is set by a `governance.policy_set` event with payload
//! `{"rule": "max_cost", "max_cost": 10.0, "unit": "USD", "alert_threshold_percent": 80}` and
//! removed by `governance.policy_removed` with `{"rule": "max_cost"}`; [`Store::set_budget`](crate::Store::set_budget) and
//! [`Store::remove_budget`](crate::Store::remove_budget) write them. Being events, budget changes are chained and audited,
//! and an import replays them in order, so it reaches the same decisions.
//!
//! **Refusal.** A cost (in the budget's unit) that would take the intent's spend over `max_cost`
//! is refused with [`Error::BudgetExceeded`](crate::Error::BudgetExceeded), and its request writes nothing. In the *same
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
//!
//! Uses `model::amount`, `model::cost`, `model::error`, `model::event`, `model::event_type`,
//! `engine::format`, `engine::ledger`, `engine::ledger::budget`, `store::handle`, `store::reads`,
//! `store::snapshot`.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use redb::ReadableTable;

use crate::engine::format::{COST_BUDGETS, COST_TOTALS};
use crate::engine::ledger::budget::BudgetRow;
use crate::engine::ledger::Dimension;
use crate::model::amount::Amount;
use crate::model::cost::USD;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::store::handle::Store;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

pub use crate::model::cost::MAX_COST_RULE;

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

impl Store {
    /// Sets `intent_id`'s budget (replacing any earlier one and re-arming its alert) by appending
    /// a `governance.policy_set` event by this store's actor; returns that event. See the
    /// [`budget`](crate::costs::budget) module for what a budget does.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`](crate::Error::InvalidEvent) for a negative or non-finite `max_cost`, an empty unit, or an alert
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
}

impl Snapshot {
    /// `intent_id`'s budget and its spend, if it has a budget.
    ///
    /// # Errors
    /// A storage error, or a damaged ledger row.
    pub fn budget(&self, intent_id: &str) -> Result<Option<BudgetStatus>> {
        let txn = self.txn();
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

read_on_handles! {
    /// `intent_id`'s budget and its spend, if it has a budget.
    fn budget(&self, intent_id: &str) -> Result<Option<BudgetStatus>>;
}
