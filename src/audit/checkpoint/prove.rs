//! Reading checkpoints back: listing them, inclusion proofs for an event, consistency between
//! two checkpoints, and checking a checkpoint against the log as it is now; all on a
//! [`Snapshot`].
//!
//! Uses the stored checkpoints, the engine's tables, the proofs' Merkle arithmetic and the model.

use std::collections::HashMap;

use redb::ReadTransaction;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::proof::chain::{compute_event_hash, format_hash, Digest32};
use crate::proof::merkle::{self, MerkleProof};

use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

use super::stored::{load, load_by_id, numbers, read_batch, Leaf};
use super::{
    CheckpointProblem, CheckpointScope, CheckpointVerification, ConsistencyProof, LogCheckpoint,
};

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
pub(super) fn chain_fault(run: &[Leaf]) -> Option<String> {
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

pub(super) fn boundary(scope: &CheckpointScope, event: &Event) -> Value {
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

pub(super) fn verify_in(
    txn: &ReadTransaction,
    checkpoint: &LogCheckpoint,
) -> Result<CheckpointVerification> {
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
pub(super) fn signature_fault(checkpoint: &LogCheckpoint) -> Option<String> {
    checkpoint.verify_signature().err().map(|e| e.to_string())
}

#[cfg(not(feature = "signatures"))]
pub(super) fn signature_fault(_: &LogCheckpoint) -> Option<String> {
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
