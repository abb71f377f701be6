//! Subscriptions and group commit under load: every subscriber receives every matching event
//! exactly once, in position order, with exactly one `CaughtUp`, even one too slow for its channel.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use oidb::{Delivery, Event, EventType, Filter, NewEvent, Query, Start, Store};
use serde_json::json;

const WRITERS: usize = 8;
const PER_WRITER: usize = 2_000;
const INTENTS: usize = 5;

fn intent(i: usize) -> String {
    format!("intent-{i}")
}

/// Reads a subscription until the sentinel event arrives; returns the events and CaughtUp count.
fn drain(
    mut sub: oidb::Subscription,
    sentinel: uuid::Uuid,
    slow: bool,
) -> (Vec<Arc<Event>>, usize, u64) {
    let mut events = Vec::new();
    let mut caught_up = 0;
    loop {
        match sub.recv_timeout(Duration::from_secs(60)).unwrap() {
            Some(Delivery::Event(e)) => {
                let done = e.id == sentinel;
                events.push(e);
                if slow && events.len() < 3000 {
                    // Slower than the writers for a while: its 32-event channel overflows.
                    std::thread::sleep(Duration::from_millis(1));
                }
                if done {
                    return (events, caught_up, sub.fallbacks());
                }
            }
            Some(Delivery::CaughtUp { .. }) => caught_up += 1,
            None => panic!("no delivery for 60 s"),
        }
    }
}

#[test]
fn many_writers_and_subscribers_lose_nothing_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::builder()
        .channel_capacity(32)
        .open(dir.path().join("stress.oidb"))
        .unwrap();
    // Some history before the subscribers start, so the hand-over is exercised.
    for i in 0..200 {
        store
            .log_event(
                intent(i % INTENTS),
                EventType::Comment,
                json!({"before": i}),
            )
            .unwrap();
    }
    let sentinel = uuid::Uuid::now_v7();
    let filters = [
        (Filter::new(), false),
        (Filter::new().intent(intent(0)), false),
        (Filter::new().type_prefix("llm_"), false),
        (Filter::new(), true),
    ];
    let readers: Vec<_> = filters
        .iter()
        .map(|(filter, slow)| {
            let sub = store.subscribe(filter.clone(), Start::Beginning).unwrap();
            let slow = *slow;
            std::thread::spawn(move || drain(sub, sentinel, slow))
        })
        .collect();

    let barrier = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for n in 0..PER_WRITER {
                    let kind = if n % 3 == 0 {
                        EventType::LlmRequestStarted
                    } else {
                        EventType::ToolCallStarted
                    };
                    store
                        .append(
                            NewEvent::new(intent((w + n) % INTENTS), kind, format!("writer-{w}"))
                                .payload(json!({"w": w, "n": n})),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    store
        .append(NewEvent::new(intent(0), EventType::LlmRequestCompleted, "main").id(sentinel))
        .unwrap();

    let all: Vec<Event> = store
        .query_iter(&Query::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let total = 200 + WRITERS * PER_WRITER + 1;
    assert_eq!(all.len(), total);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.position == i as u64 + 1),
        "positions contiguous from 1"
    );
    let mut last_sequence: HashMap<&str, u64> = HashMap::new();
    let mut last_hash: HashMap<&str, String> = HashMap::new();
    for e in &all {
        let seq = last_sequence.entry(&e.intent_id).or_insert(0);
        assert_eq!(e.sequence, *seq + 1, "sequences contiguous per intent");
        *seq = e.sequence;
        assert_eq!(
            e.previous_event_hash,
            last_hash.get(e.intent_id.as_str()).cloned(),
            "chain links"
        );
        assert_eq!(
            oidb::chain::compute_event_hash(e).unwrap(),
            e.event_hash,
            "hash matches content"
        );
        last_hash.insert(&e.intent_id, e.event_hash.clone());
    }

    for ((filter, slow), reader) in filters.iter().zip(readers) {
        let (got, caught_up, fallbacks) = reader.join().unwrap();
        if *slow {
            assert!(
                fallbacks > 1,
                "the slow reader overflowed its channel many times ({fallbacks})"
            );
        }
        assert_eq!(caught_up, 1, "exactly one CaughtUp");
        let want: Vec<u64> = all
            .iter()
            .filter(|e| filter.matches(e))
            .map(|e| e.position)
            .collect();
        let got: Vec<u64> = got.iter().map(|e| e.position).collect();
        assert_eq!(got.len(), want.len(), "{filter:?}");
        assert_eq!(got, want, "every matching event once, in order: {filter:?}");
    }
}

