//! LLM requests (RFC-0008): the [`LlmRequest`] payload, the `log_llm_request_*` helpers, and
//! [`LlmRequestHandle`], which logs a request's start and outcome and measures it for you.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `store::handle`, `observe::call`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::call::{Measured, Pending, Running};
use super::{blank, millis, read_payload, to_payload, StreamRecorderBuilder, Usage};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::store::handle::Store;

/// The payload of `llm_request_started`, `llm_request_completed` and `llm_request_failed`:
/// OpenIntent's `LLMRequestPayload`, key for key, plus the counts it lacks.
///
/// Serialized as the Python SDK's `to_dict()` does: `request_id`, `provider`, `model`,
/// `messages_count` and `stream` always; `tools_available`, `tool_calls` only when not empty;
/// `response_content`, `finish_reason`, `error` only when not empty; the numbers only when set.
/// oidb adds `cached_tokens`, `cache_creation_tokens`, `reasoning_tokens`,
/// `time_to_first_token_ms` and `cost` (USD), each only when set, after the SDK's keys.
///
/// ```
/// use oidb::LlmRequest;
/// use serde_json::json;
///
/// let mut request = LlmRequest::new("req-1", "openai", "gpt-4o");
/// request.messages_count = 2;
/// request.temperature = Some(0.2);
/// assert_eq!(request.to_payload(), json!({
///     "request_id": "req-1", "provider": "openai", "model": "gpt-4o",
///     "messages_count": 2, "stream": false, "temperature": 0.2
/// }));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LlmRequest {
    /// The request's id, shared by its started and outcome events.
    pub request_id: String,
    /// The provider (`openai`, `anthropic`, …).
    pub provider: String,
    /// The model.
    pub model: String,
    /// How many messages the request sent.
    #[serde(default)]
    pub messages_count: u64,
    /// Whether the response was streamed.
    #[serde(default)]
    pub stream: bool,
    /// Names of the tools offered to the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_available: Vec<String>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The cap on output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The text of the response.
    #[serde(default, skip_serializing_if = "blank")]
    pub response_content: Option<String>,
    /// Tool calls the model asked for, as the provider wrote them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<Value>,
    /// Why the model stopped (`stop`, `tool_calls`, `length`, …).
    #[serde(default, skip_serializing_if = "blank")]
    pub finish_reason: Option<String>,
    /// Input tokens, cached ones included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Output tokens, reasoning ones included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// All tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// How long the request took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Why the request failed.
    #[serde(default, skip_serializing_if = "blank")]
    pub error: Option<String>,
    /// Input tokens read from the provider's cache (not in the SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the provider's cache (not in the SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// Output tokens spent on reasoning (not in the SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Milliseconds from the request's start to its first streamed token (not in the SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_token_ms: Option<u64>,
    /// What the request cost, in USD (not in the SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

impl LlmRequest {
    /// A request with its id, provider and model; every other field empty.
    pub fn new(
        request_id: impl Into<String>,
        provider: impl Into<String>,
        model: impl Into<String>,
    ) -> LlmRequest {
        LlmRequest {
            request_id: request_id.into(),
            provider: provider.into(),
            model: model.into(),
            ..LlmRequest::default()
        }
    }

    /// The payload, as the SDK's `to_dict()` writes it.
    #[must_use]
    pub fn to_payload(&self) -> Value {
        to_payload(self)
    }

    /// Reads the payload of an `llm_request_*` event.
    ///
    /// # Errors
    /// [`Error::UnexpectedPayload`](crate::Error::UnexpectedPayload) when it is not one.
    pub fn from_event(event: &Event) -> Result<LlmRequest> {
        read_payload(event, "LlmRequest")
    }

    /// Sets the token counts from a provider's usage: prompt, completion, cached, cache-creation
    /// and reasoning tokens as known, and the total (reported, or prompt plus completion).
    pub fn apply_usage(&mut self, usage: &Usage) {
        self.prompt_tokens = usage.prompt_tokens.or(self.prompt_tokens);
        self.completion_tokens = usage.completion_tokens.or(self.completion_tokens);
        self.total_tokens = usage.total().or(self.total_tokens);
        self.cached_tokens = usage.cached_tokens.or(self.cached_tokens);
        self.cache_creation_tokens = usage.cache_creation_tokens.or(self.cache_creation_tokens);
        self.reasoning_tokens = usage.reasoning_tokens.or(self.reasoning_tokens);
    }
}

impl Measured for LlmRequest {
    const STARTED: EventType = EventType::LlmRequestStarted;
    const FAILED: EventType = EventType::LlmRequestFailed;

    fn payload(&self) -> Value {
        self.to_payload()
    }

    fn set_duration_ms(&mut self, duration_ms: u64) {
        self.duration_ms = Some(duration_ms);
    }

