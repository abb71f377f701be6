//! Prices: LLM requests priced from the user's table, unpriced models reported (never zero),
//! recomputation after a price change, and the table's versions in the file.

use oidb::costs::{CostQuery, CostType, ModelPrice, NewCost, PriceTable, Unpriced};
use oidb::{EventType, Store};
use serde_json::{json, Value};

fn completed(store: &Store, intent: &str, provider: &str, model: &str, usage: Value) {
    let mut payload = json!({"request_id": uuid::Uuid::new_v4().to_string(),
                             "provider": provider, "model": model, "duration_ms": 100});
    for (key, value) in usage.as_object().unwrap() {
        payload[key] = value.clone();
    }
    store
        .log_event(intent, EventType::LlmRequestCompleted, payload)
        .unwrap();
}

fn tokens(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion,
           "total_tokens": prompt + completion})
}

fn gpt4o_at(input: f64, output: f64) -> PriceTable {
    PriceTable::new("USD").with(ModelPrice::new("openai", "gpt-4o", input, output))
}

#[test]
fn requests_with_usage_and_no_cost_are_priced_from_the_table() {
    let store = Store::in_memory().unwrap();
    store
        .set_prices(
            &gpt4o_at(2.5, 10.0).with(
                ModelPrice::new("openai", "o3", 2.0, 8.0)
                    .cached_input(0.5)
                    .reasoning(8.0),
            ),
        )
        .unwrap();
    // 6917 × 2.5 + 300 × 10 = 20292.5 per million
    completed(&store, "i", "openai", "gpt-4o", tokens(6917, 300));
    // (3000 - 1000) × 2 + 1000 × 0.5 + 2000 × 8 = 20500 per million
    completed(
        &store,
        "i",
        "openai",
        "o3",
        json!({"prompt_tokens": 3000, "completion_tokens": 2000,
               "cached_tokens": 1000, "reasoning_tokens": 1500}),
    );
    // A request that reports its cost keeps it, price table or not.
    completed(
        &store,
        "i",
        "openai",
        "gpt-4o",
        json!({"prompt_tokens": 1_000_000, "completion_tokens": 0, "cost": 0.01}),
    );

    let summary = store.cost_summary(&CostQuery::new().intent("i")).unwrap();
    let usd = &summary.by_unit["USD"];
    assert_eq!(usd.by_model["gpt-4o"].to_string(), "0.0302925");
    assert_eq!(usd.by_model["o3"].to_string(), "0.0205");
    assert_eq!(usd.total.to_string(), "0.0507925");
    assert_eq!(usd.count, 3);
    assert!(summary.unpriced.is_empty());

    let costs = store.costs("i").unwrap().costs;
    assert_eq!(costs.len(), 3);
    assert_eq!(costs[0].metadata["priced_by"], "price_table");
    assert_eq!(costs[0].metadata["price_version"], 1);
    assert_eq!(costs[0].metadata["prompt_tokens"], 6917);
    assert_eq!(costs[0].cost_type, CostType::Tokens);
    assert_eq!(costs[2].metadata["priced_by"], "reported");
}

#[test]
fn a_model_without_a_price_is_unpriced_never_zero() {
    let store = Store::in_memory().unwrap();
    // No table at all yet.
    completed(&store, "i", "deepseek", "deepseek-chat", tokens(7614, 732));
    store.set_prices(&gpt4o_at(2.5, 10.0)).unwrap();
    completed(&store, "i", "deepseek", "deepseek-chat", tokens(8968, 863));
    completed(&store, "i", "openai", "gpt-4o", tokens(1000, 100));
    // Same model from another provider is another price.
    completed(&store, "i", "azure", "gpt-4o", tokens(10, 1));

    let summary = store.cost_summary(&CostQuery::new()).unwrap();
    assert_eq!(summary.count, 1, "only the priced request is a cost");
    assert_eq!(summary.total_in("USD").to_string(), "0.0035");
    let unpriced: Vec<_> = summary
        .unpriced
        .iter()
        .map(|u: &Unpriced| {
            (
                u.provider.clone(),
                u.model.clone(),
                u.requests,
                u.input_tokens,
                u.output_tokens,
            )
        })
        .collect();
    assert_eq!(
        unpriced,
        vec![
            (Some("azure".into()), Some("gpt-4o".into()), 1, 10, 1),
            (
                Some("deepseek".into()),
                Some("deepseek-chat".into()),
                2,
                7614 + 8968,
                732 + 863
            ),
        ]
    );
    // Unpriced requests are not listed as costs of zero.
    assert!(store
        .costs("i")
        .unwrap()
        .costs
        .iter()
        .all(|c| c.metadata["model"] == "gpt-4o"));
    // The same view over a time range, read from the entries.
    let ranged = store
        .cost_summary(
            &CostQuery::new()
                .since(oidb::time::parse("2000-01-01T00:00:00Z").unwrap())
                .until(oidb::time::parse("2100-01-01T00:00:00Z").unwrap()),
        )
        .unwrap();
    assert_eq!(ranged, summary);
}

