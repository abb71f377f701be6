//! `cargo bench --bench compare`: oidb beside SQLite, fjall and the disk's floor, on the same generated
//! events, in one process and one run.
//!
//! - **oidb** through its public API, default settings (durable commits).
//! - **SQLite** (rusqlite, bundled) in WAL mode, one table with indexes on (intent, position),
//!   (type, position) and (time, position), prepared statements, the same payload bytes;
//!   `synchronous=FULL` for the figures compared, `NORMAL` reported beside them (not durable per
//!   commit).
//! - **fjall** 3 (an LSM-tree key-value store): the events by position and index keyspaces by
//!   intent, type and time, an event and its index entries in one write batch, the journal synced
//!   (`persist(SyncData)`) after each commit.
//! - **the floor**: the same events as JSONL lines appended to a plain file, `fdatasync` where
//!   the others commit.
//!
//! Beside them, oidb alone: delivery to subscribers in the writer's process, and readers in other
//! processes (the benchmark binary again) following the file while it is written.
//!
//! Each scenario runs several times per side; the table shows the median with min–max, and the
//! same figures go to `$OIDB_BENCH_JSON` (default `target/oidb-bench.json`). `OIDB_BENCH_QUICK=1`
//! runs a smaller version (100k events instead of 1M) in under a minute.

#[path = "compare/child.rs"]
mod child;
#[path = "compare/cpu_time.rs"]
#[allow(dead_code)]
mod cpu_time;
#[path = "compare/fjall_side.rs"]
mod fjall_side;
#[path = "compare/floor_side.rs"]
mod floor_side;
#[path = "compare/live_readers.rs"]
mod live_readers;
#[path = "compare/machine.rs"]
mod machine;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/sides.rs"]
mod sides;
#[path = "compare/sqlite_side.rs"]
mod sqlite_side;
#[path = "compare/subscribers.rs"]
mod subscribers;
#[path = "compare/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use oidb::{EventFilter, Query, Store};
use serde_json::json;

use fjall_side::Fjall;
use report::{Goal, Measure, Scenario};
use sides::{FjallLog, FloorLog, Log, OidbLog, SqliteLog};
use sqlite_side::Synchronous;
use workload::{Rng, Workload};

