//! Checking a new event before the commit lock is taken: names, times, trace ids, the payload's
//! kind, size and depth, the proof, and the hashes an imported event came with; and encoding its
//! payload and proof, so that the leader only assigns, hashes and writes. Also the check, once
//! the store has placed and hashed an event, that the chain it came with is the one computed.
//!
//! Uses the writer's interface, binary JSON, the format's trace codes, the model and the proofs'
//! hashing; nothing of the store.

use serde_json::Value;

use crate::engine::binary_json;
use crate::engine::format;
use crate::engine::writer::interface::{Refused, WriteConfig};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::GivenChain;
use crate::model::event::NewEvent;
use crate::model::event::MAX_NAME_BYTES;
use crate::model::json_depth;
use crate::model::time;
use crate::proof::chain::{parse_hash, HashStart};
use crate::proof::jcs;

/// How deep arrays and objects may nest in a payload or proof written from now on (a top-level
/// array or object is level 1). An exported event holds its payload one level deeper than the
/// payload itself, and JSON readers (`serde_json`, and so import) stop below 128 levels, so this
/// is two under [`jcs::MAX_DEPTH`]: every event the store accepts exports as a line that imports
/// back. Records are still decoded up to [`jcs::MAX_DEPTH`], so older files read as before.
pub(crate) const MAX_VALUE_DEPTH: usize = jcs::MAX_DEPTH - 2;

/// Why a payload or proof nested deeper than [`MAX_VALUE_DEPTH`] is refused.
fn too_deep_reason() -> String {
    format!(
        "value nests arrays/objects deeper than {MAX_VALUE_DEPTH} levels; an exported event \
         holds it one level deeper, and JSON readers stop at 128 levels"
    )
}

/// An event as the caller handed it, with the checks and encodings that need no store done
/// before the commit lock is taken: the leader then only assigns, hashes and writes.
pub(super) struct Prepared {
    pub(super) new: NewEvent,
    /// The outcome of [`validate`], reported when the event's turn comes in
    /// [`plan`](crate::engine::writer::plan::plan), so a request's first failing event names the
    /// error, as if everything were checked in order.
    pub(super) checked: Result<Encoded>,
}

/// The encodings of a validated event.
pub(super) struct Encoded {
    /// The payload's binary form, as stored.
    pub(super) payload_binary: Vec<u8>,
    /// The event's hash, begun with what the caller gave (the payload's RFC 8785 form at least).
    pub(super) hash: HashStart,
    pub(super) proof_binary: Option<Vec<u8>>,
}

impl Prepared {
    pub(super) fn new(new: NewEvent, config: &WriteConfig) -> Prepared {
        let checked = validate(&new, config);
        Prepared { new, checked }
    }
}

/// Refuses a request with a payload or proof nested deeper than [`MAX_VALUE_DEPTH`], naming the
/// event, before anything serializes or drops it recursively: a value nested 100,000 deep would
/// overflow the stack. The refused values are torn down without recursion.
pub(super) fn refuse_too_deep(
    events: Vec<NewEvent>,
) -> std::result::Result<Vec<NewEvent>, Refused> {
    let too_deep = |value: &Value| json_depth::exceeds(value, MAX_VALUE_DEPTH);
    let refused = events.iter().enumerate().find_map(|(index, event)| {
        if too_deep(&event.payload) {
            Some((index, "payload"))
        } else if event.proof.as_ref().is_some_and(too_deep) {
            Some((index, "proof"))
        } else {
            None
        }
    });
    let Some((index, field)) = refused else {
        return Ok(events);
    };
    for event in events {
        json_depth::dismantle(event.payload);
        if let Some(proof) = event.proof {
            json_depth::dismantle(proof);
        }
    }
    Err(Refused {
        index: Some(index),
        error: Box::new(Error::InvalidEvent {
            field,
            reason: too_deep_reason(),
        }),
    })
}

