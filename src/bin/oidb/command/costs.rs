//! `oidb costs FILE`: what was spent, grouped by model, agent, intent or cost type.
//!
//! Every number comes from the library: amounts from the cost ledger (`Store::cost_summary`,
//! which sums recorded costs and priced LLM requests in exact decimals), requests and tokens from
//! the usage analytics (`Store::usage_report`). LLM usage whose model has no price is said to be
//! unpriced, never shown as a cost of zero.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;

use oidb::costs::{
    Amount, CostQuery, CostSummary, GroupBy, LlmUsage, PriceVersion, ToolUsage, UsageQuery,
    UsageReport,
};
use oidb::Snapshot;
use serde_json::{json, Value};

use crate::args::{CostGrouping, CostsArgs};
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::table::{count, printable, shorten_middle, time};

/// One row: a model, agent, intent or cost type, with its usage and what it cost in each unit.
#[derive(Debug, Default)]
struct Row {
    llm: Option<LlmUsage>,
    tools: Option<ToolUsage>,
    cost: BTreeMap<String, Amount>,
    /// Some of its LLM usage has no price.
    unpriced: bool,
}

/// What `costs` read from the file.
struct Costs {
    summary: CostSummary,
    usage: Option<UsageReport>,
    rows: BTreeMap<String, Row>,
    prices: Option<PriceVersion>,
}

pub fn run(args: &CostsArgs) -> Outcome {
    let store = open::for_reading(&args.file)?.snapshot()?;
    let costs = read(&store, args)?;
    drop(store);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &as_json(args, &costs))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", printable(&as_text(args, &costs)))?;
    }
    out.flush()?;
    Ok(())
}

fn cost_query(args: &CostsArgs) -> CostQuery {
    let mut query = CostQuery::new();
    if let Some(intent) = &args.intent {
        query = query.intent(intent.clone());
    }
    if let Some(t) = args.since {
        query = query.since(t);
    }
    if let Some(t) = args.until {
        query = query.until(t);
    }
    query
}

fn usage_query(args: &CostsArgs, group_by: GroupBy) -> UsageQuery {
    let mut query = UsageQuery::new().group_by(group_by);
    if let Some(intent) = &args.intent {
        query = query.intent(intent.clone());
    }
    if let Some(t) = args.since {
        query = query.since(t);
    }
    if let Some(t) = args.until {
        query = query.until(t);
    }
    query
}

fn read(store: &Snapshot, args: &CostsArgs) -> Result<Costs, Failure> {
    let summary = store.cost_summary(&cost_query(args))?;
    let group_by = match args.by {
        CostGrouping::Model => Some(GroupBy::Model),
        CostGrouping::Agent => Some(GroupBy::Agent),
        CostGrouping::Intent => Some(GroupBy::Intent),
        CostGrouping::Type => None,
    };
    let usage = group_by
        .map(|g| store.usage_report(&usage_query(args, g)))
        .transpose()?;
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    if let Some(usage) = &usage {
        for group in &usage.groups {
            let row = rows.entry(group.key.clone()).or_default();
            row.llm = (group.llm.requests > 0).then(|| group.llm.clone());
            row.tools = (group.tools.calls > 0).then(|| group.tools.clone());
        }
    }
    match args.by {
        CostGrouping::Intent => intent_costs(store, args, &summary, &mut rows)?,
        by => {
            for (unit, sums) in &summary.by_unit {
                let split = match by {
                    CostGrouping::Model => &sums.by_model,
                    CostGrouping::Agent => &sums.by_agent,
                    _ => &sums.by_type,
                };
                for (key, amount) in split {
                    rows.entry(key.clone())
                        .or_default()
                        .cost
                        .insert(unit.clone(), *amount);
                }
                // Costs that name no model (a tool's API call, compute): what the split leaves.
                let named: Amount = split.values().copied().sum();
                if named != sums.total {
                    rows.entry(format!("(no {})", by_name(by)))
                        .or_default()
                        .cost
                        .insert(unit.clone(), sums.total - named);
                }
            }
        }
    }
    if args.by == CostGrouping::Model {
        for unpriced in &summary.unpriced {
            let model = unpriced.model.clone().unwrap_or_else(|| "unknown".into());
            rows.entry(model).or_default().unpriced = true;
        }
    }
    Ok(Costs {
        summary,
        usage,
        rows,
        prices: store.prices()?,
    })
}

