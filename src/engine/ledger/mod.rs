//! The cost ledger: one entry per cost-bearing event and running totals, written in the append's
//! own transaction (so they never drift from the log), and the budget decision made there too
//! (so two appends cannot both pass a budget).
//!
//! The writer calls [`LedgerPlan::add`] for every new event while it plans a request, and
//! [`LedgerPlan::apply`] when it writes the plan. Three kinds of event carry a cost:
//!
//! - `cost_recorded` (from [`Store::record_cost`](crate::Store::record_cost)): checked strictly;
//!   a malformed one is refused.
//! - `llm_request_completed`: its `cost` (USD) when it reports one; else, when it reports usage,
//!   its price from the current price table; else nothing. A model missing from the table is
//!   counted as *unpriced* (requests and tokens), never as zero.
//! - `governance.policy_set` / `governance.policy_removed` with `"rule": "max_cost"` set and
//!   remove an intent's budget.
//!
//! Uses `model::amount`, `model::cost`, `model::error`, `model::event`, `model::event_type`,
//! `model::payload_fields`, `model::price`, `model::time`, `engine::format`.

pub(crate) mod budget;

use std::collections::BTreeMap;
use std::sync::Arc;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::engine::format::{
    LazyTable, COST_BUDGETS, COST_ENTRIES, COST_PRICES, COST_TOTALS, COST_UNPRICED,
};
use crate::model::amount::Amount;
use crate::model::cost::CostType;
use crate::model::cost::MAX_COST_RULE;
use crate::model::cost::{RecordedCost, COST_RECORDED, USD};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event_type::EventType;
use crate::model::payload_fields;
use crate::model::price::{LoadedPrices, TokenUsage};
use crate::model::time;
use budget::BudgetRow;

/// The totals scope of the whole store (an intent id is never empty).
pub(crate) const ALL_INTENTS: &str = "";

/// What a totals row sums over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Dimension {
    /// Everything (key `""`).
    Total = 0,
    /// By cost type.
    Type = 1,
    /// By agent.
    Agent = 2,
    /// By model.
    Model = 3,
    /// By provider.
    Provider = 4,
}

impl Dimension {
    pub(crate) fn from_code(code: u8) -> Option<Dimension> {
        [
            Dimension::Total,
            Dimension::Type,
            Dimension::Agent,
            Dimension::Model,
            Dimension::Provider,
        ]
        .into_iter()
        .find(|d| *d as u8 == code)
    }
}

/// Where an entry's amount came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Source {
    /// A `cost_recorded` event.
    Recorded,
    /// An LLM request that reported its own `cost`.
    LlmReported,
    /// An LLM request priced from the price table.
    LlmPriced,
    /// An LLM request with usage whose model has no price.
    LlmUnpriced,
}

/// The ledger's entry for one event (encoded after a version byte).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CostEntry {
    pub(crate) event_id: [u8; 16],
    pub(crate) intent_id: String,
    pub(crate) agent: String,
    pub(crate) cost_type: String,
    pub(crate) unit: String,
    /// Pico-units; `None` when unpriced.
    pub(crate) amount: Option<i128>,
    pub(crate) provider: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) source: Source,
    pub(crate) usage: Option<TokenUsage>,
    pub(crate) price_version: Option<u64>,
}

const ENTRY_V1: u8 = 1;

