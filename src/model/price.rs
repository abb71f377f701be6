//! Prices: the user's price table per (provider, model), and what an LLM request costs by it.
//!
//! Prices are in the table's currency (default `USD`) **per million tokens**. Usage is read the
//! way `OpenAI` reports it: `prompt_tokens` includes `cached_tokens`, and `completion_tokens`
//! includes `reasoning_tokens`. So a request costs
//!
//! ```text
//! ((prompt - cached) × input + cached × cached_input
//!   + (completion - reasoning) × output + reasoning × reasoning) / 1 000 000
//! ```
//!
//! where `cached_input` defaults to `input` and `reasoning` to `output`. A provider that reports
//! cache reads outside the prompt count (Anthropic) should be logged with `prompt_tokens`
//! including them.
//!
//! Uses only the model.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::amount::Amount;
use crate::model::cost::USD;
use crate::model::error::{Error, Result};
use crate::model::event::MAX_NAME_BYTES;
use crate::model::payload_fields;

/// The tokens of one LLM request, as `llm_request_completed` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Input tokens, cached ones included (`prompt_tokens`).
    pub prompt_tokens: u64,
    /// Output tokens, reasoning ones included (`completion_tokens`).
    pub completion_tokens: u64,
    /// Input tokens read from the provider's cache (`cached_tokens`).
    pub cached_tokens: u64,
    /// Output tokens spent on reasoning (`reasoning_tokens`).
    pub reasoning_tokens: u64,
}

impl TokenUsage {
    /// The usage an `llm_request_completed` payload reports; `None` when it reports neither
    /// `prompt_tokens` nor `completion_tokens`.
    #[must_use]
    pub fn from_payload(payload: &Value) -> Option<TokenUsage> {
        let prompt = payload_fields::count(payload, "prompt_tokens");
        let completion = payload_fields::count(payload, "completion_tokens");
        if prompt.is_none() && completion.is_none() {
            return None;
        }
        Some(TokenUsage {
            prompt_tokens: prompt.unwrap_or(0),
            completion_tokens: completion.unwrap_or(0),
            cached_tokens: payload_fields::count(payload, "cached_tokens").unwrap_or(0),
            reasoning_tokens: payload_fields::count(payload, "reasoning_tokens").unwrap_or(0),
        })
    }
}

/// The price of one model, in its table's currency per million tokens.
///
/// ```
/// use oidb::costs::{ModelPrice, TokenUsage};
///
/// let price = ModelPrice::new("openai", "gpt-4o", 2.5, 10.0).cached_input(1.25);
/// let usage = TokenUsage { prompt_tokens: 1_000_000, completion_tokens: 100_000, cached_tokens: 200_000, ..TokenUsage::default() };
/// // 800k × 2.5 + 200k × 1.25 + 100k × 10 per million
/// assert_eq!(price.cost(&usage).unwrap().to_string(), "3.25");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelPrice {
    /// The provider, exactly as LLM events name it (`openai`).
    pub provider: String,
    /// The model, exactly as LLM events name it (`gpt-4o`).
    pub model: String,
    /// Per million input tokens that were not cached.
    pub input_per_million: f64,
    /// Per million output tokens that were not reasoning.
    pub output_per_million: f64,
    /// Per million cached input tokens (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_million: Option<f64>,
    /// Per million reasoning tokens (default: the output price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_per_million: Option<f64>,
}

