//! What a store holds: how many events, intents, types and actors, the time they span, and the
//! bytes they take.
//!
//! Uses `model::error`, `model::event`, `model::event_type`, `model::time`, `engine::format`,
//! `engine::postings`, `engine::wal`, `store::reads`, `store::snapshot`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use crate::engine::format::{
    self, NameKind, BY_TIME, CODES, EVENTS, INTENTS, META, META_CREATED_BY, META_FORMAT_VERSION,
};
use crate::engine::postings::{self, Code, Index};
use crate::model::error::Error;
use crate::model::error::Result;
use crate::model::event::Position;
use crate::model::event_type::EventType;
use crate::model::time;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// A summary of a store, from [`Store::stats`](crate::Store::stats) or
/// [`ReadOnlyStore::stats`](crate::ReadOnlyStore::stats).
///
/// Counts by type and by actor come from reading the type and actor indexes whole (small rows,
/// no records), so they take time in proportion to the number of events.
///
/// ```
/// use oidb::{EventType, Store};
/// use serde_json::json;
///
/// let store = Store::in_memory()?;
/// store.log_event("intent-42", EventType::IntentCreated, json!({"title": "Research"}))?;
/// store.log_event("intent-42", EventType::Comment, json!({"message": "hi"}))?;
/// store.log_event("intent-43", EventType::Comment, json!({"message": "hello"}))?;
///
/// let stats = store.stats()?;
/// assert_eq!((stats.events, stats.intents), (3, 2));
/// assert_eq!(stats.event_types[0], (EventType::Comment, 2));
/// assert_eq!(stats.actors, vec![("oidb".to_string(), 3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The file (or the name an in-memory store goes by).
    pub path: PathBuf,
    /// The file's format version.
    pub format_version: u32,
    /// The store's id, made when the file was created.
    pub store_id: Option<String>,
    /// The oidb version that created the file.
    pub created_by: Option<String>,
    /// How many events are stored.
    pub events: u64,
    /// The position of the last event (0 when there is none).
    pub last_position: Position,
    /// How many intents have events.
    pub intents: u64,
    /// Every event type present with its count, most frequent first (ties by name).
    pub event_types: Vec<(EventType, u64)>,
    /// Every actor with its count of events, most frequent first (ties by name).
    pub actors: Vec<(String, u64)>,
    /// The earliest `created_at` of any event.
    pub first_event_at: Option<DateTime<Utc>>,
    /// The latest `created_at` of any event.
    pub last_event_at: Option<DateTime<Utc>>,
    /// The size of the file on disk; `None` for a store that is not a file.
    pub file_bytes: Option<u64>,
    /// Bytes of live data in the tables: keys, values and the tree pages above them. The rest of
    /// the file is free space that `oidb::compact` can give back, or that later appends reuse.
    pub live_bytes: u64,
    /// Bytes lost to partly filled pages inside the tables.
    pub fragmented_bytes: u64,
    /// Write-ahead logs kept beside the file (`<file>-wal.damaged`, …) because, when the store
    /// was opened after a crash, an entry in one was damaged with intact entries after it: the
    /// store was opened with the events before the damage, and events acknowledged after it may
    /// be missing. Nothing removes these files; see docs/format.md.
    pub damaged_logs: Vec<PathBuf>,
}

impl Snapshot {
    /// What the store holds: see [`Stats`].
    ///
    /// # Errors
    /// A storage error, or [`Error::Corrupt`](crate::Error::Corrupt) when an index names a type or actor it does not define.
    pub fn stats(&self) -> Result<Stats> {
        read(self.txn(), self.path())
    }
}

read_on_handles! {
    /// What the store holds: see [`Stats`].
    fn stats(&self) -> Result<Stats>;
}

