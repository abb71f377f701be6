//! The bodies of the fuzz targets in `fuzz/`, kept in the library so that `tests/fuzz_corpus.rs`
//! replays every seed corpus through exactly the code the fuzzer runs, in a plain `cargo test`.
//!
//! Each function takes arbitrary bytes and must not panic on any of them, except on purpose: a
//! failed assertion here is a finding, a broken promise of the library. Not a stable API.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::filter`, `model::time`,
//! `proof::chain`, `proof::jcs`, `engine::binary_json`, `engine::format`, `engine::postings`,
//! `engine::writer`, `store::handle`.

use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::engine::binary_json;
use crate::engine::format;
use crate::engine::writer::Appended;
use crate::model::error::Error;
use crate::model::event::Event;
use crate::model::event::Level;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::filter::Cursor;
use crate::model::filter::EventFilter;
use crate::model::filter::Query;
use crate::model::time;
use crate::proof::chain;
use crate::store::handle::Store;

/// Decodes `data` as a stored record, and as an index block of each index; whatever decodes must
/// encode and decode back to itself.
///
/// # Panics
/// When a decoded record or block does not survive re-encoding unchanged.
pub fn record_decoder(data: &[u8]) {
    index_block_decoder(data);
    let Ok(event) = format::decode_record(1, data) else {
        return;
    };
    let again = record_of(&event).expect("a decoded record encodes again");
    let round_trip = format::decode_record(1, &again).expect("a re-encoded record decodes");
    assert_eq!(
        round_trip, event,
        "a record changed on its way through the codec"
    );
}

/// Decodes `data` as a block of each of the four indexes, its key taken from its first entry:
/// damaged bytes are `Error::Corrupt`, and what decodes encodes to a block that decodes the same.
fn index_block_decoder(data: &[u8]) {
    use crate::engine::postings::{decode_block, encode_block, Code};
    for code in [
        Code::Intent(1),
        Code::Type(2),
        Code::Actor(3),
        Code::Trace(4),
    ] {
        let mut entries = Vec::new();
        // The key the first entry must match: try the block's own first number (a position, or
        // for an intent block also a sequence), then a key that does not match.
        for first in [0, 1, 5] {
            match decode_block(code, first, data, &mut entries) {
                Ok(()) => {
                    let again = encode_block(code, &entries);
                    let mut back = Vec::new();
                    decode_block(code, first, &again, &mut back)
                        .expect("a re-encoded block decodes");
                    assert_eq!(
                        back, entries,
                        "a block changed on its way through the codec"
                    );
                }
                Err(Error::Corrupt { .. }) => {}
                Err(other) => panic!("a damaged block gave {other}, not Error::Corrupt"),
            }
        }
    }
}

/// Decodes `data` as a binary JSON value (the form records keep payloads and proofs in): any bytes
/// decode or fail cleanly; what decodes encodes again to bytes that decode to the same value,
/// member order and number kinds included, and the JSON length measured while encoding is the
/// length of its text.
///
/// # Panics
/// When one of those promises breaks.
pub fn binary_json_decoder(data: &[u8]) {
    let Ok((value, used)) = binary_json::decode_prefix(data) else {
        return;
    };
    assert!(used <= data.len(), "decoded past the end");
    let mut again = Vec::new();
    let json_len =
        binary_json::encode(&value, &mut again).expect("a decoded value is shallow enough");
    let text = value.to_string();
    assert_eq!(json_len, text.len(), "JSON length of {text}");
    let (back, used) = binary_json::decode_prefix(&again).expect("a re-encoded value decodes");
    assert_eq!(used, again.len());
    assert_eq!(back, value, "a value changed on its way through the codec");
    assert_eq!(back.to_string(), text);
}

/// The binary JSON form of `value`: to build the binary JSON decoder's seed corpus.
///
/// # Panics
/// When `value` nests deeper than a payload may.
#[must_use]
pub fn binary_json_of(value: &serde_json::Value) -> Vec<u8> {
    binary_json::to_vec(value).expect("a value no deeper than a payload")
}