#[test]
fn start_now_and_after_see_exactly_what_follows() {
    let store = Store::in_memory().unwrap();
    for i in 0..10 {
        store
            .log_event("i", EventType::Comment, json!({"i": i}))
            .unwrap();
    }
    let mut now = store.subscribe(Filter::new(), Start::Now).unwrap();
    let mut after = store.subscribe(Filter::new(), Start::After(4)).unwrap();
    for i in 10..15 {
        store
            .log_event("i", EventType::Comment, json!({"i": i}))
            .unwrap();
    }
    let collect = |sub: &mut oidb::Subscription| {
        let mut out = Vec::new();
        while let Some(d) = sub.recv_timeout(Duration::from_millis(200)).unwrap() {
            out.push(match d {
                Delivery::Event(e) => format!("{}", e.position),
                Delivery::CaughtUp { position } => format!("caught-up@{position}"),
            });
        }
        out
    };
    assert_eq!(
        collect(&mut now),
        ["caught-up@10", "11", "12", "13", "14", "15"]
    );
    assert_eq!(
        collect(&mut after),
        [
            "5",
            "6",
            "7",
            "8",
            "9",
            "10",
            "caught-up@10",
            "11",
            "12",
            "13",
            "14",
            "15"
        ]
    );
}

#[test]
fn appends_racing_the_hand_over_are_delivered_once() {
    for round in 0..20 {
        let store = Store::builder()
            .channel_capacity(4)
            .open_backend(redb::backends::InMemoryBackend::new(), "mem")
            .unwrap();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    store
                        .log_event(format!("i{}", i % 3), EventType::Comment, json!({"i": i}))
                        .unwrap();
                }
            })
        };
        std::thread::sleep(Duration::from_micros(200 * round));
        let mut sub = store.subscribe(Filter::new(), Start::Beginning).unwrap();
        writer.join().unwrap();
        let mut positions = Vec::new();
        let mut caught_up = 0;
        while let Some(d) = sub.recv_timeout(Duration::from_millis(100)).unwrap() {
            match d {
                Delivery::Event(e) => positions.push(e.position),
                Delivery::CaughtUp { .. } => caught_up += 1,
            }
        }
        assert_eq!(caught_up, 1);
        assert_eq!(positions, (1..=300).collect::<Vec<u64>>(), "round {round}");
    }
}

#[test]
fn dropping_a_subscription_unsubscribes_and_a_panicking_reader_hurts_no_one() {
    let store = Store::in_memory().unwrap();
    let sub = store.subscribe(Filter::new(), Start::Now).unwrap();
    assert_eq!(store.subscriber_count(), 1);
    drop(sub);
    assert_eq!(store.subscriber_count(), 0);

    let doomed = store.subscribe(Filter::new(), Start::Now).unwrap();
    let mut healthy = store.subscribe(Filter::new(), Start::Now).unwrap();
    let crash = std::thread::spawn(move || {
        let _sub = doomed;
        panic!("a subscriber's bug");
    });
    assert!(crash.join().is_err());
    // A subscriber that never reads at all: its channel fills, it falls behind, nobody waits.
    let _stalled = store.subscribe(Filter::new(), Start::Now).unwrap();
    for i in 0..3000 {
        store
            .log_event("i", EventType::Comment, json!({"i": i}))
            .unwrap();
    }
    let mut count = 0;
    while let Some(d) = healthy.recv_timeout(Duration::from_millis(200)).unwrap() {
        if matches!(d, Delivery::Event(_)) {
            count += 1;
        }
    }
    assert_eq!(count, 3000);
    assert_eq!(
        store.subscriber_count(),
        2,
        "the panicked subscriber is gone"
    );
}

#[test]
fn close_ends_iterators_and_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("close.oidb")).unwrap();
    store.log_event("i", EventType::Comment, json!({})).unwrap();
    let mut sub = store.subscribe(Filter::new(), Start::Beginning).unwrap();
    let reader = std::thread::spawn(move || sub.iter().map(Result::unwrap).count());
    std::thread::sleep(Duration::from_millis(50));
    store.close().unwrap();
    assert_eq!(
        reader.join().unwrap(),
        2,
        "the event and CaughtUp, then the end"
    );
    assert!(matches!(
        store.log_event("i", EventType::Comment, json!({})),
        Err(oidb::Error::Closed)
    ));
    assert!(matches!(
        store.subscribe(Filter::new(), Start::Now),
        Err(oidb::Error::Closed)
    ));
}

