//! The replicator's loop: the file read in position order on a thread of its own, each event
//! published with its ack awaited in order, the checkpoint saved over what was acknowledged,
//! and every failure met by a backoff and a new pass from the checkpoint.
//!
//! Uses `model::error`, `model::event`, `model::filter`, `engine::record_json`, `store::follow`,
//! `subscribe::hub`.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config, StorageType};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Error, Progress, Replicator, Report, StreamSettings, POSITION_HEADER};
use crate::engine::record_json;
use crate::model::event::Position;
use crate::model::filter::Query;
use crate::store::follow::Next;
use crate::subscribe::hub::Start;

/// The first wait after a failure; each failure in a row doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Acks between two saves of the checkpoint while the window stays full (it is saved whenever
/// the window empties too).
const SAVE_EVERY: u64 = 1024;
/// The most events the reader thread hands over at once.
const BATCH: usize = 256;
/// How often the reader thread, waiting for new events, looks whether it is still wanted.
const READER_WAKE: Duration = Duration::from_millis(200);

/// What the reader thread hands over.
enum Item {
    Event {
        position: Position,
        id: String,
        subject: String,
        payload: Bytes,
    },
    /// Every event the file held when the pass began has been handed over.
    CaughtUp(Position),
    Failed(crate::model::error::Error),
}

/// Why a pass ended early.
enum Stop {
    /// Worth another pass from the checkpoint, after a backoff.
    Retry(String),
    Fatal(Error),
}

