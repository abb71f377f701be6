//! The write and read paths' inner steps, one at a time, for the micro-benchmarks
//! (`cargo bench --bench micro --features bench-internals`). Not part of the API: compiled only
//! with the `bench-internals` feature, and free to change with the code it measures.
//!
//! Uses `model::error`, `model::event`, `model::time`, `proof::chain`, `proof::jcs`,
//! `engine::binary_json`, `engine::format`, `engine::postings`.

use redb::Value as _;

use crate::engine::binary_json;
use crate::engine::format::{self, Digests, Facts};
use crate::engine::postings;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event::Position;
use crate::model::time;
use crate::proof::chain::{parse_hash, HashInput, HashStart};
use crate::proof::jcs;

/// An event's encodings as the writer makes them before it takes the commit lock.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The payload's binary form (stored).
    pub payload_binary: Vec<u8>,
    /// The payload's RFC 8785 form (hashed).
    pub payload_canonical: Vec<u8>,
}

/// The payload's binary form and canonical form, as the writer computes them.
///
/// # Errors
/// When the payload cannot be encoded or canonicalized.
pub fn encode_payload(event: &Event) -> Result<Encoded> {
    let invalid = |reason: String| Error::InvalidEvent {
        field: "payload",
        reason,
    };
    let mut payload_binary = Vec::with_capacity(256);
    binary_json::encode(&event.payload, &mut payload_binary)
        .map_err(|_| invalid(jcs::NotCanonicalizable::TooDeep.to_string()))?;
    Ok(Encoded {
        payload_binary,
        payload_canonical: jcs::to_canonical_vec(&event.payload)
            .map_err(|e| invalid(e.to_string()))?,
    })
}

/// The payload decoded from its binary form alone.
///
/// # Errors
/// When the bytes are not a binary JSON value.
pub fn decode_payload(bytes: &[u8]) -> Result<serde_json::Value> {
    binary_json::decode_prefix(bytes)
        .map(|(value, _)| value)
        .map_err(|e| Error::Corrupt {
            position: 0,
            reason: e.to_string(),
        })
}

/// The event's RFC-0019 hash as the writer computes it when the store picks the event's id or
/// time: under the commit lock, the payload already canonical.
///
/// # Errors
/// When the proof cannot be canonicalized.
pub fn event_digest(event: &Event, encoded: &Encoded) -> Result<[u8; 32]> {
    HashInput::of(event)
        .digest_with_canonical_payload(&encoded.payload_canonical)
        .map_err(|e| Error::InvalidEvent {
            field: "payload",
            reason: e.to_string(),
        })
}

/// `event` as a caller would append it again: the same content, id and time.
pub fn new_event_of(event: &Event) -> NewEvent {
    let mut new = NewEvent::new(
        event.intent_id.clone(),
        event.event_type.clone(),
        event.actor.clone(),
    )
    .payload(event.payload.as_value().clone())
    .id(event.id)
    .created_at(event.created_at)
    .level(event.level);
    new.trace_id.clone_from(&event.trace_id);
    new.parent_event_id.clone_from(&event.parent_event_id);
    new.proof.clone_from(&event.proof);
    new
}

/// An event's hash as the writer begins it before the commit lock.
#[derive(Clone)]
pub struct HashAhead(HashStart);

/// Begins `new`'s hash as the writer does before the commit lock (its id and time given: all
/// but the members after the payload).
///
/// # Errors
/// When the payload cannot be canonicalized.
pub fn begin_hash(new: &NewEvent) -> Result<HashAhead> {
    HashStart::of(new)
        .map(HashAhead)
        .map_err(|e| Error::InvalidEvent {
            field: "payload",
            reason: e.to_string(),
        })
}

/// Finishes a hash begun with [`begin_hash`] as the writer does under the commit lock, `event`
/// being the stored form of the event it was begun with.
///
/// # Errors
/// When the proof cannot be canonicalized.
pub fn finish_hash(ahead: HashAhead, event: &Event) -> Result<[u8; 32]> {
    ahead.0.finish(event).map_err(|e| Error::InvalidEvent {
        field: "proof",
        reason: e.to_string(),
    })
}

/// The stored record of `event`.
///
/// # Errors
/// When the event's hashes are not `sha256:` hashes.
pub fn encode_record(event: &Event, encoded: &Encoded) -> Result<Vec<u8>> {
    let digest = |text: &str| {
        parse_hash(text).ok_or_else(|| Error::InvalidEvent {
            field: "event_hash",
            reason: format!("{text:?} is not a sha256: hash"),
        })
    };
    let digests = Digests {
        event: digest(&event.event_hash)?,
        previous: event
            .previous_event_hash
            .as_deref()
            .map(digest)
            .transpose()?,
    };
    let proof = event
        .proof
        .as_ref()
        .map(binary_json::to_vec)
        .transpose()
        .map_err(|_| Error::InvalidEvent {
            field: "proof",
            reason: jcs::NotCanonicalizable::TooDeep.to_string(),
        })?;
    format::encode_record(event, &digests, &encoded.payload_binary, proof.as_deref())
}

/// The event stored at `position` as `bytes`.
///
/// # Errors
/// When the record is damaged.
pub fn decode_record(position: Position, bytes: &[u8]) -> Result<Event> {
    format::decode_record(position, bytes)
}

/// The bytes of the index rows and entries the writer stores for `event` (by id and time as rows;
/// by intent, type and actor as entries of blocks, following an entry of the event before it in
/// each), given its interned codes; returns their total length.
#[must_use]
pub fn encode_index_rows(
    event: &Event,
    intent_code: u64,
    type_code: u32,
    actor_code: u32,
) -> usize {
    let position = event.position;
    let facts: Facts = (
        time::to_micros(event.created_at),
        type_code,
        actor_code,
        event.level.code(),
    );
    let by_id = <u128 as redb::Value>::as_bytes(&event.id.as_u128());
    let by_time = <(i64, u64)>::as_bytes(&(facts.0, position));
    let facts_bytes = <Facts>::as_bytes(&facts);
    let entry = postings::Entry {
        position,
        sequence: event.sequence,
        facts,
    };
    let previous = postings::Entry {
        position: position.saturating_sub(1),
        sequence: event.sequence.saturating_sub(1),
        facts: (facts.0 - 1_000, type_code, actor_code, facts.3),
    };
    let mut entries = Vec::with_capacity(32);
    for code in [
        postings::Code::Intent(intent_code),
        postings::Code::Type(type_code),
        postings::Code::Actor(actor_code),
    ] {
        postings::encode_entry_after(&mut entries, code, &previous, &entry);
    }
    by_id.len() + by_time.len() + facts_bytes.len() + entries.len()
}
