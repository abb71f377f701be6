//! OTLP shipping (`oidb::ship`, `oidb ship`): against a receiver in this test that keeps every
//! request and answers as told, the bodies decoded with `opentelemetry-proto`'s types — ids,
//! parents and attributes as a whole export gives them, each span once; 503 and 429 retried with
//! nothing lost and nothing twice; a second run sends only what finished since; a 400 ends the
//! run naming the URL and status; `--follow` on a file another process writes. And against a
//! real Arize Phoenix (tests/phoenix/server.sh installs it; tests/all.sh sets OIDB_PHOENIX),
//! read back through its REST API.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oidb::ship::{Encoding, Error as ShipError, Report, Shipper};
use oidb::{EventType, NewEvent, Query, Store, TraceContext};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

const FIXTURE: &str = include_str!("data/openintent_events.jsonl");
/// How long a test waits for something that should happen before it gives up (a failure, never
/// a measurement).
const GIVE_UP: Duration = Duration::from_secs(90);

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    content_type: String,
    body: Vec<u8>,
    /// What it answered.
    status: u16,
}

/// An answer the receiver gives: status, extra headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);

#[derive(Default)]
struct ReceiverState {
    /// Answers to give, in order; 200 once they run out.
    script: VecDeque<Answer>,
    requests: Vec<Request>,
}

/// A small OTLP/HTTP receiver on a loopback port: one request per connection.
struct Receiver {
    port: u16,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    fn start(script: Vec<Answer>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ReceiverState {
            script: script.into(),
            requests: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve_one(stream, &shared);
            }
        });
        Receiver { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The spans of the requests it accepted, in order.
    fn accepted(&self) -> Vec<Span> {
        self.requests()
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(decode)
            .collect()
    }
}

