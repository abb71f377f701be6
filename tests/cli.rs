//! The `oidb` command, run as a user runs it: exit codes, messages, and what each subcommand
//! prints, on the OpenIntent fixtures.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use oidb::{EventType, Level, NewEvent, Store};
use redb::ReadableTable;
use serde_json::{json, Value};

/// The result of one run of the command.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success; stderr:\n{}", self.stderr);
        self
    }

    fn failed(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn jsonl(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

fn oidb_in(dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the oidb binary runs");
    Run {
        code: status.code().expect("an exit code, not a signal"),
        stdout: String::from_utf8(stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(stderr).expect("UTF-8 stderr"),
    }
}

fn oidb(args: &[&str]) -> Run {
    oidb_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

fn fixture_events(name: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

/// A temporary directory and a store in it, imported from a fixture.
fn imported(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.oidb");
    oidb(&["import", &text(&file), &fixture(name)]).ok();
    (dir, file)
}

fn field<'a>(event: &'a Value, key: &str) -> &'a str {
    event[key].as_str().unwrap_or_default()
}

#[test]
fn import_then_export_round_trips_chained_events_exactly() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let exported = oidb(&["export", &text(&file)]).ok().jsonl();
    let original = fixture_events("openintent_chained.jsonl");
    assert_eq!(exported.len(), original.len());
    for (position, (out, input)) in exported.iter().zip(&original).enumerate() {
        let mut out = out.clone();
        assert_eq!(out["position"], json!(position + 1));
        out.as_object_mut().unwrap().remove("position");
        assert_eq!(&out, input, "event {position} changed on the way");
    }

    // The export imports into another file with every hash unchanged.
    let copy = dir.path().join("copy.oidb");
    let out = dir.path().join("export.jsonl");
    oidb(&["export", &text(&file), "--out", &text(&out)]).ok();
    assert!(!dir.path().join("export.jsonl.partial").exists());
    oidb(&["import", &text(&copy), &text(&out)]).ok();
    assert_eq!(oidb(&["export", &text(&copy)]).ok().jsonl(), exported);
}

#[test]
fn import_then_export_keeps_server_style_events_and_chains_them() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let exported = oidb(&["export", &text(&file)]).ok().jsonl();
    let original = fixture_events("openintent_events.jsonl");
    assert_eq!(exported.len(), original.len());
    for (out, input) in exported.iter().zip(&original) {
        for key in [
            "id",
            "intent_id",
            "event_type",
            "actor",
            "payload",
            "trace_id",
        ] {
            assert_eq!(out.get(key), input.get(key), "{key} of {}", input["id"]);
        }
        // Naive server times are UTC; the export writes them with a Z.
        assert_eq!(
            field(out, "created_at"),
            format!("{}Z", field(input, "created_at"))
        );
        assert!(field(out, "event_hash").starts_with("sha256:"));
    }
}

#[test]
fn importing_twice_writes_nothing_new() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let again = oidb(&[
        "import",
        &text(&file),
        &fixture("openintent_events.jsonl"),
        "--json",
    ])
    .ok();
    let report: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report["read"], 55);
    assert_eq!(report["appended"], 0);
    assert_eq!(report["already_present"], 55);
}

#[test]
fn a_json_array_imports_like_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let array = dir.path().join("events.json");
    let events = fixture_events("openintent_chained.jsonl");
    std::fs::write(&array, serde_json::to_string_pretty(&events).unwrap()).unwrap();
    let file = dir.path().join("a.oidb");
    let run = oidb(&["import", &text(&file), &text(&array)]).ok();
    assert!(
        run.stdout.contains("54 events read, 54 new"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_tampered_chained_import_names_the_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.oidb");
    let run = oidb(&[
        "import",
        &text(&file),
        &fixture("openintent_chained_tampered.jsonl"),
    ])
    .failed(1);
    assert!(run.stderr.contains("line 28"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing of it was imported"),
        "{}",
        run.stderr
    );
    let stats: Value =
        serde_json::from_str(&oidb(&["stats", &text(&file), "--json"]).ok().stdout).unwrap();
    assert_eq!(stats["events"], 0);
}

#[test]
fn a_large_import_that_stops_midway_goes_on_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let file = dir.path().join("big.oidb");
    let line = |i: usize| {
        json!({
            "id": format!("00000000-0000-4000-8000-{i:012}"),
            "intent_id": format!("intent-{}", i % 7),
            "event_type": "comment",
            "actor": "agent",
            "payload": {"i": i},
            "created_at": "2026-11-20T09:00:00.000000",
        })
        .to_string()
    };
    let mut lines: Vec<String> = (1..=5_003).map(line).collect();
    lines[5_001] = "{ not json".to_owned(); // line 5002
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = oidb(&["import", &text(&file), &text(&input)]).failed(1);
    assert!(run.stderr.contains("line 5002"), "{}", run.stderr);
    assert!(
        run.stderr.contains("first 5,000 lines are imported"),
        "{}",
        run.stderr
    );

    lines[5_001] = line(5_002);
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = oidb(&["import", &text(&file), &text(&input), "--json"]).ok();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["read"], 5_003);
    assert_eq!(report["appended"], 3);
    assert_eq!(report["already_present"], 5_000);
}