    fn set_error(&mut self, error: String) {
        self.error = Some(error);
    }
}

impl Store {
    /// Logs `llm_request_started` with `request` as its payload, by this store's actor: as the
    /// SDK's `log_llm_request_started`.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_llm_request_started(&self, intent_id: &str, request: &LlmRequest) -> Result<Event> {
        self.log_event(
            intent_id,
            EventType::LlmRequestStarted,
            request.to_payload(),
        )
    }

    /// Logs `llm_request_completed` with `request` (its outcome fields set) as its payload.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_llm_request_completed(
        &self,
        intent_id: &str,
        request: &LlmRequest,
    ) -> Result<Event> {
        self.log_event(
            intent_id,
            EventType::LlmRequestCompleted,
            request.to_payload(),
        )
    }

    /// Logs `llm_request_failed` with `request` as its payload and `error` as its `error`.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_llm_request_failed(
        &self,
        intent_id: &str,
        request: &LlmRequest,
        error: &str,
    ) -> Result<Event> {
        self.log_call_failed(intent_id, request, error)
    }

    /// Starts describing an LLM request; [`LlmRequestBuilder::start`] logs it and returns the
    /// handle that measures it and logs its outcome.
    ///
    /// ```
    /// use oidb::{EventType, Store, Usage};
    /// use serde_json::json;
    ///
    /// let store = Store::in_memory()?;
    /// let mut call = store.llm_request("intent-42", "openai", "gpt-4o").messages_count(2).start()?;
    /// // … call the model …
    /// let response = json!({"usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}});
    /// call.response_content("Paris.").finish_reason("stop");
    /// if let Some(usage) = Usage::from_response(&response) {
    ///     call.usage(&usage);
    /// }
    /// let completed = call.complete()?;
    /// assert_eq!(completed.event_type, EventType::LlmRequestCompleted);
    /// assert_eq!(completed.payload["total_tokens"], 15);
    /// assert!(completed.payload["duration_ms"].is_u64());
    /// # Ok::<(), oidb::Error>(())
    /// ```
    pub fn llm_request(
        &self,
        intent_id: impl Into<String>,
        provider: impl Into<String>,
        model: impl Into<String>,
    ) -> LlmRequestBuilder {
        let request = LlmRequest::new(Uuid::new_v4().to_string(), provider, model);
        LlmRequestBuilder {
            call: Pending::new(self, intent_id.into(), request),
        }
    }
}

/// Describes an LLM request before it starts: from [`Store::llm_request`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LlmRequestBuilder {
    call: Pending<LlmRequest>,
}

impl LlmRequestBuilder {
    /// The request id (default: a new UUID v4, as the SDK's adapters make).
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.call.payload.request_id = request_id.into();
        self
    }

    /// How many messages the request sends.
    pub fn messages_count(mut self, count: u64) -> Self {
        self.call.payload.messages_count = count;
        self
    }

    /// The names of the tools offered to the model.
    pub fn tools_available<S: Into<String>>(mut self, tools: impl IntoIterator<Item = S>) -> Self {
        self.call.payload.tools_available = tools.into_iter().map(Into::into).collect();
        self
    }

    /// The sampling temperature.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.call.payload.temperature = Some(temperature);
        self
    }

    /// The cap on output tokens.
    pub fn max_tokens(mut self, max_tokens: u64) -> Self {
        self.call.payload.max_tokens = Some(max_tokens);
        self
    }

    /// Whether the response is streamed (set for you by [`LlmRequestBuilder::stream_recorder`]).
    pub fn stream(mut self, stream: bool) -> Self {
        self.call.payload.stream = stream;
        self
    }

    /// The actor of the request's events (default: the store's actor).
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.call.links.actor = actor.into();
        self
    }

    /// The RFC-0020 trace all of the request's events belong to.
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.call.links.trace_id = Some(trace_id.into());
        self
    }

    /// The event that caused this request (its `llm_request_started` names it as parent; the
    /// outcome names the started event).
    pub fn parent_event_id(mut self, parent: impl Into<String>) -> Self {
        self.call.links.parent_event_id = Some(parent.into());
        self
    }

    /// The request as it will be logged at its start.
    #[must_use]
    pub fn request(&self) -> &LlmRequest {
        &self.call.payload
    }

    /// Logs `llm_request_started` and starts the clock.
    ///
    /// # Errors
    /// As [`Store::append`]; nothing is measured then.
    pub fn start(self) -> Result<LlmRequestHandle> {
        Ok(LlmRequestHandle {
            call: self.call.start()?,
            first_token: None,
        })
    }

    /// Turns this request into a streamed one, recorded by a [`StreamRecorder`](super::StreamRecorder).
    pub fn stream_recorder(self) -> StreamRecorderBuilder {
        StreamRecorderBuilder::new(self.stream(true))
    }
}

