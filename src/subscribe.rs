//! Subscriptions: committed events delivered to in-process subscribers over channels.

use crate::writer::CommitListener;
use crate::Event;

/// The registry of subscribers, told of every commit by the writer.
#[derive(Debug, Default)]
pub(crate) struct Hub {}

impl CommitListener for Hub {
    fn committed(&self, _events: &[Event]) {}
}
