//! Secondary index entries packed in blocks per code: layout, encoding, reading and writing.
//!
//! The indexes by intent, event type, actor and trace hold, for each code, the events that have
//! it, in order. Since format version 4 they are kept as blocks of up to [`BLOCK_ENTRIES`]
//! entries: one row per block, keyed by (code, the block's first position, or first sequence for
//! intents), whose value is the entries packed as varints and deltas (docs/format.md, "Postings
//! blocks"). Files of format versions 1 to 3 kept one row per event in `by_intent`, `by_type`,
//! `by_actor` and `by_trace`: this module reads those too, with the same entries, so a read-only
//! open of such a file answers as an upgraded one does, and [`rebuild`] turns them into blocks
//! when the file is opened for writing.
//!
//! Every other module reads and writes these indexes through here.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use crate::engine::format::{open_optional, Facts, LazyTable};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Position;
use crate::model::event::Sequence;

/// `intent_postings`: (intent code, first sequence in the block) -> block.
pub(crate) const INTENT_POSTINGS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("intent_postings");
/// `type_postings`: (type code, first position in the block) -> block.
pub(crate) const TYPE_POSTINGS: TableDefinition<(u32, u64), &[u8]> =
    TableDefinition::new("type_postings");
/// `actor_postings`: (actor code, first position in the block) -> block.
pub(crate) const ACTOR_POSTINGS: TableDefinition<(u32, u64), &[u8]> =
    TableDefinition::new("actor_postings");
/// `trace_postings`: (trace id, first position in the block) -> block.
pub(crate) const TRACE_POSTINGS: TableDefinition<(u128, u64), &[u8]> =
    TableDefinition::new("trace_postings");

/// Format versions 1 to 3: `by_intent`, (intent code, sequence) -> (position, facts).
pub(crate) const BY_INTENT: TableDefinition<(u64, u64), (u64, Facts)> =
    TableDefinition::new("by_intent");
/// Format versions 1 to 3: `by_type`, (type code, position) -> facts.
pub(crate) const BY_TYPE: TableDefinition<(u32, u64), Facts> = TableDefinition::new("by_type");
/// Format versions 1 to 3: `by_actor`, (actor code, position) -> facts.
pub(crate) const BY_ACTOR: TableDefinition<(u32, u64), Facts> = TableDefinition::new("by_actor");
/// Format versions 1 to 3: `by_trace`, (trace id, position) -> facts.
pub(crate) const BY_TRACE: TableDefinition<(u128, u64), Facts> = TableDefinition::new("by_trace");

/// The most entries a block holds. Fewer rows make the index smaller and batched appends
/// cheaper (one rewrite per code per commit); more entries make a single append's rewrite of
/// its code's last block dearer. docs/performance.md has the measurements behind it.
pub(crate) const BLOCK_ENTRIES: usize = 64;

/// The most bytes a block's value takes: entries of far-apart events (large deltas) start a new
/// block sooner.
pub(crate) const BLOCK_BYTES: usize = 1024;

/// One of the four indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Index {
    /// By intent, in sequence order; entries carry their sequence.
    Intent,
    /// By event type; entries do not repeat the type.
    Type,
    /// By actor; entries do not repeat the actor.
    Actor,
    /// By trace id.
    Trace,
}

impl Index {
    /// The name of its table in this format version.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Index::Intent => "intent_postings",
            Index::Type => "type_postings",
            Index::Actor => "actor_postings",
            Index::Trace => "trace_postings",
        }
    }
}

/// A code of one of the indexes: which index, and the key's code in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Code {
    /// An intent's code (`IntentHead::code`).
    Intent(u64),
    /// An event type's interned code.
    Type(u32),
    /// An actor's interned code.
    Actor(u32),
    /// A trace id as the number its hex digits spell.
    Trace(u128),
}

impl Code {
    /// The index this code belongs to.
    pub(crate) fn index(self) -> Index {
        match self {
            Code::Intent(_) => Index::Intent,
            Code::Type(_) => Index::Type,
            Code::Actor(_) => Index::Actor,
            Code::Trace(_) => Index::Trace,
        }
    }

