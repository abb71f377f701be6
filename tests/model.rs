//! Property test: random appends and random queries against a simple in-memory model. The
//! store must find the same events, in the same order, through every index and page size.

use chrono::{DateTime, TimeZone, Utc};
use oidb::{EventFilter, EventType, Level, NewEvent, Order, Query, Store};
use proptest::prelude::*;
use serde_json::json;

const INTENTS: [&str; 4] = ["intent-a", "intent-b", "c", "d-intent"];
const TYPES: [&str; 6] = [
    "llm_request_started",
    "llm_request_completed",
    "tool_call_started",
    "task.created",
    "task.completed",
    "comment",
];
const PREFIXES: [&str; 4] = ["llm_", "task.", "tool_", "zzz"];
const ACTORS: [&str; 3] = ["agent-a", "agent-b", "human"];
const TRACES: [&str; 2] = [
    "0123456789abcdef0123456789abcdef",
    "fedcba9876543210fedcba9876543210",
];

#[derive(Debug, Clone)]
struct Spec {
    intent: usize,
    event_type: usize,
    actor: usize,
    seconds: i64,
    trace: Option<usize>,
    level: usize,
}

#[derive(Debug, Clone)]
struct Modelled {
    position: u64,
    sequence: u64,
    spec: Spec,
}

#[derive(Debug, Clone)]
enum Op {
    Append(Spec),
    Batch(Vec<Spec>),
}

#[derive(Debug, Clone)]
struct Ask {
    intent: Option<usize>,
    types: Vec<usize>,
    prefix: Option<usize>,
    since: Option<i64>,
    until: Option<i64>,
    actor: Option<usize>,
    trace: Option<usize>,
    min_level: Option<usize>,
    newest_first: bool,
    page: usize,
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..INTENTS.len(),
        0..TYPES.len(),
        0..ACTORS.len(),
        0i64..100,
        proptest::option::of(0..TRACES.len()),
        0..6usize,
    )
        .prop_map(|(intent, event_type, actor, seconds, trace, level)| Spec {
            intent,
            event_type,
            actor,
            seconds,
            trace,
            level,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => spec().prop_map(Op::Append),
        1 => proptest::collection::vec(spec(), 1..6).prop_map(Op::Batch),
    ]
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        proptest::option::of(0..INTENTS.len()),
        proptest::collection::vec(0..TYPES.len(), 0..3),
        proptest::option::of(0..PREFIXES.len()),
        proptest::option::of(0i64..100),
        proptest::option::of(0i64..110),
        proptest::option::of(0..ACTORS.len()),
        proptest::option::of(0..TRACES.len()),
        proptest::option::of(0..6usize),
        any::<bool>(),
        1usize..8,
    )
        .prop_map(
            |(intent, types, prefix, since, until, actor, trace, min_level, newest_first, page)| {
                Ask {
                    intent,
                    types,
                    prefix,
                    since,
                    until,
                    actor,
                    trace,
                    min_level,
                    newest_first,
                    page,
                }
            },
        )
}

fn new_event(spec: &Spec) -> NewEvent {
    let mut event = NewEvent::new(
        INTENTS[spec.intent],
        TYPES[spec.event_type],
        ACTORS[spec.actor],
    )
    .created_at(at(spec.seconds))
    .level(Level::ALL[spec.level])
    .payload(json!({"seconds": spec.seconds}));
    if let Some(trace) = spec.trace {
        event = event.trace_id(TRACES[trace]);
    }
    event
}

fn matches(ask: &Ask, spec: &Spec) -> bool {
    let type_name = TYPES[spec.event_type];
    let any_type = ask.types.is_empty() && ask.prefix.is_none();
    let type_ok = any_type
        || ask.types.contains(&spec.event_type)
        || ask
            .prefix
            .is_some_and(|p| type_name.starts_with(PREFIXES[p]));
    ask.intent.is_none_or(|i| i == spec.intent)
        && type_ok
        && ask.since.is_none_or(|s| spec.seconds >= s)
        && ask.until.is_none_or(|u| spec.seconds < u)
        && ask.actor.is_none_or(|a| a == spec.actor)
        && ask.trace.is_none_or(|t| spec.trace == Some(t))
        && ask.min_level.is_none_or(|l| spec.level >= l)
}