/// An LLM request in flight: logged as started, measured from then on.
///
/// Set what the response said ([`response_content`](Self::response_content),
/// [`usage`](Self::usage), …), then end it with [`complete`](Self::complete) or
/// [`fail`](Self::fail): each logs the outcome with `duration_ms` measured by a monotonic clock
/// and `parent_event_id` naming the started event. A handle dropped without either logs
/// `llm_request_failed` with an `error` saying it was dropped (and whether the thread was
/// panicking); if that write fails, see [`drop_log_failures`](super::drop_log_failures).
#[derive(Debug)]
#[must_use = "a request handle dropped without complete() or fail() is logged as failed"]
pub struct LlmRequestHandle {
    call: Running<LlmRequest>,
    first_token: Option<Duration>,
}

impl LlmRequestHandle {
    /// The request id.
    #[must_use]
    pub fn request_id(&self) -> &str {
        &self.call.payload.request_id
    }

    /// The request as it stands (what the outcome will log, but for the measured fields).
    #[must_use]
    pub fn request(&self) -> &LlmRequest {
        &self.call.payload
    }

    /// The `llm_request_started` event.
    #[must_use]
    pub fn started_event(&self) -> &Event {
        self.call.started()
    }

    /// The intent the request belongs to.
    #[must_use]
    pub fn intent_id(&self) -> &str {
        self.call.intent_id()
    }

    /// Time since the request started.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.call.elapsed()
    }

    /// Marks the first streamed token: its time since the start is logged as
    /// `time_to_first_token_ms`. Later calls change nothing. Returns that time.
    pub fn first_token(&mut self) -> Duration {
        *self.first_token.get_or_insert_with(|| self.call.elapsed())
    }

    /// The time to the first token, if marked.
    #[must_use]
    pub fn time_to_first_token(&self) -> Option<Duration> {
        self.first_token
    }

    /// The response text.
    pub fn response_content(&mut self, content: impl Into<String>) -> &mut Self {
        self.call.payload.response_content = Some(content.into());
        self
    }

    /// Why the model stopped.
    pub fn finish_reason(&mut self, reason: impl Into<String>) -> &mut Self {
        self.call.payload.finish_reason = Some(reason.into());
        self
    }

    /// The tool calls the model asked for, as the provider wrote them.
    pub fn tool_calls(&mut self, calls: Vec<Value>) -> &mut Self {
        self.call.payload.tool_calls = calls;
        self
    }

    /// The token counts (see [`LlmRequest::apply_usage`]).
    pub fn usage(&mut self, usage: &Usage) -> &mut Self {
        self.call.payload.apply_usage(usage);
        self
    }

    /// What the request cost, in USD.
    pub fn cost(&mut self, usd: f64) -> &mut Self {
        self.call.payload.cost = Some(usd);
        self
    }

    /// Logs `llm_request_completed` with what was set and the measured duration.
    ///
    /// # Errors
    /// As [`Store::append`]. The handle is spent either way: an outcome is never logged twice.
    pub fn complete(mut self) -> Result<Event> {
        self.finish(EventType::LlmRequestCompleted, None)
    }

    /// Logs `llm_request_failed` with `error` and the measured duration.
    ///
    /// # Errors
    /// As [`Store::append`]. The handle is spent either way.
    pub fn fail(mut self, error: impl std::fmt::Display) -> Result<Event> {
        self.finish(EventType::LlmRequestFailed, Some(error.to_string()))
    }

    /// The outcome event, not yet appended (the stream recorder batches it with tool calls).
    pub(crate) fn outcome_event(
        &mut self,
        event_type: EventType,
        error: Option<String>,
    ) -> NewEvent {
        let first_token = self.first_token;
        self.call.outcome(event_type, |outcome| {
            measured_first_token(outcome, first_token);
            if error.is_some() {
                outcome.error = error;
            }
        })
    }

    /// The request as a measured call: its store, links and started event.
    pub(crate) fn running(&self) -> &Running<LlmRequest> {
        &self.call
    }

    fn finish(&mut self, event_type: EventType, error: Option<String>) -> Result<Event> {
        let event = self.outcome_event(event_type, error);
        self.call.store().append(event)
    }
}

/// The time to the first token, as marked on the handle (or as set on the request).
fn measured_first_token(outcome: &mut LlmRequest, first_token: Option<Duration>) {
    outcome.time_to_first_token_ms = first_token.map(millis).or(outcome.time_to_first_token_ms);
}

impl Drop for LlmRequestHandle {
    fn drop(&mut self) {
        let first_token = self.first_token;
        self.call.log_dropped(
            "LLM request handle",
            "llm_request_failed for a dropped request handle",
            |outcome| measured_first_token(outcome, first_token),
        );
    }
}
