//! What happens to an outcome a handle could not log when it was dropped: counted, never raised.
//!
//! Uses `observe::hooks`.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

static COUNT: AtomicU64 = AtomicU64::new(0);
static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Outcomes that handles dropped without an outcome could not write, since the process started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DropLogFailures {
    /// How many outcomes were lost.
    pub count: u64,
    /// The last error, as text (what was being logged, and why it failed).
    pub last_error: Option<String>,
}

/// Outcomes that dropped handles could not log, since the process started.
///
/// A handle ([`LlmRequestHandle`](super::LlmRequestHandle), [`ToolCallHandle`](super::ToolCallHandle),
/// [`StreamRecorder`](super::StreamRecorder)) dropped without an outcome logs one itself. `Drop`
/// cannot return an error and must not panic, so when that write fails (the store is closed, the
/// disk is full, …) the failure is counted here, process-wide, with the last message kept, for a
/// supervisor or a test to see. Nothing is printed.
///
/// ```
/// let lost = oidb::observe::drop_log_failures();
/// if lost.count > 0 {
///     eprintln!("{} outcomes were not logged; last: {:?}", lost.count, lost.last_error);
/// }
/// ```
#[must_use]
pub fn drop_log_failures() -> DropLogFailures {
    DropLogFailures {
        count: COUNT.load(Ordering::Relaxed),
        last_error: LAST.lock().clone(),
    }
}

/// Counts one outcome a dropped handle could not log.
pub(crate) fn record(what: &str, error: &dyn std::fmt::Display) {
    COUNT.fetch_add(1, Ordering::Relaxed);
    *LAST.lock() = Some(format!("{what}: {error}"));
}

/// Runs the logging a `Drop` does: errors and panics are counted, never raised.
pub(crate) fn guarded<T, E: std::fmt::Display>(what: &str, log: impl FnOnce() -> Result<T, E>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(log)) {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => record(what, &error),
        Err(panic) => record(what, &super::hooks::panic_message(panic.as_ref())),
    }
}
