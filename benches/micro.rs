//! Micro-benchmarks of the hot paths, to catch regressions:
//! `cargo bench --bench micro --features bench-internals`.
//!
//! - `hash/*`: the payload's canonical form, the event hash as the writer takes it when it picks
//!   the event's id or time (`event_digest`), and when the caller gave them (`begin` before the
//!   commit lock, `finish` under it), and the public `compute_event_hash` from scratch;
//! - `record/*`: the payload's binary and canonical forms, the record encoding, its decoding, the
//!   payload's part of that, and serde_json's parse of the payload's JSON text (what a reader of
//!   the text, SQLite's included, pays instead);
//! - `index/rows`: the byte encodings of one event's index rows;
//! - `store/*`: a batch of 100 appends, a `get_events` of 100, and a batch of 1,000 appends that
//!   come with ids and times, on a store in a file whose commits are not synced (the disk is the
//!   comparison benchmark's business).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use oidb::{internals, Durability, EventFilter, EventType, NewEvent, Store};
use serde_json::{json, Value};

/// An OpenIntent-shaped payload of about 300 bytes, like the comparison benchmark's.
fn payload(step: u64) -> Value {
    json!({
        "message": "search the sources for claims about latency and cost of embedded event stores \
                    compare with server databases",
        "step": step,
        "model": "claude-sonnet-4",
        "tokens": {"prompt": 1834, "completion": 412},
        "tags": ["research", "citation"],
        "score": 0.734,
        "tool": "web_search",
        "ok": true,
    })
}

fn new_event(i: u64) -> NewEvent {
    NewEvent::new(
        format!("0b7e6a52-9a37-4c1d-8f0e-{:012x}", i % 100),
        EventType::ToolCallCompleted,
        "agent-research",
    )
    .payload(payload(i))
}

/// A store in a temporary file holding `count` events, and its last event (which has a
/// predecessor). Commits are not synced, so the figures are the CPU's, not the disk's.
fn store_with(count: u64) -> (tempfile::TempDir, Store, oidb::Event) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::builder()
        .durability(Durability::Deferred {
            window: Duration::from_secs(3600),
        })
        .open(dir.path().join("micro.oidb"))
        .expect("store");
    let mut last = None;
    let mut next = 0;
    while next < count {
        let batch: Vec<_> = (next..(next + 1_000).min(count)).map(new_event).collect();
        next += batch.len() as u64;
        last = store.append_batch(batch).expect("append").pop();
    }
    (dir, store, last.expect("at least one event"))
}

fn hashing(c: &mut Criterion) {
    let (_dir, _store, event) = store_with(200);
    let encoded = internals::encode_payload(&event).expect("encode");
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(1));
    group.bench_function("jcs_payload", |b| {
        b.iter(|| oidb::jcs::to_canonical_vec(black_box(&event.payload)));
    });
    group.bench_function("event_digest", |b| {
        b.iter(|| internals::event_digest(black_box(&event), black_box(&encoded)));
    });
    // The same hash in the writer's two steps when the caller gives id and time (import, and
    // the comparison benchmark): before the commit lock, and under it.
    let new = internals::new_event_of(&event);
    group.bench_function("begin", |b| {
        b.iter(|| internals::begin_hash(black_box(&new)));
    });
    let ahead = internals::begin_hash(&new).expect("hash begun");
    group.bench_function("finish", |b| {
        b.iter_batched(
            || ahead.clone(),
            |ahead| internals::finish_hash(ahead, black_box(&event)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("compute_event_hash", |b| {
        b.iter(|| oidb::chain::compute_event_hash(black_box(&event)));
    });
    group.finish();
}

fn records(c: &mut Criterion) {
    let (_dir, _store, event) = store_with(200);
    let encoded = internals::encode_payload(&event).expect("encode");
    let record = internals::encode_record(&event, &encoded).expect("record");
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_payload", |b| {
        b.iter(|| internals::encode_payload(black_box(&event)));
    });
    group.bench_function("encode", |b| {
        b.iter(|| internals::encode_record(black_box(&event), black_box(&encoded)));
    });
    group.bench_function("decode", |b| {
        b.iter(|| internals::decode_record(event.position, black_box(&record)));
    });
    // The payload's part of `decode`.
    group.bench_function("decode_payload", |b| {
        b.iter(|| internals::decode_payload(black_box(&encoded.payload_binary)));
    });
    // What a reader of the payload's JSON text pays instead, SQLite's included.
    let payload_json = event.payload.to_string();
    group.bench_function("parse_payload", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(&payload_json)));
    });
    group.finish();
}

fn index_rows(c: &mut Criterion) {
    let (_dir, _store, event) = store_with(200);
    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rows", |b| {
        b.iter(|| internals::encode_index_rows(black_box(&event), 42, 7, 3));
    });
    group.finish();
}

fn store_paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(100));
    let (_dir, store, _) = store_with(10_000);
    let mut next = 10_000;
    group.bench_function("append_batch_100", |b| {
        b.iter_batched(
            || {
                let batch: Vec<_> = (next..next + 100).map(new_event).collect();
                next += 100;
                batch
            },
            |batch| store.append_batch(batch).expect("append"),
            BatchSize::SmallInput,
        );
    });
    let intent = format!("0b7e6a52-9a37-4c1d-8f0e-{:012x}", 7);
    group.bench_function("get_events_100_newest", |b| {
        b.iter(|| {
            store
                .get_events(
                    black_box(&intent),
                    EventFilter::new().limit(100).newest_first(),
                )
                .expect("get_events")
        });
    });
    // A large batch whose events come with ids and times, like an import's or the comparison
    // benchmark's: each hashed up to its payload before the commit lock.
    group.throughput(Throughput::Elements(1_000));
    let start = oidb::time::now();
    group.bench_function("append_batch_1000_given_ids", |b| {
        b.iter_batched(
            || {
                let batch: Vec<_> = (next..next + 1_000)
                    .map(|i| {
                        new_event(i)
                            .id(uuid::Uuid::now_v7())
                            .created_at(start + chrono::Duration::microseconds(i as i64))
                    })
                    .collect();
                next += 1_000;
                batch
            },
            |batch| store.append_batch(batch).expect("append"),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, hashing, records, index_rows, store_paths);
criterion_main!(benches);
