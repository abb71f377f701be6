//! Events as wire-form JSON text written straight from their stored records, for readers that
//! only want the text (export, the server's answers, replication): what `serde_json` writes
//! for the event [`decode_record`](format::decode_record) builds, byte for byte, without
//! building it.
//!
//! A version 3 record's head is read in place and its payload and proof are written from their
//! binary form ([`binary_json::write_json_prefix`]); a record of an earlier version, and any
//! record the direct way refuses, is decoded and its event serialized, so a damaged record fails
//! with the very error decoding gives.
//!
//! Uses `model::error`, `model::event`, `model::time`, `proof::chain`, `engine::binary_json`,
//! `engine::format`, `engine::json_text`.

use uuid::Uuid;

use crate::engine::binary_json;
use crate::engine::format::{self, RecordParts, UuidOrText};
use crate::engine::json_text;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Level;
use crate::model::event::Position;
use crate::model::time;
use crate::proof::chain::{format_hash_into, HASH_TEXT_LEN};

/// Appends to `out` the wire-form JSON of the event stored at `position` as `record`: exactly
/// what `serde_json::to_writer` writes for [`format::decode_record`]'s event. On error, `out`
/// is left as it was.
///
/// # Errors
/// [`Error::Corrupt`] for a damaged record, as [`format::decode_record`] gives it.
pub(crate) fn write_event(position: Position, record: &[u8], out: &mut Vec<u8>) -> Result<()> {
    write_naming(position, record, out, |_, _| ())
}