/// The stored record of `event`: to build the record decoder's seed corpus.
///
/// # Errors
/// When the event cannot be encoded (a hash that is not a `sha256:` hash).
pub fn record_of(event: &Event) -> crate::model::error::Result<Vec<u8>> {
    let too_deep = |field: &'static str| crate::model::error::Error::InvalidEvent {
        field,
        reason: crate::proof::jcs::NotCanonicalizable::TooDeep.to_string(),
    };
    let payload = binary_json::to_vec(&event.payload).map_err(|_| too_deep("payload"))?;
    let proof = event
        .proof
        .as_ref()
        .map(binary_json::to_vec)
        .transpose()
        .map_err(|_| too_deep("proof"))?;
    let digest = |text: &str, field: &'static str| {
        crate::proof::chain::parse_hash(text).ok_or_else(|| {
            crate::model::error::Error::InvalidEvent {
                field,
                reason: format!("{text:?} is not a sha256: hash"),
            }
        })
    };
    let digests = format::Digests {
        event: digest(&event.event_hash, "event_hash")?,
        previous: event
            .previous_event_hash
            .as_deref()
            .map(|h| digest(h, "previous_event_hash"))
            .transpose()?,
    };
    format::encode_record(event, &digests, &payload, proof.as_deref())
}

/// Imports `data` as OpenIntent JSON into an empty store. A refused import writes nothing; an
/// accepted one imports again as "already present", and its export imports into another empty
/// store as the very same events, hashes included.
///
/// # Panics
/// When one of those promises breaks.
pub fn import_json(data: &[u8]) {
    let store = Store::in_memory().expect("an in-memory store opens");
    let report = match store.import_json(data) {
        Ok(report) => report,
        Err(error) => {
            assert!(
                matches!(error, Error::Import { .. }),
                "an import fails with Error::Import, not: {error}"
            );
            assert_eq!(last_position(&store), 0, "a refused import wrote something");
            return;
        }
    };
    assert_eq!(report.read, report.appended + report.already_present);
    assert_eq!(last_position(&store), report.appended);

    let again = store
        .import_json(data)
        .expect("an input that imported once imports again");
    assert_eq!(again.appended, 0, "a second import of the same input wrote");
    assert_eq!(again.already_present, report.read);

    assert_export_imports_unchanged(&store);
}

/// Imports `data` as a GL stream into one intent of an empty store. A refused import writes
/// nothing; an accepted one imports again as "already present", a line added to it later is
/// the only new event, and the export imports into another empty store as the same events.
///
/// # Panics
/// When one of those promises breaks.
pub fn import_gl(data: &[u8]) {
    const INTENT: &str = "intent-gl";
    const ADDED_LINE: &[u8] = br#"{"id": null, "value": "added", "level": "INFO", "type": "status", "timestamp": "2026-11-20T09:00:07.379000", "metadata": {}}"#;
    let store = Store::in_memory().expect("an in-memory store opens");
    let report = match store.import_gl(data, INTENT) {
        Ok(report) => report,
        Err(error) => {
            assert!(
                matches!(error, Error::Import { .. } | Error::InvalidEvent { .. }),
                "a GL import fails with Error::Import or InvalidEvent, not: {error}"
            );
            assert_eq!(last_position(&store), 0, "a refused import wrote something");
            return;
        }
    };
    assert_eq!(report.read, report.appended + report.already_present);
    assert_eq!(last_position(&store), report.appended);
    let again = store
        .import_gl(data, INTENT)
        .expect("an input that imported once imports again");
    assert_eq!(again.appended, 0, "a second import of the same input wrote");

    let mut longer = data.to_vec();
    longer.push(b'\n');
    longer.extend_from_slice(ADDED_LINE);
    let grown = store
        .import_gl(longer.as_slice(), INTENT)
        .unwrap_or_else(|e| panic!("a line added to an accepted input does not import: {e}"));
    assert_eq!(grown.appended, 1, "only the added line is new");
    assert_export_imports_unchanged(&store);
}

