//! Verification: each intent's hash chain recomputed from what is stored (RFC-0019), and the
//! whole store checked against itself: positions, every index row, every intent head.
//!
//! Nothing here trusts a stored hash: every event's hash is recomputed from its stored content,
//! every link is compared with the hash of the event before it, and every index row is compared
//! with the record it points at.

use std::collections::HashMap;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::format::{
    self, Facts, IntentHead, NameKind, BY_ID, BY_TIME, EVENTS, INTENTS, INTENT_NAMES, NAMES,
};
use crate::engine::postings::{self, Code, Index};
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::Position;
use crate::model::event::Sequence;
use crate::model::time;
use crate::proof::chain::{compute_event_hash, format_hash};
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// The result of verifying one intent's hash chain, in OpenIntent's `ChainVerification` JSON shape
/// (`intent_id, valid, event_count, first_sequence, last_sequence, chain_valid, breaks`).
///
/// ```
/// # let store = oidb::Store::in_memory()?;
/// store.log_event("intent-42", oidb::EventType::Comment, serde_json::json!({"n": 1}))?;
/// let report = store.verify_chain("intent-42")?;
/// assert!(report.valid);
/// assert_eq!((report.event_count, report.first_sequence, report.last_sequence), (1, 1, 1));
/// # Ok::<(), oidb::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChainVerification {
    /// The intent.
    pub intent_id: String,
    /// Whether the chain has no break.
    pub valid: bool,
    /// How many of the intent's events were found and read.
    pub event_count: u64,
    /// The first sequence found (0 when none).
    pub first_sequence: Sequence,
    /// The last sequence found (0 when none).
    pub last_sequence: Sequence,
    /// Every break, in chain order.
    pub breaks: Vec<ChainBreak>,
}

/// One place where an intent's chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChainBreak {
    /// The sequence at which the break was found (the one expected there).
    pub sequence: Sequence,
    /// The event found there, when one was read.
    pub event_id: Option<Uuid>,
    /// Where in the log the event found there is, when known.
    pub position: Option<Position>,
    /// What is wrong.
    pub kind: BreakKind,
    /// What should have been there (a hash, a sequence), when it applies.
    pub expected: Option<String>,
    /// What was there instead.
    pub found: Option<String>,
    /// The whole story, for people.
    pub message: String,
}

/// What kind of break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreakKind {
    /// The stored `event_hash` is not the hash of the stored content: the event was altered.
    HashMismatch,
    /// `previous_event_hash` is not the hash of the event before it.
    PreviousHashMismatch,
    /// Sequences are missing: events were removed.
    MissingEvent,
    /// The event read at this place in the chain carries another sequence: events were moved.
    OutOfOrder,
    /// The index names a position that holds no record.
    MissingRecord,
    /// The record cannot be decoded or hashed.
    DamagedRecord,
    /// The record the intent's index points at belongs to another intent.
    WrongIntent,
    /// The intent's head (its last sequence and hash) does not match the last event: events were
    /// removed from the end, or the head was rewritten.
    HeadMismatch,
    /// The event's RFC-0018 proof does not verify (checked with the `signatures` feature).
    BadSignature,
}

impl Serialize for ChainVerification {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("intent_id", &self.intent_id)?;
        map.serialize_entry("valid", &self.valid)?;
        map.serialize_entry("event_count", &self.event_count)?;
        map.serialize_entry("first_sequence", &self.first_sequence)?;
        map.serialize_entry("last_sequence", &self.last_sequence)?;
        // OpenIntent writes the verdict twice: `valid` (SDK) and `chain_valid` (RFC-0019 §6.1).
        map.serialize_entry("chain_valid", &self.valid)?;
        map.serialize_entry("breaks", &self.breaks)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for ChainVerification {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            intent_id: String,
            valid: Option<bool>,
            chain_valid: Option<bool>,
            #[serde(default)]
            event_count: u64,
            #[serde(default)]
            first_sequence: u64,
            #[serde(default)]
            last_sequence: u64,
            #[serde(default)]
            breaks: Vec<ChainBreak>,
        }
        let wire = Wire::deserialize(deserializer)?;
        Ok(ChainVerification {
            intent_id: wire.intent_id,
            valid: wire.valid.or(wire.chain_valid).unwrap_or(false),
            event_count: wire.event_count,
            first_sequence: wire.first_sequence,
            last_sequence: wire.last_sequence,
            breaks: wire.breaks,
        })
    }
}

