//! # oidb
//!
//! An embedded, single-file event store that gives an AI agent its own audit trail, with no
//! server and no network: what SQLite is to a database server, oidb is to an OpenIntent
//! event-log server.
//!
//! - **Append** OpenIntent events from many threads, durably, each intent's events chained by
//!   RFC-0019 hashes.
//! - **Query** them by intent, type (exact or prefix), time, actor, trace and level, in either
//!   order, a page at a time.
//! - **Import and export** them as OpenIntent JSON, with hashes that survive the trip.
//! - **Costs and traces**: a cost ledger with prices and budgets, usage analytics, trace trees,
//!   and OTLP export to any OpenTelemetry back end ([`costs`], [`trace`]).
//! - **Replication** into NATS JetStream, for a fleet's audit trails in one place, and back
//!   ([`replicate`], behind the `nats` feature); traces shipped to an OpenTelemetry back end
//!   over OTLP/HTTP as their spans finish ([`ship`], behind the `otlp` feature).
//!
//! ```
//! use oidb::{EventFilter, EventType, NewEvent, Query, Store};
//! use serde_json::json;
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("agent.oidb");
//! let store = Store::builder().actor("agent-research").open(&path)?;
//! store.log_event("intent-42", EventType::IntentCreated, json!({"title": "Research"}))?;
//! store.append(
//!     NewEvent::new("intent-42", EventType::Comment, "agent-research")
//!         .payload(json!({"message": "Starting research phase"})),
//! )?;
//!
//! let comments = store.get_events("intent-42", EventFilter::new().event_type(EventType::Comment))?;
//! assert_eq!(comments.len(), 1);
//! assert_eq!(comments[0].sequence, 2);
//!
//! let mut jsonl = Vec::new();
//! store.export_json(&mut jsonl, &Query::new())?;
//! assert_eq!(String::from_utf8(jsonl)?.lines().count(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::all, clippy::pedantic)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]
// Positions and counts are u64 in the file and usize in memory; both are 64-bit where oidb runs.
#![allow(clippy::cast_possible_truncation)]
// Errors are documented on the `Error` type; repeating every variant on each method adds noise.
#![allow(clippy::missing_errors_doc)]
// A two-armed `match` on an Option often reads better than `if let … else`.
#![allow(clippy::single_match_else)]

// The floors, each importing only from those listed before it (see docs/design.md).
mod audit;
pub mod costs;
mod engine;
mod model;
pub mod observe;
mod proof;
#[cfg(feature = "nats")]
pub mod replicate;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "otlp")]
pub mod ship;
mod store;
mod subscribe;
pub mod trace;

// Test support, outside the public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod internals;

pub use audit::{checkpoint, verify};
pub use model::time;
#[cfg(feature = "signatures")]
pub use proof::signature;
pub use proof::{chain, jcs, merkle};

pub use audit::checkpoint::{CheckpointScope, ConsistencyProof, LogCheckpoint};
pub use audit::verify::{ChainVerification, StoreVerification};
pub use engine::format::FORMAT_VERSION;
pub use engine::writer::{Appended, Durability};
pub use model::error::{Error, Result};
pub use model::event::{Event, Level, NewEvent, Position, Sequence, DEFAULT_ACTOR, MAX_NAME_BYTES};
pub use model::event_type::EventType;
pub use model::filter::{Cursor, EventFilter, Order, Page, Query};
pub use model::payload::Payload;
pub use observe::{LlmRequest, StreamState, StreamStatus, ToolCall, Usage};
pub use proof::merkle::MerkleProof;
pub use store::compact::{compact, Compaction};
pub use store::consumer::{Consumer, ConsumerInfo};
pub use store::events::Events;
pub use store::follow::{Follow, FOLLOW_POLL};
pub use store::handle::{
    Store, StoreBuilder, DEFAULT_CACHE_BYTES, DEFAULT_MAX_PAYLOAD_BYTES, PUBLISH_INTERVAL,
};
pub use store::import::ImportReport;
pub use store::intents::IntentInfo;
pub use store::read_only::{ReadOnlyStore, WriterStatus};
pub use store::snapshot::Snapshot;
pub use store::stats::Stats;
pub use subscribe::hub::{Delivery, Filter, Start, Subscription, DEFAULT_CHANNEL_CAPACITY};
pub use trace::{SpanSource, TraceContext, TraceTree};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