/// Reads the summary of the store `txn` sees; `path` names the file.
pub(crate) fn read(txn: &ReadTransaction, path: &Path) -> Result<Stats> {
    let meta = txn.open_table(META)?;
    let text = |key: &str| -> Result<Option<String>> {
        Ok(meta
            .get(key)?
            .map(|v| String::from_utf8_lossy(v.value()).into_owned()))
    };
    let format_version = meta
        .get(META_FORMAT_VERSION)?
        .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
        .map_or(0, u32::from_le_bytes);
    let events = txn.open_table(EVENTS)?;
    let by_time = txn.open_table(BY_TIME)?;
    let first_event_at = by_time
        .first()?
        .and_then(|(k, _)| time::from_micros(k.value().0));
    let last_event_at = by_time
        .last()?
        .and_then(|(k, _)| time::from_micros(k.value().0));
    let event_types = counts(txn, Index::Type, NameKind::EventType)?
        .into_iter()
        .map(|(name, count)| (EventType::parse(&name), count))
        .collect();
    Ok(Stats {
        path: path.to_path_buf(),
        format_version,
        store_id: format::read_store_id(txn)?,
        created_by: text(META_CREATED_BY)?,
        events: events.len()?,
        last_position: format::last_position(&events)?,
        intents: txn.open_table(INTENTS)?.len()?,
        event_types,
        actors: counts(txn, Index::Actor, NameKind::Actor)?,
        first_event_at,
        last_event_at,
        file_bytes: std::fs::metadata(path).ok().map(|m| m.len()),
        live_bytes: table_bytes(txn, |s| s.stored_bytes() + s.metadata_bytes())?,
        fragmented_bytes: table_bytes(txn, redb::TableStats::fragmented_bytes)?,
        damaged_logs: std::fs::canonicalize(path)
            .map(|real| crate::engine::wal::damaged_beside(&crate::engine::wal::path_for(&real)))
            .unwrap_or_default(),
    })
}

/// Counts the entries of the type or actor index by code, and names each code; most first.
fn counts(txn: &ReadTransaction, index: Index, kind: NameKind) -> Result<Vec<(String, u64)>> {
    let by_code = postings::counts(txn, index)?;
    let codes = txn.open_table(CODES)?;
    let mut named = Vec::with_capacity(by_code.len());
    for (code, (count, position)) in by_code {
        let (Code::Type(code) | Code::Actor(code)) = code else {
            continue;
        };
        let name = codes
            .get((kind as u8, code))?
            .ok_or_else(|| Error::Corrupt {
                position,
                reason: format!("its index row names {kind:?} code {code}, which is not defined"),
            })?
            .value()
            .to_owned();
        named.push((name, count));
    }
    named.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(named)
}

/// Sums one measure over every table in the file.
fn table_bytes(txn: &ReadTransaction, measure: impl Fn(&redb::TableStats) -> u64) -> Result<u64> {
    let mut total = 0;
    for handle in txn.list_tables()? {
        let table = txn.open_untyped_table(handle)?;
        total += measure(&table.stats()?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::model::event::NewEvent;
    use crate::model::event_type::EventType;
    use crate::store::handle::Store;

    #[test]
    fn counts_by_type_and_actor_and_the_time_span() {
        let store = Store::in_memory().unwrap();
        let empty = store.stats().unwrap();
        assert_eq!(
            (empty.events, empty.intents, empty.last_position),
            (0, 0, 0)
        );
        assert!(empty.event_types.is_empty() && empty.first_event_at.is_none());
        assert_eq!(empty.format_version, crate::engine::format::FORMAT_VERSION);
        assert!(empty.created_by.unwrap().starts_with("oidb "));

        let at = |s: &str| crate::model::time::parse(s).unwrap();
        let events = [
            (
                "a",
                EventType::LlmRequestStarted,
                "agent-1",
                "2026-01-01T00:00:02Z",
            ),
            (
                "a",
                EventType::LlmRequestCompleted,
                "agent-1",
                "2026-01-01T00:00:03Z",
            ),
            (
                "b",
                EventType::LlmRequestStarted,
                "agent-2",
                "2026-01-01T00:00:01Z",
            ),
            ("b", EventType::Comment, "agent-2", "2026-01-01T00:00:09Z"),
            (
                "c",
                EventType::LlmRequestStarted,
                "agent-2",
                "2026-01-01T00:00:04Z",
            ),
        ];
        for (intent, kind, actor, t) in events {
            store
                .append(
                    NewEvent::new(intent, kind, actor)
                        .payload(json!({}))
                        .created_at(at(t)),
                )
                .unwrap();
        }
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.events, stats.intents, stats.last_position),
            (5, 3, 5)
        );
        assert_eq!(
            stats.event_types,
            vec![
                (EventType::LlmRequestStarted, 3),
                (EventType::Comment, 1),
                (EventType::LlmRequestCompleted, 1),
            ]
        );
        assert_eq!(
            stats.actors,
            vec![("agent-2".to_owned(), 3), ("agent-1".to_owned(), 2)]
        );
        assert_eq!(stats.first_event_at, Some(at("2026-01-01T00:00:01Z")));
        assert_eq!(stats.last_event_at, Some(at("2026-01-01T00:00:09Z")));
        assert!(stats.live_bytes > empty.live_bytes);
        assert_eq!(stats.file_bytes, None);
    }
}
