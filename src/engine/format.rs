//! The file format: redb table definitions, key layouts, the record codec and versions.
//!
//! `docs/format.md` describes the same; change both together.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::payload`, `model::time`,
//! `proof::chain`, `engine::binary_json`.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::binary_json;
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::Level;
use crate::model::event::Position;
use crate::model::event_type::EventType;
use crate::model::payload::Payload;
use crate::model::time;
use crate::proof::chain::{format_hash, Digest32};

/// The format version this build writes. It also reads (and, when it opens one for writing,
/// upgrades) files of versions 1 to 3, whose records are of record versions 1 to 3 and whose
/// indexes by intent, type, actor and trace hold one row per event (version 4 packs them in
/// blocks per code; `docs/format.md`).
pub const FORMAT_VERSION: u32 = 4;

/// The earlier format versions this build reads and upgrades.
const FORMAT_V1: u32 = 1;
const FORMAT_V2: u32 = 2;
const FORMAT_V3: u32 = 3;

/// The record encoding versions (first byte of every record): version 1 keeps the payload and
/// proof as JSON text; version 2, written by format version 2, in [`binary_json`] form; version
/// 3, written since format version 3, also keeps UUIDs as their bytes and known event types as
/// tags.
const RECORD_V1: u8 = 1;
const RECORD_V2: u8 = 2;
const RECORD_V3: u8 = 3;

/// `meta`: format version and store facts, by name.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("oidb_meta");
/// `events`: position -> encoded record.
pub(crate) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// `by_id`: event id -> position.
pub(crate) const BY_ID: TableDefinition<u128, u64> = TableDefinition::new("by_id");
// The indexes by intent, type, actor and trace: `crate::engine::postings`.
/// `by_time`: (`created_at` micros, position) -> facts.
pub(crate) const BY_TIME: TableDefinition<(i64, u64), Facts> = TableDefinition::new("by_time");
/// `intents`: intent id -> encoded [`IntentHead`].
pub(crate) const INTENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("intents");
/// `intent_names`: intent code -> intent id; the reverse of `intents`.
pub(crate) const INTENT_NAMES: TableDefinition<u64, &str> = TableDefinition::new("intent_names");
/// `consumers`: durable consumer name -> last acknowledged position.
pub(crate) const CONSUMERS: TableDefinition<&str, u64> = TableDefinition::new("consumers");
/// `names`: (kind, name) -> code, for event types and actors.
pub(crate) const NAMES: TableDefinition<(u8, &str), u32> = TableDefinition::new("names");
/// `codes`: (kind, code) -> name; the reverse of `names`.
pub(crate) const CODES: TableDefinition<(u8, u32), &str> = TableDefinition::new("codes");

/// The cost ledger (row encodings in `costs::ledger`): per-event cost entries by
/// (`created_at` micros, position), totals by (scope, unit, dimension, key) -> (pico-units, count),
/// unpriced LLM usage by (scope, provider, model) -> (requests, input tokens, output tokens),
/// budgets by intent, and price table versions. The scope is an intent id, or `""` for the
/// whole store. Written in the append's own transaction; a store made before they existed has
/// none until its first write, so readers treat a missing table as empty.
pub(crate) const COST_ENTRIES: TableDefinition<(i64, u64), &[u8]> =
    TableDefinition::new("cost_entries");
pub(crate) const COST_TOTALS: TableDefinition<(&str, &str, u8, &str), (i128, u64)> =
    TableDefinition::new("cost_totals");
pub(crate) const COST_UNPRICED: TableDefinition<(&str, &str, &str), (u64, u64, u64)> =
    TableDefinition::new("cost_unpriced");
pub(crate) const COST_BUDGETS: TableDefinition<&str, &[u8]> = TableDefinition::new("cost_budgets");
pub(crate) const COST_PRICES: TableDefinition<u64, &[u8]> = TableDefinition::new("cost_prices");
/// `checkpoints`: checkpoint number (creation order, from 1) -> JSON of the stored checkpoint.
pub(crate) const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
/// `checkpoint_ids`: checkpoint id -> checkpoint number.
pub(crate) const CHECKPOINT_IDS: TableDefinition<&str, u64> =
    TableDefinition::new("checkpoint_ids");
/// `checkpoint_scopes`: (scope key, checkpoint number) -> (): each scope's checkpoints in order.
pub(crate) const CHECKPOINT_SCOPES: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("checkpoint_scopes");
/// `agent_keys`: (actor, `did:key`) -> registration time (micros): RFC-0018 keys.
pub(crate) const AGENT_KEYS: TableDefinition<(&str, &str), i64> =
    TableDefinition::new("agent_keys");
/// `signature_policy`: setting -> value (`require_signatures` -> 0 or 1).
pub(crate) const SIGNATURE_POLICY: TableDefinition<&str, u8> =
    TableDefinition::new("signature_policy");

/// What every index row carries, so filters on time, type, actor and level need no record reads:
/// (`created_at` micros, type code, actor code, level code).
pub(crate) type Facts = (i64, u32, u32, u8);

/// The kinds of interned names in `names`/`codes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum NameKind {
    EventType = 1,
    Actor = 2,
}

/// Meta keys.
pub(crate) const META_FORMAT_VERSION: &str = "format_version";
pub(crate) const META_STORE_ID: &str = "store_id";
pub(crate) const META_CREATED_BY: &str = "created_by";

/// The head of one intent's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IntentHead {
    /// The intent's code in `intent_postings`.
    pub(crate) code: u64,
    /// Last sequence (the number of events in the chain).
    pub(crate) last_sequence: u64,
    /// Hash of the last event.
    pub(crate) last_hash: Digest32,
    /// Position of the first and last event.
    pub(crate) first_position: u64,
    pub(crate) last_position: u64,
}

