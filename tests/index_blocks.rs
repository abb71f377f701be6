//! The indexes by intent, type, actor and trace keep up to 64 events per block: queries that
//! start, end and page across block boundaries, filled by batches and by single appends alike,
//! give exactly what a filter over the whole log gives, in both orders.

use oidb::{Cursor, Event, EventFilter, EventType, Level, NewEvent, Query, Store};
use serde_json::json;

const TRACES: [&str; 2] = [
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "6cad4a268d116ece1738f7d93d9c1724",
];

fn new_event(i: u64) -> NewEvent {
    let event_type = match i % 3 {
        0 => EventType::Comment,
        1 => EventType::StatePatched,
        _ => EventType::Custom("llm_step".into()),
    };
    let mut event = NewEvent::new(
        format!("intent-{}", i % 2),
        event_type,
        format!("agent-{}", i % 5 / 4),
    )
    .payload(json!({"i": i}));
    // A hundred events in each trace: two blocks each.
    if i % 4 < 2 {
        event = event.trace_id(TRACES[usize::try_from(i % 4).unwrap()]);
    }
    if i.is_multiple_of(11) {
        event = event.level(Level::Warn);
    }
    event
}

/// 400 events: batches of 90, then single appends, then another batch.
fn store() -> (Store, Vec<Event>) {
    let store = Store::in_memory().unwrap();
    let mut i = 0;
    for _ in 0..3 {
        store.append_batch((i..i + 90).map(new_event)).unwrap();
        i += 90;
    }
    for _ in 0..100 {
        store.append(new_event(i)).unwrap();
        i += 1;
    }
    store.append_batch((i..400).map(new_event)).unwrap();
    let all: Vec<Event> = store.scan(1).unwrap().map(Result::unwrap).collect();
    assert_eq!(all.len(), 400);
    (store, all)
}

/// Every page of `query` (7 at a time) in one order, following cursors: the positions seen.
fn paged(store: &Store, query: &Query, newest_first: bool) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let mut q = query.clone().limit(7);
        if newest_first {
            q = q.newest_first();
        }
        if let Some(cursor) = after {
            q = q.after(cursor);
        }
        let page = store.query(&q).unwrap();
        seen.extend(page.events.iter().map(|e| e.position));
        match page.next {
            Some(cursor) => after = Some(cursor),
            None => return seen,
        }
    }
}

/// Which events of the log a query should give.
type Keeps = Box<dyn Fn(&Event) -> bool>;

#[test]
fn queries_across_blocks_answer_as_a_filter_over_the_log() {
    let (store, all) = store();
    let middle = all[150].created_at;
    let cases: Vec<(Query, Keeps)> = vec![
        (
            Query::new().intent("intent-1"),
            Box::new(|e| e.intent_id == "intent-1"),
        ),
        (
            Query::new().event_type(EventType::Comment),
            Box::new(|e| e.event_type == EventType::Comment),
        ),
        (
            Query::new().event_types([EventType::Comment, EventType::StatePatched]),
            Box::new(|e| e.event_type != EventType::Custom("llm_step".into())),
        ),
        (
            Query::new().type_prefix("llm_"),
            Box::new(|e| e.event_type == EventType::Custom("llm_step".into())),
        ),
        (
            Query::new().actor("agent-0"),
            Box::new(|e| e.actor == "agent-0"),
        ),
        (
            Query::new().actor("agent-0").min_level(Level::Warn),
            Box::new(|e| e.actor == "agent-0" && e.level >= Level::Warn),
        ),
        (
            Query::new().trace(TRACES[1]),
            Box::new(|e| e.trace_id.as_deref() == Some(TRACES[1])),
        ),
        (
            Query::new().intent("intent-0").trace(TRACES[0]),
            Box::new(|e| e.intent_id == "intent-0" && e.trace_id.as_deref() == Some(TRACES[0])),
        ),
        (
            Query::new().actor("agent-0").since(middle),
            Box::new(move |e| e.actor == "agent-0" && e.created_at >= middle),
        ),
        (
            Query::new().intent("intent-0").until(middle),
            Box::new(move |e| e.intent_id == "intent-0" && e.created_at < middle),
        ),
    ];
    for (query, keeps) in &cases {
        let expected: Vec<u64> = all
            .iter()
            .filter(|e| keeps(e))
            .map(|e| e.position)
            .collect();
        assert!(expected.len() > 10, "{query:?}");
        assert_eq!(paged(&store, query, false), expected, "{query:?}");
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            paged(&store, query, true),
            reversed,
            "{query:?} newest first"
        );
    }
}

#[test]
fn sequence_windows_across_blocks_answer_as_the_chain_does() {
    let (store, all) = store();
    let chain: Vec<&Event> = all.iter().filter(|e| e.intent_id == "intent-1").collect();
    assert_eq!(chain.len(), 200);
    for (after, before) in [
        (0, 201),
        (63, 66),
        (64, 65),
        (60, 140),
        (130, 201),
        (199, 201),
    ] {
        let expected: Vec<u64> = chain
            .iter()
            .filter(|e| e.sequence > after && e.sequence < before)
            .map(|e| e.sequence)
            .collect();
        let filter = EventFilter::new().after(after).before(before).limit(1_000);
        let got: Vec<u64> = store
            .get_events("intent-1", filter.clone())
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(got, expected, "{after}..{before}");
        let newest: Vec<u64> = store
            .get_events("intent-1", filter.newest_first())
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(newest, reversed, "{after}..{before} newest first");
    }
    let report = store.verify_all(|_| {}).unwrap();
    assert!(report.valid, "{:#?}", report.problems);
    let stats = store.stats().unwrap();
    assert_eq!(
        stats.actors,
        vec![("agent-0".to_owned(), 320), ("agent-1".to_owned(), 80)]
    );
}
