//! Reassembles GL's `thinking_*` and `code_*` runs (start, content…, end) into whole [`Block`]s.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `store::reads`,
//! `store::snapshot`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::GlEvent;
use crate::model::error::Result;
use crate::model::event::Sequence;
use crate::model::event_type::EventType;
use crate::model::filter::Query;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Model thinking (`thinking_start`, `thinking`, `thinking_end`).
    Thinking,
    /// Model-written code (`code_start`, `code`, `code_end`).
    Code,
}

/// A whole thinking or code block, from [`Store::blocks`](crate::Store::blocks).
///
/// A run is grouped by its GL id when it has one, so runs with different ids may interleave.
/// Events without an id belong, by position, to the open id-less run of their kind: a start opens
/// one (inside any that is open, which it then hides until it ends), content goes to the
/// innermost, an end closes it. Content with no open run opens one of its own; a run never ended
/// has no end time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Block {
    /// Thinking or code.
    pub kind: BlockKind,
    /// The GL id the run shares, if it has one.
    pub id: Option<String>,
    /// The content events' values, joined in order.
    pub text: String,
    /// The time of its start event (of its first event when it has no start).
    pub started_at: DateTime<Utc>,
    /// The time of its end event; `None` when it never ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The sequence (in the intent) of its first event.
    pub first_sequence: Sequence,
    /// The sequence of its last event.
    pub last_sequence: Sequence,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Start,
    Content,
    End,
}

fn classify(kind: &EventType) -> Option<(BlockKind, Part)> {
    Some(match kind {
        EventType::ThinkingStart => (BlockKind::Thinking, Part::Start),
        EventType::Thinking => (BlockKind::Thinking, Part::Content),
        EventType::ThinkingEnd => (BlockKind::Thinking, Part::End),
        EventType::CodeStart => (BlockKind::Code, Part::Start),
        EventType::Code => (BlockKind::Code, Part::Content),
        EventType::CodeEnd => (BlockKind::Code, Part::End),
        _ => return None,
    })
}

impl Snapshot {
    /// The intent's thinking and code blocks, in the order they started (see [`Block`] for how
    /// runs are grouped).
    ///
    /// ```
    /// let store = oidb::Store::in_memory()?;
    /// let gl = r#"{"id": null, "value": "", "type": "code_start", "timestamp": "2026-11-20T09:00:07.249"}
    /// {"id": null, "value": "print(1 + 1)\n", "type": "code", "timestamp": "2026-11-20T09:00:07.268"}
    /// {"id": null, "value": "", "type": "code_end", "timestamp": "2026-11-20T09:00:07.271"}"#;
    /// store.import_gl(gl.as_bytes(), "intent-42")?;
    /// let blocks = store.blocks("intent-42")?;
    /// assert_eq!(blocks.len(), 1);
    /// assert_eq!(blocks[0].text, "print(1 + 1)\n");
    /// assert!(blocks[0].ended_at.is_some());
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// A storage error or a damaged record.
    pub fn blocks(&self, intent_id: &str) -> Result<Vec<Block>> {
        let query = Query::new().intent(intent_id).event_types([
            EventType::ThinkingStart,
            EventType::Thinking,
            EventType::ThinkingEnd,
            EventType::CodeStart,
            EventType::Code,
            EventType::CodeEnd,
        ]);
        let mut assembler = Assembler::default();
        for event in self.query_iter(&query)? {
            let event = event?;
            let (Some(gl), Some((kind, part))) =
                (GlEvent::from_event(&event), classify(&event.event_type))
            else {
                continue;
            };
            assembler.add(kind, part, &gl, event.sequence);
        }
        Ok(assembler.finish())
    }
}

read_on_handles! {
    /// The intent's thinking and code blocks, in the order they started (see [`Block`] for how runs
    /// are grouped).
    fn blocks(&self, intent_id: &str) -> Result<Vec<Block>>;
}

/// Blocks being put together; `blocks` in start order, the open ones found by index.
#[derive(Default)]
struct Assembler {
    blocks: Vec<Block>,
    open_by_id: HashMap<(BlockKind, String), usize>,
    open_anonymous: HashMap<BlockKind, Vec<usize>>,
}

impl Assembler {
    fn add(&mut self, kind: BlockKind, part: Part, gl: &GlEvent, sequence: Sequence) {
        let open = match &gl.id {
            Some(id) => self.open_by_id.get(&(kind, id.clone())).copied(),
            None => self
                .open_anonymous
                .get(&kind)
                .and_then(|s| s.last().copied()),
        };
        let index = match (part, open) {
            (Part::Start, _) | (Part::Content | Part::End, None) => {
                if part == Part::Start {
                    // A second start of the same id ends nothing: the old run stays unended.
                    if let Some(id) = &gl.id {
                        self.open_by_id.remove(&(kind, id.clone()));
                    }
                }
                self.open(kind, gl, sequence)
            }
            (_, Some(index)) => index,
        };
        let Some(block) = self.blocks.get_mut(index) else {
            return;
        };
        block.last_sequence = sequence;
        match part {
            Part::Start => {}
            Part::Content => push_text(&mut block.text, &gl.value),
            Part::End => {
                block.ended_at = Some(gl.timestamp);
                self.close(kind, gl, index);
            }
        }
    }

    fn open(&mut self, kind: BlockKind, gl: &GlEvent, sequence: Sequence) -> usize {
        let index = self.blocks.len();
        self.blocks.push(Block {
            kind,
            id: gl.id.clone(),
            text: String::new(),
            started_at: gl.timestamp,
            ended_at: None,
            first_sequence: sequence,
            last_sequence: sequence,
        });
        match &gl.id {
            Some(id) => {
                self.open_by_id.insert((kind, id.clone()), index);
            }
            None => self.open_anonymous.entry(kind).or_default().push(index),
        }
        index
    }

    fn close(&mut self, kind: BlockKind, gl: &GlEvent, index: usize) {
        match &gl.id {
            Some(id) => {
                self.open_by_id.remove(&(kind, id.clone()));
            }
            None => {
                if let Some(stack) = self.open_anonymous.get_mut(&kind) {
                    stack.retain(|i| *i != index);
                }
            }
        }
    }

    fn finish(self) -> Vec<Block> {
        self.blocks
    }
}

/// Content is text; a value of another JSON type is kept as its JSON text rather than lost.
fn push_text(text: &mut String, value: &Value) {
    match value {
        Value::String(s) => text.push_str(s),
        Value::Null => {}
        other => text.push_str(&other.to_string()),
    }
}
