//! A subscriber beside a writer: one thread appends an agent's events while a durable consumer
//! counts the LLM requests as they commit, acknowledging each, so that a restart resumes where
//! it left off.
//!
//! ```text
//! cargo run --example subscriber              # uses subscriber.oidb in a temporary directory
//! cargo run --example subscriber -- my.oidb   # or a file of yours (run it twice: it resumes)
//! ```

use std::time::Duration;

use oidb::{Delivery, EventType, Filter, Store};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?; // removed when the example ends
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| scratch.path().join("subscriber.oidb"), Into::into);
    let store = Store::builder().actor("agent-research").open(&path)?;

    // The durable consumer: its checkpoint lives in the file.
    let counter = store.consumer("llm-counter")?;
    println!(
        "consumer {:?} resumes after position {}",
        counter.name(),
        counter.checkpoint()?
    );
    let mut sub = counter.subscribe(Filter::new().type_prefix("llm_"))?;

    // The agent: appends from another thread while the consumer reads.
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || -> oidb::Result<()> {
            for i in 0..5 {
                let request_id = format!("req-{i}");
                store.log_event(
                    "intent-42",
                    EventType::LlmRequestStarted,
                    json!({"request_id": request_id, "provider": "openai", "model": "gpt-4o"}),
                )?;
                store.log_event(
                    "intent-42",
                    EventType::ToolCallStarted,
                    json!({"tool_name": "web_search", "tool_id": format!("call-{i}")}),
                )?;
                store.log_event(
                    "intent-42",
                    EventType::LlmRequestCompleted,
                    json!({"request_id": request_id, "provider": "openai", "model": "gpt-4o",
                           "prompt_tokens": 900 + i, "completion_tokens": 120}),
                )?;
            }
            Ok(())
        })
    };

    let mut completed = 0;
    let mut tokens = 0;
    // Stop when nothing has come for half a second after the writer is done.
    while let Some(delivery) = sub.recv_timeout(Duration::from_millis(500))? {
        match delivery {
            Delivery::Event(event) => {
                if event.event_type == EventType::LlmRequestCompleted {
                    completed += 1;
                    tokens += event.payload["prompt_tokens"].as_u64().unwrap_or(0)
                        + event.payload["completion_tokens"].as_u64().unwrap_or(0);
                }
                println!(
                    "{:>4}  {:<22} {}",
                    event.position, event.event_type, event.payload["request_id"]
                );
                // Acknowledge once the event's work is done: a restart resumes after it.
                counter.ack(event.position)?;
            }
            Delivery::CaughtUp { position } => {
                println!("---- history read up to position {position}; live from here");
            }
        }
    }
    writer.join().map_err(|_| "the writer thread panicked")??;
    println!(
        "{completed} completed requests, {tokens} tokens; checkpoint now {}",
        counter.checkpoint()?
    );
    Ok(())
}
