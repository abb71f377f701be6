//! Crash test: a child process appends from several threads and prints every acknowledged event;
//! the parent kills it with SIGKILL at a random moment, reopens the file and checks that it
//! opens, that every acknowledged event is there byte for byte, that positions and per-intent
//! sequences have no hole, that chains verify, and that appending works again.
//!
//! `OIDB_CRASH_ROUNDS` sets the number of rounds (default 30); `OIDB_SEED` replays a run.

mod invariants;
mod prng;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oidb::{Durability, Event, EventType, Level, NewEvent, Store};
use prng::Prng;
use serde_json::json;

/// Makes `crash_child` run as the writer: the path of the store.
const CHILD_PATH: &str = "OIDB_CRASH_CHILD";
/// The child's durability: `immediate` or `deferred:<window in ms>`.
const CHILD_DURABILITY: &str = "OIDB_CRASH_DURABILITY";
/// The child's random seed.
const CHILD_SEED: &str = "OIDB_CRASH_CHILD_SEED";
/// How long each writer thread of the child pauses between appends, in ms: without fsync a
/// deferred writer appends so fast that checking what it wrote would dominate the test.
const CHILD_PAUSE: &str = "OIDB_CRASH_CHILD_PAUSE_MS";

const WRITER_THREADS: u64 = 4;
/// The deferred window the deferred rounds use.
const DEFERRED_WINDOW: Duration = Duration::from_millis(100);
/// Slack on top of the window for the flush itself on a busy machine: an event acknowledged
/// longer than window + slack before the kill must have survived it.
const DEFERRED_SLACK: Duration = Duration::from_secs(2);

fn rounds() -> u64 {
    std::env::var("OIDB_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// An event the child acknowledged: when, and its wire form as the child got it back.
struct Acknowledged {
    at_micros: u64,
    json: String,
}

/// What one round's child did before it was killed.
struct Round {
    acknowledged: Vec<Acknowledged>,
    killed_at_micros: u64,
    child_errors: Vec<String>,
}

/// Starts the writer child, kills it after `run_for`, and collects every complete line it wrote.
fn run_child(path: &Path, durability: &str, pause_ms: u64, seed: u64, run_for: Duration) -> Round {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env(CHILD_PATH, path)
        .env(CHILD_DURABILITY, durability)
        .env(CHILD_SEED, seed.to_string())
        .env(CHILD_PAUSE, pause_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return lines,
                // A line cut by the kill has no newline: the child never finished saying it.
                Ok(_) if line.last() != Some(&b'\n') => return lines,
                Ok(_) => lines.push(String::from_utf8(line).unwrap()),
            }
        }
    });
    std::thread::sleep(run_for);
    let killed_at_micros = micros_now();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut acknowledged = Vec::new();
    let mut child_errors = Vec::new();
    for line in reader.join().unwrap() {
        let line = line.trim_end();
        if let Some(ack) = line.strip_prefix("ack ") {
            let (at, json) = ack.split_once(' ').unwrap();
            acknowledged.push(Acknowledged {
                at_micros: at.parse().unwrap(),
                json: json.to_owned(),
            });
        } else if let Some(error) = line.strip_prefix("error ") {
            child_errors.push(error.to_owned());
        }
    }
    Round {
        acknowledged,
        killed_at_micros,
        child_errors,
    }
}

/// Reopens after a crash: the file opens, is consistent, and appending works again.
fn reopen_and_check(path: &Path, round: u64) -> (Store, Vec<Event>) {
    let store = Store::open(path)
        .unwrap_or_else(|e| panic!("round {round}: the file does not reopen: {e}"));
    let events = invariants::assert_consistent(&store);
    (store, events)
}

fn position_of(json: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["position"].as_u64().unwrap()
}