/// The result of [`Store::verify_all`]: every intent's chain, and what only the store can check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoreVerification {
    /// Whether every chain is valid and the store has no problem.
    pub valid: bool,
    /// How many records the log holds.
    pub event_count: u64,
    /// The last position (equal to `event_count` when positions are contiguous).
    pub last_position: Position,
    /// Every intent's chain verification.
    pub chains: Vec<ChainVerification>,
    /// What is wrong with the store itself.
    pub problems: Vec<StoreProblem>,
}

impl StoreVerification {
    /// The chains that have breaks.
    pub fn broken_chains(&self) -> impl Iterator<Item = &ChainVerification> {
        self.chains.iter().filter(|c| !c.valid)
    }
}

/// One thing wrong with the store outside the chains: a hole in the positions, a damaged record,
/// an index row missing or pointing at a record that does not agree with it, a wrong intent head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoreProblem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The table at fault (`events`, `by_id`, `intent_postings`, `intents`, …).
    pub table: String,
    /// The position concerned, when there is one.
    pub position: Option<Position>,
    /// The whole story, for people.
    pub message: String,
}

/// What kind of store problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// Positions are not contiguous from 1: records are missing.
    PositionGap,
    /// A record cannot be decoded.
    DamagedRecord,
    /// A record has no row in an index.
    MissingIndexRow,
    /// An index row does not agree with the record it points at (or points at none).
    IndexRowDisagrees,
    /// An event's type or actor has no code in the name tables.
    MissingName,
    /// An intent has events but no head, or a head that does not match its events.
    HeadDisagrees,
}

/// Which part of [`Store::verify_all`] is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyStage {
    /// Recomputing every intent's chain; counts intents.
    Chains,
    /// Reading every record and checking its index rows; counts records.
    Records,
    /// Looking for index rows that point at nothing; counts index tables.
    Indexes,
}

/// How far [`Store::verify_all`] has come: `done` of `total` in the current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyProgress {
    /// The stage.
    pub stage: VerifyStage,
    /// Units done in this stage.
    pub done: u64,
    /// Units in this stage.
    pub total: u64,
}

/// How many records pass between two progress reports.
const PROGRESS_EVERY: u64 = 4096;

impl Snapshot {
    /// Verifies one intent's hash chain from what is stored: every event's hash is recomputed from
    /// its content, every `previous_event_hash` compared with the hash of the event before it, the
    /// sequences checked to run 1, 2, 3, … without gaps, and the intent's head compared with its
    /// last event. An intent with no events has a valid, empty chain.
    ///
    /// # Errors
    /// A storage error. Damage to the file is reported as breaks, not as an error.
    pub fn verify_chain(&self, intent_id: &str) -> Result<ChainVerification> {
        let txn = self.txn();
        verify_chain_in(txn, intent_id)
    }

    /// Verifies everything: every intent's chain (as [`Store::verify_chain`]), and what only the
    /// store knows: positions contiguous from 1, every record readable, every record's row in each
    /// index (`by_id`, `by_time`; entries in `intent_postings`, `type_postings`, `actor_postings`,
    /// `trace_postings`) present and agreeing with it, every index block readable, no index row
    /// or entry pointing at a record that does not agree with it, and every
    /// intent head matching its events. `progress` is called as the work advances, so a caller can
    /// show it; the whole check reads one consistent snapshot of the file.
    ///
    /// ```
    /// # let store = oidb::Store::in_memory()?;
    /// # store.log_event("a", oidb::EventType::Comment, serde_json::json!({}))?;
    /// let report = store.verify_all(|p| eprintln!("{:?} {}/{}", p.stage, p.done, p.total))?;
    /// assert!(report.valid, "{:?}", report.problems);
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// A storage error. Damage to the file is reported in the result, not as an error.
    pub fn verify_all(
        &self,
        mut progress: impl FnMut(VerifyProgress),
    ) -> Result<StoreVerification> {
        let txn = self.txn();
        let intents = txn.open_table(INTENTS)?;
        let mut heads: Vec<(String, std::result::Result<IntentHead, String>)> = Vec::new();
        for row in intents.iter()? {
            let (name, value) = row?;
            let intent_id = name.value().to_owned();
            let head = IntentHead::decode(value.value(), &intent_id).map_err(|e| e.to_string());
            heads.push((intent_id, head));
        }

        let total_intents = heads.len() as u64;
        let mut chains = Vec::with_capacity(heads.len());
        for (done, (intent_id, _)) in heads.iter().enumerate() {
            chains.push(verify_chain_in(txn, intent_id)?);
            if (done as u64).is_multiple_of(64) {
                progress(VerifyProgress {
                    stage: VerifyStage::Chains,
                    done: done as u64,
                    total: total_intents,
                });
            }
        }
        progress(VerifyProgress {
            stage: VerifyStage::Chains,
            done: total_intents,
            total: total_intents,
        });

        let mut scan = StoreScan::open(txn, heads)?;
        scan.records(&mut progress)?;
        scan.indexes(&mut progress)?;
        scan.heads();
        let valid = scan.problems.is_empty() && chains.iter().all(|c| c.valid);
        Ok(StoreVerification {
            valid,
            event_count: scan.records_read,
            last_position: scan.last_position,
            chains,
            problems: scan.problems,
        })
    }
}