/// Exports everything and imports it into an empty store: the same events, hashes included.
fn assert_export_imports_unchanged(store: &Store) {
    let mut exported = Vec::new();
    let count = store
        .export_json(&mut exported, &Query::new())
        .expect("an export of an in-memory store");
    assert_eq!(count, last_position(store));
    let copy = Store::in_memory().expect("an in-memory store opens");
    let copied = copy
        .import_json(exported.as_slice())
        .unwrap_or_else(|e| panic!("an export does not import into an empty store: {e}"));
    assert_eq!(copied.appended, count);
    assert_eq!(
        all_events(&copy),
        all_events(store),
        "the export changed events"
    );
}

/// Parses the `key=value` lines of `data` as a command line's filter options (times, levels,
/// cursors, types), checks that each parsed value prints back to itself, and runs the query they
/// make against a fixed store, comparing with a brute-force filter.
///
/// # Panics
/// When a parser does not round-trip, or a query answers other than the brute-force filter.
pub fn time_and_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut spec = FilterTerms::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            if let Ok(t) = time::parse(line) {
                assert_time_round_trips(t);
            }
            continue;
        };
        match key {
            "since" | "until" => {
                let Ok(t) = time::parse(value) else { continue };
                assert_time_round_trips(t);
                if key == "since" {
                    spec.since = Some(t);
                } else {
                    spec.until = Some(t);
                }
            }
            "level" => {
                let Some(level) = Level::parse(value) else {
                    continue;
                };
                assert_eq!(Level::parse(level.as_str()), Some(level));
                assert_eq!(level.to_string().parse::<Level>(), Ok(level));
                spec.min_level = Some(level);
            }
            "after" => {
                let Ok(cursor) = Cursor::from_str(value) else {
                    continue;
                };
                assert_eq!(
                    Cursor::from_str(&cursor.to_string()).ok(),
                    Some(cursor),
                    "a cursor does not read back"
                );
                spec.after = Some(cursor.0);
            }
            "type" => {
                let event_type = EventType::parse(value);
                assert_eq!(event_type.as_str(), value, "a type does not print back");
                spec.types.push(event_type);
            }
            "prefix" => spec.prefixes.push(value.to_owned()),
            "intent" => spec.intent = Some(value.to_owned()),
            "actor" => spec.actor = Some(value.to_owned()),
            "trace" => spec.trace = Some(value.to_owned()),
            "limit" => spec.limit = value.parse().ok().filter(|n| *n <= 1000),
            "order" => spec.newest_first = value == "newest",
            _ => {}
        }
    }
    check_filter_terms(&spec);
}

/// Runs the query `terms` make against a fixed store (the fixtures, and events with traces,
/// levels and times spread around them), as one page, as pages and as an iterator, and compares
/// each answer with a brute-force filter.
///
/// # Panics
/// When the store answers other than the brute-force filter.
pub fn check_filter_terms(terms: &FilterTerms) {
    let (store, events) = filter_store();
    check_query(store, events, terms);
}

fn assert_time_round_trips(t: DateTime<Utc>) {
    let text = time::format(t);
    assert_eq!(
        time::parse(&text),
        Ok(t),
        "time {text} does not read back as itself"
    );
}