#[test]
fn immediate_appends_survive_sigkill() {
    let mut rng = Prng::from_env_or_time("immediate_appends_survive_sigkill");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.oidb");
    // Every event acknowledged in any round, by position, as the writer got it back.
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    let rounds = rounds();
    let mut total_acknowledged = 0;
    for round in 0..rounds {
        // Some kills land while the child opens (and repairs) the file, most while it appends.
        let run_for = Duration::from_millis(rng.range(5, 400));
        let result = run_child(&path, "immediate", 0, rng.next_u64(), run_for);
        assert!(
            result.child_errors.is_empty(),
            "round {round}: the writer failed: {:?}",
            result.child_errors
        );
        total_acknowledged += result.acknowledged.len();
        for ack in result.acknowledged {
            let previous = acknowledged.insert(position_of(&ack.json), ack.json);
            assert!(
                previous.is_none(),
                "round {round}: a position was acknowledged twice"
            );
        }
        let (store, events) = reopen_and_check(&path, round);
        for (position, json) in &acknowledged {
            let stored = events.get(*position as usize - 1).unwrap_or_else(|| {
                panic!("round {round}: acknowledged event at {position} is lost")
            });
            assert_eq!(
                &serde_json::to_string(stored).unwrap(),
                json,
                "round {round}: event at {position} changed"
            );
        }
        let after = store
            .log_event("after-crash", EventType::Comment, json!({"round": round}))
            .unwrap_or_else(|e| panic!("round {round}: appending after the crash fails: {e}"));
        assert_eq!(after.position, events.len() as u64 + 1);
        acknowledged.insert(after.position, serde_json::to_string(&after).unwrap());
    }
    eprintln!(
        "{rounds} SIGKILL rounds, {total_acknowledged} acknowledged appends, {} events in the file, none lost",
        acknowledged.len()
    );
    assert!(
        total_acknowledged > 0,
        "no round acknowledged anything: the child never wrote"
    );
}

#[test]
fn deferred_appends_lose_at_most_the_last_window() {
    let mut rng = Prng::from_env_or_time("deferred_appends_lose_at_most_the_last_window");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deferred.oidb");
    let durability = format!("deferred:{}", DEFERRED_WINDOW.as_millis());
    let bound = (DEFERRED_WINDOW + DEFERRED_SLACK).as_micros() as u64;
    let mut kept: BTreeMap<u64, String> = BTreeMap::new();
    let rounds = (rounds() / 5).max(4);
    let (mut total_acknowledged, mut total_lost, mut rounds_with_loss) = (0, 0, 0);
    let mut oldest_lost_micros = 0;
    for round in 0..rounds {
        let run_for = DEFERRED_WINDOW + DEFERRED_SLACK + Duration::from_millis(rng.range(200, 800));
        let result = run_child(&path, &durability, 5, rng.next_u64(), run_for);
        assert!(
            result.child_errors.is_empty(),
            "round {round}: the writer failed: {:?}",
            result.child_errors
        );
        let (store, events) = reopen_and_check(&path, round);
        total_acknowledged += result.acknowledged.len();
        let mut lost = 0;
        for ack in &result.acknowledged {
            let position = position_of(&ack.json);
            match events.get(position as usize - 1) {
                Some(stored) => {
                    assert_eq!(
                        serde_json::to_string(stored).unwrap(),
                        ack.json,
                        "round {round}: event at {position} changed"
                    );
                }
                None => {
                    let age = result.killed_at_micros.saturating_sub(ack.at_micros);
                    assert!(
                        age < bound,
                        "round {round}: event at {position}, acknowledged {} ms before the crash, is lost; \
                         the deferred window is {} ms",
                        age / 1000,
                        DEFERRED_WINDOW.as_millis()
                    );
                    lost += 1;
                    oldest_lost_micros = oldest_lost_micros.max(age);
                }
            }
        }
        // What survived earlier rounds survives this one.
        for (position, json) in &kept {
            assert_eq!(
                events
                    .get(*position as usize - 1)
                    .map(|e| serde_json::to_string(e).unwrap())
                    .as_ref(),
                Some(json),
                "round {round}: event at {position}, durable in an earlier round, is lost"
            );
        }
        for event in &events {
            kept.insert(event.position, serde_json::to_string(event).unwrap());
        }
        total_lost += lost;
        rounds_with_loss += u64::from(lost > 0);
        store
            .log_event("after-crash", EventType::Comment, json!({"round": round}))
            .unwrap();
        store.flush().unwrap();
    }
    eprintln!(
        "{rounds} SIGKILL rounds with a {} ms deferred window: {total_acknowledged} acknowledged, \
         {total_lost} lost in the last window ({rounds_with_loss} rounds lost some; the oldest lost \
         was acknowledged {} ms before the kill)",
        DEFERRED_WINDOW.as_millis(),
        oldest_lost_micros / 1000
    );
    assert!(total_acknowledged > 0);
}

