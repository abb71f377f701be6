//! [`StreamRecorder`]: records a streamed LLM response as the SDK's adapters do, with
//! RFC-0008's hooks.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `store::handle`, `observe::call`,
//! `observe::hooks`.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::call::dropped_reason;
use super::hooks::{HookFailure, HookName, HookSet, StreamHooks};
use super::{drop_log, LlmRequestBuilder, LlmRequestHandle, StreamState, ToolCall, Usage};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event_type::EventType;
use crate::store::handle::Store;

impl Store {
    /// Starts describing a streamed LLM request: a shortcut for
    /// `store.llm_request(intent, provider, model).stream_recorder()`.
    ///
    /// ```
    /// use oidb::{EventType, Query, Store};
    /// use oidb::observe::StreamCallbacks;
    ///
    /// let store = Store::in_memory()?;
    /// let mut stream = store
    ///     .stream_recorder("intent-42", "openai", "gpt-4o")
    ///     .chunk_log_interval(2)
    ///     .hooks(StreamCallbacks::new().on_token(|token, _| print!("{token}")))
    ///     .start()?;
    /// for token in ["Hel", "lo", "!"] {
    ///     stream.chunk(token)?;
    /// }
    /// let report = stream.complete()?;
    /// assert_eq!(report.content, "Hello!");
    /// let types: Vec<_> = store.query(&Query::new())?.events.into_iter().map(|e| e.event_type).collect();
    /// assert_eq!(types, [
    ///     EventType::LlmRequestStarted, EventType::StreamStarted,
    ///     EventType::StreamChunk, EventType::StreamChunk,
    ///     EventType::StreamCompleted, EventType::LlmRequestCompleted,
    /// ]);
    /// # Ok::<(), oidb::Error>(())
    /// ```
    pub fn stream_recorder(
        &self,
        intent_id: impl Into<String>,
        provider: impl Into<String>,
        model: impl Into<String>,
    ) -> StreamRecorderBuilder {
        self.llm_request(intent_id, provider, model)
            .stream_recorder()
    }
}

/// Describes a streamed request before it starts: from [`Store::stream_recorder`] or
/// [`LlmRequestBuilder::stream_recorder`].
#[must_use]
pub struct StreamRecorderBuilder {
    request: LlmRequestBuilder,
    stream_id: String,
    chunk_log_interval: Option<u64>,
    hooks: Vec<Box<dyn StreamHooks>>,
}

impl std::fmt::Debug for StreamRecorderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecorderBuilder")
            .field("request", &self.request)
            .field("stream_id", &self.stream_id)
            .field("chunk_log_interval", &self.chunk_log_interval)
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl StreamRecorderBuilder {
    pub(crate) fn new(request: LlmRequestBuilder) -> StreamRecorderBuilder {
        StreamRecorderBuilder {
            request,
            stream_id: Uuid::new_v4().to_string(),
            chunk_log_interval: None,
            hooks: Vec::new(),
        }
    }

    /// Changes the request (messages count, tools, temperature, trace, …).
    pub fn request(mut self, change: impl FnOnce(LlmRequestBuilder) -> LlmRequestBuilder) -> Self {
        self.request = change(self.request).stream(true);
        self
    }

    /// The stream's id (default: a new UUID v4).
    pub fn stream_id(mut self, stream_id: impl Into<String>) -> Self {
        self.stream_id = stream_id.into();
        self
    }

    /// Logs a `stream_chunk` for the chunks whose index (from 0) is a multiple of `interval`.
    /// Off by default, as in the SDK (every chunk event is a write); 0 turns it off.
    pub fn chunk_log_interval(mut self, interval: u64) -> Self {
        self.chunk_log_interval = (interval > 0).then_some(interval);
        self
    }

    /// Adds hooks, called after those added before.
    pub fn hooks(mut self, hooks: impl StreamHooks + 'static) -> Self {
        self.hooks.push(Box::new(hooks));
        self
    }

    /// Logs `llm_request_started` and `stream_started` (caused by it), then calls
    /// `on_stream_start`.
    ///
    /// # Errors
    /// As [`Store::append`]. When the stream event cannot be written, the request is logged as
    /// failed.
    pub fn start(self) -> Result<StreamRecorder> {
        let call = self.request.start()?;
        let running = call.running();
        let state = StreamState::start(
            call.intent_id(),
            self.stream_id,
            running.links().actor.clone(),
            call.request().provider.clone(),
            call.request().model.clone(),
        );
        let started_id = call.started_event().id.to_string();
        let stream_started =
            running.log(EventType::StreamStarted, state.to_payload(), &started_id)?;
        let mut hooks = HookSet::new(self.hooks);
        hooks.call(HookName::OnStreamStart, &state.stream_id, |h| {
            h.on_stream_start(&state.stream_id, &state.model, &state.provider)
        });
        Ok(StreamRecorder {
            call,
            finished: false,
            state,
            stream_started,
            chunk_log_interval: self.chunk_log_interval,
            content: String::new(),
            tokens_counted: 0,
            usage: Usage::default(),
            tool_calls: Vec::new(),
            hooks,
        })
    }
}

