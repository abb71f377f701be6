//! The cost ledger: costs recorded as events, summed in the same transaction, and summaries that
//! equal sums computed independently from the events.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use oidb::costs::{CostQuery, CostSummary, CostType, NewCost, TimeBucket};
use oidb::{Error, EventType, NewEvent, Query, Store};
use proptest::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

fn base_time() -> DateTime<Utc> {
    oidb::time::parse("2026-11-20T09:00:00Z").unwrap()
}

#[test]
fn an_intents_costs_come_back_with_openintents_summary() {
    let store = Store::builder()
        .actor("agent-research")
        .open_backend(redb::backends::InMemoryBackend::new(), "mem")
        .unwrap();
    let first = store
        .record_cost(
            "intent-1",
            NewCost::new(CostType::Tokens, 1500.0, "tokens")
                .provider("openai")
                .metadata(
                    json!({"model": "gpt-4", "prompt_tokens": 1200, "completion_tokens": 300}),
                ),
        )
        .unwrap();
    store
        .record_cost(
            "intent-1",
            NewCost::new(CostType::ApiCall, 0.5, "USD").agent("agent-synth"),
        )
        .unwrap();
    store
        .record_cost("intent-2", NewCost::new(CostType::Compute, 12.0, "seconds"))
        .unwrap();

    let costs = store.costs("intent-1").unwrap();
    assert_eq!(costs.costs.len(), 2);
    assert_eq!(costs.costs[0], first);
    assert_eq!(first.agent_id, "agent-research");
    assert_eq!(first.metadata["model"], "gpt-4");

    // OpenIntent's wire form: {costs: [IntentCost.to_dict()], summary: {total, by_type, by_agent}}.
    let wire = serde_json::to_value(&costs).unwrap();
    assert_eq!(wire["costs"][0]["cost_type"], "tokens");
    assert_eq!(wire["costs"][0]["amount"], 1500);
    assert_eq!(wire["costs"][0]["intent_id"], "intent-1");
    assert_eq!(wire["costs"][1]["agent_id"], "agent-synth");
    assert_eq!(wire["summary"]["total"], 1500.5);
    assert_eq!(
        wire["summary"]["by_type"],
        json!({"api_call": 0.5, "tokens": 1500})
    );
    assert_eq!(
        wire["summary"]["by_agent"],
        json!({"agent-research": 1500, "agent-synth": 0.5})
    );
    // Beyond OpenIntent: per unit, with models and providers.
    let usd = &costs.summary.by_unit["USD"];
    assert_eq!((usd.total.to_string(), usd.count), ("0.5".to_owned(), 1));
    let tokens = &costs.summary.by_unit["tokens"];
    assert_eq!(tokens.by_model["gpt-4"].to_string(), "1500");
    assert_eq!(tokens.by_provider["openai"].to_string(), "1500");

    // The cost is an event in the intent's chain, by the agent that incurred it.
    let event = store.get(first.id).unwrap().unwrap();
    assert_eq!(event.event_type.as_str(), "cost_recorded");
    assert_eq!(event.actor, "agent-research");
    assert_eq!(event.sequence, 1);

    let everything = store.cost_summary(&CostQuery::new()).unwrap();
    assert_eq!(everything.count, 3);
    assert_eq!(everything.total_in("seconds").to_string(), "12");
}

#[test]
fn totals_are_in_the_file_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("costs.oidb");
    {
        let store = Store::open(&path).unwrap();
        for i in 0..5 {
            store
                .record_cost(
                    "intent-1",
                    NewCost::new(CostType::ApiCall, 0.1 * f64::from(i), "USD"),
                )
                .unwrap();
        }
    }
    let store = Store::open(&path).unwrap();
    let summary = store
        .cost_summary(&CostQuery::new().intent("intent-1"))
        .unwrap();
    assert_eq!(summary.total.to_string(), "1");
    assert_eq!(summary.count, 5);
}

