//! CPU per event of reads: the comparison benchmark's events appended once into a store, then
//! read back by full scans and by `get_events(intent, limit 100, newest first)`. A fixed workload
//! to profile the read path with, e.g. `perf record -g`.
//!
//! ```sh
//! cargo run --release --example read_cpu -- 100000 /tmp/read-cpu          # scans and queries
//! cargo run --release --example read_cpu -- 100000 /tmp/read-cpu scan     # scans only
//! cargo run --release --example read_cpu -- 100000 /tmp/read-cpu intent   # queries only
//! ```
//!
//! The store is made on the first run and reused by the next ones with the same count. Prints the
//! wall time and the calling thread's CPU time per event read; CPU times come from `/proc`, so
//! they show on Linux only.

#[path = "../benches/compare/cpu_time.rs"]
#[allow(dead_code)]
mod cpu_time;
#[path = "../benches/compare/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::path::Path;
use std::time::{Duration, Instant};

use oidb::{Durability, EventFilter, Store};

const BATCH: u64 = 1_000;
const SCANS: u32 = 5;
const QUERIES: usize = 3_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let dir = args.next().unwrap_or_else(|| "target/read-cpu".into());
    let only = args.next();
    std::fs::create_dir_all(&dir)?;
    let path = Path::new(&dir).join(format!("read-cpu-{events}.oidb"));
    let w = workload::Workload::new();
    if !path.exists() {
        fill(&path, &w, events)?;
    }
    let store = Store::open(&path)?;

    if only.as_deref() != Some("intent") {
        let (start, cpu_start) = (Instant::now(), cpu_time::thread());
        let mut read = 0u64;
        for _ in 0..SCANS {
            read += scan(&store)?;
        }
        report("full scan", read, start.elapsed(), cpu_start);
    }
    if only.as_deref() != Some("scan") {
        let (start, cpu_start) = (Instant::now(), cpu_time::thread());
        let read = newest_per_intent(&store, &w)?;
        report("get_events newest 100", read, start.elapsed(), cpu_start);
    }
    Ok(())
}

/// Appends the events, 1,000 per commit, without syncing each commit.
fn fill(path: &Path, w: &workload::Workload, events: u64) -> oidb::Result<()> {
    let store = Store::builder()
        .durability(Durability::Deferred {
            window: Duration::from_secs(3600),
        })
        .open(path)?;
    for b in 0..events.div_ceil(BATCH) {
        let batch = w.new_events(b * BATCH..((b + 1) * BATCH).min(events));
        store.append_batch(batch)?;
    }
    store.close()
}

#[inline(never)]
fn scan(store: &Store) -> oidb::Result<u64> {
    let mut read = 0;
    for event in store.scan(1)? {
        std::hint::black_box(event?);
        read += 1;
    }
    Ok(read)
}

#[inline(never)]
fn newest_per_intent(store: &Store, w: &workload::Workload) -> oidb::Result<u64> {
    let mut read = 0;
    for query in 0..QUERIES {
        let events = store.get_events(
            w.intent(query),
            EventFilter::new().limit(100).newest_first(),
        )?;
        read += events.len() as u64;
        std::hint::black_box(events);
    }
    Ok(read)
}

fn report(what: &str, read: u64, wall: Duration, cpu_start: Option<Duration>) {
    let cpu = cpu_time::thread().zip(cpu_start).map(|(b, a)| b - a);
    let per_event = |t: Duration| t.as_secs_f64() * 1e9 / read as f64;
    println!(
        "{what}: {read} events, wall {:.0} ns per event, CPU {}",
        per_event(wall),
        cpu.map_or("n/a".into(), |t| format!(
            "{:.0} ns per event",
            per_event(t)
        )),
    );
}
