//! A live file: other processes read, follow and verify a `.oidb` while its writer writes it.
//!
//! The processes are this test binary run again as `live_child`, told by environment variables
//! what to be: a writer that appends from several threads and prints each acknowledged event,
//! a reader that follows the file from its start and prints each event it gets, or a holder
//! that appends when told to on its standard input and otherwise keeps the file open. Each
//! prints a line as each thing happens, so a process killed at any moment has said what it did.
//!
//! `OIDB_LIVE_ROUNDS` sets the rounds of the kill test (default 20); `OIDB_SEED` replays a run.

mod prng;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oidb::{Delivery, EventType, Filter, NewEvent, ReadOnlyStore, Start, Store, WriterStatus};
use prng::Prng;
use serde_json::json;

/// What the child is: `writer`, `reader` or `holder`.
const CHILD: &str = "OIDB_LIVE_CHILD";
/// The store's path.
const CHILD_PATH: &str = "OIDB_LIVE_CHILD_PATH";
/// Writer: how many threads append.
const CHILD_THREADS: &str = "OIDB_LIVE_CHILD_THREADS";
/// Writer: appends per thread; reader: the position after which it exits. 0: without end.
const CHILD_COUNT: &str = "OIDB_LIVE_CHILD_COUNT";

fn env_number(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Prints one line at once: a killed child has said everything it printed.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

#[test]
#[ignore = "run by the tests below, as a child process"]
fn live_child() {
    let Some(path) = std::env::var_os(CHILD_PATH).map(PathBuf::from) else {
        return;
    };
    match std::env::var(CHILD).as_deref() {
        Ok("writer") => writer(&path),
        Ok("reader") => reader(&path),
        Ok("holder") => holder(&path),
        other => panic!("unknown child {other:?}"),
    }
}

/// Appends as many events as each line of standard input says, printing each acknowledged one
/// and then `done <last position>`; closes the store when its input ends. It reads nothing (a
/// read in the writer's process publishes what waits), and its publish interval is long, so
/// that what another process sees on opening the file is what the writer made visible for it.
fn holder(path: &Path) {
    let store = Store::builder()
        .publish_interval(Duration::from_secs(1))
        .open(path)
        .unwrap();
    say("open");
    let mut last = 0;
    for line in std::io::stdin().lines() {
        let count: u64 = line.unwrap().trim().parse().unwrap();
        for i in 0..count {
            let event = store
                .append(
                    NewEvent::new("intent-held", EventType::Comment, "agent")
                        .payload(json!({ "i": i })),
                )
                .unwrap();
            last = event.position;
            say(&format!("ack {} {}", event.position, event.id));
        }
        say(&format!("done {last}"));
    }
    store.close().unwrap();
    say("closed");
}

fn writer(path: &Path) {
    let store = Store::open(path).unwrap();
    say("open");
    let threads = env_number(CHILD_THREADS).max(1);
    let count = env_number(CHILD_COUNT);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let store = store.clone();
            scope.spawn(move || {
                let mut i = 0;
                while count == 0 || i < count {
                    let event = store
                        .append(
                            NewEvent::new(
                                format!("intent-{thread}"),
                                EventType::Comment,
                                format!("agent-{thread}"),
                            )
                            .payload(json!({"thread": thread, "i": i})),
                        )
                        .unwrap();
                    say(&format!("ack {} {}", event.position, event.id));
                    i += 1;
                }
            });
        }
    });
    store.close().unwrap();
    say("closed");
}

fn reader(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let reader = loop {
        // The writer may not have created the file yet, or be repairing it.
        match ReadOnlyStore::open(path) {
            Ok(reader) => break reader,
            Err(error) if Instant::now() > deadline => panic!("never opened: {error}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    say("open");
    let until = env_number(CHILD_COUNT);
    let mut follow = reader.subscribe(Filter::new(), Start::Beginning).unwrap();
    loop {
        match follow.recv() {
            Ok(Delivery::Event(event)) => {
                say(&format!("ev {} {}", event.position, event.id));
                if until > 0 && event.position >= until {
                    return;
                }
            }
            Ok(Delivery::CaughtUp { .. }) => {}
            Err(error) => {
                say(&format!("error {error}"));
                std::process::exit(2);
            }
        }
    }
}

/// A child process and the lines it has printed so far.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// The child's standard input (only the holder reads it), closed on drop.
    input: Option<std::process::ChildStdin>,
}

impl Running {
    fn start(kind: &str, path: &Path, threads: u64, count: u64) -> Running {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "live_child",
                "--ignored",
                "--nocapture",
                "--quiet",
            ])
            .env(CHILD, kind)
            .env(CHILD_PATH, path)
            .env(CHILD_THREADS, threads.to_string())
            .env(CHILD_COUNT, count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let input = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let gathered = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                gathered.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            lines,
            input,
        }
    }

    /// Writes `line` to the child's standard input.
    fn tell(&mut self, line: &str) {
        let input = self.input.as_mut().unwrap();
        writeln!(input, "{line}").unwrap();
        input.flush().unwrap();
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn has_said(&self, line: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l == line)
    }

    /// The (position, id) pairs of the lines starting with `tag`.
    fn events(&self, tag: &str) -> Vec<(u64, String)> {
        self.lines()
            .iter()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                (parts.next()? == tag).then_some(())?;
                Some((parts.next()?.parse().ok()?, parts.next()?.to_owned()))
            })
            .collect()
    }

    fn last_position(&self, tag: &str) -> u64 {
        self.events(tag).last().map_or(0, |(p, _)| *p)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
        // What it printed before it died is read to the end.
        std::thread::sleep(Duration::from_millis(20));
    }

    /// Waits for the child to exit on its own, at most `limit`.
    fn wait(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(20));
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn wait_until(&self, limit: Duration, done: impl Fn(&Running) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

/// The file's events as (position, id), read once no writer has it.
fn stored(path: &Path) -> BTreeMap<u64, String> {
    let store = Store::open(path).unwrap();
    let verification = store.verify_all(|_| {}).unwrap();
    assert!(verification.valid, "{verification:?}");
    store
        .scan(1)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.position, e.id.to_string())
        })
        .collect()
}

