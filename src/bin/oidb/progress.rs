//! Progress on stderr for long runs: shown only when stderr is a terminal, only when asked for
//! (never with JSON output), and only once the run has taken a second.

use std::io::IsTerminal;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run goes before its progress is shown.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// What a progress counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of input.
    Bytes,
    /// Events.
    Events,
    /// Steps of a stage (intents, records, tables): the message says what they are.
    Steps,
    /// Nothing countable: only the time taken is shown.
    Elapsed,
}

/// A progress bar (when the total is known) or a counter, hidden until [`SHOW_AFTER`].
pub struct Progress {
    bar: ProgressBar,
    stop: Option<Sender<()>>,
    shower: Option<JoinHandle<()>>,
}

impl Progress {
    /// Progress towards `total` (a bar), or of a count with no known end (a spinner), labelled
    /// `what`. `wanted` is false for JSON output; stderr must be a terminal too.
    pub fn new(wanted: bool, total: Option<u64>, unit: Unit, what: &str) -> Progress {
        let template = match (total, unit) {
            (Some(_), Unit::Bytes) => "{msg} {wide_bar} {bytes}/{total_bytes} ({eta} left)",
            (Some(_), Unit::Events) => {
                "{msg} {wide_bar} {human_pos}/{human_len} events ({eta} left)"
            }
            (None, Unit::Bytes) => "{spinner} {msg} {bytes} ({elapsed})",
            (None, Unit::Events) => "{spinner} {msg} {human_pos} events ({elapsed})",
            (Some(_), Unit::Steps) => "{msg} {wide_bar} {human_pos}/{human_len}",
            (None, Unit::Steps) => "{spinner} {msg} {human_pos} ({elapsed})",
            (_, Unit::Elapsed) => "{spinner} {msg} ({elapsed})",
        };
        let style = ProgressStyle::with_template(template).unwrap_or_else(|_| {
            if total.is_some() {
                ProgressStyle::default_bar()
            } else {
                ProgressStyle::default_spinner()
            }
        });
        let bar =
            ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden()).with_style(style);
        bar.set_message(what.to_owned());
        let mut progress = Progress {
            bar,
            stop: None,
            shower: None,
        };
        if wanted && std::io::stderr().is_terminal() {
            let (stop, stopped) = bounded::<()>(0);
            let bar = progress.bar.clone();
            progress.stop = Some(stop);
            progress.shower = std::thread::Builder::new()
                .name("oidb-progress".into())
                .spawn(move || {
                    if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(SHOW_AFTER) {
                        bar.set_draw_target(ProgressDrawTarget::stderr());
                        bar.enable_steady_tick(Duration::from_millis(120));
                    }
                })
                .ok();
        }
        progress
    }

    /// Starts a new stage of `total` steps, named `what`.
    pub fn stage(&self, what: &str, total: u64) {
        self.bar.set_message(what.to_owned());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    /// Sets how far the current stage has come.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    /// Moves on by `n`.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Ends the progress and clears it from the screen.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        drop(self.stop.take());
        if let Some(shower) = self.shower.take() {
            let _ = shower.join();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}
