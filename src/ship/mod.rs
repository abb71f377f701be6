//! Shipping traces to an OpenTelemetry back end: a store's LLM requests, tool calls and streams
//! sent as OTLP spans (the ones [`Store::export_otlp_json`](crate::store::handle::Store::export_otlp_json)
//! writes) to a receiver's `POST /v1/traces` over OTLP/HTTP, protobuf or JSON, resumable after a
//! crash; with follow on, each span as soon as it is finished.
//!
//! - **When a span goes.** A span is sent once it is complete: in the request that covers the
//!   position of its finishing event (`*_completed`, `*_failed`, `stream_cancelled`). A start
//!   whose finish has not been written yet is held back; it goes with its finish, however much
//!   later that comes. A start that never finishes is never shipped (`oidb trace --otlp` still
//!   exports it, marked `oidb.span.incomplete`).
//! - **Ids.** A span's id is derived from the id of its first event and its trace id from the
//!   events' `trace_id` (see [`trace::otlp`](crate::trace::otlp)), so a span shipped again after
//!   a crash, or exported by `oidb trace --otlp`, has the same ids; a back end that keys spans by
//!   (trace id, span id) keeps one copy.
//! - **Once.** The file is read in ranges of positions ([`ShipperBuilder::batch`] at a time);
//!   each range's finished spans go in one request, and the checkpoint (a side file,
//!   `<file>.ship-<consumer>`, as the replicator keeps) moves over the range only once the
//!   receiver accepted it. Within a run no span is put in two requests; a request the receiver
//!   refused with 429 or 5xx, or that did not get through, is sent again after a backoff
//!   (honouring `Retry-After`) until it is accepted. Across a crash, the range after the
//!   checkpoint is sent again: at least once to the receiver, with the same ids.
//! - **Refusals.** Any other 4xx ends the run with [`Error::Refused`], naming the URL, the status
//!   and what the receiver said.
//!
//! ```no_run
//! # fn run() -> Result<(), oidb::ship::Error> {
//! use oidb::ship::{Report, Shipper};
//! let shipper = Shipper::builder()
//!     .otlp("http://127.0.0.1:4318")
//!     .follow(true)
//!     .build("agent.oidb")?;
//! shipper.run(|report| {
//!     if let Report::Retrying { error, progress, .. } = report {
//!         eprintln!("{error}; {} events behind", progress.lag);
//!     }
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! Uses `model::error`, `model::event`, `model::filter`, `store::read_only`,
//! `store::side_checkpoint`, `subscribe::hub`, `trace::otlp`.

mod send;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::event::Position;
use crate::model::filter::Query;
use crate::store::read_only::ReadOnlyStore;
use crate::store::side_checkpoint::{name_problem, CheckpointFile};
use crate::subscribe::hub::{Delivery, Start};
use crate::trace::otlp::SpanSource;

/// The checkpoint's name unless told otherwise: `<file>.ship-otlp`.
pub const DEFAULT_CONSUMER: &str = "otlp";
/// Positions read into one request, unless told otherwise.
pub const DEFAULT_BATCH: u64 = 512;
/// The path OTLP/HTTP receivers take traces at.
pub const TRACES_PATH: &str = "/v1/traces";

/// The first wait after a failure; each failure in a row doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two tries, unless the receiver asks for longer with `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How often a follow, waiting for new events, looks whether the file was written.
const FOLLOW_WAKE: Duration = Duration::from_millis(200);

/// Why shipping stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting that cannot work, named.
    #[error("{parameter}: {reason}")]
    Parameter {
        /// The setting (as the command line names it).
        parameter: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not be read, or a span could not be made from its events.
    #[error(transparent)]
    Store(#[from] crate::model::error::Error),
    /// The checkpoint beside the store could not be read or written.
    #[error("{0}")]
    Checkpoint(String),
    /// The receiver refused a request with a status retrying cannot mend (a 4xx other than
    /// 429).
    #[error("{url} refused the spans: HTTP {status}: {body}")]
    Refused {
        /// Where the spans were sent.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of what the receiver answered.
        body: String,
    },
}

/// How spans are written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`), what OTLP/HTTP receivers must take.
    #[default]
    Protobuf,
    /// OTLP's JSON encoding (`application/json`).
    Json,
}

