//! What every request handler shares: the store (written, or only read beside another process
//! that writes it) and the API key, the way store calls (which
//! block) run off the async threads, and the steps several routes take: reading a JSON body, the
//! acting agent, reading an intent, the intents known to exist, and a change of an intent
//! checked against its version.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `store::handle`, `store::read_only`,
//! `store::snapshot`, `subscribe::hub`, `server::answer`, `server::auth`, `server::intents`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use axum::body::Bytes;
use axum::http::HeaderMap;

use crate::model::error::Error;
use crate::model::event::NewEvent;
use crate::model::filter::Query;
use crate::server::answer::ApiError;
use crate::server::auth::ApiKey;
use crate::server::intents::{self, Intent};
use crate::store::follow::Follow;
use crate::store::handle::Store;
use crate::store::read_only::ReadOnlyStore;
use crate::store::snapshot::Snapshot;
use crate::subscribe::hub::{Delivery, Filter, Start, Subscription};

/// The store a server serves: its own writer, or a reader of a file another process writes.
#[derive(Clone, Debug)]
pub(crate) enum Backing {
    /// The server writes the store (and reads it).
    Writer(Store),
    /// The server only reads: write routes answer 405.
    Reader(Arc<ReadOnlyStore>),
}

impl Backing {
    /// The store as it is now.
    pub(crate) fn snapshot(&self) -> crate::model::error::Result<Snapshot> {
        match self {
            Backing::Writer(store) => store.snapshot(),
            Backing::Reader(store) => store.snapshot(),
        }
    }

    /// Events matching `filter` from `start` on, as they commit (here or in the writer's
    /// process).
    pub(crate) fn subscribe(
        &self,
        filter: Filter,
        start: Start,
    ) -> crate::model::error::Result<Feed> {
        Ok(match self {
            Backing::Writer(store) => Feed::Here(Box::new(store.subscribe(filter, start)?)),
            Backing::Reader(store) => Feed::Followed(Box::new(store.subscribe(filter, start)?)),
        })
    }
}

/// New events, from a subscription in the writer or a reader following the file.
pub(crate) enum Feed {
    Here(Box<Subscription>),
    Followed(Box<Follow>),
}

impl Feed {
    /// The next delivery, waiting at most `timeout`.
    pub(crate) fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> crate::model::error::Result<Option<Delivery>> {
        match self {
            Feed::Here(subscription) => subscription.recv_timeout(timeout),
            Feed::Followed(follow) => follow.recv_timeout(timeout),
        }
    }
}

/// What every handler shares: the store.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: Backing,
    pub(crate) key: ApiKey,
    pub(crate) known: KnownIntents,
}

impl Shared {
    pub(crate) fn new(store: Backing, api_key: Option<String>) -> Shared {
        Shared {
            store,
            key: ApiKey(api_key.map(Arc::from)),
            known: KnownIntents::default(),
        }
    }

    /// The store to write, or 405 when this server only reads the file.
    pub(crate) fn writer(&self) -> Result<Store, ApiError> {
        match &self.store {
            Backing::Writer(store) => Ok(store.clone()),
            Backing::Reader(store) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "this server only reads {}, which another process writes: send writes to \
                     that process (or serve the file when nothing else has it open)",
                    store.path().display()
                ),
            )),
        }
    }
}

/// Runs a store call on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// A JSON body of type `T`, or 422 saying which member is wrong (serde names it).
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the request body is not what this route takes: {e}"),
        )
        .field("body")
    })
}

/// Who acts: the SDK's `X-Agent-ID`, else the server.
pub(crate) fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-agent-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("oidb-serve")
        .to_owned()
}

/// The intent `intent_id`, or 404.
pub(crate) fn read_intent(store: &Backing, intent_id: &str) -> Result<Intent, ApiError> {
    intent_in(&store.snapshot()?, intent_id)
}

/// The intent `intent_id` as `snapshot` has it, or 404.
pub(crate) fn intent_in(snapshot: &Snapshot, intent_id: &str) -> Result<Intent, ApiError> {
    intents::read(snapshot, intent_id)?
        .map(|read| read.intent)
        .ok_or_else(|| ApiError::no_intent(intent_id))
}

/// The intents this server has seen in its store, so that an append to one need not read the
/// store first: a read in the writer's process publishes the appends before it (a durable
/// commit of the file, two syncs), which made every `POST .../events` cost a commit of its own.
/// The log only grows, so an intent once seen stays there.
#[derive(Clone, Default)]
pub(crate) struct KnownIntents(Arc<parking_lot::Mutex<HashSet<String>>>);

impl KnownIntents {
    /// Whether `store` holds an event of `intent_id`; the store is read only for an intent not
    /// seen before.
    pub(crate) fn check(&self, store: &Store, intent_id: &str) -> Result<bool, ApiError> {
        if self.0.lock().contains(intent_id) {
            return Ok(true);
        }
        let found = store
            .snapshot()?
            .query(&Query::new().intent(intent_id).limit(1))?;
        if found.events.is_empty() {
            return Ok(false);
        }
        self.0.lock().insert(intent_id.to_owned());
        Ok(true)
    }
}

/// The version in `If-Match`, which the state and status routes require.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<u64, ApiError> {
    let header = headers
        .get("if-match")
        .ok_or_else(|| ApiError::bad("If-Match", "If-Match header required"))?;
    header
        .to_str()
        .ok()
        .map(|v| v.trim().trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::bad(
                "If-Match",
                "If-Match must be the intent's version, a number",
            )
        })
}

/// Appends the event `make` builds from the intent as read, if its version is still `version`:
/// the append expects the chain's last sequence as read, so nothing slips in between; an event
/// that did (a log entry, not a change of state) is read past and the append tried again.
pub(crate) fn change_intent(
    store: &Store,
    intent_id: &str,
    version: u64,
    make: impl Fn(&Intent) -> Result<NewEvent, ApiError>,
) -> Result<Intent, ApiError> {
    loop {
        let snapshot = store.snapshot()?;
        let read =
            intents::read(&snapshot, intent_id)?.ok_or_else(|| ApiError::no_intent(intent_id))?;
        drop(snapshot);
        if read.intent.version != version {
            return Err(ApiError::new(StatusCode::CONFLICT, "Version conflict")
                .with("current_version", read.intent.version.into()));
        }
        let event = make(&read.intent)?.expect_last_sequence(read.last_sequence);
        match store.append(event) {
            Ok(_) => return intent_in(&store.snapshot()?, intent_id),
            Err(Error::WrongExpectedSequence { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
}
