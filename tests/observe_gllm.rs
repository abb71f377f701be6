//! GL LM-invoker events: import, levels, block reassembly and typed activities.

use oidb::observe::{Activity, BlockKind, GlEvent};
use oidb::{time, EventFilter, EventType, Level, Query, Store};
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("data/gllm_stream.jsonl");

fn store() -> Store {
    Store::builder()
        .actor("lm-invoker")
        .open_backend(redb::backends::InMemoryBackend::new(), "test")
        .unwrap()
}

fn gl_line(id: Option<&str>, kind: &str, value: &str, at: &str) -> String {
    json!({"id": id, "value": value, "level": "INFO", "type": kind,
           "timestamp": format!("2026-11-20T09:00:{at}"), "metadata": {}})
    .to_string()
}

#[test]
fn the_fixture_imports_with_its_types_levels_times_and_values() {
    let store = store();
    let report = store.import_gl(FIXTURE.as_bytes(), "intent-gl").unwrap();
    assert_eq!(
        (report.read, report.appended, report.already_present),
        (30, 30, 0)
    );

    let events = store.get_events("intent-gl", EventFilter::new()).unwrap();
    assert_eq!(events.len(), 30);
    for (event, line) in events.iter().zip(FIXTURE.lines()) {
        let original: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            event.event_type.as_str(),
            original["type"].as_str().unwrap()
        );
        assert!(event.event_type.is_gl());
        assert_eq!(event.level.as_str(), original["level"].as_str().unwrap());
        assert_eq!(
            event.created_at,
            time::parse(original["timestamp"].as_str().unwrap()).unwrap()
        );
        assert_eq!(event.actor, "lm-invoker");
        assert_eq!(
            event.payload,
            json!({"block_id": original["id"], "value": original["value"], "metadata": original["metadata"]}),
            "the documented payload shape"
        );
        // Read back, it is the GL event it came from, key for key.
        assert_eq!(GlEvent::from_event(event).unwrap().to_json(), original);
    }
    assert_eq!(events[0].event_type, EventType::ThinkingStart);
    assert_eq!(events[15].level, Level::Debug);

    // Importing it again writes nothing.
    let again = store.import_gl(FIXTURE.as_bytes(), "intent-gl").unwrap();
    assert_eq!(
        (again.read, again.appended, again.already_present),
        (30, 0, 30)
    );
    assert_eq!(store.last_position().unwrap(), 30);
}

#[test]
fn queries_ask_for_a_minimum_level() {
    let store = store();
    store.import_gl(FIXTURE.as_bytes(), "intent-gl").unwrap();
    let all = Query::new().intent("intent-gl").limit(100);
    assert_eq!(store.query(&all).unwrap().events.len(), 30);
    let info = store
        .query(&all.clone().min_level(Level::Info))
        .unwrap()
        .events;
    assert_eq!(info.len(), 28, "the two DEBUG status events are left out");
    assert!(info.iter().all(|e| e.event_type != EventType::Status));
    let debug = store.query(&all.min_level(Level::Debug)).unwrap().events;
    assert_eq!(debug.len(), 30);
}

#[test]
fn the_fixture_reassembles_into_its_four_blocks() {
    let store = store();
    store.import_gl(FIXTURE.as_bytes(), "intent-gl").unwrap();
    let blocks = store.blocks("intent-gl").unwrap();
    let summary: Vec<_> = blocks
        .iter()
        .map(|b| (b.kind, b.id.as_deref(), b.text.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                BlockKind::Thinking,
                Some("think-0"),
                "cite verify fetch cite plan research "
            ),
            (BlockKind::Code, None, "print(1 + 1)\n"),
            (
                BlockKind::Thinking,
                Some("think-1"),
                "rank plan research draft fetch fetch "
            ),
            (BlockKind::Code, None, "print(1 + 1)\n"),
        ]
    );
    let t = |s: &str| time::parse(&format!("2026-11-20T09:00:{s}")).unwrap();
    assert_eq!(blocks[0].started_at, t("07.045"));
    assert_eq!(blocks[0].ended_at, Some(t("07.184")));
    assert_eq!(blocks[1].started_at, t("07.249"));
    assert_eq!(blocks[1].ended_at, Some(t("07.271")));
    assert_eq!((blocks[0].first_sequence, blocks[0].last_sequence), (1, 5));
    assert_eq!(
        (blocks[3].first_sequence, blocks[3].last_sequence),
        (24, 26)
    );
}