#[test]
fn a_cost_recorded_twice_under_one_id_counts_once() {
    let store = Store::in_memory().unwrap();
    let id = Uuid::now_v7();
    let at = base_time();
    let cost = || {
        NewCost::new(CostType::ApiCall, 2.0, "USD")
            .id(id)
            .recorded_at(at)
    };
    store.record_cost("i", cost()).unwrap();
    store.record_cost("i", cost()).unwrap();
    let summary = store.cost_summary(&CostQuery::new()).unwrap();
    assert_eq!(
        (summary.total.to_string(), summary.count),
        ("2".to_owned(), 1)
    );
}

#[test]
fn a_bad_cost_is_refused_and_a_batch_with_one_writes_nothing() {
    let store = Store::in_memory().unwrap();
    for (cost, field) in [
        (
            NewCost::new(CostType::ApiCall, -1.0, "USD"),
            "payload.amount",
        ),
        (
            NewCost::new(CostType::ApiCall, f64::NAN, "USD"),
            "payload.amount",
        ),
        (NewCost::new(CostType::ApiCall, 1.0, ""), "payload.unit"),
    ] {
        match store.record_cost("i", cost) {
            Err(Error::InvalidEvent { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected {field} to be refused, got {other:?}"),
        }
    }
    // Written by hand, a cost_recorded event is checked the same way, and fails its batch.
    let good = NewEvent::new("i", "cost_recorded", "a")
        .payload(json!({"cost_type": "compute", "amount": 3, "unit": "seconds"}));
    let bad = NewEvent::new("i", "cost_recorded", "a")
        .payload(json!({"cost_type": "lunch", "amount": 3, "unit": "USD"}));
    let refused = store.append_batch([good.clone(), bad]);
    assert!(matches!(
        refused,
        Err(Error::InvalidEvent {
            field: "payload.cost_type",
            ..
        })
    ));
    assert_eq!(store.last_position().unwrap(), 0);
    assert_eq!(store.cost_summary(&CostQuery::new()).unwrap().count, 0);
    store.append(good).unwrap();
    assert_eq!(store.cost_summary(&CostQuery::new()).unwrap().count, 1);
}

#[test]
fn imported_costs_are_summed_like_appended_ones() {
    let source = Store::in_memory().unwrap();
    source
        .record_cost("i", NewCost::new(CostType::ApiCall, 0.25, "USD").agent("a"))
        .unwrap();
    source
        .log_event(
            "i",
            EventType::LlmRequestCompleted,
            json!({"request_id": "r", "provider": "openai", "model": "gpt-4o",
                   "prompt_tokens": 10, "completion_tokens": 2, "cost": 0.75}),
        )
        .unwrap();
    let mut jsonl = Vec::new();
    source.export_json(&mut jsonl, &Query::new()).unwrap();

    let target = Store::in_memory().unwrap();
    target.import_json(jsonl.as_slice()).unwrap();
    let summary = target.cost_summary(&CostQuery::new().intent("i")).unwrap();
    assert_eq!(summary.total_in("USD").to_string(), "1");
    assert_eq!(
        summary.by_unit["USD"].by_model["gpt-4o"].to_string(),
        "0.75"
    );
    assert_eq!(
        summary,
        source.cost_summary(&CostQuery::new().intent("i")).unwrap()
    );
}

#[test]
fn a_time_range_selects_by_when_the_cost_was_incurred() {
    let store = Store::in_memory().unwrap();
    for hour in 0..4 {
        store
            .record_cost(
                "i",
                NewCost::new(CostType::Compute, f64::from(hour + 1), "seconds")
                    .recorded_at(base_time() + TimeDelta::hours(hour.into())),
            )
            .unwrap();
    }
    let range = CostQuery::new()
        .since(base_time() + TimeDelta::hours(1))
        .until(base_time() + TimeDelta::hours(3));
    let summary = store.cost_summary(&range).unwrap();
    assert_eq!(
        (summary.total.to_string(), summary.count),
        ("5".to_owned(), 2)
    );
    let records = store.cost_records(&range).unwrap();
    let amounts: Vec<String> = records.iter().map(|c| c.amount.to_string()).collect();
    assert_eq!(amounts, ["2", "3"]);
}

#[test]
fn costs_over_time_are_summed_by_unit_in_each_bucket_and_add_up_to_the_summary() {
    let store = Store::in_memory().unwrap();
    // Hour h holds h + 1 costs of 0.25 USD; every other hour also 10 seconds of compute.
    for hour in 0..4u32 {
        let at = base_time() + TimeDelta::hours(hour.into()) + TimeDelta::minutes(7);
        for n in 0..=hour {
            let intent = if n % 2 == 0 { "even" } else { "odd" };
            store
                .record_cost(
                    intent,
                    NewCost::new(CostType::ApiCall, 0.25, "USD").recorded_at(at),
                )
                .unwrap();
        }
        if hour % 2 == 0 {
            store
                .record_cost(
                    "even",
                    NewCost::new(CostType::Compute, 10.0, "seconds").recorded_at(at),
                )
                .unwrap();
        }
    }
    let hours = store
        .cost_over_time(&CostQuery::new(), TimeBucket::Hour)
        .unwrap();
    let starts: Vec<String> = hours.iter().map(|b| oidb::time::format(b.start)).collect();
    assert_eq!(
        starts,
        [
            "2026-11-20T09:00:00.000000Z",
            "2026-11-20T10:00:00.000000Z",
            "2026-11-20T11:00:00.000000Z",
            "2026-11-20T12:00:00.000000Z"
        ]
    );
    let usd: Vec<String> = hours.iter().map(|b| b.by_unit["USD"].to_string()).collect();
    assert_eq!(usd, ["0.25", "0.5", "0.75", "1"]);
    let seconds: Vec<Option<String>> = hours
        .iter()
        .map(|b| b.by_unit.get("seconds").map(ToString::to_string))
        .collect();
    assert_eq!(
        seconds,
        [Some("10".to_owned()), None, Some("10".to_owned()), None]
    );
    assert_eq!(
        hours.iter().map(|b| b.count).collect::<Vec<_>>(),
        [2, 2, 4, 4]
    );

    let days = store
        .cost_over_time(&CostQuery::new(), TimeBucket::Day)
        .unwrap();
    let summary = store.cost_summary(&CostQuery::new()).unwrap();
    assert_eq!(days.len(), 1);
    for (unit, s) in &summary.by_unit {
        assert_eq!(days[0].by_unit[unit], s.total, "{unit}");
    }

    // Narrowed by intent and time range as a summary is.
    let odd_later = CostQuery::new()
        .intent("odd")
        .since(base_time() + TimeDelta::hours(2));
    let odd = store
        .cost_over_time(&odd_later, TimeBucket::Minute)
        .unwrap();
    let odd: Vec<(String, String)> = odd
        .iter()
        .map(|b| (oidb::time::format(b.start), b.by_unit["USD"].to_string()))
        .collect();
    assert_eq!(
        odd,
        [
            ("2026-11-20T11:07:00.000000Z".to_owned(), "0.25".to_owned()),
            ("2026-11-20T12:07:00.000000Z".to_owned(), "0.5".to_owned())
        ]
    );
    assert!(Store::in_memory()
        .unwrap()
        .cost_over_time(&CostQuery::new(), TimeBucket::Hour)
        .unwrap()
        .is_empty());
}

// ---- summaries equal sums computed independently from the events ----

#[derive(Debug, Clone)]
struct CostSpec {
    intent: usize,
    agent: usize,
    /// `None`: an LLM request reporting its own cost in USD.
    recorded: Option<(usize, usize)>,
    micros: u64,
    provider: Option<usize>,
    model: Option<usize>,
    minute: i64,
}

const INTENTS: [&str; 3] = ["intent-a", "intent-b", "intent-c"];
const AGENTS: [&str; 3] = ["agent-1", "agent-2", "agent-3"];
const UNITS: [&str; 3] = ["USD", "tokens", "seconds"];
const PROVIDERS: [&str; 2] = ["openai", "anthropic"];
const MODELS: [&str; 3] = ["gpt-4o", "claude", "o3"];

fn cost_spec() -> impl Strategy<Value = CostSpec> {
    (
        0..INTENTS.len(),
        0..AGENTS.len(),
        prop::option::weighted(0.7, (0..CostType::ALL.len(), 0..UNITS.len())),
        0u64..5_000_000_000,
        prop::option::of(0..PROVIDERS.len()),
        prop::option::of(0..MODELS.len()),
        0i64..180,
    )
        .prop_map(
            |(intent, agent, recorded, micros, provider, model, minute)| CostSpec {
                intent,
                agent,
                recorded,
                micros,
                provider,
                model,
                minute,
            },
        )
}

#[allow(clippy::cast_precision_loss)]
fn as_units(micros: u64) -> f64 {
    micros as f64 / 1e6
}

fn new_cost(spec: &CostSpec, cost_type: usize, unit: usize) -> NewCost {
    let mut cost = NewCost::new(CostType::ALL[cost_type], as_units(spec.micros), UNITS[unit])
        .agent(AGENTS[spec.agent])
        .recorded_at(base_time() + TimeDelta::minutes(spec.minute));
    if let Some(p) = spec.provider {
        cost = cost.provider(PROVIDERS[p]);
    }
    if let Some(m) = spec.model {
        cost = cost.metadata(json!({"model": MODELS[m]}));
    }
    cost
}

/// The event of a spec, written by hand as OpenIntent payloads.
fn to_event(spec: &CostSpec) -> NewEvent {
    let at = base_time() + TimeDelta::minutes(spec.minute);
    let intent = INTENTS[spec.intent];
    let agent = AGENTS[spec.agent];
    let mut payload = match spec.recorded {
        Some((cost_type, unit)) => json!({
            "agent_id": agent, "cost_type": CostType::ALL[cost_type].as_str(),
            "amount": as_units(spec.micros), "unit": UNITS[unit]}),
        None => json!({"request_id": Uuid::new_v4().to_string(),
                       "prompt_tokens": 100, "completion_tokens": 10,
                       "cost": as_units(spec.micros)}),
    };
    let event_type = match spec.recorded {
        Some(_) => {
            if let Some(m) = spec.model {
                payload["metadata"] = json!({"model": MODELS[m]});
            }
            EventType::from("cost_recorded")
        }
        None => {
            if let Some(m) = spec.model {
                payload["model"] = json!(MODELS[m]);
            }
            EventType::LlmRequestCompleted
        }
    };
    if let Some(p) = spec.provider {
        payload["provider"] = json!(PROVIDERS[p]);
    }
    NewEvent::new(intent, event_type, agent)
        .payload(payload)
        .created_at(at)
}

/// Appends the specs in batches of the given sizes; a recorded cost alone in its batch goes
/// through `record_cost`.
fn append_all(store: &Store, specs: &[CostSpec], batch_sizes: &[usize]) {
    let mut rest = specs;
    for size in batch_sizes {
        if rest.is_empty() {
            break;
        }
        let (batch, tail) = rest.split_at((*size).min(rest.len()));
        match batch {
            [spec @ CostSpec {
                recorded: Some((cost_type, unit)),
                ..
            }] => {
                store
                    .record_cost(INTENTS[spec.intent], new_cost(spec, *cost_type, *unit))
                    .unwrap();
            }
            _ => {
                store.append_batch(batch.iter().map(to_event)).unwrap();
            }
        }
        rest = tail;
    }
    assert!(rest.is_empty());
}

/// Sums in micro-units, keyed by (unit, dimension, key), computed from stored events only.
#[derive(Debug, Default, PartialEq)]
struct Sums {
    rows: BTreeMap<(String, &'static str, String), i128>,
    counts: BTreeMap<String, u64>,
}

fn micros_of(value: &Value) -> i128 {
    #[allow(clippy::cast_possible_truncation)]
    let micros = (value.as_f64().unwrap() * 1e6).round() as i128;
    micros
}

fn independent_sums(
    store: &Store,
    intent: Option<&str>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Sums {
    let mut sums = Sums::default();
    for event in store.query_iter(&Query::new()).unwrap() {
        let event = event.unwrap();
        if intent.is_some_and(|i| i != event.intent_id) {
            continue;
        }
        if let Some((since, until)) = range {
            if event.created_at < since || event.created_at >= until {
                continue;
            }
        }
        let p = &event.payload;
        let (unit, cost_type, agent, amount, provider, model) = match event.event_type.as_str() {
            "cost_recorded" => (
                p["unit"].as_str().unwrap().to_owned(),
                p["cost_type"].as_str().unwrap().to_owned(),
                p["agent_id"].as_str().unwrap().to_owned(),
                micros_of(&p["amount"]),
                p.get("provider").and_then(Value::as_str),
                p.get("metadata")
                    .and_then(|m| m.get("model"))
                    .and_then(Value::as_str),
            ),
            "llm_request_completed" => (
                "USD".to_owned(),
                "tokens".to_owned(),
                event.actor.clone(),
                micros_of(&p["cost"]),
                p.get("provider").and_then(Value::as_str),
                p.get("model").and_then(Value::as_str),
            ),
            _ => continue,
        };
        *sums.counts.entry(unit.clone()).or_default() += 1;
        let mut add = |dimension: &'static str, key: &str| {
            *sums
                .rows
                .entry((unit.clone(), dimension, key.to_owned()))
                .or_default() += amount;
        };
        add("total", "");
        add("type", &cost_type);
        add("agent", &agent);
        if let Some(provider) = provider {
            add("provider", provider);
        }
        if let Some(model) = model {
            add("model", model);
        }
    }
    sums
}

fn sums_of(summary: &CostSummary) -> Sums {
    let micros = |a: oidb::costs::Amount| {
        assert_eq!(a.picos() % 1_000_000, 0, "{a} has more than 6 decimals");
        a.picos() / 1_000_000
    };
    let mut sums = Sums::default();
    for (unit, u) in &summary.by_unit {
        sums.counts.insert(unit.clone(), u.count);
        sums.rows
            .insert((unit.clone(), "total", String::new()), micros(u.total));
        for (dimension, map) in [
            ("type", &u.by_type),
            ("agent", &u.by_agent),
            ("provider", &u.by_provider),
            ("model", &u.by_model),
        ] {
            for (key, amount) in map {
                sums.rows
                    .insert((unit.clone(), dimension, key.clone()), micros(*amount));
            }
        }
    }
    sums
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn summaries_equal_sums_computed_from_the_events(
        specs in prop::collection::vec(cost_spec(), 0..40),
        batch_sizes in prop::collection::vec(1usize..5, 40),
        range_start in 0i64..180,
        range_length in 1i64..180,
    ) {
        let store = Store::in_memory().unwrap();
        append_all(&store, &specs, &batch_sizes);

        // The whole store, from the running totals.
        let all = store.cost_summary(&CostQuery::new()).unwrap();
        prop_assert_eq!(sums_of(&all), independent_sums(&store, None, None));
        // OpenIntent's unit-blind total is the sum of the per-unit totals.
        let blind: i128 = all.by_unit.values().map(|u| u.total.picos()).sum();
        prop_assert_eq!(all.total.picos(), blind);
        prop_assert_eq!(all.count as usize, specs.len());

        // Each intent, from the running totals and from costs().
        for intent in INTENTS {
            let summary = store.cost_summary(&CostQuery::new().intent(intent)).unwrap();
            prop_assert_eq!(sums_of(&summary), independent_sums(&store, Some(intent), None));
            let costs = store.costs(intent).unwrap();
            prop_assert_eq!(&costs.summary, &summary);
            let listed: i128 = costs.costs.iter().map(|c| c.amount.picos()).sum();
            prop_assert_eq!(listed, summary.total.picos());
        }

        // A time range, from the ledger entries; over everything it agrees with the totals.
        let since = base_time() + TimeDelta::minutes(range_start);
        let until = since + TimeDelta::minutes(range_length);
        let ranged = store.cost_summary(&CostQuery::new().since(since).until(until)).unwrap();
        prop_assert_eq!(sums_of(&ranged), independent_sums(&store, None, Some((since, until))));
        let forever = CostQuery::new()
            .since(base_time() - TimeDelta::days(1))
            .until(base_time() + TimeDelta::days(1));
        prop_assert_eq!(store.cost_summary(&forever).unwrap(), all);
    }
}
