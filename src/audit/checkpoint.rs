//! RFC-0019 checkpoints: Merkle roots over batches of event hashes, stored in the file and logged
//! as `log.checkpoint.created` events; inclusion proofs, consistency between two checkpoints, and
//! the check of an exported checkpoint against the log as it is now.
//!
//! A checkpoint seals a batch: the events of its scope since the scope's previous checkpoint (or
//! since the start), in order. An intent-scoped batch runs over the intent's sequences; a
//! store-scoped batch runs over positions, and its `first_sequence`/`last_sequence` are positions.
//!
//! ```
//! use oidb::checkpoint::CheckpointScope;
//! # let store = oidb::Store::in_memory()?;
//! for i in 0..5 {
//!     store.log_event("intent-42", oidb::EventType::Comment, serde_json::json!({"i": i}))?;
//! }
//! let checkpoint = store.create_checkpoint(&CheckpointScope::intent("intent-42"))?.unwrap();
//! assert_eq!((checkpoint.first_sequence, checkpoint.last_sequence), (1, 5));
//!
//! let third = store.get_events("intent-42", oidb::EventFilter::new())?[2].id;
//! let proof = store.inclusion_proof(&checkpoint.checkpoint_id, third)?;
//! assert!(proof.verify());
//! assert!(store.verify_checkpoint(&checkpoint)?.valid);
//! # Ok::<(), oidb::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::engine::format::{
    self, IntentHead, NameKind, CHECKPOINTS, CHECKPOINT_IDS, CHECKPOINT_SCOPES, EVENTS, INTENTS,
    NAMES,
};
use crate::engine::postings::{self, Code};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event::Position;
use crate::model::event_type::EventType;
use crate::model::time;
use crate::proof::chain::{compute_event_hash, format_hash, parse_hash, Digest32};
use crate::proof::merkle::{self, MerkleProof};
use crate::store::handle::Store;

#[cfg(feature = "signatures")]
use crate::proof::signature::SigningKey;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;
/// Without the `signatures` feature there is no key to sign with.
#[cfg(not(feature = "signatures"))]
#[derive(Debug, Clone)]
enum SigningKey {}

/// The intent that store-scoped `log.checkpoint.created` events are logged in.
pub const STORE_CHECKPOINT_INTENT: &str = "oidb:store";

/// OpenIntent's default count trigger: a checkpoint every 100 events.
pub const DEFAULT_CHECKPOINT_EVENTS: u64 = 100;

/// OpenIntent's default time trigger: a checkpoint every 5 minutes.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// What a checkpoint covers: one intent's chain, or the whole log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckpointScope {
    /// One intent's events, by sequence.
    Intent(String),
    /// Every event of the store, by position.
    Store,
}

impl CheckpointScope {
    /// The scope of one intent.
    pub fn intent(intent_id: impl Into<String>) -> CheckpointScope {
        CheckpointScope::Intent(intent_id.into())
    }

    /// The intent, for an intent scope.
    #[must_use]
    pub fn intent_id(&self) -> Option<&str> {
        match self {
            CheckpointScope::Intent(id) => Some(id),
            CheckpointScope::Store => None,
        }
    }

    /// The key of the scope in `checkpoint_scopes`.
    fn key(&self) -> String {
        match self {
            CheckpointScope::Intent(id) => format!("intent:{id}"),
            CheckpointScope::Store => "store".to_owned(),
        }
    }

    /// The intent the scope's `log.checkpoint.created` events go to.
    fn log_intent(&self) -> &str {
        self.intent_id().unwrap_or(STORE_CHECKPOINT_INTENT)
    }
}

/// A checkpoint, in OpenIntent's `LogCheckpoint` JSON shape: `checkpoint_id, intent_id, scope,
/// merkle_root, event_count, first_sequence, last_sequence, created_at`, then `signed_by` and
/// `signature` when it was signed, and `anchor` (always `null`: oidb does not anchor).
///
/// `scope` is written `"intent"` or `"store"` (OpenIntent's `"server"` is read as `"store"`).
/// Serialize it to keep it outside the file: [`Store::verify_checkpoint`] later says whether the
/// log still holds exactly the events it sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogCheckpoint {
    /// Its id (a UUID v7).
    pub checkpoint_id: String,
    /// What it covers.
    pub scope: CheckpointScope,
    /// The Merkle root over the batch's event hashes.
    pub merkle_root: String,
    /// How many events the batch holds.
    pub event_count: u64,
    /// The first sequence of the batch (a position, for the store scope).
    pub first_sequence: u64,
    /// The last sequence of the batch (a position, for the store scope).
    pub last_sequence: u64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The `did:key` of the key that signed it.
    pub signed_by: Option<String>,
    /// Ed25519 signature (base64url) over the JCS form of the checkpoint without `signature`.
    pub signature: Option<String>,
    /// An external timestamp anchor, kept as given.
    pub anchor: Option<Value>,
}

impl Serialize for LogCheckpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json(true).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LogCheckpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            checkpoint_id: String,
            intent_id: Option<String>,
            scope: String,
            merkle_root: String,
            event_count: u64,
            first_sequence: u64,
            last_sequence: u64,
            created_at: String,
            signed_by: Option<String>,
            signature: Option<String>,
            anchor: Option<Value>,
        }
        use serde::de::Error as _;
        let wire = Wire::deserialize(deserializer)?;
        let scope = match (wire.scope.as_str(), wire.intent_id) {
            ("intent", Some(id)) => CheckpointScope::Intent(id),
            ("intent", None) => {
                return Err(D::Error::custom("scope \"intent\" needs an intent_id"))
            }
            ("store" | "server", _) => CheckpointScope::Store,
            (other, _) => {
                return Err(D::Error::custom(format!(
                    "unknown scope {other:?}; expected \"intent\" or \"store\""
                )))
            }
        };
        Ok(LogCheckpoint {
            checkpoint_id: wire.checkpoint_id,
            scope,
            merkle_root: wire.merkle_root,
            event_count: wire.event_count,
            first_sequence: wire.first_sequence,
            last_sequence: wire.last_sequence,
            created_at: time::parse(&wire.created_at).map_err(D::Error::custom)?,
            signed_by: wire.signed_by,
            signature: wire.signature,
            anchor: wire.anchor.filter(|a| !a.is_null()),
        })
    }
}