#[test]
fn stats_counts_what_the_fixture_holds() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let stats: Value =
        serde_json::from_str(&oidb(&["stats", &text(&file), "--json"]).ok().stdout).unwrap();
    assert_eq!(stats["events"], 55);
    assert_eq!(stats["intents"], 3);
    assert_eq!(stats["event_types"]["stream_chunk"], 12);
    assert_eq!(stats["actors"]["agent-critic"], 54);
    assert_eq!(stats["first_event_at"], "2026-11-20T09:00:07.097374Z");
    assert_eq!(stats["format_version"], oidb::FORMAT_VERSION);
    assert!(stats["live_bytes"].as_u64().unwrap() <= stats["file_bytes"].as_u64().unwrap());

    let table = oidb(&["stats", &text(&file)]).ok().stdout;
    assert!(
        table.contains("events        55 (positions 1 to 55)"),
        "{table}"
    );
    assert!(table.contains("intents       3"), "{table}");
}

/// Runs `oidb events FILE ARGS --jsonl` and returns the events.
fn events(file: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events", file.to_str().unwrap()];
    all.extend_from_slice(args);
    all.push("--jsonl");
    oidb(&all).ok().jsonl()
}

#[test]
fn filters_select_what_they_say() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let all = fixture_events("openintent_events.jsonl");
    let count_where = |keep: &dyn Fn(&Value) -> bool| all.iter().filter(|e| keep(e)).count();

    let llm = events(&file, &["--type", "llm_*"]);
    assert_eq!(
        llm.len(),
        count_where(&|e| field(e, "event_type").starts_with("llm_"))
    );
    assert_eq!(llm.len(), 12);

    let some = events(&file, &["--type", "comment", "--type", "stream_*"]);
    assert_eq!(
        some.len(),
        count_where(&|e| {
            let t = field(e, "event_type");
            t == "comment" || t.starts_with("stream_")
        })
    );

    let intent = field(&all[0], "intent_id");
    let one = events(&file, &["--intent", intent]);
    assert_eq!(one.len(), count_where(&|e| field(e, "intent_id") == intent));
    let sequences: Vec<u64> = one
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=one.len() as u64).collect::<Vec<_>>());

    let research = events(&file, &["--actor", "agent-research"]);
    assert_eq!(research.len(), 1);

    let trace = field(&all[2], "trace_id");
    let traced = events(&file, &["--trace", trace]);
    assert!(!traced.is_empty());
    assert_eq!(
        traced.len(),
        count_where(&|e| field(e, "trace_id") == trace)
    );

    let (since, until) = ("2026-11-20T09:00:10Z", "2026-11-20T09:00:15Z");
    let window = events(&file, &["--since", since, "--until", until]);
    let in_window = |e: &Value| {
        let t = format!("{}Z", field(e, "created_at"));
        t.as_str() >= "2026-11-20T09:00:10.000000Z" && t.as_str() < "2026-11-20T09:00:15.000000Z"
    };
    assert!(!window.is_empty());
    assert_eq!(window.len(), count_where(&in_window));

    // Ages count back from now: every fixture event is older than a day.
    assert!(events(&file, &["--since", "1d"]).is_empty());
    assert_eq!(events(&file, &["--until", "1d"]).len(), all.len());
}

#[test]
fn the_level_filter_keeps_that_level_and_above() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("levels.oidb");
    let store = Store::open(&file).unwrap();
    for level in Level::ALL {
        store
            .append(NewEvent::new("i", EventType::Status, "agent").level(level))
            .unwrap();
    }
    drop(store);
    let warn = events(&file, &["--level", "warn"]);
    let levels: Vec<&str> = warn.iter().map(|e| field(e, "level")).collect();
    assert_eq!(levels, ["WARN", "ERROR", "FATAL"]);
    assert_eq!(events(&file, &["--level", "TRACE"]).len(), 6);
}