/// The writer: appends from several threads until it is killed, printing each acknowledged
/// event as `ack <micros> <wire JSON>` on its own line.
#[test]
#[ignore = "the writer process of the crash tests; it runs until killed"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_PATH) else {
        return;
    };
    let durability = match std::env::var(CHILD_DURABILITY).as_deref() {
        Ok("immediate") | Err(_) => Durability::Immediate,
        Ok(deferred) => {
            let millis = deferred.strip_prefix("deferred:").unwrap().parse().unwrap();
            Durability::Deferred {
                window: Duration::from_millis(millis),
            }
        }
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let pause = Duration::from_millis(std::env::var(CHILD_PAUSE).unwrap().parse().unwrap());
    // Ends the line libtest began ("test crash_child ... "), so that every line we print is whole.
    println!();
    let store = Store::builder().durability(durability).open(&path).unwrap();
    let types = [
        EventType::Comment,
        EventType::StatePatched,
        EventType::parse("llm_request_completed"),
        EventType::parse("tool_call_started"),
        EventType::parse("custom.crash_test"),
    ];
    std::thread::scope(|scope| {
        for thread in 0..WRITER_THREADS {
            let (store, types) = (&store, &types);
            scope.spawn(move || {
                let mut rng = Prng::new(seed ^ (thread + 1).wrapping_mul(0x9E37_79B9));
                for n in 0.. {
                    let batch_size = if rng.range(0, 3) == 0 {
                        rng.range(2, 5)
                    } else {
                        1
                    };
                    let mut event = |k: u64| {
                        let mut event = NewEvent::new(
                            format!("intent-{}", rng.range(0, 6)),
                            types[rng.range(0, types.len() as u64) as usize].clone(),
                            format!("writer-{thread}"),
                        )
                        .payload(json!({
                            "thread": thread,
                            "n": n,
                            "k": k,
                            "blob": "b".repeat(rng.range(0, 2000) as usize),
                        }))
                        .level(Level::ALL[rng.range(0, 6) as usize]);
                        if rng.range(0, 4) == 0 {
                            event = event.trace_id(format!("{:032x}", rng.range(1, 4)));
                        }
                        event
                    };
                    let result = if batch_size > 1 {
                        let batch: Vec<NewEvent> = (0..batch_size).map(&mut event).collect();
                        store.append_batch(batch)
                    } else {
                        store.append(event(0)).map(|e| vec![e])
                    };
                    let mut out = std::io::stdout().lock();
                    match result {
                        Ok(events) => {
                            let at = micros_now();
                            for event in events {
                                writeln!(
                                    out,
                                    "ack {at} {}",
                                    serde_json::to_string(&event).unwrap()
                                )
                                .unwrap();
                            }
                        }
                        Err(error) => writeln!(out, "error {error}").unwrap(),
                    }
                    out.flush().unwrap();
                    drop(out);
                    std::thread::sleep(pause);
                }
            });
        }
    });
}

/// Deferred appends reach the file when the last handle closes, and the file is free at once.
#[test]
fn deferred_appends_are_kept_when_the_last_handle_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closed.oidb");
    let deferred = Durability::Deferred {
        window: Duration::from_secs(3600),
    };
    let store = Store::builder().durability(deferred).open(&path).unwrap();
    let clone = store.clone();
    let appended: Vec<Event> = (0..50)
        .map(|i| {
            clone
                .log_event("intent", EventType::Comment, json!({"i": i}))
                .unwrap()
        })
        .collect();
    drop(store);
    drop(clone);
    let reopened = Store::open(&path).expect("the file is free once the last handle is gone");
    let events = invariants::assert_consistent(&reopened);
    assert_eq!(events, appended);
}
