//! The handles: [`Store`](crate::Store) (the file opened for writing, which also reads),
//! [`ReadOnlyStore`](crate::ReadOnlyStore) (the file opened only to read), and
//! [`Snapshot`](crate::Snapshot), the read view both hand out, on which every reading feature is
//! written once; lazy iteration, following a file from a read-only handle, stats, export,
//! import, durable consumers (and the checkpoints of consumers outside the file) and compaction.
//!
//! Uses the subscriptions' hub, the engine, the proofs and the model.

pub(crate) mod compact;
pub(crate) mod consumer;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod follow;
pub(crate) mod handle;
pub(crate) mod import;
pub(crate) mod intents;
pub(crate) mod read_only;
pub(crate) mod reads;
#[cfg_attr(not(any(feature = "nats", feature = "otlp")), allow(dead_code))]
pub(crate) mod side_checkpoint;
pub(crate) mod snapshot;
pub(crate) mod stats;
