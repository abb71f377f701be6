//! RFC-0018 signed events: Ed25519 keys named by `did:key`, events signed over their JCS form,
//! proofs verified on append, and a store that can require signatures from registered actors.
//!
//! What is signed is the RFC 8785 (JCS) form of the event's wire JSON without `proof` and without
//! what the store assigns when it appends (`sequence`, `previous_event_hash`, `event_hash`,
//! `position`): `id, intent_id, event_type, actor, payload, created_at`, and `trace_id`,
//! `parent_event_id` and `level` when present. `created_at` is written as oidb writes it
//! (`YYYY-MM-DDTHH:MM:SS.ffffffZ`). The proof is
//! `{"type": "Ed25519Signature2026", "created", "verification_method": "did:key:z6Mk…",
//! "signature": base64url}`, and being part of the event it is covered by the event's RFC-0019 hash.
//!
//! ```
//! use oidb::signature::{did_key, SigningKey};
//! use oidb::{EventType, NewEvent, Store};
//!
//! # let store = Store::in_memory()?;
//! let key = SigningKey::from_bytes(&[7; 32]); // in practice: from the agent's key store
//! store.register_agent_key("agent-research", &key.verifying_key())?;
//! store.require_signatures(true)?;
//!
//! let signed = NewEvent::new("intent-42", EventType::Comment, "agent-research").sign(&key);
//! let event = store.append(signed)?;
//! assert_eq!(event.proof.unwrap()["verification_method"], did_key(&key.verifying_key()));
//!
//! let unsigned = NewEvent::new("intent-42", EventType::Comment, "agent-research");
//! assert!(matches!(store.append(unsigned), Err(oidb::Error::SignatureRequired { .. })));
//! # Ok::<(), oidb::Error>(())
//! ```
//!
//! Uses `model::error`, `model::event`, `model::time`, `proof::jcs`.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

pub use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::time;
use crate::proof::jcs;

/// The proof type oidb writes and verifies.
pub const PROOF_TYPE: &str = "Ed25519Signature2026";

/// The multicodec code of an Ed25519 public key (0xed), as an unsigned varint.
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];

const DID_KEY_PREFIX: &str = "did:key:";

/// The `did:key` of an Ed25519 public key: `did:key:z` + base58btc(0xed 0x01 ‖ key), which
/// always starts `did:key:z6Mk`.
#[must_use]
pub fn did_key(key: &VerifyingKey) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.extend_from_slice(&ED25519_MULTICODEC);
    bytes.extend_from_slice(key.as_bytes());
    format!("{DID_KEY_PREFIX}z{}", base58::encode(&bytes))
}

/// Reads the Ed25519 public key a `did:key` names (a `#fragment` after it is ignored).
///
/// # Errors
/// [`Error::InvalidKey`] for anything but the `did:key` of an Ed25519 key.
pub fn parse_did_key(did: &str) -> Result<VerifyingKey> {
    let invalid = |reason: &str| Error::InvalidKey(format!("{did:?} {reason}"));
    let did = did.split_once('#').map_or(did, |(d, _)| d);
    let encoded = did
        .strip_prefix(DID_KEY_PREFIX)
        .ok_or_else(|| invalid("is not a did:key"))?
        .strip_prefix('z')
        .ok_or_else(|| invalid("is not base58btc-encoded (it must start with did:key:z)"))?;
    let bytes = base58::decode(encoded).ok_or_else(|| invalid("is not valid base58btc"))?;
    let key = bytes
        .strip_prefix(&ED25519_MULTICODEC)
        .ok_or_else(|| invalid("is not an Ed25519 key (multicodec 0xed01)"))?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| invalid("does not hold a 32-byte key"))?;
    VerifyingKey::from_bytes(&key).map_err(|_| invalid("is not a valid Ed25519 public key"))
}

/// An Ed25519 public key as RFC-0018 writes it: `ed25519:` + base64url (no padding).
#[must_use]
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}", URL_SAFE_NO_PAD.encode(key.as_bytes()))
}

