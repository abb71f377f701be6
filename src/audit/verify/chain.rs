//! One intent's chain walked in sequence order: every event's hash recomputed from its stored
//! content, every link compared with the hash before it, gaps and damage named as breaks.
//!
//! Uses the engine's tables, the proofs' hash arithmetic and the model.

use redb::{ReadTransaction, ReadableTable};
use uuid::Uuid;

use super::{BreakKind, ChainBreak, ChainVerification};
use crate::engine::format::{self, IntentHead, EVENTS, INTENTS};
use crate::engine::postings::{self, Code};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::Position;
use crate::model::event::Sequence;
use crate::proof::chain::{compute_event_hash, format_hash};

/// Verifies `intent_id`'s chain in one read transaction.
pub(super) fn verify_chain_in(txn: &ReadTransaction, intent_id: &str) -> Result<ChainVerification> {
    let mut chain = ChainWalk::new(intent_id);
    let intents = txn.open_table(INTENTS)?;
    let head = match intents.get(intent_id)? {
        Some(value) => match IntentHead::decode(value.value(), intent_id) {
            Ok(head) => head,
            Err(e) => {
                chain.push(0, None, BreakKind::HeadMismatch, None, None, e.to_string());
                return Ok(chain.finish());
            }
        },
        None => return Ok(chain.finish()),
    };
    let events = txn.open_table(EVENTS)?;
    for entry in postings::entries(txn, Code::Intent(head.code), 0, u64::MAX, true)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let sequence = chain.expected;
                chain.push(
                    sequence,
                    None,
                    BreakKind::DamagedRecord,
                    None,
                    None,
                    e.to_string(),
                );
                break;
            }
        };
        let (sequence, position) = (entry.sequence, entry.position);
        let record = match events.get(position)? {
            Some(bytes) => match format::decode_record(position, bytes.value()) {
                Ok(event) => Found::Event(Box::new(event)),
                Err(e) => Found::Damaged(e.to_string()),
            },
            None => Found::Nothing,
        };
        chain.visit(sequence, position, record);
    }
    chain.check_head(&head);
    Ok(chain.finish())
}

/// What an index row's position holds.
pub(super) enum Found {
    Event(Box<Event>),
    Damaged(String),
    Nothing,
}

/// What the next event's `previous_event_hash` must be.
pub(super) enum Link {
    /// Nothing: the next event is the first of the chain.
    Start,
    /// The stored hash of the event read just before.
    After(String),
    /// Cannot be judged (after a gap, a missing record or a moved event; that is the break).
    Unknown,
}

/// The state of a walk along one intent's chain, in sequence order.
pub(super) struct ChainWalk {
    intent_id: String,
    expected: Sequence,
    link: Link,
    count: u64,
    first: Sequence,
    last: Sequence,
    last_hash: Option<String>,
    breaks: Vec<ChainBreak>,
}

impl ChainWalk {
    fn new(intent_id: &str) -> ChainWalk {
        ChainWalk {
            intent_id: intent_id.to_owned(),
            expected: 1,
            link: Link::Start,
            count: 0,
            first: 0,
            last: 0,
            last_hash: None,
            breaks: Vec::new(),
        }
    }

    fn push(
        &mut self,
        sequence: Sequence,
        event: Option<(Uuid, Position)>,
        kind: BreakKind,
        expected: Option<String>,
        found: Option<String>,
        message: String,
    ) {
        self.breaks.push(ChainBreak {
            sequence,
            event_id: event.map(|(id, _)| id),
            position: event.map(|(_, p)| p),
            kind,
            expected,
            found,
            message,
        });
    }

    /// Reads the index row `sequence -> position` and what the position holds.
    fn visit(&mut self, sequence: Sequence, position: Position, found: Found) {
        if sequence != self.expected {
            self.gap(sequence, position);
        }
        self.expected = sequence + 1;
        let event = match found {
            Found::Event(event) if event.intent_id == self.intent_id => *event,
            Found::Event(event) => {
                self.push(
                    sequence,
                    Some((event.id, position)),
                    BreakKind::WrongIntent,
                    Some(self.intent_id.clone()),
                    Some(event.intent_id.clone()),
                    format!(
                        "sequence {sequence}: the index points at position {position}, which holds event {} of intent {:?}",
                        event.id, event.intent_id
                    ),
                );
                self.link = Link::Unknown;
                return;
            }
            Found::Damaged(reason) => {
                let message = format!("sequence {sequence}: {reason}");
                self.push(
                    sequence,
                    None,
                    BreakKind::DamagedRecord,
                    None,
                    None,
                    message,
                );
                self.link = Link::Unknown;
                return;
            }
            Found::Nothing => {
                let message = format!(
                    "sequence {sequence}: the index points at position {position}, which holds no record"
                );
                self.push(
                    sequence,
                    None,
                    BreakKind::MissingRecord,
                    None,
                    None,
                    message,
                );
                self.link = Link::Unknown;
                return;
            }
        };
        self.count += 1;
        if self.first == 0 {
            self.first = sequence;
        }
        self.last = sequence;
        self.check_event(sequence, position, event);
    }

