//! `cargo bench --bench serve`: `oidb serve` beside OpenIntent's reference server
//! (`openintent[server]==0.17.0`, FastAPI on uvicorn over its default SQLite), in the same run,
//! over loopback HTTP with keep-alive clients:
//!
//! - `POST /api/v1/intents/{id}/events` from 1 client and from 16 at once: requests per second,
//!   and each request's latency (p50, p99);
//! - `GET /api/v1/intents/{id}/events?limit=100` on an intent of 1,000 events, from 4 clients.
//!
//! Both servers run as processes of their own; the clients run here. The reference server is
//! installed into `target/bench-venv` on first use (PyPI); when that fails, oidb's side is still
//! measured and the reference's is reported as missing. `OIDB_SERVE_BENCH_SCALE` multiplies the
//! request counts (default 1).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde_json::{json, Value};

const KEY: &str = "bench-key";

/// One server under test, started as a process.
struct Side {
    name: &'static str,
    base: String,
    process: Child,
}

impl Drop for Side {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build()
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<Value, String> {
    agent
        .post(url)
        .set("X-API-Key", KEY)
        .set("X-Agent-ID", "bench")
        .send_json(body.clone())
        .map_err(|e| e.to_string())?
        .into_json()
        .map_err(|e| e.to_string())
}

/// Waits until the server answers, at most `limit`.
fn wait_ready(base: &str, limit: Duration) -> bool {
    let agent = agent();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if post(
            &agent,
            &format!("{base}/api/v1/intents"),
            &json!({"title": "ready?"}),
        )
        .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn start_oidb(dir: &Path) -> Side {
    let port = free_port();
    let process = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["serve", dir.join("bench.oidb").to_str().unwrap()])
        .args(["--addr", &format!("127.0.0.1:{port}"), "--api-key", KEY])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        wait_ready(&base, Duration::from_secs(30)),
        "oidb serve did not start"
    );
    Side {
        name: "oidb serve",
        base,
        process,
    }
}

