//! RFC-0008's stream hooks, and the fail-safe way a [`StreamRecorder`](super::StreamRecorder)
//! calls them.
//!
//! Uses nothing else in the crate.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a hook returns: `Err` is reported as a [`HookFailure`] and changes nothing else.
pub type HookResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// RFC-0008's stream callbacks. Every method has a default that does nothing, so implement only
/// the ones you need.
///
/// A [`StreamRecorder`](super::StreamRecorder) calls them so that they cannot hurt it: a hook that returns an error or panics is caught (`catch_unwind`) and reported as
/// a [`HookFailure`], and the stream and its events go on. A hook that panicked is not called
/// again for that stream, for none of its four methods (its state may be broken); one that
/// returned an error is.
///
/// Failures are reported, not logged into the intent: the recorder lists them
/// ([`StreamRecorder::hook_failures`](super::StreamRecorder::hook_failures)) and its outcome
/// returns them ([`StreamReport::hook_failures`](super::StreamReport::hook_failures)), the first
/// [`StreamReport::MAX_HOOK_FAILURES`](super::StreamReport::MAX_HOOK_FAILURES) kept whole and the
/// rest counted. The panic itself is still reported by Rust's panic hook (on stderr by default).
///
/// ```
/// use oidb::observe::{HookResult, StreamHooks};
///
/// struct Printer;
/// impl StreamHooks for Printer {
///     fn on_token(&mut self, token: &str, _stream_id: &str) -> HookResult {
///         print!("{token}");
///         Ok(())
///     }
/// }
/// ```
pub trait StreamHooks: Send {
    /// A stream began.
    fn on_stream_start(&mut self, stream_id: &str, model: &str, provider: &str) -> HookResult {
        let _ = (stream_id, model, provider);
        Ok(())
    }

    /// A chunk brought text.
    fn on_token(&mut self, token: &str, stream_id: &str) -> HookResult {
        let _ = (token, stream_id);
        Ok(())
    }

    /// The stream completed with `content` in `chunks` chunks.
    fn on_stream_end(&mut self, stream_id: &str, content: &str, chunks: u64) -> HookResult {
        let _ = (stream_id, content, chunks);
        Ok(())
    }

    /// The stream was cancelled or failed; `error` says why.
    fn on_stream_error(&mut self, error: &str, stream_id: &str) -> HookResult {
        let _ = (error, stream_id);
        Ok(())
    }
}

type StartFn = Box<dyn FnMut(&str, &str, &str) + Send>;
type TokenFn = Box<dyn FnMut(&str, &str) + Send>;
type EndFn = Box<dyn FnMut(&str, &str, u64) + Send>;
type ErrorFn = Box<dyn FnMut(&str, &str) + Send>;

/// [`StreamHooks`] made of closures, as the SDK's `AdapterConfig` takes them.
///
/// ```
/// use oidb::observe::StreamCallbacks;
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(String::new()));
/// let sink = Arc::clone(&seen);
/// let hooks = StreamCallbacks::new().on_token(move |token, _stream_id| sink.lock().unwrap().push_str(token));
/// ```
#[derive(Default)]
#[must_use]
pub struct StreamCallbacks {
    start: Option<StartFn>,
    token: Option<TokenFn>,
    end: Option<EndFn>,
    error: Option<ErrorFn>,
}

impl std::fmt::Debug for StreamCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCallbacks")
            .field("on_stream_start", &self.start.is_some())
            .field("on_token", &self.token.is_some())
            .field("on_stream_end", &self.end.is_some())
            .field("on_stream_error", &self.error.is_some())
            .finish()
    }
}

impl StreamCallbacks {
    /// No callbacks.
    pub fn new() -> Self {
        StreamCallbacks::default()
    }

    /// Called with `(stream_id, model, provider)` when a stream begins.
    pub fn on_stream_start(mut self, f: impl FnMut(&str, &str, &str) + Send + 'static) -> Self {
        self.start = Some(Box::new(f));
        self
    }

    /// Called with `(token, stream_id)` for each chunk that brings text.
    pub fn on_token(mut self, f: impl FnMut(&str, &str) + Send + 'static) -> Self {
        self.token = Some(Box::new(f));
        self
    }

    /// Called with `(stream_id, content, chunks)` when a stream completes.
    pub fn on_stream_end(mut self, f: impl FnMut(&str, &str, u64) + Send + 'static) -> Self {
        self.end = Some(Box::new(f));
        self
    }

    /// Called with `(error, stream_id)` when a stream is cancelled or fails.
    pub fn on_stream_error(mut self, f: impl FnMut(&str, &str) + Send + 'static) -> Self {
        self.error = Some(Box::new(f));
        self
    }
}

impl StreamHooks for StreamCallbacks {
    fn on_stream_start(&mut self, stream_id: &str, model: &str, provider: &str) -> HookResult {
        if let Some(f) = &mut self.start {
            f(stream_id, model, provider);
        }
        Ok(())
    }

