//! Live feeds of committed events: the hub the writer hands each commit to, the subscriptions it
//! feeds over crossbeam channels (no gap, no duplicate, no loss), and durable named consumers
//! that remember where they stopped.
//!
//! Uses the store's handles, the engine and the model.

pub(crate) mod consumer;
pub(crate) mod hub;
