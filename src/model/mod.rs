//! The model: what an event is (its fields, type, level and time), how it is written as
//! OpenIntent JSON, what a reader asks for, the values costs are counted in, and the errors
//! every floor reports.
//!
//! The ground floor: nothing here knows a file, a transaction or a thread. It uses nothing else
//! in the crate.

pub(crate) mod amount;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod event_type;
pub(crate) mod filter;
pub(crate) mod json_depth;
pub(crate) mod payload;
pub mod time;
pub(crate) mod wire;
