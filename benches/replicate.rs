//! `cargo bench --bench replicate`: oidb's replicator beside plain async-nats JetStream
//! publishing of the same bytes, in the same run, into the same nats-server (with JetStream, on
//! loopback; `OIDB_NATS_SERVER` names its binary, as tests/all.sh sets it):
//!
//! - throughput: a file of `OIDB_REPLICATE_BENCH_EVENTS` events (default 100,000) replicated from
//!   the start, beside the same payloads, subjects and `Nats-Msg-Id`s published with the same
//!   number of acks in flight; events per second, and the ratio (the goal: at least 80 %);
//! - lag: with `--follow` semantics, batches of 100 events appended to the live file every
//!   10 ms, and the time from each batch's commit to JetStream's ack of its last event (p50,
//!   p99), beside the time from publishing a batch of 100 to its last ack. The replicator reads
//!   through a `ReadOnlyStore`, which sees a commit once the writer publishes it (every 20 ms,
//!   `StoreBuilder::publish_interval`): most of its lag is that wait.

#[path = "../tests/nats/mod.rs"]
mod nats;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::Config;
use bytes::Bytes;
use nats::NatsServer;
use oidb::replicate::{encode_token, Replicator, Report, DEFAULT_IN_FLIGHT};
use oidb::{EventType, NewEvent, Query, Store};
use serde_json::json;

const LAG_BATCHES: usize = 200;
const LAG_BATCH: usize = 100;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events: usize = std::env::var("OIDB_REPLICATE_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&dir.path().join("js"));
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let path = dir.path().join("bench.oidb");
    let store = Store::open(&path).unwrap();
    let batch: Vec<NewEvent> = (0..events)
        .map(|i| {
            NewEvent::new(format!("intent-{}", i % 50), EventType::Comment, "agent")
                .payload(json!({"n": i, "message": "a comment of a typical length, some words"}))
        })
        .collect();
    for chunk in batch.chunks(10_000) {
        store.append_batch(chunk.to_vec()).unwrap();
    }
    let messages = same_messages(&store);
    let bytes: usize = messages.iter().map(|m| m.2.len()).sum();
    eprintln!(
        "{events} events, {:.1} MB of OpenIntent JSON; nats-server {url}",
        bytes as f64 / 1e6
    );

    // The floor: the same messages, published by async-nats directly.
    let floor = runtime.block_on(plain_publish(&url, &messages));
    // oidb: the file replicated from the start.
    let started = Instant::now();
    let replicator = Replicator::builder()
        .nats(url.clone())
        .build(&path)
        .unwrap();
    let progress = runtime.block_on(replicator.run(|_| {})).unwrap();
    let ours = started.elapsed();
    assert_eq!(progress.checkpoint, events as u64);

    let floor_rate = events as f64 / floor.as_secs_f64();
    let our_rate = events as f64 / ours.as_secs_f64();
    println!("replicate throughput ({events} events, {DEFAULT_IN_FLIGHT} acks in flight):");
    println!("  async-nats publish (floor)  {floor_rate:>10.0} events/s  ({floor:.2?})");
    println!("  oidb replicate              {our_rate:>10.0} events/s  ({ours:.2?})");
    println!(
        "  ratio                       {:>10.1} %  (goal: at least 80 %)",
        100.0 * our_rate / floor_rate
    );

    let (ours_lag, floor_lag) = lag(&runtime, &url, &store, &path);
    println!("lag ({LAG_BATCHES} batches of {LAG_BATCH} events, one every 10 ms):");
    println!(
        "  async-nats publish → ack     p50 {:>8.2?}  p99 {:>8.2?}",
        percentile(&floor_lag, 50),
        percentile(&floor_lag, 99)
    );
    println!(
        "  oidb commit → in the stream  p50 {:>8.2?}  p99 {:>8.2?}",
        percentile(&ours_lag, 50),
        percentile(&ours_lag, 99)
    );
}

/// Each event's subject, id and export bytes, as the replicator publishes them (into the
/// stream `FLOOR`, under `floor.`).
fn same_messages(store: &Store) -> Vec<(String, String, Bytes)> {
    let store_id = store.snapshot().unwrap().store_id().unwrap().unwrap();
    let mut export = Vec::new();
    store.export_json(&mut export, &Query::new()).unwrap();
    let lines = export.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    store
        .query_iter(&Query::new())
        .unwrap()
        .zip(lines)
        .map(|(event, line)| {
            let event = event.unwrap();
            (
                format!(
                    "floor.{}.{}",
                    encode_token(&store_id),
                    encode_token(&event.intent_id)
                ),
                event.id.to_string(),
                Bytes::copy_from_slice(line),
            )
        })
        .collect()
}

