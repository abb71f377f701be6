//! The handles: [`Store`] (the file opened for writing, which also reads), [`ReadOnlyStore`] (the
//! file opened only to read), and the read view both hand out, on which every reading feature is
//! written once; stats, export, import and compaction.
//!
//! Uses the engine, the proofs and the model.

pub(crate) mod compact;
pub(crate) mod consumer;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod handle;
pub(crate) mod import;
pub(crate) mod read_only;
pub(crate) mod reads;
pub(crate) mod snapshot;
pub(crate) mod stats;