impl ModelPrice {
    /// A model's input and output prices per million tokens.
    #[must_use]
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        input_per_million: f64,
        output_per_million: f64,
    ) -> ModelPrice {
        ModelPrice {
            provider: provider.into(),
            model: model.into(),
            input_per_million,
            output_per_million,
            cached_input_per_million: None,
            reasoning_per_million: None,
        }
    }

    /// The price per million cached input tokens.
    #[must_use]
    pub fn cached_input(mut self, per_million: f64) -> ModelPrice {
        self.cached_input_per_million = Some(per_million);
        self
    }

    /// The price per million reasoning tokens.
    #[must_use]
    pub fn reasoning(mut self, per_million: f64) -> ModelPrice {
        self.reasoning_per_million = Some(per_million);
        self
    }

    /// What `usage` costs at this price, exact to 10⁻¹²; `None` if a price is not a valid
    /// amount. Usage is read as `OpenAI` reports it (cached tokens are part of the prompt,
    /// reasoning tokens part of the completion):
    ///
    /// ```text
    /// ((prompt - cached) × input + cached × cached_input
    ///   + (completion - reasoning) × output + reasoning × reasoning) / 1 000 000
    /// ```
    #[must_use]
    pub fn cost(&self, usage: &TokenUsage) -> Option<Amount> {
        let per_million = |price: f64| Amount::from_f64(price).map(Amount::picos);
        let input = per_million(self.input_per_million)?;
        let output = per_million(self.output_per_million)?;
        let cached_input = per_million(
            self.cached_input_per_million
                .unwrap_or(self.input_per_million),
        )?;
        let reasoning = per_million(
            self.reasoning_per_million
                .unwrap_or(self.output_per_million),
        )?;
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let thinking = usage.reasoning_tokens.min(usage.completion_tokens);
        let parts = [
            (usage.prompt_tokens - cached, input),
            (cached, cached_input),
            (usage.completion_tokens - thinking, output),
            (thinking, reasoning),
        ];
        let mut sum: i128 = 0;
        for (tokens, price) in parts {
            sum = sum.checked_add(i128::from(tokens).checked_mul(price)?)?;
        }
        // Round half up to a whole pico-unit.
        Some(Amount::from_picos((sum + 500_000) / 1_000_000))
    }

    fn check(&self, index: usize) -> Result<()> {
        let name = format!("models[{index}] ({}/{})", self.provider, self.model);
        for (field, value) in [("provider", &self.provider), ("model", &self.model)] {
            if value.is_empty() || value.len() > MAX_NAME_BYTES {
                return Err(invalid_price(format!(
                    "{name}: {field} must be a non-empty string of at most {MAX_NAME_BYTES} bytes"
                )));
            }
        }
        let prices = [
            ("input_per_million", Some(self.input_per_million)),
            ("output_per_million", Some(self.output_per_million)),
            ("cached_input_per_million", self.cached_input_per_million),
            ("reasoning_per_million", self.reasoning_per_million),
        ];
        for (field, value) in prices {
            if let Some(value) = value {
                if !(0.0..=MAX_PRICE_PER_MILLION).contains(&value) {
                    return Err(invalid_price(format!(
                        "{name}: {field} is {value}; a price is a number from 0 to {MAX_PRICE_PER_MILLION}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The largest price accepted, per million tokens (a sanity bound, not a business rule).
const MAX_PRICE_PER_MILLION: f64 = 1e9;

/// The error of a price table that cannot be used, saying why.
pub(crate) fn invalid_price(reason: String) -> Error {
    Error::InvalidPrices { reason }
}

/// The user's price table: what each (provider, model) costs, in `currency` per million tokens.
///
/// Its JSON form, for a price file:
///
/// ```json
/// {"currency": "USD", "models": [
///   {"provider": "openai", "model": "gpt-4o", "input_per_million": 2.5,
///    "output_per_million": 10.0, "cached_input_per_million": 1.25}
/// ]}
/// ```
///
/// ```
/// use oidb::costs::{ModelPrice, PriceTable};
///
/// let table = PriceTable::new("USD")
///     .with(ModelPrice::new("openai", "gpt-4o", 2.5, 10.0))
///     .with(ModelPrice::new("deepseek", "deepseek-chat", 0.27, 1.1));
/// # let store = oidb::Store::in_memory()?;
/// let version = store.set_prices(&table)?;
/// assert_eq!(version, 1);
/// # Ok::<(), oidb::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PriceTable {
    /// The unit of every price, and of the costs priced from it (default `USD`).
    #[serde(default = "usd")]
    pub currency: String,
    /// The prices, one per (provider, model).
    pub models: Vec<ModelPrice>,
}

fn usd() -> String {
    USD.to_owned()
}

impl PriceTable {
    /// An empty table in `currency`.
    #[must_use]
    pub fn new(currency: impl Into<String>) -> PriceTable {
        PriceTable {
            currency: currency.into(),
            models: Vec::new(),
        }
    }

    /// The table with one more model price.
    #[must_use]
    pub fn with(mut self, price: ModelPrice) -> PriceTable {
        self.models.push(price);
        self
    }

    /// Reads a table from its JSON form (see the type's docs), and checks it.
    ///
    /// # Errors
    /// [`Error::InvalidPrices`] saying where the JSON or a price is wrong.
    pub fn from_json(mut reader: impl Read) -> Result<PriceTable> {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| invalid_price(format!("cannot read the price table: {e}")))?;
        let table: PriceTable = serde_json::from_str(&text)
            .map_err(|e| invalid_price(format!("line {} column {}: {e}", e.line(), e.column())))?;
        table.check()?;
        Ok(table)
    }

    /// Checks every price: names non-empty, prices finite and not negative, no (provider, model)
    /// twice.
    ///
    /// # Errors
    /// [`Error::InvalidPrices`] naming the entry at fault.
    pub fn check(&self) -> Result<()> {
        if self.currency.is_empty() || self.currency.len() > MAX_NAME_BYTES {
            return Err(invalid_price(format!(
                "currency must be a non-empty string of at most {MAX_NAME_BYTES} bytes"
            )));
        }
        let mut seen = HashMap::new();
        for (index, price) in self.models.iter().enumerate() {
            price.check(index)?;
            if let Some(first) = seen.insert((&price.provider, &price.model), index) {
                return Err(invalid_price(format!(
                    "models[{index}] ({}/{}) repeats models[{first}]; keep one price per provider and model",
                    price.provider, price.model
                )));
            }
        }
        Ok(())
    }
}

/// One version of the price table, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PriceVersion {
    /// The version: 1 for the first table set, then one more for each.
    pub version: u64,
    /// When it was set.
    #[serde(with = "wire_time")]
    pub set_at: DateTime<Utc>,
    /// The prices.
    pub table: PriceTable,
}

mod wire_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::model::time::format(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        crate::model::time::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A price table loaded for pricing: the stored version and an index by (provider, model).
#[derive(Debug)]
pub(crate) struct LoadedPrices {
    pub(crate) version: u64,
    pub(crate) table: PriceTable,
    by_name: HashMap<(String, String), usize>,
    by_model: HashMap<String, Vec<usize>>,
}

impl LoadedPrices {
    pub(crate) fn decode(version: u64, bytes: &[u8]) -> Result<LoadedPrices> {
        let stored: PriceVersion = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
            position: 0,
            reason: format!("price table version {version}: {e}"),
        })?;
        Ok(LoadedPrices::new(stored.version, stored.table))
    }

    fn new(version: u64, table: PriceTable) -> LoadedPrices {
        let mut by_name = HashMap::new();
        let mut by_model: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, price) in table.models.iter().enumerate() {
            by_name.insert((price.provider.clone(), price.model.clone()), index);
            by_model.entry(price.model.clone()).or_default().push(index);
        }
        LoadedPrices {
            version,
            table,
            by_name,
            by_model,
        }
    }

    /// The price of `model` from `provider`; when the request names no provider, the model's
    /// price if exactly one provider has it.
    pub(crate) fn price(&self, provider: Option<&str>, model: &str) -> Option<&ModelPrice> {
        let index = match provider {
            Some(provider) => *self.by_name.get(&(provider.to_owned(), model.to_owned()))?,
            None => match self.by_model.get(model)?.as_slice() {
                [only] => *only,
                _ => return None,
            },
        };
        self.table.models.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cached_and_reasoning_tokens_have_their_own_price() {
        let price = ModelPrice::new("openai", "o3", 2.0, 8.0)
            .cached_input(0.5)
            .reasoning(16.0);
        let usage = TokenUsage {
            prompt_tokens: 3_000,
            completion_tokens: 2_000,
            cached_tokens: 1_000,
            reasoning_tokens: 500,
        };
        // 2000×2 + 1000×0.5 + 1500×8 + 500×16 = 4000 + 500 + 12000 + 8000 = 24500 per million
        assert_eq!(price.cost(&usage).unwrap().to_string(), "0.0245");
        // Defaults: cached at the input price, reasoning at the output price.
        let plain = ModelPrice::new("openai", "o3", 2.0, 8.0);
        assert_eq!(plain.cost(&usage).unwrap().to_string(), "0.022");
    }

    #[test]
    fn usage_is_read_from_openintent_keys() {
        let p = json!({"prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 2});
        let usage = TokenUsage::from_payload(&p).unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.reasoning_tokens
            ),
            (10, 2, 0)
        );
        assert_eq!(TokenUsage::from_payload(&json!({"total_tokens": 15})), None);
    }

    #[test]
    fn a_bad_table_is_refused_with_the_entry_named() {
        let reason = |table: &PriceTable| match table.check() {
            Err(Error::InvalidPrices { reason }) => reason,
            other => panic!("expected InvalidPrices, got {other:?}"),
        };
        let negative = PriceTable::new("USD").with(ModelPrice::new("openai", "gpt-4o", -1.0, 1.0));
        assert!(reason(&negative).contains("models[0] (openai/gpt-4o): input_per_million"));
        let twice = PriceTable::new("USD")
            .with(ModelPrice::new("openai", "gpt-4o", 1.0, 1.0))
            .with(ModelPrice::new("openai", "gpt-4o", 2.0, 1.0));
        assert!(reason(&twice).contains("repeats models[0]"));
        let nan = PriceTable::new("USD").with(ModelPrice::new("a", "b", 1.0, f64::NAN));
        assert!(reason(&nan).contains("output_per_million"));

        let err = PriceTable::from_json(
            r#"{"models": [{"provider": "a", "model": "b", "input": 1}]}"#.as_bytes(),
        );
        assert!(matches!(err, Err(Error::InvalidPrices { reason }) if reason.contains("line 1")));
    }

    #[test]
    fn a_model_without_provider_is_priced_only_when_unambiguous() {
        let table = PriceTable::new("USD")
            .with(ModelPrice::new("openai", "gpt-4o", 1.0, 1.0))
            .with(ModelPrice::new("azure", "gpt-4o", 2.0, 2.0))
            .with(ModelPrice::new("deepseek", "deepseek-chat", 1.0, 1.0));
        let loaded = LoadedPrices::new(1, table);
        assert!(loaded.price(None, "gpt-4o").is_none());
        assert_eq!(
            loaded.price(None, "deepseek-chat").unwrap().provider,
            "deepseek"
        );
        let azure = loaded.price(Some("azure"), "gpt-4o").unwrap();
        assert!((azure.input_per_million - 2.0).abs() < f64::EPSILON);
        assert!(loaded.price(Some("openai"), "gpt-5").is_none());
    }
}