/// How big each scenario is.
struct Config {
    quick: bool,
    /// Events in the big log (batched appends, reads, size, memory, open).
    events: u64,
    /// Runs per side per scenario.
    runs: usize,
    /// Events already in the log before the durable scenarios start timing.
    prefill: u64,
    /// Durable single appends timed per run.
    durable_appends: u64,
    threads: u64,
    per_thread: u64,
    batch: u64,
    get_events_queries: usize,
    window_queries: usize,
    /// Paced appends whose delivery is timed, per run.
    deliveries: usize,
    /// Events appended per run with and without subscribers.
    subscribed_events: u64,
    /// Durable single appends per run with and without reader processes following.
    followed_appends: u64,
    /// Events appended in batches per run with and without reader processes following.
    followed_events: u64,
    /// Where the files go (removed at the end).
    dir: tempfile::TempDir,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("OIDB_BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let base = std::env::var_os("OIDB_BENCH_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&base).expect("create the benchmark directory");
        let dir = tempfile::Builder::new()
            .prefix("oidb-bench-")
            .tempdir_in(&base)
            .expect("temporary directory");
        if quick {
            Config {
                quick,
                events: 100_000,
                runs: 3,
                prefill: 10_000,
                durable_appends: 300,
                threads: 16,
                per_thread: 25,
                batch: 1_000,
                get_events_queries: 300,
                window_queries: 30,
                deliveries: 300,
                subscribed_events: 20_000,
                followed_appends: 2_000,
                followed_events: 50_000,
                dir,
            }
        } else {
            Config {
                quick,
                events: 1_000_000,
                runs: 5,
                prefill: 10_000,
                durable_appends: 2_000,
                threads: 16,
                per_thread: 125,
                batch: 1_000,
                get_events_queries: 2_000,
                window_queries: 200,
                deliveries: 2_000,
                subscribed_events: 100_000,
                followed_appends: 4_000,
                followed_events: 200_000,
                dir,
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn progress(what: &str) {
    eprintln!("[compare] {what}");
}

fn per_second(count: f64, elapsed: Duration) -> f64 {
    count / elapsed.as_secs_f64()
}

fn remove(path: &Path) {
    if path.is_dir() {
        // fjall's database directory.
        let _ = std::fs::remove_dir_all(path);
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

// ---- filling a log (untimed) ----

fn fill_oidb(store: &Store, w: &Workload, range: std::ops::Range<u64>, batch: u64) -> Duration {
    let mut spent = Duration::ZERO;
    let mut next = range.start;
    while next < range.end {
        let end = (next + batch).min(range.end);
        let events = w.new_events(next..end);
        let start = Instant::now();
        store.append_batch(events).expect("append batch");
        spent += start.elapsed();
        next = end;
    }
    spent
}

fn fill_sqlite(
    conn: &mut rusqlite::Connection,
    w: &Workload,
    range: std::ops::Range<u64>,
    batch: u64,
) -> Duration {
    let mut spent = Duration::ZERO;
    let mut next = range.start;
    while next < range.end {
        let end = (next + batch).min(range.end);
        let rows: Vec<_> = (next..end)
            .map(|i| sqlite_side::row(w, &w.event(i)))
            .collect();
        let start = Instant::now();
        sqlite_side::append_batch(conn, &rows);
        spent += start.elapsed();
        next = end;
    }
    spent
}

fn fill_fjall(db: &Fjall, w: &Workload, range: std::ops::Range<u64>, batch: u64) -> Duration {
    let mut spent = Duration::ZERO;
    let mut next = range.start;
    while next < range.end {
        let end = (next + batch).min(range.end);
        let rows: Vec<_> = (next..end)
            .map(|i| fjall_side::row(w, &w.event(i)))
            .collect();
        let start = Instant::now();
        db.append(&rows, true);
        spent += start.elapsed();
        next = end;
    }
    spent
}

fn fill_floor(
    file: &std::fs::File,
    w: &Workload,
    range: std::ops::Range<u64>,
    batch: u64,
) -> Duration {
    let mut spent = Duration::ZERO;
    let mut next = range.start;
    while next < range.end {
        let end = (next + batch).min(range.end);
        let lines: String = (next..end).map(|i| w.jsonl_line(&w.event(i))).collect();
        let start = Instant::now();
        floor_side::append_durable(file, &lines);
        spent += start.elapsed();
        next = end;
    }
    spent
}

// ---- scenarios ----

/// A fresh log of each side: oidb, SQLite FULL, SQLite NORMAL, the floor, fjall.
fn fresh_logs<'w>(cfg: &Config, w: &'w Workload, name: &str) -> Vec<Box<dyn Log + 'w>> {
    let paths = [
        cfg.path(&format!("{name}.oidb")),
        cfg.path(&format!("{name}.sqlite")),
        cfg.path(&format!("{name}-normal.sqlite")),
        cfg.path(&format!("{name}.jsonl")),
        cfg.path(&format!("{name}.fjall")),
    ];
    for path in &paths {
        remove(path);
    }
    let [oidb, sqlite, normal, floor, fjall] = paths;
    vec![
        Box::new(OidbLog::create(w, oidb)),
        Box::new(SqliteLog::create(w, sqlite, Synchronous::Full)),
        Box::new(SqliteLog::create(w, normal, Synchronous::Normal)),
        Box::new(FloorLog::create(w, floor)),
        Box::new(FjallLog::create(w, fjall)),
    ]
}

/// What each side spent in [`append_in_turns`]: wall time writing, and CPU time: the appending
/// thread's over the same calls, plus the side's own background threads' over the whole run.
struct Spent {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

/// Appends events `range` to every log, `batch` per commit, the sides taking turns batch by
/// batch so that they meet the same machine; returns the time each side spent writing.
fn append_in_turns(
    logs: &mut [Box<dyn Log + '_>],
    w: &Workload,
    range: std::ops::Range<u64>,
    batch: u64,
    one_commit_per_event: bool,
) -> Spent {
    let mut spent = vec![Duration::ZERO; logs.len()];
    let mut cpu = vec![Duration::ZERO; logs.len()];
    // A side's background threads run during the others' turns too (fjall's workers compact
    // whenever they are due), so their CPU is counted over the whole call, as the side's.
    let background = |logs: &[Box<dyn Log + '_>]| -> Vec<Duration> {
        logs.iter()
            .map(|log| {
                log.background_threads()
                    .iter()
                    .filter_map(|name| cpu_time::threads_named(name))
                    .sum()
            })
            .collect()
    };
    let background_before = background(logs);
    let mut next = range.start;
    let mut turn = 0;
    while next < range.end {
        let end = (next + batch).min(range.end);
        let events: Vec<_> = (next..end).map(|i| w.event(i)).collect();
        // Rotate who goes first, so no side always follows the same neighbour.
        for k in 0..logs.len() {
            let i = (turn + k) % logs.len();
            let log = &mut logs[i];
            log.prepare(&events);
            let cpu_before = cpu_time::thread_exact();
            spent[i] += if one_commit_per_event {
                log.append_each()
            } else {
                log.append_all()
            };
            if let (Some(before), Some(after)) = (cpu_before, cpu_time::thread_exact()) {
                cpu[i] += after.saturating_sub(before);
            }
        }
        turn += 1;
        next = end;
    }
    for ((cpu, after), before) in cpu.iter_mut().zip(background(logs)).zip(background_before) {
        *cpu += after.saturating_sub(before);
    }
    Spent { wall: spent, cpu }
}

/// Files the five sides' results into a scenario: oidb, SQLite FULL, SQLite NORMAL, the floor,
/// fjall.
fn file_rates(s: &mut Scenario, rates: &[Measure]) {
    s.oidb = rates[0].clone();
    s.sqlite = Some(rates[1].clone());
    s.sqlite_normal = Some(rates[2].clone());
    s.floor = Some(rates[3].clone());
    s.fjall = Some(rates[4].clone());
}

/// Durable single appends; and, from the same turns, the floor of a log written over
/// preallocated space, beside oidb (whose write-ahead log is such a log).
fn durable_single(cfg: &Config, w: &Workload) -> Vec<Scenario> {
    let mut s = Scenario::new(
        "durable_single_append",
        format!(
            "durable single appends, 1 thread ({} per run, log holds {} before)",
            cfg.durable_appends, cfg.prefill
        ),
        "events/s",
        Goal::Report,
    );
    s.note = "the sides take turns, 25 appends at a time, so each meets the same disk; the floor \
              appends to its file, so each fdatasync also records the file's new length"
        .into();
    let mut in_place = Scenario::new(
        "durable_single_in_place_floor",
        "durable single appends beside the floor of a log over preallocated space",
        "events/s",
        Goal::TimesFloorAtLeast(0.9),
    );
    in_place.note = "floor here: the same JSONL lines written one after the other over a file \
                     already filled with zeros and synced, fdatasync after each (what oidb's \
                     write-ahead log does); taking turns with the sides above"
        .into();
    let mut rates = vec![Measure::default(); 6];
    let timed = cfg.prefill..cfg.prefill + cfg.durable_appends;
    for run in 0..cfg.runs {
        progress(&format!(
            "durable single appends, run {}/{}",
            run + 1,
            cfg.runs
        ));
        let mut logs = fresh_logs(cfg, w, "single");
        let in_place_path = cfg.path("single-in-place.jsonl");
        logs.push(Box::new(FloorLog::preallocated(
            w,
            in_place_path,
            (cfg.prefill + cfg.durable_appends) * 1024,
        )));
        append_in_turns(&mut logs, w, 0..cfg.prefill, cfg.batch, false);
        let spent = append_in_turns(&mut logs, w, timed.clone(), 25, true).wall;
        for (rate, spent) in rates.iter_mut().zip(spent) {
            rate.push(per_second(cfg.durable_appends as f64, spent));
        }
        let paths: Vec<PathBuf> = logs.iter().map(|l| l.path().to_path_buf()).collect();
        drop(logs);
        paths.iter().for_each(|p| remove(p));
    }
    file_rates(&mut s, &rates);
    in_place.oidb = rates[0].clone();
    in_place.floor = Some(rates[5].clone());
    vec![s, in_place]
}

/// Runs `threads` threads that each call `work(thread)` once, all released together; returns the
/// wall time from release until the last finishes.
fn race<F>(threads: u64, work: F) -> Duration
where
    F: Fn(u64) + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let work = Arc::clone(&work);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                work(t);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("worker thread");
    }
    start.elapsed()
}

fn durable_threads(cfg: &Config, w: &Arc<Workload>) -> Vec<Scenario> {
    let total = cfg.threads * cfg.per_thread;
    let mut s = Scenario::new(
        "durable_16_threads",
        format!(
            "durable appends from {} threads, each waits for its own ack ({} per run)",
            cfg.threads, total
        ),
        "events/s",
        Goal::Report,
    );
    let mut grouped = Scenario::new(
        "durable_16_threads_grouped_floor",
        format!(
            "durable appends from {} threads beside the grouped floor",
            cfg.threads
        ),
        "events/s",
        Goal::TimesFloorAtLeast(0.9),
    );
    grouped.note = "floor here: the same threads write their JSONL lines over one preallocated \
                    file, and one fdatasync covers every line written before it started (the \
                    first thread to find no sync under way syncs for all): a perfect group commit"
        .into();
    let mut grouped_floor = Measure::default();
    s.note = "SQLite shares one connection behind a mutex (in our trials faster than a connection \
              per thread with a busy timeout, whose writers wait in SQLite's busy handler); the \
              floor's threads write with O_APPEND and each calls fdatasync; fjall's threads share \
              one Database, each committing its own write batch (positions taken and committed \
              under one lock) and then calling persist(SyncData) itself"
        .into();
    let (mut sqlite, mut normal, mut floor, mut fjall) = (
        Measure::default(),
        Measure::default(),
        Measure::default(),
        Measure::default(),
    );
    let first = cfg.prefill;
    let per_thread = cfg.per_thread;
    let index = move |t: u64, k: u64| first + t * per_thread + k;
    for run in 0..cfg.runs {
        progress(&format!(
            "durable appends from {} threads, run {}/{}",
            cfg.threads,
            run + 1,
            cfg.runs
        ));
        {
            let path = cfg.path("threads.oidb");
            let store = Store::open(&path).expect("open");
            fill_oidb(&store, w, 0..cfg.prefill, cfg.batch);
            let events: Arc<Vec<Mutex<Vec<oidb::NewEvent>>>> = Arc::new(
                (0..cfg.threads)
                    .map(|t| {
                        Mutex::new(
                            (0..per_thread)
                                .map(|k| w.new_event(&w.event(index(t, k))))
                                .collect(),
                        )
                    })
                    .collect(),
            );
            let store2 = store.clone();
            let elapsed = race(cfg.threads, move |t| {
                let mine = std::mem::take(&mut *events[t as usize].lock().expect("events"));
                for event in mine {
                    store2.append(event).expect("append");
                }
            });
            s.oidb.push(per_second(total as f64, elapsed));
            drop(store);
            remove(&path);
        }
        for (sync, measure) in [
            (Synchronous::Full, &mut sqlite),
            (Synchronous::Normal, &mut normal),
        ] {
            let path = cfg.path("threads.sqlite");
            let mut conn = sqlite_side::open(&path, sync);
            fill_sqlite(&mut conn, w, 0..cfg.prefill, cfg.batch);
            let conn = Arc::new(Mutex::new(conn));
            let w2 = Arc::clone(w);
            // Rows borrow the workload, so each thread builds its own before the release.
            let conn2 = Arc::clone(&conn);
            let ready = Arc::new(Barrier::new(cfg.threads as usize));
            let elapsed = race_prepared(cfg.threads, ready, move |t, ready: &Barrier| {
                let rows: Vec<_> = (0..per_thread)
                    .map(|k| sqlite_side::row(&w2, &w2.event(index(t, k))))
                    .collect();
                ready.wait();
                let started = Instant::now();
                for row in &rows {
                    sqlite_side::append_one(&conn2.lock().expect("connection"), row);
                }
                started
            });
            measure.push(per_second(total as f64, elapsed));
            drop(conn);
            remove(&path);
        }
        {
            let path = cfg.path("threads.jsonl");
            let file = floor_side::open(&path);
            fill_floor(&file, w, 0..cfg.prefill, cfg.batch);
            let elapsed = race_lines(cfg, w, per_thread, index, move |line| {
                floor_side::append_durable(&file, line);
            });
            floor.push(per_second(total as f64, elapsed));
            remove(&path);
        }
        {
            let path = cfg.path("threads-grouped.jsonl");
            remove(&path);
            let log = floor_side::Grouped::new(&path, total * 1024);
            let elapsed = race_lines(cfg, w, per_thread, index, move |line| {
                log.write_durable(line);
            });
            grouped_floor.push(per_second(total as f64, elapsed));
            remove(&path);
        }
        {
            let path = cfg.path("threads.fjall");
            remove(&path);
            let db = Arc::new(Fjall::open(&path));
            fill_fjall(&db, w, 0..cfg.prefill, cfg.batch);
            let db2 = Arc::clone(&db);
            let w2 = Arc::clone(w);
            let ready = Arc::new(Barrier::new(cfg.threads as usize));
            let elapsed = race_prepared(cfg.threads, ready, move |t, ready: &Barrier| {
                let rows: Vec<_> = (0..per_thread)
                    .map(|k| fjall_side::row(&w2, &w2.event(index(t, k))))
                    .collect();
                ready.wait();
                let started = Instant::now();
                for row in &rows {
                    db2.append(std::slice::from_ref(row), true);
                }
                started
            });
            fjall.push(per_second(total as f64, elapsed));
            drop(db);
            remove(&path);
        }
    }
    s.sqlite = Some(sqlite);
    s.sqlite_normal = Some(normal);
    s.floor = Some(floor);
    s.fjall = Some(fjall);
    grouped.oidb = s.oidb.clone();
    grouped.floor = Some(grouped_floor);
    vec![s, grouped]
}

/// Each of `cfg.threads` threads makes its `per_thread` events' JSONL lines (event
/// `index(thread, k)`), then, released with the others, hands each to `write`; the wall time as
/// [`race_prepared`] counts it.
fn race_lines(
    cfg: &Config,
    w: &Arc<Workload>,
    per_thread: u64,
    index: impl Fn(u64, u64) -> u64 + Send + Sync + 'static,
    write: impl Fn(&str) + Send + Sync + 'static,
) -> Duration {
    let w = Arc::clone(w);
    let ready = Arc::new(Barrier::new(cfg.threads as usize));
    race_prepared(cfg.threads, ready, move |t, ready: &Barrier| {
        let lines: Vec<_> = (0..per_thread)
            .map(|k| w.jsonl_line(&w.event(index(t, k))))
            .collect();
        ready.wait();
        let started = Instant::now();
        for line in &lines {
            write(line);
        }
        started
    })
}

/// Like [`race`], for work that prepares its input first: each thread prepares, waits on `ready`
/// with the others, and returns when it started; the wall time runs from the earliest start to
/// the last finish.
fn race_prepared<F>(threads: u64, ready: Arc<Barrier>, work: F) -> Duration
where
    F: Fn(u64, &Barrier) -> Instant + Send + Sync + 'static,
{
    let work = Arc::new(work);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let work = Arc::clone(&work);
            let ready = Arc::clone(&ready);
            std::thread::spawn(move || {
                let started = work(t, &ready);
                (started, Instant::now())
            })
        })
        .collect();
    let spans: Vec<(Instant, Instant)> = handles
        .into_iter()
        .map(|h| h.join().expect("worker thread"))
        .collect();
    let start = spans.iter().map(|s| s.0).min().expect("threads");
    let end = spans.iter().map(|s| s.1).max().expect("threads");
    end - start
}

/// The big log each side keeps for the read scenarios.
struct Logs {
    oidb: PathBuf,
    sqlite: PathBuf,
    floor: PathBuf,
    /// fjall's database directory.
    fjall: PathBuf,
}

/// Events in the smaller log that `get_events` also runs on (the quick run's big log).
const SMALL_LOG: u64 = 100_000;

/// A log of [`SMALL_LOG`] events on each side, filled as the batched scenario fills the big one
/// (untimed).
fn small_logs(cfg: &Config, w: &Workload) -> Logs {
    progress(&format!("filling logs of {SMALL_LOG} events"));
    let mut logs = fresh_logs(cfg, w, "small");
    append_in_turns(&mut logs, w, 0..SMALL_LOG, cfg.batch, false);
    let paths: Vec<PathBuf> = logs.iter().map(|l| l.path().to_path_buf()).collect();
    drop(logs);
    remove(&paths[2]);
    Logs {
        oidb: paths[0].clone(),
        sqlite: paths[1].clone(),
        floor: paths[3].clone(),
        fjall: paths[4].clone(),
    }
}

/// Batched appends; and the floor synced once at the end, beside oidb.
fn batched(cfg: &Config, w: &Workload) -> (Vec<Scenario>, Logs) {
    let mut s = Scenario::new(
        "batched_append",
        format!(
            "batched appends, {} per commit ({} events per run)",
            cfg.batch, cfg.events
        ),
        "events/s",
        Goal::TimesSqliteAtLeast(1.5),
    );
    s.note = "the floor calls fdatasync once per batch; the sides take turns batch by batch".into();
    let mut synced_once = Scenario::new(
        "batched_append_floor_synced_once",
        "batched appends beside the floor synced once at the end",
        "events/s",
        Goal::Report,
    );
    synced_once.note = "floor here: the same JSONL lines appended a batch per write and one \
                        fdatasync after the last, on its own after the sides' turns (its \
                        unsynced writes would reach the disk during theirs): writing the bytes, \
                        with no commit durable before the end"
        .into();
    let mut cpu = Scenario::new(
        "batched_append_cpu_per_event",
        format!("CPU per event, batched appends, {} per commit", cfg.batch),
        "µs",
        Goal::AtMost(4.0),
    );
    cpu.note = "CPU time of the appending thread over each side's turns above, plus that of the \
                side's own background threads over the whole run (fjall's workers, which flush \
                and compact during the other sides' turns too; oidb's publisher), per event; \
                from the scheduler's counts in /proc"
        .into();
    let (mut cpu_sqlite, mut cpu_fjall) = (Measure::default(), Measure::default());
    let mut once = Measure::default();
    let mut rates = vec![Measure::default(); 5];
    let mut kept = None;
    for run in 0..cfg.runs {
        progress(&format!("batched appends, run {}/{}", run + 1, cfg.runs));
        let mut logs = fresh_logs(cfg, w, "log");
        let spent = append_in_turns(&mut logs, w, 0..cfg.events, cfg.batch, false);
        for (rate, spent) in rates.iter_mut().zip(spent.wall) {
            rate.push(per_second(cfg.events as f64, spent));
        }
        cpu.oidb
            .push(spent.cpu[0].as_secs_f64() * 1e6 / cfg.events as f64);
        for (side, measure) in [(1, &mut cpu_sqlite), (4, &mut cpu_fjall)] {
            measure.push(spent.cpu[side].as_secs_f64() * 1e6 / cfg.events as f64);
        }
        let paths: Vec<PathBuf> = logs.iter().map(|l| l.path().to_path_buf()).collect();
        drop(logs);
        remove(&paths[2]);
        once.push(floor_synced_once(cfg, w));
        kept = Some(Logs {
            oidb: paths[0].clone(),
            sqlite: paths[1].clone(),
            floor: paths[3].clone(),
            fjall: paths[4].clone(),
        });
    }
    file_rates(&mut s, &rates);
    synced_once.oidb = rates[0].clone();
    synced_once.floor = Some(once);
    cpu.sqlite = Some(cpu_sqlite);
    cpu.fjall = Some(cpu_fjall);
    (vec![s, synced_once, cpu], kept.expect("at least one run"))
}

/// Appends the batched scenario's events as JSONL lines, a batch per write, and syncs once after
/// the last; returns events per second, the final sync included.
fn floor_synced_once(cfg: &Config, w: &Workload) -> f64 {
    let path = cfg.path("log-synced-once.jsonl");
    remove(&path);
    let file = floor_side::open(&path);
    let mut spent = Duration::ZERO;
    let mut next = 0;
    while next < cfg.events {
        let end = (next + cfg.batch).min(cfg.events);
        let lines: String = (next..end).map(|i| w.jsonl_line(&w.event(i))).collect();
        let start = Instant::now();
        floor_side::append(&file, &lines);
        spent += start.elapsed();
        next = end;
    }
    let start = Instant::now();
    file.sync_data().expect("fdatasync");
    spent += start.elapsed();
    drop(file);
    remove(&path);
    per_second(cfg.events as f64, spent)
}

/// A file's apparent size and the disk space allocated to it, in bytes.
fn file_bytes(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).map_or((0, 0), |m| (m.len(), m.blocks() * 512))
}