impl Encoding {
    /// The `Content-Type` a request in this encoding carries.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// How a shipper is set up: from [`Shipper::builder`].
#[derive(Debug, Clone)]
pub struct ShipperBuilder {
    otlp: String,
    encoding: Encoding,
    follow: bool,
    consumer: String,
    batch: u64,
    timeout: Duration,
}

impl Default for ShipperBuilder {
    fn default() -> Self {
        ShipperBuilder {
            otlp: "http://127.0.0.1:4318".to_owned(),
            encoding: Encoding::Protobuf,
            follow: false,
            consumer: DEFAULT_CONSUMER.to_owned(),
            batch: DEFAULT_BATCH,
            timeout: Duration::from_secs(10),
        }
    }
}

impl ShipperBuilder {
    /// The receiver: `http://HOST:4318` (its [`TRACES_PATH`] is added), or a full URL ending in
    /// `/v1/traces`.
    #[must_use]
    pub fn otlp(mut self, url: impl Into<String>) -> Self {
        self.otlp = url.into();
        self
    }

    /// The wire encoding ([`Encoding::Protobuf`] unless set).
    #[must_use]
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Whether to keep following the file once caught up (off: stop once every span finished
    /// in the file at the start is accepted).
    #[must_use]
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// The checkpoint's name ([`DEFAULT_CONSUMER`] unless set): two shippers of one file to two
    /// back ends, with different names, each keep their own place.
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// How many positions of the file one request covers at most ([`DEFAULT_BATCH`] unless
    /// set); a request holds the spans finished in them.
    #[must_use]
    pub fn batch(mut self, positions: u64) -> Self {
        self.batch = positions;
        self
    }

    /// How long one request may take before it counts as failed and is sent again (10 s unless
    /// set).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A shipper of the store at `file`, opened for reading (its writer, in any process, keeps
    /// writing it).
    ///
    /// # Errors
    /// [`Error::Parameter`] for a setting that cannot work (a URL that is not `http://`, say);
    /// [`Error::Store`] when the file does not open; [`Error::Checkpoint`] when its checkpoint
    /// is unreadable or another store's.
    pub fn build(self, file: impl AsRef<Path>) -> Result<Shipper, Error> {
        let bad = |parameter, reason: String| Error::Parameter { parameter, reason };
        let endpoint = endpoint(&self.otlp).map_err(|reason| bad("--otlp", reason))?;
        if let Some(reason) = name_problem(&self.consumer) {
            return Err(bad("--consumer", reason.to_owned()));
        }
        if self.batch == 0 {
            return Err(bad("--batch", "it must be at least 1".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(bad("--timeout", "it must be longer than zero".to_owned()));
        }
        let path = file.as_ref().to_path_buf();
        let store = ReadOnlyStore::open(&path)?;
        let store_id = store.snapshot()?.store_id()?.unwrap_or_default();
        let checkpoint = CheckpointFile::beside(&path, "ship", &self.consumer, &store_id);
        checkpoint.load().map_err(Error::Checkpoint)?;
        Ok(Shipper {
            settings: self,
            endpoint,
            path,
            store,
            store_id,
            checkpoint,
        })
    }
}

/// The URL requests go to: the base with [`TRACES_PATH`] added, unless it is there.
fn endpoint(url: &str) -> Result<String, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("no receiver URL given".to_owned());
    }
    if url.starts_with("https://") {
        return Err(format!(
            "{url}: https is not built in; send to a local collector over http:// and let it \
             forward over TLS"
        ));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("{url}: expected http://HOST:PORT"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{url}: no host"));
    }
    let base = url.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    })
}

/// One store's spans to an OTLP/HTTP receiver: from [`Shipper::builder`]; see the
/// [module](self).
#[derive(Debug)]
pub struct Shipper {
    settings: ShipperBuilder,
    endpoint: String,
    path: PathBuf,
    store: ReadOnlyStore,
    store_id: String,
    checkpoint: CheckpointFile,
}

/// Where shipping stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Every span finished at or before this position has been accepted by the receiver.
    pub checkpoint: Position,
    /// The file's last position, as last read.
    pub last: Position,
    /// Positions in the file not yet shipped: `last - checkpoint`.
    pub lag: u64,
    /// Spans the receiver accepted in this run.
    pub spans: u64,
    /// Requests sent in this run (resends included).
    pub requests: u64,
}

/// What a running shipper tells its caller.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Report {
    /// The receiver accepted a request of `spans` spans, and the checkpoint moved.
    Sent {
        /// Spans in the request.
        spans: u64,
        /// Where it stands.
        progress: Progress,
    },
    /// Every span finished in the file as it was read has been accepted (once each time it
    /// catches up).
    CaughtUp(Progress),
    /// A request failed; it is sent again after `delay`.
    Retrying {
        /// What failed.
        error: String,
        /// How long it waits first.
        delay: Duration,
        /// Where it stands.
        progress: Progress,
    },
}

impl Shipper {
    /// A builder with the defaults: `http://127.0.0.1:4318`, protobuf, [`DEFAULT_CONSUMER`],
    /// follow off.
    #[must_use]
    pub fn builder() -> ShipperBuilder {
        ShipperBuilder::default()
    }

