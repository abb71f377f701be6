//! What subscribers cost the writer: the comparison benchmark's events, 1,000 per commit, into a
//! new store, appended alone and then watched by subscribers that each receive every event on a
//! thread of their own (the subscriber-cost scenario of `cargo bench --bench compare`, alone). A
//! fixed workload to profile delivery with, e.g. `perf record --call-graph dwarf`.
//!
//! ```sh
//! cargo run --release --example subscriber_cpu -- 100000 /tmp/subscriber-cpu              # 16 subscribers, durable
//! cargo run --release --example subscriber_cpu -- 100000 /tmp/subscriber-cpu 16 deferred  # no fsync
//! cargo run --release --example subscriber_cpu -- 100000 /tmp/subscriber-cpu 16 durable 3 # three rounds
//! ```
//!
//! Each round appends the same events twice, alone and watched, in alternating order. For each
//! it prints the events per second (time spent in `append_batch`, as the comparison counts it),
//! the CPU time of the whole process per event (every thread: the writer's and the
//! subscribers'), of the appending thread alone, and of the subscribers' threads together
//! (from the scheduler's nanosecond count, steadier than the others' 10 ms ticks); then the
//! throughput the subscribers took. CPU times come from `/proc`, so they show on Linux only.

#[path = "../benches/compare/cpu_time.rs"]
mod cpu_time;
#[path = "../benches/compare/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oidb::{Delivery, Durability, Filter, NewEvent, Start, Store};

const BATCH: u64 = 1_000;

/// One measured pass.
struct Pass {
    events_per_second: f64,
    process: Option<Duration>,
    caller: Option<Duration>,
    subscribers: Option<Duration>,
    fallbacks: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let dir = args
        .next()
        .unwrap_or_else(|| "target/subscriber-cpu".into());
    let subscribers: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let deferred = args.next().is_some_and(|a| a == "deferred");
    let rounds: usize = args.next().map_or(Ok(1), |a| a.parse())?;
    std::fs::create_dir_all(&dir)?;
    let path = Path::new(&dir).join("subscriber-cpu.oidb");

    let w = workload::Workload::new();
    let per_event = |t: Option<Duration>| {
        t.map_or("n/a".into(), |t| {
            format!("{:.2} µs", t.as_secs_f64() * 1e6 / events as f64)
        })
    };
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [0, subscribers]
        } else {
            [subscribers, 0]
        };
        let mut rates = [0.0; 2];
        for watchers in order {
            let batches: Vec<Vec<NewEvent>> = (0..events.div_ceil(BATCH))
                .map(|b| w.new_events(b * BATCH..((b + 1) * BATCH).min(events)))
                .collect();
            let _ = std::fs::remove_file(&path);
            let pass = run(&path, deferred, watchers, events, batches)?;
            rates[usize::from(watchers != 0)] = pass.events_per_second;
            println!(
                "round {}, {watchers:>2} subscribers, {events} events, {} commits: {:.0} events/s; CPU per event: process {}, appending thread {}, subscribers' threads {}; fallbacks to disk {}",
                round + 1,
                if deferred { "deferred" } else { "durable" },
                pass.events_per_second,
                per_event(pass.process),
                per_event(pass.caller),
                per_event(pass.subscribers),
                pass.fallbacks,
            );
        }
        println!(
            "round {}: {subscribers} subscribers took {:.1}% of the append throughput",
            round + 1,
            (1.0 - rates[1] / rates[0]) * 100.0
        );
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Appends `batches` with `watchers` subscribers receiving every event; the figures of the pass.
fn run(
    path: &Path,
    deferred: bool,
    watchers: usize,
    events: u64,
    batches: Vec<Vec<NewEvent>>,
) -> oidb::Result<Pass> {
    let mut builder = Store::builder();
    if deferred {
        builder = builder.durability(Durability::Deferred {
            window: Duration::from_secs(3600),
        });
    }
    let store = builder.open(path)?;
    let receivers = (0..watchers)
        .map(|_| {
            let subscription = store.subscribe(Filter::new(), Start::Now)?;
            Ok(receive(subscription, events))
        })
        .collect::<oidb::Result<Vec<_>>>()?;
    let (process, caller) = (cpu_time::process(), cpu_time::thread());
    let spent = append_all(&store, batches)?;
    let (mut fallbacks, mut subscribers) = (0, Some(Duration::ZERO));
    for receiver in receivers {
        let (received, fell_back, cpu) = receiver.join().expect("subscriber thread")?;
        assert_eq!(received, events, "a subscriber missed events");
        fallbacks += fell_back;
        subscribers = subscribers.zip(cpu).map(|(sum, cpu)| sum + cpu);
    }
    let process = cpu_time::process().zip(process).map(|(b, a)| b - a);
    let caller = cpu_time::thread().zip(caller).map(|(b, a)| b - a);
    Ok(Pass {
        events_per_second: events as f64 / spent.as_secs_f64(),
        process,
        caller,
        subscribers,
        fallbacks,
    })
}

/// Receives `events` events in order on a thread of its own; how many, how often it fell back to
/// reading from disk, and the thread's CPU time.
fn receive(
    mut subscription: oidb::Subscription,
    events: u64,
) -> JoinHandle<oidb::Result<(u64, u64, Option<Duration>)>> {
    std::thread::spawn(move || {
        let start = cpu_time::thread_exact();
        let mut received = 0;
        while received < events {
            match subscription.recv()? {
                Some(Delivery::Event(event)) => {
                    received += 1;
                    assert_eq!(event.position, received, "out of order");
                }
                Some(Delivery::CaughtUp { .. }) => {}
                None => break,
            }
        }
        let fallbacks = subscription.fallbacks();
        drop(subscription);
        let cpu = cpu_time::thread_exact()
            .zip(start)
            .map(|(end, start)| end - start);
        Ok((received, fallbacks, cpu))
    })
}

/// The appends, dropping what they answer as a caller would; the time spent in them.
#[inline(never)]
fn append_all(store: &Store, batches: Vec<Vec<NewEvent>>) -> oidb::Result<Duration> {
    let mut spent = Duration::ZERO;
    for batch in batches {
        let start = Instant::now();
        drop(store.append_batch(batch)?);
        spent += start.elapsed();
    }
    Ok(spent)
}
