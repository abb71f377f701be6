//! Reading the postings: one code's entries within a window, either way, from blocks or from the
//! row-per-event tables of format versions 1 to 3; single entries, cached by block; every entry
//! of an index, checked for blocks out of order; and counts per code.
//!
//! Uses the layout, the block codec and the file format's optional tables.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableTable};

use crate::engine::format::{open_optional, Facts};
use crate::engine::postings::codec::decode_block;
use crate::engine::postings::layout::{
    Code, CodeKey, Entry, Index, ACTOR_POSTINGS, BLOCK_ENTRIES, BY_ACTOR, BY_INTENT, BY_TRACE,
    BY_TYPE, INTENT_POSTINGS, TRACE_POSTINGS, TYPE_POSTINGS,
};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Position;
use crate::model::event::Sequence;

/// Entries of one code, in the order asked for.
pub(crate) type Entries = Box<dyn Iterator<Item = Result<Entry>>>;

/// Blocks of one code as (key's first, value bytes), in key order or its reverse.
type Blocks = Box<dyn Iterator<Item = Result<(u64, Vec<u8>)>>>;

/// The blocks of `code` in `table` that may hold entries ordered within `[low, high]`: from the
/// one holding `low` (the last whose key is at most `low`) to the last whose key is at most
/// `high`.
fn blocks_of<C: CodeKey>(
    table: &redb::ReadOnlyTable<(C, u64), &'static [u8]>,
    code: C,
    low: u64,
    high: u64,
    forward: bool,
) -> Result<Blocks> {
    let start = match table.range((code, 0)..=(code, low))?.next_back() {
        Some(row) => row?.0.value().1,
        None => low,
    };
    let range = table.range_owned((code, start)..=(code, high))?;
    let rows = range.map(|row| {
        let (key, value) = row?;
        Ok((key.value().1, value.value().to_vec()))
    });
    Ok(if forward {
        Box::new(rows)
    } else {
        Box::new(rows.rev())
    })
}

/// The entries of one code's blocks within a window, one block decoded at a time.
struct BlockEntries {
    code: Code,
    blocks: Blocks,
    decoded: Vec<Entry>,
    /// The next entry of `decoded` to give, counted from its end when reversed.
    next: usize,
    low: u64,
    high: u64,
    forward: bool,
    /// Set after an error: nothing more is given.
    done: bool,
}

