//! The peer: what a user would otherwise reach for. One SQLite table, WAL mode, indexes on
//! (intent, position), (type, position) and (time, position), prepared (cached) statements, and
//! the same payload bytes as oidb keeps, beside the chain's columns (stand-ins of their sizes,
//! see [`ChainColumns`]). A table without them is kept for its size alone.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::workload::{hash_text, ChainColumns, Generated, Workload};

/// `PRAGMA synchronous`: `Full` syncs the WAL at every commit (durable per commit); `Normal`
/// syncs it only at checkpoints (a power loss can lose the last commits).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Synchronous {
    Full,
    Normal,
}

/// SQLite's page cache, set to oidb's default (32 MiB) so reads compare like for like.
const CACHE_KIB: i64 = 32 * 1024;

const TABLE: &str = "
    CREATE TABLE IF NOT EXISTS events (
        position            INTEGER PRIMARY KEY,
        id                  BLOB NOT NULL,
        intent_id           TEXT NOT NULL,
        event_type          TEXT NOT NULL,
        actor               TEXT NOT NULL,
        created_at          INTEGER NOT NULL,
        payload             TEXT NOT NULL,
        sequence            INTEGER NOT NULL,
        previous_event_hash BLOB,
        event_hash          BLOB NOT NULL,
        trace_id            BLOB,
        parent_event_id     TEXT,
        level               INTEGER NOT NULL
    );
";

/// The indexes both tables have.
const INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS events_by_intent ON events (intent_id, position);
    CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, position);
    CREATE INDEX IF NOT EXISTS events_by_time ON events (created_at, position);
";

const INSERT: &str = "INSERT INTO events (id, intent_id, event_type, actor, created_at, payload,
                                          sequence, previous_event_hash, event_hash, level)
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The table without the chain's columns, for the size it takes beside the full one.
const MINIMAL_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS events (
        position   INTEGER PRIMARY KEY,
        id         BLOB NOT NULL,
        intent_id  TEXT NOT NULL,
        event_type TEXT NOT NULL,
        actor      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        payload    TEXT NOT NULL
    );
";

const MINIMAL_INSERT: &str =
    "INSERT INTO events (id, intent_id, event_type, actor, created_at, payload)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// An event read back. Its payload is kept as the stored JSON text, for the caller to parse when
/// it looks at it, as oidb keeps an event's payload in its binary form until it is looked at.
#[derive(Debug)]
pub struct SqlEvent {
    pub position: i64,
    pub id: Uuid,
    pub intent_id: String,
    pub event_type: String,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub payload: String,
    pub chain: ChainColumns,
}

pub fn open(path: &Path, synchronous: Synchronous) -> Connection {
    let conn = open_bare(path, synchronous);
    conn.execute_batch(TABLE).expect("table");
    conn.execute_batch(INDEXES).expect("indexes");
    conn
}

fn open_bare(path: &Path, synchronous: Synchronous) -> Connection {
    let conn = Connection::open(path).expect("open sqlite");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL mode");
    let sync = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .expect("synchronous");
    conn.pragma_update(None, "cache_size", -CACHE_KIB)
        .expect("cache_size");
    conn
}

/// A durable database of the minimal table, for its size.
pub fn open_minimal(path: &Path) -> Connection {
    let conn = open_bare(path, Synchronous::Full);
    conn.execute_batch(MINIMAL_TABLE).expect("table");
    conn.execute_batch(INDEXES).expect("indexes");
    conn
}

/// One row to insert, made outside the timed part.
pub struct Row<'w> {
    id: [u8; 16],
    intent_id: &'w str,
    event_type: &'w str,
    actor: &'w str,
    created_at: i64,
    payload: String,
    chain: ChainColumns,
}

pub fn row<'w>(workload: &'w Workload, g: &Generated) -> Row<'w> {
    Row {
        id: g.id.into_bytes(),
        intent_id: workload.intent(g.intent),
        event_type: workload.type_name(g.kind),
        actor: workload.actor(g.actor),
        created_at: g.created_at_micros,
        payload: g.payload_json.clone(),
        chain: ChainColumns::of(g),
    }
}

fn insert(conn: &Connection, row: &Row<'_>) {
    conn.prepare_cached(INSERT)
        .expect("prepare insert")
        .execute(params![
            row.id.as_slice(),
            row.intent_id,
            row.event_type,
            row.actor,
            row.created_at,
            row.payload,
            row.chain.sequence as i64,
            row.chain
                .previous_event_hash
                .as_ref()
                .map(<[u8; 32]>::as_slice),
            row.chain.event_hash.as_slice(),
            row.chain.level,
        ])
        .expect("insert");
}

