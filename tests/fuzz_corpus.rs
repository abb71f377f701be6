//! Replays every seed of the fuzz corpora (`fuzz/corpus/<target>/`) through the function its fuzz
//! target calls, so that a plain `cargo test` checks them with no nightly toolchain. Inputs that
//! once broke something are kept there as `regression-*` files.
//!
//! `cargo test --features fuzzing --test fuzz_corpus -- --ignored write_seed_corpora` rewrites the generated seeds.

mod prng;

#[path = "../fuzz/cli_filters.rs"]
mod cli_filters;

use std::path::{Path, PathBuf};

use oidb::{fuzzing, Store};
use prng::Prng;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus of {target} is empty");
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = corpus(target);
    for file in &files {
        let data = std::fs::read(file).unwrap();
        eprintln!("{target}: {}", file.display());
        run(&data);
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn record_decoder_corpus() {
    replay("record_decoder", fuzzing::record_decoder);
}

#[test]
fn binary_json_decoder_corpus() {
    replay("binary_json_decoder", fuzzing::binary_json_decoder);
}

#[test]
fn import_json_corpus() {
    replay("import_json", fuzzing::import_json);
}

#[test]
fn time_and_filter_corpus() {
    replay("time_and_filter", fuzzing::time_and_filter);
}

#[test]
fn import_gl_corpus() {
    replay("import_gl", fuzzing::import_gl);
}

#[test]
fn cli_filters_corpus() {
    replay("cli_filters", cli_filters::cli_filters);
}

#[test]
fn store_model_corpus() {
    replay("store_model", fuzzing::store_model);
}

/// Writes the generated seeds: records of the fixture events and their payloads' binary JSON, the
/// fixtures and lines of them for import, and random byte strings for the model. Hand-written
/// seeds live beside them, and so do records of version 1 (`v1-*.bin`), which this build no
/// longer writes.
#[test]
#[ignore = "rewrites the generated seed corpora; run by hand"]
fn write_seed_corpora() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };

    let store = Store::in_memory().unwrap();
    for fixture in ["openintent_events.jsonl", "openintent_chained.jsonl"] {
        store
            .import_json(std::fs::read(data.join(fixture)).unwrap().as_slice())
            .unwrap();
    }
    for event in store.scan(1).unwrap() {
        let event = event.unwrap();
        if event.position % 5 == 1 {
            let record = fuzzing::record_of(&event).unwrap();
            write(
                "record_decoder",
                &format!("fixture-{:03}.bin", event.position),
                &record,
            );
        }
        if event.position % 11 == 1 {
            write(
                "binary_json_decoder",
                &format!("payload-{:03}.bin", event.position),
                &fuzzing::binary_json_of(&event.payload),
            );
        }
    }

    for fixture in [
        "openintent_events.jsonl",
        "openintent_chained.jsonl",
        "openintent_chained_tampered.jsonl",
        "gllm_stream.jsonl",
    ] {
        let text = std::fs::read_to_string(data.join(fixture)).unwrap();
        let stem = fixture.trim_end_matches(".jsonl");
        write("import_json", &format!("{stem}.jsonl"), text.as_bytes());
        let first: Vec<&str> = text.lines().take(3).collect();
        write(
            "import_json",
            &format!("{stem}-first-3.jsonl"),
            first.join("\n").as_bytes(),
        );
        let array = format!("[\n{}\n]\n", first.join(",\n"));
        write(
            "import_json",
            &format!("{stem}-first-3-array.json"),
            array.as_bytes(),
        );
    }

    let mut rng = Prng::new(0x0123_4567_89ab_cdef);
    for i in 0..24 {
        let mut bytes = vec![0; rng.range(16, 600) as usize];
        rng.fill(&mut bytes);
        write("store_model", &format!("random-{i:02}.bin"), &bytes);
    }
}

/// Found by the `store_model` target: a query on an intent and a trace, one page long, returned
/// a `next` cursor although no further event matched (the trace is checked in the record, and
/// the page was declared "more" before that check).
#[test]
fn finding_a_trace_query_page_has_no_next_cursor_when_nothing_follows() {
    use oidb::{EventType, NewEvent, Query};
    let store = Store::in_memory().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    store
        .append(NewEvent::new("i", EventType::Comment, "a").trace_id(trace))
        .unwrap();
    store
        .append(NewEvent::new("i", EventType::Comment, "a"))
        .unwrap();
    for query in [
        Query::new().intent("i").trace(trace).limit(1),
        Query::new()
            .intent("i")
            .trace(trace)
            .limit(1)
            .newest_first(),
    ] {
        let page = store.query(&query).unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.next, None, "{query:?}");
    }
}
