//! The simulated agent run, written through the library as an agent would write it: the
//! observe handles time each LLM request and tool call, the stream recorder logs streamed
//! answers, the cost ledger prices usage from the file's price table, a budget watches the
//! spend, GL thinking and code blocks are logged as they come, and one RFC-0020 trace ties it
//! all together. The model and the tools are canned; the waits stand in for their latency.

use std::time::Duration;

use oidb::costs::{Budget, CostType, ModelPrice, NewCost, PriceTable};
use oidb::observe::{GlEvent, RequestedToolCall};
use oidb::{Event, EventType, Level, NewEvent, Store, TraceContext, Usage};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::failure::Failure;

/// What the summary needs to know about the run.
pub struct Run {
    /// The intents, with their titles.
    pub intents: Vec<(String, String)>,
    /// The trace the run is in.
    pub trace_id: String,
    /// The request that failed.
    pub failed_request: Uuid,
}

/// The research intent's budget, in USD, and when it alerts.
pub const BUDGET_USD: f64 = 0.05;
const ALERT_PERCENT: f64 = 80.0;

/// The models the file has prices for (USD per million tokens in, out). The writer's local
/// model has none: its usage shows as unpriced.
fn prices() -> PriceTable {
    PriceTable::new("USD")
        .with(ModelPrice::new("openai", "gpt-4o", 2.5, 10.0))
        .with(ModelPrice::new("openai", "gpt-4o-mini", 0.15, 0.6))
        .with(ModelPrice::new("anthropic", "claude-sonnet-4", 3.0, 15.0))
        .with(ModelPrice::new("deepseek", "deepseek-chat", 0.27, 1.1))
}