impl CostEntry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENTRY_V1];
        // Encoding plain owned data into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    pub(crate) fn decode(bytes: &[u8], position: u64) -> Result<CostEntry> {
        let corrupt = |reason: String| Error::Corrupt {
            position,
            reason: format!("cost ledger entry: {reason}"),
        };
        match bytes.split_first() {
            Some((&ENTRY_V1, body)) => {
                postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))
            }
            Some((version, _)) => Err(corrupt(format!("unknown entry version {version}"))),
            None => Err(corrupt("empty entry".into())),
        }
    }

    pub(crate) fn amount(&self) -> Option<Amount> {
        self.amount.map(Amount::from_picos)
    }

    /// The totals rows a priced entry adds to.
    pub(crate) fn dimensions(&self) -> impl Iterator<Item = (Dimension, &str)> {
        [
            Some((Dimension::Total, "")),
            Some((Dimension::Type, self.cost_type.as_str())),
            Some((Dimension::Agent, self.agent.as_str())),
            self.model.as_deref().map(|m| (Dimension::Model, m)),
            self.provider.as_deref().map(|p| (Dimension::Provider, p)),
        ]
        .into_iter()
        .flatten()
    }

    /// The entry of a `cost_recorded` event (checked strictly).
    fn recorded(event: &Event) -> Result<CostEntry> {
        let cost = RecordedCost::parse(&event.payload)?;
        Ok(CostEntry {
            event_id: event.id.into_bytes(),
            intent_id: event.intent_id.clone(),
            agent: cost.agent_id.unwrap_or_else(|| event.actor.clone()),
            cost_type: cost.cost_type.as_str().to_owned(),
            unit: cost.unit,
            amount: Some(cost.amount.picos()),
            provider: cost.provider,
            model: cost.model,
            source: Source::Recorded,
            usage: None,
            price_version: None,
        })
    }

    /// The entry of an `llm_request_completed` event, if it carries a cost or usage.
    fn llm_request(event: &Event, prices: Option<&LoadedPrices>) -> Option<CostEntry> {
        let p = &event.payload;
        let reported = payload_fields::number(p, "cost")
            .and_then(Amount::from_f64)
            .filter(|a| !a.is_negative());
        let usage = TokenUsage::from_payload(p);
        if reported.is_none() && usage.is_none() {
            return None;
        }
        let mut entry = CostEntry {
            event_id: event.id.into_bytes(),
            intent_id: event.intent_id.clone(),
            agent: event.actor.clone(),
            cost_type: CostType::Tokens.as_str().to_owned(),
            unit: USD.to_owned(),
            amount: None,
            provider: payload_fields::text(p, "provider").map(str::to_owned),
            model: payload_fields::text(p, "model").map(str::to_owned),
            source: Source::LlmUnpriced,
            usage,
            price_version: None,
        };
        match reported {
            Some(cost) => {
                entry.amount = Some(cost.picos());
                entry.source = Source::LlmReported;
            }
            None => entry.price_with(prices),
        }
        Some(entry)
    }

    /// Prices an LLM entry that reported no cost from `prices` (unpriced when it has no price).
    pub(crate) fn price_with(&mut self, prices: Option<&LoadedPrices>) {
        let found = prices.and_then(|loaded| {
            let price = loaded.price(self.provider.as_deref(), self.model.as_deref()?)?;
            let cost = price.cost(&self.usage?)?;
            Some((cost, loaded))
        });
        match found {
            Some((cost, prices)) => {
                self.amount = Some(cost.picos());
                self.unit.clone_from(&prices.table.currency);
                self.source = Source::LlmPriced;
                self.price_version = Some(prices.version);
            }
            None => {
                self.amount = None;
                self.unit = prices.map_or_else(|| USD.to_owned(), |p| p.table.currency.clone());
                self.source = Source::LlmUnpriced;
                self.price_version = None;
            }
        }
    }
}

/// The ledger's tables, open in a write transaction.
pub(crate) struct LedgerTables<'txn> {
    entries: LazyTable<'txn, (i64, u64), &'static [u8]>,
    totals: LazyTable<'txn, (&'static str, &'static str, u8, &'static str), (i128, u64)>,
    unpriced: LazyTable<'txn, (&'static str, &'static str, &'static str), (u64, u64, u64)>,
    budgets: LazyTable<'txn, &'static str, &'static [u8]>,
    prices: LazyTable<'txn, u64, &'static [u8]>,
    /// The current price table (`None`: no table is set), once `prices_read`.
    loaded_prices: Option<Arc<LoadedPrices>>,
    prices_read: bool,
    /// The `governance.violation` event of the last refusal, for the writer to append.
    violation: Option<NewEvent>,
}