    /// How messages name the key: `type_postings (3, 120)`.
    fn describe(self, first: u64) -> String {
        match self {
            Code::Intent(c) => format!("intent_postings ({c}, {first})"),
            Code::Type(c) => format!("type_postings ({c}, {first})"),
            Code::Actor(c) => format!("actor_postings ({c}, {first})"),
            Code::Trace(c) => format!("trace_postings ({c:032x}, {first})"),
        }
    }
}

/// One event in an index: where it is, its sequence (intent entries only; 0 elsewhere), and the
/// facts filters need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The event's position.
    pub(crate) position: Position,
    /// The event's sequence in its intent; 0 in the type, actor and trace indexes.
    pub(crate) sequence: Sequence,
    /// (`created_at` micros, type code, actor code, level code).
    pub(crate) facts: Facts,
}

impl Entry {
    /// What the index orders its entries by: the sequence in the intent index, else the position.
    fn order(&self, index: Index) -> u64 {
        if index == Index::Intent {
            self.sequence
        } else {
            self.position
        }
    }
}

/// The type of an index's codes: a number that reads back as itself.
pub(crate) trait CodeKey:
    redb::Key + Copy + Ord + 'static + for<'a> redb::Value<SelfType<'a> = Self>
{
}

impl CodeKey for u32 {}
impl CodeKey for u64 {}
impl CodeKey for u128 {}

/// Entries of one code, in the order asked for.
pub(crate) type Entries = Box<dyn Iterator<Item = Result<Entry>>>;

// ---------------------------------------------------------------------------------------------
// The block codec.

/// Appends `value` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // The low seven bits, with the continuation bit.
        out.push(u8::try_from(value & 0x7f).unwrap_or(0) | 0x80);
        value >>= 7;
    }
    out.push(u8::try_from(value).unwrap_or(0));
}

fn zigzag(value: i64) -> u64 {
    (value.cast_unsigned() << 1) ^ (value >> 63).cast_unsigned()
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1).cast_signed() ^ -((value & 1).cast_signed())
}

/// Appends `entry` to a block of `code`'s index, `previous` being the block's last entry (`None`
/// for its first).
fn encode_entry(out: &mut Vec<u8>, index: Index, previous: Option<&Entry>, entry: &Entry) {
    let (micros, type_code, actor_code, level) = entry.facts;
    match previous {
        None => {
            put_varint(out, entry.position);
            put_varint(out, zigzag(micros));
        }
        Some(previous) => {
            put_varint(out, entry.position.wrapping_sub(previous.position));
            put_varint(out, zigzag(micros.wrapping_sub(previous.facts.0)));
        }
    }
    if index != Index::Type {
        put_varint(out, u64::from(type_code));
    }
    if index != Index::Actor {
        put_varint(out, u64::from(actor_code));
    }
    out.push(level);
    if index == Index::Intent {
        match previous {
            None => put_varint(out, entry.sequence),
            Some(previous) => put_varint(out, entry.sequence.wrapping_sub(previous.sequence)),
        }
    }
}

/// Appends `entry`, following `previous` in a block of `code`'s index: what one more entry adds
/// to a block (for the micro-benchmarks).
#[cfg(feature = "bench-internals")]
pub(crate) fn encode_entry_after(out: &mut Vec<u8>, code: Code, previous: &Entry, entry: &Entry) {
    encode_entry(out, code.index(), Some(previous), entry);
}

/// Encodes `entries` (in order; at most [`BLOCK_ENTRIES`]) as one block of `code`'s index.
pub(crate) fn encode_block(code: Code, entries: &[Entry]) -> Vec<u8> {
    let index = code.index();
    let mut out = vec![u8::try_from(entries.len()).unwrap_or(u8::MAX)];
    let mut previous = None;
    for entry in entries {
        encode_entry(&mut out, index, previous, entry);
        previous = Some(entry);
    }
    out
}

