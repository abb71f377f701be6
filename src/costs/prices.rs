//! Prices kept in the file: setting a new version of the price table, its history, and repricing
//! the costs that depend on it. The table itself and the pricing arithmetic are
//! [`PriceTable`] and [`ModelPrice`].
//!
//! Uses `model::error`, `model::price`, `model::time`, `engine::format`, `engine::ledger`,
//! `store::handle`, `store::reads`, `store::snapshot`.

use redb::ReadableTable;

use crate::engine::format::COST_PRICES;
use crate::engine::ledger::{LedgerPlan, LedgerTables};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::price::{invalid_price, PriceTable, PriceVersion};
use crate::model::time;
use crate::store::handle::Store;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// What [`Store::recompute_costs`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Recomputed {
    /// The price table version the costs are now priced by (`None`: no table is set).
    pub price_version: Option<u64>,
    /// LLM requests whose cost depends on the price table (those that reported no cost).
    pub examined: u64,
    /// Of those, how many now cost a different amount.
    pub repriced: u64,
    /// How many were unpriced and now have a price.
    pub newly_priced: u64,
    /// How many had a price and now have none (their model left the table).
    pub newly_unpriced: u64,
}

impl Store {
    /// Sets the price table: the next version, kept in the file beside the earlier ones. LLM
    /// requests appended from now on that report usage but no cost are priced by it; call
    /// [`Store::recompute_costs`] to reprice those already stored.
    ///
    /// # Errors
    /// [`Error::InvalidPrices`] naming the entry at fault; a storage error.
    pub fn set_prices(&self, table: &PriceTable) -> Result<u64> {
        table.check()?;
        self.inner().writer.write_exclusive(|txn| {
            let mut prices = txn.open_table(COST_PRICES)?;
            let version = prices.last()?.map_or(0, |(v, _)| v.value()) + 1;
            let stored = PriceVersion {
                version,
                set_at: time::now(),
                table: table.clone(),
            };
            let bytes = serde_json::to_vec(&stored).map_err(|e| invalid_price(e.to_string()))?;
            prices.insert(version, bytes.as_slice())?;
            Ok(version)
        })
    }

    /// Reprices every stored LLM request that reported usage but no cost by the current price
    /// table, and moves the totals by the difference, in one transaction. Requests that reported
    /// their own cost, and recorded costs, are left as they are. A model the table does not
    /// price becomes unpriced (never zero). Budgets are not enforced here: repricing changes
    /// what was spent, not what may be spent.
    ///
    /// # Errors
    /// A storage error, or a damaged ledger entry.
    pub fn recompute_costs(&self) -> Result<Recomputed> {
        self.inner().writer.write_exclusive(|txn| {
            let mut tables = LedgerTables::open(txn);
            let prices = tables.current_prices()?;
            let mut plan = LedgerPlan::default();
            let mut report = Recomputed {
                price_version: prices.as_ref().map(|p| p.version),
                ..Recomputed::default()
            };
            for (key, entry) in tables.priceable_entries()? {
                report.examined += 1;
                let mut repriced = entry.clone();
                repriced.price_with(prices.as_deref());
                if repriced == entry {
                    continue;
                }
                match (entry.amount, repriced.amount) {
                    (None, Some(_)) => report.newly_priced += 1,
                    (Some(_), None) => report.newly_unpriced += 1,
                    _ => {}
                }
                if entry.amount != repriced.amount || entry.unit != repriced.unit {
                    report.repriced += 1;
                }
                plan.count(&entry, -1);
                plan.count(&repriced, 1);
                plan.put_entry(key, repriced);
            }
            plan.apply(&mut tables)?;
            Ok(report)
        })
    }
}

impl Snapshot {
    /// The current price table, if one was set.
    ///
    /// # Errors
    /// A storage error.
    pub fn prices(&self) -> Result<Option<PriceVersion>> {
        Ok(self.price_history()?.pop())
    }

    /// Every version of the price table, oldest first.
    ///
    /// # Errors
    /// A storage error.
    pub fn price_history(&self) -> Result<Vec<PriceVersion>> {
        let txn = self.txn();
        let prices = match txn.open_table(COST_PRICES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut versions = Vec::new();
        for row in prices.iter()? {
            let (version, bytes) = row?;
            let stored: PriceVersion =
                serde_json::from_slice(bytes.value()).map_err(|e| Error::Corrupt {
                    position: 0,
                    reason: format!("price table version {}: {e}", version.value()),
                })?;
            versions.push(stored);
        }
        Ok(versions)
    }
}

read_on_handles! {
    /// The current price table, if one was set.
    fn prices(&self) -> Result<Option<PriceVersion>>;
    /// Every version of the price table, oldest first.
    fn price_history(&self) -> Result<Vec<PriceVersion>>;
}