/// Disk space per event (the goal's figure), and apparent size per event.
fn file_size(cfg: &Config, w: &Workload, logs: &Logs) -> Vec<Scenario> {
    let per_event = |bytes: u64| bytes as f64 / cfg.events as f64;
    let one = |v: f64| Measure { runs: vec![v] };
    let (oidb_len, oidb_disk) = {
        // The store and its write-ahead log, if it has one open (as SQLite's database and WAL).
        let mut wal = logs.oidb.as_os_str().to_owned();
        wal.push("-wal");
        let (len, disk) = file_bytes(&logs.oidb);
        let (wal_len, wal_disk) = file_bytes(Path::new(&wal));
        (len + wal_len, disk + wal_disk)
    };
    let (sqlite_len, sqlite_disk) = sqlite_side::file_bytes(&logs.sqlite);
    let (floor_len, floor_disk) = file_bytes(&logs.floor);
    let (fjall_len, fjall_disk) = fjall_side::dir_bytes(&logs.fjall);
    let mut disk = Scenario::new(
        "bytes_per_event",
        format!("disk space per event after {} appends", cfg.events),
        "bytes",
        Goal::TimesSqliteAtMost(1.0),
    );
    disk.note = "blocks allocated to the file(s) (SQLite: database and WAL; fjall: every file in \
                 its directory, journals included); redb grows its file \
                 ahead of use without writing it, so oidb's file is sparse"
        .into();
    disk.oidb = one(per_event(oidb_disk));
    disk.sqlite = Some(one(per_event(sqlite_disk)));
    disk.floor = Some(one(per_event(floor_disk)));
    disk.fjall = Some(one(per_event(fjall_disk)));
    let mut apparent = Scenario::new(
        "apparent_bytes_per_event",
        format!("apparent file size per event after {} appends", cfg.events),
        "bytes",
        Goal::Report,
    );
    apparent.note = "the length ls shows; a copy that does not keep holes takes this much".into();
    apparent.oidb = one(per_event(oidb_len));
    apparent.sqlite = Some(one(per_event(sqlite_len)));
    apparent.floor = Some(one(per_event(floor_len)));
    apparent.fjall = Some(one(per_event(fjall_len)));
    let mut minimal = Scenario::new(
        "bytes_per_event_minimal_sqlite",
        format!(
            "disk space per event after {} appends, beside SQLite's table without the chain's columns",
            cfg.events
        ),
        "bytes",
        Goal::Report,
    );
    minimal.note = "SQLite here: the same events, indexes and batches in a table of position, id, \
                    intent, type, actor, time and payload alone"
        .into();
    minimal.oidb = one(per_event(oidb_disk));
    minimal.sqlite = Some(one(per_event(minimal_sqlite_disk(cfg, w))));
    vec![disk, apparent, minimal]
}

