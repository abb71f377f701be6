//! The agent key registry (RFC-0018): registering an actor's Ed25519 keys and requiring
//! signatures are writes through [`Store`]; listing keys, reading the policy and checking a
//! signer before a write are reads of a [`Snapshot`].
//!
//! Uses the store's handles and read view, the engine's signature tables, the proofs' key
//! arithmetic and the model.

use redb::ReadableTable as _;
use uuid::Uuid;

use crate::engine::format::{AGENT_KEYS, SIGNATURE_POLICY};
use crate::engine::signing::{self, REQUIRE_SIGNATURES};
use crate::model::error::{Error, Result};
use crate::model::event::MAX_NAME_BYTES;
use crate::model::time;
use crate::proof::signature::{did_key, AgentIdentity, SigningKey, VerifyingKey};
use crate::store::handle::Store;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

impl Store {
    /// Registers an Ed25519 public key for `actor`. From then on an event by `actor` that carries
    /// a proof must be signed by one of its registered keys, and (when the store requires
    /// signatures) an event by `actor` must carry one. Registering a key twice changes nothing.
    ///
    /// The caller is trusted: whoever can write the file can register keys.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] for an empty or overlong actor; a storage error.
    pub fn register_agent_key(&self, actor: &str, key: &VerifyingKey) -> Result<AgentIdentity> {
        if actor.is_empty() || actor.len() > MAX_NAME_BYTES {
            return Err(Error::InvalidEvent {
                field: "actor",
                reason: format!("must be 1 to {MAX_NAME_BYTES} bytes to register a key"),
            });
        }
        let did = did_key(key);
        let micros = self.inner().writer.write_exclusive(|txn| {
            let mut keys = txn.open_table(AGENT_KEYS)?;
            let existing = keys.get((actor, did.as_str()))?.map(|g| g.value());
            Ok(match existing {
                Some(micros) => micros,
                None => {
                    let micros = time::to_micros(time::now());
                    keys.insert((actor, did.as_str()), micros)?;
                    micros
                }
            })
        })?;
        AgentIdentity::new(actor, &did, micros)
    }

    /// Whether events by actors with a registered key must be signed (kept in the file; off by
    /// default). Actors without a key are not affected.
    ///
    /// # Errors
    /// A storage error.
    pub fn require_signatures(&self, required: bool) -> Result<()> {
        self.inner().writer.write_exclusive(|txn| {
            txn.open_table(SIGNATURE_POLICY)?
                .insert(REQUIRE_SIGNATURES, u8::from(required))?;
            Ok(())
        })
    }
}

impl Snapshot {
    /// The keys registered for `actor`, oldest first.
    ///
    /// # Errors
    /// A storage error.
    pub fn agent_keys(&self, actor: &str) -> Result<Vec<AgentIdentity>> {
        let mut found = signing::registered_keys(self.txn(), actor)?
            .into_iter()
            .map(|(did, micros)| AgentIdentity::new(actor, &did, micros))
            .collect::<Result<Vec<_>>>()?;
        found.sort_by(|a, b| a.registered_at.cmp(&b.registered_at));
        Ok(found)
    }

    /// Whether the store requires signatures from actors with a registered key.
    ///
    /// # Errors
    /// A storage error.
    pub fn signatures_required(&self) -> Result<bool> {
        signing::signatures_required(self.txn())
    }

    /// What the write path would say of an event by `actor` signed with `key` (or unsigned), told
    /// before anything else is written.
    pub(crate) fn check_signer(
        &self,
        actor: &str,
        id: Uuid,
        key: Option<&SigningKey>,
    ) -> Result<()> {
        let registered = self.agent_keys(actor)?;
        match key {
            None if self.signatures_required()? && !registered.is_empty() => {
                Err(Error::SignatureRequired {
                    id,
                    actor: actor.to_owned(),
                })
            }
            Some(key) if !registered.is_empty() => {
                let did = did_key(&key.verifying_key());
                if registered.iter().any(|r| r.did == did) {
                    Ok(())
                } else {
                    Err(Error::InvalidSignature {
                        id,
                        reason: format!("{did} is not a key registered for actor {actor:?}"),
                    })
                }
            }
            _ => Ok(()),
        }
    }
}

read_on_handles! {
    /// The keys registered for `actor`, oldest first.
    fn agent_keys(&self, actor: &str) -> Result<Vec<AgentIdentity>>;
    /// Whether the store requires signatures from actors with a registered key.
    fn signatures_required(&self) -> Result<bool>;
}
