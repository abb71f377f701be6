//! Cost records (RFC-0009): what one cost is, how it is written as an event, and how it is read
//! back as OpenIntent's `IntentCost`.

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::engine::writer::MAX_NAME_BYTES;
use crate::model::amount::Amount;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::payload;
use crate::model::time;
use crate::store::handle::Store;
use crate::trace::TraceContext;

/// The event type of a cost record: one cost, kept in the log so it is chained and audited.
pub const COST_RECORDED: &str = "cost_recorded";

/// The unit of money oidb prices LLM requests in unless a price table names another.
pub const USD: &str = "USD";

/// What a cost was spent on (RFC-0009 `cost_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CostType {
    /// LLM token consumption (typical unit: tokens, or money for priced requests).
    Tokens,
    /// An external API invocation (typical unit: cents or dollars).
    ApiCall,
    /// Processing time (typical unit: seconds).
    Compute,
    /// Anything else.
    Custom,
}

impl CostType {
    /// Every cost type.
    pub const ALL: [CostType; 4] = [
        CostType::Tokens,
        CostType::ApiCall,
        CostType::Compute,
        CostType::Custom,
    ];

    /// The wire name: `tokens`, `api_call`, `compute` or `custom`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CostType::Tokens => "tokens",
            CostType::ApiCall => "api_call",
            CostType::Compute => "compute",
            CostType::Custom => "custom",
        }
    }

    /// Reads a wire name.
    #[must_use]
    pub fn parse(name: &str) -> Option<CostType> {
        CostType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for CostType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cost to record with [`Store::record_cost`].
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

fn checked_amount(value: f64) -> Result<Amount> {
    let amount = Amount::from_f64(value).ok_or_else(|| Error::InvalidEvent {
        field: "payload.amount",
        reason: format!("{value} is not an amount (a finite number up to 1e24)"),
    })?;
    if amount.is_negative() {
        return Err(Error::InvalidEvent {
            field: "payload.amount",
            reason: format!("{value} is negative; costs are zero or more"),
        });
    }
    Ok(amount)
}

/// A `cost_recorded` payload, checked: what the ledger sums.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedCost {
    pub(crate) agent_id: Option<String>,
    pub(crate) cost_type: CostType,
    pub(crate) amount: Amount,
    pub(crate) unit: String,
    pub(crate) provider: Option<String>,
    pub(crate) model: Option<String>,
}

impl RecordedCost {
    /// Reads a `cost_recorded` payload strictly: a cost the ledger cannot sum is refused.
    pub(crate) fn parse(payload: &Value) -> Result<RecordedCost> {
        let invalid = |field: &'static str, reason: String| Error::InvalidEvent { field, reason };
        let cost_type = match payload.get("cost_type") {
            Some(Value::String(s)) => CostType::parse(s).ok_or_else(|| {
                invalid(
                    "payload.cost_type",
                    format!("{s:?} is not one of tokens, api_call, compute, custom"),
                )
            })?,
            _ => {
                return Err(invalid(
                    "payload.cost_type",
                    "is missing; use tokens, api_call, compute or custom".into(),
                ))
            }
        };
        let amount = match payload.get("amount") {
            Some(Value::Number(n)) => checked_amount(n.as_f64().unwrap_or(f64::NAN))?,
            _ => {
                return Err(invalid(
                    "payload.amount",
                    "is missing or not a number".into(),
                ))
            }
        };
        let unit = match payload.get("unit") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_NAME_BYTES => s.clone(),
            _ => {
                return Err(invalid(
                    "payload.unit",
                    format!("must be a non-empty string of at most {MAX_NAME_BYTES} bytes, such as \"USD\" or \"tokens\""),
                ))
            }
        };
        let optional_name = |field: &'static str, value: Option<&Value>| match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_NAME_BYTES => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(invalid(
                field,
                format!("must be a non-empty string of at most {MAX_NAME_BYTES} bytes, or absent"),
            )),
        };
        let agent_id = optional_name("payload.agent_id", payload.get("agent_id"))?;
        let provider = optional_name("payload.provider", payload.get("provider"))?;
        let metadata = payload.get("metadata");
        if let Some(m) = metadata {
            if !m.is_object() && !m.is_null() {
                return Err(invalid(
                    "payload.metadata",
                    "must be a JSON object, or absent".into(),
                ));
            }
        }
        let model = metadata
            .and_then(|m| payload::text(m, "model"))
            .filter(|m| m.len() <= MAX_NAME_BYTES)
            .map(str::to_owned);
        Ok(RecordedCost {
            agent_id,
            cost_type,
            amount,
            unit,
            provider,
            model,
        })
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
    /// [`Error::InvalidEvent`] for a negative or non-finite amount or an empty unit;
    /// [`Error::BudgetExceeded`] when the cost would take the intent over its budget (see
    /// [`Store::set_budget`]): nothing of the cost is recorded then, and a `governance.violation`
    /// event is.
    pub fn record_cost(&self, intent_id: &str, cost: NewCost) -> Result<IntentCost> {
        let event = self.append(cost.into_event(intent_id, self.actor())?)?;
        IntentCost::from_recorded(&event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_cost_is_checked_field_by_field() {
        let ok = json!({"cost_type": "tokens", "amount": 1500, "unit": "tokens",
                        "provider": "openai", "metadata": {"model": "gpt-4"}});
        let cost = RecordedCost::parse(&ok).unwrap();
        assert_eq!(cost.model.as_deref(), Some("gpt-4"));
        assert_eq!(cost.amount, Amount::from_f64(1500.0).unwrap());

        let field_of = |payload: Value| match RecordedCost::parse(&payload) {
            Err(Error::InvalidEvent { field, .. }) => field,
            other => panic!("expected an invalid event, got {other:?}"),
        };
        assert_eq!(
            field_of(json!({"cost_type": "beer", "amount": 1, "unit": "USD"})),
            "payload.cost_type"
        );
        assert_eq!(
            field_of(json!({"cost_type": "custom", "amount": -1, "unit": "USD"})),
            "payload.amount"
        );
        assert_eq!(
            field_of(json!({"cost_type": "custom", "amount": "1", "unit": "USD"})),
            "payload.amount"
        );
        assert_eq!(
            field_of(json!({"cost_type": "custom", "amount": 1, "unit": ""})),
            "payload.unit"
        );
        assert_eq!(
            field_of(json!({"cost_type": "custom", "amount": 1, "unit": "USD", "metadata": 3})),
            "payload.metadata"
        );
    }
}
