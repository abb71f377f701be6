//! The write path's side of RFC-0018 signatures: the registered keys and the signature policy
//! as tables of the file, read in the append's own transaction, and the check every appended
//! event passes.
//!
//! Uses the file's tables, the proofs' signature arithmetic and the model.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::engine::format::{open_optional, AGENT_KEYS, SIGNATURE_POLICY};
use crate::model::error::{Error, Result};
use crate::model::event::Event;
use crate::proof::signature::verify_event_signature;

/// The signature policy row that says whether signatures are required.
pub(crate) const REQUIRE_SIGNATURES: &str = "require_signatures";

/// The keys registered for `actor` (each `did:key` and when it was registered, in microseconds),
/// as `txn` sees them.
pub(crate) fn registered_keys(txn: &ReadTransaction, actor: &str) -> Result<Vec<(String, i64)>> {
    let Some(keys) = open_optional(txn, AGENT_KEYS)? else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for row in keys.range((actor, "")..)? {
        let (key, value) = row?;
        let (owner, did) = key.value();
        if owner != actor {
            break;
        }
        found.push((did.to_owned(), value.value()));
    }
    Ok(found)
}

/// Whether the store requires signatures from actors with a registered key, as `txn` sees it.
pub(crate) fn signatures_required(txn: &ReadTransaction) -> Result<bool> {
    let Some(policy) = open_optional(txn, SIGNATURE_POLICY)? else {
        return Ok(false);
    };
    let required = policy
        .get(REQUIRE_SIGNATURES)?
        .is_some_and(|g| g.value() == 1);
    Ok(required)
}

/// The signature tables, open in the append's write transaction.
pub(crate) struct SigningTables<'txn> {
    keys: redb::Table<'txn, (&'static str, &'static str), i64>,
    required: bool,
}

impl<'txn> SigningTables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<SigningTables<'txn>> {
        let required = txn
            .open_table(SIGNATURE_POLICY)?
            .get(REQUIRE_SIGNATURES)?
            .is_some_and(|g| g.value() == 1);
        Ok(SigningTables {
            keys: txn.open_table(AGENT_KEYS)?,
            required,
        })
    }

    fn registered(&self, actor: &str) -> Result<Vec<String>> {
        let mut dids = Vec::new();
        for row in self.keys.range((actor, "")..)? {
            let (key, _) = row?;
            let (owner, did) = key.value();
            if owner != actor {
                break;
            }
            dids.push(did.to_owned());
        }
        Ok(dids)
    }
}

/// The write path's signature check: a proof must verify, and be by one of the actor's
/// registered keys when it has any; an unsigned event by an actor with a key is refused when
/// the store requires signatures.
pub(crate) fn check_on_append(tables: &SigningTables<'_>, event: &Event) -> Result<()> {
    let registered = tables.registered(&event.actor)?;
    match verify_event_signature(event)? {
        None if tables.required && !registered.is_empty() => Err(Error::SignatureRequired {
            id: event.id,
            actor: event.actor.clone(),
        }),
        None => Ok(()),
        Some(did) if registered.is_empty() || registered.contains(&did) => Ok(()),
        Some(did) => Err(Error::InvalidSignature {
            id: event.id,
            reason: format!(
                "it is signed by {did}, which is not a key registered for actor {:?} (registered: {})",
                event.actor,
                registered.join(", ")
            ),
        }),
    }
}