/// The disk space of the events in SQLite's minimal table (database and WAL), filled as the
/// batched scenario fills the others.
fn minimal_sqlite_disk(cfg: &Config, w: &Workload) -> u64 {
    progress("filling SQLite's minimal table");
    let path = cfg.path("minimal.sqlite");
    remove(&path);
    let mut conn = sqlite_side::open_minimal(&path);
    let mut next = 0;
    while next < cfg.events {
        let end = (next + cfg.batch).min(cfg.events);
        let rows: Vec<_> = (next..end)
            .map(|i| sqlite_side::row(w, &w.event(i)))
            .collect();
        sqlite_side::append_batch_minimal(&mut conn, &rows);
        next = end;
    }
    drop(conn);
    let disk = sqlite_side::file_bytes(&path).1;
    remove(&path);
    disk
}

/// What a reading scenario does with the payloads of the events it gets.
#[derive(Clone, Copy, PartialEq)]
enum Payloads {
    /// Nothing: every side hands them back unparsed (oidb's binary form, the peers' text).
    Untouched,
    /// Reads each as a `serde_json::Value`: oidb decodes its binary form, the peers parse text.
    Read,
}

/// Reads every payload of `events` as a `Value` (see [`Payloads::Read`]).
fn read_payloads(events: &[oidb::Event]) {
    for event in events {
        std::hint::black_box(event.payload.as_value());
    }
}

