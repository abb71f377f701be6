//! Tool calls (RFC-0008): the [`ToolCall`] payload, the `log_tool_call_*` helpers, and
//! [`ToolCallHandle`], which logs a call's start and outcome and measures it for you.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `store::handle`, `observe::call`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::call::{Measured, Pending, Running};
use super::{blank, read_payload, to_payload};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event_type::EventType;
use crate::store::handle::Store;

/// The payload of `tool_call_started`, `tool_call_completed` and `tool_call_failed`:
/// OpenIntent's `ToolCallPayload`, key for key.
///
/// Serialized as the Python SDK's `to_dict()` does: `tool_name`, `tool_id` and `arguments`
/// always; `provider`, `model`, `parent_request_id` and `error` only when not empty; `result`
/// only when not null; `duration_ms` and `token_count` only when set.
///
/// ```
/// use oidb::ToolCall;
/// use serde_json::json;
///
/// let call = ToolCall::new("web_search", "call_1", json!({"query": "redb"}));
/// assert_eq!(call.to_payload(), json!({
///     "tool_name": "web_search", "tool_id": "call_1", "arguments": {"query": "redb"}
/// }));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolCall {
    /// The tool's name.
    pub tool_name: String,
    /// The call's id (as the provider named it, e.g. `call_…`).
    pub tool_id: String,
    /// The arguments the model gave: a JSON object.
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// The provider of the model that asked for the call.
    #[serde(default, skip_serializing_if = "blank")]
    pub provider: Option<String>,
    /// The model that asked for the call.
    #[serde(default, skip_serializing_if = "blank")]
    pub model: Option<String>,
    /// The `request_id` of the LLM request that asked for the call.
    #[serde(default, skip_serializing_if = "blank")]
    pub parent_request_id: Option<String>,
    /// What the tool returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why the call failed.
    #[serde(default, skip_serializing_if = "blank")]
    pub error: Option<String>,
    /// How long the call took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Tokens the call's result adds to the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_count: Option<u64>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl ToolCall {
    /// A call of `tool_name` with id `tool_id` and `arguments`; every other field empty.
    pub fn new(
        tool_name: impl Into<String>,
        tool_id: impl Into<String>,
        arguments: Value,
    ) -> ToolCall {
        ToolCall {
            tool_name: tool_name.into(),
            tool_id: tool_id.into(),
            arguments,
            ..ToolCall::default()
        }
    }

    /// The payload, as the SDK's `to_dict()` writes it. A JSON `null` result is left out, as the
    /// SDK leaves out `None`.
    #[must_use]
    pub fn to_payload(&self) -> Value {
        let mut call = self.clone();
        if call.result == Some(Value::Null) {
            call.result = None;
        }
        to_payload(&call)
    }

    /// Reads the payload of a `tool_call_*` event.
    ///
    /// # Errors
    /// [`Error::UnexpectedPayload`](crate::Error::UnexpectedPayload) when it is not one.
    pub fn from_event(event: &Event) -> Result<ToolCall> {
        read_payload(event, "ToolCall")
    }
}

impl Measured for ToolCall {
    const STARTED: EventType = EventType::ToolCallStarted;
    const FAILED: EventType = EventType::ToolCallFailed;

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
    /// Logs `tool_call_started` with `call` as its payload, by this store's actor: as the SDK's
    /// `log_tool_call_started`.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_tool_call_started(&self, intent_id: &str, call: &ToolCall) -> Result<Event> {
        self.log_event(intent_id, EventType::ToolCallStarted, call.to_payload())
    }

    /// Logs `tool_call_completed` with `call` as its payload and `result` as its `result`.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_tool_call_completed(
        &self,
        intent_id: &str,
        call: &ToolCall,
        result: Value,
    ) -> Result<Event> {
        let mut completed = call.clone();
        completed.result = Some(result);
        self.log_event(
            intent_id,
            EventType::ToolCallCompleted,
            completed.to_payload(),
        )
    }

    /// Logs `tool_call_failed` with `call` as its payload and `error` as its `error`.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_tool_call_failed(
        &self,
        intent_id: &str,
        call: &ToolCall,
        error: &str,
    ) -> Result<Event> {
        self.log_call_failed(intent_id, call, error)
    }

    /// Starts describing a tool call; [`ToolCallBuilder::start`] logs it and returns the handle
    /// that measures it and logs its outcome.
    ///
    /// ```
    /// use oidb::{EventType, Store};
    /// use serde_json::json;
    ///
    /// let store = Store::in_memory()?;
    /// let call = store
    ///     .tool_call("intent-42", "web_search", json!({"query": "redb"}))
    ///     .tool_id("call_1")
    ///     .parent_request_id("req-1")
    ///     .start()?;
    /// let done = call.complete(json!({"hits": 3}))?;
    /// assert_eq!(done.event_type, EventType::ToolCallCompleted);
    /// assert_eq!(done.payload["result"], json!({"hits": 3}));
    /// # Ok::<(), oidb::Error>(())
    /// ```
    pub fn tool_call(
        &self,
        intent_id: impl Into<String>,
        tool_name: impl Into<String>,
        arguments: Value,
    ) -> ToolCallBuilder {
        let call = ToolCall::new(
            tool_name,
            format!("call_{}", Uuid::new_v4().simple()),
            arguments,
        );
        ToolCallBuilder {
            call: Pending::new(self, intent_id.into(), call),
        }
    }
}