#[test]
fn recompute_after_a_price_change_moves_the_totals() {
    let store = Store::in_memory().unwrap();
    assert_eq!(store.set_prices(&gpt4o_at(2.0, 10.0)).unwrap(), 1);
    completed(&store, "a", "openai", "gpt-4o", tokens(1_000_000, 100_000)); // 2 + 1
    completed(&store, "b", "openai", "gpt-4o", tokens(500_000, 0)); // 1
    completed(
        &store,
        "b",
        "deepseek",
        "deepseek-chat",
        tokens(1_000_000, 0),
    ); // unpriced
    completed(
        &store,
        "b",
        "openai",
        "gpt-4o",
        json!({"prompt_tokens": 1_000_000, "completion_tokens": 0, "cost": 9.0}),
    );
    store
        .record_cost("b", NewCost::new(CostType::ApiCall, 0.5, "USD"))
        .unwrap();
    let before = store.cost_summary(&CostQuery::new()).unwrap();
    assert_eq!(before.total_in("USD").to_string(), "13.5");

    // A new price: nothing stored changes until recomputed.
    let new_table =
        gpt4o_at(4.0, 20.0).with(ModelPrice::new("deepseek", "deepseek-chat", 0.25, 1.0));
    assert_eq!(store.set_prices(&new_table).unwrap(), 2);
    assert_eq!(store.cost_summary(&CostQuery::new()).unwrap(), before);

    let report = store.recompute_costs().unwrap();
    assert_eq!(report.price_version, Some(2));
    assert_eq!(
        report.examined, 3,
        "the reported and the recorded cost are not repriced"
    );
    assert_eq!(report.repriced, 3);
    assert_eq!(report.newly_priced, 1);
    assert_eq!(report.newly_unpriced, 0);

    let after = store.cost_summary(&CostQuery::new()).unwrap();
    // (4 + 2) + 2 + 0.25 + 9 (reported) + 0.5 (recorded)
    assert_eq!(after.total_in("USD").to_string(), "17.75");
    assert!(after.unpriced.is_empty());
    let b = store.cost_summary(&CostQuery::new().intent("b")).unwrap();
    assert_eq!(b.total_in("USD").to_string(), "11.75");
    assert_eq!(
        b.by_unit["USD"].by_model["deepseek-chat"].to_string(),
        "0.25"
    );
    assert_eq!(
        store.costs("a").unwrap().costs[0].metadata["price_version"],
        2
    );

    // A model dropped from the table becomes unpriced again, not free.
    store.set_prices(&gpt4o_at(4.0, 20.0)).unwrap();
    let report = store.recompute_costs().unwrap();
    assert_eq!((report.newly_unpriced, report.repriced), (1, 1));
    let b = store.cost_summary(&CostQuery::new().intent("b")).unwrap();
    assert_eq!(b.total_in("USD").to_string(), "11.5");
    assert_eq!(b.unpriced.len(), 1);
    assert_eq!(b.unpriced[0].requests, 1);
    // Recomputing again changes nothing.
    let again = store.recompute_costs().unwrap();
    assert_eq!(
        (again.repriced, again.newly_priced, again.newly_unpriced),
        (0, 0, 0)
    );
    assert_eq!(
        store.cost_summary(&CostQuery::new().intent("b")).unwrap(),
        b
    );
}

#[test]
fn every_version_of_the_table_is_kept_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.oidb");
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.prices().unwrap(), None);
        store.set_prices(&gpt4o_at(2.5, 10.0)).unwrap();
        store.set_prices(&gpt4o_at(2.0, 8.0)).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let history = store.price_history().unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(history[0].table, gpt4o_at(2.5, 10.0));
    assert_eq!(store.prices().unwrap().unwrap().table, gpt4o_at(2.0, 8.0));
    assert!(history[0].set_at <= history[1].set_at);
}

#[test]
fn a_price_file_is_read_and_checked() {
    let text = r#"{"currency": "EUR", "models": [
        {"provider": "mistral", "model": "large", "input_per_million": 2, "output_per_million": 6}
    ]}"#;
    let table = PriceTable::from_json(text.as_bytes()).unwrap();
    let store = Store::in_memory().unwrap();
    store.set_prices(&table).unwrap();
    completed(
        &store,
        "i",
        "mistral",
        "large",
        tokens(1_000_000, 1_000_000),
    );
    let summary = store.cost_summary(&CostQuery::new()).unwrap();
    assert_eq!(summary.total_in("EUR").to_string(), "8");

    let misspelled = r#"{"models": [{"provider": "a", "model": "b", "input": 1, "output": 2}]}"#;
    let error = PriceTable::from_json(misspelled.as_bytes()).unwrap_err();
    assert!(matches!(error, oidb::Error::InvalidPrices { .. }));
    assert!(
        error.to_string().contains("unknown field `input`"),
        "{error}"
    );

    let negative = PriceTable::new("USD").with(ModelPrice::new("a", "b", -1.0, 0.0));
    let error = store.set_prices(&negative).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("models[0] (a/b): input_per_million is -1"),
        "{error}"
    );
    assert_eq!(store.price_history().unwrap().len(), 1);
}