fn serve_one(stream: TcpStream, state: &Mutex<ReceiverState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
    let mut length = 0;
    let mut content_type = String::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "content-type" => value.trim().clone_into(&mut content_type),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, headers, text) = {
        let mut state = state.lock().unwrap();
        let answer = state
            .script
            .pop_front()
            .unwrap_or((200, Vec::new(), String::new()));
        state.requests.push(Request {
            path,
            content_type,
            body,
            status: answer.0,
        });
        answer
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {status} Answer\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The spans of one request, decoded by its content type.
fn decode(request: &Request) -> Vec<Span> {
    let parsed = match request.content_type.as_str() {
        "application/x-protobuf" => ExportTraceServiceRequest::decode(&request.body[..]).unwrap(),
        "application/json" => serde_json::from_slice(&request.body).unwrap(),
        other => panic!("unexpected content type {other:?}"),
    };
    parsed
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

/// The complete spans (`oidb.span.incomplete` unset) of a whole export of the store, by span id.
fn exported(path: &Path) -> BTreeMap<String, Span> {
    let store = oidb::ReadOnlyStore::open(path).unwrap();
    let mut out = Vec::new();
    store.export_otlp_json(Query::new(), &mut out).unwrap();
    let request: ExportTraceServiceRequest = serde_json::from_slice(&out).unwrap();
    request
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .filter(|s| attribute(s, "oidb.span.incomplete").is_none())
        .map(|s| (hex(&s.span_id), s))
        .collect()
}

/// The spans by id, each id seen once.
fn by_id(spans: Vec<Span>) -> BTreeMap<String, Span> {
    let mut map = BTreeMap::new();
    for span in spans {
        let id = hex(&span.span_id);
        assert!(
            map.insert(id.clone(), span).is_none(),
            "span {id} sent twice"
        );
    }
    map
}

fn fixture_file(dir: &Path) -> PathBuf {
    let path = dir.join("agent.oidb");
    let store = Store::open(&path).unwrap();
    store.import_json(FIXTURE.as_bytes()).unwrap();
    path
}

fn ship(path: &Path, receiver: &Receiver, batch: u64) -> Result<oidb::ship::Progress, ShipError> {
    Shipper::builder()
        .otlp(receiver.url())
        .batch(batch)
        .build(path)?
        .run(|_| {})
}

/// Appends an LLM request's start (`finish` false) or its completion.
fn llm(store: &Store, trace: &TraceContext, request: &str, finish: bool) -> oidb::Event {
    let (event_type, payload) = if finish {
        (
            EventType::LlmRequestCompleted,
            json!({"request_id": request, "prompt_tokens": 10, "completion_tokens": 2, "finish_reason": "stop"}),
        )
    } else {
        (
            EventType::LlmRequestStarted,
            json!({"request_id": request, "provider": "openai", "model": "gpt-4o"}),
        )
    };
    store
        .append(
            NewEvent::new("intent-1", event_type, "agent")
                .payload(payload)
                .in_trace(trace),
        )
        .unwrap()
}

#[test]
fn every_finished_span_goes_once_with_the_ids_and_attributes_of_a_whole_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_file(dir.path());
    let receiver = Receiver::start(Vec::new());
    // Small ranges, so that starts and finishes fall in different requests.
    let progress = ship(&path, &receiver, 5).unwrap();
    let requests = receiver.requests();
    assert!(requests.len() > 1);
    for r in &requests {
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(r.content_type, "application/x-protobuf");
    }
    let shipped = by_id(receiver.accepted());
    let expected = exported(&path);
    assert_eq!(progress.spans, expected.len() as u64);
    assert_eq!(
        shipped.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (id, span) in &shipped {
        let want = &expected[id];
        assert_eq!(span.trace_id, want.trace_id, "{id}");
        assert_eq!(span.parent_span_id, want.parent_span_id, "{id}");
        assert_eq!(span.name, want.name, "{id}");
        assert_eq!(span.start_time_unix_nano, want.start_time_unix_nano, "{id}");
        assert_eq!(span.end_time_unix_nano, want.end_time_unix_nano, "{id}");
        assert_eq!(span.attributes, want.attributes, "{id}");
        assert_eq!(span.status, want.status, "{id}");
        assert!(
            attribute(span, "gen_ai.operation.name").is_some() || span.name.starts_with("stream")
        );
    }
    // The parents are among the spans (or in another trace, as a link).
    let with_parent = shipped
        .values()
        .filter(|s| !s.parent_span_id.is_empty())
        .count();
    assert!(with_parent > 0);
    let chat = shipped
        .values()
        .find(|s| s.name.starts_with("chat"))
        .unwrap();
    assert!(matches!(
        attribute(chat, "gen_ai.usage.input_tokens"),
        Some(AnyValue::IntValue(_))
    ));
    // Nothing left: a second run sends nothing.
    let again = ship(&path, &receiver, 5).unwrap();
    assert_eq!(again.spans, 0);
    assert_eq!(receiver.requests().len(), requests.len());
}

#[test]
fn json_is_sent_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_file(dir.path());
    let receiver = Receiver::start(Vec::new());
    Shipper::builder()
        .otlp(format!("{}/v1/traces", receiver.url()))
        .encoding(Encoding::Json)
        .consumer("json")
        .build(&path)
        .unwrap()
        .run(|_| {})
        .unwrap();
    assert!(receiver
        .requests()
        .iter()
        .all(|r| r.content_type == "application/json" && r.path == "/v1/traces"));
    assert_eq!(by_id(receiver.accepted()).len(), exported(&path).len());
    assert!(Path::new(&format!("{}.ship-json", path.display())).is_file());
}

#[test]
fn refusals_worth_retrying_lose_nothing_and_send_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_file(dir.path());
    let receiver = Receiver::start(vec![
        (503, Vec::new(), "busy".to_owned()),
        (429, vec![("Retry-After", "0".to_owned())], String::new()),
        (200, Vec::new(), String::new()),
        (502, Vec::new(), String::new()),
    ]);
    let mut retries = Vec::new();
    let progress = Shipper::builder()
        .otlp(receiver.url())
        .batch(8)
        .build(&path)
        .unwrap()
        .run(|report| {
            if let Report::Retrying { error, .. } = report {
                retries.push(error);
            }
        })
        .unwrap();
    assert_eq!(retries.len(), 3, "{retries:?}");
    assert!(
        retries[0].contains("HTTP 503") && retries[0].contains("busy"),
        "{}",
        retries[0]
    );
    assert!(retries[1].contains("HTTP 429"));
    let requests = receiver.requests();
    // The refused bodies were sent again as they were.
    assert_eq!(requests[0].body, requests[2].body);
    assert_eq!(requests[3].body, requests[4].body);
    let shipped = by_id(receiver.accepted());
    assert_eq!(shipped.len(), exported(&path).len());
    assert_eq!(progress.spans, shipped.len() as u64);
    assert_eq!(progress.requests, requests.len() as u64);
}

#[test]
fn an_unreachable_receiver_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_file(dir.path());
    // A port nothing listens on, until the receiver takes it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shipper = Shipper::builder()
        .otlp(format!("http://127.0.0.1:{port}"))
        .build(&path)
        .unwrap();
    let (sender, failures) = std::sync::mpsc::channel();
    let run = std::thread::spawn(move || {
        shipper.run(|report| {
            if let Report::Retrying { error, .. } = report {
                let _ = sender.send(error);
            }
        })
    });
    let first = failures.recv_timeout(GIVE_UP).unwrap();
    assert!(first.contains("cannot reach"), "{first}");
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let state = Arc::new(Mutex::new(ReceiverState::default()));
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve_one(stream, &shared);
        }
    });
    let progress = run.join().unwrap().unwrap();
    let spans: Vec<Span> = state
        .lock()
        .unwrap()
        .requests
        .iter()
        .flat_map(decode)
        .collect();
    assert_eq!(by_id(spans).len(), exported(&path).len());
    assert_eq!(progress.spans, exported(&path).len() as u64);
}

