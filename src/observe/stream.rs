//! Streams (RFC-0008): the [`StreamState`] and [`StreamChunk`] payloads and the helpers
//! `start_stream`, `log_stream_chunk`, `complete_stream`, `cancel_stream` and `fail_stream`.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::time`, `store::handle`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{blank, read_payload, to_payload};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event_type::EventType;
use crate::store::handle::Store;

/// Where a stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    /// Tokens are flowing.
    #[default]
    Active,
    /// The stream ended normally.
    Completed,
    /// The stream was stopped on purpose.
    Cancelled,
    /// The stream broke.
    Failed,
}

impl StreamStatus {
    /// The wire string: `active`, `completed`, `cancelled` or `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Active => "active",
            StreamStatus::Completed => "completed",
            StreamStatus::Cancelled => "cancelled",
            StreamStatus::Failed => "failed",
        }
    }
}

/// The payload of `stream_started`, `stream_completed` and `stream_cancelled`: OpenIntent's
/// `StreamState`, key for key.
///
/// Serialized as the Python SDK's `to_dict()` does: the ids, `status`, `provider`, `model` and
/// both counts always; the times only when set, written as Python's `isoformat()` writes a naive
/// time (oidb writes UTC there, and reads such times as UTC); `cancel_reason` and `error` only
/// when not empty.
///
/// A state changes with [`complete`](Self::complete), [`cancel`](Self::cancel) and
/// [`fail`](Self::fail), and is logged with the [`Store`] helper of its status.
///
/// ```
/// use oidb::{StreamState, StreamStatus};
///
/// let mut state = StreamState::start("intent-42", "stream-1", "agent-research", "openai", "gpt-4o");
/// assert_eq!(state.status, StreamStatus::Active);
/// state.complete(32, 96);
/// assert_eq!(state.to_payload()["status"], "completed");
/// assert!(state.to_payload()["completed_at"].is_string());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamState {
    /// The stream's id.
    pub stream_id: String,
    /// The intent it belongs to.
    pub intent_id: String,
    /// The agent receiving it.
    pub agent_id: String,
    /// Where it is in its life.
    pub status: StreamStatus,
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Chunks received so far.
    #[serde(default)]
    pub chunks_received: u64,
    /// Tokens streamed so far.
    #[serde(default)]
    pub tokens_streamed: u64,
    /// When it started.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::naive_time"
    )]
    pub started_at: Option<DateTime<Utc>>,
    /// When it completed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::naive_time"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    /// When it was cancelled, or failed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::naive_time"
    )]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    #[serde(default, skip_serializing_if = "blank")]
    pub cancel_reason: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "blank")]
    pub error: Option<String>,
}

impl StreamState {
    /// An active stream with no counts and no times.
    pub fn new(
        intent_id: impl Into<String>,
        stream_id: impl Into<String>,
        agent_id: impl Into<String>,
        provider: impl Into<String>,
        model: impl Into<String>,
    ) -> StreamState {
        StreamState {
            stream_id: stream_id.into(),
            intent_id: intent_id.into(),
            agent_id: agent_id.into(),
            provider: provider.into(),
            model: model.into(),
            ..StreamState::default()
        }
    }

    /// An active stream started now.
    pub fn start(
        intent_id: impl Into<String>,
        stream_id: impl Into<String>,
        agent_id: impl Into<String>,
        provider: impl Into<String>,
        model: impl Into<String>,
    ) -> StreamState {
        let mut state = StreamState::new(intent_id, stream_id, agent_id, provider, model);
        state.started_at = Some(crate::model::time::now());
        state
    }

    /// Marks the stream completed now, with its final counts.
    pub fn complete(&mut self, chunks_received: u64, tokens_streamed: u64) -> &mut Self {
        self.status = StreamStatus::Completed;
        self.completed_at = Some(crate::model::time::now());
        self.chunks_received = chunks_received;
        self.tokens_streamed = tokens_streamed;
        self
    }

    /// Marks the stream cancelled now, with the counts so far and a reason.
    pub fn cancel(
        &mut self,
        reason: Option<String>,
        chunks_received: u64,
        tokens_streamed: u64,
    ) -> &mut Self {
        self.status = StreamStatus::Cancelled;
        self.cancelled_at = Some(crate::model::time::now());
        self.cancel_reason = reason;
        self.chunks_received = chunks_received;
        self.tokens_streamed = tokens_streamed;
        self
    }

    /// Marks the stream failed now, with the counts so far and the error. The time goes in
    /// `cancelled_at`: OpenIntent's state has no other place for when a stream stopped.
    pub fn fail(
        &mut self,
        error: impl Into<String>,
        chunks_received: u64,
        tokens_streamed: u64,
    ) -> &mut Self {
        self.status = StreamStatus::Failed;
        self.cancelled_at = Some(crate::model::time::now());
        self.error = Some(error.into());
        self.chunks_received = chunks_received;
        self.tokens_streamed = tokens_streamed;
        self
    }