impl LogCheckpoint {
    /// The JSON form; without `signature` when `with_signature` is false (what is signed).
    fn to_json(&self, with_signature: bool) -> Value {
        let (scope, intent_id) = match &self.scope {
            CheckpointScope::Intent(id) => ("intent", Value::String(id.clone())),
            CheckpointScope::Store => ("store", Value::Null),
        };
        let mut object = serde_json::Map::new();
        object.insert("checkpoint_id".into(), self.checkpoint_id.clone().into());
        object.insert("intent_id".into(), intent_id);
        object.insert("scope".into(), scope.into());
        object.insert("merkle_root".into(), self.merkle_root.clone().into());
        object.insert("event_count".into(), self.event_count.into());
        object.insert("first_sequence".into(), self.first_sequence.into());
        object.insert("last_sequence".into(), self.last_sequence.into());
        object.insert("created_at".into(), time::format(self.created_at).into());
        if let Some(signed_by) = &self.signed_by {
            object.insert("signed_by".into(), signed_by.clone().into());
        }
        if let (true, Some(signature)) = (with_signature, &self.signature) {
            object.insert("signature".into(), signature.clone().into());
        }
        object.insert("anchor".into(), self.anchor.clone().unwrap_or(Value::Null));
        Value::Object(object)
    }

    /// The bytes a checkpoint signature covers: the JCS form of its JSON without `signature`.
    #[cfg(feature = "signatures")]
    pub(crate) fn signed_bytes(&self) -> Result<Vec<u8>> {
        crate::proof::jcs::to_canonical_vec(&self.to_json(false)).map_err(|e| Error::InvalidEvent {
            field: "anchor",
            reason: e.to_string(),
        })
    }
}

/// The result of checking a checkpoint against the log as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckpointVerification {
    /// The checkpoint.
    pub checkpoint_id: String,
    /// Whether the log still holds exactly the events the checkpoint sealed.
    pub valid: bool,
    /// How many of the checkpoint's events the log holds now.
    pub events_found: u64,
    /// The Merkle root of those events now (when they are all there).
    pub recomputed_root: Option<String>,
    /// What does not match.
    pub problems: Vec<CheckpointProblem>,
}

/// How the log differs from a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckpointProblem {
    /// Events the checkpoint sealed are gone: the log was truncated (or events removed).
    Truncated {
        /// Events the checkpoint holds.
        expected_events: u64,
        /// Events found in its range now.
        found_events: u64,
        /// The first sequence (position, for the store scope) that is missing.
        first_missing: u64,
    },
    /// The events are there but hash to another root: the log was rewritten.
    Rewritten {
        /// The checkpoint's root.
        merkle_root: String,
        /// The root of the events now.
        recomputed_root: String,
    },
    /// An event's stored hash no longer matches its content: it was altered in place.
    Altered {
        /// Its sequence (position, for the store scope).
        sequence: u64,
        /// The event.
        event_id: Uuid,
    },
    /// The checkpoint's signature does not verify.
    BadSignature {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for CheckpointProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointProblem::Truncated {
                expected_events,
                found_events,
                first_missing,
            } => write!(
                f,
                "truncated: the checkpoint seals {expected_events} events, the log holds {found_events} of them (from {first_missing} on they are missing)"
            ),
            CheckpointProblem::Rewritten {
                merkle_root,
                recomputed_root,
            } => write!(
                f,
                "rewritten: the checkpoint's root is {merkle_root}, the events now hash to {recomputed_root}"
            ),
            CheckpointProblem::Altered { sequence, event_id } => write!(
                f,
                "altered: event {event_id} at {sequence} no longer hashes to its stored hash"
            ),
            CheckpointProblem::BadSignature { reason } => write!(f, "bad signature: {reason}"),
        }
    }
}

/// The result of checking that one checkpoint extends another, in OpenIntent's
/// `ConsistencyProof` JSON shape (`from_checkpoint, to_checkpoint, consistent, boundary_event`),
/// with oidb's `reason` when it is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConsistencyProof {
    /// The earlier checkpoint.
    pub from_checkpoint: String,
    /// The later checkpoint.
    pub to_checkpoint: String,
    /// Whether `to` extends `from` with every event in between present and chained.
    pub consistent: bool,
    /// The first event after `from`: `{sequence, event_hash, previous_event_hash}` (and
    /// `position`, `intent_id` for the store scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary_event: Option<Value>,
    /// Why not, when not consistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A checkpoint as stored: the checkpoint and the id of the event that logged it.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCheckpoint {
    checkpoint: LogCheckpoint,
    log_event_id: Uuid,
}

impl StoredCheckpoint {
    fn decode(number: u64, bytes: &[u8]) -> Result<StoredCheckpoint> {
        serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
            position: 0,
            reason: format!("checkpoint number {number} cannot be read: {e}"),
        })
    }
}

/// One event of a batch, as a leaf.
struct Leaf {
    at: u64,
    event: Event,
    stored: Digest32,
}

/// The events of a scope in `first..=last` (sequences or positions), in order; stops at the first
/// one missing. Damaged records are errors.
fn read_batch(
    txn: &ReadTransaction,
    scope: &CheckpointScope,
    first: u64,
    last: u64,
) -> Result<Vec<Leaf>> {
    let events = txn.open_table(EVENTS)?;
    let mut leaves = Vec::new();
    let mut push = |at: u64, event: Event| -> Result<bool> {
        if at != first + leaves.len() as u64 {
            return Ok(false);
        }
        let stored = parse_hash(&event.event_hash).ok_or_else(|| Error::Corrupt {
            position: event.position,
            reason: "stored event_hash is not a sha256: hash".into(),
        })?;
        leaves.push(Leaf { at, event, stored });
        Ok(true)
    };
    match scope {
        CheckpointScope::Intent(intent_id) => {
            let Some(head) = intent_head(txn, intent_id)? else {
                return Ok(leaves);
            };
            for entry in postings::entries(txn, Code::Intent(head.code), first, last, true)? {
                let entry = entry?;
                let position = entry.position;
                let Some(bytes) = events.get(position)? else {
                    break;
                };
                let event = format::decode_record(position, bytes.value())?;
                if event.intent_id != *intent_id || !push(entry.sequence, event)? {
                    break;
                }
            }
        }
        CheckpointScope::Store => {
            for row in events.range(first..=last)? {
                let (key, value) = row?;
                let event = format::decode_record(key.value(), value.value())?;
                if !push(key.value(), event)? {
                    break;
                }
            }
        }
    }
    Ok(leaves)
}