/// Inserts into the minimal table, in one transaction.
pub fn append_batch_minimal(conn: &mut Connection, rows: &[Row<'_>]) {
    let txn = conn.transaction().expect("begin");
    for row in rows {
        txn.prepare_cached(MINIMAL_INSERT)
            .expect("prepare insert")
            .execute(params![
                row.id.as_slice(),
                row.intent_id,
                row.event_type,
                row.actor,
                row.created_at,
                row.payload
            ])
            .expect("insert");
    }
    txn.commit().expect("commit");
}

/// One insert in its own (autocommit) transaction.
pub fn append_one(conn: &Connection, row: &Row<'_>) {
    insert(conn, row);
}

/// Inserts in one transaction.
pub fn append_batch(conn: &mut Connection, rows: &[Row<'_>]) {
    let txn = conn.transaction().expect("begin");
    for row in rows {
        insert(&txn, row);
    }
    txn.commit().expect("commit");
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SqlEvent> {
    let id: [u8; 16] = row.get(1)?;
    let created_at: i64 = row.get(5)?;
    Ok(SqlEvent {
        position: row.get(0)?,
        id: Uuid::from_bytes(id),
        intent_id: row.get(2)?,
        event_type: row.get(3)?,
        actor: row.get(4)?,
        created_at: Workload::created_at(created_at),
        payload: row.get(6)?,
        chain: ChainColumns {
            sequence: row.get::<_, i64>(7)? as u64,
            previous_event_hash: row.get(8)?,
            event_hash: row.get(9)?,
            level: row.get(10)?,
        },
    })
}

const COLUMNS: &str = "position, id, intent_id, event_type, actor, created_at, payload, \
                       sequence, previous_event_hash, event_hash, level";

/// One intent's events, newest or oldest first, at most `limit`.
pub fn get_events(conn: &Connection, intent_id: &str, limit: usize, newest: bool) -> Vec<SqlEvent> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE intent_id = ?1 ORDER BY position {} LIMIT ?2",
        if newest { "DESC" } else { "ASC" }
    );
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    stmt.query_map(params![intent_id, limit as i64], read_row)
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Events of one type created in `[since, until)`, oldest first, at most `limit`.
pub fn type_in_window(
    conn: &Connection,
    event_type: &str,
    since: i64,
    until: i64,
    limit: usize,
) -> Vec<SqlEvent> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE event_type = ?1 AND created_at >= ?2 AND created_at < ?3
         ORDER BY position LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    stmt.query_map(params![event_type, since, until, limit as i64], read_row)
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Reads every event, in position order; returns how many.
pub fn scan(conn: &Connection) -> u64 {
    let sql = format!("SELECT {COLUMNS} FROM events ORDER BY position");
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    let mut count = 0;
    for event in stmt.query_map([], read_row).expect("query") {
        std::hint::black_box(event.expect("row"));
        count += 1;
    }
    count
}

/// Writes every event as a JSONL line of OpenIntent's wire form (the members and order oidb's
/// export writes, the chain's included), oldest first; returns how many. Strings are escaped by
/// serde_json and the payload's stored text is written as it is, as a user would.
pub fn export_jsonl(conn: &Connection, mut out: impl std::io::Write) -> u64 {
    use rusqlite::types::ValueRef;
    let sql = format!("SELECT {COLUMNS} FROM events ORDER BY position");
    let mut stmt = conn.prepare_cached(&sql).expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    let mut line = Vec::with_capacity(1024);
    let mut count = 0;
    fn text(value: ValueRef<'_>) -> &str {
        value.as_str().expect("a text column")
    }
    while let Some(row) = rows.next().expect("row") {
        line.clear();
        let id = Uuid::from_slice(row.get_ref(1).expect("id").as_blob().expect("id blob"))
            .expect("a 16-byte id");
        line.extend_from_slice(b"{\"id\":\"");
        line.extend_from_slice(
            id.hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        line.push(b'"');
        for (name, column) in [("intent_id", 2), ("event_type", 3), ("actor", 4)] {
            line.extend_from_slice(b",\"");
            line.extend_from_slice(name.as_bytes());
            line.extend_from_slice(b"\":");
            serde_json::to_writer(&mut line, text(row.get_ref(column).expect(name)))
                .expect("write");
        }
        line.extend_from_slice(b",\"payload\":");
        line.extend_from_slice(text(row.get_ref(6).expect("payload")).as_bytes());
        line.extend_from_slice(b",\"created_at\":\"");
        let created_at: i64 = row.get(5).expect("created_at");
        line.extend_from_slice(oidb::time::format(Workload::created_at(created_at)).as_bytes());
        line.extend_from_slice(b"\",\"sequence\":");
        line.extend_from_slice(
            row.get::<_, i64>(7)
                .expect("sequence")
                .to_string()
                .as_bytes(),
        );
        if let ValueRef::Blob(previous) = row.get_ref(8).expect("previous_event_hash") {
            let previous: &[u8; 32] = previous.try_into().expect("a 32-byte hash");
            line.extend_from_slice(b",\"previous_event_hash\":\"");
            line.extend_from_slice(hash_text(previous).as_bytes());
            line.push(b'"');
        }
        let hash: &[u8; 32] = row
            .get_ref(9)
            .expect("event_hash")
            .as_blob()
            .expect("hash blob")
            .try_into()
            .expect("a 32-byte hash");
        line.extend_from_slice(b",\"event_hash\":\"");
        line.extend_from_slice(hash_text(hash).as_bytes());
        line.extend_from_slice(b"\",\"position\":");
        line.extend_from_slice(
            row.get::<_, i64>(0)
                .expect("position")
                .to_string()
                .as_bytes(),
        );
        line.extend_from_slice(b"}\n");
        out.write_all(&line).expect("write");
        count += 1;
    }
    out.flush().expect("flush");
    count
}

/// The last position (0 when empty): what opening the log has to find out.
pub fn last_position(conn: &Connection) -> i64 {
    conn.query_row("SELECT max(position) FROM events", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .optional()
    .expect("max")
    .flatten()
    .unwrap_or(0)
}

/// The database and its WAL: (apparent size, disk space allocated), in bytes.
pub fn file_bytes(path: &Path) -> (u64, u64) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let (a, b) = crate::file_bytes(path);
    let (c, d) = crate::file_bytes(Path::new(&wal));
    (a + c, b + d)
}
