//! Making checkpoints: sealing the next batch of a scope, storing it, and logging its
//! `log.checkpoint.created` event in the same transaction; through [`Store`].
//!
//! Uses the stored checkpoints, the store's write handle, the proofs' arithmetic and the model.

use redb::{ReadableTable, WriteTransaction};
use uuid::Uuid;

use crate::engine::format::{self, CHECKPOINTS, CHECKPOINT_IDS, CHECKPOINT_SCOPES, EVENTS};
use crate::engine::source::ReadSource;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::time;
use crate::proof::chain::{compute_event_hash, format_hash, Digest32};
use crate::proof::merkle::{self};
use crate::store::handle::Store;

use super::SigningKey;

use super::stored::{
    intent_head, last_in_scope_write, load, numbers, read_batch, seal, sign_log_event, Leaf,
    StoredCheckpoint,
};
use super::{CheckpointScope, LogCheckpoint};

impl Store {
    /// Makes a checkpoint of `scope` now: a Merkle root over the scope's events since its previous
    /// checkpoint, stored in the file and logged as a `log.checkpoint.created` event (in the
    /// intent, or in [`STORE_CHECKPOINT_INTENT`](super::STORE_CHECKPOINT_INTENT) for the store scope). Returns `None` when there is
    /// nothing new to seal (RFC-0019 never checkpoints an empty batch), and when the only new
    /// events are those that logged earlier checkpoints (they are sealed by the next checkpoint).
    ///
    /// Each event of the batch is verified (its hash recomputed, its link checked) before it is
    /// sealed; a damaged log is not checkpointed.
    ///
    /// # Errors
    /// [`Error::ChainBroken`](crate::Error::ChainBroken) when an event of the batch does not verify; a storage error.
    pub fn create_checkpoint(&self, scope: &CheckpointScope) -> Result<Option<LogCheckpoint>> {
        create(self, scope, None)
    }

    /// As [`Store::create_checkpoint`](crate::Store::create_checkpoint), signed with `key`: `signed_by` is its `did:key`, and the
    /// event that logs the checkpoint is signed too (RFC-0018).
    ///
    /// # Errors
    /// As [`Store::create_checkpoint`](crate::Store::create_checkpoint).
    #[cfg(feature = "signatures")]
    pub fn create_signed_checkpoint(
        &self,
        scope: &CheckpointScope,
        key: &SigningKey,
    ) -> Result<Option<LogCheckpoint>> {
        create(self, scope, Some(key))
    }
}

/// Creates a checkpoint; see [`Store::create_checkpoint`](crate::Store::create_checkpoint).
pub(super) fn create(
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
            let snapshot = store.inner().writer.begin_read()?;
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

pub(super) fn store_checkpoint(
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
pub(super) fn check_batch(
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
pub(super) fn log_event(
    store: &Store,
    stored: &StoredCheckpoint,
    key: Option<&SigningKey>,
) -> NewEvent {
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
pub(super) fn repair_log_event(
    store: &Store,
    scope: &CheckpointScope,
    key: Option<&SigningKey>,
) -> Result<()> {
    let txn = store.inner().writer.begin_read()?;
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