/// Parses every payload of the peers' `events` into a `Value` (see [`Payloads::Read`]). The
/// values are returned to be kept as long as the events are, as oidb's events keep theirs: a
/// value dropped as soon as it is built would reuse the allocator's warm memory.
fn parse_payloads(events: &[sqlite_side::SqlEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .map(|event| serde_json::from_str(&event.payload).expect("stored payload is JSON"))
        .collect()
}

/// `get_events(intent, limit 100)` in one order: the newest events first, as a dashboard asks,
/// or the oldest first, as a reader catching up does; each payload left as it is or read.
fn get_events_by_intent(
    cfg: &Config,
    w: &Workload,
    logs: &Logs,
    events: u64,
    newest: bool,
    payloads: Payloads,
) -> Scenario {
    let big = events == cfg.events;
    let (order, key) = match (newest, big, payloads) {
        (true, true, Payloads::Untouched) => ("newest", "get_events_newest_100"),
        (false, true, Payloads::Untouched) => ("oldest", "get_events_oldest_100"),
        (true, false, Payloads::Untouched) => ("newest", "get_events_newest_100_small_log"),
        (false, false, Payloads::Untouched) => ("oldest", "get_events_oldest_100_small_log"),
        (true, _, Payloads::Read) => ("newest", "get_events_newest_100_payloads_read"),
        (false, _, Payloads::Read) => ("oldest", "get_events_oldest_100_payloads_read"),
    };
    let (read, goal) = match payloads {
        Payloads::Untouched => ("", Goal::TimesSqliteAtLeast(2.0)),
        Payloads::Read => (", every payload read as a Value", Goal::Report),
    };
    let mut s = Scenario::new(
        key,
        format!(
            "get_events(intent, limit 100, {order} first) on {events} events{read} ({} queries per run)",
            cfg.get_events_queries
        ),
        "queries/s",
        goal,
    );
    let filter = || {
        let filter = EventFilter::new().limit(100);
        if newest {
            filter.newest_first()
        } else {
            filter
        }
    };
    let store = Store::open(&logs.oidb).expect("open");
    let conn = sqlite_side::open(&logs.sqlite, Synchronous::Full);
    let db = Fjall::open(&logs.fjall);
    // All sides must answer the same.
    for i in 0..workload::INTENTS {
        let ours = store.get_events(w.intent(i), filter()).expect("get_events");
        let sqlite_events = sqlite_side::get_events(&conn, w.intent(i), 100, newest);
        let fjall_events = db.get_events(w.intent(i), 100, newest);
        for theirs in [&sqlite_events, &fjall_events] {
            assert_eq!(ours.len(), theirs.len());
            assert!(ours.iter().zip(theirs).all(|(a, b)| same_event(a, b)));
        }
        // The peers' chain columns are stand-ins, the same on both.
        assert!(sqlite_events
            .iter()
            .zip(&fjall_events)
            .all(|(a, b)| a.chain == b.chain));
    }
    let (mut sqlite, mut fjall) = (Measure::default(), Measure::default());
    for run in 0..cfg.runs {
        progress(&format!(
            "get_events {order} first, run {}/{}",
            run + 1,
            cfg.runs
        ));
        let intents: Vec<&str> = {
            let mut rng = Rng::new(7 + run as u64);
            (0..cfg.get_events_queries)
                .map(|_| w.intent(rng.below(workload::INTENTS)))
                .collect()
        };
        let start = Instant::now();
        for intent in &intents {
            let events = store.get_events(intent, filter()).expect("get_events");
            if payloads == Payloads::Read {
                read_payloads(&events);
            }
            std::hint::black_box(events);
        }
        s.oidb
            .push(per_second(intents.len() as f64, start.elapsed()));
        let start = Instant::now();
        for intent in &intents {
            let events = sqlite_side::get_events(&conn, intent, 100, newest);
            let values = match payloads {
                Payloads::Read => parse_payloads(&events),
                Payloads::Untouched => Vec::new(),
            };
            std::hint::black_box((events, values));
        }
        sqlite.push(per_second(intents.len() as f64, start.elapsed()));
        let start = Instant::now();
        for intent in &intents {
            let events = db.get_events(intent, 100, newest);
            let values = match payloads {
                Payloads::Read => parse_payloads(&events),
                Payloads::Untouched => Vec::new(),
            };
            std::hint::black_box((events, values));
        }
        fjall.push(per_second(intents.len() as f64, start.elapsed()));
    }
    s.sqlite = Some(sqlite);
    s.fjall = Some(fjall);
    s
}

/// Whether both sides read back the same event (fjall's are read back in SQLite's form). Both
/// payloads are parsed here, outside the timed loops.
fn same_event(ours: &oidb::Event, theirs: &sqlite_side::SqlEvent) -> bool {
    i64::try_from(ours.position) == Ok(theirs.position)
        && ours.id == theirs.id
        && ours.intent_id == theirs.intent_id
        && ours.event_type.as_str() == theirs.event_type
        && ours.actor == theirs.actor
        && ours.created_at == theirs.created_at
        && serde_json::from_str::<serde_json::Value>(&theirs.payload)
            .is_ok_and(|payload| ours.payload == payload)
}

fn type_in_window(cfg: &Config, w: &Workload, logs: &Logs) -> Scenario {
    let mut s = Scenario::new(
        "type_in_time_window",
        format!(
            "events of one type in a time window (a fifth of the log), limit 1000 ({} queries per run)",
            cfg.window_queries
        ),
        "queries/s",
        Goal::TimesSqliteAtLeast(2.0),
    );
    let store = Store::open(&logs.oidb).expect("open");
    let conn = sqlite_side::open(&logs.sqlite, Synchronous::Full);
    let span = cfg.events as i64 * workload::TIME_STEP_MICROS;
    let queries = |seed: u64, n: usize| -> Vec<(usize, i64, i64)> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let since = workload::START_MICROS + (rng.below(800) as i64 * span) / 1000;
                (rng.below(workload::TYPES), since, since + span / 5)
            })
            .collect()
    };
    let oidb_query = |(kind, since, until): (usize, i64, i64)| {
        Query::new()
            .event_type(w.event_type(kind).clone())
            .since(Workload::created_at(since))
            .until(Workload::created_at(until))
            .limit(1000)
    };
    for q in queries(99, 10) {
        let ours = store.query(&oidb_query(q)).expect("query").events;
        let theirs = sqlite_side::type_in_window(&conn, w.type_name(q.0), q.1, q.2, 1000);
        assert_eq!(ours.len(), theirs.len());
        assert!(ours.iter().zip(&theirs).all(|(a, b)| same_event(a, b)));
    }
    let mut sqlite = Measure::default();
    for run in 0..cfg.runs {
        progress(&format!(
            "type in time window, run {}/{}",
            run + 1,
            cfg.runs
        ));
        let qs = queries(11 + run as u64, cfg.window_queries);
        let start = Instant::now();
        for q in &qs {
            std::hint::black_box(store.query(&oidb_query(*q)).expect("query"));
        }
        s.oidb.push(per_second(qs.len() as f64, start.elapsed()));
        let start = Instant::now();
        for &(kind, since, until) in &qs {
            std::hint::black_box(sqlite_side::type_in_window(
                &conn,
                w.type_name(kind),
                since,
                until,
                1000,
            ));
        }
        sqlite.push(per_second(qs.len() as f64, start.elapsed()));
    }
    s.sqlite = Some(sqlite);
    s
}

fn full_scan(cfg: &Config, logs: &Logs) -> Scenario {
    let mut s = Scenario::new(
        "full_scan",
        format!("full scan into events ({} events)", cfg.events),
        "events/s",
        Goal::TimesSqliteAtLeast(2.0),
    );
    s.note = "the floor reads the JSONL file and parses each line".into();
    let store = Store::open(&logs.oidb).expect("open");
    let conn = sqlite_side::open(&logs.sqlite, Synchronous::Full);
    let db = Fjall::open(&logs.fjall);
    let (mut sqlite, mut floor, mut fjall) =
        (Measure::default(), Measure::default(), Measure::default());
    let runs = cfg.runs.min(3);
    for run in 0..runs {
        progress(&format!("full scan, run {}/{}", run + 1, runs));
        let start = Instant::now();
        let mut count = 0u64;
        for event in store.scan(1).expect("scan") {
            std::hint::black_box(event.expect("event"));
            count += 1;
        }
        assert_eq!(count, cfg.events);
        s.oidb.push(per_second(count as f64, start.elapsed()));
        let start = Instant::now();
        let count = sqlite_side::scan(&conn);
        assert_eq!(count, cfg.events);
        sqlite.push(per_second(count as f64, start.elapsed()));
        let start = Instant::now();
        let count = db.scan();
        assert_eq!(count, cfg.events);
        fjall.push(per_second(count as f64, start.elapsed()));
        let start = Instant::now();
        let count = floor_scan(&logs.floor);
        assert_eq!(count, cfg.events);
        floor.push(per_second(count as f64, start.elapsed()));
    }
    s.sqlite = Some(sqlite);
    s.floor = Some(floor);
    s.fjall = Some(fjall);
    s
}