#[test]
fn durable_consumers_resume_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consumers.oidb");
    {
        let store = Store::open(&path).unwrap();
        for i in 0..5 {
            store
                .log_event("i", EventType::Comment, json!({"i": i}))
                .unwrap();
        }
        let indexer = store.consumer("indexer").unwrap();
        assert_eq!(indexer.checkpoint().unwrap(), 0);
        let mut sub = indexer.subscribe(Filter::new()).unwrap();
        for _ in 0..3 {
            let Some(Delivery::Event(e)) = sub.recv().unwrap() else {
                panic!()
            };
            indexer.ack(e.position).unwrap();
        }
        indexer.ack(1).unwrap(); // never moves back
        assert_eq!(indexer.checkpoint().unwrap(), 3);
        assert!(matches!(
            indexer.ack(99),
            Err(oidb::Error::AckBeyondLog {
                position: 99,
                last: 5,
                ..
            })
        ));
        store.consumer("other").unwrap();
    }
    let store = Store::open(&path).unwrap();
    let names: Vec<(String, u64)> = store
        .consumers()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.checkpoint))
        .collect();
    assert_eq!(names, [("indexer".to_owned(), 3), ("other".to_owned(), 0)]);
    let indexer = store.consumer("indexer").unwrap();
    let mut sub = indexer.subscribe(Filter::new()).unwrap();
    let Some(Delivery::Event(e)) = sub.recv().unwrap() else {
        panic!()
    };
    assert_eq!(e.position, 4, "at-least-once: resumes after the last ack");
    assert!(store.delete_consumer("other").unwrap());
    assert!(!store.delete_consumer("other").unwrap());
    assert_eq!(store.consumers().unwrap().len(), 1);
}

#[test]
fn deferred_durability_is_visible_at_once_and_durable_on_flush_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deferred.oidb");
    {
        let store = Store::builder()
            .durability(oidb::Durability::Deferred {
                window: Duration::from_secs(3600),
            })
            .open(&path)
            .unwrap();
        let mut sub = store.subscribe(Filter::new(), Start::Now).unwrap();
        let e = store
            .log_event("i", EventType::Comment, json!({"n": 1}))
            .unwrap();
        assert_eq!(store.get(e.id).unwrap(), Some(e.clone()), "visible at once");
        assert!(matches!(
            sub.recv().unwrap(),
            Some(Delivery::CaughtUp { .. })
        ));
        assert!(matches!(sub.recv().unwrap(), Some(Delivery::Event(_))));
        store.flush().unwrap();
        store
            .log_event("i", EventType::Comment, json!({"n": 2}))
            .unwrap();
        // Dropping the last handle makes the rest durable.
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.last_position().unwrap(), 2);
}

/// The live events of a subscription that starts now, up to `count` of them.
fn live_events(sub: &mut oidb::Subscription, count: usize) -> Vec<Arc<Event>> {
    let mut events = Vec::new();
    while events.len() < count {
        match sub.recv_timeout(Duration::from_secs(60)).unwrap() {
            Some(Delivery::Event(e)) => events.push(e),
            Some(Delivery::CaughtUp { .. }) => {}
            None => panic!("no delivery for 60 s"),
        }
    }
    events
}

#[test]
fn subscribers_share_one_copy_of_each_event() {
    let store = Store::in_memory().unwrap();
    let mut first = store.subscribe(Filter::new(), Start::Now).unwrap();
    let mut second = store
        .subscribe(Filter::new().intent("i"), Start::Now)
        .unwrap();
    let appended = store
        .append_batch(
            (0..3).map(|n| NewEvent::new("i", EventType::Comment, "a").payload(json!({"n": n}))),
        )
        .unwrap();
    let single = store
        .append(NewEvent::new("i", EventType::Comment, "a"))
        .unwrap();
    let appended: Vec<Event> = appended.into_iter().chain([single]).collect();
    let (a, b) = (live_events(&mut first, 4), live_events(&mut second, 4));
    for ((a, b), appended) in a.iter().zip(&b).zip(&appended) {
        assert!(Arc::ptr_eq(a, b), "one allocation, shared");
        assert_eq!(**a, *appended, "the event the append answered");
    }
}

