//! The `oidb` command, run as a user runs it: exit codes, messages, and what each subcommand
//! prints, on the OpenIntent fixtures.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileTypeExt as _;
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
    assert!(
        !file.exists(),
        "nothing was imported, so the new file is not kept"
    );
}

/// An event as a JSONL line, its id made from `i`.
fn numbered_line(i: usize) -> String {
    json!({
        "id": format!("00000000-0000-4000-8000-{i:012}"),
        "intent_id": format!("intent-{}", i % 7),
        "event_type": "comment",
        "actor": "agent",
        "payload": {"i": i},
        "created_at": "2026-11-20T09:00:00.000000",
    })
    .to_string()
}

#[test]
fn a_large_import_that_stops_midway_goes_on_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let file = dir.path().join("big.oidb");
    let mut lines: Vec<String> = (1..=5_003).map(numbered_line).collect();
    lines[5_001] = "{ not json".to_owned(); // line 5002
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = oidb(&["import", &text(&file), &text(&input)]).failed(1);
    assert!(run.stderr.contains("line 5002"), "{}", run.stderr);
    assert!(
        run.stderr.contains("first 5,000 lines are imported"),
        "{}",
        run.stderr
    );

    lines[5_001] = numbered_line(5_002);
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = oidb(&["import", &text(&file), &text(&input), "--json"]).ok();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["read"], 5_003);
    assert_eq!(report["appended"], 3);
    assert_eq!(report["already_present"], 5_000);
}

