//! What a measured call is, whatever it calls: an LLM request's and a tool call's builder and
//! handle are this, around their own payload.
//!
//! It owns how a call's events are written and hang together (its actor, its RFC-0020 trace,
//! the started event caused by the call's parent and every later event by one of the call's
//! own), the monotonic clock a call is measured by, and what a handle dropped without an outcome
//! logs. It may use the model floor, the store's handle, and the observe module's root and drop
//! log; the payloads ([`LlmRequest`](super::LlmRequest), [`ToolCall`](super::ToolCall)) come to
//! it through [`Measured`].

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{drop_log, millis};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::store::handle::Store;

/// A payload a measured call logs: at its start, and measured at its outcome.
pub(crate) trait Measured: Clone {
    /// The event type of the call's start.
    const STARTED: EventType;
    /// The event type of the call's failure.
    const FAILED: EventType;

    /// The payload, as the SDK's `to_dict()` writes it.
    fn payload(&self) -> Value;

    /// Sets how long the call took, in milliseconds.
    fn set_duration_ms(&mut self, duration_ms: u64);

    /// Sets why the call failed.
    fn set_error(&mut self, error: String);
}

impl Store {
    /// Logs `call` failed with `error` as its `error`, by this store's actor: what the SDK's
    /// `log_*_failed` helpers do.
    pub(crate) fn log_call_failed<C: Measured>(
        &self,
        intent_id: &str,
        call: &C,
        error: &str,
    ) -> Result<Event> {
        let mut failed = call.clone();
        failed.set_error(error.to_owned());
        self.log_event(intent_id, C::FAILED, failed.payload())
    }
}

/// Who writes a call's events, and how they hang together (RFC-0020).
#[derive(Debug, Clone)]
pub(crate) struct Links {
    pub(crate) actor: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) parent_event_id: Option<String>,
}

impl Links {
    fn new(actor: &str) -> Links {
        Links {
            actor: actor.to_owned(),
            trace_id: None,
            parent_event_id: None,
        }
    }

    /// An event by this actor in this trace, caused by `parent` (when there is one).
    fn event(
        &self,
        intent_id: &str,
        event_type: EventType,
        payload: Value,
        parent: Option<&str>,
    ) -> NewEvent {
        let mut event = NewEvent::new(intent_id, event_type, self.actor.clone()).payload(payload);
        if let Some(trace_id) = &self.trace_id {
            event = event.trace_id(trace_id.clone());
        }
        if let Some(parent) = parent {
            event = event.parent_event_id(parent);
        }
        event
    }
}

/// A call described but not started: the inside of a call's builder.
#[derive(Debug, Clone)]
pub(crate) struct Pending<C> {
    store: Store,
    intent_id: String,
    /// What the start will log.
    pub(crate) payload: C,
    /// Whose the call's events are, in which trace, caused by what.
    pub(crate) links: Links,
}

impl<C: Measured> Pending<C> {
    /// A call in `intent_id`, by the store's actor, in no trace and caused by nothing.
    pub(crate) fn new(store: &Store, intent_id: String, payload: C) -> Pending<C> {
        Pending {
            store: store.clone(),
            intent_id,
            payload,
            links: Links::new(store.actor()),
        }
    }

    /// Logs the start, caused by the call's parent, and starts the clock.
    pub(crate) fn start(self) -> Result<Running<C>> {
        let started = self.store.append(self.links.event(
            &self.intent_id,
            C::STARTED,
            self.payload.payload(),
            self.links.parent_event_id.as_deref(),
        ))?;
        Ok(Running {
            store: self.store,
            intent_id: self.intent_id,
            payload: self.payload,
            links: self.links,
            started,
            began: Instant::now(),
            finished: false,
        })
    }
}

/// A call logged as started and measured from then on: the inside of a call's handle.
#[derive(Debug)]
pub(crate) struct Running<C> {
    store: Store,
    intent_id: String,
    /// What the outcome will log, but for what is measured.
    pub(crate) payload: C,
    links: Links,
    started: Event,
    began: Instant,
    finished: bool,
}

impl<C: Measured> Running<C> {
    /// The store the call's events go to.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The intent the call belongs to.
    pub(crate) fn intent_id(&self) -> &str {
        &self.intent_id
    }

    /// Whose the call's events are.
    pub(crate) fn links(&self) -> &Links {
        &self.links
    }

    /// The started event.
    pub(crate) fn started(&self) -> &Event {
        &self.started
    }

    /// Time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.began.elapsed()
    }

    /// An event of the call's, not yet appended, caused by the event `parent`.
    pub(crate) fn event(&self, event_type: EventType, payload: Value, parent: &str) -> NewEvent {
        self.links
            .event(&self.intent_id, event_type, payload, Some(parent))
    }

    /// Logs an event of the call's, caused by the event `parent`.
    pub(crate) fn log(&self, event_type: EventType, payload: Value, parent: &str) -> Result<Event> {
        self.store.append(self.event(event_type, payload, parent))
    }

    /// The outcome event, not yet appended: the payload as set, with the measured duration,
    /// changed by `outcome`, caused by the started event. The call has its outcome from then on.
    pub(crate) fn outcome(
        &mut self,
        event_type: EventType,
        outcome: impl FnOnce(&mut C),
    ) -> NewEvent {
        self.finished = true;
        let mut payload = self.payload.clone();
        payload.set_duration_ms(millis(self.began.elapsed()));
        outcome(&mut payload);
        self.event(event_type, payload.payload(), &self.started.id.to_string())
    }

    /// Logs the outcome event (see [`Running::outcome`]).
    pub(crate) fn finish(
        &mut self,
        event_type: EventType,
        outcome: impl FnOnce(&mut C),
    ) -> Result<Event> {
        let event = self.outcome(event_type, outcome);
        self.store.append(event)
    }

    /// What a handle's `Drop` does: unless the call has its outcome, logs it failed (changed by
    /// `outcome`) with an `error` saying the `handle` was dropped; a write that fails is counted
    /// in the drop log as `lost`.
    pub(crate) fn log_dropped(&mut self, handle: &str, lost: &str, outcome: impl FnOnce(&mut C)) {
        if self.finished {
            return;
        }
        let reason = dropped_reason(handle, "complete() or fail()");
        drop_log::guarded(lost, || {
            self.finish(C::FAILED, |payload| {
                outcome(payload);
                payload.set_error(reason);
            })
        });
    }
}

/// The `error` a handle dropped without an outcome logs.
pub(crate) fn dropped_reason(what: &str, outcomes: &str) -> String {
    if std::thread::panicking() {
        format!("{what} dropped without an outcome while its thread was panicking")
    } else {
        format!("{what} dropped without an outcome: {outcomes} was never called")
    }
}