#[test]
fn a_commit_larger_than_the_channel_reaches_an_idle_subscriber_from_memory() {
    let store = Store::builder()
        .channel_capacity(4)
        .open_backend(redb::backends::InMemoryBackend::new(), "mem")
        .unwrap();
    let mut sub = store.subscribe(Filter::new(), Start::Now).unwrap();
    store
        .append_batch(
            (0..100).map(|n| NewEvent::new("i", EventType::Comment, "a").payload(json!({"n": n}))),
        )
        .unwrap();
    let positions: Vec<u64> = live_events(&mut sub, 100)
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, (1..=100).collect::<Vec<u64>>());
    assert_eq!(sub.fallbacks(), 0, "nothing was read back from disk");
}

#[test]
fn position_counts_only_what_was_delivered() {
    let store = Store::in_memory().unwrap();
    let mut sub = store.subscribe(Filter::new(), Start::Now).unwrap();
    store
        .append_batch(
            (0..3).map(|n| NewEvent::new("i", EventType::Comment, "a").payload(json!({"n": n}))),
        )
        .unwrap();
    assert!(matches!(
        sub.recv().unwrap(),
        Some(Delivery::CaughtUp { position: 0 })
    ));
    assert_eq!(live_events(&mut sub, 1)[0].position, 1);
    assert_eq!(sub.position(), 1, "the rest of the commit is still to come");
    assert_eq!(live_events(&mut sub, 2)[1].position, 3);
    assert_eq!(sub.position(), 3);
}

#[test]
fn a_filtered_subscriber_takes_only_its_events_of_a_commit_in_order() {
    let store = Store::in_memory().unwrap();
    let mut sub = store
        .subscribe(Filter::new().intent("i"), Start::Now)
        .unwrap();
    assert!(matches!(
        sub.recv().unwrap(),
        Some(Delivery::CaughtUp { position: 0 })
    ));
    store
        .append_batch(["i", "j", "i", "j"].map(|intent| {
            NewEvent::new(intent, EventType::Comment, "a").payload(json!({"intent": intent}))
        }))
        .unwrap();
    assert_eq!(live_events(&mut sub, 1)[0].position, 1);
    assert_eq!(
        sub.position(),
        2,
        "position 2 is not for it, 3 is still to come"
    );
    let third = live_events(&mut sub, 1);
    assert_eq!((third[0].position, third[0].intent_id.as_str()), (3, "i"));
    assert_eq!(sub.position(), 4, "the whole commit is behind it");
    store
        .log_event("i", EventType::Comment, json!({"n": 5}))
        .unwrap();
    assert_eq!(live_events(&mut sub, 1)[0].position, 5);
}

#[test]
fn after_close_nothing_writes_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("closed.oidb")).unwrap();
    store.log_event("i", EventType::Comment, json!({})).unwrap();
    store.close().unwrap();
    let prices = oidb::costs::PriceTable::new("USD");
    assert!(matches!(
        store.set_prices(&prices),
        Err(oidb::Error::Closed)
    ));
    assert!(matches!(store.recompute_costs(), Err(oidb::Error::Closed)));
    assert!(matches!(
        store.create_checkpoint(&oidb::checkpoint::CheckpointScope::Store),
        Err(oidb::Error::Closed)
    ));
    assert_eq!(store.prices().unwrap(), None);
    let scope = oidb::checkpoint::CheckpointScope::Store;
    assert_eq!(store.checkpoints(&scope).unwrap().len(), 0);
}

#[test]
fn appends_racing_close_each_get_an_answer() {
    for _round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("race.oidb")).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    loop {
                        match store.log_event("i", EventType::Comment, json!({})) {
                            Ok(_) => {}
                            Err(oidb::Error::Closed) => break,
                            Err(other) => panic!("{other}"),
                        }
                    }
                    done.send(()).unwrap();
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(5));
        store.close().unwrap();
        for _ in &threads {
            finished
                .recv_timeout(Duration::from_secs(60))
                .expect("an append racing close never returned");
        }
        for thread in threads {
            thread.join().unwrap();
        }
    }
}