/// A store the filter target queries: the fixtures plus events with traces, levels and times
/// spread around them.
fn filter_store() -> &'static (Store, Vec<Event>) {
    static STORE: OnceLock<(Store, Vec<Event>)> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = Store::in_memory().expect("an in-memory store opens");
        for fixture in [
            include_str!("../tests/data/openintent_events.jsonl"),
            include_str!("../tests/data/openintent_chained.jsonl"),
        ] {
            store
                .import_json(fixture.as_bytes())
                .expect("the fixtures import");
        }
        let base = time::parse("2026-11-20T09:00:00Z").expect("a fixed time");
        let types = [
            "llm_request_started",
            "llm_request_completed",
            "task.created",
        ];
        let kinds = types.iter().cycle().zip(Level::ALL.iter().cycle());
        for (i, (event_type, level)) in (0_u8..40).zip(kinds) {
            let mut event = NewEvent::new(
                format!("intent-{}", i % 3),
                EventType::parse(event_type),
                format!("agent-{}", i % 4),
            )
            .payload(json!({ "i": i }))
            .created_at(base + Duration::seconds(i64::from(i) * 7 - 100))
            .level(*level);
            if i % 5 == 0 {
                event = event.trace_id(format!("{:032x}", i % 3 + 1));
            }
            store.append(event).expect("a filter-store event appends");
        }
        let events = all_events(&store);
        (store, events)
    })
}

/// The terms of a query, described independently of [`Query`] so that the brute-force filter
/// here shares no code with what it checks. Public for the command line's fuzz target
/// (`fuzz/cli_filters.rs`), which fills it from what the command line parsed.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)] // each field is the [`Query`] term of the same name
pub struct FilterTerms {
    pub intent: Option<String>,
    pub types: Vec<EventType>,
    pub prefixes: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    pub trace: Option<String>,
    pub min_level: Option<Level>,
    pub after: Option<u64>,
    pub limit: Option<usize>,
    pub newest_first: bool,
}

impl FilterTerms {
    /// The query these terms make, without its limit.
    pub fn query(&self) -> Query {
        let mut query = Query::new();
        if let Some(intent) = &self.intent {
            query = query.intent(intent.clone());
        }
        for t in &self.types {
            query = query.event_type(t.clone());
        }
        for p in &self.prefixes {
            query = query.type_prefix(p.clone());
        }
        if let Some(t) = self.since {
            query = query.since(t);
        }
        if let Some(t) = self.until {
            query = query.until(t);
        }
        if let Some(actor) = &self.actor {
            query = query.actor(actor.clone());
        }
        if let Some(trace) = &self.trace {
            query = query.trace(trace.clone());
        }
        if let Some(level) = self.min_level {
            query = query.min_level(level);
        }
        if let Some(after) = self.after {
            query = query.after(Cursor(after));
        }
        if self.newest_first {
            query = query.newest_first();
        }
        query
    }

    fn matches(&self, event: &Event) -> bool {
        let type_ok = (self.types.is_empty() && self.prefixes.is_empty())
            || self.types.contains(&event.event_type)
            || self
                .prefixes
                .iter()
                .any(|p| event.event_type.as_str().starts_with(p.as_str()));
        type_ok
            && self.intent.as_ref().is_none_or(|i| *i == event.intent_id)
            && self.since.is_none_or(|t| event.created_at >= t)
            && self.until.is_none_or(|t| event.created_at < t)
            && self.actor.as_ref().is_none_or(|a| *a == event.actor)
            && self
                .trace
                .as_ref()
                .is_none_or(|t| event.trace_id.as_ref() == Some(t))
            && self.min_level.is_none_or(|l| event.level >= l)
            && self.after.is_none_or(|c| {
                if self.newest_first {
                    event.position < c
                } else {
                    event.position > c
                }
            })
    }

    /// Every event the query matches, in its order, with no limit.
    fn expected<'a>(&self, events: &'a [Event]) -> Vec<&'a Event> {
        let mut matching: Vec<&Event> = events.iter().filter(|e| self.matches(e)).collect();
        if self.newest_first {
            matching.reverse();
        }
        matching
    }
}

