//! CPU per event of batched appends: the comparison benchmark's events, 1,000 per commit, into a
//! new store, timed alone (the events are generated first). A fixed workload to profile the write
//! path with, e.g. `perf record -g` or `valgrind --tool=callgrind`.
//!
//! ```sh
//! cargo run --release --example batch_cpu -- 100000 /tmp/batch-cpu            # durable commits
//! cargo run --release --example batch_cpu -- 100000 /tmp/batch-cpu deferred   # no fsync
//! ```
//!
//! Prints the wall time, the CPU time of the whole process (every thread) and of the calling
//! thread alone (what a single appender waits for), per event. CPU times come from `/proc`, so
//! they show on Linux only.

#[path = "../benches/compare/cpu_time.rs"]
#[allow(dead_code)]
mod cpu_time;
#[path = "../benches/compare/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::path::Path;
use std::time::{Duration, Instant};

use oidb::{Durability, NewEvent, Store};

const BATCH: u64 = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let dir = args.next().unwrap_or_else(|| "target/batch-cpu".into());
    let deferred = args.next().is_some_and(|a| a == "deferred");
    std::fs::create_dir_all(&dir)?;
    let path = Path::new(&dir).join("batch-cpu.oidb");
    let _ = std::fs::remove_file(&path);

    let w = workload::Workload::new();
    let batches: Vec<Vec<NewEvent>> = (0..events.div_ceil(BATCH))
        .map(|b| w.new_events(b * BATCH..((b + 1) * BATCH).min(events)))
        .collect();
    let mut builder = Store::builder();
    if deferred {
        builder = builder.durability(Durability::Deferred {
            window: Duration::from_secs(3600),
        });
    }
    let store = builder.open(&path)?;

    let (process, caller) = (cpu_time::process(), cpu_time::thread());
    let start = Instant::now();
    append_all(&store, batches)?;
    let wall = start.elapsed();
    let process = cpu_time::process().zip(process).map(|(b, a)| b - a);
    let caller = cpu_time::thread().zip(caller).map(|(b, a)| b - a);

    let per_event = |t: Duration| t.as_secs_f64() * 1e6 / events as f64;
    let show = |t: Option<Duration>| t.map_or("n/a".into(), |t| format!("{:.2} µs", per_event(t)));
    println!(
        "{events} events, {} commits: wall {:.3} s ({:.0} events/s); CPU per event: process {}, calling thread {}",
        if deferred { "deferred" } else { "durable" },
        wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64(),
        show(process),
        show(caller),
    );
    Ok(())
}

/// The appends, dropping what they answer as a caller would: the part a profile should look at.
#[inline(never)]
fn append_all(store: &Store, batches: Vec<Vec<NewEvent>>) -> oidb::Result<()> {
    for batch in batches {
        drop(store.append_batch(batch)?);
    }
    Ok(())
}