fn intent_head(txn: &ReadTransaction, intent_id: &str) -> Result<Option<IntentHead>> {
    let intents = txn.open_table(INTENTS)?;
    let head = intents.get(intent_id)?;
    head.map(|h| IntentHead::decode(h.value(), intent_id))
        .transpose()
}

/// The scope's newest checkpoint, if any, read in a write transaction.
fn last_in_scope_write(
    txn: &WriteTransaction,
    scope: &CheckpointScope,
) -> Result<Option<StoredCheckpoint>> {
    let key = scope.key();
    let scopes = txn.open_table(CHECKPOINT_SCOPES)?;
    let last = scopes
        .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, _)| k.value().1);
    let Some(number) = last else { return Ok(None) };
    let checkpoints = txn.open_table(CHECKPOINTS)?;
    let bytes = checkpoints.get(number)?.ok_or_else(|| Error::Corrupt {
        position: 0,
        reason: format!("checkpoint number {number} is listed for its scope but missing"),
    })?;
    StoredCheckpoint::decode(number, bytes.value()).map(Some)
}

/// The numbers of a scope's checkpoints, oldest first (all checkpoints when `scope` is `None`).
fn numbers(txn: &ReadTransaction, scope: Option<&CheckpointScope>) -> Result<Vec<u64>> {
    match scope {
        Some(scope) => {
            let Some(scopes) = format::open_optional(txn, CHECKPOINT_SCOPES)? else {
                return Ok(Vec::new());
            };
            let key = scope.key();
            scopes
                .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))?
                .map(|row| row.map(|(k, _)| k.value().1).map_err(Error::from))
                .collect()
        }
        None => {
            let Some(checkpoints) = format::open_optional(txn, CHECKPOINTS)? else {
                return Ok(Vec::new());
            };
            checkpoints
                .iter()?
                .map(|row| row.map(|(k, _)| k.value()).map_err(Error::from))
                .collect()
        }
    }
}

fn load(txn: &ReadTransaction, number: u64) -> Result<StoredCheckpoint> {
    let missing = || Error::Corrupt {
        position: 0,
        reason: format!("checkpoint number {number} is listed but missing"),
    };
    let checkpoints = format::open_optional(txn, CHECKPOINTS)?.ok_or_else(missing)?;
    let bytes = checkpoints.get(number)?.ok_or_else(missing)?;
    StoredCheckpoint::decode(number, bytes.value())
}

fn load_by_id(txn: &ReadTransaction, checkpoint_id: &str) -> Result<StoredCheckpoint> {
    let not_found = || Error::CheckpointNotFound {
        checkpoint_id: checkpoint_id.to_owned(),
    };
    let ids = format::open_optional(txn, CHECKPOINT_IDS)?.ok_or_else(not_found)?;
    let number = ids.get(checkpoint_id)?.ok_or_else(not_found)?.value();
    load(txn, number)
}

/// Signs a checkpoint in place (sets `signed_by`, then `signature`).
#[cfg(feature = "signatures")]
fn seal(checkpoint: &mut LogCheckpoint, key: &SigningKey) -> Result<()> {
    checkpoint.signed_by = Some(crate::proof::signature::did_key(&key.verifying_key()));
    let bytes = checkpoint.signed_bytes()?;
    checkpoint.signature = Some(crate::proof::signature::sign_bytes(key, &bytes));
    Ok(())
}

#[cfg(not(feature = "signatures"))]
fn seal(_: &mut LogCheckpoint, key: &SigningKey) -> Result<()> {
    match *key {}
}

/// Signs the event that logs a checkpoint, when the checkpoint is signed.
#[cfg(feature = "signatures")]
fn sign_log_event(event: NewEvent, key: Option<&SigningKey>) -> NewEvent {
    match key {
        Some(key) => event.sign(key),
        None => event,
    }
}

#[cfg(not(feature = "signatures"))]
fn sign_log_event(event: NewEvent, _: Option<&SigningKey>) -> NewEvent {
    event
}

impl Store {
    /// Makes a checkpoint of `scope` now: a Merkle root over the scope's events since its previous
    /// checkpoint, stored in the file and logged as a `log.checkpoint.created` event (in the
    /// intent, or in [`STORE_CHECKPOINT_INTENT`] for the store scope). Returns `None` when there is
    /// nothing new to seal (RFC-0019 never checkpoints an empty batch), and when the only new
    /// events are those that logged earlier checkpoints (they are sealed by the next checkpoint).
    ///
    /// Each event of the batch is verified (its hash recomputed, its link checked) before it is
    /// sealed; a damaged log is not checkpointed.
    ///
    /// # Errors
    /// [`Error::ChainBroken`] when an event of the batch does not verify; a storage error.
    pub fn create_checkpoint(&self, scope: &CheckpointScope) -> Result<Option<LogCheckpoint>> {
        create(self, scope, None)
    }

    /// As [`Store::create_checkpoint`], signed with `key`: `signed_by` is its `did:key`, and the
    /// event that logs the checkpoint is signed too (RFC-0018).
    ///
    /// # Errors
    /// As [`Store::create_checkpoint`].
    #[cfg(feature = "signatures")]
    pub fn create_signed_checkpoint(
        &self,
        scope: &CheckpointScope,
        key: &SigningKey,
    ) -> Result<Option<LogCheckpoint>> {
        create(self, scope, Some(key))
    }
}