/// Runs `spec` as one page, as pages followed by cursor, and as an iterator; each must agree
/// with the brute-force filter over `events` (the whole log, oldest first).
fn check_query(store: &Store, events: &[Event], spec: &FilterTerms) {
    let expected = spec.expected(events);
    let query = spec.query();

    let page_size = spec.limit.unwrap_or(Query::DEFAULT_PAGE);
    let page = store
        .query(&query.clone().limit(page_size))
        .expect("a query runs");
    let first: Vec<&Event> = expected.iter().copied().take(page_size).collect();
    assert_eq!(page.events.iter().collect::<Vec<_>>(), first, "{spec:?}");
    let more = expected.len() > page_size && page_size > 0;
    assert_eq!(page.next.is_some(), more, "{spec:?}: next cursor");

    // Paging through everything with small pages.
    let small = spec.limit.unwrap_or(3).clamp(1, 7);
    let mut paged = Vec::new();
    let mut cursor = spec.after.map(Cursor);
    for _ in 0..=events.len() + 1 {
        let mut q = spec.query().limit(small);
        if let Some(c) = cursor {
            q = q.after(c);
        }
        let page = store.query(&q).expect("a page");
        assert!(page.events.len() <= small);
        paged.extend(page.events);
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        paged.iter().collect::<Vec<_>>(),
        expected,
        "{spec:?}: paged"
    );

    let mut iterated = query.clone();
    if let Some(limit) = spec.limit {
        iterated = iterated.limit(limit);
    }
    let all: Vec<Event> = store
        .query_iter(&iterated)
        .expect("an iterator starts")
        .collect::<crate::model::error::Result<_>>()
        .expect("an iterator reads");
    let wanted: Vec<&Event> = expected
        .iter()
        .copied()
        .take(spec.limit.unwrap_or(usize::MAX))
        .collect();
    assert_eq!(all.iter().collect::<Vec<_>>(), wanted, "{spec:?}: iterated");
}