impl IntentHead {
    pub(crate) fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8], intent_id: &str) -> Result<IntentHead> {
        postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
            position: 0,
            reason: format!("head of intent {intent_id:?}: {e}"),
        })
    }
}

/// The fields of a record before its payload, encoded with postcard (record version 3).
#[derive(Debug, Serialize, Deserialize)]
struct RecordHead<'a> {
    id: [u8; 16],
    #[serde(borrow)]
    intent_id: UuidOrText<'a>,
    #[serde(borrow)]
    event_type: TypeTag<'a>,
    actor: &'a str,
    /// `created_at` in microseconds, less the millisecond a version 7 `id` holds (see
    /// [`id_micros`]): a few bytes when the id was made at the same moment.
    created_after_id: i64,
    sequence: u64,
    previous_event_hash: Option<Digest32>,
    event_hash: Digest32,
    /// The trace id's 16 bytes (its 32 hex digits, in order).
    trace_id: Option<[u8; 16]>,
    #[serde(borrow)]
    parent_event_id: Option<UuidOrText<'a>>,
    /// The level's code in the low bits; [`HAS_PROOF`] when a proof follows the payload.
    flags: u8,
}

impl RecordHead<'_> {
    /// `created_at` in Unix microseconds, from the id's millisecond and what is stored after it.
    fn created_at_micros(&self, position: Position) -> Result<i64> {
        id_micros(&self.id)
            .checked_add(self.created_after_id)
            .ok_or_else(|| Error::Corrupt {
                position,
                reason: "created_at out of range".into(),
            })
    }
}

/// The bit of [`RecordHead::flags`] that says a proof follows the payload.
const HAS_PROOF: u8 = 0x80;

/// The Unix time in microseconds of the millisecond a version 7 UUID holds in its first 48 bits;
/// 0 for any other id.
fn id_micros(id: &[u8; 16]) -> i64 {
    match id {
        [t0, t1, t2, t3, t4, t5, version, ..] if version >> 4 == 7 => {
            let millis = u64::from_be_bytes([0, 0, *t0, *t1, *t2, *t3, *t4, *t5]);
            // 48 bits of milliseconds times 1,000 stay below 2^58.
            i64::try_from(millis).unwrap_or(0) * 1_000
        }
        _ => 0,
    }
}

/// A string that is usually a UUID: its 16 bytes when it is one in canonical form (lowercase,
/// hyphenated: what it reads back as), else its text.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum UuidOrText<'a> {
    Uuid([u8; 16]),
    Text(&'a str),
}

impl<'a> UuidOrText<'a> {
    fn of(text: &'a str) -> UuidOrText<'a> {
        if text.len() == 36 {
            if let Ok(uuid) = Uuid::try_parse(text) {
                let mut canonical = [0u8; 36];
                if uuid.hyphenated().encode_lower(&mut canonical).as_bytes() == text.as_bytes() {
                    return UuidOrText::Uuid(uuid.into_bytes());
                }
            }
        }
        UuidOrText::Text(text)
    }

    /// The text it reads back as.
    pub(crate) fn to_text(&self) -> String {
        match self {
            UuidOrText::Uuid(bytes) => Uuid::from_bytes(*bytes).hyphenated().to_string(),
            UuidOrText::Text(text) => (*text).to_owned(),
        }
    }
}

/// An event type: a known type by its tag (its place in [`EventType::known`], which only ever
/// grows at its end; `docs/format.md` lists the tags), a custom type by its wire string.
#[derive(Debug, Serialize, Deserialize)]
enum TypeTag<'a> {
    Known(u16),
    Custom(&'a str),
}

impl<'a> TypeTag<'a> {
    fn of(event_type: &'a EventType) -> TypeTag<'a> {
        static TAGS: std::sync::OnceLock<std::collections::HashMap<&'static str, u16>> =
            std::sync::OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            EventType::known()
                .iter()
                .zip(0u16..)
                .map(|(known, tag)| (known.as_str(), tag))
                .collect()
        });
        match event_type {
            EventType::Custom(text) => TypeTag::Custom(text),
            known => tags
                .get(known.as_str())
                .map_or(TypeTag::Custom(known.as_str()), |&tag| TypeTag::Known(tag)),
        }
    }

    fn event_type(&self) -> Option<EventType> {
        match self {
            TypeTag::Known(tag) => EventType::known().get(usize::from(*tag)).cloned(),
            TypeTag::Custom(text) => Some(EventType::parse(text)),
        }
    }
}

/// The fields of a record before its payload in record version 2, encoded with postcard. Still
/// read; no longer written.
#[derive(Debug, Deserialize)]
struct RecordHeadV2<'a> {
    id: [u8; 16],
    intent_id: &'a str,
    event_type: &'a str,
    actor: &'a str,
    created_at_micros: i64,
    sequence: u64,
    previous_event_hash: Option<Digest32>,
    event_hash: Digest32,
    trace_id: Option<u128>,
    parent_event_id: Option<&'a str>,
    level: u8,
    has_proof: bool,
}

/// The stored form of an event in record version 1, encoded with postcard after the version
/// byte: the head's fields, then the payload and proof as JSON text. Still read; no longer
/// written.
#[derive(Debug, Deserialize)]
struct RecordV1<'a> {
    id: [u8; 16],
    intent_id: &'a str,
    event_type: &'a str,
    actor: &'a str,
    created_at_micros: i64,
    sequence: u64,
    previous_event_hash: Option<Digest32>,
    event_hash: Digest32,
    trace_id: Option<u128>,
    parent_event_id: Option<&'a str>,
    level: u8,
    payload: &'a str,
    proof: Option<&'a str>,
}