/// Reads a public key written as `ed25519:<base64url>` or as a `did:key`.
///
/// # Errors
/// [`Error::InvalidKey`] when it is neither.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey> {
    if text.starts_with(DID_KEY_PREFIX) {
        return parse_did_key(text);
    }
    let invalid = |reason: &str| Error::InvalidKey(format!("{text:?} {reason}"));
    let encoded = text
        .strip_prefix("ed25519:")
        .ok_or_else(|| invalid("is neither ed25519:<base64url> nor a did:key"))?;
    let bytes = decode_base64url(encoded).ok_or_else(|| invalid("is not base64url"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| invalid("does not hold a 32-byte key"))?;
    VerifyingKey::from_bytes(&key).map_err(|_| invalid("is not a valid Ed25519 public key"))
}

fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

/// Signs `bytes`; the signature as base64url without padding.
pub(crate) fn sign_bytes(key: &SigningKey, bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(key.sign(bytes).to_bytes())
}

/// Verifies a base64url signature over `bytes` (strictly: no malleable or small-order forms).
pub(crate) fn verify_bytes(
    key: &VerifyingKey,
    bytes: &[u8],
    signature: &str,
) -> std::result::Result<(), String> {
    let raw = decode_base64url(signature).ok_or("the signature is not base64url")?;
    let raw: [u8; 64] = raw
        .try_into()
        .map_err(|_| "the signature is not 64 bytes".to_owned())?;
    key.verify_strict(bytes, &Signature::from_bytes(&raw))
        .map_err(|_| format!("the signature does not verify with {}", did_key(key)))
}

/// The bytes an event's signature covers: the JCS form of its wire JSON without `proof`,
/// `sequence`, `previous_event_hash`, `event_hash` and `position`.
///
/// # Errors
/// [`Error::InvalidEvent`] when the payload cannot be canonicalized (such events are refused on
/// append anyway).
pub fn signed_content(event: &Event) -> Result<Vec<u8>> {
    let mut value = serde_json::to_value(event).map_err(|e| Error::InvalidEvent {
        field: "payload",
        reason: e.to_string(),
    })?;
    if let Value::Object(object) = &mut value {
        for assigned in [
            "proof",
            "sequence",
            "previous_event_hash",
            "event_hash",
            "position",
        ] {
            object.remove(assigned);
        }
    }
    jcs::to_canonical_vec(&value).map_err(|e| Error::InvalidEvent {
        field: "payload",
        reason: e.to_string(),
    })
}

impl NewEvent {
    /// Signs the event with `key` (RFC-0018) and attaches the proof. The id and time are fixed
    /// here when not given already (they are signed). Sign last: a setter called afterwards
    /// changes what was signed, and the store then refuses the event.
    ///
    /// A payload that cannot be canonicalized (nested deeper than [`jcs::MAX_DEPTH`]) is left
    /// unsigned; the store refuses it on append in any case.
    pub fn sign(mut self, key: &SigningKey) -> NewEvent {
        let id = *self.id.get_or_insert_with(Uuid::now_v7);
        let created_at = *self.created_at.get_or_insert_with(time::now);
        let unsigned = Event {
            position: 0,
            id,
            intent_id: self.intent_id.clone(),
            event_type: self.event_type.clone(),
            actor: self.actor.clone(),
            payload: self.payload.clone().into(),
            created_at,
            sequence: 0,
            previous_event_hash: None,
            event_hash: String::new(),
            trace_id: self.trace_id.clone(),
            parent_event_id: self.parent_event_id.clone(),
            level: self.level,
            proof: None,
        };
        if let Ok(bytes) = signed_content(&unsigned) {
            self.proof = Some(json!({
                "type": PROOF_TYPE,
                "created": time::format(time::now()),
                "verification_method": did_key(&key.verifying_key()),
                "signature": sign_bytes(key, &bytes),
            }));
        }
        self
    }
}

