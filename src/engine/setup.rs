//! Readying a file for writing: a new store's tables, and the upgrade of a store of an earlier
//! format version to this one.
//!
//! Above both the file format and the index postings, whose tables and rebuild it uses; neither
//! of them uses it.
//!
//! Uses `model::error`, `engine::format`, `engine::postings`.

use uuid::Uuid;

use crate::engine::format::{
    AGENT_KEYS, BY_ID, BY_TIME, CHECKPOINTS, CHECKPOINT_IDS, CHECKPOINT_SCOPES, CODES, CONSUMERS,
    COST_BUDGETS, COST_ENTRIES, COST_PRICES, COST_TOTALS, COST_UNPRICED, EVENTS, FORMAT_VERSION,
    INTENTS, INTENT_NAMES, META, META_CREATED_BY, META_FORMAT_VERSION, META_STORE_ID, NAMES,
    SIGNATURE_POLICY,
};
use crate::engine::postings;
use crate::model::error::Error;
use crate::model::error::Result;

/// Creates every table and writes the meta rows: the first write transaction of a new store.
pub(crate) fn initialize(db: &redb::Database) -> Result<()> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())?;
        meta.insert(META_STORE_ID, Uuid::now_v7().to_string().as_bytes())?;
        meta.insert(
            META_CREATED_BY,
            concat!("oidb ", env!("CARGO_PKG_VERSION")).as_bytes(),
        )?;
        txn.open_table(EVENTS)?;
        txn.open_table(BY_ID)?;
        txn.open_table(postings::INTENT_POSTINGS)?;
        txn.open_table(postings::TYPE_POSTINGS)?;
        txn.open_table(postings::ACTOR_POSTINGS)?;
        txn.open_table(postings::TRACE_POSTINGS)?;
        txn.open_table(BY_TIME)?;
        txn.open_table(INTENTS)?;
        txn.open_table(INTENT_NAMES)?;
        txn.open_table(CONSUMERS)?;
        txn.open_table(NAMES)?;
        txn.open_table(CODES)?;
        txn.open_table(COST_ENTRIES)?;
        txn.open_table(COST_TOTALS)?;
        txn.open_table(COST_UNPRICED)?;
        txn.open_table(COST_BUDGETS)?;
        txn.open_table(COST_PRICES)?;
        // Added after format version 1 was first written: readers treat them as empty when missing.
        txn.open_table(CHECKPOINTS)?;
        txn.open_table(CHECKPOINT_IDS)?;
        txn.open_table(CHECKPOINT_SCOPES)?;
        txn.open_table(AGENT_KEYS)?;
        txn.open_table(SIGNATURE_POLICY)?;
    }
    txn.commit()?;
    Ok(())
}

/// Upgrades a store of format version 1 to 3 to this version, in one write transaction, committed
/// durably. Its records stay as they are (this build reads every record version); its row-per-event
/// indexes by intent, type, actor and trace are rebuilt as blocks ([`postings::rebuild`]) and
/// deleted; and the version in `oidb_meta` changes, so that builds that cannot read what is
/// written from now on refuse the file instead of calling it damaged.
pub(crate) fn upgrade(db: &redb::Database) -> Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| Error::Storage(e.into()))?;
    postings::rebuild(&txn)?;
    txn.open_table(META)?
        .insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())?;
    txn.commit()?;
    Ok(())
}