/// `export_json` of the whole log to a file, beside SQLite writing the same JSONL from its rows.
fn export(cfg: &Config, logs: &Logs) -> Scenario {
    let mut s = Scenario::new(
        "export_jsonl",
        format!(
            "export every event as JSONL to a file ({} events)",
            cfg.events
        ),
        "events/s",
        Goal::TimesSqliteAtLeast(3.0),
    );
    s.note = "oidb: Store::export_json; SQLite: one SELECT in position order, each row written as \
              the same wire-form line (strings escaped by serde_json, the stored payload text as \
              it is, hashes in base64url), both through a 64 KiB BufWriter; the file is removed \
              after each run"
        .into();
    let store = Store::open(&logs.oidb).expect("open");
    let conn = sqlite_side::open(&logs.sqlite, Synchronous::Full);
    let mut sqlite = Measure::default();
    let runs = cfg.runs.min(3);
    let out = cfg.path("export.jsonl");
    let writer = || {
        std::io::BufWriter::with_capacity(
            64 << 10,
            std::fs::File::create(&out).expect("create the export file"),
        )
    };
    for run in 0..runs {
        progress(&format!("export, run {}/{}", run + 1, runs));
        let start = Instant::now();
        let count = store.export_json(writer(), &Query::new()).expect("export");
        s.oidb.push(per_second(count as f64, start.elapsed()));
        assert_eq!(count, cfg.events);
        let oidb_bytes = file_bytes(&out).0;
        let start = Instant::now();
        let count = sqlite_side::export_jsonl(&conn, writer());
        sqlite.push(per_second(count as f64, start.elapsed()));
        assert_eq!(count, cfg.events);
        if run == 0 {
            let sqlite_bytes = file_bytes(&out).0;
            s.note.push_str(&format!(
                "; {:.0} and {:.0} bytes a line",
                oidb_bytes as f64 / count as f64,
                sqlite_bytes as f64 / count as f64
            ));
        }
        let _ = std::fs::remove_file(&out);
    }
    s.sqlite = Some(sqlite);
    s
}

fn floor_scan(path: &Path) -> u64 {
    use std::io::BufRead as _;
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open floor"));
    let mut count = 0;
    for line in file.lines() {
        let value: serde_json::Value =
            serde_json::from_str(&line.expect("line")).expect("JSON line");
        std::hint::black_box(value);
        count += 1;
    }
    count
}

fn peak_memory(cfg: &Config) -> Scenario {
    let mut s = Scenario::new(
        "peak_rss",
        format!(
            "peak memory appending {} events, default settings, {} per commit",
            cfg.events, cfg.batch
        ),
        "MiB",
        Goal::AtMost(64.0),
    );
    progress("peak memory (child processes)");
    let mib = |kib: u64| kib as f64 / 1024.0;
    let path = cfg.path("rss.oidb");
    let (peak, baseline) = child::measure_rss("oidb", &path, cfg.events);
    s.oidb.push(mib(peak));
    remove(&path);
    let path = cfg.path("rss.sqlite");
    let (sqlite_peak, _) = child::measure_rss("sqlite", &path, cfg.events);
    s.sqlite = Some(Measure {
        runs: vec![mib(sqlite_peak)],
    });
    remove(&path);
    s.note = format!(
        "VmHWM of a child process that generates and appends the events; the process alone, before \
         opening anything, peaks at {:.1} MiB; SQLite runs with its cache at 32 MiB like oidb's",
        mib(baseline)
    );
    s
}

fn open_times(cfg: &Config, logs: &Logs) -> Scenario {
    let mut s = Scenario::new(
        "open",
        format!("open a {}-event file (clean close)", cfg.events),
        "ms",
        Goal::AtMost(20.0),
    );
    s.note =
        "SQLite's figure includes its first read (max(position)), since it opens lazily".into();
    let mut sqlite = Measure::default();
    for run in 0..cfg.runs {
        progress(&format!("open, run {}/{}", run + 1, cfg.runs));
        let start = Instant::now();
        let store = Store::open(&logs.oidb).expect("open");
        std::hint::black_box(store.last_position().expect("last position"));
        s.oidb.push(start.elapsed().as_secs_f64() * 1e3);
        drop(store);
        let start = Instant::now();
        let conn = rusqlite::Connection::open(&logs.sqlite).expect("open");
        std::hint::black_box(sqlite_side::last_position(&conn));
        sqlite.push(start.elapsed().as_secs_f64() * 1e3);
        drop(conn);
    }
    s.sqlite = Some(sqlite);
    s
}

fn reopen_after_kill(cfg: &Config, logs: &Logs) -> Scenario {
    let mut s = Scenario::new(
        "reopen_after_kill",
        format!(
            "reopen the {}-event file after SIGKILL of a process appending to it",
            cfg.events
        ),
        "ms",
        Goal::Report,
    );
    let mut sqlite = Measure::default();
    let runs = cfg.runs.min(3);
    for run in 0..runs {
        progress(&format!("reopen after kill, run {}/{}", run + 1, runs));
        let start_index = cfg.events + 1_000_000 * (run as u64 + 1);
        let before = Store::open(&logs.oidb)
            .expect("open")
            .last_position()
            .expect("last");
        child::kill_while_appending("oidb", &logs.oidb, start_index, Duration::from_millis(300));
        let start = Instant::now();
        let store = Store::open(&logs.oidb).expect("reopen after kill");
        let after = store.last_position().expect("last position");
        s.oidb.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(after > before, "the killed child committed nothing");
        drop(store);

        child::kill_while_appending(
            "sqlite",
            &logs.sqlite,
            start_index,
            Duration::from_millis(300),
        );
        let start = Instant::now();
        let conn = rusqlite::Connection::open(&logs.sqlite).expect("reopen after kill");
        std::hint::black_box(sqlite_side::last_position(&conn));
        sqlite.push(start.elapsed().as_secs_f64() * 1e3);
    }
    s.sqlite = Some(sqlite);
    s
}

