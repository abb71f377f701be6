//! Agent observability: what an agent's models and tools did, in its own log.
//!
//! - **Payloads with OpenIntent's keys** ([`LlmRequest`], [`ToolCall`], [`StreamState`],
//!   [`StreamChunk`]), serialized as the OpenIntent Python SDK's `to_dict()` does, and the
//!   SDK's helpers on [`Store`](crate::Store): `log_llm_request_started/completed/failed`,
//!   `log_tool_call_started/completed/failed`, `start_stream`, `log_stream_chunk`,
//!   `complete_stream`, `cancel_stream`, plus `fail_stream`.
//! - **Handles that measure for you**: [`Store::llm_request`](crate::Store::llm_request) and
//!   [`Store::tool_call`](crate::Store::tool_call) log the start, time the call with a monotonic
//!   clock, and log the outcome; a handle dropped without one logs a failure saying so.
//! - **A stream recorder** ([`StreamRecorder`]) that logs a streamed response in the order of
//!   the SDK's adapters and calls RFC-0008's hooks fail-safe ([`StreamHooks`]).
//! - **Usage** ([`Usage`]) read from `OpenAI`, Anthropic and Gemini responses and OpenTelemetry
//!   GenAI attributes.
//! - **GL LM-invoker events** ([`GlEvent`]): imported with
//!   [`Store::import_gl`](crate::Store::import_gl), reassembled into [`Block`]s, and read as
//!   [`Activity`] values.
//!
//! ```
//! use oidb::{EventType, Store};
//! use serde_json::json;
//!
//! let store = Store::builder().actor("agent-research").open_backend(
//!     redb::backends::InMemoryBackend::new(), "agent")?;
//! let mut request = store.llm_request("intent-42", "openai", "gpt-4o").messages_count(3).start()?;
//! request.response_content("Let me search.").finish_reason("tool_calls");
//! let completed = request.complete()?;
//!
//! let search = store
//!     .tool_call("intent-42", "web_search", json!({"query": "redb"}))
//!     .parent_request_id(completed.payload["request_id"].as_str().unwrap_or_default())
//!     .parent_event_id(completed.id.to_string())
//!     .start()?;
//! search.complete(json!({"hits": 3}))?;
//!
//! let events = store.get_events("intent-42", oidb::EventFilter::new())?;
//! assert_eq!(events.len(), 4);
//! assert_eq!(events[3].event_type, EventType::ToolCallCompleted);
//! # Ok::<(), oidb::Error>(())
//! ```
//!
//! Uses `model::error`, `model::event`.

mod activity;
mod blocks;
mod call;
mod drop_log;
mod gllm;
mod hooks;
mod llm;
mod naive_time;
mod recorder;
mod stream;
mod tool;
mod usage;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use activity::{Activity, ActivityRecord, WebActivity};
pub use blocks::{Block, BlockKind};
pub use drop_log::{drop_log_failures, DropLogFailures};
pub use gllm::GlEvent;
pub use hooks::{HookFailure, HookName, HookResult, StreamCallbacks, StreamHooks};
pub use llm::{LlmRequest, LlmRequestBuilder, LlmRequestHandle};
pub use recorder::{RequestedToolCall, StreamRecorder, StreamRecorderBuilder, StreamReport};
pub use stream::{StreamChunk, StreamState, StreamStatus};
pub use tool::{ToolCall, ToolCallBuilder, ToolCallHandle};
pub use usage::{Usage, UsageShape};

use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;

/// Whether an optional text is left out of a payload: unset or empty, as the SDK's `if value:`.
#[allow(clippy::ref_option)] // serde hands `skip_serializing_if` a reference to the field
fn blank(text: &Option<String>) -> bool {
    text.as_deref().is_none_or(str::is_empty)
}

/// A payload struct as JSON. The structs hold only strings, numbers, JSON values and times
/// written as strings, so this cannot fail; `Null` would only come from a broken `Serialize`.
fn to_payload(payload: &impl Serialize) -> Value {
    serde_json::to_value(payload).unwrap_or(Value::Null)
}

/// Reads an event's payload as `T`, naming the event when it does not fit.
fn read_payload<T: DeserializeOwned>(event: &Event, expected: &'static str) -> Result<T> {
    T::deserialize(event.payload.as_value()).map_err(|e| Error::UnexpectedPayload {
        id: event.id,
        event_type: event.event_type.as_str().to_owned(),
        expected,
        reason: e.to_string(),
    })
}

/// Whole milliseconds, as the SDK's `int(seconds * 1000)`.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