/// The reference server's venv, made on first use; `None` (and why) when it cannot be.
fn reference_python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv");
    let python = venv.join("bin/python");
    if python.exists()
        && Command::new(&python)
            .args(["-c", "import openintent.server, uvicorn"])
            .status()
            .is_ok_and(|s| s.success())
    {
        return Ok(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv", venv.to_str().unwrap()])
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !made.success() {
        return Err("python3 -m venv failed".into());
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg("openintent[server]==0.17.0")
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !installed.success() {
        return Err("pip install openintent[server]==0.17.0 failed".into());
    }
    Ok(python)
}

fn start_reference(dir: &Path) -> Result<Side, String> {
    let python = reference_python()?;
    let port = free_port();
    let database = format!("sqlite:///{}", dir.join("reference.db").display());
    let process = Command::new(python)
        .args(["-m", "openintent.server", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--database-url", &database])
        .args(["--api-keys", KEY, "--log-level", "warning"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the reference server: {e}"))?;
    let base = format!("http://127.0.0.1:{port}");
    let side = Side {
        name: "reference (FastAPI + SQLite)",
        base,
        process,
    };
    if !wait_ready(&side.base, Duration::from_secs(60)) {
        return Err("the reference server did not answer within 60 s".into());
    }
    Ok(side)
}

/// What one scenario measured on one side.
#[derive(Clone, Copy, Default)]
struct Measured {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// `clients` threads each make `each` requests with `request`; every request must succeed.
fn run(clients: usize, each: usize, request: impl Fn(&ureq::Agent, usize) + Sync) -> Measured {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|client| {
                let request = &request;
                scope.spawn(move || {
                    let agent = agent();
                    (0..each)
                        .map(|i| {
                            let t = Instant::now();
                            request(&agent, client * each + i);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    latencies.sort();
    Measured {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    }
}

fn new_intent(side: &Side, title: &str) -> String {
    let intent = post(
        &agent(),
        &format!("{}/api/v1/intents", side.base),
        &json!({"title": title}),
    )
    .expect("create an intent");
    intent["id"].as_str().unwrap().to_owned()
}

fn log_events(side: &Side, clients: usize, each: usize) -> Measured {
    let intent = new_intent(side, &format!("log {clients}"));
    let url = format!("{}/api/v1/intents/{intent}/events", side.base);
    run(clients, each, |agent, i| {
        post(
            agent,
            &url,
            &json!({"event_type": "comment", "actor": "bench", "payload": {"i": i, "text": "a note of some length"}}),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", side.name));
    })
}

fn read_events(side: &Side, clients: usize, each: usize) -> Measured {
    let intent = new_intent(side, "read");
    let url = format!("{}/api/v1/intents/{intent}/events", side.base);
    let agent = agent();
    for i in 0..1000 {
        post(
            &agent,
            &url,
            &json!({"event_type": "comment", "actor": "bench", "payload": {"i": i}}),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", side.name));
    }
    let query = format!("{url}?limit=100");
    run(clients, each, |agent, _| {
        let body = agent
            .get(&query)
            .set("X-API-Key", KEY)
            .call()
            .unwrap_or_else(|e| panic!("{}: {e}", side.name))
            .into_string()
            .unwrap();
        // Checked whole, but without building each event: the clients share the machine with
        // the server, and what they spend is taken from it.
        let events: Vec<IgnoredAny> = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{}: not a JSON list of events: {e}", side.name));
        assert_eq!(events.len(), 100, "{}", side.name);
    })
}

/// One measured workload, run against either server.
type Scenario = dyn Fn(&Side) -> Measured;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let scale: usize = std::env::var("OIDB_SERVE_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let dir = tempfile::tempdir().unwrap();
    let scenarios: [(&str, Box<Scenario>); 3] = [
        (
            "POST events, 1 client",
            Box::new(move |s| log_events(s, 1, 400 * scale)),
        ),
        (
            "POST events, 16 clients",
            Box::new(move |s| log_events(s, 16, 50 * scale)),
        ),
        (
            "GET events?limit=100, 4 clients",
            Box::new(move |s| read_events(s, 4, 100 * scale)),
        ),
    ];
    let mut results: Vec<(Measured, Option<Measured>)> = Vec::new();
    {
        let oidb_dir = dir.path().join("oidb");
        std::fs::create_dir_all(&oidb_dir).unwrap();
        let oidb = start_oidb(&oidb_dir);
        for (name, scenario) in &scenarios {
            eprintln!("oidb: {name}");
            results.push((scenario(&oidb), None));
        }
    }
    let reference_dir = dir.path().join("reference");
    std::fs::create_dir_all(&reference_dir).unwrap();
    match start_reference(&reference_dir) {
        Ok(reference) => {
            for ((name, scenario), result) in scenarios.iter().zip(&mut results) {
                eprintln!("reference: {name}");
                result.1 = Some(scenario(&reference));
            }
        }
        Err(why) => eprintln!("the reference server is not measured: {why}"),
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| scenario | oidb serve req/s | reference req/s | ratio | oidb p50 / p99 ms | reference p50 / p99 ms | p99 ratio (reference / oidb) |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|").unwrap();
    let mut json_rows = Vec::new();
    for ((name, _), (ours, theirs)) in scenarios.iter().zip(&results) {
        let (their_rate, ratio, their_latency, p99_ratio) = match theirs {
            Some(t) => (
                format!("{:.0}", t.per_second),
                format!("{:.1}x", ours.per_second / t.per_second),
                format!("{:.2} / {:.2}", t.p50_ms, t.p99_ms),
                format!("{:.1}x", t.p99_ms / ours.p99_ms),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        writeln!(
            out,
            "| {name} | {:.0} | {their_rate} | {ratio} | {:.2} / {:.2} | {their_latency} | {p99_ratio} |",
            ours.per_second, ours.p50_ms, ours.p99_ms
        )
        .unwrap();
        json_rows.push(json!({
            "scenario": name,
            "oidb": {"per_second": ours.per_second, "p50_ms": ours.p50_ms, "p99_ms": ours.p99_ms},
            "reference": theirs.map(|t| json!({"per_second": t.per_second, "p50_ms": t.p50_ms, "p99_ms": t.p99_ms})),
        }));
    }
    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-bench.json");
    std::fs::write(&report, serde_json::to_string_pretty(&json_rows).unwrap()).unwrap();
    eprintln!("written: {}", report.display());
}
