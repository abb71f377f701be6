//! The intents a store holds, listed by id a page at a time from their chain heads (no event is
//! read): how many events each has and where its first and last are.
//!
//! Uses `model::error`, `model::event`, `engine::format`, `store::reads`, `store::snapshot`.

use redb::ReadableTable;

use crate::engine::format::{IntentHead, INTENTS};
use crate::model::error::Result;
use crate::model::event::Position;
use crate::store::reads::read_on_handles;
use crate::store::snapshot::Snapshot;

/// An intent's chain as its head records it, from [`Snapshot::intents`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntentInfo {
    /// The intent.
    pub intent_id: String,
    /// How many events its chain has (its last sequence).
    pub events: u64,
    /// The position of its first event.
    pub first_position: Position,
    /// The position of its last event.
    pub last_position: Position,
}

impl Snapshot {
    /// Up to `limit` intents in the order of their ids (bytewise), those after `after` when it
    /// is given: pass the last id of one page to get the next.
    ///
    /// ```
    /// use oidb::{EventType, Store};
    /// use serde_json::json;
    ///
    /// let store = Store::in_memory()?;
    /// for intent in ["b", "a", "c", "a"] {
    ///     store.log_event(intent, EventType::Comment, json!({}))?;
    /// }
    /// let first = store.intents(None, 2)?;
    /// assert_eq!((first[0].intent_id.as_str(), first[0].events), ("a", 2));
    /// let next = store.intents(Some(&first[1].intent_id), 2)?;
    /// assert_eq!(next.len(), 1);
    /// assert_eq!(next[0].intent_id, "c");
    /// # Ok::<(), oidb::Error>(())
    /// ```
    ///
    /// # Errors
    /// A storage error, or [`Error::Corrupt`](crate::Error::Corrupt) for a damaged head.
    pub fn intents(&self, after: Option<&str>, limit: usize) -> Result<Vec<IntentInfo>> {
        let table = self.txn().open_table(INTENTS)?;
        let mut found = Vec::new();
        for row in table.range(after.unwrap_or("")..)? {
            if found.len() == limit {
                break;
            }
            let (id, head) = row?;
            let id = id.value();
            if Some(id) == after {
                continue;
            }
            let head = IntentHead::decode(head.value(), id)?;
            found.push(IntentInfo {
                intent_id: id.to_owned(),
                events: head.last_sequence,
                first_position: head.first_position,
                last_position: head.last_position,
            });
        }
        Ok(found)
    }

    /// The intent `intent_id`'s chain, or `None` when it has no events.
    ///
    /// # Errors
    /// A storage error, or [`Error::Corrupt`](crate::Error::Corrupt) for a damaged head.
    pub fn intent(&self, intent_id: &str) -> Result<Option<IntentInfo>> {
        let table = self.txn().open_table(INTENTS)?;
        let Some(head) = table.get(intent_id)? else {
            return Ok(None);
        };
        let head = IntentHead::decode(head.value(), intent_id)?;
        Ok(Some(IntentInfo {
            intent_id: intent_id.to_owned(),
            events: head.last_sequence,
            first_position: head.first_position,
            last_position: head.last_position,
        }))
    }
}

read_on_handles! {
    /// Up to `limit` intents by id, after `after`: see [`IntentInfo`].
    fn intents(&self, after: Option<&str>, limit: usize) -> Result<Vec<IntentInfo>>;
    /// One intent's chain, if it has events: see [`IntentInfo`].
    fn intent(&self, intent_id: &str) -> Result<Option<IntentInfo>>;
}
