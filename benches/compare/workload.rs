//! The events every side writes: OpenIntent-shaped, generated deterministically from their index,
//! so each side sees the same ids, intents, types, actors, times and payload bytes without the
//! whole set having to sit in memory.

use chrono::{DateTime, Utc};
use oidb::{EventType, NewEvent};
use serde_json::{json, Value};
use uuid::Uuid;

/// How many intents, types and actors the events spread over.
pub const INTENTS: usize = 100;
pub const TYPES: usize = 20;
pub const ACTORS: usize = 5;

/// Microseconds between consecutive events' `created_at`.
pub const TIME_STEP_MICROS: i64 = 1_000;

/// 2026-01-01T00:00:00Z: the `created_at` of event 0.
pub const START_MICROS: i64 = 1_767_225_600_000_000;

const TYPE_NAMES: [&str; TYPES] = [
    "intent_created",
    "state_patched",
    "status_changed",
    "agent_assigned",
    "comment",
    "tool_call_started",
    "tool_call_completed",
    "tool_call_failed",
    "llm_request_started",
    "llm_request_completed",
    "llm_request_failed",
    "stream_started",
    "stream_chunk",
    "stream_completed",
    "task.created",
    "task.started",
    "task.progress",
    "task.completed",
    "plan.created",
    "decision_recorded",
];

const ACTOR_NAMES: [&str; ACTORS] = [
    "agent-research",
    "agent-critic",
    "agent-planner",
    "agent-writer",
    "human-reviewer",
];

const WORDS: [&str; 32] = [
    "search",
    "summarise",
    "the",
    "sources",
    "for",
    "claims",
    "about",
    "latency",
    "and",
    "cost",
    "of",
    "embedded",
    "event",
    "stores",
    "compare",
    "with",
    "server",
    "databases",
    "under",
    "load",
    "note",
    "every",
    "decision",
    "agent",
    "plan",
    "review",
    "draft",
    "answer",
    "check",
    "result",
    "citation",
    "budget",
];

const MODELS: [&str; 4] = [
    "gpt-4o-mini",
    "claude-sonnet-4",
    "llama-3.1-70b",
    "mistral-large",
];

/// One generated event, in the forms each side consumes.
pub struct Generated {
    /// Its number, from 0.
    pub index: u64,
    pub id: Uuid,
    pub intent: usize,
    pub kind: usize,
    pub actor: usize,
    pub created_at_micros: i64,
    pub payload: Value,
    /// The payload's JSON text: the bytes SQLite stores and oidb keeps.
    pub payload_json: String,
}

/// The names the events use.
pub struct Workload {
    intents: Vec<String>,
    types: Vec<EventType>,
}

impl Workload {
    pub fn new() -> Workload {
        let intents = (0..INTENTS)
            .map(|i| {
                let mut rng = Rng::new(0x1a7e_0000 + i as u64);
                Uuid::from_u128(u128::from(rng.next()) << 64 | u128::from(rng.next())).to_string()
            })
            .collect();
        let types = TYPE_NAMES.iter().map(|n| EventType::parse(n)).collect();
        Workload { intents, types }
    }

    pub fn intent(&self, index: usize) -> &str {
        &self.intents[index % INTENTS]
    }

    pub fn event_type(&self, index: usize) -> &EventType {
        &self.types[index % TYPES]
    }

