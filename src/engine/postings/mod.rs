//! Secondary index entries packed in blocks per code: layout, encoding, reading and writing.
//!
//! The indexes by intent, event type, actor and trace hold, for each code, the events that have
//! it, in order. Since format version 4 they are kept as blocks of up to
//! [`BLOCK_ENTRIES`](layout::BLOCK_ENTRIES) entries: one row per block, keyed by (code, the
//! block's first position, or first sequence for intents), whose value is the entries packed as
//! varints and deltas (docs/format.md, "Postings blocks"). Files of format versions 1 to 3 kept
//! one row per event in `by_intent`, `by_type`, `by_actor` and `by_trace`: this module reads those
//! too, with the same entries, so a read-only open of such a file answers as an upgraded one
//! does, and [`rebuild`] turns them into blocks when the file is opened for writing.
//!
//! Every other module reads and writes these indexes through here, by the names below. Inside,
//! `layout` says what the postings are (tables, codes, entries), `codec` how a block's bytes
//! hold its entries, `read` and `write` go through both, and `upgrade` rebuilds the old tables
//! as blocks through `write`.
//!
//! Uses `engine::postings::codec`, `engine::postings::layout`, `engine::postings::read`,
//! `engine::postings::upgrade`, `engine::postings::write`.

mod codec;
mod layout;
mod read;
mod upgrade;
mod write;

#[cfg(feature = "bench-internals")]
pub(crate) use crate::engine::postings::codec::encode_entry_after;
#[cfg(feature = "fuzzing")]
pub(crate) use crate::engine::postings::codec::{decode_block, encode_block};
pub(crate) use crate::engine::postings::layout::{
    Code, Entry, Index, ACTOR_POSTINGS, INTENT_POSTINGS, TRACE_POSTINGS, TYPE_POSTINGS,
};
pub(crate) use crate::engine::postings::read::{
    all_entries, counts, entries, first_sequence_at_or_after, last_sequence_at_or_before, Lookup,
};
pub(crate) use crate::engine::postings::upgrade::rebuild;
pub(crate) use crate::engine::postings::write::{Tails, Writer};