read_on_handles! {
    /// Verifies one intent's hash chain from what is stored.
    fn verify_chain(&self, intent_id: &str) -> Result<ChainVerification>;
    /// Verifies everything.
    fn verify_all(&self, progress: impl FnMut(VerifyProgress)) -> Result<StoreVerification>;
}

/// Verifies `intent_id`'s chain in one read transaction.
pub(crate) fn verify_chain_in(txn: &ReadTransaction, intent_id: &str) -> Result<ChainVerification> {
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
enum Found {
    Event(Box<Event>),
    Damaged(String),
    Nothing,
}

/// What the next event's `previous_event_hash` must be.
enum Link {
    /// Nothing: the next event is the first of the chain.
    Start,
    /// The stored hash of the event read just before.
    After(String),
    /// Cannot be judged (after a gap, a missing record or a moved event; that is the break).
    Unknown,
}

/// The state of a walk along one intent's chain, in sequence order.
struct ChainWalk {
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

/// What each intent's events were seen to be, to compare with its head.
#[derive(Default)]
struct Seen {
    count: u64,
    first_position: Position,
    last_position: Position,
    last_sequence: Sequence,
}

/// The tables the store-only checks read, in one read transaction.
struct Tables {
    events: ReadOnlyTable<u64, &'static [u8]>,
    by_id: ReadOnlyTable<u128, u64>,
    by_time: ReadOnlyTable<(i64, u64), Facts>,
    names: ReadOnlyTable<(u8, &'static str), u32>,
}

impl Tables {
    fn open(txn: &ReadTransaction) -> Result<Tables> {
        Ok(Tables {
            events: txn.open_table(EVENTS)?,
            by_id: txn.open_table(BY_ID)?,
            by_time: txn.open_table(BY_TIME)?,
            names: txn.open_table(NAMES)?,
        })
    }

    fn record_at(&self, position: Position) -> Result<Option<Event>> {
        Ok(match self.events.get(position)? {
            Some(bytes) => format::decode_record(position, bytes.value()).ok(),
            None => None,
        })
    }
}

/// The store-only checks: what they have seen so far and what they found wrong.
struct StoreScan<'t> {
    txn: &'t ReadTransaction,
    tables: Tables,
    lookup: postings::Lookup,
    heads: HashMap<String, IntentHead>,
    names: HashMap<(NameKind, String), Option<u32>>,
    seen: HashMap<String, Seen>,
    traced: u64,
    records_read: u64,
    last_position: Position,
    problems: Vec<StoreProblem>,
}

impl<'t> StoreScan<'t> {
    fn open(
        txn: &'t ReadTransaction,
        heads: Vec<(String, std::result::Result<IntentHead, String>)>,
    ) -> Result<StoreScan<'t>> {
        let mut problems = Vec::new();
        let intent_names = txn.open_table(INTENT_NAMES)?;
        let mut decoded = HashMap::with_capacity(heads.len());
        for (intent_id, head) in heads {
            match head {
                Ok(head) => {
                    let named = intent_names.get(head.code)?.map(|g| g.value().to_owned());
                    if named.as_deref() != Some(intent_id.as_str()) {
                        problems.push(StoreProblem {
                            kind: ProblemKind::HeadDisagrees,
                            table: "intent_names".into(),
                            position: None,
                            message: format!(
                                "intent {intent_id:?} has code {}, but intent_names maps that code to {named:?}",
                                head.code
                            ),
                        });
                    }
                    decoded.insert(intent_id, head);
                }
                Err(reason) => problems.push(StoreProblem {
                    kind: ProblemKind::HeadDisagrees,
                    table: "intents".into(),
                    position: None,
                    message: reason,
                }),
            }
        }
        Ok(StoreScan {
            txn,
            tables: Tables::open(txn)?,
            lookup: postings::Lookup::default(),
            heads: decoded,
            names: HashMap::new(),
            seen: HashMap::new(),
            traced: 0,
            records_read: 0,
            last_position: 0,
            problems,
        })
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        table: &str,
        position: Option<Position>,
        message: String,
    ) {
        self.problems.push(StoreProblem {
            kind,
            table: table.to_owned(),
            position,
            message,
        });
    }

    fn name_code(&mut self, kind: NameKind, name: &str) -> Result<Option<u32>> {
        if let Some(code) = self.names.get(&(kind, name.to_owned())) {
            return Ok(*code);
        }
        let code = self
            .tables
            .names
            .get((kind as u8, name))?
            .map(|g| g.value());
        self.names.insert((kind, name.to_owned()), code);
        Ok(code)
    }

    /// Reads every record in position order: contiguous positions, decodable records, and each
    /// record's row in every index.
    fn records(&mut self, progress: &mut impl FnMut(VerifyProgress)) -> Result<()> {
        let last = format::last_position(&self.tables.events)?;
        self.last_position = last;
        let mut expected: Position = 1;
        let mut from: Position = 0;
        loop {
            // A page of records at a time, so checking one does not hold the table borrowed.
            let mut page: Vec<(Position, Result<Event>)> = Vec::with_capacity(256);
            for row in self.tables.events.range(from..)?.take(256) {
                let (key, value) = row?;
                let position = key.value();
                page.push((position, format::decode_record(position, value.value())));
            }
            let Some((end, _)) = page.last() else { break };
            from = end + 1;
            for (position, decoded) in page {
                if position != expected {
                    let gap = if position == expected + 1 {
                        format!("position {expected} holds no record")
                    } else {
                        format!("positions {expected} to {} hold no record", position - 1)
                    };
                    self.problem(
                        ProblemKind::PositionGap,
                        "events",
                        Some(expected),
                        format!("{gap}; positions must run from 1 without holes"),
                    );
                }
                expected = position + 1;
                self.records_read += 1;
                match decoded {
                    Ok(event) => self.check_rows(&event)?,
                    Err(e) => self.problem(
                        ProblemKind::DamagedRecord,
                        "events",
                        Some(position),
                        e.to_string(),
                    ),
                }
                if self.records_read.is_multiple_of(PROGRESS_EVERY) {
                    progress(VerifyProgress {
                        stage: VerifyStage::Records,
                        done: self.records_read,
                        total: last,
                    });
                }
            }
        }
        progress(VerifyProgress {
            stage: VerifyStage::Records,
            done: self.records_read,
            total: last,
        });
        Ok(())
    }

    /// Checks that each index holds the row `event` should have, with the facts it should carry.
    fn check_rows(&mut self, event: &Event) -> Result<()> {
        let position = event.position;
        let type_code = self.name_code(NameKind::EventType, event.event_type.as_str())?;
        let actor_code = self.name_code(NameKind::Actor, &event.actor)?;
        let (Some(type_code), Some(actor_code)) = (type_code, actor_code) else {
            self.problem(
                ProblemKind::MissingName,
                "names",
                Some(position),
                format!(
                    "event {} has type {:?} and actor {:?}, which are not both in the name table",
                    event.id,
                    event.event_type.as_str(),
                    event.actor
                ),
            );
            return Ok(());
        };
        let micros = time::to_micros(event.created_at);
        let facts: Facts = (micros, type_code, actor_code, event.level.code());

        let row = self
            .tables
            .by_id
            .get(event.id.as_u128())?
            .map(|g| (g.value(), facts));
        self.expect_row("by_id", position, row, facts, || {
            format!("event id {}", event.id)
        });
        match self.heads.get(&event.intent_id).map(|h| h.code) {
            Some(code) => {
                self.expect_entry(Code::Intent(code), event.sequence, position, facts, || {
                    format!("intent {:?} sequence {}", event.intent_id, event.sequence)
                })?;
            }
            None => self.problem(
                ProblemKind::HeadDisagrees,
                "intents",
                Some(position),
                format!(
                    "event {} belongs to intent {:?}, which has no head",
                    event.id, event.intent_id
                ),
            ),
        }
        self.expect_entry(Code::Type(type_code), position, position, facts, || {
            format!("type {:?}", event.event_type.as_str())
        })?;
        self.expect_entry(Code::Actor(actor_code), position, position, facts, || {
            format!("actor {:?}", event.actor)
        })?;
        let row = self
            .tables
            .by_time
            .get((micros, position))?
            .map(|g| (position, g.value()));
        self.expect_row("by_time", position, row, facts, || {
            time::format(event.created_at)
        });
        if let Some(trace) = event.trace_id.as_deref().and_then(format::trace_code) {
            self.traced += 1;
            self.expect_entry(Code::Trace(trace), position, position, facts, || {
                format!("trace {trace:032x}")
            })?;
        }

        let seen = self.seen.entry(event.intent_id.clone()).or_default();
        seen.count += 1;
        if seen.first_position == 0 {
            seen.first_position = position;
        }
        seen.last_position = position;
        seen.last_sequence = seen.last_sequence.max(event.sequence);
        Ok(())
    }

    /// Looks up the entry of `code` at `order` (the event's sequence in its intent, else its
    /// position) and compares it with the record; a damaged block is a problem of its table.
    fn expect_entry(
        &mut self,
        code: Code,
        order: u64,
        position: Position,
        facts: Facts,
        key: impl FnOnce() -> String,
    ) -> Result<()> {
        let table = code.index().table();
        match self.lookup.find(self.txn, code, order) {
            Ok(entry) => {
                let row = entry.map(|e| (e.position, e.facts));
                self.expect_row(table, position, row, facts, key);
                Ok(())
            }
            Err(e @ crate::model::error::Error::Corrupt { .. }) => {
                self.problem(
                    ProblemKind::IndexRowDisagrees,
                    table,
                    Some(position),
                    e.to_string(),
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Compares an index row (the position it names and the facts it carries) with the record.
    fn expect_row(
        &mut self,
        table: &str,
        position: Position,
        row: Option<(Position, Facts)>,
        facts: Facts,
        key: impl FnOnce() -> String,
    ) {
        let message = match row {
            None => (
                ProblemKind::MissingIndexRow,
                format!("{table} has no row for {} (the record at position {position})", key()),
            ),
            Some((at, _)) if at != position => (
                ProblemKind::IndexRowDisagrees,
                format!(
                    "{table} maps {} to position {at}, but the record is at position {position}",
                    key()
                ),
            ),
            Some((_, carried)) if carried != facts => (
                ProblemKind::IndexRowDisagrees,
                format!(
                    "{table}'s row for {} carries {carried:?} (time, type, actor, level), but the record at position {position} has {facts:?}",
                    key()
                ),
            ),
            Some(_) => return,
        };
        self.problem(message.0, table, Some(position), message.1);
    }

    /// Every record's rows were found above; an index with more rows than that holds rows that
    /// point at nothing (or at a record that does not agree). Only then is it read row by row.
    fn indexes(&mut self, progress: &mut impl FnMut(VerifyProgress)) -> Result<()> {
        let mut step = |done: u64| {
            progress(VerifyProgress {
                stage: VerifyStage::Indexes,
                done,
                total: 6,
            });
        };
        self.extra_by_id()?;
        step(1);
        self.extra_entries(Index::Intent)?;
        step(2);
        self.extra_entries(Index::Type)?;
        step(3);
        self.extra_entries(Index::Actor)?;
        step(4);
        self.extra_by_time()?;
        step(5);
        self.extra_entries(Index::Trace)?;
        step(6);
        Ok(())
    }

    fn extra_by_id(&mut self) -> Result<()> {
        if self.tables.by_id.len()? <= self.records_read {
            return Ok(());
        }
        let rows: Vec<(u128, u64)> = self
            .tables
            .by_id
            .iter()?
            .map(|r| r.map(|(k, v)| (k.value(), v.value())))
            .collect::<Result<_, _>>()?;
        for (id, position) in rows {
            let agrees = self
                .tables
                .record_at(position)?
                .is_some_and(|e| e.id.as_u128() == id);
            self.extra_row(agrees, "by_id", position, || {
                format!("event id {}", Uuid::from_u128(id))
            });
        }
        Ok(())
    }

    /// Reads every block of `index` (each must decode, and one code's blocks must not overlap)
    /// and counts its entries; when there are more than the records gave it, checks each entry
    /// against the record at its position.
    fn extra_entries(&mut self, index: Index) -> Result<()> {
        let table = index.table();
        let expected = if index == Index::Trace {
            self.traced
        } else {
            self.records_read
        };
        let mut count: u64 = 0;
        for entry in postings::all_entries(self.txn, index)? {
            match entry {
                Ok(_) => count += 1,
                Err(e @ crate::model::error::Error::Corrupt { .. }) => {
                    let position = match &e {
                        crate::model::error::Error::Corrupt { position, .. } => Some(*position),
                        _ => None,
                    };
                    self.problem(
                        ProblemKind::IndexRowDisagrees,
                        table,
                        position,
                        e.to_string(),
                    );
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if count <= expected {
            return Ok(());
        }
        let entries: Vec<(Code, postings::Entry)> =
            postings::all_entries(self.txn, index)?.collect::<Result<_>>()?;
        let intents: HashMap<u64, String> = self
            .heads
            .iter()
            .map(|(i, h)| (h.code, i.clone()))
            .collect();
        for (code, entry) in entries {
            let position = entry.position;
            let record = self.tables.record_at(position)?;
            let agrees = match (code, record) {
                (_, None) => false,
                (Code::Intent(c), Some(e)) => {
                    intents.get(&c) == Some(&e.intent_id) && e.sequence == entry.sequence
                }
                (Code::Type(c), Some(e)) => {
                    self.name_code(NameKind::EventType, e.event_type.as_str())? == Some(c)
                }
                (Code::Actor(c), Some(e)) => self.name_code(NameKind::Actor, &e.actor)? == Some(c),
                (Code::Trace(c), Some(e)) => {
                    e.trace_id.as_deref().and_then(format::trace_code) == Some(c)
                }
            };
            self.extra_row(agrees, table, position, || match code {
                Code::Intent(c) => format!("intent code {c} sequence {}", entry.sequence),
                Code::Type(c) | Code::Actor(c) => format!("code {c}"),
                Code::Trace(c) => format!("trace {c:032x}"),
            });
        }
        Ok(())
    }

    fn extra_by_time(&mut self) -> Result<()> {
        if self.tables.by_time.len()? <= self.records_read {
            return Ok(());
        }
        let rows: Vec<(i64, u64)> = self
            .tables
            .by_time
            .iter()?
            .map(|r| r.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for (micros, position) in rows {
            let agrees = self
                .tables
                .record_at(position)?
                .is_some_and(|e| time::to_micros(e.created_at) == micros);
            self.extra_row(agrees, "by_time", position, || format!("time {micros}µs"));
        }
        Ok(())
    }

    fn extra_row(
        &mut self,
        agrees: bool,
        table: &str,
        position: Position,
        key: impl FnOnce() -> String,
    ) {
        if !agrees {
            self.problem(
                ProblemKind::IndexRowDisagrees,
                table,
                Some(position),
                format!(
                    "{table} has a row for {} pointing at position {position}, whose record does not agree with it or is missing",
                    key()
                ),
            );
        }
    }

    /// Compares each head with the events seen for its intent.
    fn heads(&mut self) {
        let mut intents: Vec<&String> = self.heads.keys().collect();
        intents.sort();
        let mut found = Vec::new();
        for intent_id in intents {
            let Some(head) = self.heads.get(intent_id) else {
                continue;
            };
            let message = match self.seen.get(intent_id) {
                Some(seen) => {
                    let agrees = head.first_position == seen.first_position
                        && head.last_position == seen.last_position
                        && head.last_sequence == seen.last_sequence;
                    (!agrees).then(|| {
                        format!(
                            "intent {intent_id:?}: its head says positions {} to {} and last sequence {}, but its {} events sit at positions {} to {} and end at sequence {}",
                            head.first_position,
                            head.last_position,
                            head.last_sequence,
                            seen.count,
                            seen.first_position,
                            seen.last_position,
                            seen.last_sequence
                        )
                    })
                }
                None => Some(format!(
                    "intent {intent_id:?}: its head says it has {} events, but the log holds none",
                    head.last_sequence
                )),
            };
            found.extend(message);
        }
        for message in found {
            self.problem(ProblemKind::HeadDisagrees, "intents", None, message);
        }
    }
}
