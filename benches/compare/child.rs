//! Work done in a child process (the benchmark binary started again with `--child`): peak memory
//! is the child's own `VmHWM`, and a child can be killed mid-append to test reopening.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sqlite_side::{self, Synchronous};
use crate::workload::Workload;

/// `VmHWM` (peak resident set) of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the child side of `--child <args>`.
pub fn run(args: &[String]) {
    let arg = |i: usize| args.get(i).map_or("", String::as_str);
    let path = Path::new(arg(2));
    let number: u64 = arg(3).parse().expect("a count or a start index");
    let workload = Workload::new();
    match (arg(0), arg(1)) {
        ("rss", side) => {
            let baseline = peak_rss_kib();
            append_batches(side, path, &workload, number);
            println!("peak_rss_kib {} baseline_kib {baseline}", peak_rss_kib());
        }
        ("append", side) => append_until_killed(side, path, &workload, number),
        other => panic!("unknown child task {other:?}"),
    }
}

/// Appends `count` events in batches of 1,000 with default settings.
fn append_batches(side: &str, path: &Path, workload: &Workload, count: u64) {
    match side {
        "oidb" => {
            let store = oidb::Store::open(path).expect("open store");
            let mut next = 0;
            while next < count {
                let end = (next + 1_000).min(count);
                let batch: Vec<_> = (next..end)
                    .map(|i| workload.new_event(&workload.event(i)))
                    .collect();
                store.append_batch(batch).expect("append batch");
                next = end;
            }
        }
        "sqlite" => {
            let mut conn = sqlite_side::open(path, Synchronous::Full);
            let mut next = 0;
            while next < count {
                let end = (next + 1_000).min(count);
                let rows: Vec<_> = (next..end)
                    .map(|i| sqlite_side::row(workload, &workload.event(i)))
                    .collect();
                sqlite_side::append_batch(&mut conn, &rows);
                next = end;
            }
        }
        other => panic!("unknown side {other}"),
    }
}

/// Appends durable single events from index `start` until killed; says `appending` once the
/// first is committed.
fn append_until_killed(side: &str, path: &Path, workload: &Workload, start: u64) {
    let announce = || {
        println!("appending");
        std::io::stdout().flush().expect("stdout");
    };
    match side {
        "oidb" => {
            let store = oidb::Store::open(path).expect("open store");
            for i in start.. {
                store
                    .append(workload.new_event(&workload.event(i)))
                    .expect("append");
                if i == start {
                    announce();
                }
            }
        }
        "sqlite" => {
            let conn = sqlite_side::open(path, Synchronous::Full);
            for i in start.. {
                sqlite_side::append_one(&conn, &sqlite_side::row(workload, &workload.event(i)));
                if i == start {
                    announce();
                }
            }
        }
        other => panic!("unknown side {other}"),
    }
}

fn child(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the benchmark binary"));
    command.arg("--child").args(args);
    command
}

/// Peak RSS (KiB) of a child that appends `count` events to a new file at `path`, and its
/// baseline before opening anything.
pub fn measure_rss(side: &str, path: &Path, count: u64) -> (u64, u64) {
    let output = child(&[
        "rss",
        side,
        path.to_str().expect("utf-8 path"),
        &count.to_string(),
    ])
    .stderr(Stdio::inherit())
    .output()
    .expect("run child");
    assert!(output.status.success(), "rss child failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let peak = fields.get(1).and_then(|v| v.parse().ok()).expect("peak");
    let baseline = fields
        .get(3)
        .and_then(|v| v.parse().ok())
        .expect("baseline");
    (peak, baseline)
}

/// Starts a child appending to `path` from event `start`, lets it run for `run_for` after its
/// first commit, then kills it with SIGKILL.
pub fn kill_while_appending(side: &str, path: &Path, start: u64, run_for: Duration) {
    let mut process = child(&[
        "append",
        side,
        path.to_str().expect("utf-8 path"),
        &start.to_string(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("start child");
    let stdout = process.stdout.take().expect("child stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("child says it is appending");
    assert_eq!(line.trim(), "appending", "child did not start appending");
    std::thread::sleep(run_for);
    process.kill().expect("SIGKILL the child");
    let _ = process.wait();
}
