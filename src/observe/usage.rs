//! Token usage, read from the response JSON of `OpenAI`, Anthropic and Gemini, or from
//! OpenTelemetry GenAI attributes, into one [`Usage`].
//!
//! Uses nothing else in the crate.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Token counts of one model call. `None` means the provider did not say.
///
/// The shapes differ in what they count: Anthropic's `input_tokens` leaves out the tokens read
/// from or written to its prompt cache, `OpenAI`'s `prompt_tokens` includes cached ones, Gemini
/// counts thinking apart from the answer. [`Usage`] reads them all one way, `OpenAI`'s:
///
/// - `prompt_tokens`: every input token, cached ones included;
/// - `completion_tokens`: every output token, reasoning ones included;
/// - `cached_tokens`: input tokens read from a cache (part of `prompt_tokens`);
/// - `cache_creation_tokens`: input tokens written to a cache (part of `prompt_tokens`);
/// - `reasoning_tokens`: output tokens spent on reasoning (part of `completion_tokens`);
/// - `total_tokens`: as the provider reported it; [`Usage::total`] adds prompt and completion
///   when it did not.
///
/// A response without usage is not an error: the readers answer `None`.
///
/// ```
/// use oidb::Usage;
/// use serde_json::json;
///
/// let response = json!({
///     "type": "message",
///     "usage": {"input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 7}
/// });
/// let usage = Usage::from_response(&response).unwrap();
/// assert_eq!(usage.prompt_tokens, Some(120));
/// assert_eq!(usage.cached_tokens, Some(100));
/// assert_eq!(usage.total(), Some(127));
/// assert_eq!(Usage::from_response(&json!({"choices": []})), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Every input token, cached ones included.
    pub prompt_tokens: Option<u64>,
    /// Every output token, reasoning ones included.
    pub completion_tokens: Option<u64>,
    /// The total the provider reported (see [`Usage::total`]).
    pub total_tokens: Option<u64>,
    /// Input tokens read from the provider's prompt cache.
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the provider's prompt cache (Anthropic, OpenTelemetry).
    pub cache_creation_tokens: Option<u64>,
    /// Output tokens spent on reasoning or thinking.
    pub reasoning_tokens: Option<u64>,
}

/// Which provider's shape a usage was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UsageShape {
    /// `OpenAI` Chat Completions: `usage.prompt_tokens`, `completion_tokens`, `total_tokens`,
    /// `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`.
    OpenAiChat,
    /// `OpenAI` Responses: `usage.input_tokens`, `output_tokens`, `total_tokens`,
    /// `input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`.
    OpenAiResponses,
    /// Anthropic Messages: `usage.input_tokens`, `output_tokens`, `cache_read_input_tokens`,
    /// `cache_creation_input_tokens`.
    Anthropic,
    /// Gemini: `usageMetadata.promptTokenCount`, `candidatesTokenCount`, `totalTokenCount`,
    /// `cachedContentTokenCount`, `thoughtsTokenCount` (or their `snake_case` forms).
    Gemini,
    /// OpenTelemetry GenAI attributes: `gen_ai.usage.input_tokens`, `output_tokens`,
    /// `cache_read.input_tokens`, `cache_creation.input_tokens`, `reasoning.output_tokens`.
    OtelGenAi,
}

impl Usage {
    /// Reads the usage of any response this module knows, finding where it sits: a whole
    /// response (`usage`, `usageMetadata`), a streaming event that carries one (Anthropic's
    /// `message_start` under `message.usage`, `OpenAI` Responses' `response.completed` under
    /// `response.usage`), a bare usage object, or OpenTelemetry attributes (flat, under
    /// `attributes`, or an OTLP `[{key, value}]` list).
    ///
    /// `None` when there is no usage in it (not an error).
    #[must_use]
    pub fn from_response(response: &Value) -> Option<Usage> {
        Usage::detect(response).map(|(usage, _)| usage)
    }

    /// As [`Usage::from_response`], saying which shape it found.
    #[must_use]
    pub fn detect(response: &Value) -> Option<(Usage, UsageShape)> {
        if let Some(found) = otel_attributes(response).and_then(|attrs| {
            Usage::from_otel_attributes(&attrs).map(|u| (u, UsageShape::OtelGenAi))
        }) {
            return Some(found);
        }
        let Value::Object(object) = response else {
            return None;
        };
        if let Some(metadata) = object
            .get("usageMetadata")
            .or_else(|| object.get("usage_metadata"))
        {
            return gemini(metadata).map(|u| (u, UsageShape::Gemini));
        }
        let nested = object
            .get("usage")
            .or_else(|| object.get("message").and_then(|m| m.get("usage")))
            .or_else(|| object.get("response").and_then(|r| r.get("usage")));
        match nested {
            Some(usage) => usage_object(usage),
            None => usage_object(response),
        }
    }

