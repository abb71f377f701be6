//! The reading methods both handles offer: each takes a fresh [`Snapshot`](crate::Snapshot) and
//! calls the snapshot's method of the same name, so that a reading feature is written once, on
//! the snapshot, and [`Store`](crate::Store) and [`ReadOnlyStore`](crate::ReadOnlyStore) both
//! have it. Each feature lists its reading methods with [`read_on_handles`] beside its
//! `impl Snapshot`.

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
