//! Cost records (RFC-0009): what one cost is, how it is written as an event, and how it is read
//! back as OpenIntent's `IntentCost`.
//!
//! Uses `model::amount`, `model::cost`, `model::error`, `model::event`, `model::event_type`,
//! `model::time`, `store::handle`, `trace`.

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::amount::Amount;
use crate::model::cost::{checked_amount, CostType, RecordedCost, COST_RECORDED};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::time;
use crate::store::handle::Store;
use crate::trace::TraceContext;

/// A cost to record with [`Store::record_cost`](crate::Store::record_cost).
///
/// ```
/// use oidb::costs::{CostType, NewCost};
/// use serde_json::json;
///
/// let cost = NewCost::new(CostType::ApiCall, 0.25, "USD")
///     .agent("agent-research")
///     .provider("serpapi")
///     .metadata(json!({"query": "climate data"}));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct NewCost {
    cost_type: CostType,
    amount: f64,
    unit: String,
    agent_id: Option<String>,
    provider: Option<String>,
    metadata: Option<Value>,
    id: Option<Uuid>,
    recorded_at: Option<DateTime<Utc>>,
    trace: Option<TraceContext>,
}

impl NewCost {
    /// A cost of `amount` `unit` (`"USD"`, `"tokens"`, `"seconds"`, …), by the store's actor
    /// unless [`NewCost::agent`] names another.
    pub fn new(cost_type: CostType, amount: f64, unit: impl Into<String>) -> Self {
        NewCost {
            cost_type,
            amount,
            unit: unit.into(),
            agent_id: None,
            provider: None,
            metadata: None,
            id: None,
            recorded_at: None,
            trace: None,
        }
    }

    /// The agent that incurred the cost (also the event's actor).
    pub fn agent(mut self, agent_id: impl Into<String>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    /// Who was paid: `openai`, `anthropic`, …
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Anything else worth keeping, as a JSON object. A `"model"` key is summed by model.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Use this id (the event's id) instead of a new one; recording the same id twice records
    /// the cost once.
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// When the cost was incurred (default: now). This is the event's `created_at`.
    pub fn recorded_at(mut self, at: DateTime<Utc>) -> Self {
        self.recorded_at = Some(at);
        self
    }

    /// Record the cost inside a trace (RFC-0020).
    pub fn in_trace(mut self, context: &TraceContext) -> Self {
        self.trace = Some(context.clone());
        self
    }

    /// The event that records this cost in `intent_id`, by `default_actor` unless an agent is named.
    pub(crate) fn into_event(self, intent_id: &str, default_actor: &str) -> Result<NewEvent> {
        let amount = checked_amount(self.amount)?;
        let agent = self.agent_id.unwrap_or_else(|| default_actor.to_owned());
        let mut payload = Map::new();
        payload.insert("agent_id".into(), Value::String(agent.clone()));
        payload.insert("cost_type".into(), self.cost_type.as_str().into());
        payload.insert("amount".into(), json!(amount));
        payload.insert("unit".into(), Value::String(self.unit));
        if let Some(provider) = self.provider {
            payload.insert("provider".into(), Value::String(provider));
        }
        if let Some(metadata) = self.metadata {
            payload.insert("metadata".into(), metadata);
        }
        let mut event = NewEvent::new(intent_id, EventType::from(COST_RECORDED), agent)
            .payload(Value::Object(payload));
        if let Some(id) = self.id {
            event = event.id(id);
        }
        if let Some(at) = self.recorded_at {
            event = event.created_at(at);
        }
        if let Some(trace) = &self.trace {
            event = event.in_trace(trace);
        }
        // Checked here too, so a bad cost fails before it reaches the writer.
        RecordedCost::parse(&event.payload)?;
        Ok(event)
    }
}

/// One cost, as OpenIntent's `IntentCost` has it. Its JSON form is OpenIntent's `to_dict()`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IntentCost {
    /// The id of the event that carries the cost.
    pub id: Uuid,
    /// The intent the cost belongs to.
    pub intent_id: String,
    /// The agent that incurred it.
    pub agent_id: String,
    /// What it was spent on.
    pub cost_type: CostType,
    /// How much.
    pub amount: Amount,
    /// Of what: `USD`, `tokens`, `seconds`, …
    pub unit: String,
    /// Who was paid.
    pub provider: Option<String>,
    /// Everything else: for a recorded cost what was recorded with it; for an LLM request its
    /// model, token counts, `request_id`, and how it was priced (`"reported"` by the request, or
    /// from the price table version `price_version`).
    pub metadata: Value,
    /// When it was incurred (the event's `created_at`).
    pub recorded_at: DateTime<Utc>,
}

impl IntentCost {
    /// The cost a `cost_recorded` event carries.
    pub(crate) fn from_recorded(event: &Event) -> Result<IntentCost> {
        let cost = RecordedCost::parse(&event.payload)?;
        Ok(IntentCost {
            id: event.id,
            intent_id: event.intent_id.clone(),
            agent_id: cost.agent_id.unwrap_or_else(|| event.actor.clone()),
            cost_type: cost.cost_type,
            amount: cost.amount,
            unit: cost.unit,
            provider: cost.provider,
            metadata: event
                .payload
                .get("metadata")
                .filter(|m| m.is_object())
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
            recorded_at: event.created_at,
        })
    }
}

impl Serialize for IntentCost {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("intent_id", &self.intent_id)?;
        map.serialize_entry("agent_id", &self.agent_id)?;
        map.serialize_entry("cost_type", self.cost_type.as_str())?;
        map.serialize_entry("amount", &self.amount)?;
        map.serialize_entry("unit", &self.unit)?;
        map.serialize_entry("provider", &self.provider)?;
        map.serialize_entry("metadata", &self.metadata)?;
        map.serialize_entry("recorded_at", &time::format(self.recorded_at))?;
        map.end()
    }
}

impl Store {
    /// Records a cost (RFC-0009) in `intent_id`: a `cost_recorded` event, chained and audited like
    /// any other, summed into the intent's totals in the same transaction.
    ///
    /// ```
    /// use oidb::costs::{CostType, NewCost};
    /// # let store = oidb::Store::in_memory()?;
    /// store.record_cost("intent-42", NewCost::new(CostType::ApiCall, 0.25, "USD"))?;
    /// store.record_cost("intent-42", NewCost::new(CostType::ApiCall, 0.5, "USD"))?;
    /// let costs = store.costs("intent-42")?;
    /// assert_eq!(costs.costs.len(), 2);
    /// assert_eq!(costs.summary.total.to_string(), "0.75");
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidEvent`](crate::Error::InvalidEvent) for a negative or non-finite amount or an empty unit;
    /// [`Error::BudgetExceeded`](crate::Error::BudgetExceeded) when the cost would take the intent over its budget (see
    /// [`Store::set_budget`](crate::Store::set_budget)): nothing of the cost is recorded then, and a `governance.violation`
    /// event is.
    pub fn record_cost(&self, intent_id: &str, cost: NewCost) -> Result<IntentCost> {
        let event = self.append(cost.into_event(intent_id, self.actor())?)?;
        IntentCost::from_recorded(&event)
    }
}