/// Validates what can be checked without the store, and encodes the payload and proof.
fn validate(new: &NewEvent, config: &WriteConfig) -> Result<Encoded> {
    let invalid = |field: &'static str, reason: String| Error::InvalidEvent { field, reason };
    check_name("intent_id", &new.intent_id)?;
    check_name("actor", &new.actor)?;
    check_name("event_type", new.event_type.as_str())?;
    if let Some(parent) = &new.parent_event_id {
        check_name("parent_event_id", parent)?;
    }
    if let Some(t) = new.created_at {
        if !time::has_wire_form(t) {
            return Err(invalid(
                "created_at",
                format!("{t} is outside the years 0000 to 9999 that an RFC 3339 time can hold"),
            ));
        }
    }
    if let Some(trace_id) = &new.trace_id {
        // W3C Trace Context and OTLP hold an all-zero trace id invalid: such an event could be
        // stored but never read back by its trace nor exported as a span.
        if format::trace_code(trace_id).is_none_or(|code| code == 0) {
            return Err(invalid(
                "trace_id",
                format!(
                    "{trace_id:?} must be 32 lowercase hex digits, not all zero (RFC-0020 / W3C trace id)"
                ),
            ));
        }
    }
    if !new.payload.is_object() {
        return Err(invalid(
            "payload",
            format!(
                "must be a JSON object, found {}; wrap it, e.g. {{\"value\": …}}",
                crate::model::wire::kind(&new.payload)
            ),
        ));
    }
    let too_deep = |field| invalid(field, too_deep_reason());
    let mut payload_binary = Vec::with_capacity(256);
    let payload_json_len =
        binary_json::encode(&new.payload, &mut payload_binary).map_err(|_| too_deep("payload"))?;
    if payload_json_len > config.max_payload_bytes {
        return Err(invalid(
            "payload",
            format!(
                "is {payload_json_len} bytes, over the limit of {} bytes (StoreBuilder::max_payload_bytes raises it)",
                config.max_payload_bytes
            ),
        ));
    }
    let hash = HashStart::of(new).map_err(|e| invalid("payload", e.to_string()))?;
    if let Some(proof) = &new.proof {
        jcs::to_canonical_vec(proof).map_err(|e| invalid("proof", e.to_string()))?;
    }
    let proof_binary = new
        .proof
        .as_ref()
        .map(binary_json::to_vec)
        .transpose()
        .map_err(|_| too_deep("proof"))?;
    if let Some(given) = &new.chain {
        for (field, hash) in [
            ("event_hash", Some(&given.event_hash)),
            ("previous_event_hash", given.previous_event_hash.as_ref()),
        ] {
            if let Some(hash) = hash {
                if parse_hash(hash).is_none() {
                    return Err(invalid(
                        field,
                        format!(
                            "{hash:?} is not an RFC-0019 hash (sha256: + 43 base64url characters)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(Encoded {
        payload_binary,
        hash,
        proof_binary,
    })
}

fn check_name(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidEvent {
            field,
            reason: "must not be empty".into(),
        });
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidEvent {
            field,
            reason: format!("is {} bytes; the limit is {MAX_NAME_BYTES}", value.len()),
        });
    }
    Ok(())
}

/// Checks the sequence and hashes an imported event came with against what the store computed.
pub(super) fn check_given_chain(event: &Event, given: &GivenChain) -> Result<()> {
    let mismatch = |reason: String| Error::ChainMismatch {
        id: event.id,
        reason,
    };
    if given.sequence != event.sequence {
        return Err(mismatch(format!(
            "it has sequence {} but intent {:?} continues at {}",
            given.sequence, event.intent_id, event.sequence
        )));
    }
    if given.previous_event_hash != event.previous_event_hash {
        return Err(mismatch(format!(
            "its previous_event_hash {} does not match the hash of the intent's event {} ({})",
            given.previous_event_hash.as_deref().unwrap_or("(none)"),
            event.sequence - 1,
            event
                .previous_event_hash
                .as_deref()
                .unwrap_or("(none: it is the first)")
        )));
    }
    if given.event_hash != event.event_hash {
        return Err(mismatch(format!(
            "its event_hash {} does not match its content (recomputed: {}); the event was altered after it was hashed",
            given.event_hash, event.event_hash
        )));
    }
    Ok(())
}
