//! The model: what an event is (its fields, type, level and time), how it is written as
//! OpenIntent JSON, what a reader asks for, what costs and prices are and the amounts they are
//! counted in, and the errors
//! every floor reports.
//!
//! The ground floor: nothing here knows a file, a transaction or a thread. It uses nothing else
//! in the crate.

pub(crate) mod amount;
pub(crate) mod cost;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod event_type;
pub(crate) mod filter;
pub(crate) mod json_depth;
pub(crate) mod payload;
pub(crate) mod payload_fields;
pub(crate) mod price;
pub mod time;
pub(crate) mod wire;