#[test]
fn pages_follow_their_cursor_in_either_order() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let all = events(&file, &[]);
    let first = oidb(&["events", &text(&file), "--limit", "20", "--jsonl"]).ok();
    assert_eq!(first.jsonl().len(), 20);
    assert!(first.stderr.contains("--after 20"), "{}", first.stderr);
    let rest = events(&file, &["--after", "20"]);
    let mut joined = first.jsonl();
    joined.extend(rest);
    assert_eq!(joined, all);

    let newest = events(&file, &["--reverse", "--limit", "3"]);
    let positions: Vec<u64> = newest
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [55, 54, 53]);
    let before = events(&file, &["--reverse", "--after", "53", "--limit", "2"]);
    let positions: Vec<u64> = before
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [52, 51]);
}

#[test]
fn json_output_is_one_array_of_the_jsonl_events() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let array: Value =
        serde_json::from_str(&oidb(&["events", &text(&file), "--json"]).ok().stdout).unwrap();
    assert_eq!(array, Value::Array(events(&file, &[])));
    let empty: Value = serde_json::from_str(
        &oidb(&["events", &text(&file), "--json", "--actor", "nobody"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(empty, json!([]));
}

#[test]
fn the_table_shows_one_row_an_event_under_a_header() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let table = oidb(&["events", &text(&file), "--type", "llm_request_failed"])
        .ok()
        .stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].contains("POS") && lines[0].contains("SUMMARY"));
    assert!(lines[1].contains("llm_request_failed"));
    assert!(lines[1].contains("model=deepseek-chat"), "{}", lines[1]);
    assert!(lines[1].contains("RateLimitError"), "{}", lines[1]);
}

#[test]
fn show_prints_one_event_and_checks_its_hash() {
    let (_dir, file) = imported("openintent_chained.jsonl");
    let original = fixture_events("openintent_chained.jsonl");
    let id = field(&original[2], "id");
    let by_id = oidb(&["show", &text(&file), id]).ok().stdout;
    assert!(
        by_id.contains(&format!("id                   {id}")),
        "{by_id}"
    );
    assert!(by_id.contains("(recomputed: matches)"), "{by_id}");
    assert!(by_id.contains("\"model\": \"gpt-4o\""), "{by_id}");

    let json: Value =
        serde_json::from_str(&oidb(&["show", &text(&file), "3", "--json"]).ok().stdout).unwrap();
    assert_eq!(json["id"], original[2]["id"]);
    assert_eq!(json["event_hash"], original[2]["event_hash"]);

    let missing = oidb(&["show", &text(&file), "99"]).failed(1);
    assert!(
        missing.stderr.contains("no event at position 99"),
        "{}",
        missing.stderr
    );
}

#[test]
fn show_exits_3_when_an_event_was_changed_after_it_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("changed.oidb");
    let store = Store::open(&file).unwrap();
    store
        .log_event("i", EventType::Comment, json!({"message": "hello"}))
        .unwrap();
    drop(store);
    // Change the stored record behind oidb's back, as an attacker with the file could.
    const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let db = redb::Database::open(&file).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(EVENTS).unwrap();
        let record = table.get(1).unwrap().unwrap().value().to_vec();
        let at = record.windows(5).position(|w| w == b"hello").unwrap();
        let mut changed = record.clone();
        changed[at] = b'j';
        table.insert(1, changed.as_slice()).unwrap();
    }
    txn.commit().unwrap();
    drop(db);

    let run = oidb(&["show", &text(&file), "1"]).failed(3);
    assert!(run.stdout.contains("DOES NOT MATCH"), "{}", run.stdout);
    assert!(run.stderr.contains("verification failed"), "{}", run.stderr);
    assert!(
        run.stderr.contains("changed after it was written"),
        "{}",
        run.stderr
    );
}

#[test]
fn tail_shows_the_last_events_oldest_first() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let last = oidb(&["tail", &text(&file), "-n", "3", "--jsonl"])
        .ok()
        .jsonl();
    let positions: Vec<u64> = last
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [53, 54, 55]);
    let llm = oidb(&[
        "tail",
        &text(&file),
        "-n",
        "2",
        "--type",
        "llm_*",
        "--jsonl",
    ])
    .ok()
    .jsonl();
    assert!(llm
        .iter()
        .all(|e| field(e, "event_type").starts_with("llm_")));
    assert_eq!(llm.len(), 2);
}