impl Iterator for BlockEntries {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        let index = self.code.index();
        loop {
            if self.done {
                return None;
            }
            if self.next < self.decoded.len() {
                let at = if self.forward {
                    self.next
                } else {
                    self.decoded.len() - 1 - self.next
                };
                self.next += 1;
                let entry = *self.decoded.get(at)?;
                let order = entry.order(index);
                if order < self.low || order > self.high {
                    // Past the window's far end, nothing more can fall in it.
                    if (self.forward && order > self.high) || (!self.forward && order < self.low) {
                        self.done = true;
                        return None;
                    }
                    continue;
                }
                return Some(Ok(entry));
            }
            match self.blocks.next()? {
                Ok((first, bytes)) => {
                    if let Err(e) = decode_block(self.code, first, &bytes, &mut self.decoded) {
                        self.done = true;
                        return Some(Err(e));
                    }
                    self.next = 0;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Rows of a format version 1 to 3 `(code, position)` index for one code, within `[low, high]`.
fn old_rows<C: CodeKey>(
    table: &redb::ReadOnlyTable<(C, u64), Facts>,
    code: C,
    low: u64,
    high: u64,
    forward: bool,
) -> Result<Entries> {
    let range = table.range_owned((code, low)..=(code, high))?;
    let rows = range.map(|row| {
        let (key, facts) = row?;
        Ok(Entry {
            position: key.value().1,
            sequence: 0,
            facts: facts.value(),
        })
    });
    Ok(if forward {
        Box::new(rows)
    } else {
        Box::new(rows.rev())
    })
}

/// The entries of `code` ordered within `[low, high]` (sequences for an intent, positions
/// otherwise), oldest first when `forward`, else newest first, in the layout the file has.
///
/// # Errors
/// A storage error; [`Error::Corrupt`] (as an item) for a damaged block.
pub(crate) fn entries(
    txn: &ReadTransaction,
    code: Code,
    low: u64,
    high: u64,
    forward: bool,
) -> Result<Entries> {
    if low > high {
        return Ok(Box::new(std::iter::empty()));
    }
    let blocks = match code {
        Code::Intent(c) => match open_optional(txn, INTENT_POSTINGS)? {
            Some(table) => blocks_of(&table, c, low, high, forward)?,
            None => {
                let table = txn.open_table(BY_INTENT)?;
                let range = table.range_owned((c, low)..=(c, high))?;
                let rows = range.map(|row| {
                    let (key, value) = row?;
                    let (position, facts) = value.value();
                    Ok(Entry {
                        position,
                        sequence: key.value().1,
                        facts,
                    })
                });
                return Ok(if forward {
                    Box::new(rows)
                } else {
                    Box::new(rows.rev())
                });
            }
        },
        Code::Type(c) => match open_optional(txn, TYPE_POSTINGS)? {
            Some(table) => blocks_of(&table, c, low, high, forward)?,
            None => return old_rows(&txn.open_table(BY_TYPE)?, c, low, high, forward),
        },
        Code::Actor(c) => match open_optional(txn, ACTOR_POSTINGS)? {
            Some(table) => blocks_of(&table, c, low, high, forward)?,
            None => return old_rows(&txn.open_table(BY_ACTOR)?, c, low, high, forward),
        },
        Code::Trace(c) => match open_optional(txn, TRACE_POSTINGS)? {
            Some(table) => blocks_of(&table, c, low, high, forward)?,
            None => match open_optional(txn, BY_TRACE)? {
                Some(table) => return old_rows(&table, c, low, high, forward),
                None => return Ok(Box::new(std::iter::empty())),
            },
        },
    };
    Ok(Box::new(BlockEntries {
        code,
        blocks,
        decoded: Vec::with_capacity(BLOCK_ENTRIES),
        next: 0,
        low,
        high,
        forward,
        done: false,
    }))
}

/// The entry of `code` at `order` (its sequence for an intent, else its position), if any.
///
/// # Errors
/// A storage error, or [`Error::Corrupt`] for a damaged block.
pub(crate) fn entry_at(txn: &ReadTransaction, code: Code, order: u64) -> Result<Option<Entry>> {
    entries(txn, code, order, order, true)?.next().transpose()
}

/// The smallest sequence of an intent whose position is at least `low`, given that sequences
/// `1..=last_sequence` rise with positions; `last_sequence` when none is.
///
/// # Errors
/// A storage error, or [`Error::Corrupt`] for a damaged block.
pub(crate) fn first_sequence_at_or_after(
    txn: &ReadTransaction,
    intent_code: u64,
    last_sequence: Sequence,
    low: Position,
) -> Result<Sequence> {
    let code = Code::Intent(intent_code);
    let (mut lo, mut hi) = (1, last_sequence);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let position = entry_at(txn, code, mid)?.map_or(0, |e| e.position);
        if position < low {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// The largest sequence of an intent whose position is at most `high` (0 if none).
///
/// # Errors
/// A storage error, or [`Error::Corrupt`] for a damaged block.
pub(crate) fn last_sequence_at_or_before(
    txn: &ReadTransaction,
    intent_code: u64,
    last_sequence: Sequence,
    high: Position,
) -> Result<Sequence> {
    let code = Code::Intent(intent_code);
    let (mut lo, mut hi) = (0, last_sequence);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let position = entry_at(txn, code, mid)?.map_or(Position::MAX, |e| e.position);
        if position <= high {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo)
}

/// Finds single entries, keeping the block last read of each index decoded: lookups made in
/// position order (as `verify` makes them) mostly find their entry there.
#[derive(Default)]
pub(crate) struct Lookup {
    cached: HashMap<Index, (Code, Vec<Entry>)>,
}

impl Lookup {
    /// The entry of `code` at `order` (its sequence for an intent, else its position), if any.
    ///
    /// # Errors
    /// A storage error, or [`Error::Corrupt`] for a damaged block.
    pub(crate) fn find(
        &mut self,
        txn: &ReadTransaction,
        code: Code,
        order: u64,
    ) -> Result<Option<Entry>> {
        let index = code.index();
        let holds = |(cached, entries): &(Code, Vec<Entry>)| {
            *cached == code
                && entries.first().is_some_and(|e| e.order(index) <= order)
                && entries.last().is_some_and(|e| e.order(index) >= order)
        };
        if !self.cached.get(&index).is_some_and(holds) {
            let block = match code {
                Code::Intent(c) => match open_optional(txn, INTENT_POSTINGS)? {
                    Some(table) => block_holding(&table, c, code, order)?,
                    None => entry_at(txn, code, order)?.into_iter().collect(),
                },
                Code::Type(c) => match open_optional(txn, TYPE_POSTINGS)? {
                    Some(table) => block_holding(&table, c, code, order)?,
                    None => entry_at(txn, code, order)?.into_iter().collect(),
                },
                Code::Actor(c) => match open_optional(txn, ACTOR_POSTINGS)? {
                    Some(table) => block_holding(&table, c, code, order)?,
                    None => entry_at(txn, code, order)?.into_iter().collect(),
                },
                Code::Trace(c) => match open_optional(txn, TRACE_POSTINGS)? {
                    Some(table) => block_holding(&table, c, code, order)?,
                    None => entry_at(txn, code, order)?.into_iter().collect(),
                },
            };
            self.cached.insert(index, (code, block));
        }
        Ok(self.cached.get(&index).and_then(|(_, entries)| {
            entries
                .binary_search_by_key(&order, |e| e.order(index))
                .ok()
                .and_then(|at| entries.get(at).copied())
        }))
    }
}

/// The decoded block of `code` whose key is the last at or before `order` (empty if none).
fn block_holding<C: CodeKey>(
    table: &redb::ReadOnlyTable<(C, u64), &'static [u8]>,
    raw: C,
    code: Code,
    order: u64,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    if let Some(row) = table.range((raw, 0)..=(raw, order))?.next_back() {
        let (key, value) = row?;
        decode_block(code, key.value().1, value.value(), &mut entries)?;
    }
    Ok(entries)
}

/// Every entry of one index, code by code, each code's in order: `(code, entry)`.
pub(crate) type AllEntries = Box<dyn Iterator<Item = Result<(Code, Entry)>>>;

/// Blocks of every code as (code, key's first, value bytes), in key order.
type KeyedBlocks = Box<dyn Iterator<Item = Result<(Code, u64, Vec<u8>)>>>;

/// Every block of a table as (code, first, bytes), in key order.
fn all_blocks<C: CodeKey>(
    table: &redb::ReadOnlyTable<(C, u64), &'static [u8]>,
    wrap: fn(C) -> Code,
) -> Result<KeyedBlocks> {
    let rows = table.range_owned(..)?.map(move |row| {
        let (key, value) = row?;
        let (code, first) = key.value();
        Ok((wrap(code), first, value.value().to_vec()))
    });
    Ok(Box::new(rows))
}

/// Every entry of `index`, code by code in code order, each code's entries in order. Checks
/// what a block alone cannot: that one code's blocks do not overlap.
///
/// # Errors
/// A storage error; [`Error::Corrupt`] (as an item) for a damaged block or blocks out of order.
pub(crate) fn all_entries(txn: &ReadTransaction, index: Index) -> Result<AllEntries> {
    let blocks = match index {
        Index::Intent => match open_optional(txn, INTENT_POSTINGS)? {
            Some(t) => all_blocks(&t, Code::Intent)?,
            None => {
                let rows = txn.open_table(BY_INTENT)?.range_owned(..)?.map(|row| {
                    let (key, value) = row?;
                    let (code, sequence) = key.value();
                    let (position, facts) = value.value();
                    Ok((
                        Code::Intent(code),
                        Entry {
                            position,
                            sequence,
                            facts,
                        },
                    ))
                });
                return Ok(Box::new(rows));
            }
        },
        Index::Type => match open_optional(txn, TYPE_POSTINGS)? {
            Some(t) => all_blocks(&t, Code::Type)?,
            None => return all_old_rows(&txn.open_table(BY_TYPE)?, Code::Type),
        },
        Index::Actor => match open_optional(txn, ACTOR_POSTINGS)? {
            Some(t) => all_blocks(&t, Code::Actor)?,
            None => return all_old_rows(&txn.open_table(BY_ACTOR)?, Code::Actor),
        },
        Index::Trace => match open_optional(txn, TRACE_POSTINGS)? {
            Some(t) => all_blocks(&t, Code::Trace)?,
            None => match open_optional(txn, BY_TRACE)? {
                Some(t) => return all_old_rows(&t, Code::Trace),
                None => return Ok(Box::new(std::iter::empty())),
            },
        },
    };
    Ok(Box::new(AllBlockEntries {
        blocks,
        decoded: Vec::new(),
        next: 0,
        code: None,
        last: None,
        done: false,
    }))
}

fn all_old_rows<C: CodeKey>(
    table: &redb::ReadOnlyTable<(C, u64), Facts>,
    wrap: fn(C) -> Code,
) -> Result<AllEntries> {
    let rows = table.range_owned(..)?.map(move |row| {
        let (key, facts) = row?;
        let (code, position) = key.value();
        Ok((
            wrap(code),
            Entry {
                position,
                sequence: 0,
                facts: facts.value(),
            },
        ))
    });
    Ok(Box::new(rows))
}

/// [`all_entries`] over blocks.
struct AllBlockEntries {
    blocks: KeyedBlocks,
    decoded: Vec<Entry>,
    next: usize,
    code: Option<Code>,
    /// The order of the last entry given of the current code.
    last: Option<u64>,
    done: bool,
}

impl Iterator for AllBlockEntries {
    type Item = Result<(Code, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let (Some(entry), Some(code)) = (self.decoded.get(self.next), self.code) {
                self.next += 1;
                return Some(Ok((code, *entry)));
            }
            let (code, first, bytes) = match self.blocks.next()? {
                Ok(block) => block,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if self.code != Some(code) {
                self.last = None;
            }
            self.code = Some(code);
            if let Err(e) = decode_block(code, first, &bytes, &mut self.decoded) {
                self.done = true;
                return Some(Err(e));
            }
            self.next = 0;
            let index = code.index();
            if let (Some(last), Some(entry)) = (self.last, self.decoded.first()) {
                if entry.order(index) <= last {
                    self.done = true;
                    return Some(Err(Error::Corrupt {
                        position: entry.position,
                        reason: format!(
                            "index block {} begins at or before the end of the block before it ({last})",
                            code.describe(first)
                        ),
                    }));
                }
            }
            self.last = self.decoded.last().map(|e| e.order(index));
        }
    }
}

/// How many entries each code of `index` has, with the position of one of them (for messages).
///
/// # Errors
/// A storage error, or [`Error::Corrupt`] for a damaged block.
pub(crate) fn counts(
    txn: &ReadTransaction,
    index: Index,
) -> Result<BTreeMap<Code, (u64, Position)>> {
    let mut by_code: BTreeMap<Code, (u64, Position)> = BTreeMap::new();
    for item in all_entries(txn, index)? {
        let (code, entry) = item?;
        by_code.entry(code).or_insert((0, entry.position)).0 += 1;
    }
    Ok(by_code)
}
