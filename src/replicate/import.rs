//! A store rebuilt from a stream the replicator wrote: one store's messages read back with an
//! ordered consumer, put in their source positions' order, and imported as chained events, so
//! each chain is verified as it is written and every hash is kept.
//!
//! Uses `model::error`, `model::event`, `store::handle`, `store::import`,
//! `store::side_checkpoint`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use futures_util::StreamExt;

use super::subject::{decode_token, encode_token, prefix_problem};
use super::{Error, POSITION_HEADER};
use crate::model::event::Position;
use crate::store::handle::Store;
use crate::store::import::ImportReport;
use crate::store::side_checkpoint::name_problem;

/// The longest wait for the next message of a stream being read back.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`import_stream`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamImport {
    /// The source store's id.
    pub store_id: String,
    /// Messages of that store read from the stream (a message published twice outside the
    /// duplicate window is read twice and imported once).
    pub messages: u64,
    /// What the import into the store did.
    pub report: ImportReport,
}

/// Imports into `store` the events one store replicated into the JetStream stream `stream` at
/// `nats` under `prefix`: every event of the store `store_id`, or of the only store the stream
/// holds when it is `None`. The events are imported in their source positions' order as chained
/// events: each must continue its intent's chain and hash to its `event_hash`, so the store
/// written verifies and keeps every hash of the source; events already there are skipped, so an
/// import can be run again. The import is one transaction: on any error nothing is written.
///
/// # Errors
/// [`Error::Parameter`] for a bad name, an unreachable server, a missing stream, or (with no
/// `store_id`) a stream that holds several stores; [`Error::Nats`] for messages that are not a
/// replicator's or that disagree; [`Error::Store`] when the events do not import (a chain broken,
/// a hash that does not match).
pub async fn import_stream(
    store: &Store,
    nats: &str,
    stream: &str,
    prefix: &str,
    store_id: Option<&str>,
) -> Result<StreamImport, Error> {
    let bad = |parameter, reason: String| Error::Parameter { parameter, reason };
    if let Some(reason) = name_problem(stream) {
        return Err(bad("--stream", reason.to_owned()));
    }
    if let Some(reason) = prefix_problem(prefix) {
        return Err(bad("--subject-prefix", reason.to_owned()));
    }
    if store_id == Some("") {
        return Err(bad("--store-id", "it is empty".to_owned()));
    }
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(nats)
        .await
        .map_err(|e| bad("--nats", format!("cannot connect to {nats}: {e}")))?;
    let context = jetstream::new(client);
    let source = context
        .get_stream(stream)
        .await
        .map_err(|e| match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                bad("--stream", format!("{nats} has no stream {stream}"))
            }
            _ => Error::Nats(format!("cannot look up the stream {stream}: {e}")),
        })?;
    let filter = match store_id {
        Some(id) => format!("{prefix}.{}.>", encode_token(id)),
        None => format!("{prefix}.>"),
    };
    let consumer = source
        .create_consumer(OrderedConfig {
            filter_subject: filter.clone(),
            deliver_policy: DeliverPolicy::All,
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| Error::Nats(format!("cannot read {filter} from {stream}: {e}")))?;
    let (stores, messages) = read_stores(consumer, stream, &filter, prefix).await?;
    let mut stores = stores;
    if stores.len() > 1 {
        let ids: Vec<&str> = stores.keys().map(String::as_str).collect();
        return Err(bad(
            "--store-id",
            format!(
                "the stream {stream} holds the events of {} stores ({}); name one",
                ids.len(),
                ids.join(", ")
            ),
        ));
    }
    let (source_id, events) = stores
        .pop_first()
        .unwrap_or_else(|| (store_id.unwrap_or_default().to_owned(), BTreeMap::new()));
    let mut jsonl = Vec::new();
    for payload in events.values() {
        jsonl.extend_from_slice(payload);
        jsonl.push(b'\n');
    }
    let report = store.import_json_named(jsonl.as_slice(), &format!("stream {stream}"))?;
    Ok(StreamImport {
        store_id: source_id,
        messages,
        report,
    })
}

/// Every message of an ordered consumer, until none is pending: each store's events by position,
/// and how many messages were read.
async fn read_stores(
    consumer: async_nats::jetstream::consumer::Consumer<OrderedConfig>,
    stream: &str,
    filter: &str,
    prefix: &str,
) -> Result<(BTreeMap<String, BTreeMap<Position, Bytes>>, u64), Error> {
    let mut pending = consumer.cached_info().num_pending;
    let mut stores: BTreeMap<String, BTreeMap<Position, Bytes>> = BTreeMap::new();
    let mut messages = 0u64;
    let mut read = consumer
        .messages()
        .await
        .map_err(|e| Error::Nats(format!("cannot read {filter} from {stream}: {e}")))?;
    while pending > 0 {
        let message = match tokio::time::timeout(READ_TIMEOUT, read.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => return Err(Error::Nats(format!("reading {stream}: {e}"))),
            Ok(None) => return Err(Error::Nats(format!("reading {stream}: it ended early"))),
            Err(_) => {
                return Err(Error::Nats(format!(
                "reading {stream}: no message for {READ_TIMEOUT:?} while {pending} more were due"
            )))
            }
        };
        pending = message
            .info()
            .map_err(|e| Error::Nats(format!("reading {stream}: {e}")))?
            .pending;
        messages += 1;
        let (id, position) = locate(&message.subject, message.headers.as_ref(), prefix)?;
        let events = stores.entry(id).or_default();
        match events.get(&position) {
            Some(earlier) if *earlier != message.payload => {
                return Err(Error::Nats(format!(
                    "{}: two messages for position {position} with different events",
                    message.subject
                )))
            }
            Some(_) => {}
            None => {
                events.insert(position, message.payload.clone());
            }
        }
    }
    Ok((stores, messages))
}

/// The store id and position of a message the replicator published.
fn locate(
    subject: &str,
    headers: Option<&async_nats::HeaderMap>,
    prefix: &str,
) -> Result<(String, Position), Error> {
    let not_ours = |why: &str| {
        Error::Nats(format!(
            "{subject}: not a message of oidb's replicator ({why})"
        ))
    };
    let rest = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or_else(|| not_ours("outside the subject prefix"))?;
    let (store_token, intent_token) = rest
        .split_once('.')
        .ok_or_else(|| not_ours("no store and intent tokens"))?;
    let store_id = decode_token(store_token).ok_or_else(|| not_ours("a bad store token"))?;
    decode_token(intent_token).ok_or_else(|| not_ours("a bad intent token"))?;
    let position = headers
        .and_then(|h| h.get(POSITION_HEADER))
        .and_then(|v| v.as_str().parse::<Position>().ok())
        .ok_or_else(|| not_ours(&format!("no {POSITION_HEADER} header")))?;
    Ok((store_id, position))
}
