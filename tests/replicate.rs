//! Replication into a real nats-server with JetStream (started by each test on a free loopback
//! port): the stream read back event for event; the replicator killed at random moments while
//! the file is written and the server restarted, with no event missing and none twice; three
//! files into one stream; and each imported back, verified, with every hash kept.

#[path = "nats/mod.rs"]
mod nats;
mod prng;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures_util::StreamExt;
use nats::NatsServer;
use oidb::replicate::{encode_token, Replicator, POSITION_HEADER};
use oidb::{EventType, NewEvent, Query, Store};
use prng::Prng;
use serde_json::json;

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    subject: String,
    msg_id: String,
    position: u64,
    payload: Vec<u8>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every message of `stream` under `filter`, in stream order.
fn read_stream(url: &str, stream: &str, filter: &str) -> Vec<Message> {
    runtime().block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let stream = context.get_stream(stream).await.unwrap();
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter.to_owned(),
                ..OrderedConfig::default()
            })
            .await
            .unwrap();
        let mut pending = consumer.cached_info().num_pending;
        let mut messages = consumer.messages().await.unwrap();
        let mut out = Vec::new();
        while pending > 0 {
            let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
                .await
                .expect("the stream's next message")
                .unwrap()
                .unwrap();
            pending = message.info().unwrap().pending;
            let headers = message.headers.as_ref().expect("headers");
            out.push(Message {
                subject: message.subject.to_string(),
                msg_id: headers.get("Nats-Msg-Id").unwrap().as_str().to_owned(),
                position: headers
                    .get(POSITION_HEADER)
                    .unwrap()
                    .as_str()
                    .parse()
                    .unwrap(),
                payload: message.payload.to_vec(),
            });
        }
        out
    })
}

/// What the stream must hold for `store`: one message per event, in position order, on its
/// intent's subject, with its id and its export line.
fn expected(store: &Store, prefix: &str) -> Vec<Message> {
    let store_id = store.snapshot().unwrap().store_id().unwrap().unwrap();
    let mut export = Vec::new();
    store.export_json(&mut export, &Query::new()).unwrap();
    let lines: Vec<&[u8]> = export
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let events: Vec<oidb::Event> = store
        .query_iter(&Query::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), lines.len());
    events
        .iter()
        .zip(lines)
        .map(|(event, line)| Message {
            subject: format!(
                "{prefix}.{}.{}",
                encode_token(&store_id),
                encode_token(&event.intent_id)
            ),
            msg_id: event.id.to_string(),
            position: event.position,
            payload: line.to_vec(),
        })
        .collect()
}

/// Appends `count` events over a few intents, one with characters a subject cannot hold.
fn write_events(store: &Store, count: usize, rng: &mut Prng) {
    let intents = ["intent-a", "research.phase 2", "*>~", "é"];
    let events: Vec<NewEvent> = (0..count)
        .map(|i| {
            let intent = intents[rng.range(0, intents.len() as u64) as usize];
            NewEvent::new(intent, EventType::Comment, "agent")
                .payload(json!({"n": i, "note": "x".repeat(rng.range(0, 200) as usize)}))
        })
        .collect();
    store.append_batch(events).unwrap();
}

fn oidb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn replicate(path: &Path, url: &str) {
    let replicator = Replicator::builder().nats(url).build(path).unwrap();
    let progress = runtime().block_on(replicator.run(|_| {})).unwrap();
    assert_eq!(progress.lag, 0);
}

#[test]
fn a_replicated_file_reads_back_event_for_event_and_a_second_run_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&dir.path().join("js"));
    let path = dir.path().join("agent.oidb");
    let store = Store::open(&path).unwrap();
    write_events(&store, 500, &mut Prng::new(7));

    replicate(&path, &server.url());
    let want = expected(&store, "oidb");
    assert_eq!(read_stream(&server.url(), "OIDB", "oidb.>"), want);

    write_events(&store, 20, &mut Prng::new(8));
    replicate(&path, &server.url());
    replicate(&path, &server.url());
    let want = expected(&store, "oidb");
    assert_eq!(want.len(), 520);
    assert_eq!(read_stream(&server.url(), "OIDB", "oidb.>"), want);
}