/// Delivery to `subscribers` subscribers, commit to receive. The commit happens inside
/// `append()` and no public call says when, so two figures bracket it: p99 from the `created_at`
/// the writer stamps as it places the event (an upper bound, with the goal) and from the append's
/// answer (a lower bound).
fn delivery(cfg: &Config, w: &Workload, subscribers: usize) -> Vec<Scenario> {
    let plural = if subscribers == 1 { "" } else { "s" };
    let mut upper = Scenario::new(
        if subscribers == 1 {
            "delivery_p99_1_subscriber"
        } else {
            "delivery_p99_16_subscribers"
        },
        format!(
            "subscriber delivery p99, commit to receive (upper bound: from the writer's stamp), {subscribers} subscriber{plural} ({} paced appends per run)",
            cfg.deliveries
        ),
        "µs",
        Goal::AtMost(200.0),
    );
    let mut lower = Scenario::new(
        if subscribers == 1 {
            "delivery_ack_p99_1_subscriber"
        } else {
            "delivery_ack_p99_16_subscribers"
        },
        format!(
            "subscriber delivery p99, commit to receive (lower bound: from the append's answer), {subscribers} subscriber{plural}"
        ),
        "µs",
        Goal::Report,
    );
    let (mut from_stamp, mut from_answer, mut stamp_to_answer) =
        (Vec::new(), Vec::new(), Vec::new());
    let runs = cfg.runs.min(3);
    for run in 0..runs {
        progress(&format!(
            "delivery to {subscribers} subscriber{plural}, run {}/{runs}",
            run + 1
        ));
        let path = cfg.path("delivery.oidb");
        remove(&path);
        let mut l = subscribers::delivery_latencies(
            &path,
            w,
            subscribers,
            cfg.deliveries,
            Duration::from_micros(500),
        );
        remove(&path);
        upper
            .oidb
            .push(subscribers::percentile(&mut l.from_stamp, 99.0));
        lower
            .oidb
            .push(subscribers::percentile(&mut l.from_answer, 99.0));
        from_stamp.extend(l.from_stamp);
        from_answer.extend(l.from_answer);
        stamp_to_answer.extend(l.stamp_to_answer);
    }
    let p = |v: &mut Vec<f64>, q: f64| subscribers::percentile(v, q);
    upper.note = format!(
        "commits not synced (Durability::Deferred), so no disk wait; each run first delivers {} \
         appends it does not count (a subscription's first reads). From the created_at the \
         writer stamps on the event under the commit lock (the events carry none of their own) to \
         recv() returning, by the wall clock: this includes hashing and writing the event and the \
         commit itself, so it is an upper bound. Stamp to the append's answer (that work, the \
         hand-over to every subscriber, the answer): p50 {:.0} µs, p99 {:.0} µs. Over all runs \
         p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        subscribers::WARM_UP,
        p(&mut stamp_to_answer, 50.0),
        p(&mut stamp_to_answer, 99.0),
        p(&mut from_stamp, 50.0),
        p(&mut from_stamp, 99.0),
        p(&mut from_stamp, 100.0),
    );
    lower.note = format!(
        "from append() returning to recv() returning, by the wall clock. oidb hands a commit to \
         every subscriber after it commits and before it answers the appender, so this is \
         commit-to-receive less that hand-over, a lower bound (negative when a subscriber has the \
         event before the appender); over all runs p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        p(&mut from_answer, 50.0),
        p(&mut from_answer, 99.0),
        p(&mut from_answer, 100.0),
    );
    vec![upper, lower]
}

fn subscriber_cost(cfg: &Config, w: &Workload) -> Scenario {
    let mut s = Scenario::new(
        "subscriber_cost_16",
        format!(
            "append throughput lost to 16 subscribers ({} per commit, {} events per run)",
            cfg.batch, cfg.subscribed_events
        ),
        "%",
        Goal::AtMost(10.0),
    );
    let (mut alone, mut watched) = (Measure::default(), Measure::default());
    let (mut cpu_alone, mut cpu_watched) = (Measure::default(), Measure::default());
    let mut fallbacks = 0;
    for run in 0..cfg.runs {
        progress(&format!(
            "16 subscribers' cost, run {}/{}",
            run + 1,
            cfg.runs
        ));
        let path = cfg.path("watched.oidb");
        // Alternate which goes first, so neither always meets the disk warm.
        for subscribers in if run % 2 == 0 { [0, 16] } else { [16, 0] } {
            remove(&path);
            let measured = subscribers::batched_rate_with_subscribers(
                &path,
                w,
                subscribers,
                cfg.subscribed_events,
                cfg.batch,
            );
            remove(&path);
            fallbacks += measured.fallbacks;
            let (rates, cpu) = if subscribers == 0 {
                (&mut alone, &mut cpu_alone)
            } else {
                (&mut watched, &mut cpu_watched)
            };
            rates.push(measured.events_per_second);
            if let Some(micros) = measured.cpu_micros_per_event {
                cpu.push(micros);
            }
        }
        let (a, b) = (alone.runs[run], watched.runs[run]);
        s.oidb.push((1.0 - b / a) * 100.0);
    }
    let cpu = if cpu_alone.runs.is_empty() || cpu_watched.runs.is_empty() {
        String::new()
    } else {
        format!(
            "; CPU of the whole process per event (generating, appending and receiving it), which \
             the machine's load moves less than the rates: median {:.1} µs alone, {:.1} µs watched",
            cpu_alone.median(),
            cpu_watched.median()
        )
    };
    s.note = format!(
        "each run appends the same events without and with 16 subscribers (each on its own thread, receiving every event and noting its position); median {} events/s alone, {} events/s watched; the subscribers fell behind their channels and read from disk {fallbacks} times in all{cpu}",
        report::number(alone.median()),
        report::number(watched.median())
    );
    s
}

/// What two reader processes following the file cost the writer's durable appends, single and
/// batched, and how long after an append's answer each reader has its event.
/// `oidb tail -f` as a process of its own beside durable single appends: the delay from each
/// append's answer to the command printing the event, p99 per run.
fn tail_follow(cfg: &Config, w: &Workload) -> Scenario {
    const PACE: Duration = Duration::from_millis(5);
    let count = cfg.followed_appends / 4;
    let mut s = Scenario::new(
        "tail_f_delay_p99",
        format!("oidb tail -f: append's answer to the line printed, p99 ({count} durable single appends per run, {} ms apart)", PACE.as_millis()),
        "ms",
        Goal::AtMost(100.0),
    );
    let mut all = Vec::new();
    let runs = cfg.runs.min(3);
    for run in 0..runs {
        progress(&format!(
            "oidb tail -f beside the writer, run {}/{runs}",
            run + 1
        ));
        let path = cfg.path("tail.oidb");
        remove(&path);
        let mut delays = live_readers::tail_f_delays(&path, w, count, PACE);
        s.oidb.push(subscribers::percentile(&mut delays, 99.0));
        all.append(&mut delays);
        remove(&path);
    }
    s.note = format!(
        "the command (target/release/oidb tail -f --jsonl FILE) reads the file as a reader \
         process; each line's wall-clock time of arrival in the benchmark beside the time its \
         append answered; over all runs p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        subscribers::percentile(&mut all, 50.0),
        subscribers::percentile(&mut all, 99.0),
        subscribers::percentile(&mut all, 100.0),
    );
    s
}