#[test]
fn a_second_run_sends_only_what_finished_since_and_a_held_back_start_goes_with_its_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.oidb");
    let store = Store::open(&path).unwrap();
    let trace = TraceContext::new_root();
    let a_start = llm(&store, &trace, "a", false);
    llm(&store, &trace, "a", true);
    let b_start = llm(&store, &trace, "b", false);
    // Published to readers in other handles now, not after the publish interval.
    store.flush().unwrap();
    let receiver = Receiver::start(Vec::new());
    let first = ship(&path, &receiver, 512).unwrap();
    assert_eq!(first.spans, 1);
    let shipped = receiver.accepted();
    assert_eq!(shipped.len(), 1);
    // "b" is not finished: held back, though its start is before the checkpoint.
    llm(&store, &trace, "b", true);
    llm(&store, &trace, "c", false);
    llm(&store, &trace, "c", true);
    store.flush().unwrap();
    let second = ship(&path, &receiver, 512).unwrap();
    assert_eq!(second.spans, 2);
    let all = by_id(receiver.accepted());
    assert_eq!(all.len(), 3);
    let expected = exported(&path);
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let b = all.values().find(|s| matches!(attribute(s, "openintent.start_event_id"), Some(AnyValue::StringValue(id)) if id == b_start.id.to_string())).unwrap();
    assert_eq!(
        b.start_time_unix_nano,
        expected[&hex(&b.span_id)].start_time_unix_nano
    );
    assert!(attribute(b, "oidb.span.incomplete").is_none());
    let a = &shipped[0];
    assert!(
        matches!(attribute(a, "openintent.start_event_id"), Some(AnyValue::StringValue(id)) if id == a_start.id.to_string())
    );
    assert_eq!(hex(&a.trace_id), trace.trace_id());
}

#[test]
fn a_400_ends_the_run_naming_the_url_and_the_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_file(dir.path());
    let receiver = Receiver::start(vec![(400, Vec::new(), "bad span".to_owned())]);
    let error = ship(&path, &receiver, 512).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ShipError::Refused { status: 400, .. }));
    assert!(
        text.contains(&format!("{}/v1/traces", receiver.url())),
        "{text}"
    );
    assert!(
        text.contains("HTTP 400") && text.contains("bad span"),
        "{text}"
    );
    // Nothing was accepted, so the checkpoint did not move.
    let shipper = Shipper::builder()
        .otlp(receiver.url())
        .build(&path)
        .unwrap();
    assert_eq!(shipper.checkpoint().unwrap(), 0);
    // The command says the same and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args([
            "ship",
            path.to_str().unwrap(),
            "--otlp",
            "https://example.invalid",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
}

// ---- --follow on a file another process writes ----

const CHILD: &str = "OIDB_SHIP_TEST_WRITER";

/// Not a test: the writer process of the follow test. It appends an LLM request's start or
/// finish for each line `start NAME` / `finish NAME` on stdin and says `ok` after each.
#[test]
#[ignore = "run by follow_ships_each_span_as_it_finishes"]
fn writer_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let store = Store::open(PathBuf::from(path)).unwrap();
    let trace = TraceContext::from_trace_id("0af7651916cd43dd8448eb211c80319c").unwrap();
    let mut out = std::io::stdout();
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        let (what, name) = line.split_once(' ').unwrap();
        llm(&store, &trace, name, what == "finish");
        writeln!(out, "ok").unwrap();
        out.flush().unwrap();
    }
}

