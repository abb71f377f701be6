//! Records one traced agent step (an LLM request that asks for a tool, the tool call, and the
//! follow-up request) and exports it as OTLP/JSON, ready for any OpenTelemetry back end.
//!
//! ```text
//! cargo run --example otlp_export                 # writes the request to stdout
//! cargo run --example otlp_export -- trace.json   # or to a file, then:
//! curl -X POST -H 'Content-Type: application/json' --data-binary @trace.json \
//!      http://localhost:4318/v1/traces
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};

use oidb::costs::{CostQuery, ModelPrice, PriceTable};
use oidb::{EventType, NewEvent, Store, TraceContext};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::builder()
        .actor("agent-research")
        .open_backend(redb::backends::InMemoryBackend::new(), "example")?;
    store.set_prices(
        &PriceTable::new("USD")
            .with(ModelPrice::new("openai", "gpt-4o", 2.5, 10.0).cached_input(1.25)),
    )?;
    let intent = "intent-research-42";
    let agent = "agent-research";
    let trace = TraceContext::new_root();

    let ask = store.append(
        NewEvent::new(intent, EventType::LlmRequestStarted, agent)
            .payload(
                json!({"request_id": "req-1", "provider": "openai", "model": "gpt-4o",
                            "messages_count": 2, "temperature": 0.2, "max_tokens": 1024}),
            )
            .in_trace(&trace),
    )?;
    let answer = store.append(
        NewEvent::new(intent, EventType::LlmRequestCompleted, agent)
            .payload(
                json!({"request_id": "req-1", "provider": "openai", "model": "gpt-4o",
                            "finish_reason": "tool_calls", "prompt_tokens": 1200,
                            "completion_tokens": 80, "cached_tokens": 1000,
                            "total_tokens": 1280, "duration_ms": 840}),
            )
            .in_trace(&trace.child(ask.id)),
    )?;
    let call = store.append(
        NewEvent::new(intent, EventType::ToolCallStarted, agent)
            .payload(json!({"tool_name": "web_search", "tool_id": "call_1",
                            "arguments": {"query": "climate data"}}))
            .in_trace(&trace.child(answer.id)),
    )?;
    store.append(
        NewEvent::new(intent, EventType::ToolCallCompleted, agent)
            .payload(json!({"tool_name": "web_search", "tool_id": "call_1", "duration_ms": 310}))
            .in_trace(&trace.child(call.id)),
    )?;
    let follow_up = store.append(
        NewEvent::new(intent, EventType::LlmRequestStarted, agent)
            .payload(json!({"request_id": "req-2", "provider": "openai", "model": "gpt-4o"}))
            .in_trace(&trace.child(ask.id)),
    )?;
    store.append(
        NewEvent::new(intent, EventType::LlmRequestFailed, agent)
            .payload(
                json!({"request_id": "req-2", "provider": "openai", "model": "gpt-4o",
                            "error": "RateLimitError: 429 Too Many Requests", "duration_ms": 95}),
            )
            .in_trace(&trace.child(follow_up.id)),
    )?;

    eprint!("{}", store.trace_tree(trace.trace_id())?);
    let spent = store.cost_summary(&CostQuery::new().intent(intent))?;
    eprintln!("spent: {} USD", spent.total_in("USD"));

    let spans = match std::env::args().nth(1) {
        Some(path) => {
            let mut file = BufWriter::new(File::create(&path)?);
            let spans = store.export_otlp_json(trace.trace_id(), &mut file)?;
            file.flush()?;
            eprintln!("wrote {path}");
            spans
        }
        None => store.export_otlp_json(trace.trace_id(), std::io::stdout().lock())?,
    };
    eprintln!("{spans} spans in trace {}", trace.trace_id());
    Ok(())
}
