//! Checkpoints as the file keeps them: the stored rows, loading them by number or id, the
//! leaves (event hashes) of a batch, and sealing a checkpoint or its log event with a key.
//!
//! Uses the engine's tables and postings, the proofs' arithmetic and the model.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::format::{
    self, IntentHead, CHECKPOINTS, CHECKPOINT_IDS, CHECKPOINT_SCOPES, EVENTS, INTENTS,
};
use crate::engine::postings::{self, Code};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::proof::chain::{parse_hash, Digest32};

use super::{CheckpointScope, LogCheckpoint, SigningKey};

/// A checkpoint as stored: the checkpoint and the id of the event that logged it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredCheckpoint {
    pub(super) checkpoint: LogCheckpoint,
    pub(super) log_event_id: Uuid,
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
pub(super) struct Leaf {
    pub(super) at: u64,
    pub(super) event: Event,
    pub(super) stored: Digest32,
}

/// The events of a scope in `first..=last` (sequences or positions), in order; stops at the first
/// one missing. Damaged records are errors.
pub(super) fn read_batch(
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

pub(super) fn intent_head(txn: &ReadTransaction, intent_id: &str) -> Result<Option<IntentHead>> {
    let intents = txn.open_table(INTENTS)?;
    let head = intents.get(intent_id)?;
    head.map(|h| IntentHead::decode(h.value(), intent_id))
        .transpose()
}

/// The scope's newest checkpoint, if any, read in a write transaction.
pub(super) fn last_in_scope_write(
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
pub(super) fn numbers(txn: &ReadTransaction, scope: Option<&CheckpointScope>) -> Result<Vec<u64>> {
    match scope {
        Some(scope) => {
            let Some(scopes) = format::open_optional(txn, CHECKPOINT_SCOPES)? else {
                return Ok(Vec::new());
            };
            let key = scope.key();
            let numbers = scopes
                .range((key.as_str(), 0)..=(key.as_str(), u64::MAX))?
                .map(|row| row.map(|(k, _)| k.value().1).map_err(Error::from))
                .collect();
            numbers
        }
        None => {
            let Some(checkpoints) = format::open_optional(txn, CHECKPOINTS)? else {
                return Ok(Vec::new());
            };
            let numbers = checkpoints
                .iter()?
                .map(|row| row.map(|(k, _)| k.value()).map_err(Error::from))
                .collect();
            numbers
        }
    }
}

pub(super) fn load(txn: &ReadTransaction, number: u64) -> Result<StoredCheckpoint> {
    let missing = || Error::Corrupt {
        position: 0,
        reason: format!("checkpoint number {number} is listed but missing"),
    };
    let checkpoints = format::open_optional(txn, CHECKPOINTS)?.ok_or_else(missing)?;
    let bytes = checkpoints.get(number)?.ok_or_else(missing)?;
    StoredCheckpoint::decode(number, bytes.value())
}

pub(super) fn load_by_id(txn: &ReadTransaction, checkpoint_id: &str) -> Result<StoredCheckpoint> {
    let not_found = || Error::CheckpointNotFound {
        checkpoint_id: checkpoint_id.to_owned(),
    };
    let ids = format::open_optional(txn, CHECKPOINT_IDS)?.ok_or_else(not_found)?;
    let number = ids.get(checkpoint_id)?.ok_or_else(not_found)?.value();
    load(txn, number)
}

/// Signs a checkpoint in place (sets `signed_by`, then `signature`).
#[cfg(feature = "signatures")]
pub(super) fn seal(checkpoint: &mut LogCheckpoint, key: &SigningKey) -> Result<()> {
    checkpoint.signed_by = Some(crate::proof::signature::did_key(&key.verifying_key()));
    let bytes = checkpoint.signed_bytes()?;
    checkpoint.signature = Some(crate::proof::signature::sign_bytes(key, &bytes));
    Ok(())
}

#[cfg(not(feature = "signatures"))]
pub(super) fn seal(_: &mut LogCheckpoint, key: &SigningKey) -> Result<()> {
    match *key {}
}

/// Signs the event that logs a checkpoint, when the checkpoint is signed.
#[cfg(feature = "signatures")]
pub(super) fn sign_log_event(event: NewEvent, key: Option<&SigningKey>) -> NewEvent {
    match key {
        Some(key) => event.sign(key),
        None => event,
    }
}

#[cfg(not(feature = "signatures"))]
pub(super) fn sign_log_event(event: NewEvent, _: Option<&SigningKey>) -> NewEvent {
    event
}
