//! RFC-0019 event hashes: `sha256:` + base64url (no padding) of SHA-256 over the RFC 8785 (JCS)
//! form of the event's wire JSON without `event_hash` and without the store-local `position`.
//!
//! Uses `model::event`, `model::event_type`, `model::time`, `proof::jcs`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::event::Event;
use crate::model::event::Level;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::time;
use crate::proof::jcs;

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
        self.head().write(&mut out);
        out.extend_from_slice(payload);
        self.tail().write(&mut out)?;
        Ok(out)
    }

    /// The members that come before the payload in canonical order.
    fn head(&self) -> HashHead<'a> {
        HashHead {
            actor: self.actor,
            created_at: self.created_at,
            event_type: self.event_type,
            id: self.id,
            intent_id: self.intent_id,
            level: self.level,
            parent_event_id: self.parent_event_id,
        }
    }

    /// The members that come after the payload in canonical order.
    fn tail(&self) -> HashTail<'a> {
        HashTail {
            previous_event_hash: self.previous_event_hash,
            proof: self.proof,
            sequence: self.sequence,
            trace_id: self.trace_id,
        }
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

/// The members of an event's canonical form that sort before `payload`: none of them depends on
/// the event's place in its intent's chain, so they can be hashed before that place is known.
#[derive(Debug, Clone, Copy)]
struct HashHead<'a> {
    actor: &'a str,
    created_at: DateTime<Utc>,
    event_type: &'a EventType,
    id: Uuid,
    intent_id: &'a str,
    level: Level,
    parent_event_id: Option<&'a str>,
}

impl HashHead<'_> {
    /// Writes `{` and the members up to the payload's name: `…,"payload":`.
    fn write(&self, out: &mut Vec<u8>) {
        // `actor` always comes first, so every later name follows a comma.
        out.extend_from_slice(b"{\"actor\":");
        jcs::write_string(self.actor, out);
        out.extend_from_slice(b",\"created_at\":");
        jcs::write_string(&time::format(self.created_at), out);
        out.extend_from_slice(b",\"event_type\":");
        jcs::write_string(self.event_type.as_str(), out);
        out.extend_from_slice(b",\"id\":");
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        jcs::write_string(self.id.hyphenated().encode_lower(&mut id), out);
        out.extend_from_slice(b",\"intent_id\":");
        jcs::write_string(self.intent_id, out);
        if self.level != Level::Info {
            out.extend_from_slice(b",\"level\":");
            jcs::write_string(self.level.as_str(), out);
        }
        if let Some(parent) = self.parent_event_id {
            out.extend_from_slice(b",\"parent_event_id\":");
            jcs::write_string(parent, out);
        }
        out.extend_from_slice(b",\"payload\":");
    }
}

/// The members of an event's canonical form that sort after `payload`, among them the two the
/// chain decides (`previous_event_hash`, `sequence`).
#[derive(Debug, Clone, Copy)]
struct HashTail<'a> {
    previous_event_hash: Option<&'a str>,
    proof: Option<&'a Value>,
    sequence: u64,
    trace_id: Option<&'a str>,
}

impl HashTail<'_> {
    /// Writes the members after the payload, each after a comma, and the closing `}`.
    fn write(&self, out: &mut Vec<u8>) -> Result<(), jcs::NotCanonicalizable> {
        if let Some(previous) = self.previous_event_hash {
            out.extend_from_slice(b",\"previous_event_hash\":");
            jcs::write_string(previous, out);
        }
        if let Some(proof) = self.proof {
            out.extend_from_slice(b",\"proof\":");
            jcs::write_canonical(proof, out)?;
        }
        out.extend_from_slice(b",\"sequence\":");
        jcs::write_canonical(&Value::from(self.sequence), out)?;
        if let Some(trace_id) = self.trace_id {
            out.extend_from_slice(b",\"trace_id\":");
            jcs::write_string(trace_id, out);
        }
        out.push(b'}');
        Ok(())
    }
}

/// An event's hash, begun before the commit lock with what the caller gave; finished under it,
/// once the event has its sequence and predecessor.
///
/// When the caller gave the event's id and time, everything up to and including the payload is
/// hashed at once, leaving a block or two for the commit; otherwise (the store picks those two
/// under the lock) only the payload's canonical form is made ahead.
#[derive(Clone)]
pub(crate) enum HashStart {
    /// SHA-256 fed with the canonical form up to and including the payload.
    Head(Sha256),
    /// The payload's canonical form.
    Payload(Vec<u8>),
}