/// Asserts that a reader got positions 1, 2, 3, … with none twice and none passed over, each
/// the event the file holds there.
fn assert_followed(name: &str, got: &[(u64, String)], file: &BTreeMap<u64, String>) {
    for (index, (position, id)) in got.iter().enumerate() {
        assert_eq!(
            *position,
            index as u64 + 1,
            "{name}: positions in order, each once"
        );
        assert_eq!(
            file.get(position),
            Some(id),
            "{name}: at {position} it got an event the file does not hold there"
        );
    }
}

#[test]
fn eight_reader_processes_follow_a_writer_appending_from_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let (threads, per_thread) = (4, 250);
    let total = threads * per_thread;
    let mut writer = Running::start("writer", &path, threads, per_thread);
    let mut readers: Vec<Running> = (0..8)
        .map(|_| Running::start("reader", &path, 0, total))
        .collect();
    assert!(writer.wait(Duration::from_secs(120)), "the writer finished");
    for (n, reader) in readers.iter_mut().enumerate() {
        let done = reader.wait(Duration::from_secs(120));
        if !done {
            reader.kill();
        }
        assert!(
            done,
            "reader {n} got all {total} events; it got up to {}",
            reader.last_position("ev")
        );
    }
    let acked: BTreeMap<u64, String> = writer.events("ack").into_iter().collect();
    assert_eq!(acked.len() as u64, total);
    assert_eq!(
        acked.keys().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    assert_eq!(stored(&path), acked, "the file holds what was acknowledged");
    for (n, reader) in readers.iter().enumerate() {
        let got = reader.events("ev");
        assert_eq!(got.len() as u64, total, "reader {n}");
        assert_followed(&format!("reader {n}"), &got, &acked);
    }
}

/// The writer publishes its appends for readers in other processes only while some have the
/// file open: a reader that opens it must still see every append acknowledged before its open,
/// with no reader about before it, beside one, and after the others left.
#[test]
fn a_reader_opening_a_live_file_sees_every_append_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let mut holder = Running::start("holder", &path, 1, 0);
    let mut append = |count: u64, last: u64| {
        holder.tell(&count.to_string());
        assert!(
            holder.wait_until(Duration::from_secs(60), |h| h
                .has_said(&format!("done {last}"))),
            "the holder appended up to {last}"
        );
        holder.events("ack")
    };
    let sees = |acked: &[(u64, String)], when: &str| {
        let reader = ReadOnlyStore::open(&path).unwrap();
        assert_eq!(reader.writer_status().unwrap(), WriterStatus::Live);
        let seen: Vec<(u64, String)> = reader
            .query_iter(&oidb::Query::new())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.position, e.id.to_string())
            })
            .collect();
        assert_eq!(seen.as_slice(), acked, "{when}: what the open saw");
        reader
    };
    let acked = append(30, 30);
    let first = sees(&acked, "no reader before it");
    let acked = append(20, 50);
    let second = sees(&acked, "beside another reader");
    drop((first, second));
    let acked = append(10, 60);
    drop(sees(&acked, "after the other readers left"));
    drop(holder.input.take());
    assert!(holder.wait(Duration::from_secs(60)), "the holder closed");
    let acked: BTreeMap<u64, String> = acked.into_iter().collect();
    assert_eq!(stored(&path), acked, "the file holds what was acknowledged");
}

