//! [`TraceContext`]: the RFC-0020 correlation state an agent carries from event to event.
//!
//! Uses `model::error`, `model::event`, `engine::format`.

use uuid::Uuid;

use crate::engine::format;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;

/// Where the next event sits in a trace: the trace id (32 lowercase hex digits, as W3C Trace
/// Context) and the id of the event that caused it.
///
/// Start a trace with [`TraceContext::new_root`], stamp events with [`NewEvent::in_trace`], and
/// pass [`TraceContext::child`] of each event down to the work it causes, in this intent or
/// another.
///
/// ```
/// use oidb::{EventType, NewEvent, TraceContext};
/// # let store = oidb::Store::in_memory()?;
/// let root = TraceContext::new_root();
/// let assigned = store.append(
///     NewEvent::new("intent-1", EventType::AgentAssigned, "coordinator").in_trace(&root),
/// )?;
/// let child = root.child(assigned.id);
/// store.append(NewEvent::new("intent-2", EventType::IntentCreated, "agent-a").in_trace(&child))?;
///
/// let trace = store.trace(root.trace_id())?;
/// assert_eq!(trace.len(), 2);
/// assert_eq!(trace[1].parent_event_id.as_deref(), Some(assigned.id.to_string().as_str()));
/// # Ok::<(), oidb::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: String,
    parent_event_id: Option<String>,
}

impl TraceContext {
    /// A new trace: a random 128-bit id as 32 lowercase hex digits, with no parent.
    #[must_use]
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: Uuid::new_v4().simple().to_string(),
            parent_event_id: None,
        }
    }

    /// The context of an existing trace, with no parent.
    ///
    /// # Errors
    /// [`Error::InvalidTraceId`] unless `trace_id` is 32 lowercase hex digits, not all zero.
    pub fn from_trace_id(trace_id: impl Into<String>) -> Result<TraceContext> {
        let trace_id = trace_id.into();
        check_trace_id(&trace_id)?;
        Ok(TraceContext {
            trace_id,
            parent_event_id: None,
        })
    }

    /// The context of the work `event_id` causes: the same trace, with `event_id` as parent.
    #[must_use]
    pub fn child(&self, event_id: impl std::fmt::Display) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id.clone(),
            parent_event_id: Some(event_id.to_string()),
        }
    }

    /// The context of the work a stored event causes, if the event is in a trace.
    #[must_use]
    pub fn after(event: &Event) -> Option<TraceContext> {
        Some(TraceContext {
            trace_id: event.trace_id.clone()?,
            parent_event_id: Some(event.id.to_string()),
        })
    }

    /// The trace id: 32 lowercase hex digits.
    #[must_use]
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The id of the event that caused the work in this context, if any.
    #[must_use]
    pub fn parent_event_id(&self) -> Option<&str> {
        self.parent_event_id.as_deref()
    }
}

impl NewEvent {
    /// Puts the event in a trace: its `trace_id`, and its `parent_event_id` when the context has
    /// one.
    pub fn in_trace(self, context: &TraceContext) -> NewEvent {
        let event = self.trace_id(context.trace_id.clone());
        match &context.parent_event_id {
            Some(parent) => event.parent_event_id(parent.clone()),
            None => event,
        }
    }
}

/// Checks a trace id: 32 lowercase hex digits, not all zero (W3C Trace Context).
pub(crate) fn check_trace_id(trace_id: &str) -> Result<u128> {
    match format::trace_code(trace_id) {
        Some(code) if code != 0 => Ok(code),
        _ => Err(Error::InvalidTraceId(trace_id.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_id_is_32_lowercase_hex_digits() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        assert_ne!(a, b);
        assert_eq!(a.trace_id().len(), 32);
        assert!(a
            .trace_id()
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert!(check_trace_id(a.trace_id()).is_ok());
        assert_eq!(a.parent_event_id(), None);
    }

    #[test]
    fn a_child_keeps_the_trace_and_names_its_parent() {
        let root = TraceContext::new_root();
        let id = Uuid::now_v7();
        let child = root.child(id);
        assert_eq!(child.trace_id(), root.trace_id());
        assert_eq!(child.parent_event_id(), Some(id.to_string().as_str()));
        let grandchild = child.child("evt-2");
        assert_eq!(grandchild.parent_event_id(), Some("evt-2"));
    }

    #[test]
    fn malformed_trace_ids_are_refused() {
        for bad in [
            "",
            "6CAD4A268D116ECE1738F7D93D9C1724",
            "6cad4a268d116ece1738f7d93d9c172",
            "00000000000000000000000000000000",
            "6cad4a268d116ece1738f7d93d9c172g",
        ] {
            assert!(
                matches!(
                    TraceContext::from_trace_id(bad),
                    Err(Error::InvalidTraceId(_))
                ),
                "{bad:?} should be refused"
            );
        }
        assert!(TraceContext::from_trace_id("6cad4a268d116ece1738f7d93d9c1724").is_ok());
    }
}