impl HashStart {
    /// Begins the hash of `new`. Its id and time, when given, are the stored event's.
    pub(crate) fn of(new: &NewEvent) -> Result<HashStart, jcs::NotCanonicalizable> {
        let (Some(id), Some(created_at)) = (new.id, new.created_at) else {
            return jcs::to_canonical_vec(&new.payload).map(HashStart::Payload);
        };
        let head = HashHead {
            actor: &new.actor,
            created_at,
            event_type: &new.event_type,
            id,
            intent_id: &new.intent_id,
            level: new.level,
            parent_event_id: new.parent_event_id.as_deref(),
        };
        let mut out = Vec::with_capacity(1024);
        head.write(&mut out);
        jcs::write_canonical(&new.payload, &mut out)?;
        Ok(HashStart::Head(Sha256::new_with_prefix(&out)))
    }

    /// The hash of `event`, the stored form of the [`NewEvent`] this was begun with.
    pub(crate) fn finish(self, event: &Event) -> Result<Digest32, jcs::NotCanonicalizable> {
        let input = HashInput::of(event);
        let digest = match self {
            HashStart::Head(mut hasher) => {
                let mut tail = Vec::with_capacity(128);
                input.tail().write(&mut tail)?;
                hasher.update(&tail);
                hasher.finalize().into()
            }
            HashStart::Payload(payload) => input.digest_with_canonical_payload(&payload)?,
        };
        debug_assert_eq!(
            Ok(digest),
            input.digest(),
            "a hash begun ahead must end where the whole one does"
        );
        Ok(digest)
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

/// The length of an RFC-0019 hash string: `sha256:` and 43 base64url characters.
pub(crate) const HASH_TEXT_LEN: usize = HASH_PREFIX.len() + 43;

/// Writes a digest as [`format_hash`] does, into `buf` instead of a new string.
pub(crate) fn format_hash_into<'b>(digest: &Digest32, buf: &'b mut [u8; HASH_TEXT_LEN]) -> &'b str {
    let (prefix, encoded) = buf.split_at_mut(HASH_PREFIX.len());
    prefix.copy_from_slice(HASH_PREFIX.as_bytes());
    // 32 bytes take exactly 43 characters: the encoding fills `encoded`.
    let filled = URL_SAFE_NO_PAD.encode_slice(digest, encoded) == Ok(encoded.len());
    std::str::from_utf8(buf)
        .ok()
        .filter(|_| filled)
        .unwrap_or_default()
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
    fn hashes_written_into_a_buffer_read_as_format_hash_writes_them() {
        let mut buf = [0; HASH_TEXT_LEN];
        for digest in [
            [0u8; 32],
            [7; 32],
            [0xff; 32],
            std::array::from_fn(|i| (i as u8).wrapping_mul(37)),
        ] {
            assert_eq!(format_hash_into(&digest, &mut buf), format_hash(&digest));
        }
    }

    #[test]
    fn hash_strings_round_trip_only_in_canonical_form() {
        let digest = [7u8; 32];
        let text = format_hash(&digest);
        assert_eq!(text.len(), 50);
        assert_eq!(parse_hash(&text), Some(digest));
        assert_eq!(parse_hash(&text.replace("sha256:", "sha-256:")), None);
        assert_eq!(parse_hash("sha256:abc"), None);
    }

    /// `event` as its caller could have appended it, id and time given or not.
    fn as_appended(event: &Event, id_and_time: bool) -> NewEvent {
        let mut new = NewEvent::new(
            event.intent_id.clone(),
            event.event_type.clone(),
            event.actor.clone(),
        )
        .payload(event.payload.clone())
        .level(event.level);
        if id_and_time {
            new = new.id(event.id).created_at(event.created_at);
        }
        new.trace_id.clone_from(&event.trace_id);
        new.parent_event_id.clone_from(&event.parent_event_id);
        new.proof.clone_from(&event.proof);
        new
    }

    #[test]
    fn hashes_begun_ahead_finish_as_the_whole_hash() {
        let text = include_str!("../../tests/data/openintent_chained.jsonl");
        let first: Event = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let mut variants = vec![first.clone()];
        let mut every_member = first.clone();
        every_member.level = Level::Error;
        every_member.parent_event_id = Some("parent \"quoted\"".into());
        every_member.previous_event_hash = Some(format_hash(&[9; 32]));
        every_member.proof = Some(serde_json::json!({"z": [1, 2.5], "a": "\u{10000}"}));
        every_member.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
        every_member.sequence = 1 << 60;
        variants.push(every_member);
        variants.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
        for event in &variants {
            let whole = HashInput::of(event).digest().unwrap();
            for id_and_time in [true, false] {
                let start = HashStart::of(&as_appended(event, id_and_time)).unwrap();
                assert_eq!(matches!(start, HashStart::Head(_)), id_and_time);
                assert_eq!(start.finish(event).unwrap(), whole, "{event:?}");
            }
        }
    }

    #[test]
    fn fixture_hashes_recompute() {
        let text = include_str!("../../tests/data/openintent_chained.jsonl");
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