    /// Reads an `OpenAI` response (Chat Completions or Responses API, whole or its final stream
    /// chunk). `None` when it carries no usage.
    #[must_use]
    pub fn from_openai(response: &Value) -> Option<Usage> {
        let usage = response
            .get("usage")
            .or_else(|| response.get("response")?.get("usage"))?;
        if usage.get("prompt_tokens").is_some() || usage.get("completion_tokens").is_some() {
            openai_chat(usage)
        } else {
            openai_responses(usage)
        }
    }

    /// Reads an Anthropic Messages response, or a `message_start` / `message_delta` stream
    /// event. `None` when it carries no usage.
    #[must_use]
    pub fn from_anthropic(response: &Value) -> Option<Usage> {
        let usage = response
            .get("usage")
            .or_else(|| response.get("message")?.get("usage"))?;
        anthropic(usage)
    }

    /// Reads a Gemini `GenerateContentResponse` (camelCase as the REST API writes it, or
    /// `snake_case` as the Python SDK dumps it). `None` when it carries no usage.
    #[must_use]
    pub fn from_gemini(response: &Value) -> Option<Usage> {
        gemini(
            response
                .get("usageMetadata")
                .or_else(|| response.get("usage_metadata"))?,
        )
    }

    /// Reads OpenTelemetry GenAI span attributes: a flat object (`{"gen_ai.usage.input_tokens":
    /// 12}`), a span with such `attributes`, or OTLP JSON (`[{"key": …, "value": {"intValue":
    /// "12"}}]`, alone or as a span's `attributes`). The older `gen_ai.usage.prompt_tokens` and
    /// `completion_tokens` are read too. `None` when there is no usage attribute.
    #[must_use]
    pub fn from_otel_genai(attributes: &Value) -> Option<Usage> {
        Usage::from_otel_attributes(&otel_attributes(attributes)?)
    }

    fn from_otel_attributes(attrs: &Map<String, Value>) -> Option<Usage> {
        let get = |key: &str| attrs.get(key).and_then(count);
        let usage = Usage {
            prompt_tokens: get("gen_ai.usage.input_tokens")
                .or_else(|| get("gen_ai.usage.prompt_tokens")),
            completion_tokens: get("gen_ai.usage.output_tokens")
                .or_else(|| get("gen_ai.usage.completion_tokens")),
            total_tokens: get("gen_ai.usage.total_tokens"),
            cached_tokens: get("gen_ai.usage.cache_read.input_tokens"),
            cache_creation_tokens: get("gen_ai.usage.cache_creation.input_tokens"),
            reasoning_tokens: get("gen_ai.usage.reasoning.output_tokens"),
        };
        usage.found()
    }

    /// The total: as reported, or prompt plus completion when the provider gave no total.
    #[must_use]
    pub fn total(&self) -> Option<u64> {
        self.total_tokens.or_else(|| {
            self.prompt_tokens
                .zip(self.completion_tokens)
                .map(|(p, c)| p.saturating_add(c))
        })
    }

    /// Whether no count is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// Takes every count `later` knows, keeping the others: how a stream's usage builds up
    /// (Anthropic reports input tokens at the start and output tokens at the end).
    pub fn merge(&mut self, later: &Usage) {
        let take = |mine: &mut Option<u64>, theirs: Option<u64>| {
            if theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.prompt_tokens, later.prompt_tokens);
        take(&mut self.completion_tokens, later.completion_tokens);
        take(&mut self.total_tokens, later.total_tokens);
        take(&mut self.cached_tokens, later.cached_tokens);
        take(&mut self.cache_creation_tokens, later.cache_creation_tokens);
        take(&mut self.reasoning_tokens, later.reasoning_tokens);
    }

    fn found(self) -> Option<Usage> {
        (!self.is_empty()).then_some(self)
    }
}

/// A usage object of unknown provider: told apart by its keys.
fn usage_object(usage: &Value) -> Option<(Usage, UsageShape)> {
    let has = |key: &str| usage.get(key).is_some();
    if has("prompt_tokens") || has("completion_tokens") {
        return openai_chat(usage).map(|u| (u, UsageShape::OpenAiChat));
    }
    if has("promptTokenCount") || has("prompt_token_count") || has("candidatesTokenCount") {
        return gemini(usage).map(|u| (u, UsageShape::Gemini));
    }
    if has("input_tokens") || has("output_tokens") {
        // Both `OpenAI` Responses and Anthropic say input_tokens/output_tokens; only `OpenAI` gives
        // a total or token details, only Anthropic gives cache counts at the top.
        if has("total_tokens") || has("input_tokens_details") || has("output_tokens_details") {
            return openai_responses(usage).map(|u| (u, UsageShape::OpenAiResponses));
        }
        return anthropic(usage).map(|u| (u, UsageShape::Anthropic));
    }
    None
}

fn openai_chat(usage: &Value) -> Option<Usage> {
    Usage {
        prompt_tokens: field(usage, "prompt_tokens"),
        completion_tokens: field(usage, "completion_tokens"),
        total_tokens: field(usage, "total_tokens"),
        cached_tokens: usage
            .get("prompt_tokens_details")
            .and_then(|d| field(d, "cached_tokens")),
        cache_creation_tokens: None,
        reasoning_tokens: usage
            .get("completion_tokens_details")
            .and_then(|d| field(d, "reasoning_tokens")),
    }
    .found()
}