#[test]
fn tail_follow_shows_events_written_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.oidb");
    let store = Store::open(&file).unwrap();
    for i in 0..3 {
        store
            .log_event("i", EventType::Comment, json!({"i": i}))
            .unwrap();
    }
    drop(store);

    let mut child = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["tail", file.to_str().unwrap(), "-f", "-n", "2", "--jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // A deadline, so that a broken follow fails the test instead of hanging it.
    let next = || -> Value {
        let line = received
            .recv_timeout(Duration::from_secs(120))
            .expect("tail -f printed nothing");
        serde_json::from_str(&line).unwrap()
    };
    assert_eq!(next()["position"], 2);
    assert_eq!(next()["position"], 3);

    // The tail has printed and let go of the file: a writer can open it.
    let store = Store::open(&file).unwrap();
    for i in 3..6 {
        store
            .log_event("i", EventType::Comment, json!({"i": i}))
            .unwrap();
    }
    drop(store);
    for position in 4..=6 {
        let event = next();
        assert_eq!(event["position"], position);
        assert_eq!(event["payload"]["i"], position - 1);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn compact_keeps_every_event() {
    let (_dir, file) = imported("openintent_chained.jsonl");
    let before = oidb(&["export", &text(&file)]).ok().stdout;
    let run = oidb(&["compact", &text(&file)]).ok();
    assert!(
        run.stdout.contains("compacted") || run.stdout.contains("already compact"),
        "{}",
        run.stdout
    );
    assert_eq!(oidb(&["export", &text(&file)]).ok().stdout, before);
}

#[test]
fn demo_writes_a_run_reads_it_back_and_replaces_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = oidb_in(dir.path(), &["demo"]).ok();
    for expected in [
        "Wrote a simulated agent run to demo.oidb",
        "Events by type",
        "llm_request_failed",
        "claude-sonnet-4",
        "intact",
        "Try next:",
        "oidb events demo.oidb --type 'llm_*'",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} in\n{}",
            run.stdout
        );
    }
    let file = dir.path().join("demo.oidb");
    let all = events(&file, &[]);
    let types: Vec<&str> = all.iter().map(|e| field(e, "event_type")).collect();
    for kind in [
        "intent_created",
        "llm_request_started",
        "llm_request_completed",
        "llm_request_failed",
        "stream_started",
        "stream_chunk",
        "stream_completed",
        "tool_call_started",
        "tool_call_completed",
        "thinking_start",
        "thinking",
        "thinking_end",
    ] {
        assert!(types.contains(&kind), "no {kind} in the demo");
    }
    // One trace across the run; each parent named is an event of the file, written before.
    let trace = field(&all[0], "trace_id");
    assert_eq!(trace.len(), 32);
    assert!(all.iter().all(|e| field(e, "trace_id") == trace));
    for event in all.iter().filter(|e| e.get("parent_event_id").is_some()) {
        let parent = field(event, "parent_event_id");
        let found = all
            .iter()
            .find(|e| field(e, "id") == parent)
            .expect("parent");
        assert!(found["position"].as_u64() < event["position"].as_u64());
    }
    // The summary's tokens are the payloads' tokens.
    let total: u64 = all
        .iter()
        .filter(|e| field(e, "event_type") == "llm_request_completed")
        .map(|e| e["payload"]["total_tokens"].as_u64().unwrap())
        .sum();
    let all_models = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("all models"))
        .unwrap();
    let shown = all_models
        .split_whitespace()
        .nth(6)
        .unwrap()
        .replace(',', "");
    assert_eq!(shown, total.to_string(), "{all_models}");

    let again = oidb_in(dir.path(), &["demo"]).ok();
    assert!(again.stdout.contains("replaced the earlier demo.oidb"));
    assert_eq!(events(&file, &[]).len(), all.len());
}