    fn on_token(&mut self, token: &str, stream_id: &str) -> HookResult {
        if let Some(f) = &mut self.token {
            f(token, stream_id);
        }
        Ok(())
    }

    fn on_stream_end(&mut self, stream_id: &str, content: &str, chunks: u64) -> HookResult {
        if let Some(f) = &mut self.end {
            f(stream_id, content, chunks);
        }
        Ok(())
    }

    fn on_stream_error(&mut self, error: &str, stream_id: &str) -> HookResult {
        if let Some(f) = &mut self.error {
            f(error, stream_id);
        }
        Ok(())
    }
}

/// Which hook failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookName {
    /// [`StreamHooks::on_stream_start`].
    OnStreamStart,
    /// [`StreamHooks::on_token`].
    OnToken,
    /// [`StreamHooks::on_stream_end`].
    OnStreamEnd,
    /// [`StreamHooks::on_stream_error`].
    OnStreamError,
}

impl HookName {
    /// The hook's RFC-0008 name (`on_token`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HookName::OnStreamStart => "on_stream_start",
            HookName::OnToken => "on_token",
            HookName::OnStreamEnd => "on_stream_end",
            HookName::OnStreamError => "on_stream_error",
        }
    }
}

/// A hook that returned an error or panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookFailure {
    /// Which hook.
    pub hook: HookName,
    /// The position of the hook among those given to the recorder, from 0.
    pub hook_index: usize,
    /// The stream it was called for.
    pub stream_id: String,
    /// Whether it panicked (it is not called again then) rather than returning an error.
    pub panicked: bool,
    /// The error's text, or the panic's message.
    pub message: String,
}

impl std::fmt::Display for HookFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.panicked { "panicked" } else { "failed" };
        write!(
            f,
            "hook #{} {} {how} on stream {}: {}",
            self.hook_index,
            self.hook.as_str(),
            self.stream_id,
            self.message
        )
    }
}

/// The hooks of one stream, each called fail-safe.
pub(crate) struct HookSet {
    hooks: Vec<Slot>,
    failures: Vec<HookFailure>,
    failures_not_kept: u64,
}

struct Slot {
    hook: Box<dyn StreamHooks>,
    panicked: bool,
}

impl HookSet {
    /// At most this many failures are kept; the rest are only counted.
    pub(crate) const MAX_KEPT: usize = 100;

    pub(crate) fn new(hooks: Vec<Box<dyn StreamHooks>>) -> HookSet {
        HookSet {
            hooks: hooks
                .into_iter()
                .map(|hook| Slot {
                    hook,
                    panicked: false,
                })
                .collect(),
            failures: Vec::new(),
            failures_not_kept: 0,
        }
    }

    /// Calls `call` on every hook that has not panicked, catching errors and panics.
    pub(crate) fn call(
        &mut self,
        name: HookName,
        stream_id: &str,
        mut call: impl FnMut(&mut dyn StreamHooks) -> HookResult,
    ) {
        for (index, slot) in self.hooks.iter_mut().enumerate() {
            if slot.panicked {
                continue;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| call(slot.hook.as_mut())));
            let (panicked, message) = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => (false, error.to_string()),
                Err(panic) => (true, panic_message(panic.as_ref())),
            };
            slot.panicked |= panicked;
            if self.failures.len() < Self::MAX_KEPT {
                self.failures.push(HookFailure {
                    hook: name,
                    hook_index: index,
                    stream_id: stream_id.to_owned(),
                    panicked,
                    message,
                });
            } else {
                self.failures_not_kept += 1;
            }
        }
    }

    pub(crate) fn failures(&self) -> &[HookFailure] {
        &self.failures
    }

    pub(crate) fn failures_not_kept(&self) -> u64 {
        self.failures_not_kept
    }

    pub(crate) fn take_failures(&mut self) -> Vec<HookFailure> {
        std::mem::take(&mut self.failures)
    }
}

impl std::fmt::Debug for HookSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSet")
            .field("hooks", &self.hooks.len())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// The message of a panic payload (a `&str` or `String`, as `panic!` makes them).
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AlwaysErr;

    impl StreamHooks for AlwaysErr {
        fn on_token(&mut self, _: &str, _: &str) -> HookResult {
            Err("no".into())
        }
    }

    #[test]
    fn failures_beyond_the_cap_are_counted() {
        let mut hooks = HookSet::new(vec![Box::new(AlwaysErr)]);
        for _ in 0..HookSet::MAX_KEPT + 50 {
            hooks.call(HookName::OnToken, "s", |h| h.on_token("t", "s"));
        }
        assert_eq!(hooks.failures().len(), HookSet::MAX_KEPT);
        assert_eq!(hooks.failures_not_kept(), 50);
        assert!(hooks
            .failures()
            .iter()
            .all(|f| !f.panicked && f.message == "no"));
    }

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let text = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(text.as_ref()), "static");
        let formatted = std::panic::catch_unwind(|| panic!("{} {}", "formatted", 1)).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "formatted 1");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), "a panic without a message");
    }
}