#[test]
fn a_byte_that_is_not_utf8_is_named_by_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let file = dir.path().join("big.oidb");
    let mut bytes = Vec::new();
    for i in 1..=5_010 {
        let mut line = numbered_line(i).into_bytes();
        if i == 5_007 {
            line.push(0xff);
        }
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
    }
    std::fs::write(&input, bytes).unwrap();
    let run = oidb(&["import", &text(&file), &text(&input)]).failed(1);
    assert!(
        run.stderr.contains("line 5007") && run.stderr.contains("UTF-8"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("first 5,000 lines are imported"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failed_import_into_a_new_file_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.oidb");
    let input = dir.path().join("bad.jsonl");
    std::fs::write(&input, "{ not json\n").unwrap();
    let run = oidb(&["import", &text(&file), &text(&input)]).failed(1);
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);
    assert!(!file.exists(), "the import created {}", file.display());
    let run = oidb(&["import", &text(&file), &text(dir.path())]).failed(1);
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
    assert!(!file.exists());
    // A file that was there before stays, even when the import adds nothing to it.
    oidb(&["import", &text(&file), &fixture("openintent_events.jsonl")]).ok();
    oidb(&["import", &text(&file), &text(&input)]).failed(1);
    assert!(file.exists());
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

/// Changes the first byte of `text` in the record at `position`, behind oidb's back, as an
/// attacker with the file could.
fn change_record(file: &Path, position: u64, text: &[u8], to: u8) {
    const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let db = redb::Database::open(file).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(EVENTS).unwrap();
        let record = table.get(position).unwrap().unwrap().value().to_vec();
        let at = record
            .windows(text.len())
            .position(|w| w == text)
            .expect("the text is in the record");
        let mut changed = record.clone();
        changed[at] = to;
        table.insert(position, changed.as_slice()).unwrap();
    }
    txn.commit().unwrap();
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
    change_record(&file, 1, b"hello", b'j');

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
fn verify_passes_an_intact_file_and_says_what_it_checked() {
    let (_dir, file) = imported("openintent_chained.jsonl");
    let run = oidb(&["verify", &text(&file)]).ok();
    assert!(run.stdout.contains("verifies: intact"), "{}", run.stdout);
    assert!(
        run.stdout.contains("3 intents, 54 events"),
        "{}",
        run.stdout
    );
    let report: Value =
        serde_json::from_str(&oidb(&["verify", &text(&file), "--json"]).ok().stdout)
            .expect("one JSON object");
    assert_eq!(report["valid"], true);
    assert_eq!(report["event_count"], 54);
    assert_eq!(report["chains"].as_array().unwrap().len(), 3);
    assert!(report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["chain_valid"] == true && c["breaks"] == json!([])));
}

#[test]
fn verify_exits_3_on_a_tampered_file_and_names_the_break() {
    let (_dir, file) = imported("openintent_chained.jsonl");
    // Position 28 is sequence 15 of intent dfe01893…: a stream_started by deepseek.
    change_record(&file, 28, b"deepseek", b'D');

    let run = oidb(&["verify", &text(&file)]).failed(3);
    assert!(run.stdout.contains("does NOT verify"), "{}", run.stdout);
    let break_line = run
        .stdout
        .lines()
        .find(|l| l.contains("hash_mismatch"))
        .unwrap_or_else(|| panic!("no hash_mismatch line in\n{}", run.stdout));
    for part in [
        "sequence 15",
        "event 27e9e06f-59b4-4e92-affd-deeaa842bc19",
        "position 28",
    ] {
        assert!(break_line.contains(part), "{part:?} in {break_line}");
    }
    assert!(
        run.stdout
            .contains("intent dfe01893-f3ae-40b6-87ac-1491def88334"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("the event was altered"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("verification failed"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 chain break in 1 of 3 intents"),
        "{}",
        run.stderr
    );

    let json = oidb(&["verify", &text(&file), "--json"]).failed(3);
    let report: Value = serde_json::from_str(&json.stdout).expect("one JSON object");
    assert_eq!(report["valid"], false);
    let broken: Vec<&Value> = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["valid"] == false)
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(
        broken[0]["intent_id"],
        "dfe01893-f3ae-40b6-87ac-1491def88334"
    );
    let breaks = broken[0]["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 1, "{breaks:?}");
    assert_eq!(breaks[0]["kind"], "hash_mismatch");
    assert_eq!(breaks[0]["sequence"], 15);
    assert_eq!(
        breaks[0]["event_id"],
        "27e9e06f-59b4-4e92-affd-deeaa842bc19"
    );
}

#[test]
fn verify_exits_3_on_a_tampered_file_even_when_no_one_reads_its_report() {
    let (_dir, file) = imported("openintent_chained.jsonl");
    change_record(&file, 28, b"deepseek", b'D');
    for command in [
        vec!["verify", &text(&file)],
        vec!["show", &text(&file), "28"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oidb"))
            .args(&command)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Whoever reads the output is gone before it is written, as in `oidb verify f | true`.
        drop(child.stdout.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "{command:?}");
    }
}

#[test]
fn verify_checks_checkpoints_in_the_file_and_kept_outside_it() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let store = Store::open(&file).unwrap();
    let checkpoint = store
        .create_checkpoint(&oidb::CheckpointScope::Store)
        .unwrap()
        .expect("a checkpoint over 54 events");
    drop(store);
    let kept = dir.path().join("checkpoint.json");
    std::fs::write(&kept, serde_json::to_string(&checkpoint).unwrap()).unwrap();

    let run = oidb(&["verify", &text(&file), "--checkpoint", &text(&kept)]).ok();
    assert!(run.stdout.contains("checkpoints  2"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&checkpoint.merkle_root),
        "{}",
        run.stdout
    );

    change_record(&file, 28, b"deepseek", b'D');
    let run = oidb(&[
        "verify",
        &text(&file),
        "--checkpoint",
        &text(&kept),
        "--json",
    ])
    .failed(3);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let checked = report["checkpoints"].as_array().unwrap();
    assert_eq!(checked.len(), 2);
    for c in checked {
        assert_eq!(c["verification"]["valid"], false, "{c}");
        assert_eq!(
            c["checkpoint"]["merkle_root"],
            json!(checkpoint.merkle_root)
        );
    }
    assert_eq!(checked[1]["source"], json!(text(&kept)));
    let problems = checked[0]["verification"]["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "altered"
                && p["event_id"] == "27e9e06f-59b4-4e92-affd-deeaa842bc19"),
        "{problems:?}"
    );
}

/// The fixture's finished LLM requests (completed or failed) as (time, model, prompt, completion,
/// failed).
fn fixture_requests(name: &str) -> Vec<(String, String, u64, u64, bool)> {
    fixture_events(name)
        .iter()
        .filter(|e| {
            matches!(
                field(e, "event_type"),
                "llm_request_completed" | "llm_request_failed"
            )
        })
        .map(|e| {
            let tokens = |key: &str| e["payload"][key].as_u64().unwrap_or(0);
            (
                field(e, "created_at").to_owned(),
                field(&e["payload"], "model").to_owned(),
                tokens("prompt_tokens"),
                tokens("completion_tokens"),
                field(e, "event_type") == "llm_request_failed",
            )
        })
        .collect()
}

fn costs_json(file: &Path, args: &[&str]) -> Value {
    let mut all = vec!["costs", file.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&oidb(&all).ok().stdout).expect("one JSON object")
}

fn group<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {report}"))
}

#[test]
fn costs_show_usage_by_model_and_say_it_is_unpriced() {
    let (_dir, file) = imported("openintent_chained.jsonl");
    let requests = fixture_requests("openintent_chained.jsonl");
    let report = costs_json(&file, &[]);
    assert_eq!(report["by"], "model");
    assert_eq!(report["prices"], Value::Null);
    for model in ["gpt-4o", "deepseek-chat"] {
        let of_model: Vec<_> = requests.iter().filter(|r| r.1 == model).collect();
        let llm = &group(&report, model)["llm"];
        assert_eq!(llm["requests"], of_model.len(), "{model}");
        assert_eq!(llm["failed"], of_model.iter().filter(|r| r.4).count());
        assert_eq!(
            llm["input_tokens"],
            of_model.iter().map(|r| r.2).sum::<u64>()
        );
        assert_eq!(
            llm["output_tokens"],
            of_model.iter().map(|r| r.3).sum::<u64>()
        );
        // No price table and no reported cost: unpriced, not zero.
        assert_eq!(group(&report, model)["cost"], json!({}));
        assert_eq!(group(&report, model)["unpriced"], true);
    }
    let unpriced = report["summary"]["unpriced"].as_array().unwrap();
    assert_eq!(unpriced.len(), 2);
    assert_eq!(report["summary"]["count"], 0);

    let run = oidb(&["costs", &text(&file)]).ok();
    assert!(
        run.stdout.contains("no costs recorded or priced"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Unpriced:"), "{}", run.stdout);
    let gpt = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("gpt-4o"))
        .unwrap();
    assert!(gpt.ends_with("unpriced"), "{gpt}");

    // Grouped by intent: the fixture's three intents, each with its own requests.
    let by_intent = costs_json(&file, &["--by", "intent"]);
    let keys: Vec<&str> = by_intent["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "6513270e-269e-4d37-b2a7-4de452e6b438",
            "73ccef03-46f5-41b4-b156-d1ad330c16a3",
            "dfe01893-f3ae-40b6-87ac-1491def88334"
        ]
    );
}

#[test]
fn costs_come_from_the_price_table_and_since_selects_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("priced.oidb");
    let store = Store::open(&file).unwrap();
    store
        .set_prices(
            &oidb::costs::PriceTable::new("USD")
                .with(oidb::costs::ModelPrice::new("openai", "gpt-4o", 2.5, 10.0)),
        )
        .unwrap();
    store
        .import_json(BufReader::new(
            std::fs::File::open(fixture("openintent_chained.jsonl")).unwrap(),
        ))
        .unwrap();
    drop(store);
    let requests = fixture_requests("openintent_chained.jsonl");
    // Per million tokens: 2.5 USD in, 10 USD out; in pico-USD per token: 2,500,000 and 10,000,000.
    let pico: u64 = requests
        .iter()
        .filter(|r| r.1 == "gpt-4o")
        .map(|r| r.2 * 2_500_000 + r.3 * 10_000_000)
        .sum();
    let usd = pico as f64 / 1e12;

    let report = costs_json(&file, &[]);
    assert_eq!(report["prices"]["version"], 1);
    let total = report["summary"]["by_unit"]["USD"]["total"]
        .as_f64()
        .unwrap();
    assert!((total - usd).abs() < 1e-12, "{total} vs {usd}");
    let gpt = group(&report, "gpt-4o")["cost"]["USD"].as_f64().unwrap();
    assert!((gpt - usd).abs() < 1e-12);
    assert_eq!(group(&report, "deepseek-chat")["unpriced"], true);

    let run = oidb(&["costs", &text(&file)]).ok();
    let deepseek = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("deepseek-chat"))
        .unwrap();
    assert!(deepseek.ends_with("unpriced"), "{deepseek}");
    assert!(run.stdout.contains("+ unpriced"), "{}", run.stdout);

    // --since: only what finished at or after the time.
    let since = "2026-11-20T09:00:17.000000Z";
    let later: Vec<_> = requests.iter().filter(|r| r.0.as_str() >= since).collect();
    let report = costs_json(&file, &["--since", since]);
    let counted: u64 = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["llm"]["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(counted, later.len() as u64);
    // The fixture is older than an hour: nothing in the last hour.
    assert_eq!(costs_json(&file, &["--since", "1h"])["groups"], json!([]));
}

#[test]
fn trace_shows_the_tree_of_a_trace_with_its_spans() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let trace = TRACE;
    let in_trace: Vec<Value> = fixture_events("openintent_chained.jsonl")
        .into_iter()
        .filter(|e| field(e, "trace_id") == trace)
        .collect();
    let run = oidb(&["trace", &text(&file), trace, "--json"]).ok();
    let tree: Value = serde_json::from_str(&run.stdout).expect("one JSON object");
    let nodes = tree["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), in_trace.len());
    for node in nodes {
        let id = field(&node["event"], "id");
        let original = in_trace.iter().find(|e| field(e, "id") == id).unwrap();
        // A node's parent is the event its parent_event_id names, when that is in the trace.
        let named = field(original, "parent_event_id");
        let parent_in_trace = in_trace.iter().any(|e| field(e, "id") == named);
        if parent_in_trace {
            assert_eq!(node["parent"], named);
        } else {
            assert_eq!(node["parent"], Value::Null);
            assert_eq!(node["depth"], 0);
        }
    }
    let failed = nodes
        .iter()
        .find(|n| n["span"]["outcome"] == "failed")
        .expect("the failed request's span");
    assert_eq!(failed["event"]["payload"]["model"], "deepseek-chat");
    assert_eq!(failed["span"]["kind"], "llm_request");
    assert_eq!(failed["span"]["reported_duration_ms"], 349.0);

    let run = oidb(&["trace", &text(&file), trace]).ok();
    assert!(
        run.stdout.starts_with(&format!("trace {trace}: 6 events")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[failed in"), "{}", run.stdout);
    assert!(
        run.stdout.contains("└ llm_request_failed") || run.stdout.contains("├ llm_request_failed")
    );

    let out = dir.path().join("trace.json");
    let run = oidb(&["trace", &text(&file), trace, "--otlp", &text(&out)]).ok();
    let otlp: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let spans: Vec<&Value> = otlp["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"].as_array().unwrap())
        .flat_map(|s| s["spans"].as_array().unwrap())
        .collect();
    assert!(
        run.stdout
            .starts_with(&format!("wrote {} spans", spans.len())),
        "{}",
        run.stdout
    );
    assert!(spans.iter().all(|s| s["traceId"] == trace));
    assert!(spans.iter().any(|s| s["name"] == "chat deepseek-chat"));

    let missing = oidb(&["trace", &text(&file), "0123456789abcdef0123456789abcdef"]).failed(1);
    assert!(
        missing.stderr.contains("no event of trace"),
        "{}",
        missing.stderr
    );
}

#[test]
fn import_gl_then_blocks_shows_the_fixture_s_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gl.oidb");
    let input = fixture("gllm_stream.jsonl");
    let run = oidb(&[
        "import",
        &text(&file),
        &input,
        "--gl",
        "--intent",
        "research-1",
    ])
    .ok();
    assert!(
        run.stdout.contains("30 events read, 30 new"),
        "{}",
        run.stdout
    );
    let again = oidb(&[
        "import",
        &text(&file),
        &input,
        "--gl",
        "--intent",
        "research-1",
    ])
    .ok();
    assert!(
        again.stdout.contains("0 new, 30 already there"),
        "{}",
        again.stdout
    );

    let lines = fixture_events("gllm_stream.jsonl");
    let thinking_of = |id: &str| -> String {
        lines
            .iter()
            .filter(|l| l["type"] == "thinking" && l["id"] == id)
            .map(|l| l["value"].as_str().unwrap())
            .collect()
    };
    let run = oidb(&["blocks", &text(&file), "research-1", "--json"]).ok();
    let blocks: Vec<Value> = serde_json::from_str(&run.stdout).expect("one JSON array");
    let kinds: Vec<&str> = blocks.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["thinking", "code", "thinking", "code"]);
    assert_eq!(blocks[0]["id"], "think-0");
    assert_eq!(blocks[0]["text"], thinking_of("think-0"));
    assert_eq!(blocks[2]["id"], "think-1");
    assert_eq!(blocks[2]["text"], thinking_of("think-1"));
    assert_eq!(blocks[1]["text"], "print(1 + 1)\n");
    assert_eq!(blocks[0]["started_at"], "2026-11-20T09:00:07.045000Z");
    assert_eq!(blocks[0]["ended_at"], "2026-11-20T09:00:07.184000Z");

    let code = oidb(&["blocks", &text(&file), "research-1", "--kind", "code"]).ok();
    assert!(
        code.stdout.contains("2 blocks (0 thinking, 2 code)"),
        "{}",
        code.stdout
    );
    assert!(code.stdout.contains("  print(1 + 1)"), "{}", code.stdout);

    // GL input needs its intent.
    let run = oidb(&["import", &text(&file), &input, "--gl"]).failed(2);
    assert!(run.stderr.contains("--intent"), "{}", run.stderr);
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

    // Another store written in its place (which may get the same inode number) is followed
    // from its start.
    std::fs::remove_file(&file).unwrap();
    let store = Store::open(&file).unwrap();
    for i in 0..8 {
        store
            .log_event("other", EventType::Comment, json!({"i": i}))
            .unwrap();
    }
    drop(store);
    for position in 1..=8 {
        let event = next();
        assert_eq!(event["position"], position);
        assert_eq!(event["intent_id"], "other");
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
fn demo_writes_a_run_live_reads_it_back_and_replaces_itself() {
    let dir = tempfile::tempdir().unwrap();
    let run = oidb_in(dir.path(), &["demo"]).ok();
    for expected in [
        "store.subscribe(Filter::new(), Start::Beginning)",
        "Events by type",
        "LLM requests by model",
        "claude-sonnet-4",
        "unpriced",
        "budget_alert",
        "Verified (Store::verify_all)",
        "intact",
        "sealed under Merkle root sha256:",
        "Try next:",
        "oidb verify demo.oidb",
        "oidb costs demo.oidb",
        "oidb trace demo.oidb",
        "oidb blocks demo.oidb",
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
        "code",
        "cost_recorded",
        "governance.policy_set",
        "budget_alert",
        "log.checkpoint.created",
    ] {
        assert!(types.contains(&kind), "no {kind} in the demo");
    }

    // The live feed printed every event once, in position order, as its own line.
    let feed: Vec<u64> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("POS"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(feed, (1..=all.len() as u64).collect::<Vec<_>>());

    // One trace; each parent named is an event of the file, written before.
    let traces: std::collections::BTreeSet<&str> = all
        .iter()
        .filter_map(|e| e.get("trace_id").and_then(Value::as_str))
        .collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    for event in all.iter().filter(|e| e.get("parent_event_id").is_some()) {
        let parent = field(event, "parent_event_id");
        let found = all
            .iter()
            .find(|e| field(e, "id") == parent)
            .expect("parent");
        assert!(found["position"].as_u64() < event["position"].as_u64());
    }

    // The summary's costs by model are the ledger's, as `oidb costs` reads them.
    let costs: Value =
        serde_json::from_str(&oidb(&["costs", &text(&file), "--json"]).ok().stdout).unwrap();
    for model in ["gpt-4o", "claude-sonnet-4", "gpt-4o-mini"] {
        let shown: f64 = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(model))
            .unwrap_or_else(|| panic!("no {model} line"))
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap();
        let ledger = group(&costs, model)["cost"]["USD"].as_f64().unwrap();
        assert!(
            (shown - ledger).abs() < 1e-12,
            "{model}: {shown} vs {ledger}"
        );
    }
    assert_eq!(group(&costs, "llama3.1:8b")["unpriced"], true);

    // What the demo tells to try works on its file.
    oidb(&["verify", &text(&file)]).ok();
    let research = field(&all[0], "intent_id");
    let blocks = oidb(&["blocks", &text(&file), research]).ok();
    assert!(
        blocks.stdout.contains("thinking think-0"),
        "{}",
        blocks.stdout
    );
    assert!(
        blocks.stdout.contains("thinking think-1"),
        "{}",
        blocks.stdout
    );
    let trace = traces.iter().next().unwrap();
    oidb(&["trace", &text(&file), trace]).ok();

    let again = oidb_in(dir.path(), &["demo"]).ok();
    assert!(again.stdout.contains("replaced the earlier demo.oidb"));
    assert_eq!(events(&file, &[]).len(), all.len());
}

#[test]
fn demo_never_replaces_a_store_it_did_not_write() {
    let (_dir, file) = imported("openintent_chained.jsonl");
    let before = oidb(&["export", &text(&file)]).ok().stdout;
    let run = oidb(&["demo", &text(&file)]).failed(1);
    assert!(
        run.stderr.contains("events the demo did not write") && run.stderr.contains("another path"),
        "{}",
        run.stderr
    );
    assert_eq!(oidb(&["export", &text(&file)]).ok().stdout, before);
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
        (vec!["events", &f, "--type", "a*b"], "trailing `*`"),
        (
            vec!["trace", &f, "00000000000000000000000000000000"],
            "not all zero",
        ),
        (vec!["events", &f, "--limit", "0"], "at least 1"),
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
    for command in [
        "stats", "events", "tail", "export", "compact", "verify", "costs",
    ] {
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
fn a_missing_directory_is_named_instead_of_advising_the_command_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-such-dir").join("x.oidb");
    for args in [
        vec!["import", &text(&file), &fixture("openintent_events.jsonl")],
        vec!["demo", &text(&file)],
        vec!["stats", &text(&file)],
    ] {
        let run = oidb(&args).failed(1);
        assert!(
            run.stderr.contains("no directory") && run.stderr.contains("no-such-dir"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("oidb import"), "{}", run.stderr);
    }
}

#[test]
fn control_characters_in_stored_data_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.oidb");
    let store = Store::open(&file).unwrap();
    let event = store
        .append(
            NewEvent::new(
                "intent\u{1b}]0;title\u{7}",
                EventType::Comment,
                "a\u{1b}[31mRED",
            )
            .payload(json!({"text": "hi\u{1b}[2J\rOVERWRITE\u{9b}"})),
        )
        .unwrap();
    drop(store);
    let id = event.id.to_string();
    for args in [
        vec!["events", &text(&file), "--wide"],
        vec!["show", &text(&file), &id],
        vec!["stats", &text(&file)],
    ] {
        let run = oidb(&args).ok();
        assert!(
            !run.stdout.contains(['\u{1b}', '\r', '\u{7}', '\u{9b}']),
            "{args:?}: {:?}",
            run.stdout
        );
        assert!(run.stdout.contains("␛"), "{args:?}: {}", run.stdout);
    }
    // Programs get the data exactly, as JSON escapes.
    let exported = oidb(&["export", &text(&file)]).ok().jsonl();
    assert_eq!(exported[0]["actor"], "a\u{1b}[31mRED");
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
        for command in ["stats", "events", "compact", "verify", "costs"] {
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

    // An empty redb database is not made an oidb store by the commands that only read.
    let empty = dir.path().join("empty.redb");
    drop(redb::Database::create(&empty).unwrap());
    let before = std::fs::read(&empty).unwrap();
    for args in [
        vec!["verify", empty.to_str().unwrap()],
        vec!["costs", empty.to_str().unwrap()],
        vec!["blocks", empty.to_str().unwrap(), "intent-1"],
        vec![
            "trace",
            empty.to_str().unwrap(),
            "0123456789abcdef0123456789abcdef",
        ],
    ] {
        let run = oidb(&args).failed(1);
        assert!(run.stderr.contains("empty redb database"), "{}", run.stderr);
    }
    assert_eq!(std::fs::read(&empty).unwrap(), before);
}

#[test]
fn commands_that_read_work_beside_a_writer_and_those_that_write_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("busy.oidb");
    let store = Store::open(&file).unwrap();
    const TRACE: &str = "0123456789abcdef0123456789abcdef";
    let event = store
        .append(NewEvent::new("i", EventType::Comment, "agent").trace_id(TRACE))
        .unwrap();
    store.flush().unwrap();
    let id = event.id.to_string();
    let path = file.to_str().unwrap();
    for args in [
        vec!["stats", path],
        vec!["events", path],
        vec!["verify", path],
        vec!["costs", path],
        vec!["blocks", path, "i"],
        vec!["tail", path],
    ] {
        oidb(&args).ok();
    }
    for (args, shows) in [
        (vec!["events", path, "--jsonl"], &id),
        (vec!["export", path], &id),
        (vec!["show", path, &id], &id),
    ] {
        let run = oidb(&args).ok();
        assert!(
            run.stdout.contains(shows.as_str()),
            "{args:?}: {}",
            run.stdout
        );
    }
    let run = oidb(&["trace", path, TRACE]).ok();
    assert!(run.stdout.contains("1 events"), "{}", run.stdout);
    let run = oidb(&["events", path, "--jsonl"]).ok();
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    for args in [
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
                .contains("busy.oidb is open for writing in another process"),
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
    let spawn_writer = || {
        Command::new(env!("CARGO_BIN_EXE_oidb"))
            .args(["import", file.to_str().unwrap(), "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut writer = spawn_writer();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let writer_live = || {
        oidb::ReadOnlyStore::open(&file)
            .and_then(|reader| reader.writer_status())
            .is_ok_and(|status| status == oidb::WriterStatus::Live)
    };
    while !writer_live() {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never opened the file"
        );
        if writer.try_wait().unwrap().is_some() {
            writer = spawn_writer();
        }
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

/// A trace in the chained fixture.
const TRACE: &str = "6aa8b9e0231b3e14729135bdd70a39d1";

#[test]
fn output_is_never_written_over_the_store_it_reads() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let before = oidb(&["export", &text(&file)]).ok().stdout;
    let run = oidb(&["export", &text(&file), "--out", &text(&file)]).failed(1);
    assert!(
        run.stderr.contains("which this command reads") && run.stderr.contains("another path"),
        "{}",
        run.stderr
    );
    // The same file by another name is the same file.
    let link = dir.path().join("link.oidb");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let run = oidb(&["trace", &text(&file), TRACE, "--otlp", &text(&link)]).failed(1);
    assert!(
        run.stderr.contains("which this command reads"),
        "{}",
        run.stderr
    );
    assert_eq!(oidb(&["export", &text(&file)]).ok().stdout, before);
    assert!(!dir.path().join("events.oidb.partial").exists());
}

#[test]
fn output_through_a_symbolic_link_replaces_the_file_it_points_to() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let target = dir.path().join("target.jsonl");
    std::fs::write(&target, "old\n").unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink("target.jsonl", &link).unwrap();
    oidb(&["export", &text(&file), "--out", &text(&link)]).ok();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let written = std::fs::read_to_string(&target).unwrap();
    assert_eq!(written, oidb(&["export", &text(&file)]).ok().stdout);
    assert!(!dir.path().join("target.jsonl.partial").exists());
}

#[test]
fn output_into_a_named_pipe_is_written_into_it() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let pipe = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&pipe).status().unwrap();
    assert!(made.success());
    let reading = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::read_to_string(pipe).unwrap())
    };
    oidb(&["export", &text(&file), "--out", &text(&pipe)]).ok();
    let read = reading.join().unwrap();
    assert_eq!(read, oidb(&["export", &text(&file)]).ok().stdout);
    assert!(std::fs::symlink_metadata(&pipe)
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn an_output_that_cannot_be_written_is_named_and_left_absent() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let out = dir.path().join("no-such-dir").join("trace.json");
    let run = oidb(&["trace", &text(&file), TRACE, "--otlp", &text(&out)]).failed(1);
    assert!(run.stderr.contains(&text(&out)), "{}", run.stderr);
    let run = oidb(&["export", &text(&file), "--out", &text(dir.path())]).failed(1);
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
}

#[test]
fn verify_exits_3_on_a_store_too_damaged_to_open() {
    let (dir, file) = imported("openintent_chained.jsonl");
    let bytes = std::fs::read(&file).unwrap();
    let truncated = dir.path().join("truncated.oidb");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let run = oidb(&["verify", &text(&truncated)]).failed(3);
    assert!(run.stderr.contains("truncated"), "{}", run.stderr);
    // A file of another kind stays an error, as for every command.
    let notes = dir.path().join("notes.oidb");
    std::fs::write(&notes, "just some text\n").unwrap();
    oidb(&["verify", &text(&notes)]).failed(1);
}

#[test]
fn an_id_repeated_with_other_content_is_named_past_the_first_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.jsonl");
    let file = dir.path().join("big.oidb");
    let mut lines: Vec<String> = (1..=5_004).map(numbered_line).collect();
    // Line 5004 gives line 5002's id to other content: both in the second 5,000-line chunk.
    let mut changed: Value = serde_json::from_str(&numbered_line(5_002)).unwrap();
    changed["payload"] = json!({"changed": true});
    lines[5_003] = changed.to_string();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = oidb(&["import", &text(&file), &text(&input)]).failed(1);
    assert!(
        run.stderr.contains("line 5004") && run.stderr.contains("2 lines above"),
        "{}",
        run.stderr
    );
}