    pub fn type_name(&self, index: usize) -> &'static str {
        TYPE_NAMES[index % TYPES]
    }

    pub fn actor(&self, index: usize) -> &'static str {
        ACTOR_NAMES[index % ACTORS]
    }

    /// Event number `index` (from 0), the same every time it is asked for.
    pub fn event(&self, index: u64) -> Generated {
        let mut rng = Rng::new(index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0123_4567);
        let created_at_micros = START_MICROS + index as i64 * TIME_STEP_MICROS;
        let mut random = [0u8; 10];
        for chunk in random.chunks_mut(8) {
            let bytes = rng.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let id =
            uuid::Builder::from_unix_timestamp_millis((created_at_micros / 1_000) as u64, &random)
                .into_uuid();
        let intent = rng.below(INTENTS);
        let kind = rng.below(TYPES);
        let actor = rng.below(ACTORS);
        let message: Vec<&str> = (0..14 + rng.below(6))
            .map(|_| WORDS[rng.below(WORDS.len())])
            .collect();
        let payload = json!({
            "message": message.join(" "),
            "step": index,
            "model": MODELS[rng.below(MODELS.len())],
            "tokens": {"prompt": 200 + rng.below(4_000), "completion": 20 + rng.below(1_000)},
            "tags": [WORDS[rng.below(WORDS.len())], WORDS[rng.below(WORDS.len())]],
            "score": (rng.below(1_000) as f64) / 1_000.0,
            "tool": if rng.below(2) == 0 { "web_search" } else { "code_interpreter" },
            "ok": rng.below(10) != 0,
        });
        let payload_json = payload.to_string();
        Generated {
            index,
            id,
            intent,
            kind,
            actor,
            created_at_micros,
            payload,
            payload_json,
        }
    }

    pub fn created_at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).expect("generated times are in range")
    }

    /// The event as oidb appends it.
    pub fn new_event(&self, g: &Generated) -> NewEvent {
        NewEvent::new(
            self.intent(g.intent),
            self.event_type(g.kind).clone(),
            self.actor(g.actor),
        )
        .id(g.id)
        .created_at(Self::created_at(g.created_at_micros))
        .payload(g.payload.clone())
    }

    /// Events number `range` (from 0) as oidb appends them.
    pub fn new_events(&self, range: std::ops::Range<u64>) -> Vec<NewEvent> {
        range.map(|i| self.new_event(&self.event(i))).collect()
    }

    /// The event as one JSONL line (OpenIntent's wire form), newline included.
    pub fn jsonl_line(&self, g: &Generated) -> String {
        let mut line = String::with_capacity(g.payload_json.len() + 200);
        line.push_str("{\"id\":\"");
        line.push_str(&g.id.to_string());
        line.push_str("\",\"intent_id\":\"");
        line.push_str(self.intent(g.intent));
        line.push_str("\",\"event_type\":\"");
        line.push_str(self.type_name(g.kind));
        line.push_str("\",\"actor\":\"");
        line.push_str(self.actor(g.actor));
        line.push_str("\",\"payload\":");
        line.push_str(&g.payload_json);
        line.push_str(",\"created_at\":\"");
        line.push_str(&oidb::time::format(Self::created_at(g.created_at_micros)));
        line.push_str("\"}\n");
        line
    }
}

/// The chain's columns as the peers store them: stand-ins of the sizes oidb's chain has, since
/// the benchmark does not compute RFC-0019 hashes for the peers. The sequence has the magnitude
/// of an intent's (the events spread evenly over the intents), the event hash is SHA-256 of the
/// id, and the previous event's hash is absent for an intent's first event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainColumns {
    pub sequence: u64,
    pub previous_event_hash: Option<[u8; 32]>,
    pub event_hash: [u8; 32],
    /// oidb's `Level::Info`, as every generated event has.
    pub level: u8,
}

impl ChainColumns {
    pub fn of(g: &Generated) -> ChainColumns {
        use sha2::{Digest as _, Sha256};
        let sequence = g.index / INTENTS as u64 + 1;
        let digest = |salt: u8| -> [u8; 32] {
            let mut hasher = Sha256::new();
            hasher.update(g.id.as_bytes());
            hasher.update([salt]);
            hasher.finalize().into()
        };
        ChainColumns {
            sequence,
            previous_event_hash: (sequence > 1).then(|| digest(1)),
            event_hash: digest(0),
            level: 1,
        }
    }
}

/// A digest as the wire form spells it: `sha256:` and base64url without padding.
pub fn hash_text(digest: &[u8; 32]) -> String {
    use base64::Engine as _;
    format!(
        "sha256:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// splitmix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
