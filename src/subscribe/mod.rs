//! Live feeds of committed events: the hub the writer hands each commit to, and the subscriptions
//! it feeds over crossbeam channels (no gap, no duplicate, no loss), catching up from the file
//! first when they start in the past.
//!
//! Uses the engine (its reader, and the writer's commit hook) and the model.

pub(crate) mod hub;
