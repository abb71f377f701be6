//! What every store must satisfy, whatever happened to it: checked after crashes, faults and abuse.
#![allow(dead_code)] // each test file uses a part of it

use std::collections::HashMap;

use oidb::{chain, Event, Query, Store};

/// Reads the whole log and asserts the invariants a user relies on:
/// - positions run from 1 with no hole, and `last_position` is the last of them;
/// - each intent's sequences run from 1 with no hole, each event links to the hash of the one
///   before it, and each hash is the RFC-0019 hash of the event's content;
/// - the indexes agree with the log: by id, by intent, by type, by actor and by time.
///
/// Returns the log, oldest first.
pub fn assert_consistent(store: &Store) -> Vec<Event> {
    let events: Vec<Event> = store
        .scan(1)
        .expect("scan starts")
        .collect::<Result<_, _>>()
        .expect("every record decodes");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.position, index as u64 + 1, "positions have a hole");
    }
    assert_eq!(
        store.last_position().unwrap(),
        events.len() as u64,
        "last_position disagrees with the log"
    );

    let mut heads: HashMap<&str, (u64, &str)> = HashMap::new();
    for event in &events {
        let (last_sequence, last_hash) = heads
            .get(event.intent_id.as_str())
            .copied()
            .unwrap_or((0, ""));
        assert_eq!(
            event.sequence,
            last_sequence + 1,
            "sequence hole in intent {}",
            event.intent_id
        );
        let expected_previous = (last_sequence > 0).then(|| last_hash.to_owned());
        assert_eq!(
            event.previous_event_hash, expected_previous,
            "chain broken at {}",
            event.id
        );
        assert_eq!(
            chain::compute_event_hash(event).unwrap(),
            event.event_hash,
            "hash of event {} does not match its content",
            event.id
        );
        heads.insert(&event.intent_id, (event.sequence, &event.event_hash));
    }

    for (intent, (last_sequence, _)) in &heads {
        assert_eq!(store.last_sequence(intent).unwrap(), *last_sequence);
        let by_intent = collect(store, &Query::new().intent(*intent));
        let expected: Vec<&Event> = events.iter().filter(|e| e.intent_id == *intent).collect();
        assert_eq!(
            by_intent.iter().collect::<Vec<_>>(),
            expected,
            "index by intent of {intent}"
        );
    }
    for event in &events {
        assert_eq!(
            store.get(event.id).unwrap().as_ref(),
            Some(event),
            "index by id"
        );
    }
    let mut types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    for event_type in types {
        let found = collect(store, &Query::new().event_type(event_type));
        let expected: Vec<&Event> = events
            .iter()
            .filter(|e| e.event_type.as_str() == event_type)
            .collect();
        assert_eq!(
            found.iter().collect::<Vec<_>>(),
            expected,
            "index by type {event_type}"
        );
    }
    let mut actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    actors.sort_unstable();
    actors.dedup();
    for actor in actors {
        let found = collect(store, &Query::new().actor(actor));
        let expected: Vec<&Event> = events.iter().filter(|e| e.actor == actor).collect();
        assert_eq!(
            found.iter().collect::<Vec<_>>(),
            expected,
            "index by actor {actor}"
        );
    }
    if let (Some(first), Some(last)) = (
        events.iter().map(|e| e.created_at).min(),
        events.iter().map(|e| e.created_at).max(),
    ) {
        let found = collect(
            store,
            &Query::new()
                .since(first)
                .until(last + chrono::Duration::microseconds(1)),
        );
        assert_eq!(found, events, "index by time");
    }
    events
}

fn collect(store: &Store, query: &Query) -> Vec<Event> {
    store
        .query_iter(query)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