/// Reads a block's bytes, with the table and key to name when they are damaged.
struct BlockReader<'a> {
    bytes: &'a [u8],
    at: usize,
    code: Code,
    first: u64,
}

impl BlockReader<'_> {
    fn corrupt(&self, what: &str) -> Error {
        Error::Corrupt {
            position: if self.code.index() == Index::Intent {
                0
            } else {
                self.first
            },
            reason: format!(
                "index block {} is damaged: {what} at byte {}",
                self.code.describe(self.first),
                self.at
            ),
        }
    }

    fn byte(&mut self) -> Result<u8> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.corrupt("it ends early"))?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(self.corrupt("a number is too large"));
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt("a number is too long"))
    }

    fn code_u32(&mut self) -> Result<u32> {
        let value = self.varint()?;
        u32::try_from(value).map_err(|_| self.corrupt("a code is too large"))
    }

    fn grow(&self, previous: u64, delta: u64, what: &str) -> Result<u64> {
        match previous.checked_add(delta) {
            Some(next) if delta > 0 => Ok(next),
            _ => Err(self.corrupt(&format!("{what}s do not rise"))),
        }
    }
}

/// Decodes one block of `code`'s index, stored under key `first` (its first position, or first
/// sequence for intents), into `out` (cleared first).
///
/// # Errors
/// [`Error::Corrupt`] naming the table and key when the bytes are not such a block.
pub(crate) fn decode_block(
    code: Code,
    first: u64,
    bytes: &[u8],
    out: &mut Vec<Entry>,
) -> Result<()> {
    out.clear();
    let index = code.index();
    let mut reader = BlockReader {
        bytes,
        at: 0,
        code,
        first,
    };
    let count = reader.byte()?;
    if count == 0 || usize::from(count) > BLOCK_ENTRIES {
        return Err(reader.corrupt(&format!("it counts {count} entries")));
    }
    let mut previous: Option<Entry> = None;
    for _ in 0..count {
        let (position, micros) = match &previous {
            None => (reader.varint()?, unzigzag(reader.varint()?)),
            Some(p) => {
                let delta = reader.varint()?;
                let position = reader.grow(p.position, delta, "position")?;
                let micros = p.facts.0.wrapping_add(unzigzag(reader.varint()?));
                (position, micros)
            }
        };
        let type_code = match code {
            Code::Type(c) => c,
            _ => reader.code_u32()?,
        };
        let actor_code = match code {
            Code::Actor(c) => c,
            _ => reader.code_u32()?,
        };
        let level = reader.byte()?;
        let sequence = match (index, &previous) {
            (Index::Intent, None) => reader.varint()?,
            (Index::Intent, Some(p)) => {
                let delta = reader.varint()?;
                reader.grow(p.sequence, delta, "sequence")?
            }
            _ => 0,
        };
        let entry = Entry {
            position,
            sequence,
            facts: (micros, type_code, actor_code, level),
        };
        if previous.is_none() && entry.order(index) != first {
            return Err(reader.corrupt(&format!(
                "its first entry is at {}, not at its key",
                entry.order(index)
            )));
        }
        out.push(entry);
        previous = Some(entry);
    }
    if reader.at != bytes.len() {
        return Err(reader.corrupt(&format!(
            "{} bytes follow its entries",
            bytes.len() - reader.at
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading.

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
    let range = table.range((code, start)..=(code, high))?;
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
    let range = table.range((code, low)..=(code, high))?;
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
                let range = table.range((c, low)..=(c, high))?;
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
    let rows = table.range::<(C, u64)>(..)?.map(move |row| {
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
                let rows = txn
                    .open_table(BY_INTENT)?
                    .range::<(u64, u64)>(..)?
                    .map(|row| {
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
    let rows = table.range::<(C, u64)>(..)?.map(move |row| {
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

// ---------------------------------------------------------------------------------------------
// Writing.

/// The four index tables of a write transaction, for appending entries.
pub(crate) struct Writer<'txn> {
    intents: LazyTable<'txn, (u64, u64), &'static [u8]>,
    types: LazyTable<'txn, (u32, u64), &'static [u8]>,
    actors: LazyTable<'txn, (u32, u64), &'static [u8]>,
    traces: LazyTable<'txn, (u128, u64), &'static [u8]>,
}

impl<'txn> Writer<'txn> {
    /// The tables of `txn`, each opened when an entry first needs it.
    pub(crate) fn new(txn: &'txn WriteTransaction) -> Writer<'txn> {
        Writer {
            intents: LazyTable::new(txn, INTENT_POSTINGS),
            types: LazyTable::new(txn, TYPE_POSTINGS),
            actors: LazyTable::new(txn, ACTOR_POSTINGS),
            traces: LazyTable::new(txn, TRACE_POSTINGS),
        }
    }

    /// Appends new entries, each after every stored entry of its code (positions and sequences
    /// only grow): grouped by code, each code's last block is filled and rewritten once (taken
    /// from `tails` when it is there, else read from the table), and new blocks started as
    /// needed. `tails` is left holding the codes' new last blocks.
    ///
    /// # Errors
    /// A storage error; [`Error::Corrupt`] when the code's last block is damaged or an entry
    /// would not come after its last entry.
    pub(crate) fn append(&mut self, new: &mut [(Code, Entry)], tails: &mut Tails) -> Result<()> {
        // Each code's entries are in order of the key's second half, which no two share.
        new.sort_unstable_by_key(|(code, entry)| (*code, entry.order(code.index())));
        let mut entries = Vec::with_capacity(new.len());
        for run in new.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(code, _)) = run.first() else {
                continue;
            };
            entries.clear();
            entries.extend(run.iter().map(|(_, entry)| *entry));
            match code {
                Code::Intent(c) => append_run(self.intents.get()?, c, code, &entries, tails)?,
                Code::Type(c) => append_run(self.types.get()?, c, code, &entries, tails)?,
                Code::Actor(c) => append_run(self.actors.get()?, c, code, &entries, tails)?,
                Code::Trace(c) => append_run(self.traces.get()?, c, code, &entries, tails)?,
            }
        }
        Ok(())
    }
}

/// The last block of each code appended to lately, as the writer's transactions left it: the
/// next append to a code extends its block from here, without reading and decoding it again.
///
/// A writer calls [`Tails::begin`] as each write transaction starts and [`Tails::committed`] once
/// it has committed: what a transaction that never committed left here is dropped when the next
/// begins, so the blocks kept are always the file's.
pub(crate) struct Tails {
    blocks: HashMap<Code, Tail>,
    /// The most codes kept, about a kilobyte each: beyond it, a code appended to is kept in
    /// place of another.
    most: usize,
    /// A transaction began and has not committed (yet).
    open: bool,
}

impl Default for Tails {
    fn default() -> Self {
        Tails {
            blocks: HashMap::new(),
            most: 1024,
            open: false,
        }
    }
}

/// A code's last block: its key's first, its bytes, how many entries it holds, the last one.
struct Tail {
    first: u64,
    bytes: Vec<u8>,
    count: usize,
    last: Entry,
}

impl Tails {
    /// A write transaction starts; the blocks a transaction begun before it left, if that one
    /// did not commit, are dropped.
    pub(crate) fn begin(&mut self) {
        if self.open {
            self.blocks.clear();
        }
        self.open = true;
    }

    /// The transaction begun last has committed (or was let go having appended nothing): the
    /// blocks it left are the file's.
    pub(crate) fn committed(&mut self) {
        self.open = false;
    }

    fn take(&mut self, code: Code) -> Option<Tail> {
        self.blocks.remove(&code)
    }

    fn keep(&mut self, code: Code, tail: Tail) {
        if self.blocks.len() >= self.most && !self.blocks.contains_key(&code) {
            if let Some(other) = self.blocks.keys().next().copied() {
                self.blocks.remove(&other);
            }
        }
        self.blocks.insert(code, tail);
    }
}

/// `code`'s last block in `table`, read and decoded.
fn stored_tail<C: CodeKey>(
    table: &redb::Table<'_, (C, u64), &'static [u8]>,
    raw: C,
    code: Code,
) -> Result<Option<Tail>> {
    let Some(row) = table.range((raw, 0)..=(raw, u64::MAX))?.next_back() else {
        return Ok(None);
    };
    let (key, value) = row?;
    let first = key.value().1;
    let mut bytes = Vec::with_capacity(BLOCK_BYTES);
    bytes.extend_from_slice(value.value());
    let mut decoded = Vec::with_capacity(BLOCK_ENTRIES);
    decode_block(code, first, &bytes, &mut decoded)?;
    Ok(decoded.last().map(|&last| Tail {
        first,
        bytes,
        count: decoded.len(),
        last,
    }))
}

/// Appends `entries` (in order) to `code`'s blocks in `table`, and keeps its new last block in
/// `tails`.
fn append_run<C: CodeKey>(
    table: &mut redb::Table<'_, (C, u64), &'static [u8]>,
    raw: C,
    code: Code,
    entries: &[Entry],
    tails: &mut Tails,
) -> Result<()> {
    let index = code.index();
    let tail = match tails.take(code) {
        Some(tail) => Some(tail),
        None => stored_tail(table, raw, code)?,
    };
    let (mut first, mut block, mut count, mut previous) = match tail {
        Some(tail) => (tail.first, tail.bytes, tail.count, Some(tail.last)),
        None => (0, Vec::with_capacity(BLOCK_BYTES), 0, None),
    };
    let mut entries = entries.iter().peekable();
    while let Some(entry) = entries.next() {
        if let Some(previous) = &previous {
            if entry.order(index) <= previous.order(index) || entry.position <= previous.position {
                return Err(Error::Corrupt {
                    position: entry.position,
                    reason: format!(
                        "its index entry would not come after the last of {} (at position {}, sequence {}): the index does not agree with the log",
                        code.describe(first),
                        previous.position,
                        previous.sequence
                    ),
                });
            }
        }
        let mark = block.len();
        if previous.is_some() {
            encode_entry(&mut block, index, previous.as_ref(), entry);
        }
        let full = count == BLOCK_ENTRIES || block.len() > BLOCK_BYTES;
        if previous.is_none() || full {
            if full {
                block.truncate(mark);
                table.insert((raw, first), block.as_slice())?;
            }
            block.clear();
            block.push(0);
            first = entry.order(index);
            count = 0;
            encode_entry(&mut block, index, None, entry);
        }
        count += 1;
        if let Some(slot) = block.first_mut() {
            *slot = u8::try_from(count).unwrap_or(u8::MAX);
        }
        previous = Some(*entry);
        if entries.peek().is_none() {
            table.insert((raw, first), block.as_slice())?;
        }
    }
    if let Some(last) = previous {
        let tail = Tail {
            first,
            bytes: block,
            count,
            last,
        };
        tails.keep(code, tail);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Upgrading.

/// Turns a format version 1 to 3 file's row-per-event indexes into blocks, in `txn`, and deletes
/// the old tables. A file that already has blocks is left as it is.
///
/// # Errors
/// A storage error, or [`Error::Corrupt`] when an old index's rows are out of order.
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use redb::backends::InMemoryBackend;
    use redb::ReadableDatabase;

    use super::*;

    fn entry(position: u64, sequence: u64, micros: i64, type_code: u32, actor_code: u32) -> Entry {
        Entry {
            position,
            sequence,
            facts: (micros, type_code, actor_code, 2),
        }
    }

    /// `entries` as `code`'s index holds them: the key's type or actor in place of the entry's.
    fn as_stored(code: Code, entries: &[Entry]) -> Vec<Entry> {
        entries
            .iter()
            .map(|e| {
                let mut e = *e;
                match code {
                    Code::Type(c) => e.facts.1 = c,
                    Code::Actor(c) => e.facts.2 = c,
                    Code::Intent(_) | Code::Trace(_) => {}
                }
                if code.index() != Index::Intent {
                    e.sequence = 0;
                }
                e
            })
            .collect()
    }

    fn decoded(code: Code, first: u64, bytes: &[u8]) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        decode_block(code, first, bytes, &mut out)?;
        Ok(out)
    }

    #[test]
    fn blocks_read_back_at_the_extremes_of_every_field() {
        let entries = [
            Entry {
                position: 0,
                sequence: 0,
                facts: (i64::MIN, u32::MAX, 0, u8::MAX),
            },
            Entry {
                position: 1,
                sequence: 1,
                facts: (i64::MAX, 0, u32::MAX, 0),
            },
            Entry {
                position: u64::MAX - 1,
                sequence: u64::MAX - 1,
                facts: (i64::MIN, 7, 7, 1),
            },
            Entry {
                position: u64::MAX,
                sequence: u64::MAX,
                facts: (0, 7, 7, 1),
            },
        ];
        for code in [
            Code::Intent(u64::MAX),
            Code::Type(u32::MAX),
            Code::Actor(0),
            Code::Trace(u128::MAX),
        ] {
            let stored = as_stored(code, &entries);
            let bytes = encode_block(code, &stored);
            assert_eq!(decoded(code, 0, &bytes).unwrap(), stored, "{code:?}");
        }
    }

    #[test]
    fn a_type_entry_of_nearby_events_takes_a_few_bytes() {
        let code = Code::Type(3);
        let entries: Vec<Entry> = (0..BLOCK_ENTRIES as u64)
            .map(|i| {
                entry(
                    1_000_000 + i * 5,
                    0,
                    1_790_000_000_000_000 + 1_000 * i.cast_signed(),
                    3,
                    9,
                )
            })
            .collect();
        let bytes = encode_block(code, &entries);
        // Count; first entry: position 3, time 8, actor 1, level 1; then 1 + 2 + 1 + 1.
        assert_eq!(bytes.len(), 1 + 13 + 5 * (BLOCK_ENTRIES - 1));
        assert_eq!(decoded(code, 1_000_000, &bytes).unwrap(), entries);
    }

    #[test]
    fn damaged_blocks_are_corrupt_and_name_their_table_and_key() {
        let code = Code::Actor(4);
        let entries: Vec<Entry> = (1..=5)
            .map(|i| entry(i * 3, 0, i.cast_signed(), 2, 4))
            .collect();
        let bytes = encode_block(code, &entries);
        let reason = |result: Result<Vec<Entry>>| match result {
            Err(Error::Corrupt { reason, .. }) => reason,
            other => panic!("expected Corrupt, got {other:?}"),
        };
        for len in 0..bytes.len() {
            let why = reason(decoded(code, 3, &bytes[..len]));
            assert!(why.contains("actor_postings (4, 3)"), "{why}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(reason(decoded(code, 3, &longer)).contains("1 bytes follow its entries"));
        assert!(reason(decoded(code, 4, &bytes)).contains("not at its key"));
        let mut zero = bytes.clone();
        zero[0] = 0;
        assert!(reason(decoded(code, 3, &zero)).contains("counts 0 entries"));
        // A zero delta: positions that do not rise. Count, then position, time, type and level
        // of the first entry, a byte each; then the second's position delta.
        let mut flat = encode_block(code, &entries[..2]);
        flat[5] = 0;
        assert!(reason(decoded(code, 3, &flat)).contains("positions do not rise"));
        assert!(reason(decoded(
            code,
            3,
            &[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        ))
        .contains("too large"));
        for at in 0..bytes.len() {
            for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut changed = bytes.clone();
                changed[at] = byte;
                match decoded(code, 3, &changed) {
                    Ok(_) | Err(Error::Corrupt { .. }) => {}
                    Err(other) => panic!("byte {at} = {byte:#x}: {other}"),
                }
            }
        }
    }

    /// A store of just the four index tables, in memory.
    fn database() -> redb::Database {
        redb::Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .unwrap()
    }

    /// Appends `new` in a transaction of its own, reading each code's last block from the table.
    fn append(db: &redb::Database, new: &[(Code, Entry)]) -> Result<()> {
        append_keeping(db, new, &mut Tails::default())
    }

    /// Appends `new` in a transaction of its own, as the store's writer does, with `tails`.
    fn append_keeping(db: &redb::Database, new: &[(Code, Entry)], tails: &mut Tails) -> Result<()> {
        let txn = db.begin_write()?;
        tails.begin();
        {
            let mut writer = Writer::new(&txn);
            writer.append(&mut new.to_vec(), tails)?;
        }
        txn.commit()?;
        tails.committed();
        Ok(())
    }

    /// Every row of `table`, keys and bytes.
    fn rows<C: CodeKey>(
        db: &redb::Database,
        table: TableDefinition<(C, u64), &'static [u8]>,
    ) -> Vec<((C, u64), Vec<u8>)> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(table).unwrap();
        table
            .iter()
            .unwrap()
            .map(|row| {
                let (key, value) = row.unwrap();
                (key.value(), value.value().to_vec())
            })
            .collect()
    }

    #[test]
    fn a_transaction_that_does_not_commit_leaves_no_tail_behind() {
        let db = database();
        let code = Code::Type(3);
        let mut tails = Tails::default();
        let first: Vec<_> = (1..=3).map(|p| (code, entry(p, 0, 10, 3, 1))).collect();
        append_keeping(&db, &first, &mut tails).unwrap();
        // Appended, then never committed: the file does not have 4 and 5.
        let txn = db.begin_write().unwrap();
        tails.begin();
        {
            let mut writer = Writer::new(&txn);
            let mut lost: Vec<_> = (4..=5).map(|p| (code, entry(p, 0, 20, 3, 1))).collect();
            writer.append(&mut lost, &mut tails).unwrap();
        }
        txn.abort().unwrap();
        let then: Vec<_> = (4..=6).map(|p| (code, entry(p, 0, 30, 3, 9))).collect();
        append_keeping(&db, &then, &mut tails).unwrap();
        let expected: Vec<Entry> = first.iter().chain(&then).map(|(_, e)| *e).collect();
        assert_eq!(read(&db, code, 0, u64::MAX, true), expected);
    }

    fn read(db: &redb::Database, code: Code, low: u64, high: u64, forward: bool) -> Vec<Entry> {
        let txn = db.begin_read().unwrap();
        entries(&txn, code, low, high, forward)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn appends_fill_blocks_and_windows_start_and_end_mid_block() {
        let db = database();
        let code = Code::Intent(7);
        let all: Vec<Entry> = (1..=200u64)
            .map(|s| entry(s * 2, s, s.cast_signed() * 10, 1, 2))
            .collect();
        // One, then a run that fills the first block and starts more, then singles.
        append(&db, &[(code, all[0])]).unwrap();
        let run: Vec<_> = all[1..150].iter().map(|e| (code, *e)).collect();
        append(&db, &run).unwrap();
        for e in &all[150..] {
            append(&db, &[(code, *e)]).unwrap();
        }
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(INTENT_POSTINGS).unwrap();
        let sizes: Vec<u8> = table
            .iter()
            .unwrap()
            .map(|row| row.unwrap().1.value()[0])
            .collect();
        assert_eq!(sizes, [64, 64, 64, 8], "full blocks but the last");
        assert_eq!(read(&db, code, 0, u64::MAX, true), all);
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(read(&db, code, 0, u64::MAX, false), reversed);
        for (low, high) in [
            (5, 70),
            (64, 65),
            (65, 128),
            (1, 1),
            (200, 200),
            (100, 99),
            (201, 300),
        ] {
            let window: Vec<Entry> = all
                .iter()
                .copied()
                .filter(|e| e.sequence >= low && e.sequence <= high)
                .collect();
            assert_eq!(read(&db, code, low, high, true), window, "{low}..={high}");
            let mut back = window.clone();
            back.reverse();
            assert_eq!(
                read(&db, code, low, high, false),
                back,
                "{low}..={high} reversed"
            );
        }
        assert_eq!(entry_at(&txn, code, 65).unwrap(), Some(all[64]));
        assert_eq!(entry_at(&txn, code, 201).unwrap(), None);
        assert_eq!(first_sequence_at_or_after(&txn, 7, 200, 131).unwrap(), 66);
        assert_eq!(last_sequence_at_or_before(&txn, 7, 200, 131).unwrap(), 65);
        let mut lookup = Lookup::default();
        for e in &all {
            assert_eq!(lookup.find(&txn, code, e.sequence).unwrap(), Some(*e));
        }
        assert_eq!(lookup.find(&txn, Code::Intent(8), 1).unwrap(), None);
    }

    #[test]
    fn an_entry_that_would_not_come_last_is_refused() {
        let db = database();
        let code = Code::Type(1);
        append(&db, &[(code, entry(10, 0, 0, 1, 1))]).unwrap();
        for position in [10, 9] {
            match append(&db, &[(code, entry(position, 0, 0, 1, 1))]) {
                Err(Error::Corrupt { reason, .. }) => {
                    assert!(reason.contains("would not come after"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(read(&db, code, 0, u64::MAX, true), [entry(10, 0, 0, 1, 1)]);
    }

    #[test]
    fn far_apart_entries_start_blocks_before_they_pass_the_byte_cap() {
        let db = database();
        let code = Code::Trace(1);
        let all: Vec<Entry> = (0..300u64)
            .map(|i| entry(1 + (i << 40), 0, i.cast_signed() << 50, u32::MAX, u32::MAX))
            .collect();
        let run: Vec<_> = all.iter().map(|e| (code, *e)).collect();
        append(&db, &run).unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TRACE_POSTINGS).unwrap();
        for row in table.iter().unwrap() {
            assert!(row.unwrap().1.value().len() <= BLOCK_BYTES);
        }
        assert_eq!(read(&db, code, 0, u64::MAX, true), all);
    }

    proptest! {
        /// Whatever runs of entries are appended to a few codes, in however many commits, each
        /// code's window reads as a filter of a plain list, in both directions; and blocks
        /// extended from kept tails are the blocks extended from the table.
        #[test]
        fn entries_read_as_a_list_does(
            steps in prop::collection::vec((0u32..3, 1u64..2_000, -5_000i64..5_000, 1usize..40), 1..20),
            low in 0u64..60_000,
            span in 0u64..60_000,
        ) {
            let db = database();
            // The same appends through kept tails, of at most two of the three codes.
            let kept = database();
            let mut tails = Tails { most: 2, ..Tails::default() };
            let mut model: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
            let mut position = 0u64;
            let mut micros = 0i64;
            for (code, gap, drift, count) in steps {
                let mut commit = Vec::new();
                for _ in 0..count {
                    position += gap;
                    micros += drift;
                    let e = entry(position, 0, micros, 5, code);
                    model.entry(code).or_default().push(e);
                    commit.push((Code::Actor(code), e));
                }
                append(&db, &commit).unwrap();
                append_keeping(&kept, &commit, &mut tails).unwrap();
            }
            prop_assert_eq!(rows(&kept, ACTOR_POSTINGS), rows(&db, ACTOR_POSTINGS));
            let high = low.saturating_add(span);
            for (code, list) in &model {
                let window: Vec<Entry> = list
                    .iter()
                    .copied()
                    .filter(|e| e.position >= low && e.position <= high)
                    .collect();
                prop_assert_eq!(&read(&db, Code::Actor(*code), low, high, true), &window);
                let mut back = window.clone();
                back.reverse();
                prop_assert_eq!(&read(&db, Code::Actor(*code), low, high, false), &back);
            }
            let txn = db.begin_read().unwrap();
            let all: Vec<(Code, Entry)> = all_entries(&txn, Index::Actor)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
            let expected: Vec<(Code, Entry)> = model
                .iter()
                .flat_map(|(code, list)| list.iter().map(|e| (Code::Actor(*code), *e)))
                .collect();
            prop_assert_eq!(all, expected);
        }
    }
}
