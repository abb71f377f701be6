//! [`TraceTree`]: the events of a trace as a parent/child tree, with the durations of the
//! start/finish pairs in it.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `model::payload_fields`, `model::time`,
//! `store::reads`, `store::snapshot`, `trace::context`, `trace::spans`.

use std::collections::HashMap;
use std::fmt;

use chrono::TimeDelta;
use uuid::Uuid;

use super::context::check_trace_id;
use super::spans::{self, Outcome, SpanKind};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::filter::Query;
use crate::model::payload_fields;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// The events of one trace as a tree: each event under the event its `parent_event_id` names.
///
/// Events whose parent is not in the trace (or who have none) are roots. The tree is kept flat
/// (nodes refer to each other by index), so a deep trace is walked without recursion; a
/// malformed trace whose parent links form a cycle is cut open at the cycle's oldest event, which
/// becomes a root.
///
/// ```
/// use oidb::{EventType, NewEvent, TraceContext};
/// use serde_json::json;
/// # let store = oidb::Store::in_memory()?;
/// let trace = TraceContext::new_root();
/// let started = store.append(NewEvent::new("i", EventType::LlmRequestStarted, "agent")
///     .payload(json!({"request_id": "r1", "model": "gpt-4o"})).in_trace(&trace))?;
/// store.append(NewEvent::new("i", EventType::LlmRequestCompleted, "agent")
///     .payload(json!({"request_id": "r1", "model": "gpt-4o"})).in_trace(&trace.child(started.id)))?;
///
/// let tree = store.trace_tree(trace.trace_id())?;
/// let root = tree.node(tree.roots()[0]);
/// assert_eq!(root.children.len(), 1);
/// assert!(root.span.as_ref().unwrap().duration >= chrono::TimeDelta::zero());
/// # Ok::<(), oidb::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TraceTree {
    trace_id: String,
    nodes: Vec<TraceNode>,
    roots: Vec<usize>,
}

/// One event of a [`TraceTree`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TraceNode {
    /// The event.
    pub event: Event,
    /// The index of its parent node, if its parent is in the trace.
    pub parent: Option<usize>,
    /// The indexes of its children, oldest first.
    pub children: Vec<usize>,
    /// How far below a root it is (0 for a root).
    pub depth: usize,
    /// For an event that starts a request, tool call or stream whose finish is in the trace: how
    /// long it took.
    pub span: Option<SpanTiming>,
}

/// The timing of a start/finish pair, kept on its start node.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SpanTiming {
    /// What the pair is.
    pub kind: SpanKind,
    /// How it ended.
    pub outcome: Outcome,
    /// The node of the finishing event.
    pub end: usize,
    /// From the start event's `created_at` to the finishing event's.
    pub duration: TimeDelta,
    /// The `duration_ms` the finishing event reports, if any.
    pub reported_duration_ms: Option<f64>,
}

impl TraceTree {
    /// Builds the tree of `events` (all of one trace, in position order as
    /// [`Store::trace`](crate::Store::trace) returns them).
    #[must_use]
    pub fn build(trace_id: impl Into<String>, events: Vec<Event>) -> TraceTree {
        let index: HashMap<Uuid, usize> =
            events.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        let mut parents: Vec<Option<usize>> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let parent = e.parent_event_id.as_deref()?;
                let parent = Uuid::parse_str(parent).ok()?;
                index.get(&parent).copied().filter(|p| *p != i)
            })
            .collect();
        break_cycles(&mut parents);

        let pairs = spans::pair(&events);
        let mut nodes: Vec<TraceNode> = events
            .into_iter()
            .zip(&parents)
            .map(|(event, parent)| TraceNode {
                event,
                parent: *parent,
                children: Vec::new(),
                depth: 0,
                span: None,
            })
            .collect();
        let mut roots = Vec::new();
        for (child, parent) in parents.iter().enumerate() {
            match parent.and_then(|p| nodes.get_mut(p)) {
                Some(node) => node.children.push(child),
                None => roots.push(child),
            }
        }
        let mut stack: Vec<(usize, usize)> = roots.iter().map(|r| (*r, 0)).collect();
        while let Some((at, depth)) = stack.pop() {
            if let Some(node) = nodes.get_mut(at) {
                node.depth = depth;
                stack.extend(node.children.iter().map(|c| (*c, depth + 1)));
            }
        }
        for pair in pairs {
            let (Some(start), Some((end, outcome))) = (pair.start, pair.end) else {
                continue;
            };
            let Some(end_node) = nodes.get(end) else {
                continue;
            };
            let ended_at = end_node.event.created_at;
            let reported_duration_ms =
                payload_fields::number(&end_node.event.payload, "duration_ms");
            if let Some(start_node) = nodes.get_mut(start) {
                start_node.span = Some(SpanTiming {
                    kind: pair.kind,
                    outcome,
                    end,
                    duration: ended_at - start_node.event.created_at,
                    reported_duration_ms,
                });
            }
        }
        TraceTree {
            trace_id: trace_id.into(),
            nodes,
            roots,
        }
    }

    /// The trace id.
    #[must_use]
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// How many events.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the trace has no events.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node, in position order.
    #[must_use]
    pub fn nodes(&self) -> &[TraceNode] {
        &self.nodes
    }

    /// The node at `index`.
    ///
    /// # Panics
    /// If `index` is not below [`TraceTree::len`]; indexes from this tree always are.
    #[must_use]
    #[allow(clippy::indexing_slicing)] // documented: an index from this tree
    pub fn node(&self, index: usize) -> &TraceNode {
        &self.nodes[index]
    }

    /// The roots' indexes, oldest first.
    #[must_use]
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// The index of the node of event `id`.
    #[must_use]
    pub fn find(&self, id: Uuid) -> Option<usize> {
        self.nodes.iter().position(|n| n.event.id == id)
    }

    /// Every node's index, depth first (each node before its children, siblings oldest first).
    #[must_use]
    pub fn depth_first(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<usize> = self.roots.iter().rev().copied().collect();
        while let Some(at) = stack.pop() {
            order.push(at);
            if let Some(node) = self.nodes.get(at) {
                stack.extend(node.children.iter().rev());
            }
        }
        order
    }
}