impl Snapshot {
    /// The checkpoint with this id.
    ///
    /// # Errors
    /// [`Error::CheckpointNotFound`]; a storage error.
    pub fn checkpoint(&self, checkpoint_id: &str) -> Result<LogCheckpoint> {
        let txn = self.txn();
        Ok(load_by_id(txn, checkpoint_id)?.checkpoint)
    }

    /// A scope's checkpoints, oldest first.
    ///
    /// # Errors
    /// A storage error.
    pub fn checkpoints(&self, scope: &CheckpointScope) -> Result<Vec<LogCheckpoint>> {
        let txn = self.txn();
        numbers(txn, Some(scope))?
            .into_iter()
            .map(|n| load(txn, n).map(|s| s.checkpoint))
            .collect()
    }

    /// Every checkpoint of every scope, in the order they were made.
    ///
    /// # Errors
    /// A storage error.
    pub fn all_checkpoints(&self) -> Result<Vec<LogCheckpoint>> {
        let txn = self.txn();
        numbers(txn, None)?
            .into_iter()
            .map(|n| load(txn, n).map(|s| s.checkpoint))
            .collect()
    }

    /// A proof, in OpenIntent's `MerkleProof` shape, that event `event_id` is in checkpoint
    /// `checkpoint_id`'s Merkle tree; [`MerkleProof::verify`] (or the OpenIntent SDK's
    /// `MerkleProof.verify()`) checks it without the store.
    ///
    /// # Errors
    /// [`Error::CheckpointNotFound`], [`Error::EventNotFound`], [`Error::NotInCheckpoint`], and
    /// [`Error::CheckpointMismatch`] when the checkpoint's events no longer hash to its root.
    pub fn inclusion_proof(&self, checkpoint_id: &str, event_id: Uuid) -> Result<MerkleProof> {
        let txn = self.txn();
        let checkpoint = load_by_id(txn, checkpoint_id)?.checkpoint;
        let event = self.get(event_id)?.ok_or(Error::EventNotFound(event_id))?;
        let not_in = |reason: String| Error::NotInCheckpoint {
            event_id,
            checkpoint_id: checkpoint_id.to_owned(),
            reason,
        };
        let at = match &checkpoint.scope {
            CheckpointScope::Intent(intent_id) if *intent_id != event.intent_id => {
                return Err(not_in(format!(
                    "the event is in intent {:?}, the checkpoint covers intent {intent_id:?}",
                    event.intent_id
                )))
            }
            CheckpointScope::Intent(_) => event.sequence,
            CheckpointScope::Store => event.position,
        };
        if at < checkpoint.first_sequence || at > checkpoint.last_sequence {
            return Err(not_in(format!(
                "it is at {at}, the checkpoint covers {} to {}",
                checkpoint.first_sequence, checkpoint.last_sequence
            )));
        }
        let leaves = read_batch(
            txn,
            &checkpoint.scope,
            checkpoint.first_sequence,
            checkpoint.last_sequence,
        )?;
        let digests: Vec<Digest32> = leaves.iter().map(|l| l.stored).collect();
        let mismatch = |reason: String| Error::CheckpointMismatch {
            checkpoint_id: checkpoint_id.to_owned(),
            reason,
        };
        if digests.len() as u64 != checkpoint.event_count {
            return Err(mismatch(format!(
                "it seals {} events, the log holds {} of them",
                checkpoint.event_count,
                digests.len()
            )));
        }
        let root = merkle::merkle_root(&digests).map(|r| format_hash(&r));
        if root.as_deref() != Some(checkpoint.merkle_root.as_str()) {
            return Err(mismatch(format!(
                "its root is {}, its events now hash to {}",
                checkpoint.merkle_root,
                root.unwrap_or_default()
            )));
        }
        let index = (at - checkpoint.first_sequence) as usize;
        let path = merkle::inclusion_path(&digests, index)
            .ok_or_else(|| not_in(format!("no leaf {index}")))?;
        Ok(MerkleProof {
            event_id: event_id.to_string(),
            event_hash: event.event_hash,
            checkpoint_id: checkpoint.checkpoint_id,
            merkle_root: checkpoint.merkle_root,
            proof_hashes: merkle::proof_steps(&path),
            leaf_index: index as u64,
        })
    }

    /// Checks a checkpoint (one read from this store, or one exported earlier and read back with
    /// serde) against the log as it is now: are all its events still there, unaltered, and do
    /// they hash to its root? Says how the log differs: truncated, rewritten, altered in place,
    /// or (with the `signatures` feature) a signature that does not verify.
    ///
    /// # Errors
    /// A storage error or a damaged record.
    pub fn verify_checkpoint(&self, checkpoint: &LogCheckpoint) -> Result<CheckpointVerification> {
        let txn = self.txn();
        verify_in(txn, checkpoint)
    }

    /// Checks that checkpoint `to` extends checkpoint `from`: same scope, `to` after `from`, both
    /// still matching the log, and every event from the last one `from` sealed to the first one
    /// `to` seals present, unaltered and chained (RFC-0019 §6.2).
    ///
    /// # Errors
    /// [`Error::CheckpointNotFound`]; a storage error or a damaged record.
    pub fn consistency(&self, from: &str, to: &str) -> Result<ConsistencyProof> {
        let txn = self.txn();
        let older = load_by_id(txn, from)?.checkpoint;
        let newer = load_by_id(txn, to)?.checkpoint;
        let mut proof = ConsistencyProof {
            from_checkpoint: from.to_owned(),
            to_checkpoint: to.to_owned(),
            consistent: false,
            boundary_event: None,
            reason: None,
        };
        if older.scope != newer.scope {
            proof.reason = Some(format!(
                "they cover different scopes ({:?} and {:?})",
                older.scope, newer.scope
            ));
            return Ok(proof);
        }
        if newer.first_sequence <= older.last_sequence {
            proof.reason = Some(format!(
                "{to} starts at {}, which is not after {from}'s end at {}",
                newer.first_sequence, older.last_sequence
            ));
            return Ok(proof);
        }
        for checkpoint in [&older, &newer] {
            let check = verify_in(txn, checkpoint)?;
            if let Some(problem) = check.problems.first() {
                proof.reason = Some(format!("{}: {problem}", checkpoint.checkpoint_id));
                return Ok(proof);
            }
        }
        let between = read_batch(txn, &older.scope, older.last_sequence, newer.first_sequence)?;
        let expected = newer.first_sequence - older.last_sequence + 1;
        if between.len() as u64 != expected {
            proof.reason = Some(format!(
                "{} is missing between the two checkpoints",
                older.last_sequence + between.len() as u64
            ));
            return Ok(proof);
        }
        if let Some(reason) = chain_fault(&between) {
            proof.reason = Some(reason);
            return Ok(proof);
        }
        proof.boundary_event = between
            .get(1)
            .map(|leaf| boundary(&older.scope, &leaf.event));
        proof.consistent = true;
        Ok(proof)
    }
}

