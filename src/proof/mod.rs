//! The proofs' arithmetic: canonical JSON (RFC 8785), the RFC-0019 event hash and chain rules,
//! Merkle trees and their proofs, and (with the `signatures` feature) Ed25519 keys and signed
//! content.
//!
//! Pure functions over the model: nothing here reads a file. Uses only [`crate::model`]. The
//! proofs about a stored log (verifying a store, checkpoints) are in [`crate::audit`], which
//! builds on these.

pub mod chain;
pub mod jcs;
pub mod merkle;
#[cfg(feature = "signatures")]
pub mod signature;
