//! CPU and latency of single appends: the comparison benchmark's events, one per call, from one
//! thread or from several, into a new store. A fixed workload to profile the write path of small
//! commits with, e.g. `perf record -g` or `strace -f -c`.
//!
//! ```sh
//! cargo run --release --example single_cpu -- 5000 /tmp/single-cpu            # durable, 1 thread
//! cargo run --release --example single_cpu -- 5000 /tmp/single-cpu deferred   # no fsync
//! cargo run --release --example single_cpu -- 5000 /tmp/single-cpu durable 16 # 16 threads
//! ```
//!
//! Prints the wall time, events per second, and the CPU time of the whole process (every thread)
//! per event. CPU times come from `/proc`, so they show on Linux only.

#[path = "../benches/compare/cpu_time.rs"]
#[allow(dead_code)]
mod cpu_time;
#[path = "../benches/compare/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::path::Path;
use std::time::{Duration, Instant};

use oidb::{Durability, NewEvent, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(Ok(5_000), |a| a.parse())?;
    let dir = args.next().unwrap_or_else(|| "target/single-cpu".into());
    let deferred = args.next().is_some_and(|a| a == "deferred");
    let threads: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    std::fs::create_dir_all(&dir)?;
    let path = Path::new(&dir).join("single-cpu.oidb");
    let _ = std::fs::remove_file(&path);

    let w = workload::Workload::new();
    if !deferred && threads == 1 {
        println!(
            "floor: {:.1} µs per line written over zeroed space, fdatasync after each",
            in_place_floor(
                &Path::new(&dir).join("single-cpu-floor"),
                &w,
                events.min(2_000)
            )?
        );
    }
    let per_thread = events / threads;
    let work: Vec<Vec<NewEvent>> = (0..threads)
        .map(|t| w.new_events(t * per_thread..(t + 1) * per_thread))
        .collect();
    let mut builder = Store::builder();
    if deferred {
        builder = builder.durability(Durability::Deferred {
            window: Duration::from_secs(3600),
        });
    }
    let store = builder.open(&path)?;

    let process = cpu_time::process();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for events in work {
            let store = store.clone();
            scope.spawn(move || append_each(&store, events).expect("append"));
        }
    });
    let wall = start.elapsed();
    let process = cpu_time::process().zip(process).map(|(b, a)| b - a);
    let n = (per_thread * threads) as f64;
    println!(
        "{n} single appends from {threads} thread(s), {}: wall {:.3} s ({:.0} events/s, {:.1} µs each); CPU per event: process {}",
        if deferred { "deferred" } else { "durable" },
        wall.as_secs_f64(),
        n / wall.as_secs_f64(),
        wall.as_secs_f64() * 1e6 / n,
        process.map_or("n/a".into(), |t| format!("{:.1} µs", t.as_secs_f64() * 1e6 / n)),
    );
    store.close()?;
    Ok(())
}

/// The appends, one event per call: the part a profile should look at.
#[inline(never)]
fn append_each(store: &Store, events: Vec<NewEvent>) -> oidb::Result<()> {
    for event in events {
        drop(store.append(event)?);
    }
    Ok(())
}

/// The disk's floor for one durable append just now: µs per JSONL line written over a file
/// already filled with zeros and synced, `fdatasync` after each (what the write-ahead log does).
fn in_place_floor(path: &Path, w: &workload::Workload, lines: u64) -> std::io::Result<f64> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut file = std::fs::File::create(path)?;
    file.write_all(&vec![0; 4 << 20])?;
    file.sync_all()?;
    let mut offset = 0;
    let start = Instant::now();
    for i in 0..lines {
        let line = w.jsonl_line(&w.event(i));
        file.write_all_at(line.as_bytes(), offset)?;
        offset += line.len() as u64;
        file.sync_data()?;
    }
    let per_line = start.elapsed().as_secs_f64() * 1e6 / lines as f64;
    std::fs::remove_file(path)?;
    Ok(per_line)
}
