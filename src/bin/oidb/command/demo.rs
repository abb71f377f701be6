//! `oidb demo [PATH]`: writes a simulated agent run into a fresh file through the library, then
//! reads it back and shows what is in it: events by type, tokens by model, the hash chains checked.
//!
//! The run is what an agent built on OpenIntent logs: an intent and a sub-intent, LLM requests
//! with the SDK's payload keys (one streamed, one failing and retried), tool calls, GL thinking
//! and code blocks, all in one RFC-0020 trace with each step's parent named.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use oidb::chain::compute_event_hash;
use oidb::{Error, Event, EventType, Level, NewEvent, Query, ReadOnlyStore, Store};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::args::DemoArgs;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::table::{count, duration_ms, shorten};

/// How long before now the simulated run starts (it lasts a little less).
const RUN_SPAN_SECONDS: i64 = 25;

pub fn run(args: &DemoArgs) -> Outcome {
    let path = &args.path;
    let replaced = remove_old_demo(path)?;
    let started = Instant::now();
    let store = Store::builder()
        .actor("agent-research")
        .open(path)
        .map_err(|e| open::explain(path, e))?;
    let run = write_run(&store)?;
    let took = started.elapsed();
    let report = Report::read(&store, &run)?;
    drop(store);

    let mut out = std::io::stdout().lock();
    if replaced {
        writeln!(out, "(replaced the earlier {})", path.display())?;
    }
    write!(out, "{}", report.text(path, took.as_millis() as i64))?;
    out.flush()?;
    report.verdict()
}

/// Removes an earlier demo file at `path`; refuses to touch a file that is not an oidb store.
/// Returns whether there was one.
fn remove_old_demo(path: &Path) -> Result<bool, Failure> {
    if !path.exists() {
        return Ok(false);
    }
    match ReadOnlyStore::open(path) {
        Ok(_)
        | Err(
            Error::NeedsRepair { .. } | Error::UnsupportedFormat { .. } | Error::Corrupt { .. },
        ) => {}
        Err(Error::NotAnOidbFile { reason, .. }) => {
            return Err(Failure::Error(format!(
                "{} exists and is not an oidb file ({reason}); the demo replaces only an earlier \
                 demo: give it another path, as in `oidb demo run.oidb`",
                path.display()
            )))
        }
        Err(other) => return Err(open::explain(path, other)),
    }
    std::fs::remove_file(path)
        .map_err(|e| Failure::Error(format!("cannot replace {}: {e}", path.display())))?;
    Ok(true)
}

/// What the summary needs to know about the run it wrote.
struct Run {
    intents: Vec<(String, String)>,
    trace_id: String,
    failed_request: Uuid,
}

/// Writes events with a simulated clock, so that times and `duration_ms` agree, all in one trace.
struct Script<'a> {
    store: &'a Store,
    clock: DateTime<Utc>,
    trace_id: String,
}