#[test]
fn blocks_with_ids_may_interleave() {
    let store = store();
    let lines = [
        gl_line(Some("a"), "thinking_start", "", "01.0"),
        gl_line(Some("b"), "thinking_start", "", "02.0"),
        gl_line(Some("a"), "thinking", "A1 ", "03.0"),
        gl_line(Some("c"), "code_start", "", "03.5"),
        gl_line(Some("b"), "thinking", "B1 ", "04.0"),
        gl_line(Some("c"), "code", "x = 1", "04.5"),
        gl_line(Some("a"), "thinking", "A2", "05.0"),
        gl_line(Some("b"), "thinking_end", "", "06.0"),
        gl_line(Some("c"), "code_end", "", "06.5"),
        gl_line(Some("a"), "thinking_end", "", "07.0"),
    ];
    store.import_gl(lines.join("\n").as_bytes(), "i").unwrap();
    let blocks = store.blocks("i").unwrap();
    let summary: Vec<_> = blocks
        .iter()
        .map(|b| {
            (
                b.id.as_deref().unwrap(),
                b.kind,
                b.text.as_str(),
                b.ended_at.map(time::format),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "a",
                BlockKind::Thinking,
                "A1 A2",
                Some("2026-11-20T09:00:07.000000Z".into())
            ),
            (
                "b",
                BlockKind::Thinking,
                "B1 ",
                Some("2026-11-20T09:00:06.000000Z".into())
            ),
            (
                "c",
                BlockKind::Code,
                "x = 1",
                Some("2026-11-20T09:00:06.500000Z".into())
            ),
        ]
    );
}

#[test]
fn blocks_without_ids_group_by_position() {
    let store = store();
    let lines = [
        // A thinking run interleaved with a code run: told apart by kind.
        gl_line(None, "thinking_start", "", "01.0"),
        gl_line(None, "code_start", "", "01.5"),
        gl_line(None, "thinking", "think ", "02.0"),
        gl_line(None, "code", "print(1)", "02.5"),
        gl_line(None, "thinking", "more", "03.0"),
        gl_line(None, "code_end", "", "03.5"),
        gl_line(None, "thinking_end", "", "04.0"),
        // A run nested in another of the same kind belongs between its own start and end.
        gl_line(None, "thinking_start", "", "05.0"),
        gl_line(None, "thinking", "outer ", "05.1"),
        gl_line(None, "thinking_start", "", "05.2"),
        gl_line(None, "thinking", "inner", "05.3"),
        gl_line(None, "thinking_end", "", "05.4"),
        gl_line(None, "thinking", "again", "05.5"),
        gl_line(None, "thinking_end", "", "05.6"),
        // Content without a start, and a run that never ends.
        gl_line(None, "code", "orphan", "06.0"),
        gl_line(None, "code_end", "", "06.1"),
        gl_line(None, "thinking_start", "", "07.0"),
        gl_line(None, "thinking", "cut off", "07.1"),
    ];
    store.import_gl(lines.join("\n").as_bytes(), "i").unwrap();
    let blocks = store.blocks("i").unwrap();
    let summary: Vec<_> = blocks
        .iter()
        .map(|b| (b.kind, b.text.as_str(), b.ended_at.is_some()))
        .collect();
    assert_eq!(
        summary,
        [
            (BlockKind::Thinking, "think more", true),
            (BlockKind::Code, "print(1)", true),
            (BlockKind::Thinking, "outer again", true),
            (BlockKind::Thinking, "inner", true),
            (BlockKind::Code, "orphan", true),
            (BlockKind::Thinking, "cut off", false),
        ]
    );
    assert!(blocks.iter().all(|b| b.id.is_none()));
    assert_eq!(
        blocks[4].started_at,
        time::parse("2026-11-20T09:00:06.0").unwrap(),
        "starts at its first event"
    );
}

