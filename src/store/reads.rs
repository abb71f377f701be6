//! The reading methods both handles offer: each takes a fresh [`Snapshot`](crate::Snapshot) and
//! calls the snapshot's method of the same name, so that a reading feature is written once, on
//! the snapshot, and [`Store`](crate::Store) and [`ReadOnlyStore`](crate::ReadOnlyStore) both
//! have it. Each feature lists its reading methods with [`read_on_handles`] beside its
//! `impl Snapshot`; the snapshot's own reads (queries, single events, heads) are listed here.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `store::handle`, `store::read_only`.

use uuid::Uuid;

use crate::model::error::Result;
use crate::model::event::{Event, Position};
use crate::model::filter::{EventFilter, Page, Query};

/// Gives [`Store`](crate::Store) and [`ReadOnlyStore`](crate::ReadOnlyStore) each listed method,
/// reading through a fresh snapshot. Each entry is a doc line and the snapshot method's
/// signature (arguments taken by name and passed on as they are).
macro_rules! read_on_handles {
    (@on $handle:ty; $(
        $(#[$attr:meta])*
        fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )+) => {
        impl $handle {
            $(
                $(#[$attr])*
                #[doc = ""]
                #[doc = concat!(
                    "Reads the store as it is now, through [`Snapshot::", stringify!($name),
                    "`](crate::Snapshot::", stringify!($name), "), where it is described."
                )]
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.snapshot()?.$name($($arg),*)
                }
            )+
        }
    };
    ($($methods:tt)+) => {
        $crate::store::reads::read_on_handles!(@on $crate::store::handle::Store; $($methods)+);
        $crate::store::reads::read_on_handles!(@on $crate::store::read_only::ReadOnlyStore; $($methods)+);
    };
}

pub(crate) use read_on_handles;

// The snapshot's own reads, offered by both handles.
read_on_handles! {
    /// The position of the last event (0 when the log is empty).
    fn last_position(&self) -> Result<Position>;
    /// The event with this id, if stored.
    fn get(&self, id: Uuid) -> Result<Option<Event>>;
    /// The event at this position, if any.
    fn get_at(&self, position: Position) -> Result<Option<Event>>;
    /// The last sequence of an intent's chain (0 when it has no events).
    fn last_sequence(&self, intent_id: &str) -> Result<u64>;
    /// One intent's events, as OpenIntent's client `get_events` returns them.
    fn get_events(&self, intent_id: &str, filter: EventFilter) -> Result<Vec<Event>>;
    /// One page of a query, and the cursor of the next page.
    fn query(&self, query: &Query) -> Result<Page>;
    /// The id the store was given when its file was created.
    fn store_id(&self) -> Result<Option<String>>;
}