impl Script<'_> {
    /// Appends `event` `after_ms` after the previous one, naming `parent` as its cause.
    fn append(
        &mut self,
        after_ms: i64,
        event: NewEvent,
        parent: Option<&Event>,
    ) -> Result<Event, Failure> {
        self.clock += Duration::milliseconds(after_ms);
        let mut event = event.created_at(self.clock).trace_id(self.trace_id.clone());
        if let Some(parent) = parent {
            event = event.parent_event_id(parent.id.to_string());
        }
        Ok(self.store.append(event)?)
    }

    /// Appends an INFO event with no parent.
    fn log(
        &mut self,
        after_ms: i64,
        (intent, actor): (&str, &str),
        kind: EventType,
        payload: Value,
    ) -> Result<Event, Failure> {
        self.append(
            after_ms,
            NewEvent::new(intent, kind, actor).payload(payload),
            None,
        )
    }

    /// A GL block (`thinking_*` or `code_*`): its start, one event per piece, its end.
    fn block(
        &mut self,
        who: (&str, &str),
        [start, piece, end]: [EventType; 3],
        id: Option<&str>,
        pieces: &[&str],
    ) -> Result<(), Failure> {
        let gl = |value: &str| json!({"id": id, "value": value, "metadata": {}});
        self.log(40, who, start, gl(""))?;
        for text in pieces {
            self.log(180, who, piece.clone(), gl(text))?;
        }
        self.log(30, who, end, gl(""))?;
        Ok(())
    }

    /// An LLM request that completes, as the OpenIntent SDK's adapters log it:
    /// `llm_request_started`, then `llm_request_completed` with the outcome and usage.
    fn llm_call(
        &mut self,
        who: (&str, &str),
        request: &Value,
        outcome: &Value,
        duration_ms: i64,
        parent: Option<&Event>,
    ) -> Result<Event, Failure> {
        let (intent, actor) = who;
        let started = self.append(
            120,
            NewEvent::new(intent, EventType::LlmRequestStarted, actor).payload(request.clone()),
            parent,
        )?;
        let mut completed = request.clone();
        merge(&mut completed, outcome);
        merge(&mut completed, &json!({"duration_ms": duration_ms}));
        self.append(
            duration_ms,
            NewEvent::new(intent, EventType::LlmRequestCompleted, actor).payload(completed),
            Some(&started),
        )
    }

    /// A tool call that completes: `tool_call_started`, then `tool_call_completed`.
    fn tool_call(
        &mut self,
        who: (&str, &str),
        call: &Value,
        result: &Value,
        duration_ms: i64,
        parent: &Event,
    ) -> Result<Event, Failure> {
        let (intent, actor) = who;
        let started = self.append(
            60,
            NewEvent::new(intent, EventType::ToolCallStarted, actor).payload(call.clone()),
            Some(parent),
        )?;
        let completed = json!({
            "tool_name": field(call, "tool_name"),
            "tool_id": field(call, "tool_id"),
            "arguments": field(call, "arguments"),
            "result": result,
            "duration_ms": duration_ms,
        });
        self.append(
            duration_ms,
            NewEvent::new(intent, EventType::ToolCallCompleted, actor).payload(completed),
            Some(&started),
        )
    }
}

/// A payload field, or null.
fn field(payload: &Value, key: &str) -> Value {
    payload.get(key).cloned().unwrap_or(Value::Null)
}

/// `base` with `extra`'s fields added (both JSON objects).
fn merge(base: &mut Value, extra: &Value) {
    if let (Value::Object(base), Value::Object(extra)) = (base, extra) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
}

/// An `llm_request_started` payload, with the SDK's keys.
fn request(provider: &str, model: &str, messages: u32, stream: bool, tools: &[&str]) -> Value {
    json!({
        "request_id": Uuid::new_v4().to_string(),
        "provider": provider,
        "model": model,
        "messages_count": messages,
        "stream": stream,
        "tools_available": tools,
        "temperature": 0.2,
        "max_tokens": 1024,
    })
}