/// A record's head as an event needs it, whatever its record version.
struct Head<'a> {
    id: [u8; 16],
    intent_id: String,
    event_type: EventType,
    actor: &'a str,
    created_at_micros: i64,
    sequence: u64,
    previous_event_hash: Option<Digest32>,
    event_hash: Digest32,
    trace_id: Option<u128>,
    parent_event_id: Option<String>,
    level: u8,
}

/// The raw digests behind an event's hash strings, when the writer has them at hand.
pub(crate) struct Digests {
    pub(crate) event: Digest32,
    pub(crate) previous: Option<Digest32>,
}

/// Encodes `event` as a record (version 3): the version byte, the head, the payload, then the
/// proof if the head says there is one. `payload` and `proof` are their [`binary_json`] forms; the hashes are
/// taken from `digests` (which must be what the event's hash strings spell), not parsed back from
/// text.
pub(crate) fn encode_record(
    event: &Event,
    digests: &Digests,
    payload: &[u8],
    proof: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let id = event.id.into_bytes();
    let head = RecordHead {
        id,
        intent_id: UuidOrText::of(&event.intent_id),
        event_type: TypeTag::of(&event.event_type),
        actor: &event.actor,
        // Both within a few hundred thousand years of 1970 in microseconds: no overflow.
        created_after_id: time::to_micros(event.created_at) - id_micros(&id),
        sequence: event.sequence,
        previous_event_hash: digests.previous,
        event_hash: digests.event,
        trace_id: event
            .trace_id
            .as_deref()
            .and_then(trace_code)
            .map(u128::to_be_bytes),
        parent_event_id: event.parent_event_id.as_deref().map(UuidOrText::of),
        flags: event.level.code() | if proof.is_some() { HAS_PROOF } else { 0 },
    };
    let proof = proof.unwrap_or_default();
    let mut out = Vec::with_capacity(128 + payload.len() + proof.len());
    out.push(RECORD_V3);
    postcard::to_io(&head, &mut out).map_err(|e| Error::InvalidEvent {
        field: "event",
        reason: format!("cannot be encoded: {e}"),
    })?;
    out.extend_from_slice(payload);
    out.extend_from_slice(proof);
    Ok(out)
}

/// Decodes the record stored at `position`, of any record version.
pub(crate) fn decode_record(position: Position, bytes: &[u8]) -> Result<Event> {
    let (version, body) = split_version(position, bytes)?;
    match version {
        RECORD_V3 => decode_v3(position, body),
        RECORD_V2 => decode_v2(position, body),
        // `split_version` lets no other version through.
        _ => decode_v1(position, body),
    }
}

/// A version 3 record read as far as its payload: the head's fields as its event has them, checked
/// as [`decode_record`] checks them, and the payload and proof still in [`binary_json`] form,
/// unchecked. For a reader that writes the event as JSON text without building it.
pub(crate) struct RecordParts<'a> {
    pub(crate) id: Uuid,
    pub(crate) intent_id: UuidOrText<'a>,
    /// The event type's wire string.
    pub(crate) event_type: &'a str,
    pub(crate) actor: &'a str,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) sequence: u64,
    pub(crate) previous_event_hash: Option<Digest32>,
    pub(crate) event_hash: Digest32,
    /// The trace id's 128 bits.
    pub(crate) trace_id: Option<u128>,
    pub(crate) parent_event_id: Option<UuidOrText<'a>>,
    pub(crate) level: Level,
    /// Whether a proof follows the payload.
    pub(crate) has_proof: bool,
    /// The payload, then the proof if there is one: [`binary_json`] values one after the other,
    /// which must end where the record does.
    pub(crate) values: &'a [u8],
}

/// The [`RecordParts`] of the record stored at `position`; `None` when it is of an earlier
/// record version (decode it with [`decode_record`]).
pub(crate) fn record_parts(position: Position, bytes: &[u8]) -> Result<Option<RecordParts<'_>>> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    let (version, body) = split_version(position, bytes)?;
    if version != RECORD_V3 {
        return Ok(None);
    }
    let (head, values): (RecordHead<'_>, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(format!("cannot decode: {e}")))?;
    let event_type = match head.event_type {
        TypeTag::Known(tag) => EventType::known()
            .get(usize::from(tag))
            .map(EventType::as_str)
            .ok_or_else(|| corrupt(format!("unknown event type tag {:?}", head.event_type)))?,
        TypeTag::Custom(text) => text,
    };
    let created_at = time::from_micros(head.created_at_micros(position)?)
        .ok_or_else(|| corrupt("created_at out of range".into()))?;
    let level = head.flags & !HAS_PROOF;
    Ok(Some(RecordParts {
        id: Uuid::from_bytes(head.id),
        intent_id: head.intent_id,
        event_type,
        actor: head.actor,
        created_at,
        sequence: head.sequence,
        previous_event_hash: head.previous_event_hash,
        event_hash: head.event_hash,
        trace_id: head.trace_id.map(u128::from_be_bytes),
        parent_event_id: head.parent_event_id,
        level: Level::from_code(level)
            .ok_or_else(|| corrupt(format!("unknown level code {level}")))?,
        has_proof: head.flags & HAS_PROOF != 0,
        values,
    }))
}

/// What a query checks in a record itself (when no index row carries it): the event's time,
/// level and trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordFacts {
    /// `created_at` in Unix microseconds.
    pub(crate) created_at_micros: i64,
    /// The level's code.
    pub(crate) level: u8,
    /// The trace id's 128 bits.
    pub(crate) trace_id: Option<u128>,
}

