//! Costs (RFC-0009), prices, budgets and usage analytics.
//!
//! - **Ledger.** [`Store::record_cost`](crate::Store::record_cost) writes a cost as a
//!   `cost_recorded` event; LLM requests (`llm_request_completed`) carry costs too, reported or
//!   priced. Every cost is summed into in-file totals *in the append's own transaction*, so
//!   [`Store::costs`](crate::Store::costs) and [`Store::cost_summary`](crate::Store::cost_summary)
//!   need no scan and cannot drift from the log. Amounts are exact decimals ([`Amount`]).
//! - **Prices.** [`Store::set_prices`](crate::Store::set_prices) keeps a versioned
//!   [`PriceTable`] in the file; LLM requests that report usage but no cost are priced by it,
//!   [`Store::recompute_costs`](crate::Store::recompute_costs) reprices them after a change, and a
//!   model without a price is reported as [`Unpriced`], never as zero.
//! - **Budgets.** [`Store::set_budget`](crate::Store::set_budget): a cost that would pass an
//!   intent's `max_cost` is refused and a `governance.violation` event is written; see [`budget`].
//! - **Usage analytics.** [`Store::usage_report`](crate::Store::usage_report): tokens, requests,
//!   error rates and latency percentiles of LLM requests and tool calls, grouped.
//!
//! ```
//! use oidb::costs::{Budget, CostQuery, CostType, ModelPrice, NewCost, PriceTable};
//! use oidb::EventType;
//! use serde_json::json;
//!
//! # let store = oidb::Store::in_memory()?;
//! store.set_prices(&PriceTable::new("USD").with(ModelPrice::new("openai", "gpt-4o", 2.5, 10.0)))?;
//! store.log_event("intent-42", EventType::LlmRequestCompleted, json!({
//!     "request_id": "r1", "provider": "openai", "model": "gpt-4o",
//!     "prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100, "duration_ms": 800,
//! }))?;
//! store.record_cost("intent-42", NewCost::new(CostType::ApiCall, 0.01, "USD"))?;
//!
//! let summary = store.cost_summary(&CostQuery::new().intent("intent-42"))?;
//! // 1000 × 2.5 / 1M + 100 × 10 / 1M + 0.01
//! assert_eq!(summary.total_in("USD").to_string(), "0.0135");
//! assert_eq!(summary.by_unit["USD"].by_model["gpt-4o"].to_string(), "0.0035");
//! # Ok::<(), oidb::Error>(())
//! ```
//!
//! Uses `model::amount`, `model::cost`, `model::price`.

pub mod analytics;
pub mod budget;
mod prices;
pub(crate) mod record;
mod summary;

pub use crate::model::amount::Amount;
pub use crate::model::cost::{CostType, COST_RECORDED, MAX_COST_RULE, USD};
pub use crate::model::price::{ModelPrice, PriceTable, PriceVersion, TokenUsage};
pub use analytics::{
    GroupBy, Latency, LlmUsage, TimeBucket, ToolUsage, UsageGroup, UsageQuery, UsageReport,
};
pub use budget::{Budget, BudgetStatus};
pub use prices::Recomputed;
pub use record::{IntentCost, NewCost};
pub use summary::{CostBucket, CostQuery, CostSummary, IntentCosts, UnitSummary, Unpriced};