/// Publishes every message with `DEFAULT_IN_FLIGHT` acks awaited in order; how long it took.
async fn plain_publish(url: &str, messages: &[(String, String, Bytes)]) -> Duration {
    let client = async_nats::connect(url).await.unwrap();
    let context = async_nats::jetstream::new(client);
    context
        .create_stream(Config {
            name: "FLOOR".to_owned(),
            subjects: vec!["floor.>".to_owned()],
            duplicate_window: Duration::from_secs(120),
            ..Config::default()
        })
        .await
        .unwrap();
    let started = Instant::now();
    let mut window = VecDeque::with_capacity(DEFAULT_IN_FLIGHT);
    for (n, (subject, id, payload)) in messages.iter().enumerate() {
        if window.len() >= DEFAULT_IN_FLIGHT {
            let ack: async_nats::jetstream::context::PublishAckFuture = window.pop_front().unwrap();
            ack.await.unwrap();
        }
        let publish = PublishMessage::build()
            .payload(payload.clone())
            .message_id(id)
            .header("Oidb-Position", (n + 1).to_string().as_str());
        window.push_back(
            context
                .send_publish(subject.clone(), publish)
                .await
                .unwrap(),
        );
    }
    for ack in window {
        ack.await.unwrap();
    }
    started.elapsed()
}

/// Commit-to-ack times of batches appended to the live file while a replicator follows it, and
/// publish-to-ack times of batches published directly.
fn lag(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    store: &Store,
    path: &std::path::Path,
) -> (Vec<Duration>, Vec<Duration>) {
    let replicator = Replicator::builder()
        .nats(url)
        .follow(true)
        .build(path)
        .unwrap();
    // The commit time of each batch, by its last position; the lag once it is acknowledged.
    let committed: Arc<Mutex<VecDeque<(u64, Instant)>>> = Arc::default();
    let lags: Arc<Mutex<Vec<Duration>>> = Arc::default();
    // The writer starts once the replicator has caught up, so its start-up is not counted.
    let ready = Arc::new(AtomicBool::new(false));
    let writer = {
        let store = store.clone();
        let committed = committed.clone();
        let ready = ready.clone();
        std::thread::spawn(move || {
            while !ready.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            for b in 0..LAG_BATCHES {
                let events = (0..LAG_BATCH).map(|i| {
                    NewEvent::new("lag", EventType::Comment, "agent")
                        .payload(json!({"b": b, "i": i}))
                });
                let appended = store.append_batch(events).unwrap();
                let last = appended.last().unwrap().position;
                committed.lock().unwrap().push_back((last, Instant::now()));
                std::thread::sleep(Duration::from_millis(10));
            }
            committed.lock().unwrap().back().unwrap().0
        })
    };
    let target = store.last_position().unwrap() + (LAG_BATCHES * LAG_BATCH) as u64;
    runtime.block_on(async {
        let run = replicator.run(|report| {
            let checkpoint = match report {
                Report::Acked(p) => p.checkpoint,
                Report::CaughtUp(p) => {
                    ready.store(true, Ordering::Release);
                    p.checkpoint
                }
                _ => return,
            };
            let mut committed = committed.lock().unwrap();
            while committed
                .front()
                .is_some_and(|(last, _)| *last <= checkpoint)
            {
                let (_, at) = committed.pop_front().unwrap();
                lags.lock().unwrap().push(at.elapsed());
            }
        });
        tokio::select! {
            result = run => panic!("the replicator stopped: {result:?}"),
            () = async {
                while replicator.checkpoint().unwrap() < target {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            } => {}
        }
    });
    assert_eq!(writer.join().unwrap(), target);
    let ours = std::mem::take(&mut *lags.lock().unwrap());

    let floor = runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let mut floor = Vec::new();
        for b in 0..LAG_BATCHES {
            let started = Instant::now();
            let mut acks = Vec::with_capacity(LAG_BATCH);
            for i in 0..LAG_BATCH {
                let payload = Bytes::from(json!({"b": b, "i": i}).to_string());
                let publish = PublishMessage::build()
                    .payload(payload)
                    .message_id(format!("lag-{b}-{i}"));
                acks.push(context.send_publish("floor.lag.x", publish).await.unwrap());
            }
            for ack in acks {
                ack.await.unwrap();
            }
            floor.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        floor
    });
    (ours, floor)
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted
        .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}