/// A tool call the model asked for, logged as `tool_call_started` when the stream completes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RequestedToolCall {
    /// The provider's id of the call.
    pub tool_id: String,
    /// The tool's name.
    pub tool_name: String,
    /// The arguments: a JSON object (a provider's argument string that is not JSON is kept as
    /// `{"raw": "…"}`, as the SDK's adapters keep it).
    pub arguments: Value,
}

impl RequestedToolCall {
    /// A call of `tool_name` with id `tool_id` and `arguments`.
    pub fn new(tool_id: impl Into<String>, tool_name: impl Into<String>, arguments: Value) -> Self {
        RequestedToolCall {
            tool_id: tool_id.into(),
            tool_name: tool_name.into(),
            arguments,
        }
    }

    /// A call whose arguments came as a JSON string, as `OpenAI` streams them.
    pub fn from_argument_string(
        tool_id: impl Into<String>,
        tool_name: impl Into<String>,
        arguments: &str,
    ) -> Self {
        let arguments = serde_json::from_str(arguments)
            .unwrap_or_else(|_| serde_json::json!({ "raw": arguments }));
        RequestedToolCall::new(tool_id, tool_name, arguments)
    }
}

/// A streamed LLM response being recorded.
///
/// The events, in the adapters' order: `llm_request_started`, `stream_started`, `stream_chunk`
/// every `chunk_log_interval` chunks (when enabled), then for a completed stream
/// `stream_completed`, `llm_request_completed`, and a `tool_call_started` for each tool call the
/// model asked for; for a cancelled or failed one, `stream_cancelled` (status `cancelled` or
/// `failed`) and `llm_request_failed`.
///
/// Feed it chunks with [`chunk`](Self::chunk); set the usage and finish reason when the provider
/// sends them; end it with [`complete`](Self::complete), [`cancel`](Self::cancel) or
/// [`fail`](Self::fail). Dropped without an outcome, it logs the stream cancelled and the request
/// failed, saying it was dropped (write errors then go to
/// [`drop_log_failures`](super::drop_log_failures)).
#[must_use = "a stream recorder dropped without an outcome is logged as cancelled"]
pub struct StreamRecorder {
    call: LlmRequestHandle,
    finished: bool,
    state: StreamState,
    stream_started: Event,
    chunk_log_interval: Option<u64>,
    content: String,
    tokens_counted: u64,
    usage: Usage,
    tool_calls: Vec<RequestedToolCall>,
    hooks: HookSet,
}

impl std::fmt::Debug for StreamRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecorder")
            .field("state", &self.state)
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

/// What a recorded stream came to, returned by its outcome.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StreamReport {
    /// The stream's final state, as logged.
    pub state: StreamState,
    /// The request id.
    pub request_id: String,
    /// The text received.
    pub content: String,
    /// How long the request took, start to outcome.
    pub duration: Duration,
    /// Time from the start to the first chunk with text.
    pub time_to_first_token: Option<Duration>,
    /// The events the outcome wrote, in order.
    pub events: Vec<Event>,
    /// Hooks that failed during the stream (at most [`StreamReport::MAX_HOOK_FAILURES`]).
    pub hook_failures: Vec<HookFailure>,
    /// Hook failures beyond those kept.
    pub hook_failures_not_kept: u64,
}

