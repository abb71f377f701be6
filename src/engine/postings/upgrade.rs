//! The upgrade of the postings: a format version 1 to 3 file's row-per-event indexes turned into
//! blocks, and the old tables deleted.
//!
//! Uses the layout and the writing of blocks.

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use crate::engine::format::Facts;
use crate::engine::postings::layout::{
    Code, Entry, ACTOR_POSTINGS, BY_ACTOR, BY_INTENT, BY_TRACE, BY_TYPE, INTENT_POSTINGS,
    TRACE_POSTINGS, TYPE_POSTINGS,
};
use crate::engine::postings::write::{Tails, Writer};
use crate::model::error::Result;
use crate::model::event::Position;

/// Turns a format version 1 to 3 file's row-per-event indexes into blocks, in `txn`, and deletes
/// the old tables. A file that already has blocks is left as it is.
///
/// # Errors
/// A storage error, or [`Error::Corrupt`](crate::model::error::Error::Corrupt) when an old index's rows are out of order.
pub(crate) fn rebuild(txn: &WriteTransaction) -> Result<()> {
    let mut writer = Writer::new(txn);
    let mut tails = Tails::default();
    move_rows(
        txn,
        BY_INTENT,
        &mut writer,
        &mut tails,
        |(code, sequence), (position, facts)| {
            let entry = Entry {
                position,
                sequence,
                facts,
            };
            (Code::Intent(code), entry)
        },
    )?;
    let keyed = |code: Code, position: Position, facts: Facts| {
        let entry = Entry {
            position,
            sequence: 0,
            facts,
        };
        (code, entry)
    };
    move_rows(
        txn,
        BY_TYPE,
        &mut writer,
        &mut tails,
        |(code, position), facts| keyed(Code::Type(code), position, facts),
    )?;
    move_rows(
        txn,
        BY_ACTOR,
        &mut writer,
        &mut tails,
        |(code, position), facts| keyed(Code::Actor(code), position, facts),
    )?;
    move_rows(
        txn,
        BY_TRACE,
        &mut writer,
        &mut tails,
        |(code, position), facts| keyed(Code::Trace(code), position, facts),
    )?;
    drop(writer);
    // Created even when no event has an entry in them, as a new store has them.
    txn.open_table(INTENT_POSTINGS)?;
    txn.open_table(TYPE_POSTINGS)?;
    txn.open_table(ACTOR_POSTINGS)?;
    txn.open_table(TRACE_POSTINGS)?;
    txn.delete_table(BY_INTENT)?;
    txn.delete_table(BY_TYPE)?;
    txn.delete_table(BY_ACTOR)?;
    txn.delete_table(BY_TRACE)?;
    Ok(())
}

/// Appends the entries `entry_of` makes of an old index table's rows, if the file has that
/// table, a few thousand at a time so that a code's entries go in in a few runs.
fn move_rows<K, V>(
    txn: &WriteTransaction,
    definition: TableDefinition<K, V>,
    writer: &mut Writer<'_>,
    tails: &mut Tails,
    entry_of: impl for<'a> Fn(K::SelfType<'a>, V::SelfType<'a>) -> (Code, Entry),
) -> Result<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    const CHUNK: usize = 4096;
    if !table_exists(txn, definition.name())? {
        return Ok(());
    }
    let table = txn.open_table(definition)?;
    let mut pending = Vec::with_capacity(CHUNK);
    for row in table.iter()? {
        let (key, value) = row?;
        pending.push(entry_of(key.value(), value.value()));
        if pending.len() == CHUNK {
            writer.append(&mut pending, tails)?;
            pending.clear();
        }
    }
    writer.append(&mut pending, tails)
}

/// Whether `txn`'s file has a table of this name.
fn table_exists(txn: &WriteTransaction, name: &str) -> Result<bool> {
    for handle in txn.list_tables()? {
        if handle.name() == name {
            return Ok(true);
        }
    }
    Ok(false)
}
