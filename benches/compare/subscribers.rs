//! Subscriber delivery: how long a committed event takes to reach its subscribers, and what
//! sixteen subscribers cost the writers. oidb only: SQLite has no subscriptions to compare.

use std::collections::HashMap;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oidb::{Delivery, Durability, Event, Filter, NewEvent, Start, Store, Subscription};

use crate::cpu_time;
use crate::workload::Workload;

/// When one event reached one subscriber: its position, the `created_at` the writer stamped on it,
/// and the wall-clock time `recv()` returned it, both in microseconds since the Unix epoch.
struct Arrival {
    position: u64,
    stamped: f64,
    received: f64,
}

/// Microseconds since the Unix epoch, by the wall clock (the clock `created_at` is stamped with).
fn wall_micros() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
        * 1e6
}

/// What one subscriber saw: what it noted of each event, and how often it fell back to reading
/// from disk.
struct Received<T> {
    noted: Vec<T>,
    fallbacks: u64,
}

/// Receives `count` events on its own thread, noting each with `note` as it arrives.
fn receive<T: Send + 'static>(
    mut subscription: Subscription,
    count: usize,
    note: fn(&Event) -> T,
) -> JoinHandle<Received<T>> {
    std::thread::spawn(move || {
        let mut noted = Vec::with_capacity(count);
        while noted.len() < count {
            match subscription.recv() {
                Ok(Some(Delivery::Event(event))) => noted.push(note(&event)),
                Ok(Some(Delivery::CaughtUp { .. })) => {}
                Ok(None) => break,
                Err(e) => panic!("subscription failed: {e}"),
            }
        }
        Received {
            noted,
            fallbacks: subscription.fallbacks(),
        }
    })
}

/// An arrival, as the latency runs note it.
fn arrival(event: &Event) -> Arrival {
    Arrival {
        received: wall_micros(),
        position: event.position,
        stamped: event.created_at.timestamp_micros() as f64,
    }
}

/// Delivery latencies, in microseconds, over every (event, subscriber) pair. The commit itself
/// happens inside `append()` and no public call tells when, so these bracket commit-to-receive.
pub struct Latencies {
    /// Upper bound: from the `created_at` the writer stamps on the event (under the commit lock,
    /// as it places the event; then it hashes it, writes its rows and commits) to `recv()`
    /// returning. Wall clock, the stamp truncated to whole microseconds.
    pub from_stamp: Vec<f64>,
    /// Lower bound: from `append()` returning to `recv()` returning. The store hands the commit to
    /// every subscriber after the commit and before it answers the appender, so this is
    /// commit-to-receive less that hand-over (negative when a subscriber has it first).
    pub from_answer: Vec<f64>,
    /// From the stamp to the append's answer, per append: the width of the bracket (writing and
    /// committing the event, handing it to the subscribers, answering).
    pub stamp_to_answer: Vec<f64>,
}

/// Appends delivered before the timed ones and not counted: a subscription's first reads
/// (opening the log's table, cold caches) are paid once, not per event.
pub const WARM_UP: usize = 10;

/// Delivery latencies to `subscribers` subscribers of `count` appends paced `pace` apart, so
/// that each is delivered on its own. Commits are not synced (`Durability::Deferred`): the
/// figures are the commit and the hand-over, not the disk. The events carry no `created_at`, so
/// the writer stamps it.
pub fn delivery_latencies(
    path: &Path,
    w: &Workload,
    subscribers: usize,
    count: usize,
    pace: Duration,
) -> Latencies {
    let store = Store::builder()
        .durability(Durability::Deferred {
            window: Duration::from_secs(60),
        })
        .open(path)
        .expect("open store");
    let receivers: Vec<_> = (0..subscribers)
        .map(|_| {
            let subscription = store
                .subscribe(Filter::new(), Start::Now)
                .expect("subscribe");
            receive(subscription, WARM_UP + count, arrival)
        })
        .collect();
    let mut answers = HashMap::with_capacity(count);
    let mut stamp_to_answer = Vec::with_capacity(count);
    for i in 0..(WARM_UP + count) as u64 {
        let g = w.event(i);
        let event = NewEvent::new(
            w.intent(g.intent),
            w.event_type(g.kind).clone(),
            w.actor(g.actor),
        )
        .id(g.id)
        .payload(g.payload);
        let stored = store.append(event).expect("append");
        let answered = wall_micros();
        if i >= WARM_UP as u64 {
            answers.insert(stored.position, answered);
            stamp_to_answer.push(answered - stored.created_at.timestamp_micros() as f64);
        }
        std::thread::sleep(pace);
    }
    let mut latencies = Latencies {
        from_stamp: Vec::with_capacity(count * subscribers),
        from_answer: Vec::with_capacity(count * subscribers),
        stamp_to_answer,
    };
    for receiver in receivers {
        for arrival in receiver.join().expect("subscriber thread").noted {
            if arrival.position <= WARM_UP as u64 {
                continue;
            }
            latencies
                .from_stamp
                .push(arrival.received - arrival.stamped);
            latencies
                .from_answer
                .push(arrival.received - answers[&arrival.position]);
        }
    }
    drop(store);
    latencies
}

/// The `p`-th percentile (0–100) of `values`.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// Appending with subscribers watching: the rate, how often the subscribers fell back to
/// reading from disk in all, and the CPU the whole process spent per event (where the system
/// says: Linux's `/proc`).
pub struct Watched {
    pub events_per_second: f64,
    pub fallbacks: u64,
    pub cpu_micros_per_event: Option<f64>,
}

/// Appends `count` events in batches of `batch` (durable commits), with `subscribers`
/// subscribers each receiving every event on its own thread and noting its position (no clock
/// reads: only what receiving costs).
pub fn batched_rate_with_subscribers(
    path: &Path,
    w: &Workload,
    subscribers: usize,
    count: u64,
    batch: u64,
) -> Watched {
    let store = Store::open(path).expect("open store");
    let receivers: Vec<_> = (0..subscribers)
        .map(|_| {
            let subscription = store
                .subscribe(Filter::new(), Start::Now)
                .expect("subscribe");
            receive(subscription, count as usize, |event| event.position)
        })
        .collect();
    let cpu_before = cpu_time::process();
    let mut spent = Duration::ZERO;
    let mut next = 0;
    while next < count {
        let end = (next + batch).min(count);
        let events = w.new_events(next..end);
        let start = Instant::now();
        store.append_batch(events).expect("append batch");
        spent += start.elapsed();
        next = end;
    }
    let mut fallbacks = 0;
    for receiver in receivers {
        let received = receiver.join().expect("subscriber thread");
        assert!(
            received.noted.into_iter().eq(1..=count),
            "a subscriber missed events or had them out of order"
        );
        fallbacks += received.fallbacks;
    }
    let cpu = cpu_time::process()
        .zip(cpu_before)
        .map(|(after, before)| (after - before).as_secs_f64());
    Watched {
        events_per_second: count as f64 / spent.as_secs_f64(),
        fallbacks,
        cpu_micros_per_event: cpu.map(|seconds| seconds * 1e6 / count as f64),
    }
}
