//! Reading the ledger: an intent's costs with OpenIntent's `CostSummary`, and summaries by type,
//! agent, model, provider and unit, for one intent or the whole store, over any time range.
//!
//! Uses `model::amount`, `model::cost`, `model::error`, `model::event`, `model::event_type`,
//! `model::filter`, `model::time`, `engine::format`, `engine::ledger`, `engine::reader`,
//! `store::reads`, `store::snapshot`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, TableDefinition};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{CostType, IntentCost, TimeBucket};
use crate::engine::format::{COST_ENTRIES, COST_TOTALS, COST_UNPRICED};
use crate::engine::ledger::{CostEntry, Dimension, Source, ALL_INTENTS};
use crate::engine::reader::{self, Records};
use crate::model::amount::Amount;
use crate::model::cost::COST_RECORDED;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event_type::EventType;
use crate::model::filter::Query;
use crate::model::time;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// Which costs a summary covers: one intent or all, over a time range (by the events'
/// `created_at`, `since` inclusive, `until` exclusive).
///
/// ```
/// use oidb::costs::CostQuery;
/// # let (monday, tuesday) = (chrono::Utc::now(), chrono::Utc::now());
/// let query = CostQuery::new().since(monday).until(tuesday);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CostQuery {
    /// The events that carry costs, narrowed as asked: run as it is to list the costs, and read
    /// for its intent and time range to sum them.
    events: Query,
}

impl Default for CostQuery {
    fn default() -> Self {
        CostQuery {
            events: Query::new().event_types([
                EventType::from(COST_RECORDED),
                EventType::LlmRequestCompleted,
            ]),
        }
    }
}

impl CostQuery {
    /// Every cost in the store.
    pub fn new() -> CostQuery {
        CostQuery::default()
    }

    /// Only this intent's costs.
    pub fn intent(mut self, intent_id: impl Into<String>) -> CostQuery {
        self.events = self.events.intent(intent_id);
        self
    }

    /// Only costs incurred at or after `t`.
    pub fn since(mut self, t: DateTime<Utc>) -> CostQuery {
        self.events = self.events.since(t);
        self
    }

    /// Only costs incurred before `t`.
    pub fn until(mut self, t: DateTime<Utc>) -> CostQuery {
        self.events = self.events.until(t);
        self
    }

    fn has_time_range(&self) -> bool {
        self.events.since.is_some() || self.events.until.is_some()
    }
}

/// Sums of costs: OpenIntent's `CostSummary{total, by_type, by_agent}`, and beyond it the same
/// per unit with models and providers, and the LLM usage that has no price.
///
/// `total`, `by_type` and `by_agent` add every amount whatever its unit, exactly as OpenIntent's
/// server does; when more than one unit is recorded (say `USD` and `tokens`), read `by_unit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct CostSummary {
    /// Every amount, added.
    pub total: Amount,
    /// Amounts by cost type.
    pub by_type: BTreeMap<String, Amount>,
    /// Amounts by agent.
    pub by_agent: BTreeMap<String, Amount>,
    /// How many costs were counted.
    pub count: u64,
    /// The same sums, one unit at a time, with models and providers.
    pub by_unit: BTreeMap<String, UnitSummary>,
    /// LLM requests with usage but no cost and no price for their model: never counted as zero.
    pub unpriced: Vec<Unpriced>,
}

impl CostSummary {
    /// The total in `unit` (zero if nothing was spent in it).
    #[must_use]
    pub fn total_in(&self, unit: &str) -> Amount {
        self.by_unit.get(unit).map_or(Amount::ZERO, |u| u.total)
    }
}

/// The costs in one unit.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct UnitSummary {
    /// Every amount in this unit, added.
    pub total: Amount,
    /// How many costs.
    pub count: u64,
    /// By cost type.
    pub by_type: BTreeMap<String, Amount>,
    /// By agent.
    pub by_agent: BTreeMap<String, Amount>,
    /// By model (costs that name one: LLM requests, and recorded costs with `metadata.model`).
    pub by_model: BTreeMap<String, Amount>,
    /// By provider (costs that name one).
    pub by_provider: BTreeMap<String, Amount>,
}

/// LLM usage that could not be priced: its model is not in the price table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Unpriced {
    /// The provider, if the requests named one.
    pub provider: Option<String>,
    /// The model, if the requests named one.
    pub model: Option<String>,
    /// How many requests.
    pub requests: u64,
    /// Their input (prompt) tokens.
    pub input_tokens: u64,
    /// Their output (completion) tokens.
    pub output_tokens: u64,
}

