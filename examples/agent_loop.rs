//! An agent loop that keeps its own audit trail: each model call and tool call is wrapped in an
//! oidb handle that logs its start, measures it, and logs its outcome.
//!
//! The model and the tool are simulated (canned OpenAI-shaped responses), so the example runs
//! offline:
//!
//! ```text
//! cargo run --example agent_loop              # in memory
//! cargo run --example agent_loop agent.oidb   # into a file, to look at with `oidb events`
//! ```

use std::time::Duration;

use oidb::observe::{RequestedToolCall, StreamCallbacks};
use oidb::{EventFilter, Store, Usage};
use serde_json::{json, Value};

const INTENT: &str = "intent-research-redb";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The simulated model: asks for a search first, answers once it has a result.
fn call_model(messages: &[Value]) -> Result<Value, String> {
    std::thread::sleep(Duration::from_millis(30));
    let has_tool_result = messages.iter().any(|m| m["role"] == "tool");
    if has_tool_result {
        return Ok(json!({
            "choices": [{"message": {"role": "assistant", "content": null}, "finish_reason": null}],
            "stream": ["redb is ", "an embedded ", "key-value store ", "written in Rust."],
            "usage": {"prompt_tokens": 412, "completion_tokens": 11, "total_tokens": 423,
                      "prompt_tokens_details": {"cached_tokens": 256}}
        }));
    }
    Ok(json!({
        "choices": [{
            "message": {"role": "assistant", "content": "Let me search for that.", "tool_calls": [{
                "id": "call_7Qx2", "type": "function",
                "function": {"name": "web_search", "arguments": "{\"query\": \"what is redb\"}"}
            }]},
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 380, "completion_tokens": 22, "total_tokens": 402}
    }))
}

/// The simulated tool.
fn web_search(arguments: &Value) -> Result<Value, String> {
    std::thread::sleep(Duration::from_millis(10));
    let query = arguments["query"]
        .as_str()
        .ok_or("web_search needs a query")?;
    Ok(
        json!({"query": query, "hits": [{"title": "redb: an embedded database", "url": "https://www.redb.org"}]}),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = match std::env::args().nth(1) {
        Some(path) => Store::builder().actor("agent-research").open(path)?,
        None => Store::builder()
            .actor("agent-research")
            .open_backend(redb::backends::InMemoryBackend::new(), "agent")?,
    };

    let mut messages = vec![json!({"role": "user", "content": "What is redb?"})];
    // Step 1: a plain model call that asks for a tool.
    let mut request = store
        .llm_request(INTENT, "openai", "gpt-4o")
        .messages_count(messages.len() as u64)
        .tools_available(["web_search"])
        .temperature(0.2)
        .trace_id(TRACE)
        .start()?;
    let response = match call_model(&messages) {
        Ok(response) => response,
        Err(error) => {
            request.fail(&error)?;
            return Err(error.into());
        }
    };
    let choice = &response["choices"][0];
    request
        .response_content(choice["message"]["content"].as_str().unwrap_or_default())
        .finish_reason(choice["finish_reason"].as_str().unwrap_or_default())
        .tool_calls(
            choice["message"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    if let Some(usage) = Usage::from_response(&response) {
        request.usage(&usage);
    }
    let request_id = request.request_id().to_owned();
    let completed = request.complete()?;

    // Step 2: each tool call the model asked for, linked to the request that asked.
    for tool_call in choice["message"]["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let asked = RequestedToolCall::from_argument_string(
            tool_call["id"].as_str().unwrap_or_default(),
            tool_call["function"]["name"].as_str().unwrap_or_default(),
            tool_call["function"]["arguments"].as_str().unwrap_or("{}"),
        );
        let call = store
            .tool_call(INTENT, asked.tool_name.clone(), asked.arguments.clone())
            .tool_id(asked.tool_id.clone())
            .provider("openai")
            .model("gpt-4o")
            .parent_request_id(request_id.clone())
            .parent_event_id(completed.id.to_string())
            .trace_id(TRACE)
            .start()?;
        match web_search(&asked.arguments) {
            Ok(result) => {
                messages.push(json!({"role": "tool", "tool_call_id": asked.tool_id, "content": result.to_string()}));
                call.complete(result)?;
            }
            Err(error) => {
                call.fail(&error)?;
            }
        }
    }

    // Step 3: the answer, streamed, with a hook printing tokens as they come.
    let mut stream = store
        .stream_recorder(INTENT, "openai", "gpt-4o")
        .request(|r| r.messages_count(messages.len() as u64).trace_id(TRACE))
        .chunk_log_interval(2)
        .hooks(StreamCallbacks::new().on_token(|token, _| print!("{token}")))
        .start()?;
    let answer = call_model(&messages)?;
    for token in answer["stream"].as_array().into_iter().flatten() {
        stream.chunk(token.as_str().unwrap_or_default())?;
    }
    println!();
    stream.finish_reason("stop");
    if let Some(usage) = Usage::from_response(&answer) {
        stream.usage(&usage);
    }
    let report = stream.complete()?;

    println!(
        "\nstreamed {} chunks in {:?} (first token after {:?}); hook failures: {}",
        report.state.chunks_received,
        report.duration,
        report.time_to_first_token.unwrap_or_default(),
        report.hook_failures.len()
    );
    println!("\nthe audit trail of {INTENT}:");
    for event in store.get_events(INTENT, EventFilter::new())? {
        let p = &event.payload;
        let detail = match event.event_type.as_str() {
            "llm_request_completed" => {
                format!("{} tokens in {} ms", p["total_tokens"], p["duration_ms"])
            }
            "tool_call_started" | "tool_call_completed" => {
                format!("{} {}", p["tool_name"], p["arguments"])
            }
            "stream_chunk" => format!("chunk {}", p["chunk_index"]),
            "stream_completed" => format!(
                "{} chunks, {} tokens",
                p["chunks_received"], p["tokens_streamed"]
            ),
            _ => String::new(),
        };
        println!("  {:>2} {:<22} {detail}", event.sequence, event.event_type);
    }
    Ok(())
}
