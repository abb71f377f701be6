//! Readers in other processes following a live writer: what two of them cost the writer's
//! durable appends, and how long after an append's answer each reader has the event. oidb only:
//! the other sides have no reader that follows a file.
//!
//! The readers are the benchmark binary started again (`--child follow PATH LAST`): each opens
//! the file with `ReadOnlyStore`, subscribes from `Start::Now`, says `ready`, notes the wall-clock
//! time it receives each event, and prints `(position, time)` lines once it has the last one. The
//! writer notes the wall-clock time each append answers; the parent matches the two. Both clocks
//! are the machine's one system clock.

use std::io::{BufRead as _, BufReader, BufWriter, Lines, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oidb::{Delivery, Filter, ReadOnlyStore, Start, Store, WriterStatus};

use crate::cpu_time;
use crate::workload::Workload;

/// The child task's name: `--child follow PATH LAST`.
pub const CHILD_TASK: &str = "follow";

/// Nanoseconds since the Unix epoch, by the wall clock (shared by every process on the machine).
fn wall_nanos() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since.as_nanos()).expect("before 2554")
}

/// The reader's side of `--child follow PATH LAST`: follows the file from now until it has
/// received position `LAST`, then prints `POSITION NANOS` per event received and
/// `cpu_micros MICROS` (its CPU time from `ready` to the last event, where the system says).
pub fn run_child(args: &[String]) {
    let path = Path::new(args.first().expect("a path"));
    let last: u64 = args
        .get(1)
        .expect("the last position")
        .parse()
        .expect("a position");
    let reader = ReadOnlyStore::open(path).expect("open read-only beside the writer");
    let mut follow = reader
        .subscribe(Filter::new(), Start::Now)
        .expect("subscribe");
    // From now, history is empty: its end comes first, after the follow's first read.
    match follow.recv().expect("follow") {
        Delivery::CaughtUp { .. } => {}
        Delivery::Event(event) => panic!("event {} before the start", event.position),
    }
    let cpu_before = cpu_time::thread_exact();
    println!("ready");
    std::io::stdout().flush().expect("stdout");
    let mut received: Vec<(u64, u64)> = Vec::with_capacity(usize::try_from(last).unwrap_or(0));
    let mut position = 0;
    while position < last {
        match follow.recv_timeout(Duration::from_secs(1)).expect("follow") {
            Some(Delivery::Event(event)) => {
                let at = wall_nanos();
                position = event.position;
                received.push((position, at));
            }
            Some(Delivery::CaughtUp { .. }) => {}
            // Nothing for a while: give up only if the writer is gone (the parent then reports
            // the events missing), so that a failed run leaves no reader behind.
            None => {
                if reader.writer_status().expect("writer status") != WriterStatus::Live {
                    break;
                }
            }
        }
    }
    let cpu = cpu_time::thread_exact()
        .zip(cpu_before)
        .map(|(after, before)| (after - before).as_secs_f64() * 1e6);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (position, at) in received {
        writeln!(out, "{position} {at}").expect("stdout");
    }
    if let Some(micros) = cpu {
        writeln!(out, "cpu_micros {micros}").expect("stdout");
    }
    out.flush().expect("stdout");
}

