//! Budgets: a cost that would pass an intent's `max_cost` is refused, a `governance.violation`
//! event is written, the refused cost is not counted, and an alert threshold writes one
//! `budget_alert` when crossed.

use std::sync::{Arc, Barrier};

use oidb::costs::{Budget, CostQuery, CostType, ModelPrice, NewCost, PriceTable};
use oidb::{Error, Event, EventFilter, EventType, NewEvent, Query, Store};
use serde_json::json;

fn usd(amount: f64) -> NewCost {
    NewCost::new(CostType::ApiCall, amount, "USD")
}

fn events_of_type(store: &Store, intent: &str, event_type: EventType) -> Vec<Event> {
    store
        .get_events(
            intent,
            EventFilter::new().event_type(event_type).limit(10_000),
        )
        .unwrap()
}

#[test]
fn a_cost_over_budget_is_refused_recorded_as_a_violation_and_not_counted() {
    let store = Store::in_memory().unwrap();
    let policy = store.set_budget("i", &Budget::new(1.0)).unwrap();
    assert_eq!(policy.event_type, EventType::GovernancePolicySet);
    assert_eq!(policy.payload["rule"], "max_cost");
    store.record_cost("i", usd(0.6).agent("agent-a")).unwrap();

    let refused_id = uuid::Uuid::now_v7();
    let error = store
        .record_cost("i", usd(0.5).agent("agent-a").id(refused_id))
        .unwrap_err();
    match &error {
        Error::BudgetExceeded {
            intent_id,
            event_id,
            unit,
            max_cost,
            spent,
            attempted,
        } => {
            assert_eq!(intent_id, "i");
            assert_eq!(*event_id, refused_id);
            assert_eq!(unit, "USD");
            assert_eq!(
                (
                    max_cost.to_string(),
                    spent.to_string(),
                    attempted.to_string()
                ),
                ("1".into(), "0.6".into(), "0.5".into())
            );
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("from 0.6 to 1.1 USD, over its max_cost budget of 1 USD"),
        "{message}"
    );

    // The refused cost is not in the log and not in the totals.
    assert_eq!(store.get(refused_id).unwrap(), None);
    let status = store.budget("i").unwrap().unwrap();
    assert_eq!(status.spent.to_string(), "0.6");
    assert_eq!(status.remaining.to_string(), "0.4");
    assert_eq!(store.costs("i").unwrap().costs.len(), 1);

    // The refusal is: one governance.violation event, right after the last accepted event.
    let violations = events_of_type(&store, "i", EventType::GovernanceViolation);
    assert_eq!(violations.len(), 1);
    let violation = &violations[0];
    assert_eq!(violation.sequence, 3);
    assert_eq!(violation.payload["rule"], "max_cost");
    assert_eq!(
        violation.payload["refused_event_id"],
        refused_id.to_string()
    );
    assert_eq!(violation.payload["refused_event_type"], "cost_recorded");
    assert_eq!(violation.payload["agent_id"], "agent-a");
    assert_eq!(violation.payload["max_cost"], 1);
    assert_eq!(violation.payload["spent"], 0.6);
    assert_eq!(violation.payload["attempted"], 0.5);
    assert_eq!(violation.payload["unit"], "USD");

    // Exactly at the limit is allowed; past it, even by a millionth, is not.
    store.record_cost("i", usd(0.4)).unwrap();
    assert!(matches!(
        store.record_cost("i", usd(0.000_001)),
        Err(Error::BudgetExceeded { .. })
    ));
    // A cost of zero never passes a budget.
    store.record_cost("i", usd(0.0)).unwrap();
    assert_eq!(store.budget("i").unwrap().unwrap().spent.to_string(), "1");
    assert_eq!(
        events_of_type(&store, "i", EventType::GovernanceViolation).len(),
        2
    );
}

#[test]
fn a_batch_that_would_pass_the_budget_is_refused_whole() {
    let store = Store::in_memory().unwrap();
    store.set_budget("i", &Budget::new(1.0)).unwrap();
    store.record_cost("i", usd(0.25)).unwrap();
    let cost = |amount: f64| {
        NewEvent::new("i", "cost_recorded", "agent-a")
            .payload(json!({"cost_type": "api_call", "amount": amount, "unit": "USD"}))
    };
    let comment = NewEvent::new("i", EventType::Comment, "agent-a");
    let error = store
        .append_batch([cost(0.25), comment, cost(0.625)])
        .unwrap_err();
    match error {
        Error::BudgetExceeded {
            spent, attempted, ..
        } => {
            // What was stored, and what the batch asked for in all.
            assert_eq!(
                (spent.to_string(), attempted.to_string()),
                ("0.25".into(), "0.875".into())
            );
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    assert!(events_of_type(&store, "i", EventType::Comment).is_empty());
    assert_eq!(
        store.budget("i").unwrap().unwrap().spent.to_string(),
        "0.25"
    );
    let violations = events_of_type(&store, "i", EventType::GovernanceViolation);
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].payload["attempted"], 0.875);
    // The same batch minus what does not fit goes through.
    store
        .append_batch([
            cost(0.25),
            NewEvent::new("i", EventType::Comment, "agent-a"),
        ])
        .unwrap();
    assert_eq!(store.budget("i").unwrap().unwrap().spent.to_string(), "0.5");
}

#[test]
fn an_alert_is_written_once_when_the_threshold_is_crossed() {
    let store = Store::in_memory().unwrap();
    store
        .set_budget("i", &Budget::new(10.0).alert_at_percent(80.0))
        .unwrap();
    store.record_cost("i", usd(5.0)).unwrap();
    store.record_cost("i", usd(2.0)).unwrap();
    assert!(events_of_type(&store, "i", EventType::BudgetAlert).is_empty());
    let crossing = store.record_cost("i", usd(1.5)).unwrap();
    store.record_cost("i", usd(1.0)).unwrap();

    let alerts = events_of_type(&store, "i", EventType::BudgetAlert);
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    let cause = store.get(crossing.id).unwrap().unwrap();
    assert_eq!(
        alert.position,
        cause.position + 1,
        "written with the crossing cost"
    );
    assert_eq!(
        alert.parent_event_id.as_deref(),
        Some(crossing.id.to_string().as_str())
    );
    assert_eq!(alert.payload["rule"], "max_cost");
    assert_eq!(alert.payload["spent"], 8.5);
    assert_eq!(alert.payload["max_cost"], 10);
    assert_eq!(alert.payload["alert_threshold_percent"], 80.0);
    assert_eq!(alert.payload["cost_event_id"], crossing.id.to_string());
    assert!(store.budget("i").unwrap().unwrap().alerted);

    // Setting the budget again re-arms the alert.
    store
        .set_budget("i", &Budget::new(20.0).alert_at_percent(50.0))
        .unwrap();
    assert!(!store.budget("i").unwrap().unwrap().alerted);
    store.record_cost("i", usd(0.25)).unwrap(); // 9.75 < 10
    assert_eq!(events_of_type(&store, "i", EventType::BudgetAlert).len(), 1);
    store.record_cost("i", usd(0.25)).unwrap(); // 10 ≥ 10
    assert_eq!(events_of_type(&store, "i", EventType::BudgetAlert).len(), 2);
}

#[test]
fn racing_threads_cannot_both_pass_the_budget() {
    const THREADS: usize = 8;
    const ATTEMPTS: usize = 10;
    let store = Store::in_memory().unwrap();
    store
        .set_budget("i", &Budget::new(10.0).alert_at_percent(50.0))
        .unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut accepted = 0;
                let mut refused = 0;
                for _ in 0..ATTEMPTS {
                    match store.record_cost("i", usd(0.5).agent(format!("agent-{t}"))) {
                        Ok(_) => accepted += 1,
                        Err(Error::BudgetExceeded { .. }) => refused += 1,
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let (accepted, refused) = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .fold((0, 0), |(a, r), (a2, r2)| (a + a2, r + r2));
    assert_eq!(accepted, 20, "exactly max_cost / cost costs fit");
    assert_eq!(refused, THREADS * ATTEMPTS - 20);

    let status = store.budget("i").unwrap().unwrap();
    assert_eq!(status.spent.to_string(), "10");
    // The log agrees with the ledger: the sum of the cost events, and one violation per refusal.
    let logged: f64 = store
        .query_iter(&Query::new().intent("i").event_type("cost_recorded"))
        .unwrap()
        .map(|e| e.unwrap().payload["amount"].as_f64().unwrap())
        .sum();
    assert!((logged - 10.0).abs() < 1e-9);
    assert_eq!(
        events_of_type(&store, "i", EventType::GovernanceViolation).len(),
        refused
    );
    // However the appends raced, the threshold was crossed once, and alerted once.
    let alerts = events_of_type(&store, "i", EventType::BudgetAlert);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].payload["spent"], 5);
}

#[test]
fn only_costs_in_the_budgets_unit_count_against_it() {
    let store = Store::in_memory().unwrap();
    store
        .set_budget("i", &Budget::new(1000.0).unit("tokens"))
        .unwrap();
    store.record_cost("i", usd(500.0)).unwrap();
    store
        .record_cost("i", NewCost::new(CostType::Tokens, 900.0, "tokens"))
        .unwrap();
    assert!(matches!(
        store.record_cost("i", NewCost::new(CostType::Tokens, 101.0, "tokens")),
        Err(Error::BudgetExceeded { .. })
    ));
    assert_eq!(store.budget("i").unwrap().unwrap().spent.to_string(), "900");
    // Another intent has no budget.
    store
        .record_cost("j", NewCost::new(CostType::Tokens, 5000.0, "tokens"))
        .unwrap();
}

#[test]
fn a_removed_budget_no_longer_refuses() {
    let store = Store::in_memory().unwrap();
    store.set_budget("i", &Budget::new(1.0)).unwrap();
    assert!(store.record_cost("i", usd(2.0)).is_err());
    let removal = store.remove_budget("i").unwrap();
    assert_eq!(removal.event_type, EventType::GovernancePolicyRemoved);
    assert_eq!(store.budget("i").unwrap(), None);
    store.record_cost("i", usd(2.0)).unwrap();
    // A budget set under the spend refuses every further positive cost.
    store.set_budget("i", &Budget::new(1.0)).unwrap();
    let status = store.budget("i").unwrap().unwrap();
    assert_eq!(status.remaining.to_string(), "-1");
    assert!(store.record_cost("i", usd(0.01)).is_err());
}

#[test]
fn a_priced_llm_request_over_budget_is_refused_with_its_model_in_the_violation() {
    let store = Store::in_memory().unwrap();
    store
        .set_prices(&PriceTable::new("USD").with(ModelPrice::new("openai", "gpt-4o", 2.5, 10.0)))
        .unwrap();
    store.set_budget("i", &Budget::new(0.01)).unwrap();
    let request = |prompt: u64| {
        NewEvent::new("i", EventType::LlmRequestCompleted, "agent-a").payload(json!({
            "request_id": "r", "provider": "openai", "model": "gpt-4o",
            "prompt_tokens": prompt, "completion_tokens": 0}))
    };
    store.append(request(2000)).unwrap(); // 0.005
    let refused = store.append(request(4000)); // 0.01 more
    assert!(matches!(refused, Err(Error::BudgetExceeded { .. })));
    let violation = &events_of_type(&store, "i", EventType::GovernanceViolation)[0];
    assert_eq!(
        violation.payload["refused_event_type"],
        "llm_request_completed"
    );
    assert_eq!(violation.payload["model"], "gpt-4o");
    assert_eq!(violation.payload["provider"], "openai");
    assert_eq!(violation.payload["attempted"], 0.01);
    // An unpriced model has no cost, so no budget refuses it.
    store
        .append(
            NewEvent::new("i", EventType::LlmRequestCompleted, "agent-a").payload(json!({
                "request_id": "r2", "provider": "x", "model": "unknown",
                "prompt_tokens": 1_000_000, "completion_tokens": 0})),
        )
        .unwrap();
    let summary = store.cost_summary(&CostQuery::new().intent("i")).unwrap();
    assert_eq!(summary.total_in("USD").to_string(), "0.005");
    assert_eq!(summary.unpriced[0].requests, 1);
}

#[test]
fn a_bad_budget_is_refused_before_anything_is_written() {
    let store = Store::in_memory().unwrap();
    for (budget, field) in [
        (Budget::new(-1.0), "payload.max_cost"),
        (Budget::new(f64::INFINITY), "payload.max_cost"),
        (Budget::new(1.0).unit(""), "payload.unit"),
        (
            Budget::new(1.0).alert_at_percent(0.0),
            "payload.alert_threshold_percent",
        ),
        (
            Budget::new(1.0).alert_at_percent(101.0),
            "payload.alert_threshold_percent",
        ),
    ] {
        match store.set_budget("i", &budget) {
            Err(Error::InvalidEvent { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected {field} to be refused, got {other:?}"),
        }
    }
    // Written by hand, a malformed max_cost policy is refused the same way.
    let by_hand = NewEvent::new("i", EventType::GovernancePolicySet, "admin")
        .payload(json!({"rule": "max_cost", "max_cost": "ten"}));
    assert!(matches!(
        store.append(by_hand),
        Err(Error::InvalidEvent {
            field: "payload.max_cost",
            ..
        })
    ));
    // Policies with other rules are not budgets.
    store
        .append(
            NewEvent::new("i", EventType::GovernancePolicySet, "admin")
                .payload(json!({"rule": "require_approval"})),
        )
        .unwrap();
    assert_eq!(store.budget("i").unwrap(), None);
    assert_eq!(store.last_position().unwrap(), 1);
}

#[test]
fn an_import_replays_budgets_and_reaches_the_same_state() {
    let source = Store::in_memory().unwrap();
    source
        .set_budget("i", &Budget::new(1.0).alert_at_percent(50.0))
        .unwrap();
    source.record_cost("i", usd(0.75)).unwrap();
    assert!(source.record_cost("i", usd(0.5)).is_err());
    source.record_cost("i", usd(0.25)).unwrap();
    let mut jsonl = Vec::new();
    source.export_json(&mut jsonl, &Query::new()).unwrap();

    let target = Store::in_memory().unwrap();
    let report = target.import_json(jsonl.as_slice()).unwrap();
    assert_eq!(report.appended, source.last_position().unwrap());
    assert_eq!(target.budget("i").unwrap(), source.budget("i").unwrap());
    // The alert and violation came with the import; replaying wrote no second alert.
    assert_eq!(
        events_of_type(&target, "i", EventType::BudgetAlert).len(),
        1
    );
    assert_eq!(
        target.last_position().unwrap(),
        source.last_position().unwrap()
    );
}