read_on_handles! {
    /// The checkpoint with this id.
    fn checkpoint(&self, checkpoint_id: &str) -> Result<LogCheckpoint>;
    /// A scope's checkpoints, oldest first.
    fn checkpoints(&self, scope: &CheckpointScope) -> Result<Vec<LogCheckpoint>>;
    /// Every checkpoint of every scope, in the order they were made.
    fn all_checkpoints(&self) -> Result<Vec<LogCheckpoint>>;
    /// A proof, in OpenIntent's `MerkleProof` shape, that event `event_id` is in checkpoint
    /// `checkpoint_id`'s Merkle tree; [`MerkleProof::verify`] (or the OpenIntent SDK's
    /// `MerkleProof.verify()`) checks it without the store.
    fn inclusion_proof(&self, checkpoint_id: &str, event_id: Uuid) -> Result<MerkleProof>;
    /// Checks a checkpoint (one read from this store, or one exported earlier and read back with
    /// serde) against the log as it is now.
    fn verify_checkpoint(&self, checkpoint: &LogCheckpoint) -> Result<CheckpointVerification>;
    /// Checks that checkpoint `to` extends checkpoint `from`.
    fn consistency(&self, from: &str, to: &str) -> Result<ConsistencyProof>;
}

/// What is wrong with a run of consecutive events (each verified, each linked to the one before
/// in its intent), if anything.
fn chain_fault(run: &[Leaf]) -> Option<String> {
    let mut previous: HashMap<&str, &str> = HashMap::new();
    for leaf in run {
        let event = &leaf.event;
        if compute_event_hash(event).ok().as_deref() != Some(event.event_hash.as_str()) {
            return Some(format!(
                "event {} at {} no longer hashes to its stored hash",
                event.id, leaf.at
            ));
        }
        if let Some(prior) = previous.get(event.intent_id.as_str()) {
            if event.previous_event_hash.as_deref() != Some(*prior) {
                return Some(format!(
                    "event {} at {} does not link to the event before it in intent {:?}",
                    event.id, leaf.at, event.intent_id
                ));
            }
        }
        previous.insert(event.intent_id.as_str(), event.event_hash.as_str());
    }
    None
}

fn boundary(scope: &CheckpointScope, event: &Event) -> Value {
    let mut value = json!({
        "sequence": event.sequence,
        "event_hash": event.event_hash,
        "previous_event_hash": event.previous_event_hash,
    });
    if let (CheckpointScope::Store, Value::Object(object)) = (scope, &mut value) {
        object.insert("position".into(), event.position.into());
        object.insert("intent_id".into(), event.intent_id.clone().into());
    }
    value
}

fn verify_in(txn: &ReadTransaction, checkpoint: &LogCheckpoint) -> Result<CheckpointVerification> {
    let mut problems = Vec::new();
    let leaves =
        if checkpoint.event_count == 0 || checkpoint.last_sequence < checkpoint.first_sequence {
            Vec::new()
        } else {
            read_batch(
                txn,
                &checkpoint.scope,
                checkpoint.first_sequence,
                checkpoint.last_sequence,
            )?
        };
    let found = leaves.len() as u64;
    for leaf in &leaves {
        if compute_event_hash(&leaf.event).ok().as_deref() != Some(leaf.event.event_hash.as_str()) {
            problems.push(CheckpointProblem::Altered {
                sequence: leaf.at,
                event_id: leaf.event.id,
            });
        }
    }
    let mut recomputed_root = None;
    if found < checkpoint.event_count {
        problems.push(CheckpointProblem::Truncated {
            expected_events: checkpoint.event_count,
            found_events: found,
            first_missing: checkpoint.first_sequence + found,
        });
    } else {
        let digests: Vec<Digest32> = leaves.iter().map(|l| l.stored).collect();
        let root = merkle::merkle_root(&digests).map(|r| format_hash(&r));
        if root.as_deref() != Some(checkpoint.merkle_root.as_str()) {
            problems.push(CheckpointProblem::Rewritten {
                merkle_root: checkpoint.merkle_root.clone(),
                recomputed_root: root.clone().unwrap_or_default(),
            });
        }
        recomputed_root = root;
    }
    if let Some(reason) = signature_fault(checkpoint) {
        problems.push(CheckpointProblem::BadSignature { reason });
    }
    Ok(CheckpointVerification {
        checkpoint_id: checkpoint.checkpoint_id.clone(),
        valid: problems.is_empty(),
        events_found: found,
        recomputed_root,
        problems,
    })
}

/// Why a signed checkpoint's signature does not verify, if it does not.
#[cfg(feature = "signatures")]
fn signature_fault(checkpoint: &LogCheckpoint) -> Option<String> {
    checkpoint.verify_signature().err().map(|e| e.to_string())
}

#[cfg(not(feature = "signatures"))]
fn signature_fault(_: &LogCheckpoint) -> Option<String> {
    None
}

