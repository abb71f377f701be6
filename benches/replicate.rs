//! `cargo bench --bench replicate`: oidb's replicator beside plain async-nats JetStream
//! publishing of the same bytes, in the same run, into the same nats-server (with JetStream, on
//! loopback; `OIDB_NATS_SERVER` names its binary, as tests/all.sh sets it):
//!
//! - throughput: a file of `OIDB_REPLICATE_BENCH_EVENTS` events (default 100,000) replicated from
//!   the start, beside the same payloads, subjects and `Nats-Msg-Id`s published with the same
//!   number of acks in flight, each side timed from connecting to its last ack, in rounds that
//!   alternate which side goes first; events per second, and the median ratio with its range (the
//!   goal: at least 80 %);
//! - lag: with `--follow` semantics, batches of 100 events appended to the live file every
//!   10 ms, and the time from each batch's commit to JetStream's ack of its last event (p50,
//!   p99), beside the time from publishing a batch of 100 to its last ack. The replicator reads
//!   through a `ReadOnlyStore`, which sees a commit once the writer publishes it (every 20 ms,
//!   `StoreBuilder::publish_interval`): most of its lag is that wait.

#[path = "compare/cpu_time.rs"]
#[allow(dead_code)] // this benchmark counts whole processes only
mod cpu_time;
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

/// Throughput rounds, alternating which side goes first.
const ROUNDS: usize = 3;
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

    // Rounds that alternate which side goes first, each side into a stream of its own made for
    // the round, so that neither always meets the server fuller or warmer than the other.
    let mut rounds = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let floor = || runtime.block_on(plain_publish(&url, &messages, round));
        let ours = || {
            // From nothing: connecting, the stream made, the file opened, every event acked.
            let started = Instant::now();
            let replicator = Replicator::builder()
                .nats(url.clone())
                .stream(format!("OIDB{round}"))
                .subject_prefix(format!("oidb{round}"))
                .consumer(format!("round-{round}"))
                .build(&path)
                .unwrap();
            let progress = runtime.block_on(replicator.run(|_| {})).unwrap();
            assert_eq!(progress.checkpoint, events as u64);
            started.elapsed()
        };
        let timed = |side: &dyn Fn() -> Duration| Turn::timed(side, server.pid(), events);
        let (floor, ours) = if round % 2 == 0 {
            let floor = timed(&floor);
            (floor, timed(&ours))
        } else {
            let ours = timed(&ours);
            (timed(&floor), ours)
        };
        rounds.push((floor, ours));
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        (
            values[values.len() / 2],
            values[0],
            values[values.len() - 1],
        )
    };
    let (floor_rate, floor_min, floor_max) = median(rounds.iter().map(|r| r.0.rate).collect());
    let (our_rate, our_min, our_max) = median(rounds.iter().map(|r| r.1.rate).collect());
    let (ratio, ratio_min, ratio_max) =
        median(rounds.iter().map(|r| r.1.rate / r.0.rate).collect());
    let cpu = |pick: &dyn Fn(&(Turn, Turn)) -> f64| median(rounds.iter().map(pick).collect()).0;
    println!(
        "replicate throughput ({events} events, {DEFAULT_IN_FLIGHT} acks in flight; median of \
         {ROUNDS} rounds, min–max):"
    );
    println!(
        "  async-nats publish (floor)  {floor_rate:>10.0} events/s  ({floor_min:.0}–{floor_max:.0})"
    );
    println!(
        "  oidb replicate              {our_rate:>10.0} events/s  ({our_min:.0}–{our_max:.0})"
    );
    println!(
        "  ratio                       {:>10.1} %  ({:.1}–{:.1}; goal: at least 80 %)",
        100.0 * ratio,
        100.0 * ratio_min,
        100.0 * ratio_max
    );
    println!(
        "CPU per event (median; the client's process, every thread, and nats-server's): \
         async-nats {:.1} µs + server {:.1} µs, oidb replicate {:.1} µs + server {:.1} µs",
        cpu(&|r| r.0.client_cpu),
        cpu(&|r| r.0.server_cpu),
        cpu(&|r| r.1.client_cpu),
        cpu(&|r| r.1.server_cpu),
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

/// One side's turn in a throughput round: its rate, and the CPU per event that it and the
/// server spent (from `/proc`, in 10 ms ticks; NaN where `/proc` is not there).
struct Turn {
    rate: f64,
    client_cpu: f64,
    server_cpu: f64,
}

impl Turn {
    fn timed(side: &dyn Fn() -> Duration, server: Option<u32>, events: usize) -> Turn {
        let server_cpu = || server.and_then(cpu_time::of_process);
        let (client_before, server_before) = (cpu_time::process(), server_cpu());
        let took = side();
        let per_event = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
            (Some(before), Some(after)) => {
                (after.saturating_sub(before)).as_secs_f64() * 1e6 / events as f64
            }
            _ => f64::NAN,
        };
        Turn {
            rate: events as f64 / took.as_secs_f64(),
            client_cpu: per_event(client_before, cpu_time::process()),
            server_cpu: per_event(server_before, server_cpu()),
        }
    }
}

/// Each event's subject (past its prefix), id and export bytes, as the replicator publishes
/// them.
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
                    ".{}.{}",
                    encode_token(&store_id),
                    encode_token(&event.intent_id)
                ),
                event.id.to_string(),
                Bytes::copy_from_slice(line),
            )
        })
        .collect()
}

/// Publishes every message with `DEFAULT_IN_FLIGHT` acks awaited in order, into a stream of
/// the round's own; how long it took from connecting to the last ack (as the replicator is
/// timed).
async fn plain_publish(url: &str, messages: &[(String, String, Bytes)], round: usize) -> Duration {
    let started = Instant::now();
    let client = async_nats::connect(url).await.unwrap();
    let context = async_nats::jetstream::new(client);
    let prefix = format!("floor{round}");
    context
        .create_stream(Config {
            name: format!("FLOOR{round}"),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window: Duration::from_secs(120),
            ..Config::default()
        })
        .await
        .unwrap();
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
                .send_publish(format!("{prefix}{subject}"), publish)
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
            let mut last = 0;
            for b in 0..LAG_BATCHES {
                let events = (0..LAG_BATCH).map(|i| {
                    NewEvent::new("lag", EventType::Comment, "agent")
                        .payload(json!({"b": b, "i": i}))
                });
                let appended = store.append_batch(events).unwrap();
                last = appended.last().unwrap().position;
                committed.lock().unwrap().push_back((last, Instant::now()));
                std::thread::sleep(Duration::from_millis(10));
            }
            // The replicator may have taken every batch off the queue already.
            last
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
                acks.push(context.send_publish("floor0.lag.x", publish).await.unwrap());
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
