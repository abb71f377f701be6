//! The values of cost records (RFC-0009): what a cost is spent on, the unit money is counted
//! in, and a `cost_recorded` payload read strictly, as the ledger sums it.
//!
//! Uses only the model.

use serde_json::Value;

use crate::model::amount::Amount;
use crate::model::error::{Error, Result};
use crate::model::event::MAX_NAME_BYTES;
use crate::model::payload_fields;

/// The event type of a cost record: one cost, kept in the log so it is chained and audited.
pub const COST_RECORDED: &str = "cost_recorded";

/// The unit of money oidb prices LLM requests in unless a price table names another.
pub const USD: &str = "USD";

/// The `rule` of budget policy and violation events.
pub const MAX_COST_RULE: &str = "max_cost";

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

pub(crate) fn checked_amount(value: f64) -> Result<Amount> {
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
            .and_then(|m| payload_fields::text(m, "model"))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