fn live_readers(cfg: &Config, w: &Workload) -> Vec<Scenario> {
    const READERS: usize = 2;
    const TURN: u64 = 25;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut scenarios = Vec::new();
    for batched in [false, true] {
        let (kind, count) = if batched {
            ("batched", cfg.followed_events)
        } else {
            ("single", cfg.followed_appends)
        };
        let mut cost = Scenario::new(
            if batched {
                "live_readers_cost_batched"
            } else {
                "live_readers_cost_single"
            },
            if batched {
                format!(
                    "batched append throughput lost to {READERS} reader processes following the \
                     file ({} per commit, {count} events per run, fresh file)",
                    cfg.batch
                )
            } else {
                format!(
                    "durable single append throughput lost to {READERS} reader processes \
                     following the file (1 thread, {count} per run, fresh file)"
                )
            },
            "%",
            Goal::AtMost(10.0),
        );
        let mut delay = Scenario::new(
            if batched {
                "live_reader_delay_p99_batched"
            } else {
                "live_reader_delay_p99_single"
            },
            format!(
                "reader process delay p99, append's answer to receipt, {READERS} readers, {}",
                if batched {
                    "batched appends"
                } else {
                    "durable single appends"
                }
            ),
            "ms",
            Goal::Report,
        );
        let (mut alone, mut followed, mut ratios) =
            (Measure::default(), Measure::default(), Measure::default());
        let (mut cpu_alone, mut cpu_followed, mut cpu_reader) =
            (Measure::default(), Measure::default(), Measure::default());
        let mut delays = Vec::new();
        for run in 0..cfg.runs {
            progress(&format!(
                "{kind} appends with {READERS} reader processes following, run {}/{}",
                run + 1,
                cfg.runs
            ));
            let (alone_path, followed_path) = (cfg.path("alone.oidb"), cfg.path("followed.oidb"));
            remove(&alone_path);
            remove(&followed_path);
            let mut outcome = if batched {
                // One after the other, alternating which goes first, so neither always meets
                // the disk warm: taking turns would leave the readers' share of the CPU, which
                // batches make large, partly to the turns of the store they do not follow.
                let mut outcome = None;
                for readers in if run % 2 == 0 {
                    [0, READERS]
                } else {
                    [READERS, 0]
                } {
                    let path = if readers == 0 {
                        &alone_path
                    } else {
                        &followed_path
                    };
                    let (measured, cpu) = live_readers::batched(path, w, readers, count, cfg.batch);
                    if readers == 0 {
                        alone.push(measured.events_per_second);
                        cpu_alone.runs.extend(cpu);
                    } else {
                        followed.push(measured.events_per_second);
                        cpu_followed.runs.extend(cpu);
                        outcome = Some(measured);
                    }
                }
                outcome.expect("the followed store's run")
            } else {
                let (lone, measured) = live_readers::single_in_turns(
                    &alone_path,
                    &followed_path,
                    w,
                    READERS,
                    count,
                    TURN,
                );
                alone.push(lone.events_per_second);
                followed.push(measured.events_per_second);
                measured
            };
            remove(&alone_path);
            remove(&followed_path);
            cpu_reader.runs.extend(outcome.reader_cpu_micros_per_event);
            delay
                .oidb
                .push(subscribers::percentile(&mut outcome.delays_ms, 99.0));
            delays.append(&mut outcome.delays_ms);
            let ratio = followed.runs[run] / alone.runs[run];
            ratios.push(ratio);
            cost.oidb.push((1.0 - ratio) * 100.0);
        }
        let how = if batched {
            "the same events appended to a new file alone and then with the readers, or the other \
             way round, alternating by run"
                .to_owned()
        } else {
            format!(
                "two new files in the same run, one alone and one with the readers, taking turns \
                 {TURN} appends at a time (as the durable single appends above), so that both meet \
                 the same spells of the disk"
            )
        };
        let writer_cpu = if cpu_alone.runs.is_empty() || cpu_followed.runs.is_empty() {
            String::new()
        } else {
            format!(
                "; CPU of the writer's process per event (generating and appending it): median \
                 {:.1} µs alone, {:.1} µs followed",
                cpu_alone.median(),
                cpu_followed.median()
            )
        };
        let reader_cpu = if cpu_reader.runs.is_empty() {
            String::new()
        } else {
            format!(
                "; CPU of each reader per event received: median {:.1} µs",
                cpu_reader.median()
            )
        };
        cost.note = format!(
            "{how}; each reader is the benchmark binary again (ReadOnlyStore::open, subscribe from \
             Start::Now, every event received); durable commits and the default publish interval \
             ({:.0} ms) both ways, only the time in the appends counted; median {} events/s \
             alone, {} followed; with / without: median {:.2}x ({:.2}x–{:.2}x over the \
             runs){writer_cpu}{reader_cpu}",
            ms(oidb::PUBLISH_INTERVAL),
            report::number(alone.median()),
            report::number(followed.median()),
            ratios.median(),
            ratios.min(),
            ratios.max(),
        );
        let p = |v: &mut Vec<f64>, q: f64| subscribers::percentile(v, q);
        delay.note = format!(
            "from the wall-clock time the append answered in the writer to the time recv() \
             returned the event in a reader process (one system clock), p99 per run over both \
             readers' events; over all runs p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, min {:.2} \
             ms. A reader sees an append once the writer publishes it (a durable redb commit, \
             {:.0} ms after the last one ended) and looks every {:.0} ms: the interval, the \
             publish's own commit and a poll bound it",
            p(&mut delays, 50.0),
            p(&mut delays, 99.0),
            p(&mut delays, 100.0),
            p(&mut delays, 0.0),
            ms(oidb::PUBLISH_INTERVAL),
            ms(oidb::FOLLOW_POLL),
        );
        scenarios.push(cost);
        scenarios.push(delay);
    }
    scenarios
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let task = &args[i + 1..];
        if task.first().map(String::as_str) == Some(live_readers::CHILD_TASK) {
            live_readers::run_child(&task[1..]);
        } else {
            child::run(task);
        }
        return;
    }
    let cfg = Config::from_env();
    let json_path = std::env::var_os("OIDB_BENCH_JSON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oidb-bench.json"),
        PathBuf::from,
    );
    let machine = machine::describe(cfg.dir.path());
    progress(&format!(
        "{} mode, {} events; files in {}; machine {machine}",
        if cfg.quick { "quick" } else { "full" },
        cfg.events,
        cfg.dir.path().display()
    ));
    let started = Instant::now();
    let w = Arc::new(Workload::new());
    let mut scenarios = durable_single(&cfg, &w);
    scenarios.extend(durable_threads(&cfg, &w));
    let (batched, logs) = batched(&cfg, &w);
    scenarios.extend(batched);
    for newest in [true, false] {
        for payloads in [Payloads::Untouched, Payloads::Read] {
            scenarios.push(get_events_by_intent(
                &cfg, &w, &logs, cfg.events, newest, payloads,
            ));
        }
    }
    if cfg.events > SMALL_LOG {
        let small = small_logs(&cfg, &w);
        for newest in [true, false] {
            scenarios.push(get_events_by_intent(
                &cfg,
                &w,
                &small,
                SMALL_LOG,
                newest,
                Payloads::Untouched,
            ));
        }
        for path in [&small.oidb, &small.sqlite, &small.floor, &small.fjall] {
            remove(path);
        }
    }
    scenarios.push(type_in_window(&cfg, &w, &logs));
    scenarios.push(full_scan(&cfg, &logs));
    scenarios.push(export(&cfg, &logs));
    scenarios.extend(file_size(&cfg, &w, &logs));
    scenarios.push(peak_memory(&cfg));
    scenarios.push(open_times(&cfg, &logs));
    scenarios.push(reopen_after_kill(&cfg, &logs));
    scenarios.extend(delivery(&cfg, &w, 1));
    scenarios.extend(delivery(&cfg, &w, 16));
    scenarios.push(subscriber_cost(&cfg, &w));
    scenarios.extend(live_readers(&cfg, &w));
    scenarios.push(tail_follow(&cfg, &w));

    let table = report::table(&scenarios);
    println!("{table}");
    let header = json!({
        "quick": cfg.quick,
        "events": cfg.events,
        "runs": cfg.runs,
        "machine": machine,
        "seconds": started.elapsed().as_secs_f64(),
        "command": if cfg.quick { "OIDB_BENCH_QUICK=1 cargo bench --bench compare" } else { "cargo bench --bench compare" },
    });
    report::write_json(&json_path, header, &scenarios);
    progress(&format!(
        "done in {:.0} s; figures in {}",
        started.elapsed().as_secs_f64(),
        json_path.display()
    ));
}