impl<'txn> LedgerTables<'txn> {
    /// The ledger's tables in `txn`, each opened when first used (most appends touch none).
    pub(crate) fn open(txn: &'txn WriteTransaction) -> LedgerTables<'txn> {
        LedgerTables {
            entries: LazyTable::new(txn, COST_ENTRIES),
            totals: LazyTable::new(txn, COST_TOTALS),
            unpriced: LazyTable::new(txn, COST_UNPRICED),
            budgets: LazyTable::new(txn, COST_BUDGETS),
            prices: LazyTable::new(txn, COST_PRICES),
            loaded_prices: None,
            prices_read: false,
            violation: None,
        }
    }

    /// The `governance.violation` event a budget refusal asks to be written, if any.
    pub(crate) fn take_violation(&mut self) -> Option<NewEvent> {
        self.violation.take()
    }

    /// The current price table, read once per transaction when first needed.
    pub(crate) fn current_prices(&mut self) -> Result<Option<Arc<LoadedPrices>>> {
        if !self.prices_read {
            self.loaded_prices = match self.prices.get()?.last()? {
                Some((version, bytes)) => Some(Arc::new(LoadedPrices::decode(
                    version.value(),
                    bytes.value(),
                )?)),
                None => None,
            };
            self.prices_read = true;
        }
        Ok(self.loaded_prices.clone())
    }

    /// Every entry whose amount depends on the price table: (key, entry).
    pub(crate) fn priceable_entries(&mut self) -> Result<Vec<((i64, u64), CostEntry)>> {
        let mut found = Vec::new();
        for row in self.entries.get()?.iter()? {
            let (key, bytes) = row?;
            let key = key.value();
            let entry = CostEntry::decode(bytes.value(), key.1)?;
            if matches!(entry.source, Source::LlmPriced | Source::LlmUnpriced) {
                found.push((key, entry));
            }
        }
        Ok(found)
    }

    fn stored_total(
        &mut self,
        scope: &str,
        unit: &str,
        dimension: Dimension,
        key: &str,
    ) -> Result<Amount> {
        let row = self
            .totals
            .get()?
            .get((scope, unit, dimension as u8, key))?;
        Ok(row.map_or(Amount::ZERO, |g| Amount::from_picos(g.value().0)))
    }

    fn stored_budget(&mut self, intent_id: &str) -> Result<Option<BudgetRow>> {
        self.budgets
            .get()?
            .get(intent_id)?
            .map(|g| BudgetRow::decode(g.value(), intent_id))
            .transpose()
    }
}

/// What one request does to the ledger: planned (and checked) before anything is written.
#[derive(Debug, Default)]
pub(crate) struct LedgerPlan {
    entries: Vec<((i64, u64), CostEntry)>,
    /// (scope, unit, dimension, key) -> (pico-units, count) to add.
    totals: BTreeMap<(String, String, u8, String), (i128, i128)>,
    /// (scope, provider, model) -> (requests, input tokens, output tokens) to add.
    unpriced: BTreeMap<(String, String, String), (i128, i128, i128)>,
    /// Budgets set (`Some`) or removed (`None`) by this request.
    budgets: BTreeMap<String, Option<BudgetRow>>,
    /// Events to append right after this request, in the same transaction (budget alerts).
    follow_ups: Vec<NewEvent>,
}

impl LedgerPlan {
    /// Plans what `event` (new, about to be written) does to the ledger. Refuses a cost that
    /// would take its intent over budget, leaving the violation to write in `tables`.
    pub(crate) fn add(&mut self, tables: &mut LedgerTables<'_>, event: &Event) -> Result<()> {
        let entry = match &event.event_type {
            EventType::LlmRequestCompleted => {
                let prices = match TokenUsage::from_payload(&event.payload) {
                    Some(_) => tables.current_prices()?,
                    None => None,
                };
                CostEntry::llm_request(event, prices.as_deref())
            }
            EventType::GovernancePolicySet if is_budget_rule(event) => {
                let row = BudgetRow::from_policy(event)?;
                self.budgets.insert(event.intent_id.clone(), Some(row));
                return Ok(());
            }
            EventType::GovernancePolicyRemoved if is_budget_rule(event) => {
                self.budgets.insert(event.intent_id.clone(), None);
                return Ok(());
            }
            EventType::BudgetAlert if is_budget_rule(event) => {
                // An alert that comes with the request (an import replaying a log) is the alert:
                // the budget is alerted, and no second one is written.
                self.follow_ups.retain(|f| f.intent_id != event.intent_id);
                if let Some(mut row) = self.budget(tables, &event.intent_id)? {
                    row.alerted = true;
                    self.budgets.insert(event.intent_id.clone(), Some(row));
                }
                return Ok(());
            }
            other if other.as_str() == COST_RECORDED => Some(CostEntry::recorded(event)?),
            _ => None,
        };
        let Some(entry) = entry else { return Ok(()) };
        if let Some(amount) = entry.amount() {
            self.check_budget(tables, event, &entry, amount)?;
        }
        self.count(&entry, 1);
        self.entries
            .push(((time::to_micros(event.created_at), event.position), entry));
        Ok(())
    }

    /// The budget rule: refuse a positive cost that would take the intent's spend (in the
    /// budget's unit) over `max_cost`; write one alert when the spend first reaches the threshold.
    fn check_budget(
        &mut self,
        tables: &mut LedgerTables<'_>,
        event: &Event,
        entry: &CostEntry,
        amount: Amount,
    ) -> Result<()> {
        let Some(mut row) = self.budget(tables, &event.intent_id)? else {
            return Ok(());
        };
        if row.unit != entry.unit {
            return Ok(());
        }
        let stored = tables.stored_total(&event.intent_id, &entry.unit, Dimension::Total, "")?;
        let planned = self.planned_total(&event.intent_id, &entry.unit);
        let after = stored + planned + amount;
        if amount > Amount::ZERO && after > row.max_cost {
            // The whole request is refused: what it asked to spend is its costs so far in this
            // intent and unit, this one included; what was spent is what is stored.
            let attempted = planned + amount;
            tables.violation = Some(budget::violation_event(
                event, entry, &row, stored, attempted,
            ));
            return Err(Error::BudgetExceeded {
                intent_id: event.intent_id.clone(),
                event_id: event.id,
                unit: row.unit,
                max_cost: row.max_cost,
                spent: stored,
                attempted,
            });
        }
        if !row.alerted && row.alert_due(after) {
            self.follow_ups
                .push(budget::alert_event(event, &row, after));
            row.alerted = true;
            self.budgets.insert(event.intent_id.clone(), Some(row));
        }
        Ok(())
    }