#[test]
fn readers_and_writers_killed_at_random_moments_lose_and_invent_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let mut rng = Prng::from_env_or_time("live_file_kills");
    let rounds = std::env::var("OIDB_LIVE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let mut readers: Vec<Running> = (0..3)
        .map(|_| Running::start("reader", &path, 0, 0))
        .collect();
    let mut killed_readers: Vec<Running> = Vec::new();
    let mut acked: Vec<(u64, String)> = Vec::new();
    for round in 0..rounds {
        let mut writer = Running::start("writer", &path, 2, 0);
        assert!(
            writer.wait_until(Duration::from_secs(60), |w| w.has_said("open")),
            "round {round}: the writer opened the file"
        );
        let watcher = ReadOnlyStore::open(&path).unwrap();
        assert_eq!(watcher.writer_status().unwrap(), WriterStatus::Live);
        std::thread::sleep(Duration::from_millis(rng.range(0, 80) + 5));
        // A reader and the writer die in every round, each at a moment of its own.
        let victim = rng.range(0, readers.len() as u64) as usize;
        let mut reader = readers.swap_remove(victim);
        reader.kill();
        killed_readers.push(reader);
        readers.push(Running::start("reader", &path, 0, 0));
        std::thread::sleep(Duration::from_millis(rng.range(0, 80) + 5));
        writer.kill();
        if !writer.events("ack").is_empty() {
            assert_eq!(
                watcher.writer_status().unwrap(),
                WriterStatus::Stopped,
                "round {round}: a reader says the writer stopped without closing the file"
            );
        }
        acked.extend(writer.events("ack"));
    }
    // A last writer closes the file cleanly; the readers that live follow it to its end.
    let mut last = Running::start("writer", &path, 2, 10);
    assert!(
        last.wait(Duration::from_secs(60)),
        "the last writer closed the file"
    );
    acked.extend(last.events("ack"));
    let file = stored(&path);
    let end = *file.keys().last().unwrap();
    for (n, reader) in readers.iter_mut().enumerate() {
        let caught_up =
            reader.wait_until(Duration::from_secs(60), |r| r.last_position("ev") >= end);
        let exited = reader.child.try_wait().unwrap();
        reader.kill();
        let said = reader.lines();
        assert!(
            caught_up,
            "live reader {n} followed every writer to {end}; it got to {} (exited: {exited:?}), \
             its last lines: {:?}",
            reader.last_position("ev"),
            &said[said.len().saturating_sub(3)..]
        );
    }
    for (position, id) in &acked {
        assert_eq!(
            file.get(position),
            Some(id),
            "acknowledged event at {position} kept"
        );
    }
    assert_eq!(
        file.keys().copied().collect::<Vec<_>>(),
        (1..=end).collect::<Vec<_>>(),
        "positions without a gap"
    );
    for (n, reader) in readers.iter().chain(&killed_readers).enumerate() {
        assert!(
            !reader.lines().iter().any(|l| l.starts_with("error")),
            "reader {n}: {:?}",
            reader.lines()
        );
        assert_followed(&format!("reader {n}"), &reader.events("ev"), &file);
    }
}

#[test]
fn verify_beside_a_live_writer_finds_a_tampered_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let store = Store::open(&path).unwrap();
    for i in 0..20 {
        store
            .log_event(
                "intent-42",
                EventType::Comment,
                json!({"message": format!("note number {i:04}")}),
            )
            .unwrap();
    }
    store.flush().unwrap();
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_oidb"))
            .args(["verify", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    assert_eq!(
        verify().status.code(),
        Some(0),
        "an intact live file verifies"
    );

    // Change the text of event 8 in every copy the file holds, under the live writer.
    let mut bytes = std::fs::read(&path).unwrap();
    let text = b"note number 0007";
    let places: Vec<usize> = bytes
        .windows(text.len())
        .enumerate()
        .filter(|(_, w)| w == text)
        .map(|(at, _)| at)
        .collect();
    assert!(!places.is_empty());
    for at in places {
        bytes[at + 5] = b'N';
        std::os::unix::fs::FileExt::write_at(
            &std::fs::OpenOptions::new().write(true).open(&path).unwrap(),
            &bytes[at..at + text.len()],
            at as u64,
        )
        .unwrap();
    }
    let run = verify();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("position 8"), "{stdout}");
    drop(store);
}

#[test]
fn tail_f_follows_a_live_file_and_then_the_store_that_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let store = Store::open(&path).unwrap();
    store
        .log_event("first", EventType::Comment, json!({"n": 1}))
        .unwrap();
    store.flush().unwrap();
    let mut tail = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["tail", "-f", "--jsonl", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let gathered = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            gathered.lock().unwrap().push(line);
        }
    });
    let wait_for = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while lines.lock().unwrap().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        lines.lock().unwrap().clone()
    };
    assert_eq!(wait_for(1).len(), 1, "the last event, at once");
    // Appended while tail -f runs, by the writer that has the file open all along.
    store
        .log_event("live", EventType::Comment, json!({"n": 2}))
        .unwrap();
    let seen = wait_for(2);
    assert!(seen[1].contains(r#""intent_id":"live""#), "{seen:?}");
    drop(store);

    let other = dir.path().join("other.oidb");
    let replacement = Store::open(&other).unwrap();
    for n in 0..3 {
        replacement
            .log_event("replacement", EventType::Comment, json!({"n": n}))
            .unwrap();
    }
    drop(replacement);
    std::fs::rename(&other, &path).unwrap();
    let seen = wait_for(5);
    let _ = tail.kill();
    let output = tail.wait_with_output().unwrap();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen[2..].iter().all(|l| l.contains("replacement")),
        "{seen:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the file was replaced"), "{stderr}");
}