/// The [`RecordFacts`] of the record stored at `position`, read from its head alone: the payload
/// is neither decoded nor checked.
pub(crate) fn record_facts(position: Position, bytes: &[u8]) -> Result<RecordFacts> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    let cannot_decode = |e: postcard::Error| corrupt(format!("cannot decode: {e}"));
    let (version, body) = split_version(position, bytes)?;
    Ok(match version {
        RECORD_V3 => {
            let (head, _): (RecordHead<'_>, &[u8]) =
                postcard::take_from_bytes(body).map_err(cannot_decode)?;
            RecordFacts {
                created_at_micros: head.created_at_micros(position)?,
                level: head.flags & !HAS_PROOF,
                trace_id: head.trace_id.map(u128::from_be_bytes),
            }
        }
        RECORD_V2 => {
            let (head, _): (RecordHeadV2<'_>, &[u8]) =
                postcard::take_from_bytes(body).map_err(cannot_decode)?;
            RecordFacts {
                created_at_micros: head.created_at_micros,
                level: head.level,
                trace_id: head.trace_id,
            }
        }
        // `split_version` lets no other version through.
        _ => {
            let record: RecordV1<'_> = postcard::from_bytes(body).map_err(cannot_decode)?;
            RecordFacts {
                created_at_micros: record.created_at_micros,
                level: record.level,
                trace_id: record.trace_id,
            }
        }
    })
}

/// A record's version byte, known to this build, and the body that follows it.
fn split_version(position: Position, bytes: &[u8]) -> Result<(u8, &[u8])> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    match bytes.split_first() {
        None => Err(corrupt("empty record".into())),
        Some((&version, body)) if matches!(version, RECORD_V1 | RECORD_V2 | RECORD_V3) => {
            Ok((version, body))
        }
        Some((version, _)) => Err(corrupt(format!("unknown record version {version}"))),
    }
}

/// A version 3 record's body: the head, the payload, and the proof if the head says there is
/// one.
fn decode_v3(position: Position, body: &[u8]) -> Result<Event> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    let (head, rest): (RecordHead<'_>, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(format!("cannot decode: {e}")))?;
    let has_proof = head.flags & HAS_PROOF != 0;
    let (payload, proof) = decode_values(position, body, rest, has_proof)?;
    let event_type = head
        .event_type
        .event_type()
        .ok_or_else(|| corrupt(format!("unknown event type tag {:?}", head.event_type)))?;
    let created_at_micros = head.created_at_micros(position)?;
    let head = Head {
        id: head.id,
        intent_id: head.intent_id.to_text(),
        event_type,
        actor: head.actor,
        created_at_micros,
        sequence: head.sequence,
        previous_event_hash: head.previous_event_hash,
        event_hash: head.event_hash,
        trace_id: head.trace_id.map(u128::from_be_bytes),
        parent_event_id: head.parent_event_id.as_ref().map(UuidOrText::to_text),
        level: head.flags & !HAS_PROOF,
    };
    event_of(position, head, payload, proof)
}

/// A version 2 record's body: the head, the payload, and the proof if the head says there is
/// one.
fn decode_v2(position: Position, body: &[u8]) -> Result<Event> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    let (head, rest): (RecordHeadV2<'_>, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(format!("cannot decode: {e}")))?;
    let (payload, proof) = decode_values(position, body, rest, head.has_proof)?;
    let head = Head {
        id: head.id,
        intent_id: head.intent_id.to_owned(),
        event_type: EventType::parse(head.event_type),
        actor: head.actor,
        created_at_micros: head.created_at_micros,
        sequence: head.sequence,
        previous_event_hash: head.previous_event_hash,
        event_hash: head.event_hash,
        trace_id: head.trace_id,
        parent_event_id: head.parent_event_id.map(str::to_owned),
        level: head.level,
    };
    event_of(position, head, payload, proof)
}

/// The payload and (when `has_proof`) the proof that follow a head in `body`, `rest` being what
/// follows the head. Values are self-delimiting, so the last must end exactly where the record
/// does.
fn decode_values(
    position: Position,
    body: &[u8],
    rest: &[u8],
    has_proof: bool,
) -> Result<(Payload, Option<serde_json::Value>)> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    // Offsets in messages count from the record's first byte (its version byte).
    let payload_at = 1 + body.len() - rest.len();
    let damaged = |field: &str, at: usize, e: binary_json::DecodeError| {
        corrupt(format!(
            "{field}: {} at byte {}",
            e.reason,
            at.saturating_add(e.offset)
        ))
    };
    let used = binary_json::check_prefix(rest).map_err(|e| damaged("payload", payload_at, e))?;
    let (payload, mut rest) = rest.split_at_checked(used).unwrap_or_default();
    let payload = Payload::encoded(payload.into(), binary_json::decode_checked);
    let mut end = payload_at + used;
    let proof = if has_proof {
        let (proof, used) =
            binary_json::decode_prefix(rest).map_err(|e| damaged("proof", end, e))?;
        rest = rest.get(used..).unwrap_or_default();
        end += used;
        Some(proof)
    } else {
        None
    };
    if !rest.is_empty() {
        return Err(corrupt(format!(
            "{} bytes follow the {}, from byte {end}",
            rest.len(),
            if has_proof { "proof" } else { "payload" }
        )));
    }
    Ok((payload, proof))
}

