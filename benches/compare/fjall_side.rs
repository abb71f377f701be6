//! A second peer: fjall 3 (an LSM-tree key-value store in Rust), holding what oidb's event log
//! holds as keyspaces in one database directory:
//!
//! - `events`: big-endian u64 position → the event's fields;
//! - `by_intent`: intent id bytes + 0x00 + big-endian position → nothing;
//! - `by_type`: type name bytes + 0x00 + big-endian position → nothing;
//! - `by_time`: big-endian created_at (sign bit flipped, so it sorts) + big-endian position →
//!   nothing.
//!
//! An event and its three index entries go in the same write batch, so they commit together.
//! Positions start at 1, as oidb's and SQLite's do.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sqlite_side::SqlEvent;
use crate::workload::{ChainColumns, Generated, Workload};

/// fjall's block cache, set to oidb's default (32 MiB; fjall's default too) so reads compare
/// like for like.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// An event's value in the `events` keyspace: postcard of the same fields the SQLite side's
/// columns carry (id as 16 bytes, intent id, type and actor as text, created_at in microseconds,
/// the payload as its JSON text, the bytes SQLite stores) and the chain's columns.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    id: Uuid,
    intent_id: &'a str,
    event_type: &'a str,
    actor: &'a str,
    created_at: i64,
    payload: &'a str,
    sequence: u64,
    previous_event_hash: Option<[u8; 32]>,
    event_hash: [u8; 32],
    level: u8,
}

/// One event to append, made outside the timed part: its encoded value and what its index keys
/// need (the position is given when it is appended).
pub struct Row<'w> {
    value: Vec<u8>,
    intent_id: &'w str,
    event_type: &'w str,
    created_at: i64,
}

pub fn row<'w>(workload: &'w Workload, g: &Generated) -> Row<'w> {
    let intent_id = workload.intent(g.intent);
    let event_type = workload.type_name(g.kind);
    let chain = ChainColumns::of(g);
    let stored = Stored {
        id: g.id,
        intent_id,
        event_type,
        actor: workload.actor(g.actor),
        created_at: g.created_at_micros,
        payload: &g.payload_json,
        sequence: chain.sequence,
        previous_event_hash: chain.previous_event_hash,
        event_hash: chain.event_hash,
        level: chain.level,
    };
    Row {
        value: postcard::to_stdvec(&stored).expect("encode event"),
        intent_id,
        event_type,
        created_at: g.created_at_micros,
    }
}

/// The database, its keyspaces and the next position to give.
pub struct Fjall {
    db: Database,
    events: Keyspace,
    by_intent: Keyspace,
    by_type: Keyspace,
    by_time: Keyspace,
    /// Held while a batch takes its positions and commits, so commits land in position order.
    next: Mutex<u64>,
}

fn prefixed(prefix: &[u8], position: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 9);
    key.extend_from_slice(prefix);
    key.push(0);
    key.extend_from_slice(&position.to_be_bytes());
    key
}

fn time_key(created_at: i64, position: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&((created_at as u64) ^ (1 << 63)).to_be_bytes());
    key[8..].copy_from_slice(&position.to_be_bytes());
    key
}

fn position_of(index_key: &[u8]) -> u64 {
    let tail: [u8; 8] = index_key[index_key.len() - 8..]
        .try_into()
        .expect("index keys end in a position");
    u64::from_be_bytes(tail)
}

impl Fjall {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: &Path) -> Fjall {
        let db = Database::builder(path)
            .cache_size(CACHE_BYTES)
            .open()
            .expect("open fjall");
        let keyspace = |name| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .expect("open keyspace")
        };
        let (events, by_intent, by_type, by_time) = (
            keyspace("events"),
            keyspace("by_intent"),
            keyspace("by_type"),
            keyspace("by_time"),
        );
        let last = events
            .last_key_value()
            .map_or(0, |kv| position_of(&kv.key().expect("read the last key")));
        Fjall {
            db,
            events,
            by_intent,
            by_type,
            by_time,
            next: Mutex::new(last + 1),
        }
    }

    fn add(&self, batch: &mut OwnedWriteBatch, position: u64, row: &Row<'_>) {
        batch.insert(&self.events, position.to_be_bytes(), row.value.as_slice());
        batch.insert(
            &self.by_intent,
            prefixed(row.intent_id.as_bytes(), position),
            [],
        );
        batch.insert(
            &self.by_type,
            prefixed(row.event_type.as_bytes(), position),
            [],
        );
        batch.insert(&self.by_time, time_key(row.created_at, position), []);
    }

    /// Writes `rows` in one write batch and, when `durable`, waits until they are on disk.
    pub fn append(&self, rows: &[Row<'_>], durable: bool) {
        {
            let mut next = self.next.lock();
            let mut batch = OwnedWriteBatch::with_capacity(self.db.clone(), rows.len() * 4);
            for row in rows {
                self.add(&mut batch, *next, row);
                *next += 1;
            }
            batch.commit().expect("commit batch");
        }
        if durable {
            // The commit above only hands the batch to fjall's journal (and the OS); this syncs
            // the journal to disk, which is what makes the events durable, as SQLite FULL's
            // fsync of its WAL at each commit does.
            self.db.persist(PersistMode::SyncData).expect("persist");
        }
    }

    fn event(&self, position: u64) -> SqlEvent {
        let value = self
            .events
            .get(position.to_be_bytes())
            .expect("get event")
            .expect("an indexed event exists");
        decode(position, &value)
    }

    /// One intent's events, newest or oldest first, at most `limit`: a range over the intent
    /// index, then a point get of each event.
    pub fn get_events(&self, intent_id: &str, limit: usize, newest: bool) -> Vec<SqlEvent> {
        let mut prefix = intent_id.as_bytes().to_vec();
        prefix.push(0);
        let keys = self.by_intent.prefix(&prefix);
        let positions: Vec<u64> = if newest {
            keys.rev()
                .take(limit)
                .map(|kv| position_of(&kv.key().expect("index key")))
                .collect()
        } else {
            keys.take(limit)
                .map(|kv| position_of(&kv.key().expect("index key")))
                .collect()
        };
        positions.into_iter().map(|p| self.event(p)).collect()
    }

    /// Reads every event, in position order, decoding each; returns how many.
    pub fn scan(&self) -> u64 {
        let mut count = 0;
        for kv in self.events.iter() {
            let (key, value) = kv.into_inner().expect("read event");
            std::hint::black_box(decode(position_of(&key), &value));
            count += 1;
        }
        count
    }
}

fn decode(position: u64, value: &[u8]) -> SqlEvent {
    let stored: Stored<'_> = postcard::from_bytes(value).expect("decode event");
    SqlEvent {
        position: position as i64,
        id: stored.id,
        intent_id: stored.intent_id.to_owned(),
        event_type: stored.event_type.to_owned(),
        actor: stored.actor.to_owned(),
        created_at: Workload::created_at(stored.created_at),
        payload: stored.payload.to_owned(),
        chain: ChainColumns {
            sequence: stored.sequence,
            previous_event_hash: stored.previous_event_hash,
            event_hash: stored.event_hash,
            level: stored.level,
        },
    }
}

/// Every file under the database's directory: (apparent size, disk space allocated), in bytes.
pub fn dir_bytes(path: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(entries) = std::fs::read_dir(path) else {
        return crate::file_bytes(path);
    };
    for entry in entries.flatten() {
        let (len, disk) = dir_bytes(&entry.path());
        total.0 += len;
        total.1 += disk;
    }
    total
}
