//! The live feed: a subscriber thread that prints each event, one short line, as it commits.

use std::io::Write;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use oidb::{Delivery, Event, Filter, Position, Start, Store, Subscription};

use crate::failure::Failure;
use crate::table::{brief, shorten};

/// How long the feed waits for an event before it looks whether it has been told to stop.
const POLL: Duration = Duration::from_millis(50);

/// How wide a line's detail may be.
const DETAIL_WIDTH: usize = 52;

/// A running feed; [`Feed::finish`] waits until it has printed every event up to a position.
pub struct Feed {
    stop_at: Sender<Position>,
    thread: JoinHandle<Result<u64, Failure>>,
}

/// The line above the feed's lines.
pub fn header() -> String {
    format!(
        "{:>3}  {:>7}  {:<22} {:<14} {}",
        "POS", "AT", "EVENT", "ACTOR", "WHAT"
    )
}

impl Feed {
    /// Subscribes to everything from the start of the log and prints on a thread of its own.
    pub fn start(store: &Store) -> Result<Feed, Failure> {
        let subscription = store.subscribe(Filter::new(), Start::Beginning)?;
        let (stop_at, stopped) = bounded::<Position>(1);
        let thread = std::thread::Builder::new()
            .name("oidb-demo-feed".into())
            .spawn(move || print_until(subscription, &stopped))
            .map_err(|e| Failure::Error(format!("cannot start the live feed: {e}")))?;
        Ok(Feed { stop_at, thread })
    }

    /// Waits until every event up to `last` has been printed; returns how many were.
    pub fn finish(self, last: Position) -> Result<u64, Failure> {
        // The feed may have ended early (its output closed); then there is nobody to tell.
        let _ = self.stop_at.send(last);
        self.thread
            .join()
            .map_err(|_| Failure::Error("the live feed stopped unexpectedly".into()))?
    }
}

fn print_until(
    mut subscription: Subscription,
    stopped: &crossbeam_channel::Receiver<Position>,
) -> Result<u64, Failure> {
    let started = Instant::now();
    let mut stop_at = None;
    let mut printed = 0;
    loop {
        if stop_at.is_none() {
            stop_at = stopped.try_recv().ok();
        }
        if stop_at.is_some_and(|last| subscription.position() >= last) {
            return Ok(printed);
        }
        // `CaughtUp` comes once, before the first event: the file is new, so all is live.
        if let Some(Delivery::Event(event)) = subscription.recv_timeout(POLL)? {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", line(&event, started.elapsed()))?;
            out.flush()?;
            printed += 1;
        }
    }
}

/// One event, one line: position, when (from the feed's start), type, actor, what it says.
fn line(event: &Event, at: Duration) -> String {
    let text = format!(
        "{:>3}  {:>6.3}s  {:<22} {:<14} {}",
        event.position,
        at.as_secs_f64(),
        shorten(event.event_type.as_str(), 22),
        shorten(&event.actor, 14),
        shorten(&brief(event), DETAIL_WIDTH)
    );
    text.trim_end().to_owned()
}