    /// The payload, as the SDK's `to_dict()` writes it.
    #[must_use]
    pub fn to_payload(&self) -> Value {
        to_payload(self)
    }

    /// Reads the payload of a `stream_started`, `stream_completed` or `stream_cancelled` event.
    ///
    /// # Errors
    /// [`Error::UnexpectedPayload`] when it is not one.
    pub fn from_event(event: &Event) -> Result<StreamState> {
        read_payload(event, "StreamState")
    }
}

/// The payload of `stream_chunk`: `stream_id`, `chunk_index`, `token_count`, as the SDK's
/// `log_stream_chunk` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamChunk {
    /// The stream's id.
    pub stream_id: String,
    /// The chunk's index in the stream, from 0.
    pub chunk_index: u64,
    /// Tokens in the chunk.
    pub token_count: u64,
}

impl StreamChunk {
    /// Reads the payload of a `stream_chunk` event.
    ///
    /// # Errors
    /// [`Error::UnexpectedPayload`] when it is not one.
    pub fn from_event(event: &Event) -> Result<StreamChunk> {
        read_payload(event, "StreamChunk")
    }
}

impl Store {
    /// Logs `stream_started` with `state` as its payload, in the state's intent, by this store's
    /// actor: as the SDK's `start_stream`.
    ///
    /// ```
    /// use oidb::{Store, StreamState};
    ///
    /// let store = Store::builder().actor("agent-research").open_backend(
    ///     redb::backends::InMemoryBackend::new(), "mem")?;
    /// let mut state = StreamState::start("intent-42", "stream-1", store.actor(), "openai", "gpt-4o");
    /// store.start_stream(&state)?;
    /// store.log_stream_chunk("intent-42", "stream-1", 0, 1)?;
    /// state.complete(1, 1);
    /// let done = store.complete_stream(&state)?;
    /// assert_eq!(done.payload["chunks_received"], 1);
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] unless the state is active; as [`Store::append`].
    pub fn start_stream(&self, state: &StreamState) -> Result<Event> {
        self.log_stream_state(
            state,
            StreamStatus::Active,
            EventType::StreamStarted,
            "start_stream",
        )
    }

    /// Logs `stream_chunk`: as the SDK's `log_stream_chunk` (log chunks sparingly: every append
    /// is a write).
    ///
    /// # Errors
    /// As [`Store::append`].
    pub fn log_stream_chunk(
        &self,
        intent_id: &str,
        stream_id: &str,
        chunk_index: u64,
        token_count: u64,
    ) -> Result<Event> {
        let chunk = StreamChunk {
            stream_id: stream_id.to_owned(),
            chunk_index,
            token_count,
        };
        self.log_event(intent_id, EventType::StreamChunk, to_payload(&chunk))
    }

    /// Logs `stream_completed` with `state` as its payload: as the SDK's `complete_stream`.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] unless the state is completed; as [`Store::append`].
    pub fn complete_stream(&self, state: &StreamState) -> Result<Event> {
        self.log_stream_state(
            state,
            StreamStatus::Completed,
            EventType::StreamCompleted,
            "complete_stream",
        )
    }

    /// Logs `stream_cancelled` with `state` as its payload: as the SDK's `cancel_stream`.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] unless the state is cancelled; as [`Store::append`].
    pub fn cancel_stream(&self, state: &StreamState) -> Result<Event> {
        self.log_stream_state(
            state,
            StreamStatus::Cancelled,
            EventType::StreamCancelled,
            "cancel_stream",
        )
    }

    /// Logs a failed stream: a `stream_cancelled` event whose state has status `failed` and the
    /// `error` (OpenIntent has the status but no event type of its own for it).
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] unless the state is failed; as [`Store::append`].
    pub fn fail_stream(&self, state: &StreamState) -> Result<Event> {
        self.log_stream_state(
            state,
            StreamStatus::Failed,
            EventType::StreamCancelled,
            "fail_stream",
        )
    }

    fn log_stream_state(
        &self,
        state: &StreamState,
        status: StreamStatus,
        event_type: EventType,
        helper: &str,
    ) -> Result<Event> {
        check_status(state, status, helper)?;
        self.log_event(state.intent_id.as_str(), event_type, state.to_payload())
    }
}

/// A helper logs only the state it is named for.
pub(crate) fn check_status(
    state: &StreamState,
    expected: StreamStatus,
    helper: &str,
) -> Result<()> {
    if state.status == expected {
        return Ok(());
    }
    let how = match expected {
        StreamStatus::Active => "StreamState::start",
        StreamStatus::Completed => "StreamState::complete",
        StreamStatus::Cancelled => "StreamState::cancel",
        StreamStatus::Failed => "StreamState::fail",
    };
    Err(Error::InvalidEvent {
        field: "status",
        reason: format!(
            "stream {} is {}, but {helper} logs a stream that is {}; call {how} first",
            state.stream_id,
            state.status.as_str(),
            expected.as_str()
        ),
    })
}