/// Each intent's costs, from the ledger's summary of that intent.
fn intent_costs(
    store: &Snapshot,
    args: &CostsArgs,
    summary: &CostSummary,
    rows: &mut BTreeMap<String, Row>,
) -> Result<(), Failure> {
    let mut intents: BTreeSet<String> = rows.keys().cloned().collect();
    if summary.count > 0 {
        intents.extend(
            store
                .cost_records(&cost_query(args))?
                .into_iter()
                .map(|c| c.intent_id),
        );
    }
    for intent in intents {
        let of_intent = store.cost_summary(&cost_query(args).intent(intent.clone()))?;
        let row = rows.entry(intent).or_default();
        for (unit, sums) in of_intent.by_unit {
            row.cost.insert(unit, sums.total);
        }
        row.unpriced = !of_intent.unpriced.is_empty();
    }
    Ok(())
}

fn scope(args: &CostsArgs) -> String {
    let mut parts = vec![match &args.intent {
        Some(intent) => format!("intent {intent}"),
        None => "all intents".to_owned(),
    }];
    match (args.since, args.until) {
        (None, None) => parts.push("all time".to_owned()),
        (Some(since), None) => parts.push(format!("since {} UTC", time(since))),
        (None, Some(until)) => parts.push(format!("before {} UTC", time(until))),
        (Some(since), Some(until)) => {
            parts.push(format!("from {} to {} UTC", time(since), time(until)));
        }
    }
    parts.join(", ")
}

fn by_name(by: CostGrouping) -> &'static str {
    match by {
        CostGrouping::Model => "model",
        CostGrouping::Agent => "agent",
        CostGrouping::Intent => "intent",
        CostGrouping::Type => "type",
    }
}