fn query(ask: &Ask) -> Query {
    let mut q = Query::new().limit(ask.page);
    if let Some(i) = ask.intent {
        q = q.intent(INTENTS[i]);
    }
    for t in &ask.types {
        q = q.event_type(TYPES[*t]);
    }
    if let Some(p) = ask.prefix {
        q = q.type_prefix(PREFIXES[p]);
    }
    if let Some(s) = ask.since {
        q = q.since(at(s));
    }
    if let Some(u) = ask.until {
        q = q.until(at(u));
    }
    if let Some(a) = ask.actor {
        q = q.actor(ACTORS[a]);
    }
    if let Some(t) = ask.trace {
        q = q.trace(TRACES[t]);
    }
    if let Some(l) = ask.min_level {
        q = q.min_level(Level::ALL[l]);
    }
    if ask.newest_first {
        q = q.order(Order::NewestFirst);
    }
    q
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn store_answers_like_the_model(ops in proptest::collection::vec(op(), 1..40), asks in proptest::collection::vec(ask(), 1..12)) {
        let store = Store::in_memory().unwrap();
        let mut model: Vec<Modelled> = Vec::new();
        let mut next_sequence = [0u64; INTENTS.len()];
        for op in &ops {
            let specs = match op {
                Op::Append(spec) => vec![spec.clone()],
                Op::Batch(specs) => specs.clone(),
            };
            let stored = store.append_batch(specs.iter().map(new_event)).unwrap();
            for (spec, event) in specs.into_iter().zip(stored) {
                next_sequence[spec.intent] += 1;
                let expected = Modelled { position: model.len() as u64 + 1, sequence: next_sequence[spec.intent], spec };
                prop_assert_eq!(event.position, expected.position);
                prop_assert_eq!(event.sequence, expected.sequence);
                model.push(expected);
            }
        }

        for ask in &asks {
            let mut expected: Vec<u64> = model.iter().filter(|m| matches(ask, &m.spec)).map(|m| m.position).collect();
            if ask.newest_first {
                expected.reverse();
            }
            // Page by page through the cursor.
            let mut got = Vec::new();
            let mut q = query(ask);
            loop {
                let page = store.query(&q).unwrap();
                prop_assert!(page.events.len() <= ask.page);
                got.extend(page.events.iter().map(|e| e.position));
                match page.next {
                    Some(cursor) => q = q.after(cursor),
                    None => break,
                }
            }
            prop_assert_eq!(&got, &expected, "paged {:?}", ask);
            // All at once through the iterator.
            let all: Vec<u64> = store.query_iter(&query(ask).limit(usize::MAX)).unwrap().map(|e| e.unwrap().position).collect();
            prop_assert_eq!(&all, &expected, "iterated {:?}", ask);

            // get_events answers the intent-scoped part the same way.
            if let Some(i) = ask.intent {
                let mut filter = EventFilter::new().limit(ask.page);
                for t in &ask.types {
                    filter = filter.event_type(TYPES[*t]);
                }
                if let Some(s) = ask.since { filter = filter.since(at(s)); }
                if let Some(u) = ask.until { filter = filter.until(at(u)); }
                if ask.newest_first { filter = filter.newest_first(); }
                let plain = Ask { prefix: None, actor: None, trace: None, min_level: None, ..ask.clone() };
                let mut want: Vec<u64> = model.iter().filter(|m| matches(&plain, &m.spec)).map(|m| m.position).collect();
                if ask.newest_first { want.reverse(); }
                want.truncate(ask.page);
                let got: Vec<u64> = store.get_events(INTENTS[i], filter).unwrap().iter().map(|e| e.position).collect();
                prop_assert_eq!(got, want);
            }
        }

        // Sequence windows on one intent.
        let intent = 0;
        let sequences: Vec<&Modelled> = model.iter().filter(|m| m.spec.intent == intent).collect();
        let last = sequences.len() as u64;
        for (after, before) in [(0, last + 1), (1, last), (last / 2, last + 5)] {
            let got: Vec<u64> = store.get_events(INTENTS[intent], EventFilter::new().after(after).before(before).limit(1000)).unwrap().iter().map(|e| e.sequence).collect();
            let want: Vec<u64> = sequences.iter().map(|m| m.sequence).filter(|s| *s > after && *s < before).collect();
            prop_assert_eq!(got, want);
        }
        // A full scan from any position.
        let from = model.len() as u64 / 2 + 1;
        let scanned: Vec<u64> = store.scan(from).unwrap().map(|e| e.unwrap().position).collect();
        prop_assert_eq!(scanned, (from..=model.len() as u64).collect::<Vec<_>>());
        let types_seen = store.query_iter(&Query::new()).unwrap().filter(|e| e.as_ref().unwrap().event_type == EventType::Comment).count();
        prop_assert_eq!(types_seen, model.iter().filter(|m| TYPES[m.spec.event_type] == "comment").count());
    }
}
