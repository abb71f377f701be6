//! What the index postings are: their tables (and those of format versions 1 to 3), the four
//! indexes and their codes, an entry, and how many entries and bytes a block may hold.
//!
//! Uses the file format's facts and the model's positions; every other part of the postings uses
//! it.

use redb::TableDefinition;

use crate::engine::format::Facts;
use crate::model::event::Position;
use crate::model::event::Sequence;

/// `intent_postings`: (intent code, first sequence in the block) -> block.
pub(crate) const INTENT_POSTINGS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("intent_postings");
/// `type_postings`: (type code, first position in the block) -> block.
pub(crate) const TYPE_POSTINGS: TableDefinition<(u32, u64), &[u8]> =
    TableDefinition::new("type_postings");
/// `actor_postings`: (actor code, first position in the block) -> block.
pub(crate) const ACTOR_POSTINGS: TableDefinition<(u32, u64), &[u8]> =
    TableDefinition::new("actor_postings");
/// `trace_postings`: (trace id, first position in the block) -> block.
pub(crate) const TRACE_POSTINGS: TableDefinition<(u128, u64), &[u8]> =
    TableDefinition::new("trace_postings");

/// Format versions 1 to 3: `by_intent`, (intent code, sequence) -> (position, facts).
pub(crate) const BY_INTENT: TableDefinition<(u64, u64), (u64, Facts)> =
    TableDefinition::new("by_intent");
/// Format versions 1 to 3: `by_type`, (type code, position) -> facts.
pub(crate) const BY_TYPE: TableDefinition<(u32, u64), Facts> = TableDefinition::new("by_type");
/// Format versions 1 to 3: `by_actor`, (actor code, position) -> facts.
pub(crate) const BY_ACTOR: TableDefinition<(u32, u64), Facts> = TableDefinition::new("by_actor");
/// Format versions 1 to 3: `by_trace`, (trace id, position) -> facts.
pub(crate) const BY_TRACE: TableDefinition<(u128, u64), Facts> = TableDefinition::new("by_trace");

/// The most entries a block holds. Fewer rows make the index smaller and batched appends
/// cheaper (one rewrite per code per commit); more entries make a single append's rewrite of
/// its code's last block dearer. docs/performance.md has the measurements behind it.
pub(crate) const BLOCK_ENTRIES: usize = 64;

/// The most bytes a block's value takes: entries of far-apart events (large deltas) start a new
/// block sooner.
pub(crate) const BLOCK_BYTES: usize = 1024;

/// One of the four indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Index {
    /// By intent, in sequence order; entries carry their sequence.
    Intent,
    /// By event type; entries do not repeat the type.
    Type,
    /// By actor; entries do not repeat the actor.
    Actor,
    /// By trace id.
    Trace,
}

impl Index {
    /// The name of its table in this format version.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Index::Intent => "intent_postings",
            Index::Type => "type_postings",
            Index::Actor => "actor_postings",
            Index::Trace => "trace_postings",
        }
    }
}

/// A code of one of the indexes: which index, and the key's code in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Code {
    /// An intent's code (`IntentHead::code`).
    Intent(u64),
    /// An event type's interned code.
    Type(u32),
    /// An actor's interned code.
    Actor(u32),
    /// A trace id as the number its hex digits spell.
    Trace(u128),
}

impl Code {
    /// The index this code belongs to.
    pub(crate) fn index(self) -> Index {
        match self {
            Code::Intent(_) => Index::Intent,
            Code::Type(_) => Index::Type,
            Code::Actor(_) => Index::Actor,
            Code::Trace(_) => Index::Trace,
        }
    }

    /// How messages name the key: `type_postings (3, 120)`.
    pub(super) fn describe(self, first: u64) -> String {
        match self {
            Code::Intent(c) => format!("intent_postings ({c}, {first})"),
            Code::Type(c) => format!("type_postings ({c}, {first})"),
            Code::Actor(c) => format!("actor_postings ({c}, {first})"),
            Code::Trace(c) => format!("trace_postings ({c:032x}, {first})"),
        }
    }
}

/// One event in an index: where it is, its sequence (intent entries only; 0 elsewhere), and the
/// facts filters need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The event's position.
    pub(crate) position: Position,
    /// The event's sequence in its intent; 0 in the type, actor and trace indexes.
    pub(crate) sequence: Sequence,
    /// (`created_at` micros, type code, actor code, level code).
    pub(crate) facts: Facts,
}

impl Entry {
    /// What the index orders its entries by: the sequence in the intent index, else the position.
    pub(super) fn order(&self, index: Index) -> u64 {
        if index == Index::Intent {
            self.sequence
        } else {
            self.position
        }
    }
}

/// The type of an index's codes: a number that reads back as itself.
pub(crate) trait CodeKey:
    redb::Key + Copy + Ord + 'static + for<'a> redb::Value<SelfType<'a> = Self>
{
}

impl CodeKey for u32 {}
impl CodeKey for u64 {}
impl CodeKey for u128 {}