/// Reads bytes as choices; every choice is 0 once the input runs out.
struct Choices<'a> {
    data: &'a [u8],
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }

    /// A number in `0..n` (`n` at least 1).
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        let index = self.below(items.len());
        items.get(index).expect("below() is in range")
    }

    fn name(&mut self, names: &[&'static str]) -> &'static str {
        let name: &&'static str = self.pick(names);
        name
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

const INTENTS: [&str; 4] = ["intent-a", "intent-b", "intent-c", "task.intent"];
const TYPES: [&str; 6] = [
    "comment",
    "state_patched",
    "llm_request_started",
    "llm_request_completed",
    "task.created",
    "custom_thing",
];
const ACTORS: [&str; 3] = ["agent-a", "agent-b", "agent-c"];
const TRACES: [&str; 2] = [
    "0af7651916cd43dd8448eb211c80319c",
    "4bf92f3577b34da6a3ce929d0e0e4736",
];

/// What the model expects of one event of a request.
enum Expected {
    New,
    Existing(usize),
}

/// A plain model of the store: the log as a vector, and the events each id was appended with.
#[derive(Default)]
struct Model {
    events: Vec<Event>,
    by_id: HashMap<Uuid, usize>,
    originals: HashMap<Uuid, NewEvent>,
    next_id: u128,
}

impl Model {
    fn last_sequence(&self, intent: &str, pending: &[(NewEvent, Expected)]) -> u64 {
        let stored = self.events.iter().filter(|e| e.intent_id == intent).count();
        let planned = pending
            .iter()
            .filter(|(n, x)| matches!(x, Expected::New) && n.intent_id == intent)
            .count();
        (stored + planned) as u64
    }

    fn last_hash(&self, intent: &str) -> Option<String> {
        self.events
            .iter()
            .rev()
            .find(|e| e.intent_id == intent)
            .map(|e| e.event_hash.clone())
    }

    /// Predicts a request: the events it makes new or finds stored, or the kind of error of its
    /// first bad event.
    fn predict(&self, request: &[NewEvent]) -> Result<Vec<Expected>, &'static str> {
        let mut planned: Vec<(NewEvent, Expected)> = Vec::new();
        let mut ids = HashSet::new();
        for new in request {
            let valid_name =
                |s: &str| !s.is_empty() && s.len() <= crate::model::event::MAX_NAME_BYTES;
            let valid_trace = new.trace_id.as_ref().is_none_or(|t| {
                t.len() == 32 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
            if !valid_name(&new.intent_id)
                || !valid_name(&new.actor)
                || !new.payload.is_object()
                || !valid_trace
            {
                return Err("InvalidEvent");
            }
            if let Some(id) = new.id {
                if !ids.insert(id) {
                    return Err("Conflict");
                }
                if let Some(&index) = self.by_id.get(&id) {
                    if self.originals.get(&id) == Some(new) {
                        planned.push((new.clone(), Expected::Existing(index)));
                        continue;
                    }
                    return Err("Conflict");
                }
            }
            let last = self.last_sequence(&new.intent_id, &planned);
            if new.expected_sequence.is_some_and(|s| s != last) {
                return Err("WrongExpectedSequence");
            }
            planned.push((new.clone(), Expected::New));
        }
        Ok(planned.into_iter().map(|(_, x)| x).collect())
    }

    fn new_event(&mut self, c: &mut Choices<'_>, base: DateTime<Utc>) -> NewEvent {
        let intent = if c.chance(40) {
            String::new()
        } else {
            c.name(&INTENTS).to_owned()
        };
        let mut event = NewEvent::new(intent, EventType::parse(c.name(&TYPES)), c.name(&ACTORS))
            .payload(json!({ "n": c.byte() }))
            .level(*c.pick(&Level::ALL));
        if c.chance(3) {
            self.next_id += 1;
            event = event.id(Uuid::from_u128(self.next_id));
        }
        if !c.chance(5) {
            let seconds = i64::from(c.byte()) - 64;
            event = event.created_at(base + Duration::seconds(seconds));
        }
        match c.below(8) {
            0 => event = event.trace_id(c.name(&TRACES)),
            1 if c.chance(4) => event = event.trace_id("NOT-A-TRACE"),
            _ => {}
        }
        if c.chance(30) {
            event = event.payload(json!([1, 2]));
        }
        if c.chance(6) {
            let guess = (c.below(4) as u64).saturating_sub(1);
            event = event.expect_last_sequence(guess);
        }
        event
    }

    /// An event that reuses a stored id: the same content (already appended) or not (a conflict).
    fn reused(&self, c: &mut Choices<'_>) -> Option<NewEvent> {
        if self.originals.is_empty() {
            return None;
        }
        let mut ids: Vec<&Uuid> = self.originals.keys().collect();
        ids.sort_unstable();
        let original = self.originals.get(*c.pick(&ids))?.clone();
        Some(if c.chance(3) {
            original.payload(json!({ "changed": true }))
        } else {
            original
        })
    }

    fn request(&mut self, c: &mut Choices<'_>, base: DateTime<Utc>) -> Vec<NewEvent> {
        let size = if c.chance(3) { 1 + c.below(4) } else { 1 };
        let mut request = Vec::with_capacity(size);
        for _ in 0..size {
            let event = if c.chance(5) { self.reused(c) } else { None };
            request.push(event.unwrap_or_else(|| self.new_event(c, base)));
        }
        if size > 1 && c.chance(8) {
            // The same id twice in one batch.
            let first = request.first().cloned().expect("size > 1");
            self.next_id += 1;
            let id = first.id.unwrap_or_else(|| Uuid::from_u128(self.next_id));
            let mut twice = first.id(id);
            twice = twice.payload(json!({ "twice": true }));
            request.push(twice.clone());
            request.push(twice);
        }
        request
    }

    fn check_append(&mut self, store: &Store, request: Vec<NewEvent>) {
        let prediction = self.predict(&request);
        let outcome = store.append_batch_outcome(request.clone());
        match (prediction, outcome) {
            (Err(kind), Err(error)) => {
                let actual = match error {
                    Error::InvalidEvent { .. } => "InvalidEvent",
                    Error::Conflict { .. } => "Conflict",
                    Error::WrongExpectedSequence { .. } => "WrongExpectedSequence",
                    other => panic!("an append failed unexpectedly: {other}"),
                };
                assert_eq!(actual, kind, "the wrong error for {request:?}");
            }
            (Err(kind), Ok(_)) => panic!("expected {kind}, the store accepted {request:?}"),
            (Ok(_), Err(error)) => panic!("expected success, got {error} for {request:?}"),
            (Ok(expected), Ok(appended)) => {
                assert_eq!(appended.len(), expected.len());
                for ((new, expect), got) in request.into_iter().zip(expected).zip(appended) {
                    match (expect, got) {
                        (Expected::Existing(index), Appended::AlreadyAppended(event)) => {
                            assert_eq!(Some(&event), self.events.get(index));
                        }
                        (Expected::New, Appended::New(event)) => self.check_new(new, event),
                        (_, got) => panic!("new vs already appended mixed up: {got:?}"),
                    }
                }
            }
        }
    }

    fn check_new(&mut self, new: NewEvent, event: Event) {
        assert_eq!(event.position, self.events.len() as u64 + 1, "position");
        let last = self.last_sequence(&new.intent_id, &[]);
        assert_eq!(event.sequence, last + 1, "sequence");
        assert_eq!(event.previous_event_hash, self.last_hash(&new.intent_id));
        assert_eq!(
            chain::compute_event_hash(&event).ok().as_ref(),
            Some(&event.event_hash),
            "event_hash"
        );
        assert_eq!(event.intent_id, new.intent_id);
        assert_eq!(event.event_type, new.event_type);
        assert_eq!(event.actor, new.actor);
        assert_eq!(event.payload, new.payload);
        assert_eq!(event.trace_id, new.trace_id);
        assert_eq!(event.level, new.level);
        if let Some(t) = new.created_at {
            assert_eq!(event.created_at, t);
        }
        if let Some(id) = new.id {
            assert_eq!(event.id, id);
            self.originals.insert(id, new);
        }
        self.by_id.insert(event.id, self.events.len());
        self.events.push(event);
    }

    fn spec(&self, c: &mut Choices<'_>, base: DateTime<Utc>) -> FilterTerms {
        let mut spec = FilterTerms::default();
        let choose = c.byte();
        if choose & 1 != 0 {
            spec.intent = Some(if c.chance(8) {
                "no-such-intent".into()
            } else {
                c.name(&INTENTS).to_owned()
            });
        }
        if choose & 2 != 0 {
            for _ in 0..=c.below(2) {
                spec.types.push(EventType::parse(c.name(&TYPES)));
            }
        }
        if choose & 4 != 0 {
            spec.prefixes
                .push(c.name(&["llm_", "task.", "c", "", "zzz"]).to_owned());
        }
        if choose & 8 != 0 {
            spec.since = Some(base + Duration::seconds(i64::from(c.byte()) - 64));
        }
        if choose & 16 != 0 {
            spec.until = Some(base + Duration::seconds(i64::from(c.byte()) - 64));
        }
        if choose & 32 != 0 {
            spec.actor = Some(c.name(&ACTORS).to_owned());
        }
        if choose & 64 != 0 {
            spec.trace = Some(c.name(&TRACES).to_owned());
        }
        if choose & 128 != 0 {
            spec.min_level = Some(*c.pick(&Level::ALL));
        }
        if c.chance(3) {
            spec.after = Some(c.below(self.events.len() + 3) as u64);
        }
        if c.chance(2) {
            spec.limit = Some(c.below(6));
        }
        spec.newest_first = c.chance(2);
        spec
    }

    fn check_get_events(&self, store: &Store, c: &mut Choices<'_>, base: DateTime<Utc>) {
        let intent = c.name(&INTENTS);
        let mut filter = EventFilter::new();
        let mut types = Vec::new();
        if c.chance(2) {
            let t = EventType::parse(c.name(&TYPES));
            filter = filter.event_type(t.clone());
            types.push(t);
        }
        let since = c
            .chance(3)
            .then(|| base + Duration::seconds(i64::from(c.byte()) - 64));
        let until = c
            .chance(3)
            .then(|| base + Duration::seconds(i64::from(c.byte()) - 64));
        let after = c.chance(3).then(|| c.below(6) as u64);
        let before = c.chance(3).then(|| c.below(8) as u64);
        let limit = c.below(8);
        let newest_first = c.chance(2);
        if let Some(t) = since {
            filter = filter.since(t);
        }
        if let Some(t) = until {
            filter = filter.until(t);
        }
        if let Some(s) = after {
            filter = filter.after(s);
        }
        if let Some(s) = before {
            filter = filter.before(s);
        }
        filter = filter.limit(limit);
        if newest_first {
            filter = filter.newest_first();
        }
        let mut expected: Vec<&Event> = self
            .events
            .iter()
            .filter(|e| {
                e.intent_id == intent
                    && (types.is_empty() || types.contains(&e.event_type))
                    && since.is_none_or(|t| e.created_at >= t)
                    && until.is_none_or(|t| e.created_at < t)
                    && after.is_none_or(|s| e.sequence > s)
                    && before.is_none_or(|s| e.sequence < s)
            })
            .collect();
        if newest_first {
            expected.reverse();
        }
        expected.truncate(limit);
        let got = store.get_events(intent, filter).expect("get_events runs");
        assert_eq!(got.iter().collect::<Vec<_>>(), expected, "get_events");
    }
}

/// Runs a random sequence of appends (single and batched, with reused ids, bad fields and
/// expected sequences) and reads (by id, by position, queries, pages, `get_events`) against an
/// in-memory store, and checks every answer against a plain model.
///
/// # Panics
/// When the store and the model disagree.
pub fn store_model(data: &[u8]) {
    let store = Store::in_memory().expect("an in-memory store opens");
    let mut model = Model::default();
    let mut c = Choices { data };
    let base = time::parse("2026-11-20T09:00:00Z").expect("a fixed time");
    let mut steps = 0;
    while !c.is_empty() && steps < 200 {
        steps += 1;
        match c.below(8) {
            0..=2 => {
                let request = model.request(&mut c, base);
                model.check_append(&store, request);
            }
            3 => {
                let spec = model.spec(&mut c, base);
                check_query(&store, &model.events, &spec);
            }
            4 => model.check_get_events(&store, &mut c, base),
            5 => {
                let position = c.below(model.events.len() + 2) as u64;
                let got = store.get_at(position).expect("get_at runs");
                let index = usize::try_from(position)
                    .ok()
                    .and_then(|p| p.checked_sub(1));
                assert_eq!(got.as_ref(), index.and_then(|i| model.events.get(i)));
                if let Some(event) = &got {
                    assert_eq!(store.get(event.id).expect("get runs").as_ref(), Some(event));
                }
                assert_eq!(
                    store
                        .get(Uuid::from_u128(u128::MAX - u128::from(c.byte())))
                        .expect("get runs"),
                    None
                );
            }
            6 => {
                assert_eq!(last_position(&store), model.events.len() as u64);
                let intent = c.name(&INTENTS);
                assert_eq!(
                    store.last_sequence(intent).expect("last_sequence runs"),
                    model.last_sequence(intent, &[])
                );
            }
            _ => {
                let from = c.below(model.events.len() + 2) as u64;
                let scanned: Vec<Event> = store
                    .scan(from)
                    .expect("a scan starts")
                    .collect::<crate::model::error::Result<_>>()
                    .expect("a scan reads");
                let skip = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
                let expected: Vec<&Event> = model.events.iter().skip(skip).collect();
                assert_eq!(scanned.iter().collect::<Vec<_>>(), expected, "scan({from})");
            }
        }
    }
    assert_eq!(all_events(&store), model.events);
}

fn last_position(store: &Store) -> u64 {
    store.last_position().expect("last_position runs")
}

fn all_events(store: &Store) -> Vec<Event> {
    store
        .scan(1)
        .expect("a scan starts")
        .collect::<crate::model::error::Result<_>>()
        .expect("a scan reads")
}