fn wait(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// The OpenAI-shaped usage of a canned response.
fn openai_usage(prompt: u64, completion: u64) -> Usage {
    Usage::from_response(&json!({"usage": {
        "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }}))
    .unwrap_or_default()
}

/// One agent's place in the run: its intent and its name.
#[derive(Clone, Copy)]
struct Agent<'a> {
    intent: &'a str,
    name: &'a str,
}

/// The run's writer: the store, and the trace it writes in.
struct Script<'a> {
    store: &'a Store,
    trace: TraceContext,
}

impl Script<'_> {
    /// Appends an event in the trace, caused by `parent` when given.
    fn log(
        &self,
        who: Agent<'_>,
        kind: EventType,
        payload: Value,
        parent: Option<&Event>,
    ) -> Result<Event, Failure> {
        let context = parent.map_or_else(|| self.trace.clone(), |p| self.trace.child(p.id));
        Ok(self.store.append(
            NewEvent::new(who.intent, kind, who.name)
                .payload(payload)
                .in_trace(&context),
        )?)
    }

    /// A GL block as the model emits it: start, one event per piece, end; caused by `parent`.
    fn gl_block(
        &self,
        who: Agent<'_>,
        [start, piece, end]: [EventType; 3],
        id: Option<&str>,
        pieces: &[&str],
        parent: &Event,
    ) -> Result<(), Failure> {
        let context = self.trace.child(parent.id);
        let gl = |kind: EventType, value: &str| -> Result<(), Failure> {
            let mut event = GlEvent::new(kind, json!(value));
            event.id = id.map(str::to_owned);
            self.store
                .append(event.to_new_event(who.intent, who.name).in_trace(&context))?;
            Ok(())
        };
        gl(start, "")?;
        for text in pieces {
            wait(40);
            gl(piece.clone(), text)?;
        }
        gl(end, "")
    }

    /// A plain LLM request that completes: logs its start, waits `ms`, logs its outcome.
    #[allow(clippy::too_many_arguments)]
    fn llm(
        &self,
        who: Agent<'_>,
        (provider, model): (&str, &str),
        messages: u64,
        (prompt, completion): (u64, u64),
        answer: (&str, &str, Vec<Value>),
        ms: u64,
        parent: &Event,
    ) -> Result<Event, Failure> {
        let mut call = self
            .store
            .llm_request(who.intent, provider, model)
            .actor(who.name)
            .messages_count(messages)
            .temperature(0.2)
            .trace_id(self.trace.trace_id())
            .parent_event_id(parent.id.to_string())
            .start()?;
        wait(ms);
        let (content, finish, tool_calls) = answer;
        call.response_content(content)
            .finish_reason(finish)
            .tool_calls(tool_calls)
            .usage(&openai_usage(prompt, completion));
        Ok(call.complete()?)
    }

    /// A tool call that completes after `ms`, asked for by the request `asked_by` logged.
    fn tool(
        &self,
        who: Agent<'_>,
        call: &RequestedToolCall,
        (provider, model): (&str, &str),
        asked_by: &Event,
        (result, ms): (Value, u64),
    ) -> Result<Event, Failure> {
        let request_id = asked_by
            .payload
            .get("request_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let handle = self
            .store
            .tool_call(who.intent, call.tool_name.clone(), call.arguments.clone())
            .actor(who.name)
            .tool_id(call.tool_id.clone())
            .provider(provider)
            .model(model)
            .parent_request_id(request_id)
            .parent_event_id(asked_by.id.to_string())
            .trace_id(self.trace.trace_id())
            .start()?;
        wait(ms);
        Ok(handle.complete(result)?)
    }

    /// A streamed answer through the stream recorder; returns its `llm_request_completed`.
    #[allow(clippy::too_many_arguments)]
    fn streamed(
        &self,
        who: Agent<'_>,
        (provider, model): (&str, &str),
        messages: u64,
        text: &str,
        usage: &Usage,
        finish: &str,
        parent: &Event,
    ) -> Result<Event, Failure> {
        let trace_id = self.trace.trace_id().to_owned();
        let parent_id = parent.id.to_string();
        let mut stream = self
            .store
            .stream_recorder(who.intent, provider, model)
            .request(|r| {
                r.actor(who.name)
                    .messages_count(messages)
                    .trace_id(trace_id)
                    .parent_event_id(parent_id)
            })
            .chunk_log_interval(8)
            .start()?;
        wait(120);
        for word in text.split_inclusive(' ') {
            wait(15);
            stream.chunk(word)?;
        }
        stream.usage(usage).finish_reason(finish);
        let report = stream.complete()?;
        report
            .events
            .into_iter()
            .find(|e| e.event_type == EventType::LlmRequestCompleted)
            .ok_or_else(|| Failure::Error("the stream recorder logged no completion".into()))
    }
}

const THINKING: [EventType; 3] = [
    EventType::ThinkingStart,
    EventType::Thinking,
    EventType::ThinkingEnd,
];
const CODE: [EventType; 3] = [EventType::CodeStart, EventType::Code, EventType::CodeEnd];

/// Writes the run: prices and a budget, a research intent (plan, search, a failed request
/// retried as a stream, a page read, a decision) and a sub-intent that drafts the
/// recommendation.
/// The title of the intent a run's first event creates: what tells an earlier run's file apart.
pub const RESEARCH_TITLE: &str = "Compare embedded vector databases for agent memory";

/// The actor of a run's first event.
pub const FIRST_ACTOR: &str = "alice";

pub fn write(store: &Store) -> Result<Run, Failure> {
    store.set_prices(&prices())?;
    let research_id = Uuid::now_v7().to_string();
    let writing_id = Uuid::now_v7().to_string();
    let s = Script {
        store,
        trace: TraceContext::new_root(),
    };
    let research = RESEARCH_TITLE;
    let drafting = "Draft the recommendation";
    let alice = Agent {
        intent: &research_id,
        name: "alice",
    };
    let agent = Agent {
        intent: &research_id,
        name: "agent-research",
    };

    let created = s.log(
        alice,
        EventType::IntentCreated,
        json!({"title": research, "description": "Shortlist three embedded options and recommend one"}),
        None,
    )?;
    store.set_budget(
        &research_id,
        &Budget::new(BUDGET_USD).alert_at_percent(ALERT_PERCENT),
    )?;
    let assigned = s.log(
        alice,
        EventType::AgentAssigned,
        json!({"agent_id": "agent-research", "role": "worker"}),
        Some(&created),
    )?;
    s.gl_block(
        agent,
        THINKING,
        Some("think-0"),
        &[
            "The user wants embedded options only. ",
            "Search first, then read the best benchmark page.",
        ],
        &assigned,
    )?;

    let searched = plan_and_search(&s, agent, &assigned)?;
    let failed = fail(&s, agent, &searched)?;
    let read = stream_and_read(&s, agent, &failed)?;
    let decision = decide(&s, agent, &read)?;
    draft(&s, &writing_id, &research_id, drafting, &decision)?;

    Ok(Run {
        intents: vec![
            (research_id, research.to_owned()),
            (writing_id, drafting.to_owned()),
        ],
        trace_id: s.trace.trace_id().to_owned(),
        failed_request: failed.id,
    })
}

/// gpt-4o plans and asks for a web search; the search runs, and its API call is a cost.
fn plan_and_search(s: &Script<'_>, agent: Agent<'_>, after: &Event) -> Result<Event, Failure> {
    let search = RequestedToolCall::new(
        "call_search_1",
        "web_search",
        json!({"query": "embedded vector database benchmark 2026"}),
    );
    let asked = vec![json!({"id": "call_search_1", "type": "function",
        "function": {"name": "web_search", "arguments": search.arguments.to_string()}})];
    let plan = s.llm(
        agent,
        ("openai", "gpt-4o"),
        2,
        (1_840, 96),
        ("", "tool_calls", asked),
        230,
        after,
    )?;
    let searched = s.tool(
        agent,
        &search,
        ("openai", "gpt-4o"),
        &plan,
        (
            json!({"hits": 8, "top": ["sqlite-vec", "LanceDB", "Chroma"]}),
            120,
        ),
    )?;
    s.store.record_cost(
        agent.intent,
        NewCost::new(CostType::ApiCall, 0.005, "USD")
            .agent(agent.name)
            .provider("serpapi")
            .metadata(json!({"tool_name": "web_search", "tool_id": "call_search_1"}))
            .in_trace(&s.trace.child(searched.id)),
    )?;
    Ok(searched)
}

/// deepseek-chat is rate-limited: the request fails, and the agent says it will retry.
fn fail(s: &Script<'_>, agent: Agent<'_>, after: &Event) -> Result<Event, Failure> {
    let call = s
        .store
        .llm_request(agent.intent, "deepseek", "deepseek-chat")
        .messages_count(4)
        .stream(true)
        .trace_id(s.trace.trace_id())
        .parent_event_id(after.id.to_string())
        .start()?;
    wait(90);
    let failed = call.fail("RateLimitError: 429 Too Many Requests")?;
    s.store.append(
        NewEvent::new(agent.intent, EventType::Comment, agent.name)
            .payload(
                json!({"message": "deepseek-chat is rate-limited; retrying with claude-sonnet-4"}),
            )
            .level(Level::Warn)
            .in_trace(&s.trace.child(failed.id)),
    )?;
    Ok(failed)
}

/// claude-sonnet-4 answers as a stream and asks to read a page, which is read.
fn stream_and_read(s: &Script<'_>, agent: Agent<'_>, after: &Event) -> Result<Event, Failure> {
    // Anthropic reports usage as input and output tokens.
    let usage =
        Usage::from_response(&json!({"usage": {"input_tokens": 3_120, "output_tokens": 412}}))
            .unwrap_or_default();
    let answer = s.streamed(
        agent,
        ("anthropic", "claude-sonnet-4"),
        4,
        "sqlite-vec, LanceDB and Chroma all run in process; LanceDB publishes the most \
         complete benchmark, so I will read its documentation page next before deciding.",
        &usage,
        "tool_calls",
        after,
    )?;
    let read = RequestedToolCall::new(
        "call_read_1",
        "read_page",
        json!({"url": "https://lancedb.com/docs"}),
    );
    let page = s.tool(
        agent,
        &read,
        ("anthropic", "claude-sonnet-4"),
        &answer,
        (
            json!({"chars": 18_233, "title": "LanceDB documentation"}),
            90,
        ),
    )?;
    s.log(
        agent,
        EventType::StatePatched,
        json!({"patches": [{"op": "set", "path": "progress", "value": 0.5}], "version": 2}),
        Some(&page),
    )?;
    Ok(page)
}

/// The agent thinks, decides with gpt-4o (which takes the spend past the budget's alert), and
/// hands over.
fn decide(s: &Script<'_>, agent: Agent<'_>, after: &Event) -> Result<Event, Failure> {
    s.gl_block(
        agent,
        THINKING,
        Some("think-1"),
        &[
            "All three are embedded. ",
            "sqlite-vec is one file like ours; LanceDB scales further.",
        ],
        after,
    )?;
    let decision = s.llm(
        agent,
        ("openai", "gpt-4o"),
        6,
        (5_210, 388),
        (
            "Shortlist: sqlite-vec (one file), LanceDB (columnar, scales), Chroma (simplest API).",
            "stop",
            Vec::new(),
        ),
        260,
        after,
    )?;
    s.log(
        agent,
        EventType::Comment,
        json!({"message": "Shortlist ready; agent-writer drafts the recommendation"}),
        Some(&decision),
    )?;
    Ok(decision)
}

/// A sub-intent in the same trace: agent-writer sorts the notes with a local model (which has
/// no price), drafts with gpt-4o-mini (streamed), and writes a little code.
fn draft(
    s: &Script<'_>,
    writing_id: &str,
    research_id: &str,
    title: &str,
    decision: &Event,
) -> Result<(), Failure> {
    let planner = Agent {
        intent: writing_id,
        name: "agent-research",
    };
    let writer = Agent {
        intent: writing_id,
        name: "agent-writer",
    };
    let created = s.log(
        planner,
        EventType::IntentCreated,
        json!({"title": title, "parent_intent_id": research_id}),
        Some(decision),
    )?;
    let assigned = s.log(
        planner,
        EventType::AgentAssigned,
        json!({"agent_id": "agent-writer", "role": "worker"}),
        Some(&created),
    )?;
    let sorted = s.llm(
        writer,
        ("ollama", "llama3.1:8b"),
        2,
        (480, 120),
        ("notes sorted: 3 options, 2 criteria", "stop", Vec::new()),
        80,
        &assigned,
    )?;
    let usage = openai_usage(2_400, 610);
    let draft = s.streamed(
        writer,
        ("openai", "gpt-4o-mini"),
        3,
        "Recommend sqlite-vec for a single-file agent; move to LanceDB past ten million vectors.",
        &usage,
        "stop",
        &sorted,
    )?;
    s.gl_block(
        writer,
        CODE,
        None,
        &[
            "scores = {\"sqlite-vec\": 8.5, \"lancedb\": 8.0, \"chroma\": 7.0}\n",
            "print(max(scores, key=scores.get))\n",
        ],
        &draft,
    )?;
    s.log(
        writer,
        EventType::Comment,
        json!({"message": "Recommendation: sqlite-vec now, LanceDB past ten million vectors"}),
        Some(&draft),
    )?;
    Ok(())
}
