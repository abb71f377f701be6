//! Appends from many threads share commits; every caller still gets its own answer, the log stays
//! contiguous, and rows written in bulk are found through every index.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use oidb::{Durability, Event, EventFilter, EventType, NewEvent, Query, Store};
use serde_json::json;
use uuid::Uuid;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

/// Runs `work(thread)` on `threads` threads released together; returns what each returned.
fn together<T: Send + 'static>(
    threads: usize,
    work: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let work = Arc::clone(&work);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                work(t)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn concurrent_appends_each_get_their_own_event_in_one_contiguous_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("threads.oidb")).unwrap();
    let (threads, each) = (16, 30);
    let writer = store.clone();
    let answers = together(threads, move |t| {
        (0..each)
            .map(|k| {
                let intent = format!("intent-{}", (t + k) % 5);
                let sent = json!({"thread": t, "k": k});
                let event = writer
                    .append(
                        NewEvent::new(intent.clone(), EventType::Comment, format!("agent-{t}"))
                            .payload(sent.clone()),
                    )
                    .unwrap();
                // The answer is this caller's own event, not a neighbour's from the same commit.
                assert_eq!(
                    (&event.intent_id, &*event.payload),
                    (&intent, &sent),
                    "thread {t} got another caller's event"
                );
                event
            })
            .collect::<Vec<Event>>()
    });

    let all: Vec<&Event> = answers.iter().flatten().collect();
    let positions: HashSet<u64> = all.iter().map(|e| e.position).collect();
    let total = (threads * each) as u64;
    assert_eq!(
        positions,
        (1..=total).collect(),
        "positions are 1..=n, each once"
    );
    assert_eq!(store.last_position().unwrap(), total);
    // Each thread's appends landed in the order it made them.
    for events in &answers {
        assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    }
    let report = store.verify_all(|_| {}).unwrap();
    assert!(report.valid, "{:?}", report.problems);
    assert_eq!(report.event_count, total);
}

#[test]
fn flushes_and_checkpoint_writes_between_appends_strand_no_caller() {
    // Flush takes the commit lock between groups; appends queued meanwhile must still be led.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::builder()
        .durability(Durability::Deferred {
            window: Duration::from_secs(60),
        })
        .open(dir.path().join("flush.oidb"))
        .unwrap();
    let (threads, each) = (8, 40);
    let writer = store.clone();
    let counts = together(threads + 1, move |t| {
        if t == threads {
            for _ in 0..100 {
                writer.flush().unwrap();
            }
            return 0;
        }
        for k in 0..each {
            writer
                .log_event(format!("i{}", k % 3), EventType::Comment, json!({"t": t}))
                .unwrap();
        }
        each
    });
    let total: usize = counts.iter().sum();
    assert_eq!(store.last_position().unwrap(), total as u64);
    store.flush().unwrap();
}

#[test]
fn batches_with_chosen_ids_and_times_out_of_order_are_found_through_every_index() {
    // Rows are written sorted, in runs; ids and times that do not arrive in order must still
    // land where every index finds them.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("bulk.oidb")).unwrap();
    let types = [
        EventType::Comment,
        EventType::StatePatched,
        EventType::ToolCallStarted,
        EventType::parse("task.created"),
    ];
    let mut model: BTreeMap<u64, (Uuid, String, EventType, i64)> = BTreeMap::new();
    let mut seed = 0x5eed_u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    for batch in 0..6 {
        let mut events = Vec::new();
        for _ in 0..150 {
            let id = Uuid::from_u128(u128::from(next()) << 64 | u128::from(next()));
            let intent = format!("intent-{}", next() % 17);
            let event_type = types[(next() % 4) as usize].clone();
            let seconds = (next() % 10_000) as i64;
            events.push(
                NewEvent::new(intent, event_type, format!("actor-{}", next() % 3))
                    .id(id)
                    .created_at(at(seconds))
                    .payload(json!({"batch": batch})),
            );
        }
        for event in store.append_batch(events).unwrap() {
            let seconds = event.created_at.timestamp() - 1_767_225_600;
            model.insert(
                event.position,
                (event.id, event.intent_id, event.event_type, seconds),
            );
        }
    }
    let report = store.verify_all(|_| {}).unwrap();
    assert!(report.valid, "{:?}", report.problems);

    for (position, (id, _, _, _)) in model.iter().step_by(37) {
        assert_eq!(store.get(*id).unwrap().unwrap().position, *position);
    }
    for n in 0..17 {
        let intent = format!("intent-{n}");
        let expected: Vec<u64> = model
            .iter()
            .filter(|(_, m)| m.1 == intent)
            .map(|(p, _)| *p)
            .collect();
        let found: Vec<u64> = store
            .get_events(&intent, EventFilter::new().limit(10_000))
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(found, expected, "{intent}");
    }
    for event_type in &types {
        let (since, until) = (2_000, 7_000);
        let expected: Vec<u64> = model
            .iter()
            .filter(|(_, m)| &m.2 == event_type && m.3 >= since && m.3 < until)
            .map(|(p, _)| *p)
            .collect();
        let found: Vec<u64> = store
            .query(
                &Query::new()
                    .event_type(event_type.clone())
                    .since(at(since))
                    .until(at(until))
                    .limit(10_000),
            )
            .unwrap()
            .events
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(found, expected, "{event_type:?}");
    }
}