/// A reader process following the file.
struct Reader {
    process: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Reader {
    fn start(path: &Path, last: u64) -> Reader {
        let mut process = Command::new(std::env::current_exe().expect("the benchmark binary"))
            .args([
                "--child",
                CHILD_TASK,
                path.to_str().expect("utf-8 path"),
                &last.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a reader process");
        let stdout = process.stdout.take().expect("reader stdout");
        Reader {
            process,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Waits until the reader has subscribed and made its first read.
    fn wait_ready(&mut self) {
        let line = self
            .lines
            .next()
            .expect("the reader says it is ready")
            .expect("reader stdout");
        assert_eq!(line, "ready", "the reader did not start following");
    }

    /// What the reader received (position, wall-clock nanoseconds), and its CPU time.
    fn finish(mut self) -> (Vec<(u64, u64)>, Option<f64>) {
        let mut received = Vec::new();
        let mut cpu = None;
        for line in self.lines.by_ref() {
            let line = line.expect("reader stdout");
            let mut fields = line.split(' ');
            let (first, second) = (fields.next(), fields.next());
            match (first, second) {
                (Some("cpu_micros"), Some(micros)) => cpu = micros.parse().ok(),
                (Some(position), Some(at)) => received.push((
                    position.parse().expect("a position"),
                    at.parse().expect("a time"),
                )),
                _ => panic!("unexpected reader line {line:?}"),
            }
        }
        let status = self.process.wait().expect("wait for the reader");
        assert!(status.success(), "a reader process failed");
        (received, cpu)
    }
}

/// What one store's appends came to.
pub struct Outcome {
    /// Appended events per second of time spent in `append` / `append_batch`.
    pub events_per_second: f64,
    /// For every event and every reader: from the append's answer to the reader's receipt, in
    /// milliseconds (wall clock).
    pub delays_ms: Vec<f64>,
    /// CPU of a reader per event received, the mean over the readers, where the system says.
    pub reader_cpu_micros_per_event: Option<f64>,
}

/// A new store with default settings (durable commits, the default publish interval), and the
/// reader processes following it.
struct Followed {
    store: Store,
    readers: Vec<Reader>,
    /// The wall-clock time (ns) each position's append answered.
    acked: Vec<u64>,
    spent: Duration,
    appended: u64,
}

impl Followed {
    /// Opens a new store at `path` that will take `count` events, and starts `readers` reader
    /// processes following it until they have the last.
    fn open(path: &Path, readers: usize, count: u64) -> Followed {
        let store = Store::open(path).expect("open store");
        // A fresh file: the appends take positions 1..=count.
        let mut readers: Vec<Reader> = (0..readers).map(|_| Reader::start(path, count)).collect();
        readers.iter_mut().for_each(Reader::wait_ready);
        Followed {
            store,
            readers,
            acked: vec![0; usize::try_from(count).expect("count fits") + 1],
            spent: Duration::ZERO,
            appended: 0,
        }
    }

    /// Appends events `range`, one `append` each when `batch` is 1, else `append_batch` of
    /// `batch`; times the calls and notes when each answered.
    fn append(&mut self, w: &Workload, range: std::ops::Range<u64>, batch: u64) {
        let mut next = range.start;
        while next < range.end {
            let end = (next + batch).min(range.end);
            let (stored, answered, took) = if batch == 1 {
                let event = w.new_event(&w.event(next));
                let start = Instant::now();
                let stored = self.store.append(event).expect("append");
                let (answered, took) = (wall_nanos(), start.elapsed());
                (vec![stored], answered, took)
            } else {
                let events = w.new_events(next..end);
                let start = Instant::now();
                let stored = self.store.append_batch(events).expect("append batch");
                let (answered, took) = (wall_nanos(), start.elapsed());
                (stored, answered, took)
            };
            self.spent += took;
            for event in &stored {
                self.acked[event.position as usize] = answered;
            }
            self.appended += end - next;
            next = end;
        }
    }

    /// Publishes what waits (untimed: the last appends' delays still run from their answers),
    /// collects what the readers received, and closes the store.
    fn finish(self) -> Outcome {
        self.store.flush().expect("flush");
        let last = self.appended;
        let mut delays_ms = Vec::with_capacity(self.readers.len() * last as usize);
        let mut reader_cpu = Vec::new();
        let readers = self.readers.len();
        for reader in self.readers {
            let (received, cpu) = reader.finish();
            assert!(
                received.iter().map(|r| r.0).eq(1..=last),
                "a reader missed events or had them out of order"
            );
            for (position, at) in received {
                let answered = self.acked[position as usize];
                delays_ms.push((i128::from(at) - i128::from(answered)) as f64 / 1e6);
            }
            if let Some(micros) = cpu {
                reader_cpu.push(micros / last as f64);
            }
        }
        drop(self.store);
        Outcome {
            events_per_second: last as f64 / self.spent.as_secs_f64(),
            delays_ms,
            reader_cpu_micros_per_event: (readers > 0 && reader_cpu.len() == readers)
                .then(|| reader_cpu.iter().sum::<f64>() / readers as f64),
        }
    }
}

/// Durable single appends of `count` events to two new stores, one alone at `alone` and one
/// followed by `readers` reader processes at `followed`, taking turns `turn` appends at a time
/// (who goes first alternating), so that both meet the same spells of the disk: the alone
/// store's outcome, then the followed one's. The readers' work on a turn's events spills into
/// the next turn, but it is a few microseconds per event beside an append's wait for its sync.
pub fn single_in_turns(
    alone: &Path,
    followed: &Path,
    w: &Workload,
    readers: usize,
    count: u64,
    turn: u64,
) -> (Outcome, Outcome) {
    let mut sides = [
        Followed::open(alone, 0, count),
        Followed::open(followed, readers, count),
    ];
    let mut next = 0;
    let mut round = 0;
    while next < count {
        let end = (next + turn).min(count);
        for k in 0..sides.len() {
            sides[(round + k) % sides.len()].append(w, next..end, 1);
        }
        round += 1;
        next = end;
    }
    let [alone, followed] = sides;
    let followed = followed.finish();
    (alone.finish(), followed)
}

/// Appends `count` events to a new store at `path` in batches of `batch`, with `readers` reader
/// processes following it; also returns the CPU the writer's whole process spent per event over
/// the appends (generating the events included), where the system says.
pub fn batched(
    path: &Path,
    w: &Workload,
    readers: usize,
    count: u64,
    batch: u64,
) -> (Outcome, Option<f64>) {
    let mut side = Followed::open(path, readers, count);
    let cpu_before = cpu_time::process();
    side.append(w, 0..count, batch);
    let cpu = cpu_time::process()
        .zip(cpu_before)
        .map(|(after, before)| (after - before).as_secs_f64() * 1e6 / count as f64);
    (side.finish(), cpu)
}

/// How long after each durable single append answered the `oidb tail -f --jsonl` command, run as
/// a process of its own, printed the event: `count` appends to a new store at `path`, `pace`
/// apart (as an agent appends, not flat out), in milliseconds per event.
pub fn tail_f_delays(path: &Path, w: &Workload, count: u64, pace: Duration) -> Vec<f64> {
    let store = Store::open(path).expect("open");
    store.append(w.new_event(&w.event(0))).expect("append");
    store.flush().expect("flush");
    let mut tail = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["tail", "-f", "--jsonl"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oidb tail -f");
    let stdout = tail.stdout.take().expect("piped stdout");
    let (sender, printed) = std::sync::mpsc::channel::<(u64, u64)>();
    let lines = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let at = wall_nanos();
            let event: serde_json::Value = serde_json::from_str(&line).expect("a JSONL line");
            let position = event["position"].as_u64().expect("a position");
            if sender.send((position, at)).is_err() {
                return;
            }
        }
    });
    // The command prints the event already there first: it is following from then on.
    let (first, _) = printed
        .recv_timeout(Duration::from_secs(60))
        .expect("oidb tail -f printed the first event");
    assert_eq!(first, 1);
    let mut answered = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 1..=count {
        let event = store.append(w.new_event(&w.event(i))).expect("append");
        answered.push((event.position, wall_nanos()));
        std::thread::sleep(pace);
    }
    let mut seen = std::collections::HashMap::new();
    while seen.len() < answered.len() {
        let (position, at) = printed
            .recv_timeout(Duration::from_secs(60))
            .expect("oidb tail -f printed every event");
        assert!(
            seen.insert(position, at).is_none(),
            "{position} printed twice"
        );
    }
    let _ = tail.kill();
    let _ = tail.wait();
    let _ = lines.join();
    answered
        .iter()
        .map(|(position, answer)| {
            let at = seen[position];
            at.saturating_sub(*answer) as f64 / 1e6
        })
        .collect()
}