#[test]
fn activities_read_as_typed_values() {
    let store = store();
    store.import_gl(FIXTURE.as_bytes(), "intent-gl").unwrap();
    let odd = [
        json!({"id": "act-1", "value": {"type": "open_page", "url": "https://redb.org", "query": null},
               "level": "INFO", "type": "activity", "timestamp": "2026-11-20T09:00:08", "metadata": {}}),
        json!({"id": "act-2", "value": {"type": "mcp_list_tools", "server_name": "files", "tools": [{"name": "read_file"}]},
               "level": "INFO", "type": "activity", "timestamp": "2026-11-20T09:00:09", "metadata": {}}),
        json!({"id": "act-3", "value": {"type": "image_generation", "prompt": "a cat"},
               "level": "WARNING", "type": "activity", "timestamp": "2026-11-20T09:00:10", "metadata": {}}),
        json!({"id": "act-4", "value": {"type": "mcp_call", "server_name": "files"},
               "level": "INFO", "type": "activity", "timestamp": "2026-11-20T09:00:11", "metadata": {}}),
    ];
    let text: Vec<String> = odd.iter().map(Value::to_string).collect();
    store
        .import_gl(text.join("\n").as_bytes(), "intent-gl")
        .unwrap();

    let records = store.activities("intent-gl").unwrap();
    assert_eq!(records.len(), 8);
    match &records[0].activity {
        Activity::McpCall {
            server_name,
            tool_name,
            args,
        } => {
            assert_eq!(
                (server_name.as_str(), tool_name.as_str()),
                ("files", "read_file")
            );
            assert_eq!(args["path"], "notes.md");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(records[0].id.as_deref(), Some("act-29ca862d"));
    match &records[1].activity {
        Activity::Search(search) => {
            assert_eq!(search.query.as_deref(), Some("research fetch rank"));
            assert_eq!(search.sources, Some(vec![]));
        }
        other => panic!("{other:?}"),
    }
    match &records[4].activity {
        Activity::OpenPage(page) => assert_eq!(page.url.as_deref(), Some("https://redb.org")),
        other => panic!("{other:?}"),
    }
    match &records[5].activity {
        Activity::McpListTools { server_name, tools } => {
            assert_eq!(server_name, "files");
            assert_eq!(tools.as_ref().unwrap().len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        records[6].activity,
        Activity::Other(odd[2]["value"].clone())
    );
    assert_eq!(records[6].activity.type_name(), "image_generation");
    assert_eq!(records[6].level, Level::Warn);
    assert_eq!(
        records[7].activity,
        Activity::Other(odd[3]["value"].clone()),
        "an mcp_call without its tool_name is kept whole, not half-read"
    );
}

#[test]
fn bad_input_names_its_line_and_writes_nothing() {
    let store = store();
    let good = gl_line(None, "response", "hi", "01.0");
    let cases = [
        (format!("{good}\n\n{{not json"), 3, "not JSON"),
        (
            format!(
                "{good}\n{}",
                json!({"type": "status", "level": "LOUD", "timestamp": "2026-11-20T09:00:01"})
            ),
            2,
            "LOUD",
        ),
        (
            format!("{}", json!({"type": "status", "value": "x"})),
            1,
            "`timestamp` is missing",
        ),
        (
            format!("{}", json!({"type": "status", "timestamp": "yesterday"})),
            1,
            "yesterday",
        ),
        (
            format!(
                "{}",
                json!({"value": "x", "timestamp": "2026-11-20T09:00:01"})
            ),
            1,
            "`type` is missing",
        ),
        (
            format!(
                "{}",
                json!({"type": "status", "timestamp": "2026-11-20T09:00:01", "metadata": []})
            ),
            1,
            "`metadata`",
        ),
        ("[1, 2]".to_owned(), 1, "JSON object"),
    ];
    for (input, line, says) in cases {
        let err = store.import_gl(input.as_bytes(), "i").unwrap_err();
        match &err {
            oidb::Error::Import { line: at, .. } => assert_eq!(*at, line, "{err}"),
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(says) && text.contains(&format!("line {line}")),
            "{text}"
        );
        assert_eq!(
            store.last_position().unwrap(),
            0,
            "nothing of a failed import is written"
        );
    }
}

#[test]
fn times_without_a_zone_are_utc_and_others_are_converted() {
    let store = store();
    let lines = [
        json!({"type": "status", "value": "naive", "timestamp": "2026-11-20T09:00:07.5"})
            .to_string(),
        json!({"type": "status", "value": "offset", "timestamp": "2026-11-20T10:00:07.5+01:00"})
            .to_string(),
    ];
    store.import_gl(lines.join("\n").as_bytes(), "i").unwrap();
    let events = store.get_events("i", EventFilter::new()).unwrap();
    assert_eq!(events[0].created_at, events[1].created_at);
    assert_eq!(
        time::format(events[0].created_at),
        "2026-11-20T09:00:07.500000Z"
    );
    assert_eq!(events[0].level, Level::Info, "level defaults to INFO");
    assert_eq!(
        events[0].payload,
        json!({"block_id": null, "value": "naive", "metadata": {}})
    );
}

#[test]
fn a_live_gl_event_reads_back_as_itself() {
    let store = store();
    let mut event = GlEvent::new(EventType::Reference, json!({"url": "https://example.org"}));
    event.id = Some("ref-1".into());
    event.level = Level::Warn;
    event.metadata.insert("source".into(), json!("web"));
    let stored = store.log_gl_event("i", &event).unwrap();
    assert_eq!(stored.level, Level::Warn);
    assert_eq!(GlEvent::from_event(&stored), Some(event));
    let comment = store
        .log_event("i", EventType::Comment, json!({"message": "no"}))
        .unwrap();
    assert_eq!(GlEvent::from_event(&comment), None);
}

/// An event the store refuses (not the GL reader) is named by its line too: a GL import said only
/// "field `event_type` is 300 bytes", without the line, and took a value nested so deep that its
/// export could not be imported back.
#[test]
fn an_event_the_store_refuses_names_its_line() {
    let store = store();
    let good = gl_line(None, "response", "hi", "01.0");
    let mut lines: Vec<String> = (0..20).map(|_| good.clone()).collect();
    lines.insert(5, String::new());
    // Imports 21 lines (one blank), `bad` and a good one; returns the error's source, line, reason.
    let refused = |bad: String| {
        let mut input = lines.clone();
        input.push(bad);
        input.push(good.clone());
        let err = store
            .import_gl_named(input.join("\n").as_bytes(), "i", "stream.jsonl")
            .unwrap_err();
        assert_eq!(store.last_position().unwrap(), 0);
        match err {
            oidb::Error::Import {
                source_name,
                line,
                reason,
                ..
            } => (source_name, line, reason),
            other => panic!("expected Import, got {other:?}"),
        }
    };

    let (source, line, reason) = refused(gl_line(None, &"t".repeat(300), "x", "02.0"));
    assert_eq!((source.as_str(), line), ("stream.jsonl", 22), "{reason}");
    assert!(reason.contains("300 bytes"), "{reason}");

    // The payload holds the value one level deeper: 126 levels of value are 127 of payload.
    let mut deep = json!([]);
    for _ in 1..126 {
        deep = json!([deep]);
    }
    let too_deep = json!({"type": "status", "value": deep, "timestamp": "2026-11-20T09:00:03"});
    let (_, line, reason) = refused(too_deep.to_string());
    assert_eq!(line, 22, "{reason}");
    assert!(reason.contains("deeper than 126"), "{reason}");
}
