//! The index block layout of docs/format.md ("Postings blocks"), written out here apart from the
//! library's, for the tests that damage stores on purpose: they take entries out of blocks and
//! put made-up blocks in, as a damaged file would have them.

#![allow(dead_code)]

use redb::{ReadableTable, TableDefinition, WriteTransaction};

pub const INTENT_POSTINGS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("intent_postings");
pub const TYPE_POSTINGS: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("type_postings");
pub const ACTOR_POSTINGS: TableDefinition<(u32, u64), &[u8]> =
    TableDefinition::new("actor_postings");
pub const TRACE_POSTINGS: TableDefinition<(u128, u64), &[u8]> =
    TableDefinition::new("trace_postings");

/// Which index a block belongs to: what its entries leave out or add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Intent,
    Type,
    Actor,
    Trace,
}

/// One entry; the type (in type blocks) and actor (in actor blocks) are the key's, read as 0
/// here; the sequence is 0 outside intent blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub position: u64,
    pub micros: i64,
    pub type_code: u32,
    pub actor_code: u32,
    pub level: u8,
    pub sequence: u64,
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn decode(kind: Kind, bytes: &[u8]) -> Vec<Entry> {
    let count = bytes[0];
    let mut at = 1;
    let mut entries: Vec<Entry> = Vec::new();
    for _ in 0..count {
        let previous = entries.last().copied();
        let position = take(bytes, &mut at) + previous.map_or(0, |p| p.position);
        let micros = unzigzag(take(bytes, &mut at)) + previous.map_or(0, |p| p.micros);
        let type_code = if kind == Kind::Type {
            0
        } else {
            take(bytes, &mut at) as u32
        };
        let actor_code = if kind == Kind::Actor {
            0
        } else {
            take(bytes, &mut at) as u32
        };
        let level = bytes[at];
        at += 1;
        let sequence = if kind == Kind::Intent {
            take(bytes, &mut at) + previous.map_or(0, |p| p.sequence)
        } else {
            0
        };
        entries.push(Entry {
            position,
            micros,
            type_code,
            actor_code,
            level,
            sequence,
        });
    }
    assert_eq!(at, bytes.len(), "a block ends after its last entry");
    entries
}

pub fn encode(kind: Kind, entries: &[Entry]) -> Vec<u8> {
    let mut out = vec![entries.len() as u8];
    let mut previous: Option<Entry> = None;
    for e in entries {
        put(&mut out, e.position - previous.map_or(0, |p| p.position));
        put(
            &mut out,
            zigzag(e.micros - previous.map_or(0, |p| p.micros)),
        );
        if kind != Kind::Type {
            put(&mut out, u64::from(e.type_code));
        }
        if kind != Kind::Actor {
            put(&mut out, u64::from(e.actor_code));
        }
        out.push(e.level);
        if kind == Kind::Intent {
            put(&mut out, e.sequence - previous.map_or(0, |p| p.sequence));
        }
        previous = Some(*e);
    }
    out
}

/// Takes the entries at `positions` out of every block of `table`: a block that loses its first
/// entry moves to its new first's key, one left empty goes.
fn remove<K>(
    txn: &WriteTransaction,
    table: TableDefinition<(K, u64), &[u8]>,
    kind: Kind,
    positions: &[u64],
) where
    K: redb::Key + Copy + 'static + for<'a> redb::Value<SelfType<'a> = K>,
{
    let mut table = txn.open_table(table).unwrap();
    let blocks: Vec<((K, u64), Vec<u8>)> = table
        .range(..)
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect();
    for ((code, first), bytes) in blocks {
        let entries = decode(kind, &bytes);
        let kept: Vec<Entry> = entries
            .iter()
            .copied()
            .filter(|e| !positions.contains(&e.position))
            .collect();
        if kept.len() == entries.len() {
            continue;
        }
        table.remove((code, first)).unwrap();
        if let Some(head) = kept.first() {
            let key = if kind == Kind::Intent {
                head.sequence
            } else {
                head.position
            };
            table
                .insert((code, key), encode(kind, &kept).as_slice())
                .unwrap();
        }
    }
}

/// Takes the intent index's entries at `positions` out.
pub fn remove_intent_entries(txn: &WriteTransaction, positions: &[u64]) {
    remove(txn, INTENT_POSTINGS, Kind::Intent, positions);
}

/// Takes the type index's entries at `positions` out.
pub fn remove_type_entries(txn: &WriteTransaction, positions: &[u64]) {
    remove(txn, TYPE_POSTINGS, Kind::Type, positions);
}