/// What an `llm_request_completed` adds: the response, why it finished, the usage.
fn outcome(
    response: &str,
    tool_calls: &Value,
    finish: &str,
    prompt: u64,
    completion: u64,
) -> Value {
    json!({
        "response_content": response,
        "tool_calls": tool_calls,
        "finish_reason": finish,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

const THINKING: [EventType; 3] = [
    EventType::ThinkingStart,
    EventType::Thinking,
    EventType::ThinkingEnd,
];
const CODE: [EventType; 3] = [EventType::CodeStart, EventType::Code, EventType::CodeEnd];

/// Writes the run: a research intent (plan, search, a failed request retried as a stream, a
/// page read, a decision) and a sub-intent that drafts the recommendation.
fn write_run(store: &Store) -> Result<Run, Failure> {
    let research_id = Uuid::now_v7().to_string();
    let writing_id = Uuid::now_v7().to_string();
    let mut s = Script {
        store,
        clock: oidb::time::now() - Duration::seconds(RUN_SPAN_SECONDS),
        trace_id: Uuid::new_v4().simple().to_string(),
    };
    let research = "Compare embedded vector databases for agent memory";
    let drafting = "Draft the recommendation";

    let alice = (research_id.as_str(), "alice");
    let agent = (research_id.as_str(), "agent-research");
    s.log(
        0,
        alice,
        EventType::IntentCreated,
        json!({
            "title": research,
            "description": "Shortlist three embedded options and recommend one",
        }),
    )?;
    s.log(
        350,
        alice,
        EventType::AgentAssigned,
        json!({
            "agent_id": "agent-research",
            "role": "worker",
        }),
    )?;
    s.block(
        agent,
        THINKING,
        Some("think-0"),
        &[
            "The user wants embedded options only. ",
            "Search first, then read the best benchmark page.",
        ],
    )?;

    let searched = plan_and_search(&mut s, agent)?;
    let failed = fail(&mut s, agent, &searched)?;
    let read = stream_and_read(&mut s, agent, &failed)?;
    let decision = decide(&mut s, agent, &read)?;
    draft(&mut s, &writing_id, &research_id, drafting, &decision)?;

    Ok(Run {
        intents: vec![
            (research_id, research.to_owned()),
            (writing_id, drafting.to_owned()),
        ],
        trace_id: s.trace_id,
        failed_request: failed.id,
    })
}

/// The agent plans with gpt-4o, which asks for a web search, and runs it.
fn plan_and_search(s: &mut Script<'_>, agent: (&str, &str)) -> Result<Event, Failure> {
    // Plan with gpt-4o, which asks for a web search.
    let search = json!({"query": "embedded vector database benchmark 2026"});
    let search_call = json!([{"id": "call_search_1", "name": "web_search", "arguments": search}]);
    let tools = ["web_search", "read_page"];
    let plan = s.llm_call(
        agent,
        &request("openai", "gpt-4o", 2, false, &tools),
        &outcome("", &search_call, "tool_calls", 1_840, 96),
        2_310,
        None,
    )?;
    s.tool_call(
        agent,
        &json!({
            "tool_name": "web_search",
            "tool_id": "call_search_1",
            "arguments": search,
            "provider": "openai",
            "model": "gpt-4o",
            "parent_request_id": field(&plan.payload, "request_id"),
        }),
        &json!({"hits": 8, "top": ["sqlite-vec", "LanceDB", "Chroma"]}),
        1_210,
        &plan,
    )
}

/// deepseek-chat is rate-limited, so the request fails. Returns the failure.
fn fail(s: &mut Script<'_>, agent: (&str, &str), searched: &Event) -> Result<Event, Failure> {
    let flaky = request("deepseek", "deepseek-chat", 4, true, &["read_page"]);
    let started = s.append(
        120,
        NewEvent::new(agent.0, EventType::LlmRequestStarted, agent.1).payload(flaky.clone()),
        Some(searched),
    )?;
    let mut error = flaky;
    merge(
        &mut error,
        &json!({
            "error": "RateLimitError: 429 Too Many Requests",
            "duration_ms": 349,
        }),
    );
    let failed = s.append(
        349,
        NewEvent::new(agent.0, EventType::LlmRequestFailed, agent.1)
            .payload(error)
            .level(Level::Error),
        Some(&started),
    )?;
    let retry = json!({"message": "deepseek-chat is rate-limited; retrying with claude-sonnet-4"});
    s.append(
        15,
        NewEvent::new(agent.0, EventType::Comment, agent.1)
            .payload(retry)
            .level(Level::Warn),
        Some(&failed),
    )?;

    Ok(failed)
}

/// The retry with claude-sonnet-4 is streamed (stream events between the request's start and
/// end) and asks to read a page. Returns the page read.
fn stream_and_read(
    s: &mut Script<'_>,
    agent: (&str, &str),
    failed: &Event,
) -> Result<Event, Failure> {
    let streamed = request("anthropic", "claude-sonnet-4", 4, true, &["read_page"]);
    let started = s.append(
        120,
        NewEvent::new(agent.0, EventType::LlmRequestStarted, agent.1).payload(streamed.clone()),
        Some(failed),
    )?;
    let stream_id = Uuid::new_v4().to_string();
    let stream_start = oidb::time::format(s.clock + Duration::milliseconds(410));
    let stream_state = |status: &str, chunks: u64, tokens: u64| {
        json!({
            "stream_id": stream_id,
            "intent_id": agent.0,
            "agent_id": "agent-research",
            "status": status,
            "provider": "anthropic",
            "model": "claude-sonnet-4",
            "chunks_received": chunks,
            "tokens_streamed": tokens,
            "started_at": stream_start,
        })
    };
    let opened = s.append(
        410,
        NewEvent::new(agent.0, EventType::StreamStarted, agent.1)
            .payload(stream_state("active", 0, 0)),
        Some(&started),
    )?;
    // One chunk event every 10 chunks, as the SDK's chunk_log_interval does.
    for (index, tokens) in [(0, 9), (10, 88), (20, 95), (30, 91), (40, 86)] {
        let chunk = json!({"stream_id": stream_id, "chunk_index": index, "token_count": tokens});
        s.append(
            1_100,
            NewEvent::new(agent.0, EventType::StreamChunk, agent.1).payload(chunk),
            Some(&opened),
        )?;
    }
    let mut done = stream_state("completed", 48, 412);
    let completed_at = oidb::time::format(s.clock + Duration::milliseconds(690));
    merge(&mut done, &json!({"completed_at": completed_at}));
    let closed = s.append(
        690,
        NewEvent::new(agent.0, EventType::StreamCompleted, agent.1).payload(done),
        Some(&opened),
    )?;
    let page = json!({"url": "https://lancedb.com/docs"});
    let read_call = json!([{"id": "call_read_1", "name": "read_page", "arguments": page}]);
    let mut answer = streamed;
    merge(
        &mut answer,
        &outcome(
            "sqlite-vec, LanceDB and Chroma all run in process; reading the LanceDB page next.",
            &read_call,
            "tool_calls",
            3_120,
            412,
        ),
    );
    merge(&mut answer, &json!({"duration_ms": 6_840}));
    let answer = s.append(
        40,
        NewEvent::new(agent.0, EventType::LlmRequestCompleted, agent.1).payload(answer),
        Some(&closed),
    )?;
    let read = s.tool_call(
        agent,
        &json!({
            "tool_name": "read_page",
            "tool_id": "call_read_1",
            "arguments": page,
            "provider": "anthropic",
            "model": "claude-sonnet-4",
            "parent_request_id": field(&answer.payload, "request_id"),
        }),
        &json!({"chars": 18_233, "title": "LanceDB documentation"}),
        640,
        &answer,
    )?;
    s.log(
        200,
        agent,
        EventType::StatePatched,
        json!({
            "patches": [{"op": "set", "path": "progress", "value": 0.5}],
            "version": 2,
        }),
    )?;

    Ok(read)
}

/// The agent decides with gpt-4o and hands over.
fn decide(s: &mut Script<'_>, agent: (&str, &str), read: &Event) -> Result<Event, Failure> {
    s.block(
        agent,
        THINKING,
        Some("think-1"),
        &[
            "All three are embedded. ",
            "sqlite-vec is one file like ours; LanceDB scales further.",
        ],
    )?;
    let decision = s.llm_call(
        agent,
        &request("openai", "gpt-4o", 6, false, &[]),
        &outcome(
            "Shortlist: sqlite-vec (one file), LanceDB (columnar, scales), Chroma (simplest API).",
            &json!([]),
            "stop",
            5_210,
            388,
        ),
        3_020,
        Some(read),
    )?;
    s.log(
        150,
        agent,
        EventType::StatePatched,
        json!({
            "patches": [{"op": "set", "path": "progress", "value": 1.0}],
            "version": 3,
        }),
    )?;
    let handover = json!({"message": "Shortlist ready; agent-writer drafts the recommendation"});
    s.append(
        80,
        NewEvent::new(agent.0, EventType::Comment, agent.1).payload(handover),
        Some(&decision),
    )?;

    Ok(decision)
}

/// A sub-intent, in the same trace: agent-writer drafts the recommendation.
fn draft(
    s: &mut Script<'_>,
    writing_id: &str,
    research_id: &str,
    title: &str,
    decision: &Event,
) -> Result<(), Failure> {
    let planner = (writing_id, "agent-research");
    let writer = (writing_id, "agent-writer");
    let created = s.append(
        120,
        NewEvent::new(planner.0, EventType::IntentCreated, planner.1)
            .payload(json!({"title": title, "parent_intent_id": research_id})),
        Some(decision),
    )?;
    s.log(
        90,
        planner,
        EventType::AgentAssigned,
        json!({
            "agent_id": "agent-writer",
            "role": "worker",
        }),
    )?;
    let draft = s.llm_call(
        writer,
        &request("openai", "gpt-4o-mini", 3, false, &[]),
        &outcome(
            "Recommend sqlite-vec for a single-file agent; LanceDB past ten million vectors.",
            &json!([]),
            "stop",
            2_400,
            610,
        ),
        4_150,
        Some(&created),
    )?;
    s.block(
        writer,
        CODE,
        None,
        &[
            "scores = {\"sqlite-vec\": 8.5, \"lancedb\": 8.0, \"chroma\": 7.0}\n",
            "print(max(scores, key=scores.get))\n",
        ],
    )?;
    let verdict =
        json!({"message": "Recommendation: sqlite-vec now, LanceDB past ten million vectors"});
    s.append(
        60,
        NewEvent::new(writer.0, EventType::Comment, writer.1).payload(verdict),
        Some(&draft),
    )?;
    s.log(
        40,
        writer,
        EventType::StatePatched,
        json!({
            "patches": [{"op": "set", "path": "status", "value": "done"}],
            "version": 2,
        }),
    )?;

    Ok(())
}

/// Usage of one model, summed from the `llm_request_*` payloads.
#[derive(Debug, Default)]
struct ModelUsage {
    requests: u64,
    failed: u64,
    prompt: u64,
    completion: u64,
    total: u64,
    duration_ms: i64,
}

/// The chain of one intent as checked.
struct ChainCheck {
    intent: String,
    title: String,
    events: u64,
    problems: Vec<String>,
}

/// What the demo found when it read the file back.
struct Report {
    events: u64,
    actors: u64,
    by_type: Vec<(String, u64)>,
    by_model: BTreeMap<String, ModelUsage>,
    chains: Vec<ChainCheck>,
    trace_id: String,
    failed_request: Uuid,
}

impl Report {
    fn read(store: &Store, run: &Run) -> Result<Report, Failure> {
        let stats = store.stats()?;
        let mut by_model: BTreeMap<String, ModelUsage> = BTreeMap::new();
        let llm = Query::new().type_prefix("llm_request_");
        for event in store.query_iter(&llm)? {
            let event = event?;
            let payload = &event.payload;
            let model = payload
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("(no model)")
                .to_owned();
            let usage = by_model.entry(model).or_default();
            let tokens = |key: &str| payload.get(key).and_then(Value::as_u64).unwrap_or(0);
            match event.event_type {
                EventType::LlmRequestStarted => usage.requests += 1,
                EventType::LlmRequestCompleted => {
                    usage.prompt += tokens("prompt_tokens");
                    usage.completion += tokens("completion_tokens");
                    usage.total += tokens("total_tokens");
                    usage.duration_ms += payload
                        .get("duration_ms")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                }
                EventType::LlmRequestFailed => {
                    usage.failed += 1;
                    usage.duration_ms += payload
                        .get("duration_ms")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                }
                _ => {}
            }
        }
        let mut chains = Vec::new();
        for (intent, title) in &run.intents {
            chains.push(check_chain(store, intent, title)?);
        }
        Ok(Report {
            events: stats.events,
            actors: stats.actors.len() as u64,
            by_type: stats
                .event_types
                .iter()
                .map(|(t, n)| (t.as_str().to_owned(), *n))
                .collect(),
            by_model,
            chains,
            trace_id: run.trace_id.clone(),
            failed_request: run.failed_request,
        })
    }

    fn text(&self, path: &Path, took_ms: i64) -> String {
        let file = shell_word(&path.display().to_string());
        let mut lines = vec![format!(
            "Wrote a simulated agent run to {}: {} events, {} intents, {} actors, in {}.",
            path.display(),
            count(self.events),
            self.chains.len(),
            self.actors,
            duration_ms(took_ms)
        )];
        for chain in &self.chains {
            lines.push(format!(
                "  intent {}  {:<52} {:>3} events",
                chain.intent,
                format!("\"{}\"", shorten(&chain.title, 50)),
                chain.events
            ));
        }
        lines.push(format!("  trace  {}  (across both intents)", self.trace_id));

        lines.push(String::new());
        lines.push("Events by type".to_owned());
        let width = self.by_type.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
        for (kind, n) in &self.by_type {
            lines.push(format!("  {kind:<width$}  {n:>3}"));
        }

        lines.push(String::new());
        lines.push(
            "LLM requests by model (tokens summed from the llm_request_* payloads)".to_owned(),
        );
        lines.push(format!(
            "  {:<16} {:>8} {:>7} {:>8} {:>11} {:>8} {:>9}",
            "model", "requests", "failed", "prompt", "completion", "total", "time"
        ));
        let mut all = ModelUsage::default();
        for (model, usage) in &self.by_model {
            lines.push(usage_line(model, usage));
            all.requests += usage.requests;
            all.failed += usage.failed;
            all.prompt += usage.prompt;
            all.completion += usage.completion;
            all.total += usage.total;
            all.duration_ms += usage.duration_ms;
        }
        lines.push(usage_line("all models", &all));

        lines.push(String::new());
        lines.push(
            "Hash chains (RFC-0019): every event_hash recomputed, every link and sequence checked"
                .to_owned(),
        );
        for chain in &self.chains {
            let verdict = if chain.problems.is_empty() {
                format!("sequence 1 to {}, intact", chain.events)
            } else {
                format!("BROKEN: {}", chain.problems.join("; "))
            };
            lines.push(format!(
                "  {:<52} {}",
                format!("\"{}\"", shorten(&chain.title, 50)),
                verdict
            ));
        }

        lines.push(String::new());
        lines.push("Try next:".to_owned());
        let first_intent = self.chains.first().map_or("", |c| c.intent.as_str());
        for (command, why) in [
            (format!("oidb stats {file}"), "what the file holds"),
            (
                format!("oidb events {file} --type 'llm_*'"),
                "the LLM requests",
            ),
            (
                format!("oidb events {file} --level WARN"),
                "what went wrong",
            ),
            (
                format!("oidb show {file} {}", self.failed_request),
                "the failed request in full",
            ),
            (
                format!("oidb events {file} --trace {} --jsonl", self.trace_id),
                "the trace, as OpenIntent JSONL",
            ),
            (
                format!("oidb events {file} --intent {first_intent} --reverse --limit 5"),
                "one intent, newest first",
            ),
            (
                format!("oidb tail {file} -n 5"),
                "the last events (-f follows new ones)",
            ),
            (
                format!("oidb export {file} --out demo.jsonl"),
                "everything, to import elsewhere",
            ),
        ] {
            lines.push(format!("  {command}\n      {why}"));
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    /// Exit 3 when a chain did not verify.
    fn verdict(&self) -> Outcome {
        let broken: Vec<&ChainCheck> = self
            .chains
            .iter()
            .filter(|c| !c.problems.is_empty())
            .collect();
        if broken.is_empty() {
            Ok(())
        } else {
            Err(Failure::Verification(format!(
                "{} of {} intents have a broken hash chain (see above)",
                broken.len(),
                self.chains.len()
            )))
        }
    }
}

fn usage_line(model: &str, usage: &ModelUsage) -> String {
    let tokens = |n: u64| if n == 0 { "-".to_owned() } else { count(n) };
    format!(
        "  {:<16} {:>8} {:>7} {:>8} {:>11} {:>8} {:>9}",
        model,
        usage.requests,
        usage.failed,
        tokens(usage.prompt),
        tokens(usage.completion),
        tokens(usage.total),
        duration_ms(usage.duration_ms)
    )
}

/// Reads one intent's events back and checks its RFC-0019 chain: sequences 1, 2, 3, …; each
/// `previous_event_hash` the hash of the event before; each `event_hash` what the content
/// hashes to.
fn check_chain(store: &Store, intent: &str, title: &str) -> Result<ChainCheck, Failure> {
    let mut check = ChainCheck {
        intent: intent.to_owned(),
        title: title.to_owned(),
        events: 0,
        problems: Vec::new(),
    };
    let mut previous: Option<String> = None;
    for event in store.query_iter(&Query::new().intent(intent))? {
        let event = event?;
        check.events += 1;
        if event.sequence != check.events {
            check.problems.push(format!(
                "event {} has sequence {}, expected {}",
                event.id, event.sequence, check.events
            ));
        }
        if event.previous_event_hash != previous {
            check.problems.push(format!(
                "event {} (sequence {}) does not link to the event before it",
                event.id, event.sequence
            ));
        }
        match compute_event_hash(&event) {
            Ok(hash) if hash == event.event_hash => {}
            Ok(hash) => check.problems.push(format!(
                "event {} (sequence {}) hashes to {hash}, not to its event_hash {}",
                event.id, event.sequence, event.event_hash
            )),
            Err(e) => check.problems.push(format!(
                "event {} (sequence {}) cannot be hashed: {e}",
                event.id, event.sequence
            )),
        }
        previous = Some(event.event_hash);
    }
    Ok(check)
}

/// `word` as one shell word: as it is when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+=:,@".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