    fn budget(&self, tables: &mut LedgerTables<'_>, intent_id: &str) -> Result<Option<BudgetRow>> {
        match self.budgets.get(intent_id) {
            Some(planned) => Ok(planned.clone()),
            None => tables.stored_budget(intent_id),
        }
    }

    /// What this request adds to the intent's spend in `unit` so far.
    fn planned_total(&self, intent_id: &str, unit: &str) -> Amount {
        let key = (
            intent_id.to_owned(),
            unit.to_owned(),
            Dimension::Total as u8,
            String::new(),
        );
        Amount::from_picos(self.totals.get(&key).map_or(0, |(picos, _)| *picos))
    }

    /// Adds (`sign` 1) or takes back (`sign` -1) an entry's share of the totals.
    pub(crate) fn count(&mut self, entry: &CostEntry, sign: i8) {
        let sign = i128::from(sign);
        for scope in [entry.intent_id.as_str(), ALL_INTENTS] {
            match entry.amount {
                Some(picos) => {
                    for (dimension, key) in entry.dimensions() {
                        let slot = self
                            .totals
                            .entry((
                                scope.to_owned(),
                                entry.unit.clone(),
                                dimension as u8,
                                key.to_owned(),
                            ))
                            .or_default();
                        slot.0 += sign * picos;
                        slot.1 += sign;
                    }
                }
                None => {
                    let usage = entry.usage.unwrap_or_default();
                    let slot = self
                        .unpriced
                        .entry((
                            scope.to_owned(),
                            entry.provider.clone().unwrap_or_default(),
                            entry.model.clone().unwrap_or_default(),
                        ))
                        .or_default();
                    slot.0 += sign;
                    slot.1 += sign * i128::from(usage.prompt_tokens);
                    slot.2 += sign * i128::from(usage.completion_tokens);
                }
            }
        }
    }

    /// Replaces (or adds) the entry at `key`; its totals must be counted separately.
    pub(crate) fn put_entry(&mut self, key: (i64, u64), entry: CostEntry) {
        self.entries.push((key, entry));
    }

    /// The events to append after this request (budget alerts).
    pub(crate) fn take_follow_ups(&mut self) -> Vec<NewEvent> {
        std::mem::take(&mut self.follow_ups)
    }

    /// Writes the plan.
    pub(crate) fn apply(&self, tables: &mut LedgerTables<'_>) -> Result<()> {
        for (key, entry) in &self.entries {
            tables
                .entries
                .get()?
                .insert(*key, entry.encode().as_slice())?;
        }
        for ((scope, unit, dimension, key), (picos, count)) in &self.totals {
            let row_key = (scope.as_str(), unit.as_str(), *dimension, key.as_str());
            let (old_picos, old_count) = tables
                .totals
                .get()?
                .get(row_key)?
                .map_or((0, 0), |g| g.value());
            let count = i128::from(old_count) + count;
            match u64::try_from(count) {
                Ok(count) if count > 0 => {
                    tables
                        .totals
                        .get()?
                        .insert(row_key, (old_picos + picos, count))?;
                }
                _ => {
                    tables.totals.get()?.remove(row_key)?;
                }
            }
        }
        for ((scope, provider, model), (requests, input, output)) in &self.unpriced {
            let row_key = (scope.as_str(), provider.as_str(), model.as_str());
            let old = tables
                .unpriced
                .get()?
                .get(row_key)?
                .map_or((0, 0, 0), |g| g.value());
            let add = |old: u64, delta: i128| u64::try_from(i128::from(old) + delta).unwrap_or(0);
            let requests = add(old.0, *requests);
            if requests == 0 {
                tables.unpriced.get()?.remove(row_key)?;
            } else {
                tables
                    .unpriced
                    .get()?
                    .insert(row_key, (requests, add(old.1, *input), add(old.2, *output)))?;
            }
        }
        for (intent_id, budget) in &self.budgets {
            match budget {
                Some(row) => {
                    tables
                        .budgets
                        .get()?
                        .insert(intent_id.as_str(), row.encode().as_slice())?;
                }
                None => {
                    tables.budgets.get()?.remove(intent_id.as_str())?;
                }
            }
        }
        Ok(())
    }
}

fn is_budget_rule(event: &Event) -> bool {
    payload_fields::text(&event.payload, "rule") == Some(MAX_COST_RULE)
}
