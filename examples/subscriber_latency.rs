//! How long a committed event takes to reach its subscribers: the delivery scenario of
//! `cargo bench --bench compare`, alone. Appends one event at a time, paced 500 µs apart, commits
//! not synced, with subscribers that each receive every event on a thread of their own.
//!
//! ```sh
//! cargo run --release --example subscriber_latency -- 2000 /tmp/subscriber-latency      # 16 subscribers
//! cargo run --release --example subscriber_latency -- 2000 /tmp/subscriber-latency 1    # one
//! cargo run --release --example subscriber_latency -- 2000 /tmp/subscriber-latency 16 3 # three runs
//! ```
//!
//! Prints, per run, the p50 and p99 in microseconds of the bracket the comparison reports: from
//! the `created_at` the writer stamps to `recv()` returning (an upper bound of commit to
//! receive), from `append()` returning to `recv()` returning (a lower bound), and from the stamp
//! to the append's answer (the append's own work and the hand-over).

#[path = "../benches/compare/cpu_time.rs"]
#[allow(dead_code)]
mod cpu_time;
#[path = "../benches/compare/subscribers.rs"]
#[allow(dead_code)]
mod subscribers;
#[path = "../benches/compare/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::path::Path;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let dir = args
        .next()
        .unwrap_or_else(|| "target/subscriber-latency".into());
    let watchers: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let runs: usize = args.next().map_or(Ok(1), |a| a.parse())?;
    std::fs::create_dir_all(&dir)?;
    let path = Path::new(&dir).join("subscriber-latency.oidb");

    let w = workload::Workload::new();
    for run in 0..runs {
        let _ = std::fs::remove_file(&path);
        let mut l =
            subscribers::delivery_latencies(&path, &w, watchers, count, Duration::from_micros(500));
        let show = |values: &mut Vec<f64>| {
            format!(
                "p50 {:.0} µs, p99 {:.0} µs",
                subscribers::percentile(values, 50.0),
                subscribers::percentile(values, 99.0)
            )
        };
        println!(
            "run {}, {watchers} subscribers, {count} appends: stamp to receive {}; answer to receive {}; stamp to answer {}",
            run + 1,
            show(&mut l.from_stamp),
            show(&mut l.from_answer),
            show(&mut l.stamp_to_answer),
        );
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
