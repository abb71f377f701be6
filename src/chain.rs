//! RFC-0019 event hashes: `sha256:` + base64url (no padding) of SHA-256 over the RFC 8785 (JCS)
//! form of the event's wire JSON without `event_hash` and without the store-local `position`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event::Level;
use crate::jcs;
use crate::{time, Event, EventType};

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

const HASH_PREFIX: &str = "sha256:";

/// The fields an event hash covers, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashInput<'a> {
    pub(crate) id: Uuid,
    pub(crate) intent_id: &'a str,
    pub(crate) event_type: &'a EventType,
    pub(crate) actor: &'a str,
    pub(crate) payload: &'a Value,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) sequence: u64,
    pub(crate) previous_event_hash: Option<&'a str>,
    pub(crate) trace_id: Option<&'a str>,
    pub(crate) parent_event_id: Option<&'a str>,
    pub(crate) level: Level,
    pub(crate) proof: Option<&'a Value>,
}

impl<'a> HashInput<'a> {
    /// What `event`'s hash covers.
    pub(crate) fn of(event: &'a Event) -> Self {
        HashInput {
            id: event.id,
            intent_id: &event.intent_id,
            event_type: &event.event_type,
            actor: &event.actor,
            payload: &event.payload,
            created_at: event.created_at,
            sequence: event.sequence,
            previous_event_hash: event.previous_event_hash.as_deref(),
            trace_id: event.trace_id.as_deref(),
            parent_event_id: event.parent_event_id.as_deref(),
            level: event.level,
            proof: event.proof.as_ref(),
        }
    }

    /// The RFC 8785 canonical bytes the hash is taken over.
    ///
    /// The members are written in JCS order directly (all top-level names are ASCII, so code-unit
    /// order is byte order), which avoids building and sorting a JSON object per append.
    pub(crate) fn canonical_bytes(&self) -> Result<Vec<u8>, jcs::NotCanonicalizable> {
        let payload = jcs::to_canonical_vec(self.payload)?;
        self.canonical_bytes_with_payload(&payload)
    }

    /// As [`HashInput::canonical_bytes`], with the payload's canonical bytes given (the write path
    /// computes them before it takes the commit lock). `payload` must be `JCS(self.payload)`.
    fn canonical_bytes_with_payload(
        &self,
        payload: &[u8],
    ) -> Result<Vec<u8>, jcs::NotCanonicalizable> {
        let mut out = Vec::with_capacity(payload.len() + 512);
        out.push(b'{');
        let mut first = true;
        let mut name = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        name(&mut out, "actor");
        jcs::write_string(self.actor, &mut out);
        name(&mut out, "created_at");
        jcs::write_string(&time::format(self.created_at), &mut out);
        name(&mut out, "event_type");
        jcs::write_string(self.event_type.as_str(), &mut out);
        name(&mut out, "id");
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        jcs::write_string(self.id.hyphenated().encode_lower(&mut id), &mut out);
        name(&mut out, "intent_id");
        jcs::write_string(self.intent_id, &mut out);
        if self.level != Level::Info {
            name(&mut out, "level");
            jcs::write_string(self.level.as_str(), &mut out);
        }
        if let Some(parent) = self.parent_event_id {
            name(&mut out, "parent_event_id");
            jcs::write_string(parent, &mut out);
        }
        name(&mut out, "payload");
        out.extend_from_slice(payload);
        if let Some(previous) = self.previous_event_hash {
            name(&mut out, "previous_event_hash");
            jcs::write_string(previous, &mut out);
        }
        if let Some(proof) = self.proof {
            name(&mut out, "proof");
            jcs::write_canonical(proof, &mut out)?;
        }
        name(&mut out, "sequence");
        jcs::write_canonical(&Value::from(self.sequence), &mut out)?;
        if let Some(trace_id) = self.trace_id {
            name(&mut out, "trace_id");
            jcs::write_string(trace_id, &mut out);
        }
        out.push(b'}');
        Ok(out)
    }

    /// The event hash as raw bytes.
    pub(crate) fn digest(&self) -> Result<Digest32, jcs::NotCanonicalizable> {
        Ok(Sha256::digest(self.canonical_bytes()?).into())
    }

    /// The event hash as raw bytes, given `JCS(self.payload)`.
    pub(crate) fn digest_with_canonical_payload(
        &self,
        payload: &[u8],
    ) -> Result<Digest32, jcs::NotCanonicalizable> {
        Ok(Sha256::digest(self.canonical_bytes_with_payload(payload)?).into())
    }
}

/// Writes a digest as an RFC-0019 hash string: `sha256:` + base64url without padding.
#[must_use]
pub fn format_hash(digest: &Digest32) -> String {
    let mut s = String::with_capacity(HASH_PREFIX.len() + 43);
    s.push_str(HASH_PREFIX);
    URL_SAFE_NO_PAD.encode_string(digest, &mut s);
    s
}

/// Reads an RFC-0019 hash string; `None` unless it is exactly `sha256:` + 43 base64url characters.
#[must_use]
pub fn parse_hash(text: &str) -> Option<Digest32> {
    let encoded = text.strip_prefix(HASH_PREFIX)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let digest: Digest32 = bytes.try_into().ok()?;
    // Only the canonical spelling round-trips; anything else would not compare equal as a string.
    (format_hash(&digest) == text).then_some(digest)
}

/// Recomputes the hash `event` should have from its content.
///
/// # Errors
/// When the payload or proof holds something JCS cannot write (nesting deeper than
/// [`jcs::MAX_DEPTH`]); such events are refused on append, so a stored one is damaged.
pub fn compute_event_hash(event: &Event) -> Result<String, jcs::NotCanonicalizable> {
    Ok(format_hash(&HashInput::of(event).digest()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_strings_round_trip_only_in_canonical_form() {
        let digest = [7u8; 32];
        let text = format_hash(&digest);
        assert_eq!(text.len(), 50);
        assert_eq!(parse_hash(&text), Some(digest));
        assert_eq!(parse_hash(&text.replace("sha256:", "sha-256:")), None);
        assert_eq!(parse_hash("sha256:abc"), None);
    }

    #[test]
    fn fixture_hashes_recompute() {
        let text = include_str!("../tests/data/openintent_chained.jsonl");
        for line in text.lines() {
            let event: Event = serde_json::from_str(line).unwrap();
            assert_eq!(
                compute_event_hash(&event).unwrap(),
                event.event_hash,
                "{line}"
            );
        }
    }
}