    /// The file shipped.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's id.
    #[must_use]
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// The URL requests go to (ending in [`TRACES_PATH`]).
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The side file that holds the checkpoint.
    #[must_use]
    pub fn checkpoint_path(&self) -> &Path {
        self.checkpoint.path()
    }

    /// The position up to which every finished span was accepted, as saved.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the side file cannot be read.
    pub fn checkpoint(&self) -> Result<Position, Error> {
        self.checkpoint.load().map_err(Error::Checkpoint)
    }

    /// Ships: the spans finished after the checkpoint up to the end of the file, then (with
    /// follow on) each span as its finish is committed, until an error retrying cannot mend.
    /// Without follow it returns once every span finished in the file at the start is accepted.
    /// Network failures, 429 and 5xx are retried with backoff (reported to `report`), never
    /// skipped. It blocks the calling thread.
    ///
    /// # Errors
    /// [`Error::Store`] when the file cannot be read (it was replaced, say) or a span cannot be
    /// made (an event dated outside what OTLP can hold); [`Error::Checkpoint`];
    /// [`Error::Refused`] for a refusal retrying cannot mend.
    pub fn run(&self, mut report: impl FnMut(Report)) -> Result<Progress, Error> {
        let client = send::Client::new(
            &self.endpoint,
            self.settings.encoding,
            self.settings.timeout,
        );
        let mut progress = Progress {
            checkpoint: self.checkpoint()?,
            last: 0,
            lag: 0,
            spans: 0,
            requests: 0,
        };
        let mut follow = if self.settings.follow {
            Some(
                self.store
                    .follow(&Query::new(), Start::After(progress.checkpoint))?,
            )
        } else {
            None
        };
        let mut caught_up = false;
        loop {
            progress.last = self
                .store
                .snapshot()?
                .last_position()?
                .max(progress.checkpoint);
            progress.lag = progress.last - progress.checkpoint;
            if progress.lag > 0 {
                caught_up = false;
                let upto = progress
                    .checkpoint
                    .saturating_add(self.settings.batch)
                    .min(progress.last);
                let spans = self.ship_range(&client, &mut progress, upto, &mut report)?;
                self.checkpoint.save(upto).map_err(Error::Checkpoint)?;
                progress.checkpoint = upto;
                progress.lag = progress.last - upto;
                progress.spans += spans;
                if spans > 0 {
                    report(Report::Sent { spans, progress });
                }
                continue;
            }
            if !caught_up {
                caught_up = true;
                report(Report::CaughtUp(progress));
            }
            let Some(follow) = follow.as_mut() else {
                return Ok(progress);
            };
            // Waits for the next event past the checkpoint, draining what the follow holds.
            loop {
                match follow.recv_timeout(FOLLOW_WAKE)? {
                    Some(Delivery::Event(event)) if event.position > progress.checkpoint => break,
                    Some(_) => {}
                    None => {
                        if self.store.snapshot()?.last_position()? > progress.checkpoint {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Sends the spans finished after the checkpoint up to `upto` in one request, again and
    /// again until the receiver accepts it; returns how many there were (none sent when none).
    fn ship_range(
        &self,
        client: &send::Client,
        progress: &mut Progress,
        upto: Position,
        report: &mut impl FnMut(Report),
    ) -> Result<u64, Error> {
        let mut json = Vec::new();
        let source = SpanSource::Finished {
            after: progress.checkpoint,
            upto,
        };
        let spans = self.store.export_otlp_json(source, &mut json)?;
        if spans == 0 {
            return Ok(0);
        }
        let body = client.encode(&json)?;
        let mut delay = FIRST_BACKOFF;
        loop {
            progress.requests += 1;
            match client.post(&body) {
                Ok(()) => return Ok(spans),
                Err(send::Failure::Fatal(error)) => return Err(error),
                Err(send::Failure::Retry { error, retry_after }) => {
                    let wait = retry_after.map_or(delay, |asked| asked.min(MAX_RETRY_AFTER));
                    report(Report::Retrying {
                        error: format!(
                            "sending the spans finished at positions {}..={upto}: {error}",
                            progress.checkpoint + 1
                        ),
                        delay: wait,
                        progress: *progress,
                    });
                    std::thread::sleep(wait);
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn the_endpoint_is_the_base_and_the_traces_path() {
        assert_eq!(
            endpoint("http://h:4318").unwrap(),
            "http://h:4318/v1/traces"
        );
        assert_eq!(
            endpoint("http://h:4318/").unwrap(),
            "http://h:4318/v1/traces"
        );
        assert_eq!(
            endpoint("http://h:4318/v1/traces").unwrap(),
            "http://h:4318/v1/traces"
        );
        assert!(endpoint("https://h").unwrap_err().contains("https"));
        assert!(endpoint("h:4318").unwrap_err().contains("expected"));
        assert!(endpoint("").is_err());
    }
}