/// A version 1 record's body: the head's fields, then the payload and proof as JSON text.
fn decode_v1(position: Position, body: &[u8]) -> Result<Event> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    let record: RecordV1<'_> =
        postcard::from_bytes(body).map_err(|e| corrupt(format!("cannot decode: {e}")))?;
    let payload =
        parse_json(record.payload).map_err(|e| corrupt(format!("payload is not JSON: {e}")))?;
    let proof = record
        .proof
        .map(parse_json)
        .transpose()
        .map_err(|e| corrupt(format!("proof is not JSON: {e}")))?;
    let head = Head {
        id: record.id,
        intent_id: record.intent_id.to_owned(),
        event_type: EventType::parse(record.event_type),
        actor: record.actor,
        created_at_micros: record.created_at_micros,
        sequence: record.sequence,
        previous_event_hash: record.previous_event_hash,
        event_hash: record.event_hash,
        trace_id: record.trace_id,
        parent_event_id: record.parent_event_id.map(str::to_owned),
        level: record.level,
    };
    event_of(position, head, payload.into(), proof)
}

fn event_of(
    position: Position,
    head: Head<'_>,
    payload: Payload,
    proof: Option<serde_json::Value>,
) -> Result<Event> {
    let corrupt = |reason: String| Error::Corrupt { position, reason };
    Ok(Event {
        position,
        id: Uuid::from_bytes(head.id),
        intent_id: head.intent_id,
        event_type: head.event_type,
        actor: head.actor.to_owned(),
        payload,
        created_at: time::from_micros(head.created_at_micros)
            .ok_or_else(|| corrupt("created_at out of range".into()))?,
        sequence: head.sequence,
        previous_event_hash: head.previous_event_hash.as_ref().map(format_hash),
        event_hash: format_hash(&head.event_hash),
        trace_id: head.trace_id.map(trace_text),
        parent_event_id: head.parent_event_id,
        level: Level::from_code(head.level)
            .ok_or_else(|| corrupt(format!("unknown level code {}", head.level)))?,
        proof,
    })
}