/// Describes a tool call before it starts: from [`Store::tool_call`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ToolCallBuilder {
    call: Pending<ToolCall>,
}

impl ToolCallBuilder {
    /// The call's id (default: `call_` and a new random id).
    pub fn tool_id(mut self, tool_id: impl Into<String>) -> Self {
        self.call.payload.tool_id = tool_id.into();
        self
    }

    /// The provider of the model that asked for the call.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.call.payload.provider = Some(provider.into());
        self
    }

    /// The model that asked for the call.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.call.payload.model = Some(model.into());
        self
    }

    /// The `request_id` of the LLM request that asked for the call.
    pub fn parent_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.call.payload.parent_request_id = Some(request_id.into());
        self
    }

    /// The actor of the call's events (default: the store's actor).
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.call.links.actor = actor.into();
        self
    }

    /// The RFC-0020 trace the call's events belong to.
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.call.links.trace_id = Some(trace_id.into());
        self
    }

    /// The event that caused the call (typically the `llm_request_completed` that asked for it).
    pub fn parent_event_id(mut self, parent: impl Into<String>) -> Self {
        self.call.links.parent_event_id = Some(parent.into());
        self
    }

    /// Logs `tool_call_started` and starts the clock.
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn start(self) -> Result<ToolCallHandle> {
        Ok(ToolCallHandle {
            call: self.call.start()?,
        })
    }
}

/// A tool call in flight: logged as started, measured from then on.
///
/// End it with [`complete`](Self::complete) or [`fail`](Self::fail): each logs the outcome with
/// `duration_ms` measured by a monotonic clock and `parent_event_id` naming the started event. A
/// handle dropped without either logs `tool_call_failed` with an `error` saying it was dropped;
/// if that write fails, see [`drop_log_failures`](super::drop_log_failures).
#[derive(Debug)]
#[must_use = "a tool call handle dropped without complete() or fail() is logged as failed"]
pub struct ToolCallHandle {
    call: Running<ToolCall>,
}

impl ToolCallHandle {
    /// The call's id.
    #[must_use]
    pub fn tool_id(&self) -> &str {
        &self.call.payload.tool_id
    }

    /// The `tool_call_started` event.
    #[must_use]
    pub fn started_event(&self) -> &Event {
        self.call.started()
    }

    /// Tokens the call's result adds to the conversation.
    pub fn token_count(&mut self, tokens: u64) -> &mut Self {
        self.call.payload.token_count = Some(tokens);
        self
    }

    /// Logs `tool_call_completed` with `result` and the measured duration.
    ///
    /// # Errors
    /// As [`Store::append`]. The handle is spent either way.
    pub fn complete(mut self, result: Value) -> Result<Event> {
        self.call.finish(EventType::ToolCallCompleted, |outcome| {
            outcome.result = Some(result);
        })
    }

    /// Logs `tool_call_failed` with `error` and the measured duration.
    ///
    /// # Errors
    /// As [`Store::append`]. The handle is spent either way.
    pub fn fail(mut self, error: impl std::fmt::Display) -> Result<Event> {
        self.call.finish(EventType::ToolCallFailed, |outcome| {
            outcome.error = Some(error.to_string());
        })
    }
}

impl Drop for ToolCallHandle {
    fn drop(&mut self) {
        self.call.log_dropped(
            "tool call handle",
            "tool_call_failed for a dropped tool call handle",
            |_| {},
        );
    }
}