    fn gap(&mut self, sequence: Sequence, position: Position) {
        let missing = if sequence == self.expected + 1 {
            format!("event {} is missing", self.expected)
        } else {
            format!("events {} to {} are missing", self.expected, sequence - 1)
        };
        self.push(
            self.expected,
            None,
            BreakKind::MissingEvent,
            Some(self.expected.to_string()),
            Some(sequence.to_string()),
            format!(
                "intent {:?}: {missing}; the chain goes on at sequence {sequence} (position {position})",
                self.intent_id
            ),
        );
        self.link = Link::Unknown;
    }

    /// Checks the event read at `sequence`: its own sequence, its hash, its link.
    fn check_event(&mut self, sequence: Sequence, position: Position, event: Event) {
        let at = Some((event.id, position));
        let in_order = event.sequence == sequence;
        if !in_order {
            self.push(
                sequence,
                at,
                BreakKind::OutOfOrder,
                Some(sequence.to_string()),
                Some(event.sequence.to_string()),
                format!(
                    "sequence {sequence}: found event {} at position {position}, which says it is sequence {}; events were moved",
                    event.id, event.sequence
                ),
            );
        }
        match compute_event_hash(&event) {
            Ok(recomputed) if recomputed == event.event_hash => {}
            Ok(recomputed) => self.push(
                sequence,
                at,
                BreakKind::HashMismatch,
                Some(recomputed.clone()),
                Some(event.event_hash.clone()),
                format!(
                    "sequence {sequence}: event {} has event_hash {}, but its content hashes to {recomputed}; the event was altered",
                    event.id, event.event_hash
                ),
            ),
            Err(e) => self.push(
                sequence,
                at,
                BreakKind::DamagedRecord,
                None,
                None,
                format!("sequence {sequence}: event {} cannot be hashed: {e}", event.id),
            ),
        }
        #[cfg(feature = "signatures")]
        if let Err(e) = crate::proof::signature::verify_event_signature(&event) {
            self.push(
                sequence,
                at,
                BreakKind::BadSignature,
                None,
                None,
                format!("sequence {sequence}: {e}"),
            );
        }
        let previous = match &self.link {
            Link::Start => Some(None),
            Link::After(hash) => Some(Some(hash.clone())),
            Link::Unknown => None,
        };
        if let (true, Some(previous)) = (in_order, previous) {
            if event.previous_event_hash != previous {
                let show = |h: Option<&str>| h.unwrap_or("(none)").to_owned();
                self.push(
                    sequence,
                    at,
                    BreakKind::PreviousHashMismatch,
                    Some(show(previous.as_deref())),
                    Some(show(event.previous_event_hash.as_deref())),
                    format!(
                        "sequence {sequence}: event {} has previous_event_hash {}, but the event before it has hash {}",
                        event.id,
                        show(event.previous_event_hash.as_deref()),
                        show(previous.as_deref())
                    ),
                );
            }
        }
        // After an event out of place, the next link cannot be judged; the move is the break.
        self.link = if in_order {
            Link::After(event.event_hash.clone())
        } else {
            Link::Unknown
        };
        self.last_hash = Some(event.event_hash);
    }

    fn check_head(&mut self, head: &IntentHead) {
        if head.last_sequence != self.last {
            let message = if head.last_sequence > self.last {
                format!(
                    "the intent's head says its last event is sequence {}, but the chain ends at {}; events were removed from the end",
                    head.last_sequence, self.last
                )
            } else {
                format!(
                    "the intent's head says its last event is sequence {}, but the chain goes on to {}",
                    head.last_sequence, self.last
                )
            };
            self.push(
                head.last_sequence.max(self.last),
                None,
                BreakKind::HeadMismatch,
                Some(head.last_sequence.to_string()),
                Some(self.last.to_string()),
                message,
            );
            return;
        }
        let head_hash = format_hash(&head.last_hash);
        if self.last_hash.as_deref().is_some_and(|h| h != head_hash) {
            self.push(
                self.last,
                None,
                BreakKind::HeadMismatch,
                Some(head_hash.clone()),
                self.last_hash.clone(),
                format!(
                    "the intent's head says its last hash is {head_hash}, but its last event has hash {}",
                    self.last_hash.as_deref().unwrap_or_default()
                ),
            );
        }
    }

    fn finish(self) -> ChainVerification {
        ChainVerification {
            valid: self.breaks.is_empty(),
            intent_id: self.intent_id,
            event_count: self.count,
            first_sequence: self.first,
            last_sequence: self.last,
            breaks: self.breaks,
        }
    }
}