/// As [`write_event`], and returns what `name` makes of the event's id and intent id.
fn write_naming<T>(
    position: Position,
    record: &[u8],
    out: &mut Vec<u8>,
    name: impl FnOnce(Uuid, &UuidOrText<'_>) -> T,
) -> Result<T> {
    let start = out.len();
    if let Ok(Some(parts)) = format::record_parts(position, record) {
        if write_parts(position, &parts, out) {
            return Ok(name(parts.id, &parts.intent_id));
        }
        out.truncate(start);
    }
    let event = format::decode_record(position, record)?;
    serde_json::to_writer(&mut *out, &event).map_err(|e| {
        out.truncate(start);
        Error::Output(e.into())
    })?;
    Ok(name(event.id, &UuidOrText::Text(&event.intent_id)))
}

/// An event as a reader that sends it on (replication) needs it: its id and intent id, and its
/// wire-form JSON text, all read from its stored record without building the event.
pub(crate) struct WireEvent {
    /// The event's position.
    pub(crate) position: Position,
    /// The event's id.
    pub(crate) id: Uuid,
    /// The event's intent id.
    pub(crate) intent_id: String,
    /// What [`write_event`] writes for it.
    pub(crate) json: Vec<u8>,
}

/// The [`WireEvent`] of the event stored at `position` as `record`.
///
/// # Errors
/// [`Error::Corrupt`] for a damaged record, as [`format::decode_record`] gives it.
pub(crate) fn wire_event(position: Position, record: &[u8]) -> Result<WireEvent> {
    let mut json = Vec::with_capacity(record.len() * 2);
    let (id, intent_id) = write_naming(position, record, &mut json, |id, intent| {
        (id, intent.to_text())
    })?;
    Ok(WireEvent {
        position,
        id,
        intent_id,
        json,
    })
}

/// Writes the event of `parts` to `out` as `impl Serialize for Event` has `serde_json` write the
/// event the record decodes to: the same members, in the same order, spelled the same. Whether
/// its payload and proof were sound and ended where the record does (if not, what was written is
/// to be dropped).
fn write_parts(position: Position, parts: &RecordParts<'_>, out: &mut Vec<u8>) -> bool {
    out.extend_from_slice(br#"{"id":""#);
    let mut uuid_text = [0; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(
        parts
            .id
            .hyphenated()
            .encode_lower(&mut uuid_text)
            .as_bytes(),
    );
    out.extend_from_slice(br#"","intent_id":"#);
    write_id(out, &parts.intent_id);
    out.extend_from_slice(br#","event_type":"#);
    json_text::write_str(out, parts.event_type);
    out.extend_from_slice(br#","actor":"#);
    json_text::write_str(out, parts.actor);
    out.extend_from_slice(br#","payload":"#);
    let Ok(mut end) = binary_json::write_json_prefix(parts.values, out) else {
        return false;
    };
    out.extend_from_slice(br#","created_at":"#);
    let mut time_text = [0; time::WIRE_LEN];
    match time::format_into(parts.created_at, &mut time_text) {
        Some(text) => json_text::write_str(out, text),
        None => json_text::write_str(out, &time::format(parts.created_at)),
    }
    out.extend_from_slice(br#","sequence":"#);
    json_text::write_u64(out, parts.sequence);
    let mut hash_text = [0; HASH_TEXT_LEN];
    if let Some(previous) = &parts.previous_event_hash {
        out.extend_from_slice(br#","previous_event_hash":"#);
        json_text::write_str(out, format_hash_into(previous, &mut hash_text));
    }
    out.extend_from_slice(br#","event_hash":"#);
    json_text::write_str(out, format_hash_into(&parts.event_hash, &mut hash_text));
    if let Some(trace_id) = parts.trace_id {
        out.extend_from_slice(br#","trace_id":"#);
        let mut trace_text = [0; 32];
        json_text::write_str(out, format::trace_text_into(trace_id, &mut trace_text));
    }
    if let Some(parent) = &parts.parent_event_id {
        out.extend_from_slice(br#","parent_event_id":"#);
        write_id(out, parent);
    }
    if parts.has_proof {
        out.extend_from_slice(br#","proof":"#);
        let proof = parts.values.get(end..).unwrap_or_default();
        let Ok(used) = binary_json::write_json_prefix(proof, out) else {
            return false;
        };
        end += used;
    }
    out.extend_from_slice(br#","position":"#);
    json_text::write_u64(out, position);
    if parts.level != Level::Info {
        out.extend_from_slice(br#","level":"#);
        json_text::write_str(out, parts.level.as_str());
    }
    out.push(b'}');
    end == parts.values.len()
}

/// Writes a stored id as the text it reads back as.
fn write_id(out: &mut Vec<u8>, id: &UuidOrText<'_>) {
    match id {
        UuidOrText::Uuid(bytes) => {
            let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
            json_text::write_str(
                out,
                Uuid::from_bytes(*bytes)
                    .hyphenated()
                    .encode_lower(&mut text),
            );
        }
        UuidOrText::Text(text) => json_text::write_str(out, text),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::engine::binary_json;
    use crate::engine::binary_json::tests::json;
    use crate::engine::format::Digests;
    use crate::model::event::Event;
    use crate::model::event_type::EventType;
    use crate::proof::chain::format_hash;

    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,24}",
            "[a-z_]{1,12}",
            // Control characters, quotes, backslashes, DEL, and beyond the BMP.
            "[\\x00-\\x1f\"\\\\\\x7f\u{e9}\u{2028}\u{1f600}]{0,8}",
            prop::collection::vec(any::<char>(), 0..6).prop_map(|c| c.into_iter().collect()),
        ]
    }

    /// An intent or parent id: a canonical UUID (stored as its bytes) or other text.
    fn any_id() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
            any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string().to_uppercase()),
            any_string(),
        ]
    }

    fn any_type() -> impl Strategy<Value = EventType> {
        let known = EventType::known().len();
        prop_oneof![
            (0..known).prop_map(|i| EventType::known()[i].clone()),
            any_string().prop_map(|s| EventType::parse(&s)),
        ]
    }

    /// An event, its digests, and its record (version 3) as the writer encodes it.
    fn any_record() -> impl Strategy<Value = (Event, Vec<u8>)> {
        let head = (
            any::<u64>(),
            any::<u128>(),
            any_id(),
            any_type(),
            any_string(),
            // Any time RFC 3339 writes with four-digit years, and some it writes otherwise.
            prop_oneof![
                -62_135_596_800_000_000i64..253_402_300_799_999_999,
                Just(-62_200_000_000_000_000i64),
                Just(253_500_000_000_000_000i64),
            ],
            1u64..u64::MAX,
        );
        let chain = (
            any::<[u8; 32]>(),
            prop::option::of(any::<[u8; 32]>()),
            prop::option::of(any::<u128>()),
            prop::option::of(any_id()),
            0..Level::ALL.len(),
            prop::option::of(json()),
        );
        (head, chain, json()).prop_map(
            |(
                (position, id, intent_id, event_type, actor, micros, sequence),
                (event_digest, previous, trace, parent, level, proof),
                payload,
            )| {
                let event = Event {
                    position,
                    id: Uuid::from_u128(id),
                    intent_id,
                    event_type,
                    actor,
                    payload: payload.into(),
                    created_at: time::from_micros(micros).unwrap(),
                    sequence,
                    previous_event_hash: previous.as_ref().map(format_hash),
                    event_hash: format_hash(&event_digest),
                    trace_id: trace.map(format::trace_text),
                    parent_event_id: parent,
                    level: Level::ALL[level],
                    proof,
                };
                let record = record_of(&event, event_digest, previous);
                (event, record)
            },
        )
    }

    fn record_of(event: &Event, digest: [u8; 32], previous: Option<[u8; 32]>) -> Vec<u8> {
        let digests = Digests {
            event: digest,
            previous,
        };
        let payload = binary_json::to_vec(&event.payload).unwrap();
        let proof = event
            .proof
            .as_ref()
            .map(|p| binary_json::to_vec(p).unwrap());
        format::encode_record(event, &digests, &payload, proof.as_deref()).unwrap()
    }

    /// The text written the direct way, asserting that it was (not by decoding).
    fn direct(position: Position, record: &[u8]) -> Vec<u8> {
        let parts = format::record_parts(position, record).unwrap().unwrap();
        let mut out = Vec::new();
        assert!(
            write_parts(position, &parts, &mut out),
            "the direct way refused it"
        );
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Whatever the event, its JSON written from the record is the decoded event's JSON,
        /// byte for byte.
        #[test]
        fn the_record_writes_the_json_of_its_event((event, record) in any_record()) {
            let decoded = format::decode_record(event.position, &record).unwrap();
            prop_assert_eq!(&decoded, &event);
            let expected = serde_json::to_string(&decoded).unwrap();
            let written = direct(event.position, &record);
            prop_assert_eq!(String::from_utf8(written).unwrap(), expected.clone());
            let wire = wire_event(event.position, &record).unwrap();
            prop_assert_eq!((wire.id, &wire.intent_id), (event.id, &event.intent_id));
            prop_assert_eq!(&wire.json, expected.as_bytes());
            let mut out = b"before ".to_vec();
            write_event(event.position, &record, &mut out).unwrap();
            prop_assert_eq!(out, [b"before ".as_slice(), expected.as_bytes()].concat());
        }

        /// Whatever becomes of a record's bytes, writing it fails where decoding it fails, with
        /// the same error, and leaves the output as it was; where decoding succeeds, it writes
        /// the decoded event.
        #[test]
        fn a_damaged_record_fails_as_it_decodes(
            (event, record) in any_record(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            bits in 1u8..,
        ) {
            let mut damaged = record.clone();
            let at = flip.index(damaged.len());
            damaged[at] ^= bits;
            damaged.truncate(cut.index(damaged.len() + 1).max(at));
            let mut out = b"kept".to_vec();
            match (format::decode_record(event.position, &damaged), write_event(event.position, &damaged, &mut out)) {
                (Ok(decoded), Ok(())) => {
                    let expected = serde_json::to_vec(&decoded).unwrap();
                    prop_assert_eq!(out, [b"kept".as_slice(), &expected].concat());
                }
                (Err(decoding), Err(writing)) => {
                    prop_assert_eq!(decoding.to_string(), writing.to_string());
                    prop_assert_eq!(out, b"kept");
                }
                (decoded, written) => prop_assert!(false, "decoded {:?}, written {:?}", decoded, written),
            }
        }
    }

    /// Records whose payload or proof is damaged, that end early or go on too long, or that are
    /// not records at all give decoding's error, and never a panic.
    #[test]
    fn a_corrupt_record_is_an_error() {
        let event = Event {
            position: 7,
            id: Uuid::from_u128(0x0190_f3a2_1111_7000_8000_0000_0000_0001),
            intent_id: "intent-42".into(),
            event_type: EventType::Comment,
            actor: "agent".into(),
            payload: json!({"text": "hello", "n": [1, 2.5, -3]}).into(),
            created_at: time::from_micros(1_790_000_000_123_456).unwrap(),
            sequence: 1,
            previous_event_hash: None,
            event_hash: format_hash(&[3; 32]),
            trace_id: None,
            parent_event_id: None,
            level: Level::Warn,
            proof: Some(json!({"proofValue": "z3FX"})),
        };
        let record = record_of(&event, [3; 32], None);
        let payload_len = binary_json::to_vec(&event.payload).unwrap().len();
        let proof_len = binary_json::to_vec(event.proof.as_ref().unwrap())
            .unwrap()
            .len();
        let payload_at = record.len() - payload_len - proof_len;
        let corrupt = |bytes: &[u8]| {
            let mut out = Vec::new();
            let error = write_event(7, bytes, &mut out).expect_err("a corrupt record");
            assert!(out.is_empty(), "nothing written for {bytes:?}");
            let Error::Corrupt {
                position: 7,
                reason,
            } = &error
            else {
                panic!("expected Error::Corrupt at 7, got {error:?}");
            };
            let decoded = format::decode_record(7, bytes).expect_err("a corrupt record");
            assert_eq!(error.to_string(), decoded.to_string());
            reason.clone()
        };
        // Every way of ending early.
        for len in 0..record.len() {
            corrupt(&record[..len]);
        }
        // A byte too many.
        let mut longer = record.clone();
        longer.push(0);
        assert!(corrupt(&longer).contains("1 bytes follow the proof"));
        // A string in the payload is not UTF-8: its object's tag, the common name "text" by its
        // place, the string's tag, then the byte made 0xff.
        let mut bad_text = record.clone();
        bad_text[payload_at + 3] = 0xff;
        assert!(corrupt(&bad_text).contains("payload"));
        // An unknown tag where the proof begins.
        let mut bad_proof = record.clone();
        bad_proof[payload_at + payload_len] = 0x0b;
        assert!(corrupt(&bad_proof).contains("proof: unknown tag"));
        // An unknown record version, and no record at all.
        assert!(corrupt(&[9, 1, 2]).contains("unknown record version"));
        assert!(corrupt(&[]).contains("empty record"));
    }
}
