//! Verification: each intent's hash chain recomputed from what is stored (RFC-0019), and the
//! whole store checked against itself: positions, every index row, every intent head.
//!
//! Nothing here trusts a stored hash: every event's hash is recomputed from its stored content,
//! every link is compared with the hash of the event before it, and every index row is compared
//! with the record it points at.
//!
//! Uses `model::error`, `model::event`, `engine::format`, `store::reads`, `store::snapshot`.

mod chain;
mod scan;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::format::{IntentHead, INTENTS};
use crate::model::error::Result;
use crate::model::event::Position;
use crate::model::event::Sequence;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

use chain::verify_chain_in;
use scan::StoreScan;

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

/// The result of [`Store::verify_all`](crate::Store::verify_all): every intent's chain, and what only the store can check.
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

/// Which part of [`Store::verify_all`](crate::Store::verify_all) is running.
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

/// How far [`Store::verify_all`](crate::Store::verify_all) has come: `done` of `total` in the current stage.
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

    /// Verifies everything: every intent's chain (as [`Store::verify_chain`](crate::Store::verify_chain)), and what only the
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