fn openai_responses(usage: &Value) -> Option<Usage> {
    Usage {
        prompt_tokens: field(usage, "input_tokens"),
        completion_tokens: field(usage, "output_tokens"),
        total_tokens: field(usage, "total_tokens"),
        cached_tokens: usage
            .get("input_tokens_details")
            .and_then(|d| field(d, "cached_tokens")),
        cache_creation_tokens: None,
        reasoning_tokens: usage
            .get("output_tokens_details")
            .and_then(|d| field(d, "reasoning_tokens")),
    }
    .found()
}

fn anthropic(usage: &Value) -> Option<Usage> {
    let uncached = field(usage, "input_tokens");
    let cache_read = field(usage, "cache_read_input_tokens");
    let cache_creation = field(usage, "cache_creation_input_tokens");
    Usage {
        // Anthropic's input_tokens counts only what came after the last cache breakpoint.
        prompt_tokens: uncached.map(|n| {
            n.saturating_add(cache_read.unwrap_or(0))
                .saturating_add(cache_creation.unwrap_or(0))
        }),
        completion_tokens: field(usage, "output_tokens"),
        total_tokens: None,
        cached_tokens: cache_read,
        cache_creation_tokens: cache_creation,
        reasoning_tokens: None,
    }
    .found()
}

fn gemini(metadata: &Value) -> Option<Usage> {
    let get = |camel: &str, snake: &str| field(metadata, camel).or_else(|| field(metadata, snake));
    let candidates = get("candidatesTokenCount", "candidates_token_count");
    let thoughts = get("thoughtsTokenCount", "thoughts_token_count");
    Usage {
        prompt_tokens: get("promptTokenCount", "prompt_token_count"),
        // Gemini counts thinking apart from the answer; both are output.
        completion_tokens: match (candidates, thoughts) {
            (None, None) => None,
            (c, t) => Some(c.unwrap_or(0).saturating_add(t.unwrap_or(0))),
        },
        total_tokens: get("totalTokenCount", "total_token_count"),
        cached_tokens: get("cachedContentTokenCount", "cached_content_token_count"),
        cache_creation_tokens: None,
        reasoning_tokens: thoughts,
    }
    .found()
}

/// A flat map of OpenTelemetry attributes, from any of the shapes [`Usage::from_otel_genai`]
/// reads; `None` when there is no `gen_ai.usage.*` key in it.
fn otel_attributes(value: &Value) -> Option<Map<String, Value>> {
    let flat = match value {
        Value::Object(object) => match object.get("attributes") {
            Some(Value::Object(attrs)) => attrs.clone(),
            Some(Value::Array(list)) => otlp_list(list),
            _ => object.clone(),
        },
        Value::Array(list) => otlp_list(list),
        _ => return None,
    };
    flat.keys()
        .any(|k| k.starts_with("gen_ai.usage."))
        .then_some(flat)
}

/// OTLP JSON's `[{"key": "k", "value": {"intValue": "12"}}]` as `{"k": "12"}`.
fn otlp_list(list: &[Value]) -> Map<String, Value> {
    list.iter()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?;
            let value = kv.get("value")?;
            let inner = ["intValue", "doubleValue", "stringValue"]
                .iter()
                .find_map(|k| value.get(*k))
                .unwrap_or(value);
            Some((key.to_owned(), inner.clone()))
        })
        .collect()
}

fn field(object: &Value, key: &str) -> Option<u64> {
    object.get(key).and_then(count)
}

/// A token count: a non-negative integer, a float without a fraction, or a decimal string (OTLP
/// JSON writes 64-bit integers as strings). Anything else is not a count.
fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            let f = n.as_f64()?;
            #[allow(clippy::cast_sign_loss)] // checked non-negative and integral just before
            (f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_are_read_leniently_but_never_invented() {
        assert_eq!(count(&json!(12)), Some(12));
        assert_eq!(count(&json!(12.0)), Some(12));
        assert_eq!(count(&json!("12")), Some(12));
        assert_eq!(count(&json!(-1)), None);
        assert_eq!(count(&json!(1.5)), None);
        assert_eq!(count(&json!(null)), None);
        assert_eq!(count(&json!("many")), None);
    }

    #[test]
    fn merge_keeps_what_the_later_part_does_not_know() {
        let mut start = Usage::from_anthropic(&json!({"type": "message_start", "message": {
            "usage": {"input_tokens": 30, "cache_read_input_tokens": 10, "output_tokens": 1}}}))
        .unwrap();
        let delta = Usage::from_anthropic(
            &json!({"type": "message_delta", "usage": {"output_tokens": 55}}),
        )
        .unwrap();
        start.merge(&delta);
        assert_eq!(start.prompt_tokens, Some(40));
        assert_eq!(start.completion_tokens, Some(55));
        assert_eq!(start.total(), Some(95));
    }
}
