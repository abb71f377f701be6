//! Subscriber delivery: how long a committed event takes to reach its subscribers, and what
//! sixteen subscribers cost the writers. oidb only: SQLite has no subscriptions to compare.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use oidb::{Delivery, Durability, Filter, Start, Store, Subscription};

use crate::workload::Workload;

/// Receives `count` events on its own thread; returns when each arrived, by position.
fn receive(mut subscription: Subscription, count: usize) -> JoinHandle<Vec<(u64, Instant)>> {
    std::thread::spawn(move || {
        let mut arrivals = Vec::with_capacity(count);
        while arrivals.len() < count {
            match subscription.recv() {
                Ok(Some(Delivery::Event(event))) => arrivals.push((event.position, Instant::now())),
                Ok(Some(Delivery::CaughtUp { .. })) => {}
                Ok(None) => break,
                Err(e) => panic!("subscription failed: {e}"),
            }
        }
        arrivals
    })
}

/// Delivery latencies, in microseconds, over every (event, subscriber) pair.
pub struct Latencies {
    /// From the start of `append()` to `recv()` returning: an upper bound of commit-to-receive,
    /// since it includes the append's own work.
    pub from_start: Vec<f64>,
    /// From `append()` returning to `recv()` returning. The store hands events to subscribers
    /// right after the commit and before it answers the appender, so this is commit-to-receive
    /// less that hand-over (negative when a subscriber has it before the appender).
    pub from_ack: Vec<f64>,
    /// How long each `append()` took.
    pub appends: Vec<f64>,
}

/// Delivery latencies to `subscribers` subscribers of `count` appends paced `pace` apart, so
/// that each is delivered on its own. Commits are not synced (`Durability::Deferred`): the
/// figures are the commit and the hand-over, not the disk.
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
            receive(subscription, count)
        })
        .collect();
    let mut times = std::collections::HashMap::with_capacity(count);
    let mut appends = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let event = w.new_event(&w.event(i));
        let start = Instant::now();
        let stored = store.append(event).expect("append");
        let ack = Instant::now();
        times.insert(stored.position, (start, ack));
        appends.push(ack.duration_since(start).as_secs_f64() * 1e6);
        std::thread::sleep(pace);
    }
    let micros = |later: Instant, earlier: Instant| {
        if later >= earlier {
            later.duration_since(earlier).as_secs_f64() * 1e6
        } else {
            -(earlier.duration_since(later).as_secs_f64() * 1e6)
        }
    };
    let mut latencies = Latencies {
        from_start: Vec::with_capacity(count * subscribers),
        from_ack: Vec::with_capacity(count * subscribers),
        appends,
    };
    for receiver in receivers {
        for (position, arrived) in receiver.join().expect("subscriber thread") {
            let (start, ack) = times[&position];
            latencies.from_start.push(micros(arrived, start));
            latencies.from_ack.push(micros(arrived, ack));
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

/// Events per second appending `count` events in batches of `batch` (durable commits), with
/// `subscribers` subscribers each receiving every event on its own thread.
pub fn batched_rate_with_subscribers(
    path: &Path,
    w: &Workload,
    subscribers: usize,
    count: u64,
    batch: u64,
) -> f64 {
    let store = Store::open(path).expect("open store");
    let receivers: Vec<_> = (0..subscribers)
        .map(|_| {
            let subscription = store
                .subscribe(Filter::new(), Start::Now)
                .expect("subscribe");
            receive(subscription, count as usize)
        })
        .collect();
    let mut spent = Duration::ZERO;
    let mut next = 0;
    while next < count {
        let end = (next + batch).min(count);
        let events: Vec<_> = (next..end).map(|i| w.new_event(&w.event(i))).collect();
        let start = Instant::now();
        store.append_batch(events).expect("append batch");
        spent += start.elapsed();
        next = end;
    }
    for receiver in receivers {
        let arrivals = receiver.join().expect("subscriber thread");
        assert_eq!(arrivals.len() as u64, count, "a subscriber missed events");
    }
    count as f64 / spent.as_secs_f64()
}