/// Where a run stands between passes.
struct State {
    checkpoint: Position,
    last: Position,
    published: u64,
    stream_reported: bool,
    /// The checkpoint being saved on a blocking thread, off the publishing path; one at a time,
    /// so saves land in order.
    saving: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl State {
    fn progress(&mut self, replicator: &Replicator) -> Progress {
        // The file's end as it is now; when it cannot be read, the reader reports why.
        if let Ok(last) = replicator
            .store
            .snapshot()
            .and_then(|snapshot| snapshot.last_position())
        {
            self.last = last;
        }
        self.last = self.last.max(self.checkpoint);
        Progress {
            checkpoint: self.checkpoint,
            last: self.last,
            lag: self.last - self.checkpoint,
            published: self.published,
        }
    }
}

pub(super) async fn run(
    replicator: &Replicator,
    mut report: impl FnMut(Report),
) -> Result<Progress, Error> {
    let settings = &replicator.settings;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .reconnect_delay_callback(|attempts| {
            let exponent = u32::try_from(attempts.min(6)).unwrap_or(6);
            (FIRST_BACKOFF * 2u32.pow(exponent)).min(MAX_BACKOFF)
        })
        .connect(settings.nats.as_str())
        .await
        .map_err(|e| Error::Parameter {
            parameter: "--nats",
            reason: format!("cannot use {}: {e}", settings.nats),
        })?;
    let mut context = jetstream::new(client);
    context.set_timeout(settings.ack_timeout);
    let mut state = State {
        checkpoint: replicator.checkpoint()?,
        last: 0,
        published: 0,
        stream_reported: false,
        saving: None,
    };
    let mut delay = FIRST_BACKOFF;
    loop {
        let before = state.checkpoint;
        match pass(replicator, &context, &mut state, &mut report).await {
            Ok(()) => return Ok(state.progress(replicator)),
            Err(Stop::Fatal(error)) => return Err(error),
            Err(Stop::Retry(error)) => {
                if state.checkpoint > before {
                    delay = FIRST_BACKOFF;
                }
                let progress = state.progress(replicator);
                report(Report::Retrying {
                    error,
                    delay,
                    progress,
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One pass: from the checkpoint on, until caught up (follow off) or a failure.
async fn pass(
    replicator: &Replicator,
    context: &Context,
    state: &mut State,
    report: &mut impl FnMut(Report),
) -> Result<(), Stop> {
    let settings = ensure_stream(replicator, context).await?;
    if !state.stream_reported {
        state.stream_reported = true;
        report(Report::Stream(settings));
    }
    let in_flight = replicator.settings.in_flight;
    let mut items = read_from(replicator, state.checkpoint);
    let mut window: VecDeque<(Position, PublishAckFuture)> = VecDeque::with_capacity(in_flight);
    let mut unsaved = 0u64;
    let mut caught_up_at = None;
    loop {
        let item = if window.len() >= in_flight {
            None
        } else if window.is_empty() {
            if unsaved > 0 {
                start_save(replicator, state, report).await?;
                unsaved = 0;
            }
            finish_save(replicator, state, report).await?;
            if caught_up_at.is_some_and(|at| state.checkpoint >= at) {
                caught_up_at = None;
                report(Report::CaughtUp(state.progress(replicator)));
                if !replicator.settings.follow {
                    return Ok(());
                }
            }
            match items.recv().await {
                Some(item) => Some(item),
                None => {
                    return Err(Stop::Fatal(Error::Checkpoint(format!(
                        "the reader of {} stopped",
                        replicator.path.display()
                    ))))
                }
            }
        } else {
            items.try_recv()
        };
        match item {
            Some(Item::Event {
                position,
                id,
                subject,
                payload,
            }) => {
                let publish = PublishMessage::build()
                    .payload(payload)
                    .message_id(id)
                    .header(POSITION_HEADER, position.to_string().as_str());
                let ack = context
                    .send_publish(subject, publish)
                    .await
                    .map_err(|e| failed(&e, position))?;
                state.published += 1;
                window.push_back((position, ack));
            }
            Some(Item::CaughtUp(position)) => caught_up_at = Some(position),
            Some(Item::Failed(error)) => return Err(Stop::Fatal(Error::Store(error))),
            None => {
                if let Some((position, ack)) = window.pop_front() {
                    ack.await.map_err(|e| failed(&e, position))?;
                    state.checkpoint = position;
                    unsaved += 1;
                    if unsaved >= SAVE_EVERY
                        && state
                            .saving
                            .as_ref()
                            .is_none_or(tokio::task::JoinHandle::is_finished)
                    {
                        start_save(replicator, state, report).await?;
                        unsaved = 0;
                    }
                }
            }
        }
    }
}

/// Starts saving the checkpoint on a blocking thread, once the save before it has landed.
async fn start_save(
    replicator: &Replicator,
    state: &mut State,
    report: &mut impl FnMut(Report),
) -> Result<(), Stop> {
    finish_save(replicator, state, report).await?;
    let file = replicator.checkpoint.clone();
    let position = state.checkpoint;
    state.saving = Some(tokio::task::spawn_blocking(move || file.save(position)));
    Ok(())
}

/// Waits for the save under way, if any, and says where the checkpoint is.
async fn finish_save(
    replicator: &Replicator,
    state: &mut State,
    report: &mut impl FnMut(Report),
) -> Result<(), Stop> {
    if let Some(saving) = state.saving.take() {
        saving
            .await
            .map_err(|e| Stop::Fatal(Error::Checkpoint(format!("saving the checkpoint: {e}"))))?
            .map_err(|e| Stop::Fatal(Error::Checkpoint(e)))?;
        report(Report::Acked(state.progress(replicator)));
    }
    Ok(())
}

/// A failed publish: one the server can never take ends the run; the rest are retried.
fn failed(error: &async_nats::jetstream::context::PublishError, position: Position) -> Stop {
    match error.kind() {
        PublishErrorKind::MaxPayloadExceeded => Stop::Fatal(Error::Nats(format!(
            "the event at position {position} cannot be published: {error} (raise the \
             server's max_payload)"
        ))),
        _ => Stop::Retry(format!(
            "publishing the event at position {position}: {error}"
        )),
    }
}

/// The stream, found or created, checked to take the replicator's subjects.
async fn ensure_stream(replicator: &Replicator, context: &Context) -> Result<StreamSettings, Stop> {
    let settings = &replicator.settings;
    let wanted = format!("{}.>", settings.prefix);
    let (mut stream, created) = match context.get_stream(&settings.stream).await {
        Ok(stream) => (stream, false),
        Err(e) if is_not_found(&e) => {
            let config = Config {
                name: settings.stream.clone(),
                subjects: vec![wanted.clone()],
                duplicate_window: settings.duplicate_window,
                storage: StorageType::File,
                ..Config::default()
            };
            let stream = context.create_stream(config).await.map_err(|e| {
                Stop::Retry(format!("creating the stream {}: {e}", settings.stream))
            })?;
            (stream, true)
        }
        Err(e) => {
            return Err(Stop::Retry(format!(
                "looking up the stream {}: {e}",
                settings.stream
            )))
        }
    };
    let info = stream
        .info()
        .await
        .map_err(|e| Stop::Retry(format!("reading the stream {}: {e}", settings.stream)))?;
    let config = &info.config;
    if !config
        .subjects
        .iter()
        .any(|s| s == ">" || *s == wanted || covers(s, &settings.prefix))
    {
        return Err(Stop::Fatal(Error::Parameter {
            parameter: "--stream",
            reason: format!(
                "the stream {} takes {:?}, not `{wanted}` (choose another --stream or \
                 --subject-prefix)",
                settings.stream, config.subjects
            ),
        }));
    }
    Ok(StreamSettings {
        name: config.name.clone(),
        subjects: config.subjects.clone(),
        duplicate_window: config.duplicate_window,
        storage: match config.storage {
            StorageType::File => "file".to_owned(),
            StorageType::Memory => "memory".to_owned(),
        },
        replicas: config.num_replicas,
        max_age: config.max_age,
        messages: info.state.messages,
        created,
    })
}

/// Whether the subject filter `filter` (ending in `.>`) takes every subject under `prefix`.
fn covers(filter: &str, prefix: &str) -> bool {
    filter.strip_suffix(".>").is_some_and(|base| {
        let base: Vec<&str> = base.split('.').collect();
        let ours: Vec<&str> = prefix.split('.').collect();
        base.len() <= ours.len() && base.iter().zip(&ours).all(|(b, o)| *b == "*" || b == o)
    })
}

fn is_not_found(error: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    use async_nats::jetstream::ErrorCode;
    matches!(error.kind(), GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// The items the reader thread hands over, a batch at a time, taken one by one.
struct Items {
    receiver: mpsc::Receiver<Vec<Item>>,
    batch: std::vec::IntoIter<Item>,
}

impl Items {
    /// The next item, waiting for it.
    async fn recv(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            self.batch = self.receiver.recv().await?.into_iter();
        }
    }

    /// The next item if one is there now.
    fn try_recv(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            self.batch = self.receiver.try_recv().ok()?.into_iter();
        }
    }
}

/// The file's events after `after`, in position order, read on a thread of its own (a follow
/// waits by sleeping) and handed over in batches of what is there; the thread stops once the
/// receiver is dropped.
fn read_from(replicator: &Replicator, after: Position) -> Items {
    let (sender, receiver) = mpsc::channel::<Vec<Item>>(4 + replicator.settings.in_flight / BATCH);
    let store = replicator.store.clone();
    let base = replicator.subject_base.clone();
    let follow = replicator.settings.follow;
    std::thread::spawn(move || {
        let mut events = match store.follow(&Query::new(), Start::After(after)) {
            Ok(events) => events,
            Err(error) => {
                let _ = sender.blocking_send(vec![Item::Failed(error)]);
                return;
            }
        };
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Gathers what is there without waiting; waits only with nothing in hand.
            let wait = if batch.is_empty() {
                READER_WAKE
            } else {
                Duration::ZERO
            };
            let item = match events.next_with(wait, record_json::wire_event) {
                Ok(Some(Next::Record(event))) => Item::Event {
                    position: event.position,
                    id: event.id.to_string(),
                    subject: format!("{base}{}", super::encode_token(&event.intent_id)),
                    payload: Bytes::from(event.json),
                },
                Ok(Some(Next::CaughtUp(position))) => Item::CaughtUp(position),
                Ok(None) if batch.is_empty() && sender.is_closed() => return,
                Ok(None) if batch.is_empty() => continue,
                Ok(None) => {
                    if sender.blocking_send(std::mem::take(&mut batch)).is_err() {
                        return;
                    }
                    continue;
                }
                Err(error) => Item::Failed(error),
            };
            let last =
                matches!(item, Item::Failed(_)) || (matches!(item, Item::CaughtUp(_)) && !follow);
            let send_now = last || matches!(item, Item::CaughtUp(_));
            batch.push(item);
            if (send_now || batch.len() >= BATCH)
                && (sender.blocking_send(std::mem::take(&mut batch)).is_err() || last)
            {
                return;
            }
        }
    });
    Items {
        receiver,
        batch: Vec::new().into_iter(),
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn a_filter_covers_the_prefixes_under_it() {
        assert!(covers("oidb.>", "oidb"));
        assert!(covers("acme.>", "acme.audit"));
        assert!(covers("*.>", "oidb"));
        assert!(!covers("other.>", "oidb"));
        assert!(!covers("acme.audit.x.>", "acme.audit"));
        assert!(!covers("oidb.*", "oidb"));
    }
}