/// The costs of one time bucket, as [`Snapshot::cost_over_time`] sums them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostBucket {
    /// The bucket's start, `2026-11-20T09:00:00Z` for an hour.
    pub start: DateTime<Utc>,
    /// The priced costs whose events fall in it, summed by unit.
    pub by_unit: BTreeMap<String, Amount>,
    /// How many priced costs fall in it.
    pub count: u64,
    /// How many LLM requests in it no price covers: their cost is unknown, not zero.
    pub unpriced_requests: u64,
}

/// An intent's costs and their summary: OpenIntent's `GET /intents/{id}/costs` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct IntentCosts {
    /// Every cost, oldest first.
    pub costs: Vec<IntentCost>,
    /// Their sums.
    pub summary: CostSummary,
}

#[derive(Default)]
struct SummaryBuilder {
    by_unit: BTreeMap<String, UnitSummary>,
    unpriced: BTreeMap<(String, String), Unpriced>,
}

impl SummaryBuilder {
    fn add_row(&mut self, unit: &str, dimension: Dimension, key: &str, amount: Amount, count: u64) {
        let summary = self.by_unit.entry(unit.to_owned()).or_default();
        let map = match dimension {
            Dimension::Total => {
                summary.total += amount;
                summary.count += count;
                return;
            }
            Dimension::Type => &mut summary.by_type,
            Dimension::Agent => &mut summary.by_agent,
            Dimension::Model => &mut summary.by_model,
            Dimension::Provider => &mut summary.by_provider,
        };
        *map.entry(key.to_owned()).or_default() += amount;
    }

    fn add_unpriced(&mut self, provider: &str, model: &str, counts: (u64, u64, u64)) {
        let slot = self
            .unpriced
            .entry((provider.to_owned(), model.to_owned()))
            .or_insert_with(|| Unpriced {
                provider: Some(provider.to_owned()).filter(|p| !p.is_empty()),
                model: Some(model.to_owned()).filter(|m| !m.is_empty()),
                requests: 0,
                input_tokens: 0,
                output_tokens: 0,
            });
        slot.requests = slot.requests.saturating_add(counts.0);
        slot.input_tokens = slot.input_tokens.saturating_add(counts.1);
        slot.output_tokens = slot.output_tokens.saturating_add(counts.2);
    }

    fn add_entry(&mut self, entry: &CostEntry) {
        match entry.amount() {
            Some(amount) => {
                for (dimension, key) in entry.dimensions() {
                    self.add_row(&entry.unit, dimension, key, amount, 1);
                }
            }
            None => {
                let usage = entry.usage.unwrap_or_default();
                self.add_unpriced(
                    entry.provider.as_deref().unwrap_or(""),
                    entry.model.as_deref().unwrap_or(""),
                    (1, usage.prompt_tokens, usage.completion_tokens),
                );
            }
        }
    }

    fn finish(self) -> CostSummary {
        let mut summary = CostSummary {
            unpriced: self.unpriced.into_values().collect(),
            ..CostSummary::default()
        };
        for unit in self.by_unit.values() {
            summary.total += unit.total;
            summary.count += unit.count;
            for (from, into) in [
                (&unit.by_type, &mut summary.by_type),
                (&unit.by_agent, &mut summary.by_agent),
            ] {
                for (key, amount) in from {
                    *into.entry(key.clone()).or_default() += *amount;
                }
            }
        }
        summary.by_unit = self.by_unit;
        summary
    }
}