impl StreamReport {
    /// How many hook failures a report keeps; more are only counted.
    pub const MAX_HOOK_FAILURES: usize = HookSet::MAX_KEPT;
}

impl StreamRecorder {
    /// The stream's id.
    #[must_use]
    pub fn stream_id(&self) -> &str {
        &self.state.stream_id
    }

    /// The request id.
    #[must_use]
    pub fn request_id(&self) -> &str {
        self.call.request_id()
    }

    /// The stream as it stands.
    #[must_use]
    pub fn state(&self) -> &StreamState {
        &self.state
    }

    /// The `stream_started` event.
    #[must_use]
    pub fn stream_started_event(&self) -> &Event {
        &self.stream_started
    }

    /// The text received so far.
    #[must_use]
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Hooks that failed so far.
    #[must_use]
    pub fn hook_failures(&self) -> &[HookFailure] {
        self.hooks.failures()
    }

    /// Records a chunk carrying `text` (may be empty) as one token.
    ///
    /// # Errors
    /// As [`Store::append`], when a `stream_chunk` event is due and cannot be written.
    pub fn chunk(&mut self, text: &str) -> Result<()> {
        self.chunk_with_tokens(text, 1)
    }

    /// Records a chunk carrying `text` and `tokens` tokens: counts it, marks the first token,
    /// calls `on_token` when there is text, and logs `stream_chunk` when due.
    ///
    /// # Errors
    /// As [`Store::append`], when a `stream_chunk` event is due and cannot be written; the chunk
    /// is counted all the same.
    pub fn chunk_with_tokens(&mut self, text: &str, tokens: u64) -> Result<()> {
        let index = self.state.chunks_received;
        self.state.chunks_received += 1;
        self.tokens_counted = self.tokens_counted.saturating_add(tokens);
        if !text.is_empty() {
            self.call.first_token();
            self.content.push_str(text);
            let stream_id = &self.state.stream_id;
            self.hooks.call(HookName::OnToken, stream_id, |h| {
                h.on_token(text, stream_id)
            });
        }
        let due = self
            .chunk_log_interval
            .is_some_and(|interval| index.is_multiple_of(interval));
        if due {
            let payload = serde_json::json!({
                "stream_id": self.state.stream_id,
                "chunk_index": index,
                "token_count": tokens,
            });
            // A chunk belongs under its stream in a trace tree.
            let stream_started = self.stream_started.id.to_string();
            self.call
                .running()
                .log(EventType::StreamChunk, payload, &stream_started)?;
        }
        Ok(())
    }

    /// Adds what a provider said about usage (see [`Usage::merge`]); its completion tokens
    /// become the stream's `tokens_streamed`.
    pub fn usage(&mut self, usage: &Usage) -> &mut Self {
        self.usage.merge(usage);
        self
    }

    /// Why the model stopped.
    pub fn finish_reason(&mut self, reason: impl Into<String>) -> &mut Self {
        self.call.finish_reason(reason);
        self
    }

    /// What the request cost, in USD.
    pub fn cost(&mut self, usd: f64) -> &mut Self {
        self.call.cost(usd);
        self
    }

    /// A tool call the model asked for.
    pub fn tool_call(&mut self, call: RequestedToolCall) -> &mut Self {
        self.tool_calls.push(call);
        self
    }

