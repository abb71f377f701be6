//! The storage engine, private to the crate: the file's tables and record codec, the binary JSON
//! payload form, the index posting blocks, the readying of a file for writing (a new store's
//! tables, the upgrade of an earlier format version), the write-ahead log, the single writer
//! (validation, planning, group commit), the cost ledger it keeps in the append's own
//! transaction, and the reader that plans and runs queries.
//!
//! Uses the model and the proofs' arithmetic; knows nothing of the handles above it.

pub(crate) mod binary_json;
pub(crate) mod format;
pub(crate) mod json_text;
pub(crate) mod ledger;
pub(crate) mod postings;
pub(crate) mod presence;
pub(crate) mod reader;
pub(crate) mod record_json;
pub(crate) mod setup;
#[cfg(feature = "signatures")]
pub(crate) mod signing;
pub(crate) mod source;
pub(crate) mod wal;
pub(crate) mod writer;