#[cfg(feature = "signatures")]
impl LogCheckpoint {
    /// Checks the checkpoint's signature against the key its `signed_by` names. An unsigned
    /// checkpoint passes (there is nothing to check).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a `signed_by` that is not a `did:key`, or a signature that does
    /// not verify.
    pub fn verify_signature(&self) -> Result<()> {
        match (&self.signed_by, &self.signature) {
            (None, None) => Ok(()),
            (Some(did), Some(signature)) => {
                let key = crate::proof::signature::parse_did_key(did)?;
                crate::proof::signature::verify_bytes(&key, &self.signed_bytes()?, signature)
                    .map_err(Error::InvalidKey)
            }
            _ => Err(Error::InvalidKey(
                "a checkpoint has `signed_by` and `signature` together or neither".into(),
            )),
        }
    }
}

/// Creates a checkpoint; see [`Store::create_checkpoint`].
fn create(
    store: &Store,
    scope: &CheckpointScope,
    key: Option<&SigningKey>,
) -> Result<Option<LogCheckpoint>> {
    let log_event_id = Uuid::now_v7();
    // Refuse, before anything is stored, a checkpoint whose log event the store would refuse.
    #[cfg(feature = "signatures")]
    store
        .snapshot()?
        .check_signer(store.actor(), log_event_id, key)?;
    repair_log_event(store, scope, key)?;
    // The write transaction is the lock: checkpoints of a scope are made one at a time, each
    // starting where the previous one ended.
    let stored = store.inner().writer.write_exclusive(|txn| {
        let previous = last_in_scope_write(txn, scope)?;
        let first = previous
            .as_ref()
            .map_or(1, |p| p.checkpoint.last_sequence + 1);
        let leaves = {
            // A read snapshot of the same state, so the batch reader is shared with verification.
            let snapshot = store.inner().db.begin_read()?;
            let last = match scope {
                CheckpointScope::Intent(id) => {
                    intent_head(&snapshot, id)?.map_or(0, |h| h.last_sequence)
                }
                CheckpointScope::Store => format::last_position(&snapshot.open_table(EVENTS)?)?,
            };
            if last < first {
                Vec::new()
            } else {
                let leaves = read_batch(&snapshot, scope, first, last)?;
                let link = match (scope, first) {
                    (CheckpointScope::Intent(_), 2..) => {
                        read_batch(&snapshot, scope, first - 1, first - 1)?
                            .pop()
                            .map(|l| l.event.event_hash)
                    }
                    _ => None,
                };
                check_batch(scope, first, last, link, &leaves)?;
                leaves
            }
        };
        // Nothing new, or nothing but the events that logged earlier checkpoints: nothing to seal.
        let only_logs = leaves
            .iter()
            .all(|l| l.event.event_type == EventType::LogCheckpointCreated);
        let digests: Vec<Digest32> = leaves.iter().map(|l| l.stored).collect();
        let (Some(root), Some(last_leaf), false) =
            (merkle::merkle_root(&digests), leaves.last(), only_logs)
        else {
            return Ok(None);
        };
        let mut checkpoint = LogCheckpoint {
            checkpoint_id: Uuid::now_v7().to_string(),
            scope: scope.clone(),
            merkle_root: format_hash(&root),
            event_count: leaves.len() as u64,
            first_sequence: first,
            last_sequence: last_leaf.at,
            created_at: time::now(),
            signed_by: None,
            signature: None,
            anchor: None,
        };
        if let Some(key) = key {
            seal(&mut checkpoint, key)?;
        }
        let stored = StoredCheckpoint {
            checkpoint,
            log_event_id,
        };
        store_checkpoint(txn, scope, &stored)?;
        Ok(Some(stored))
    })?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    store.append(log_event(store, &stored, key))?;
    Ok(Some(stored.checkpoint))
}

fn store_checkpoint(
    txn: &WriteTransaction,
    scope: &CheckpointScope,
    stored: &StoredCheckpoint,
) -> Result<()> {
    let bytes = serde_json::to_vec(stored).map_err(|e| Error::Corrupt {
        position: 0,
        reason: format!("checkpoint cannot be encoded: {e}"),
    })?;
    let mut checkpoints = txn.open_table(CHECKPOINTS)?;
    let number = checkpoints.last()?.map_or(0, |(k, _)| k.value()) + 1;
    checkpoints.insert(number, bytes.as_slice())?;
    txn.open_table(CHECKPOINT_IDS)?
        .insert(stored.checkpoint.checkpoint_id.as_str(), number)?;
    txn.open_table(CHECKPOINT_SCOPES)?
        .insert((scope.key().as_str(), number), ())?;
    Ok(())
}

/// Refuses to seal a batch whose events do not verify: each one is there, hashes to its stored
/// hash, and (in an intent) links to the one before it. `link` is the hash of the event before
/// the batch, if there is one.
fn check_batch(
    scope: &CheckpointScope,
    first: u64,
    last: u64,
    link: Option<String>,
    leaves: &[Leaf],
) -> Result<()> {
    let found = leaves.len() as u64;
    if found != last - first + 1 {
        let missing = first + found;
        return Err(Error::ChainBroken {
            intent_id: scope.log_intent().to_owned(),
            sequence: missing,
            reason: match scope {
                CheckpointScope::Intent(_) => format!("event {missing} is missing"),
                CheckpointScope::Store => format!("position {missing} holds no record"),
            },
        });
    }
    let mut previous = link;
    for leaf in leaves {
        let event = &leaf.event;
        let broken = |reason: String| Error::ChainBroken {
            intent_id: event.intent_id.clone(),
            sequence: event.sequence,
            reason,
        };
        let recomputed = compute_event_hash(event).map_err(|e| broken(e.to_string()))?;
        if recomputed != event.event_hash {
            return Err(broken(format!(
                "event {} has event_hash {}, but its content hashes to {recomputed}",
                event.id, event.event_hash
            )));
        }
        if let CheckpointScope::Intent(_) = scope {
            if event.previous_event_hash != previous {
                return Err(broken(format!(
                    "event {} does not link to the event before it",
                    event.id
                )));
            }
            previous = Some(event.event_hash.clone());
        }
    }
    Ok(())
}