/// Cuts every cycle of parent links at its oldest member (the lowest index), which becomes a root.
fn break_cycles(parents: &mut [Option<usize>]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; parents.len()];
    for start in 0..parents.len() {
        let mut path = Vec::new();
        let mut at = Some(start);
        while let Some(node) = at {
            match marks.get(node).copied() {
                Some(Mark::New) => {
                    if let Some(m) = marks.get_mut(node) {
                        *m = Mark::OnPath;
                    }
                    path.push(node);
                    at = parents.get(node).copied().flatten();
                }
                Some(Mark::OnPath) => {
                    // `node` is on the current path: the path from it on is a cycle.
                    let cycle = path.iter().skip_while(|n| **n != node);
                    if let Some(oldest) = cycle.min().copied() {
                        if let Some(p) = parents.get_mut(oldest) {
                            *p = None;
                        }
                    }
                    break;
                }
                _ => break,
            }
        }
        for node in path {
            if let Some(m) = marks.get_mut(node) {
                *m = Mark::Done;
            }
        }
    }
}

/// The deepest level [`TraceTree`]'s outline indents.
const MAX_INDENT: usize = 32;

impl fmt::Display for TraceTree {
    /// An indented outline: one line per event, with durations of finished pairs. Lines deeper
    /// than 32 levels are indented as the 32nd and say their depth.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trace {} ({} events)", self.trace_id, self.nodes.len())?;
        for at in self.depth_first() {
            let node = self.node(at);
            let event = &node.event;
            // Indentation stops growing at MAX_INDENT levels; deeper lines say their depth.
            write!(
                f,
                "{:indent$}",
                "",
                indent = 2 * (node.depth.min(MAX_INDENT) + 1)
            )?;
            if node.depth > MAX_INDENT {
                write!(f, "[depth {}] ", node.depth)?;
            }
            write!(
                f,
                "{} {} by {} in {}",
                crate::model::time::format(event.created_at),
                event.event_type,
                event.actor,
                event.intent_id,
            )?;
            if let Some(model) = payload_fields::text(&event.payload, "model") {
                write!(f, " [{model}]")?;
            }
            if let Some(tool) = payload_fields::text(&event.payload, "tool_name") {
                write!(f, " [{tool}]")?;
            }
            if let Some(span) = &node.span {
                #[allow(clippy::cast_precision_loss)] // milliseconds for display
                let ms = span.duration.num_microseconds().unwrap_or(0) as f64 / 1000.0;
                let outcome = match span.outcome {
                    Outcome::Completed => "completed",
                    Outcome::Failed => "failed",
                    Outcome::Cancelled => "cancelled",
                };
                write!(f, " ({outcome} after {ms:.3} ms)")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl Snapshot {
    /// Every event of a trace, across intents, in position order (RFC-0020's
    /// `GET /events?trace_id=`).
    ///
    /// # Errors
    /// [`Error::InvalidTraceId`](crate::Error::InvalidTraceId) unless `trace_id` is 32 lowercase
    /// hex digits; a storage error.
    pub fn trace(&self, trace_id: &str) -> Result<Vec<Event>> {
        check_trace_id(trace_id)?;
        self.query_iter(&Query::new().trace(trace_id))?.collect()
    }

    /// The events of a trace as a parent/child tree, with the durations of its start/finish
    /// pairs.
    ///
    /// # Errors
    /// As [`Store::trace`](crate::Store::trace).
    pub fn trace_tree(&self, trace_id: &str) -> Result<TraceTree> {
        Ok(TraceTree::build(trace_id, self.trace(trace_id)?))
    }
}

read_on_handles! {
    /// Every event of a trace, across intents, in position order (RFC-0020's `GET
    /// /events?trace_id=`).
    fn trace(&self, trace_id: &str) -> Result<Vec<Event>>;
    /// The events of a trace as a parent/child tree, with the durations of its start/finish pairs.
    fn trace_tree(&self, trace_id: &str) -> Result<TraceTree>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_cut_at_their_oldest_member() {
        // 0 → 2 → 1 → 0 is a cycle; 3 hangs off it; 4 is a root.
        let mut parents = vec![Some(2), Some(0), Some(1), Some(1), None];
        break_cycles(&mut parents);
        assert_eq!(parents, vec![None, Some(0), Some(1), Some(1), None]);
        let mut self_loop_free = vec![None, Some(0), Some(1)];
        break_cycles(&mut self_loop_free);
        assert_eq!(self_loop_free, vec![None, Some(0), Some(1)]);
    }
}