/// Opens a ledger table for reading; `None` in a store made before the ledger existed.
fn open_optional<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>> {
    match txn.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The summary of `scope` (an intent, or [`ALL_INTENTS`]) from the running totals: no scan.
fn summary_from_totals(txn: &ReadTransaction, scope: &str) -> Result<CostSummary> {
    let mut builder = SummaryBuilder::default();
    if let Some(totals) = open_optional(txn, COST_TOTALS)? {
        for row in totals.range((scope, "", 0u8, "")..)? {
            let (key, value) = row?;
            let (row_scope, unit, dimension, name) = key.value();
            if row_scope != scope {
                break;
            }
            let (picos, count) = value.value();
            if let Some(dimension) = Dimension::from_code(dimension) {
                builder.add_row(unit, dimension, name, Amount::from_picos(picos), count);
            }
        }
    }
    if let Some(unpriced) = open_optional(txn, COST_UNPRICED)? {
        for row in unpriced.range((scope, "", "")..)? {
            let (key, value) = row?;
            let (row_scope, provider, model) = key.value();
            if row_scope != scope {
                break;
            }
            builder.add_unpriced(provider, model, value.value());
        }
    }
    Ok(builder.finish())
}

/// The summary of the entries in a time range (optionally of one intent): a scan of the range.
fn summary_from_entries(txn: &ReadTransaction, query: &CostQuery) -> Result<CostSummary> {
    let mut builder = SummaryBuilder::default();
    each_entry(txn, query, |_, entry| builder.add_entry(entry))?;
    Ok(builder.finish())
}

/// Calls `f` with the time (µs) and entry of every ledger entry the query covers, oldest first:
/// a range of the ledger's time-ordered table, so a narrow range reads only what it covers.
fn each_entry(
    txn: &ReadTransaction,
    query: &CostQuery,
    mut f: impl FnMut(i64, &CostEntry),
) -> Result<()> {
    let Some(entries) = open_optional(txn, COST_ENTRIES)? else {
        return Ok(());
    };
    let low = query.events.since.map_or(i64::MIN, time::to_micros);
    let high = query.events.until.map_or(i64::MAX, time::to_micros);
    if low >= high {
        return Ok(());
    }
    for row in entries.range((low, 0)..(high, 0))? {
        let (key, bytes) = row?;
        let (micros, position) = key.value();
        let entry = CostEntry::decode(bytes.value(), position)?;
        if query
            .events
            .intent
            .as_ref()
            .is_none_or(|i| *i == entry.intent_id)
        {
            f(micros, &entry);
        }
    }
    Ok(())
}

/// The costs `query` covers, summed in time buckets, oldest first; buckets with no cost and no
/// LLM request are left out.
fn over_time(
    txn: &ReadTransaction,
    query: &CostQuery,
    bucket: TimeBucket,
) -> Result<Vec<CostBucket>> {
    let mut buckets: BTreeMap<DateTime<Utc>, CostBucket> = BTreeMap::new();
    each_entry(txn, query, |micros, entry| {
        let Some(at) = time::from_micros(micros) else {
            return;
        };
        let start = bucket.start(at);
        let slot = buckets.entry(start).or_insert_with(|| CostBucket {
            start,
            by_unit: BTreeMap::new(),
            count: 0,
            unpriced_requests: 0,
        });
        match entry.amount() {
            Some(amount) => {
                *slot.by_unit.entry(entry.unit.clone()).or_default() += amount;
                slot.count += 1;
            }
            None => slot.unpriced_requests += 1,
        }
    })?;
    Ok(buckets.into_values().collect())
}

/// The cost an `llm_request_completed` event's ledger entry holds, as an `IntentCost`.
fn llm_cost(event: &Event, entry: &CostEntry) -> Option<IntentCost> {
    let amount = entry.amount()?;
    let mut metadata = Map::new();
    if let Some(model) = &entry.model {
        metadata.insert("model".into(), Value::String(model.clone()));
    }
    if let Some(usage) = entry.usage {
        metadata.insert("prompt_tokens".into(), json!(usage.prompt_tokens));
        metadata.insert("completion_tokens".into(), json!(usage.completion_tokens));
        if usage.cached_tokens > 0 {
            metadata.insert("cached_tokens".into(), json!(usage.cached_tokens));
        }
        if usage.reasoning_tokens > 0 {
            metadata.insert("reasoning_tokens".into(), json!(usage.reasoning_tokens));
        }
    }
    if let Some(request_id) = event.payload.get("request_id") {
        metadata.insert("request_id".into(), request_id.clone());
    }
    metadata.insert("event_type".into(), event.event_type.as_str().into());
    match entry.source {
        Source::LlmReported => {
            metadata.insert("priced_by".into(), "reported".into());
        }
        _ => {
            metadata.insert("priced_by".into(), "price_table".into());
            metadata.insert("price_version".into(), json!(entry.price_version));
        }
    }
    Some(IntentCost {
        id: event.id,
        intent_id: event.intent_id.clone(),
        agent_id: entry.agent.clone(),
        cost_type: CostType::parse(&entry.cost_type).unwrap_or(CostType::Tokens),
        amount,
        unit: entry.unit.clone(),
        provider: entry.provider.clone(),
        metadata: Value::Object(metadata),
        recorded_at: event.created_at,
    })
}

/// Every cost the query covers, oldest first, read in `txn`.
fn records(txn: &ReadTransaction, query: &CostQuery) -> Result<Vec<IntentCost>> {
    let Some(entries) = open_optional(txn, COST_ENTRIES)? else {
        return Ok(Vec::new());
    };
    let mut costs = Vec::new();
    let mut page = Records::default();
    let mut after = None;
    loop {
        page.clear();
        let next = reader::select(txn, &query.events, after, 1024, None, &mut page)?;
        for event in &mut page {
            let event = event?;
            let key = (time::to_micros(event.created_at), event.position);
            let Some(bytes) = entries.get(key)? else {
                continue;
            };
            let entry = CostEntry::decode(bytes.value(), event.position)?;
            let cost = match entry.source {
                Source::Recorded => Some(IntentCost::from_recorded(&event)?),
                _ => llm_cost(&event, &entry),
            };
            costs.extend(cost);
        }
        match next {
            Some(cursor) => after = Some(cursor.0),
            None => return Ok(costs),
        }
    }
}

impl Snapshot {
    /// An intent's costs (recorded costs, and LLM requests that reported or were priced a cost)
    /// with their summary, read in one snapshot: OpenIntent's `get_costs`.
    ///
    /// # Errors
    /// A storage error, or a damaged ledger entry.
    pub fn costs(&self, intent_id: &str) -> Result<IntentCosts> {
        let txn = self.txn();
        Ok(IntentCosts {
            costs: records(txn, &CostQuery::new().intent(intent_id))?,
            summary: summary_from_totals(txn, intent_id)?,
        })
    }

    /// The summary of the costs a query covers. Without a time range it is read from the running
    /// totals (no scan, however many costs there are); with one, from the ledger entries in the
    /// range.
    ///
    /// ```
    /// use oidb::costs::{CostQuery, CostType, NewCost};
    /// # let store = oidb::Store::in_memory()?;
    /// store.record_cost("a", NewCost::new(CostType::ApiCall, 1.5, "USD").agent("agent-a"))?;
    /// store.record_cost("b", NewCost::new(CostType::Compute, 30.0, "seconds").agent("agent-b"))?;
    /// let all = store.cost_summary(&CostQuery::new())?;
    /// assert_eq!(all.total_in("USD").to_string(), "1.5");
    /// assert_eq!(all.by_unit["seconds"].by_agent["agent-b"].to_string(), "30");
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// A storage error, or a damaged ledger entry.
    pub fn cost_summary(&self, query: &CostQuery) -> Result<CostSummary> {
        let txn = self.txn();
        if query.has_time_range() {
            summary_from_entries(txn, query)
        } else {
            summary_from_totals(txn, query.events.intent.as_deref().unwrap_or(ALL_INTENTS))
        }
    }

    /// Every cost a query covers, oldest first.
    ///
    /// # Errors
    /// A storage error, or a damaged ledger entry.
    pub fn cost_records(&self, query: &CostQuery) -> Result<Vec<IntentCost>> {
        let txn = self.txn();
        records(txn, query)
    }

    /// The costs a query covers, summed by unit in time buckets (by the events' `created_at`),
    /// oldest first; a bucket with nothing in it is left out. Reads the ledger's entries in the
    /// query's time range, not the events.
    ///
    /// ```
    /// use oidb::costs::{CostQuery, CostType, NewCost, TimeBucket};
    /// # let store = oidb::Store::in_memory()?;
    /// store.record_cost("a", NewCost::new(CostType::ApiCall, 1.5, "USD"))?;
    /// store.record_cost("b", NewCost::new(CostType::ApiCall, 0.5, "USD"))?;
    /// let hours = store.cost_over_time(&CostQuery::new(), TimeBucket::Hour)?;
    /// let usd: f64 = hours.iter().map(|h| h.by_unit["USD"].as_f64()).sum();
    /// assert_eq!(usd, 2.0);
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// A storage error, or a damaged ledger entry.
    pub fn cost_over_time(&self, query: &CostQuery, bucket: TimeBucket) -> Result<Vec<CostBucket>> {
        let txn = self.txn();
        over_time(txn, query, bucket)
    }
}

read_on_handles! {
    /// An intent's costs (recorded costs, and LLM requests that reported or were priced a cost)
    /// with their summary, read in one snapshot.
    fn costs(&self, intent_id: &str) -> Result<IntentCosts>;
    /// The summary of the costs a query covers.
    fn cost_summary(&self, query: &CostQuery) -> Result<CostSummary>;
    /// Every cost a query covers, oldest first.
    fn cost_records(&self, query: &CostQuery) -> Result<Vec<IntentCost>>;
    /// The costs a query covers, summed by unit in time buckets, oldest first.
    fn cost_over_time(&self, query: &CostQuery, bucket: TimeBucket) -> Result<Vec<CostBucket>>;
}