/// The event that logs a checkpoint: same id and time every time, so appending it again (to
/// repair a crash between storing the checkpoint and logging it) writes nothing new.
fn log_event(store: &Store, stored: &StoredCheckpoint, key: Option<&SigningKey>) -> NewEvent {
    let checkpoint = &stored.checkpoint;
    let event = NewEvent::new(
        checkpoint.scope.log_intent(),
        EventType::LogCheckpointCreated,
        store.actor(),
    )
    .id(stored.log_event_id)
    .created_at(checkpoint.created_at)
    .payload(checkpoint.to_json(true));
    sign_log_event(event, key)
}

/// Logs the scope's newest checkpoint if a crash came between storing it and logging it.
fn repair_log_event(
    store: &Store,
    scope: &CheckpointScope,
    key: Option<&SigningKey>,
) -> Result<()> {
    let txn = store.inner().db.begin_read()?;
    let Some(number) = numbers(&txn, Some(scope))?.pop() else {
        return Ok(());
    };
    let stored = load(&txn, number)?;
    drop(txn);
    if store.get(stored.log_event_id)?.is_none() {
        store.append(log_event(store, &stored, key))?;
    }
    Ok(())
}

/// When automatic checkpoints are made, for a [`Checkpointer`]: per intent or for the whole
/// store, after every N events and after T has passed, whichever comes first. OpenIntent's
/// defaults are N = 100 ([`DEFAULT_CHECKPOINT_EVENTS`]) and T = 5 minutes
/// ([`DEFAULT_CHECKPOINT_INTERVAL`]).
///
/// `log.checkpoint.created` events do not count toward N, and a batch holding nothing else is
/// never sealed by the time trigger, so checkpoints do not beget checkpoints.
///
/// ```
/// use std::time::Duration;
/// use oidb::checkpoint::CheckpointPolicy;
///
/// let policy = CheckpointPolicy::per_intent().every_events(500).every(Duration::from_secs(60));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CheckpointPolicy {
    whole_store: bool,
    every_events: Option<u64>,
    every: Option<Duration>,
    poll: Duration,
    key: Option<SigningKey>,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy::per_intent()
    }
}

impl CheckpointPolicy {
    /// One checkpoint per intent that has new events; OpenIntent's default triggers.
    pub fn per_intent() -> CheckpointPolicy {
        CheckpointPolicy {
            whole_store: false,
            every_events: Some(DEFAULT_CHECKPOINT_EVENTS),
            every: Some(DEFAULT_CHECKPOINT_INTERVAL),
            poll: Duration::from_secs(1),
            key: None,
        }
    }

    /// Store-scoped checkpoints over the whole log; OpenIntent's default triggers.
    pub fn whole_store() -> CheckpointPolicy {
        CheckpointPolicy {
            whole_store: true,
            ..CheckpointPolicy::per_intent()
        }
    }

    /// Checkpoint once `events` new events (at least 1) have come since the last checkpoint.
    pub fn every_events(mut self, events: u64) -> CheckpointPolicy {
        self.every_events = Some(events.max(1));
        self
    }

    /// No count trigger.
    pub fn no_event_trigger(mut self) -> CheckpointPolicy {
        self.every_events = None;
        self
    }

    /// Checkpoint once the oldest event not yet in a checkpoint has waited `interval`.
    pub fn every(mut self, interval: Duration) -> CheckpointPolicy {
        self.every = Some(interval);
        self
    }

    /// No time trigger.
    pub fn no_time_trigger(mut self) -> CheckpointPolicy {
        self.every = None;
        self
    }

    /// How often a [`CheckpointThread`] looks for new events (default 1 second).
    pub fn poll_interval(mut self, interval: Duration) -> CheckpointPolicy {
        self.poll = interval;
        self
    }

    /// Sign every checkpoint (and the events that log them) with `key`.
    #[cfg(feature = "signatures")]
    pub fn signing_key(mut self, key: SigningKey) -> CheckpointPolicy {
        self.key = Some(key);
        self
    }
}

/// Makes checkpoints when a [`CheckpointPolicy`] says so. Call [`Checkpointer::tick`] from your
/// own loop, or [`Checkpointer::spawn`] a thread that does.
///
/// ```
/// use oidb::checkpoint::{CheckpointPolicy, CheckpointScope};
/// # let store = oidb::Store::in_memory()?;
/// let checkpointer = store.checkpointer(CheckpointPolicy::per_intent().every_events(10))?;
/// for i in 0..25 {
///     store.log_event("intent-42", oidb::EventType::Comment, serde_json::json!({"i": i}))?;
/// }
/// let made = checkpointer.tick()?;
/// assert_eq!(made.len(), 1);
/// assert_eq!(made[0].last_sequence, 25);
/// # Ok::<(), oidb::Error>(())
/// ```
#[derive(Debug)]
pub struct Checkpointer {
    store: Store,
    policy: CheckpointPolicy,
    state: Mutex<Watch>,
}

/// What a checkpointer has seen: the log up to `seen`, and each scope's events not yet sealed.
#[derive(Debug)]
struct Watch {
    seen: Position,
    scopes: HashMap<String, Waiting>,
}

/// A scope with events that no checkpoint holds yet.
#[derive(Debug)]
struct Waiting {
    scope: CheckpointScope,
    /// Events not yet sealed, `log.checkpoint.created` ones not counted.
    events: u64,
    /// The last sequence (position, for the store) the scope's newest checkpoint holds.
    covered: u64,
    /// When the oldest of them was first seen.
    since: DateTime<Utc>,
}