struct Writer {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Writer {
    fn start(path: &Path) -> Writer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "writer_child",
                "--ignored",
                "--nocapture",
                "--quiet",
            ])
            .env(CHILD, path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Writer { child, lines }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        loop {
            let answer = self.lines.next().unwrap().unwrap();
            if answer == "ok" {
                return;
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to [`GIVE_UP`], then fails) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < GIVE_UP, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn names(receiver: &Receiver) -> Vec<String> {
    let mut names: Vec<String> = receiver
        .accepted()
        .iter()
        .filter_map(|s| match attribute(s, "openintent.request_id") {
            Some(AnyValue::StringValue(id)) => Some(id),
            _ => None,
        })
        .collect();
    names.sort();
    names
}

#[test]
fn follow_ships_each_span_as_it_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.oidb");
    drop(Store::open(&path).unwrap());
    let mut writer = Writer::start(&path);
    writer.say("start one");
    let receiver = Receiver::start(Vec::new());
    let mut shipper = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args([
            "ship",
            path.to_str().unwrap(),
            "--otlp",
            &receiver.url(),
            "--follow",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    writer.say("start two");
    writer.say("finish one");
    wait_until("the span one", || !names(&receiver).is_empty());
    // "two" has no finish yet, so it cannot have gone.
    assert_eq!(names(&receiver), ["one"]);
    writer.say("finish two");
    writer.say("start three");
    writer.say("finish three");
    wait_until("the spans two and three", || names(&receiver).len() >= 3);
    assert_eq!(names(&receiver), ["one", "three", "two"]);
    by_id(receiver.accepted());
    let _ = shipper.kill();
    let _ = shipper.wait();
}

// ---- a real receiver: Arize Phoenix ----

/// The `phoenix` command: OIDB_PHOENIX (tests/all.sh sets it), else the one
/// tests/phoenix/server.sh installs under target/.
fn phoenix_command() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OIDB_PHOENIX") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "OIDB_PHOENIX names no file: {}",
            path.display()
        );
        return Some(path);
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/phoenix-venv/bin/phoenix");
    installed.is_file().then_some(installed)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Phoenix(Child);

impl Drop for Phoenix {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn phoenix_receives_the_spans_with_their_gen_ai_attributes_and_parents() {
    let Some(command) = phoenix_command() else {
        eprintln!(
            "\n*** SKIPPED: no Arize Phoenix to ship to. Run tests/all.sh, or \
             OIDB_PHOENIX=$(tests/phoenix/server.sh) cargo test --test ship ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_file(dir.path());
    let (port, grpc) = (free_port(), free_port());
    let _phoenix = Phoenix(
        Command::new(&command)
            .arg("serve")
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", port.to_string())
            .env("PHOENIX_GRPC_PORT", grpc.to_string())
            .env("PHOENIX_WORKING_DIR", dir.path().join("phoenix"))
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", command.display())),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until("Phoenix to answer", || {
        ureq::get(&format!("{base}/healthz")).call().is_ok()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args([
            "ship",
            path.to_str().unwrap(),
            "--otlp",
            &base,
            "--batch",
            "16",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = exported(&path);
    assert!(expected.values().any(|s| !s.parent_span_id.is_empty()));
    // Phoenix stores what it takes in the background: wait until all of it is there.
    let mut stored: HashMap<String, serde_json::Value> = HashMap::new();
    wait_until("Phoenix to hold every span", || {
        let answer: serde_json::Value =
            ureq::get(&format!("{base}/v1/projects/default/spans?limit=1000"))
                .call()
                .map_or(json!({}), |r| r.into_json().unwrap_or(json!({})));
        stored = answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["context"]["span_id"].as_str().unwrap_or("").to_owned(),
                    s.clone(),
                )
            })
            .collect();
        stored.len() >= expected.len()
    });
    assert_eq!(stored.len(), expected.len());
    for (id, want) in &expected {
        let got = stored
            .get(id)
            .unwrap_or_else(|| panic!("span {id} not in Phoenix"));
        assert_eq!(got["context"]["trace_id"], hex(&want.trace_id), "{id}");
        assert_eq!(got["name"], want.name, "{id}");
        let parent = hex(&want.parent_span_id);
        if parent.is_empty() {
            assert!(got["parent_id"].is_null(), "{id}: {}", got["parent_id"]);
        } else {
            assert_eq!(got["parent_id"], parent, "{id}");
        }
        let gen_ai = gen_ai_attributes(&got["attributes"]);
        for kv in want
            .attributes
            .iter()
            .filter(|kv| kv.key.starts_with("gen_ai."))
        {
            assert!(
                gen_ai.contains_key(&kv.key),
                "{id}: {} missing in {gen_ai:?}",
                kv.key
            );
        }
    }
    // Not every chat span has usage (a failed request has none), and the map's order is
    // arbitrary: some chat span must carry it.
    let chats: Vec<_> = stored
        .values()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("chat")))
        .map(|s| gen_ai_attributes(&s["attributes"]))
        .collect();
    assert!(!chats.is_empty());
    assert!(chats
        .iter()
        .all(|attributes| attributes["gen_ai.operation.name"] == "chat"));
    assert!(
        chats
            .iter()
            .any(|attributes| attributes.contains_key("gen_ai.usage.input_tokens")),
        "{chats:?}"
    );
}

/// The `gen_ai.*` attributes of a span as Phoenix lists them, flattened to dotted keys (Phoenix
/// may nest them: `{"gen_ai": {"usage": {...}}}`).
fn gen_ai_attributes(attributes: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    fn flatten(
        prefix: &str,
        value: &serde_json::Value,
        out: &mut BTreeMap<String, serde_json::Value>,
    ) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let key = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    flatten(&key, value, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    flatten("", attributes, &mut out);
    out.retain(|k, _| k.starts_with("gen_ai."));
    out
}