#[test]
fn killed_at_random_moments_and_the_server_restarted_nothing_is_missing_or_twice() {
    let mut rng = Prng::from_env_or_time("replicate kill rounds");
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(&dir.path().join("js"));
    let url = server.url();
    let path = dir.path().join("live.oidb");
    let path_text = path.to_str().unwrap();
    // This process is the file's writer while the replicator, another process, reads it.
    let store = Store::open(&path).unwrap();
    write_events(&store, 2000, &mut rng);
    let rounds = 24;
    for round in 0..rounds {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oidb"))
            .args(["replicate", path_text, "--nats", &url, "--follow"])
            .args(["--ack-timeout", "1", "--in-flight", "256"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        write_events(&store, rng.range(0, 300) as usize, &mut rng);
        if round == rounds / 2 {
            server.restart();
        }
        std::thread::sleep(Duration::from_millis(rng.range(0, 250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // The last run, to the end.
    let out = oidb(&["replicate", path_text, "--nats", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let got = read_stream(&url, "OIDB", "oidb.>");
    let want = expected(&store, "oidb");
    let mut positions: Vec<u64> = got.iter().map(|m| m.position).collect();
    positions.sort_unstable();
    let all: Vec<u64> = (1..=want.len() as u64).collect();
    assert_eq!(positions, all, "every position once");
    let mut by_position = got.clone();
    by_position.sort_by_key(|m| m.position);
    assert_eq!(by_position, want);
}

#[test]
fn three_files_into_one_stream_each_import_back_verified_with_every_hash_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&dir.path().join("js"));
    let url = server.url();
    let mut stores = Vec::new();
    for n in 0..3u64 {
        let path = dir.path().join(format!("agent-{n}.oidb"));
        let store = Store::open(&path).unwrap();
        write_events(&store, 100 + 50 * n as usize, &mut Prng::new(n));
        let out = oidb(&["replicate", path.to_str().unwrap(), "--nats", &url]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stores.push((path, store));
    }
    let all = read_stream(&url, "OIDB", "oidb.>");
    assert_eq!(all.len(), 100 + 150 + 200);

    let out = oidb(&[
        "import",
        dir.path().join("x.oidb").to_str().unwrap(),
        "--nats",
        &url,
        "--stream",
        "OIDB",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--store-id") && stderr.contains("3 stores"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.oidb").exists());

    for (n, (_, store)) in stores.iter().enumerate() {
        let store_id = store.snapshot().unwrap().store_id().unwrap().unwrap();
        let filter = format!("oidb.{}.>", encode_token(&store_id));
        assert_eq!(read_stream(&url, "OIDB", &filter), expected(store, "oidb"));

        let back = dir.path().join(format!("back-{n}.oidb"));
        let back_text = back.to_str().unwrap();
        let args = [
            "import",
            back_text,
            "--nats",
            &url,
            "--stream",
            "OIDB",
            "--store-id",
            &store_id,
        ];
        let out = oidb(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let verify = oidb(&["verify", back_text]);
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );

        let mut source = Vec::new();
        store.export_json(&mut source, &Query::new()).unwrap();
        let exported = oidb(&["export", back_text]);
        assert!(exported.status.success());
        assert_eq!(
            exported.stdout, source,
            "hashes and every byte as in the source"
        );

        // Again: nothing new.
        let out = oidb(&args);
        assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 new"));
    }
}

#[test]
fn bad_settings_are_refused_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.oidb");
    Store::open(&path).unwrap().close().unwrap();
    let file = path.to_str().unwrap();
    for (args, parameter) in [
        (vec!["--stream", "a.b"], "--stream"),
        (vec!["--stream", ""], "--stream"),
        (vec!["--subject-prefix", "a..b"], "--subject-prefix"),
        (vec!["--subject-prefix", "a.>"], "--subject-prefix"),
        (vec!["--consumer", "../x"], "--consumer"),
        (vec!["--in-flight", "0"], "--in-flight"),
        (vec!["--duplicate-window", "0"], "--duplicate-window"),
    ] {
        let mut all = vec!["replicate", file, "--nats", "nats://127.0.0.1:1"];
        all.extend(args);
        let out = oidb(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{all:?}: {stderr}");
        assert!(stderr.contains(parameter), "{all:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = oidb(&[
        "replicate",
        dir.path().join("missing.oidb").to_str().unwrap(),
        "--nats",
        "nats://127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(1));

    let out = oidb(&[
        "import",
        file,
        "--nats",
        "nats://127.0.0.1:1",
        "--stream",
        "OIDB",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--nats"), "{stderr}");
    let out = oidb(&["import", file, "--nats", "nats://127.0.0.1:1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--stream is required with --nats"
    );
}
