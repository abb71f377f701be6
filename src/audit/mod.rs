//! Proofs about a stored log: verifying every chain and index of a store, Merkle checkpoints of
//! the log with inclusion and consistency proofs, and (with the `signatures` feature) the agent
//! key registry.
//!
//! A feature over the store: reads through the read view, writes through [`crate::Store`]; uses
//! the proofs' arithmetic in [`crate::proof`].

pub mod checkpoint;
#[cfg(feature = "signatures")]
pub(crate) mod keys;
pub mod verify;
