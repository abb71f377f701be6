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
//!
//! Uses `model::error`, `model::time`, `proof::jcs`, `proof::signature`.

mod checkpointer;
mod create;
mod prove;
mod stored;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::error::Result;
use crate::model::time;

pub use checkpointer::{CheckpointPolicy, CheckpointThread, Checkpointer};

/// The key checkpoints are signed with; without the `signatures` feature there is none.
#[cfg(feature = "signatures")]
use crate::proof::signature::SigningKey;
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
/// Serialize it to keep it outside the file: [`Store::verify_checkpoint`](crate::Store::verify_checkpoint) later says whether the
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
        crate::proof::jcs::to_canonical_vec(&self.to_json(false)).map_err(|e| {
            crate::model::error::Error::InvalidEvent {
                field: "anchor",
                reason: e.to_string(),
            }
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