#[test]
fn demo_never_overwrites_a_file_that_is_not_oidb() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes").unwrap();
    let run = oidb(&["demo", &text(&notes)]).failed(1);
    assert!(run.stderr.contains("is not an oidb file"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes");
}

#[test]
fn bad_arguments_exit_2_and_say_what_is_wrong() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let f = text(&file);
    for (args, hint) in [
        (vec!["events", &f, "--since", "yesterday"], "RFC 3339"),
        (vec!["events", &f, "--since", "3x"], "unknown unit"),
        (vec!["events", &f, "--trace", "XYZ"], "32 lowercase hex"),
        (vec!["events", &f, "--level", "LOUD"], "use TRACE, DEBUG"),
        (vec!["events", &f, "--after", "ten"], "cursor"),
        (vec!["events", &f, "--type", "l*m*"], "trailing `*`"),
        (
            vec!["events", &f, "--json", "--jsonl"],
            "cannot be used with",
        ),
        (vec!["show", &f, "not-an-id"], "neither an event id"),
        (vec!["events"], "FILE"),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ] {
        let run = oidb(&args).failed(2);
        assert!(
            run.stderr.contains(hint),
            "{args:?}: {hint:?} in\n{}",
            run.stderr
        );
    }
    let help = oidb(&["--help"]).ok().stdout;
    assert!(help.contains("Exit codes: 0 ok, 1 error, 2 bad arguments, 3 verification failed"));
}

#[test]
fn a_missing_file_is_named_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here.oidb");
    for command in ["stats", "events", "tail", "export", "compact"] {
        let run = oidb(&[command, &text(&missing)]).failed(1);
        assert!(
            run.stderr.contains("nothing-here.oidb: no such file"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("oidb import"), "{}", run.stderr);
        assert!(!missing.exists(), "{command} created the file");
    }
}

#[test]
fn a_file_that_is_not_oidb_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.oidb");
    std::fs::write(&text_file, "just some text\n").unwrap();
    let sqlite = dir.path().join("app.db");
    std::fs::write(&sqlite, b"SQLite format 3\0 and then pages").unwrap();
    for (file, reason) in [
        (&text_file, "does not start with the redb file signature"),
        (&sqlite, "it is a SQLite database"),
    ] {
        let before = std::fs::read(file).unwrap();
        for command in ["stats", "events", "compact"] {
            let run = oidb(&[command, &text(file)]).failed(1);
            assert!(
                run.stderr.contains("is not an oidb store"),
                "{}",
                run.stderr
            );
            assert!(run.stderr.contains(reason), "{}", run.stderr);
        }
        let run = oidb(&["import", &text(file), &fixture("openintent_events.jsonl")]).failed(1);
        assert!(
            run.stderr.contains("is not an oidb store"),
            "{}",
            run.stderr
        );
        assert_eq!(&std::fs::read(file).unwrap(), &before);
    }
}

#[test]
fn a_file_in_use_says_what_is_happening_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("busy.oidb");
    let store = Store::open(&file).unwrap();
    store.log_event("i", EventType::Comment, json!({})).unwrap();
    for args in [
        vec!["stats", file.to_str().unwrap()],
        vec!["events", file.to_str().unwrap()],
        vec![
            "import",
            file.to_str().unwrap(),
            &fixture("openintent_events.jsonl"),
        ],
        vec!["compact", file.to_str().unwrap()],
    ] {
        let run = oidb(&args).failed(1);
        assert!(
            run.stderr
                .contains("busy.oidb is in use by another process"),
            "{}",
            run.stderr
        );
        assert!(run
            .stderr
            .contains("Run this again once that process has closed the file"));
    }
    drop(store);
    oidb(&["stats", file.to_str().unwrap()]).ok();
}

#[test]
fn a_reader_that_stops_reading_ends_the_command_quietly() {
    let (_dir, file) = imported("openintent_events.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["events", file.to_str().unwrap(), "--jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // as `| head -0` does
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn import_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stdin.oidb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["import", file.to_str().unwrap(), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture("openintent_chained.jsonl")).unwrap())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("imported stdin"));
    assert_eq!(events(&file, &[]).len(), 54);
}

#[test]
fn a_file_whose_writer_was_killed_is_repaired_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crashed.oidb");
    oidb(&["import", &text(&file), &fixture("openintent_chained.jsonl")]).ok();
    // An import from a stdin that never ends holds the file open for writing; then it is killed.
    let mut writer = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["import", file.to_str().unwrap(), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !matches!(
        oidb::ReadOnlyStore::open(&file),
        Err(oidb::Error::FileInUse { .. })
    ) {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never opened the file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert!(matches!(
        oidb::ReadOnlyStore::open(&file),
        Err(oidb::Error::NeedsRepair { .. })
    ));

    let run = oidb(&["stats", &text(&file), "--json"]).ok();
    assert!(
        run.stderr.contains("was not closed cleanly"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("repaired it"), "{}", run.stderr);
    let stats: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(stats["events"], 54);
}