/// Verifies an event's proof. Returns the `did:key` that signed it, or `None` when it carries no
/// proof.
///
/// # Errors
/// [`Error::InvalidSignature`] naming what is wrong: another proof type, a verification method
/// that is not a `did:key`, a signature that is not 64 base64url bytes or does not verify.
pub fn verify_event_signature(event: &Event) -> Result<Option<String>> {
    let Some(proof) = &event.proof else {
        return Ok(None);
    };
    let invalid = |reason: String| Error::InvalidSignature {
        id: event.id,
        reason,
    };
    let field = |name: &str| proof.get(name).and_then(Value::as_str);
    match field("type") {
        Some(PROOF_TYPE) => {}
        Some(other) => {
            return Err(invalid(format!(
                "proof type {other:?} is not supported; oidb verifies {PROOF_TYPE}"
            )))
        }
        None => return Err(invalid("the proof has no `type`".into())),
    }
    let did = field("verification_method")
        .ok_or_else(|| invalid("the proof has no `verification_method`".into()))?;
    let key = parse_did_key(did).map_err(|e| invalid(e.to_string()))?;
    let signature =
        field("signature").ok_or_else(|| invalid("the proof has no `signature`".into()))?;
    let bytes = signed_content(event)?;
    verify_bytes(&key, &bytes, signature).map_err(invalid)?;
    Ok(Some(did.split_once('#').map_or(did, |(d, _)| d).to_owned()))
}

/// A registered key of an agent, in OpenIntent's `AgentIdentity` JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentIdentity {
    /// The actor.
    pub agent_id: String,
    /// The key, as `ed25519:<base64url>`.
    pub public_key: String,
    /// The key's `did:key`.
    pub did: String,
    /// Always `Ed25519`.
    pub key_algorithm: String,
    /// When it was registered (`YYYY-MM-DDTHH:MM:SS.ffffffZ`).
    pub registered_at: String,
}

impl AgentIdentity {
    pub(crate) fn new(actor: &str, did: &str, registered_micros: i64) -> Result<AgentIdentity> {
        let key = parse_did_key(did)?;
        Ok(AgentIdentity {
            agent_id: actor.to_owned(),
            public_key: public_key_text(&key),
            did: did.to_owned(),
            key_algorithm: "Ed25519".into(),
            registered_at: time::from_micros(registered_micros)
                .map(time::format)
                .unwrap_or_default(),
        })
    }
}

/// Base58 with the Bitcoin alphabet (multibase prefix `z`), as `did:key` uses it.
mod base58 {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let zeros = bytes.iter().take_while(|b| **b == 0).count();
        // Base-58 digits, least significant first.
        let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
        for &byte in bytes {
            let mut carry = u32::from(byte);
            for digit in &mut digits {
                carry += u32::from(*digit) << 8;
                *digit = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let mut text = String::with_capacity(zeros + digits.len());
        text.extend(std::iter::repeat_n('1', zeros));
        for digit in digits.iter().rev() {
            text.push(char::from(
                *ALPHABET.get(usize::from(*digit)).unwrap_or(&b'1'),
            ));
        }
        text
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let zeros = text.bytes().take_while(|b| *b == b'1').count();
        // Bytes, least significant first.
        let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
        for c in text.bytes() {
            let mut carry = ALPHABET.iter().position(|a| *a == c)? as u32;
            for byte in &mut bytes {
                carry += u32::from(*byte) * 58;
                *byte = (carry & 0xff) as u8;
                carry >>= 8;
            }
            while carry > 0 {
                bytes.push((carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        let mut out = vec![0; zeros];
        out.extend(bytes.iter().rev());
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn known_answers_from_the_base58_draft() {
            // draft-msporny-base58 test vectors.
            assert_eq!(encode(b"Hello World!"), "2NEpo7TZRRrLZSi2U");
            assert_eq!(
                encode(b"The quick brown fox jumps over the lazy dog."),
                "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"
            );
            assert_eq!(encode(&[0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd]), "11233QC4");
            assert_eq!(
                decode("11233QC4").unwrap(),
                [0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd]
            );
            assert_eq!(decode("2NEpo7TZRRrLZSi2U").unwrap(), b"Hello World!");
            assert_eq!(encode(&[]), "");
            assert_eq!(decode("").unwrap(), Vec::<u8>::new());
            assert!(decode("0OIl").is_none());
        }
    }
}