fn as_text(args: &CostsArgs, costs: &Costs) -> String {
    let summary = &costs.summary;
    let units: Vec<&String> = summary.by_unit.keys().collect();
    let total = summary
        .by_unit
        .iter()
        .map(|(unit, s)| format!("{} {unit}", s.total))
        .collect::<Vec<_>>()
        .join(" + ");
    let counted = match summary.count {
        0 => "no costs recorded or priced".to_owned(),
        1 => format!("{total}, from 1 cost"),
        n => format!("{total}, from {} costs", count(n)),
    };
    let mut lines = vec![format!(
        "Costs in {} ({}): {counted}",
        args.file.display(),
        scope(args),
    )];
    lines.push(match &costs.prices {
        Some(p) => format!(
            "Prices: version {} ({}, {} models), set {} UTC",
            p.version,
            p.table.currency,
            p.table.models.len(),
            time(p.set_at)
        ),
        None => "Prices: none in the file, so LLM requests cost only what they reported".to_owned(),
    });
    lines.push(String::new());
    if costs.rows.is_empty() {
        lines.push(match args.by {
            CostGrouping::Type => "(no costs)".to_owned(),
            _ => "(no costs, no LLM requests, no tool calls)".to_owned(),
        });
    } else {
        lines.extend(row_lines(args.by, costs, &units));
    }
    if !summary.unpriced.is_empty() {
        lines.push(String::new());
        lines.push(
            "Unpriced: no price covers these models, so what they cost is unknown (not zero)"
                .to_owned(),
        );
        let name = |u: &oidb::costs::Unpriced| match (&u.provider, &u.model) {
            (Some(p), Some(m)) => format!("{p}/{m}"),
            (None, Some(m)) => m.clone(),
            (Some(p), None) => format!("{p}/(no model)"),
            (None, None) => "(no model)".to_owned(),
        };
        let width = summary
            .unpriced
            .iter()
            .map(|u| name(u).chars().count())
            .max()
            .unwrap_or(0);
        for u in &summary.unpriced {
            lines.push(format!(
                "  {:<width$}  {:>5} {}  {} input + {} output tokens",
                name(u),
                u.requests,
                if u.requests == 1 {
                    "request "
                } else {
                    "requests"
                },
                count(u.input_tokens),
                count(u.output_tokens)
            ));
        }
        lines.push(
            "  A price table in the file prices them: Store::set_prices, then Store::recompute_costs."
                .to_owned(),
        );
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The table of rows, with a total line.
fn row_lines(by: CostGrouping, costs: &Costs, units: &[&String]) -> Vec<String> {
    let with_usage = costs.usage.is_some();
    let key_width = costs
        .rows
        .keys()
        .map(|k| key_text(by, k).chars().count())
        .chain([by_name(by).len(), 5])
        .max()
        .unwrap_or(5);
    let cost_width = |unit: &str| {
        costs
            .rows
            .values()
            .map(|r| cost_text(r, unit).len())
            .chain([unit.len() + 5, 10])
            .max()
            .unwrap_or(10)
    };
    let widths: Vec<usize> = units.iter().map(|u| cost_width(u)).collect();
    let mut header = format!("  {:<key_width$}", by_name(by).to_uppercase());
    if with_usage {
        let _ = write!(
            header,
            "  {:>8} {:>6} {:>10} {:>10} {:>6}",
            "REQUESTS", "FAILED", "INPUT", "OUTPUT", "TOOLS"
        );
    }
    for (unit, width) in units.iter().zip(&widths) {
        let _ = write!(header, "  {:>width$}", format!("COST ({unit})"));
    }
    let mut lines = vec![header];
    let number = |n: u64| if n == 0 { "-".to_owned() } else { count(n) };
    for (key, row) in &costs.rows {
        let mut line = format!("  {:<key_width$}", key_text(by, key));
        if with_usage {
            let llm = row.llm.clone().unwrap_or_default();
            let _ = write!(
                line,
                "  {:>8} {:>6} {:>10} {:>10} {:>6}",
                number(llm.requests),
                number(llm.failed),
                number(llm.input_tokens),
                number(llm.output_tokens),
                number(row.tools.as_ref().map_or(0, |t| t.calls)),
            );
        }
        for (unit, width) in units.iter().zip(&widths) {
            let _ = write!(line, "  {:>width$}", cost_text(row, unit));
        }
        if units.is_empty() && row.unpriced {
            line.push_str("  unpriced");
        }
        lines.push(line.trim_end().to_owned());
    }
    let mut total = format!("  {:<key_width$}", "total");
    if with_usage {
        let all: Vec<&LlmUsage> = costs.rows.values().filter_map(|r| r.llm.as_ref()).collect();
        let sum = |f: fn(&LlmUsage) -> u64| all.iter().map(|u| f(u)).sum::<u64>();
        let calls: u64 = costs
            .rows
            .values()
            .filter_map(|r| r.tools.as_ref())
            .map(|t| t.calls)
            .sum();
        let _ = write!(
            total,
            "  {:>8} {:>6} {:>10} {:>10} {:>6}",
            number(sum(|u| u.requests)),
            number(sum(|u| u.failed)),
            number(sum(|u| u.input_tokens)),
            number(sum(|u| u.output_tokens)),
            number(calls),
        );
    }
    for (unit, width) in units.iter().zip(&widths) {
        let amount = costs.summary.total_in(unit);
        let mut text = amount.to_string();
        if !costs.summary.unpriced.is_empty() {
            text.push_str(" + unpriced");
        }
        let _ = write!(total, "  {text:>width$}");
    }
    lines.push(total.trim_end().to_owned());
    lines
}

/// A row's key as shown: intent ids shortened like the events table does.
fn key_text(by: CostGrouping, key: &str) -> String {
    match by {
        CostGrouping::Intent => shorten_middle(key, 36),
        _ => key.to_owned(),
    }
}

/// A row's cost in `unit`: the amount, `unpriced`, both, or `-` for nothing.
fn cost_text(row: &Row, unit: &str) -> String {
    match (row.cost.get(unit), row.unpriced) {
        (Some(amount), false) => amount.to_string(),
        (Some(amount), true) => format!("{amount} + unpriced"),
        (None, true) => "unpriced".to_owned(),
        (None, false) => "-".to_owned(),
    }
}

fn as_json(args: &CostsArgs, costs: &Costs) -> Value {
    let groups: Vec<Value> = costs
        .rows
        .iter()
        .map(|(key, row)| {
            json!({
                "key": key,
                "llm": row.llm,
                "tools": row.tools,
                "cost": row.cost,
                "unpriced": row.unpriced,
            })
        })
        .collect();
    json!({
        "file": args.file.display().to_string(),
        "by": by_name(args.by),
        "intent": args.intent,
        "since": args.since.map(oidb::time::format),
        "until": args.until.map(oidb::time::format),
        "prices": costs.prices.as_ref().map(|p| json!({
            "version": p.version,
            "currency": p.table.currency,
            "models": p.table.models.len(),
        })),
        "groups": groups,
        "summary": costs.summary,
    })
}