    /// Completes the stream: logs `stream_completed`, calls `on_stream_end`, then logs
    /// `llm_request_completed` and a `tool_call_started` for each tool call, atomically.
    ///
    /// # Errors
    /// As [`Store::append`]. The recorder is spent either way.
    pub fn complete(mut self) -> Result<StreamReport> {
        self.finished = true;
        let tokens = self.usage.completion_tokens.unwrap_or(self.tokens_counted);
        let chunks = self.state.chunks_received;
        self.state.complete(chunks, tokens);
        let stream_completed = self.log_state(EventType::StreamCompleted)?;
        let stream_id = &self.state.stream_id;
        let content = &self.content;
        self.hooks.call(HookName::OnStreamEnd, stream_id, |h| {
            h.on_stream_end(stream_id, content, chunks)
        });

        let call = &mut self.call;
        if !self.content.is_empty() {
            call.response_content(self.content.clone());
        }
        call.usage(&self.usage);
        let request = call.request().clone();
        let outcome_id = Uuid::now_v7();
        let mut batch = vec![call
            .outcome_event(EventType::LlmRequestCompleted, None)
            .id(outcome_id)];
        for requested in &self.tool_calls {
            let mut tool = ToolCall::new(
                &requested.tool_name,
                &requested.tool_id,
                requested.arguments.clone(),
            );
            tool.provider = Some(request.provider.clone());
            tool.model = Some(request.model.clone());
            tool.parent_request_id = Some(request.request_id.clone());
            batch.push(call.running().event(
                EventType::ToolCallStarted,
                tool.to_payload(),
                &outcome_id.to_string(),
            ));
        }
        let mut events = vec![stream_completed];
        events.extend(call.running().store().append_batch(batch)?);
        Ok(self.report(events))
    }

    /// Cancels the stream: logs `stream_cancelled` with `reason`, calls `on_stream_error`, then
    /// logs `llm_request_failed` saying the stream was cancelled.
    ///
    /// # Errors
    /// As [`Store::append`]. The recorder is spent either way.
    pub fn cancel(mut self, reason: impl Into<String>) -> Result<StreamReport> {
        self.end_abnormally(false, &reason.into())
    }

    /// Fails the stream: logs it with status `failed` and `error` (see [`Store::fail_stream`]),
    /// calls `on_stream_error`, then logs `llm_request_failed` with `error`.
    ///
    /// # Errors
    /// As [`Store::append`]. The recorder is spent either way.
    pub fn fail(mut self, error: impl std::fmt::Display) -> Result<StreamReport> {
        self.end_abnormally(true, &error.to_string())
    }

    fn end_abnormally(&mut self, failed: bool, why: &str) -> Result<StreamReport> {
        self.finished = true;
        let tokens = self.usage.completion_tokens.unwrap_or(self.tokens_counted);
        let chunks = self.state.chunks_received;
        let request_error = if failed {
            self.state.fail(why, chunks, tokens);
            why.to_owned()
        } else {
            self.state.cancel(Some(why.to_owned()), chunks, tokens);
            format!("stream cancelled: {why}")
        };
        let stream_event = self.log_state(EventType::StreamCancelled);
        let stream_id = &self.state.stream_id;
        self.hooks.call(HookName::OnStreamError, stream_id, |h| {
            h.on_stream_error(why, stream_id)
        });
        let call = &mut self.call;
        call.usage(&self.usage);
        let request_event = call.outcome_event(EventType::LlmRequestFailed, Some(request_error));
        let request_event = call.running().store().append(request_event);
        let events = vec![stream_event?, request_event?];
        Ok(self.report(events))
    }

    fn log_state(&self, event_type: EventType) -> Result<Event> {
        let call = &self.call;
        call.running().log(
            event_type,
            self.state.to_payload(),
            &call.started_event().id.to_string(),
        )
    }

    fn report(&mut self, events: Vec<Event>) -> StreamReport {
        let call = &self.call;
        let duration = events
            .iter()
            .find(|e| e.event_type.as_str().starts_with("llm_request_"))
            .and_then(|e| e.payload.get("duration_ms"))
            .and_then(Value::as_u64)
            .map_or_else(|| call.elapsed(), Duration::from_millis);
        StreamReport {
            state: self.state.clone(),
            request_id: call.request_id().to_owned(),
            content: std::mem::take(&mut self.content),
            duration,
            time_to_first_token: call.time_to_first_token(),
            events,
            hook_failures: self.hooks.take_failures(),
            hook_failures_not_kept: self.hooks.failures_not_kept(),
        }
    }
}

impl Drop for StreamRecorder {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let reason = dropped_reason("stream recorder", "complete(), cancel() or fail()");
        drop_log::guarded(
            "stream_cancelled and llm_request_failed for a dropped stream recorder",
            || self.end_abnormally(false, &reason),
        );
    }
}