impl Store {
    /// A checkpointer for this store under `policy`. It starts from what the file holds: events
    /// appended before, and not yet in a checkpoint, count toward the triggers.
    ///
    /// # Errors
    /// A storage error.
    pub fn checkpointer(&self, policy: CheckpointPolicy) -> Result<Checkpointer> {
        let txn = self.inner().db.begin_read()?;
        let seen = format::last_position(&txn.open_table(EVENTS)?)?;
        let checkpoint_code = txn
            .open_table(NAMES)?
            .get((
                NameKind::EventType as u8,
                EventType::LogCheckpointCreated.as_str(),
            ))?
            .map(|g| g.value());
        let now = time::now();
        let mut scopes = HashMap::new();
        if policy.whole_store {
            let covered = covered(&txn, &CheckpointScope::Store)?;
            let mut events = seen.saturating_sub(covered);
            if let (Some(code), true) = (checkpoint_code, events > 0) {
                for entry in postings::entries(&txn, Code::Type(code), covered + 1, seen, true)? {
                    entry?;
                    events = events.saturating_sub(1);
                }
            }
            if events > 0 {
                let scope = CheckpointScope::Store;
                scopes.insert(
                    scope.key(),
                    Waiting {
                        scope,
                        events,
                        covered,
                        since: now,
                    },
                );
            }
        } else {
            for row in txn.open_table(INTENTS)?.iter()? {
                let (name, value) = row?;
                let intent_id = name.value();
                let head = IntentHead::decode(value.value(), intent_id)?;
                let scope = CheckpointScope::intent(intent_id);
                let covered = covered(&txn, &scope)?;
                if head.last_sequence <= covered {
                    continue;
                }
                let mut events = 0;
                let intent = Code::Intent(head.code);
                for entry in postings::entries(&txn, intent, covered + 1, head.last_sequence, true)?
                {
                    if Some(entry?.facts.1) != checkpoint_code {
                        events += 1;
                    }
                }
                if events > 0 {
                    scopes.insert(
                        scope.key(),
                        Waiting {
                            scope,
                            events,
                            covered,
                            since: now,
                        },
                    );
                }
            }
        }
        Ok(Checkpointer {
            store: self.clone(),
            policy,
            state: Mutex::new(Watch { seen, scopes }),
        })
    }
}

/// The last sequence (position) the scope's newest checkpoint holds; 0 when it has none.
fn covered(txn: &ReadTransaction, scope: &CheckpointScope) -> Result<u64> {
    match numbers(txn, Some(scope))?.pop() {
        Some(number) => Ok(load(txn, number)?.checkpoint.last_sequence),
        None => Ok(0),
    }
}

impl Checkpointer {
    /// Looks at the events appended since the last look and makes every checkpoint that is due.
    /// Returns the checkpoints made.
    ///
    /// # Errors
    /// As [`Store::create_checkpoint`]; a scope that failed is tried again at the next tick.
    pub fn tick(&self) -> Result<Vec<LogCheckpoint>> {
        let mut watch = self.state.lock();
        self.look(&mut watch)?;
        let now = time::now();
        let due: Vec<String> = watch
            .scopes
            .iter()
            .filter(|(_, w)| self.is_due(w, now))
            .map(|(key, _)| key.clone())
            .collect();
        let mut made = Vec::new();
        for key in due {
            let Some(waiting) = watch.scopes.get(&key) else {
                continue;
            };
            let checkpoint = create(&self.store, &waiting.scope, self.policy.key.as_ref())?;
            // Sealed (or nothing left to seal): later events of the scope start a new wait.
            watch.scopes.remove(&key);
            made.extend(checkpoint);
        }
        Ok(made)
    }

    fn is_due(&self, waiting: &Waiting, now: DateTime<Utc>) -> bool {
        let by_count = self
            .policy
            .every_events
            .is_some_and(|n| waiting.events >= n);
        let by_time = self.policy.every.is_some_and(|interval| {
            (now - waiting.since)
                .to_std()
                .is_ok_and(|waited| waited >= interval)
        });
        waiting.events > 0 && (by_count || by_time)
    }

    /// Counts the events appended since the last look into their scopes.
    fn look(&self, watch: &mut Watch) -> Result<()> {
        let txn = self.store.inner().db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let last = format::last_position(&events)?;
        if last <= watch.seen {
            return Ok(());
        }
        let now = time::now();
        for row in events.range(watch.seen + 1..=last)? {
            let (key, value) = row?;
            let event = format::decode_record(key.value(), value.value())?;
            if event.event_type == EventType::LogCheckpointCreated {
                continue;
            }
            let (scope, at) = if self.policy.whole_store {
                (CheckpointScope::Store, event.position)
            } else {
                (CheckpointScope::Intent(event.intent_id), event.sequence)
            };
            let key = scope.key();
            let waiting = match watch.scopes.get_mut(&key) {
                Some(waiting) => waiting,
                None => {
                    let covered = covered(&txn, &scope)?;
                    watch.scopes.entry(key).or_insert(Waiting {
                        scope,
                        events: 0,
                        covered,
                        since: now,
                    })
                }
            };
            if at > waiting.covered {
                waiting.events += 1;
            }
        }
        watch.scopes.retain(|_, w| w.events > 0);
        watch.seen = last;
        Ok(())
    }

    /// Runs [`Checkpointer::tick`] on a thread of its own every poll interval, until the returned
    /// handle is stopped or dropped.
    ///
    /// # Errors
    /// [`Error::Output`] when the thread cannot be started.
    pub fn spawn(self) -> Result<CheckpointThread> {
        let (stop, stopped) = bounded::<()>(1);
        let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let record = Arc::clone(&failure);
        let poll = self.policy.poll;
        let thread = std::thread::Builder::new()
            .name("oidb-checkpoints".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(poll) {
                    if let Err(e) = self.tick() {
                        *record.lock() = Some(e);
                    }
                }
            })
            .map_err(Error::Output)?;
        Ok(CheckpointThread {
            stop: Some(stop),
            thread: Some(thread),
            failure,
        })
    }
}

/// A thread making checkpoints; stops (after finishing the tick under way) when dropped.
#[derive(Debug)]
pub struct CheckpointThread {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    failure: Arc<Mutex<Option<Error>>>,
}

impl CheckpointThread {
    /// The last error a tick met, if any (the thread goes on and tries again).
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        self.failure.lock().as_ref().map(ToString::to_string)
    }

    /// Stops the thread and waits for it.
    ///
    /// # Errors
    /// The last error a tick met, if any.
    pub fn stop(mut self) -> Result<()> {
        self.halt();
        match self.failure.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CheckpointThread {
    fn drop(&mut self) {
        self.halt();
    }
}