/// Parses a version 1 record's JSON text into a `Value`, exactly as `serde_json::from_str` does,
/// but builds each object at its final size (`serde_json` grows a map as members arrive).
fn parse_json(text: &str) -> serde_json::Result<serde_json::Value> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde::de::DeserializeSeed::deserialize(JsonValue, &mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A `serde_json::Value`, deserialized with objects built at their final size.
struct JsonValue;

impl<'de> serde::de::DeserializeSeed<'de> for JsonValue {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonValue {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map_or(serde_json::Value::Null, serde_json::Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut items: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut array = Vec::with_capacity(items.size_hint().unwrap_or(0));
        while let Some(item) = items.next_element_seed(JsonValue)? {
            array.push(item);
        }
        Ok(serde_json::Value::Array(array))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut members: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut pending: Vec<(String, serde_json::Value)> = Vec::with_capacity(8);
        while let Some(name) = members.next_key::<String>()? {
            pending.push((name, members.next_value_seed(JsonValue)?));
        }
        let mut object = serde_json::Map::with_capacity(pending.len());
        for (name, value) in pending {
            // A repeated name keeps its first place and its last value, as serde_json's does.
            object.insert(name, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// A trace id (32 lowercase hex digits) as the number it spells; `None` if it is not one.
#[must_use]
pub(crate) fn trace_code(trace_id: &str) -> Option<u128> {
    let well_formed = trace_id.len() == 32
        && trace_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if well_formed {
        u128::from_str_radix(trace_id, 16).ok()
    } else {
        None
    }
}

/// The trace id spelled by `code`.
#[must_use]
pub(crate) fn trace_text(code: u128) -> String {
    format!("{code:032x}")
}

/// Writes the trace id spelled by `code` as [`trace_text`] does, into `buf` instead of a new
/// string.
pub(crate) fn trace_text_into(code: u128, buf: &mut [u8; 32]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = code;
    for digit in buf.iter_mut().rev() {
        // The low four bits name a hex digit.
        *digit = HEX.get((rest & 0xf) as usize).copied().unwrap_or(b'0');
        rest >>= 4;
    }
    std::str::from_utf8(buf).unwrap_or_default()
}

/// Reads the format version of an opened database; `None` if it has no oidb meta table.
pub(crate) fn read_format_version(db: &impl ReadableDatabase) -> Result<Option<u32>> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(value) = meta.get(META_FORMAT_VERSION)? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = value.value().try_into().map_err(|_| Error::Corrupt {
        position: 0,
        reason: "format version is not 4 bytes".into(),
    })?;
    Ok(Some(u32::from_le_bytes(bytes)))
}

/// Opens a table that files written before it existed lack: `None` when it is missing (read it as
/// empty). The checkpoint and signature tables are such tables.
pub(crate) fn open_optional<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>> {
    match txn.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What an opened redb database is, for oidb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileState {
    /// An oidb store of this format version.
    Current,
    /// An oidb store of an earlier format version (1 to 3): readable as it is;
    /// [`upgrade`](crate::engine::setup::upgrade) it before writing to it.
    Earlier,
    /// A redb database with no tables at all: a store that was never initialized.
    Uninitialized,
}

/// Checks that `db` (the file at `path`) is an oidb store this build reads.
///
/// # Errors
/// [`Error::UnsupportedFormat`] for another format version; [`Error::NotAnOidbFile`] for a redb
/// database with tables but no oidb meta table.
pub(crate) fn check_format(
    db: &impl ReadableDatabase,
    path: &std::path::Path,
) -> Result<FileState> {
    match read_format_version(db)? {
        Some(FORMAT_VERSION) => Ok(FileState::Current),
        Some(FORMAT_V1 | FORMAT_V2 | FORMAT_V3) => Ok(FileState::Earlier),
        Some(found) => Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        }),
        None if has_tables(db)? => Err(Error::NotAnOidbFile {
            path: path.to_path_buf(),
            reason: "it is a redb database without oidb's tables".into(),
        }),
        None => Ok(FileState::Uninitialized),
    }
}

/// Whether the database holds any table at all (a fresh or empty redb file holds none).
pub(crate) fn has_tables(db: &impl ReadableDatabase) -> Result<bool> {
    let txn = db.begin_read()?;
    let any = txn.list_tables()?.next().is_some();
    Ok(any)
}

/// A table of a write transaction, opened the first time it is used: a transaction that does
/// not touch it pays neither the open nor redb's look at it when committing.
pub(crate) struct LazyTable<'txn, K: redb::Key + 'static, V: redb::Value + 'static> {
    txn: &'txn redb::WriteTransaction,
    definition: TableDefinition<'static, K, V>,
    table: Option<redb::Table<'txn, K, V>>,
}

impl<'txn, K: redb::Key + 'static, V: redb::Value + 'static> LazyTable<'txn, K, V> {
    /// The table `definition` of `txn`, not opened yet.
    pub(crate) fn new(
        txn: &'txn redb::WriteTransaction,
        definition: TableDefinition<'static, K, V>,
    ) -> Self {
        LazyTable {
            txn,
            definition,
            table: None,
        }
    }

    /// The open table, opened now if it was not.
    pub(crate) fn get(&mut self) -> Result<&mut redb::Table<'txn, K, V>> {
        let table = match self.table.take() {
            Some(table) => table,
            None => self.txn.open_table(self.definition)?,
        };
        Ok(self.table.insert(table))
    }
}

/// The store's id, from its meta table (written when the store was created).
pub(crate) fn store_id(db: &impl ReadableDatabase) -> Result<String> {
    Ok(read_store_id(&db.begin_read()?)?.unwrap_or_default())
}

/// The id the store was given when its file was created, as `txn` sees it.
pub(crate) fn read_store_id(txn: &redb::ReadTransaction) -> Result<Option<String>> {
    Ok(txn
        .open_table(META)?
        .get(META_STORE_ID)?
        .map(|v| String::from_utf8_lossy(v.value()).into_owned()))
}

/// The last position in the log (0 when empty).
pub(crate) fn last_position(events: &impl ReadableTable<u64, &'static [u8]>) -> Result<Position> {
    Ok(events.last()?.map_or(0, |(k, _)| k.value()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    /// An event with every optional field set.
    fn full_event() -> (Event, Digests) {
        let digests = Digests {
            event: [7; 32],
            previous: Some([9; 32]),
        };
        let event = Event {
            position: 12,
            id: Uuid::from_u128(0x0190_f3a2_1111_7000_8000_0000_0000_0001),
            intent_id: "intent-42".into(),
            event_type: EventType::LlmRequestCompleted,
            actor: "agent-research".into(),
            payload:
                json!({"zeta": 1, "alpha": [0.734, -3, "x"], "nested": {"b": null, "a": true}})
                    .into(),
            created_at: time::from_micros(1_790_000_000_123_456).unwrap(),
            sequence: 3,
            previous_event_hash: Some(format_hash(&[9; 32])),
            event_hash: format_hash(&[7; 32]),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            parent_event_id: Some("0190f3a2-1111-7000-8000-000000000000".into()),
            level: Level::from_code(1).unwrap(),
            proof: Some(json!({"type": "Ed25519Signature2026", "proofValue": "z3FX"})),
        };
        (event, digests)
    }

    fn record_of(event: &Event, digests: &Digests) -> Vec<u8> {
        let payload = binary_json::to_vec(&event.payload).unwrap();
        let proof = event
            .proof
            .as_ref()
            .map(|p| binary_json::to_vec(p).unwrap());
        encode_record(event, digests, &payload, proof.as_deref()).unwrap()
    }

    /// `event`, encoded as a record and decoded again, is `event`.
    fn assert_reads_back(event: &Event, digests: &Digests) {
        assert_eq!(
            &decode_record(12, &record_of(event, digests)).unwrap(),
            event
        );
    }

    fn corrupt_reason(result: Result<Event>) -> String {
        match result {
            Err(Error::Corrupt { position, reason }) => {
                assert_eq!(position, 12);
                reason
            }
            other => panic!("expected Error::Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn records_are_written_in_version_3_and_read_back_whole() {
        let (event, digests) = full_event();
        let record = record_of(&event, &digests);
        assert_eq!(record[0], RECORD_V3);
        assert_eq!(decode_record(12, &record).unwrap(), event);

        let bare = Event {
            proof: None,
            payload: json!({}).into(),
            ..event
        };
        assert_reads_back(&bare, &digests);
    }

    /// Intent and parent ids that are canonical UUIDs take 16 bytes; any other spelling (upper
    /// case, braces, no hyphens, almost a UUID) is kept as text and reads back as written, and
    /// so do custom event types and every known one.
    #[test]
    fn ids_and_types_read_back_as_written_in_every_spelling() {
        let (event, digests) = full_event();
        let uuid = "0190f3a2-1111-7000-8000-00000000000a";
        let canonical = Event {
            intent_id: uuid.into(),
            parent_event_id: Some(uuid.into()),
            ..event.clone()
        };
        let upper = Event {
            intent_id: uuid.to_uppercase(),
            parent_event_id: Some(uuid.to_uppercase()),
            ..event.clone()
        };
        // 1 + 16 bytes each, against 1 + 1 + 36.
        let short = record_of(&canonical, &digests).len();
        assert_eq!(record_of(&upper, &digests).len(), short + 2 * (38 - 17));
        for spelling in [
            uuid.to_uppercase(),
            uuid.replace('-', ""),
            format!("{{{uuid}}}"),
            format!("urn:uuid:{uuid}"),
            "0190f3a2-1111-7000-8000-00000000000g".into(),
            "0190f3a2-1111-7000-8000-0000000000a".into(),
            "x".into(),
        ] {
            let odd = Event {
                intent_id: spelling.clone(),
                parent_event_id: Some(spelling),
                ..canonical.clone()
            };
            assert_reads_back(&odd, &digests);
        }
        for event_type in EventType::known()
            .iter()
            .cloned()
            .chain([EventType::Custom("my.own.type".into())])
        {
            let typed = Event {
                event_type,
                ..canonical.clone()
            };
            assert_reads_back(&typed, &digests);
        }
    }

    /// `created_at` is kept relative to a version 7 id's time, and reads back exactly beside
    /// any id, at either end of the years an event can have.
    #[test]
    fn created_at_reads_back_beside_any_id() {
        let (event, digests) = full_event();
        let millis: i64 = 1_790_000_000_123;
        let v7 =
            uuid::Builder::from_unix_timestamp_millis(millis.unsigned_abs(), &[5; 10]).into_uuid();
        let same_moment = millis * 1_000 + 456;
        let earliest = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        let latest = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
        let mut sizes = Vec::new();
        for id in [
            v7,
            Uuid::from_u128(0x1234_5678_9abc_4def_8000_0000_0000_0001),
            Uuid::nil(),
            Uuid::max(),
        ] {
            for micros in [same_moment, 0, earliest, latest] {
                let timed = Event {
                    id,
                    created_at: time::from_micros(micros).unwrap(),
                    ..event.clone()
                };
                let record = record_of(&timed, &digests);
                assert_eq!(decode_record(12, &record).unwrap(), timed);
                sizes.push(record.len());
            }
        }
        // Beside its own id's moment the time takes 2 bytes, else 8 or 9.
        assert_eq!(sizes[0] + 6, sizes[4]);
    }

    /// The first two columns of the table in docs/format.md whose header line starts with
    /// `header` (a number and a name in backquotes): the fixed lists that tests hold the code to.
    fn table_in_format_doc(header: &str) -> Vec<(u64, &'static str)> {
        include_str!("../../docs/format.md")
            .lines()
            .skip_while(|line| !line.starts_with(header))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                (cells[1].parse().unwrap(), cells[2].trim_matches('`'))
            })
            .collect()
    }

    /// The event type tags are the places in `EventType::known()`, listed in docs/format.md: a
    /// new known type must be added at the end, or stored tags would change meaning.
    #[test]
    fn event_type_tags_are_the_ones_the_format_lists() {
        let known: Vec<(u64, &str)> = EventType::known()
            .iter()
            .zip(0u64..)
            .map(|(t, tag)| (tag, t.as_str()))
            .collect();
        assert_eq!(table_in_format_doc("| tag | event type |"), known);
    }

    /// The common names of binary JSON are the ones docs/format.md lists, in the same places.
    #[test]
    fn common_names_are_the_ones_the_format_lists() {
        let known: Vec<(u64, &str)> = binary_json::COMMON_NAMES
            .iter()
            .copied()
            .zip(0u64..)
            .map(|(name, place)| (place, name))
            .collect();
        assert_eq!(table_in_format_doc("| place | common name |"), known);
    }

    /// A record as the build before record version 3 wrote it (postcard; strings as text; the
    /// payload and proof in binary JSON), byte for byte.
    #[test]
    fn a_version_2_record_still_decodes() {
        let mut record = vec![RECORD_V2];
        record.extend_from_slice(&[1; 16]); // id
        record.extend_from_slice(b"\x01i\x07comment\x01a"); // intent, type, actor
        record.extend_from_slice(&[0x80, 0x89, 0x7a]); // created_at: zigzag(1_000_000) µs
        record.push(2); // sequence
        record.push(1); // previous_event_hash: Some
        record.extend_from_slice(&[9; 32]);
        record.extend_from_slice(&[7; 32]); // event_hash
        record.extend_from_slice(&[1, 0x2a]); // trace_id: Some(42)
        record.extend_from_slice(b"\x01\x01p"); // parent_event_id: Some("p")
        record.push(4); // level: ERROR
        record.push(1); // has_proof
        record.extend_from_slice(&[0x51, 1, b'k', 0x83]); // payload {"k": 3}
        record.extend_from_slice(&[0x50]); // proof {}
        let event = decode_record(12, &record).unwrap();
        assert_eq!(event.id, Uuid::from_bytes([1; 16]));
        assert_eq!((event.intent_id.as_str(), event.actor.as_str()), ("i", "a"));
        assert_eq!(event.event_type, EventType::Comment);
        assert_eq!(time::to_micros(event.created_at), 1_000_000);
        assert_eq!(event.sequence, 2);
        assert_eq!(event.previous_event_hash, Some(format_hash(&[9; 32])));
        assert_eq!(event.event_hash, format_hash(&[7; 32]));
        assert_eq!(
            event.trace_id.as_deref(),
            Some("0000000000000000000000000000002a")
        );
        assert_eq!(event.parent_event_id.as_deref(), Some("p"));
        assert_eq!(event.level, Level::from_code(4).unwrap());
        assert_eq!(event.payload, json!({"k": 3}));
        assert_eq!(event.proof, Some(json!({})));
        let digests = Digests {
            event: [7; 32],
            previous: Some([9; 32]),
        };
        let again = record_of(&event, &digests);
        assert_eq!(again[0], RECORD_V3);
        assert_eq!(decode_record(12, &again).unwrap(), event);
    }

    #[test]
    fn a_version_1_record_still_decodes() {
        let mut record = vec![RECORD_V1];
        record.extend_from_slice(&[1; 16]); // id
        record.extend_from_slice(b"\x01i\x07comment\x01a"); // intent, type, actor
        record.extend_from_slice(&[0x80, 0x89, 0x7a]); // created_at: zigzag(1_000_000) µs
        record.push(2); // sequence
        record.push(1); // previous_event_hash: Some
        record.extend_from_slice(&[9; 32]);
        record.extend_from_slice(&[7; 32]); // event_hash
        record.push(0); // trace_id: None
        record.push(0); // parent_event_id: None
        record.push(2); // level: INFO
        let payload = br#"{"z":[1.0,-0.0,18446744073709551615],"a":"\u00e9"}"#;
        record.push(payload.len() as u8);
        record.extend_from_slice(payload);
        record.extend_from_slice(b"\x01\x0a{\"k\":true}"); // proof: Some
        let event = decode_record(12, &record).unwrap();
        assert_eq!(event.id, Uuid::from_bytes([1; 16]));
        assert_eq!((event.intent_id.as_str(), event.actor.as_str()), ("i", "a"));
        assert_eq!(event.event_type, EventType::Comment);
        assert_eq!(time::to_micros(event.created_at), 1_000_000);
        assert_eq!(event.sequence, 2);
        assert_eq!(event.previous_event_hash, Some(format_hash(&[9; 32])));
        assert_eq!(event.event_hash, format_hash(&[7; 32]));
        assert_eq!(
            event.payload.to_string(),
            r#"{"z":[1.0,-0.0,18446744073709551615],"a":"é"}"#
        );
        assert_eq!(event.proof, Some(json!({"k": true})));
        // Written again, it is a version 3 record of the same event.
        let digests = Digests {
            event: [7; 32],
            previous: Some([9; 32]),
        };
        let again = record_of(&event, &digests);
        assert_eq!(again[0], RECORD_V3);
        assert_eq!(decode_record(12, &again).unwrap(), event);
    }

    #[test]
    fn every_truncation_of_a_record_is_corrupt() {
        let (event, digests) = full_event();
        let record = record_of(&event, &digests);
        for len in 0..record.len() {
            let reason = corrupt_reason(decode_record(12, &record[..len]));
            assert!(!reason.is_empty());
        }
    }

    #[test]
    fn damage_in_the_payload_or_proof_names_its_byte() {
        let (event, digests) = full_event();
        let record = record_of(&event, &digests);
        let payload = binary_json::to_vec(&event.payload).unwrap();
        let proof = binary_json::to_vec(event.proof.as_ref().unwrap()).unwrap();
        let payload_at = record.len() - proof.len() - payload.len();
        let proof_at = record.len() - proof.len();

        let mut damaged = record.clone();
        damaged[payload_at] = 0x0b;
        let reason = corrupt_reason(decode_record(12, &damaged));
        assert_eq!(
            reason,
            format!("payload: unknown tag 0x0b at byte {payload_at}")
        );

        let mut damaged = record.clone();
        damaged[proof_at] = 0x1f;
        let reason = corrupt_reason(decode_record(12, &damaged));
        assert_eq!(
            reason,
            format!("proof: unknown tag 0x1f at byte {proof_at}")
        );

        let mut longer = record.clone();
        longer.push(0);
        let reason = corrupt_reason(decode_record(12, &longer));
        assert_eq!(
            reason,
            format!("1 bytes follow the proof, from byte {}", record.len())
        );

        let bare = Event {
            proof: None,
            ..event
        };
        let mut longer = record_of(&bare, &digests);
        longer.push(0);
        let reason = corrupt_reason(decode_record(12, &longer));
        assert_eq!(
            reason,
            format!("1 bytes follow the payload, from byte {}", longer.len() - 1)
        );

        let reason = corrupt_reason(decode_record(12, &[4, 0]));
        assert_eq!(reason, "unknown record version 4");
    }

    #[test]
    fn any_single_byte_changed_decodes_or_is_corrupt() {
        let (event, digests) = full_event();
        let record = record_of(&event, &digests);
        for at in 0..record.len() {
            for byte in [0x00, 0x01, 0x07, 0x09, 0x20, 0x5f, 0x7f, 0x80, 0xff] {
                let mut changed = record.clone();
                changed[at] = byte;
                match decode_record(12, &changed) {
                    Ok(_) | Err(Error::Corrupt { .. }) => {}
                    Err(other) => panic!("byte {at} = {byte:#x}: {other}"),
                }
            }
        }
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-e]{1,3}", inner), 0..6)
                    .prop_map(|members| { Value::Object(members.into_iter().collect()) }),
            ]
        })
    }

    proptest! {
        /// The reader's parse gives what serde_json's does, member order included.
        #[test]
        fn parse_json_is_serde_jsons_parse(value in json()) {
            let text = value.to_string();
            let ours = parse_json(&text).unwrap();
            let theirs: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(ours.to_string(), theirs.to_string());
        }
    }

    #[test]
    fn parse_json_keeps_serde_jsons_answers_on_odd_text() {
        for text in [
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"x":[1,2.5,-3,1e400]}"#,
            "  [ ]  ",
            r#"{"a":1} trailing"#,
            r#"{"a":"#,
            "",
        ] {
            let theirs: serde_json::Result<Value> = serde_json::from_str(text);
            match (parse_json(text), theirs) {
                (Ok(ours), Ok(theirs)) => {
                    assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
                }
                (Err(_), Err(_)) => {}
                (ours, theirs) => panic!("{text}: {ours:?} but serde_json gives {theirs:?}"),
            }
        }
    }
}
