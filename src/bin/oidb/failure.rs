//! How a command fails: the message the user reads and the exit code scripts read.

use std::process::ExitCode;

/// Why a command stopped early.
#[derive(Debug)]
pub enum Failure {
    /// The command could not do its job (exit 1).
    Error(String),
    /// The data did not verify (exit 3).
    Verification(String),
    /// Whoever read our output stopped reading (`oidb events f | head`): not an error (exit 0).
    OutputClosed,
}

impl Failure {
    /// The exit code: 0 ok, 1 error, 3 verification failed (clap exits 2 on bad arguments).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::OutputClosed => ExitCode::SUCCESS,
            Failure::Error(_) => ExitCode::from(1),
            Failure::Verification(_) => ExitCode::from(3),
        }
    }

    /// What to print on stderr, if anything.
    pub fn message(&self) -> Option<String> {
        match self {
            Failure::OutputClosed => None,
            Failure::Error(m) => Some(format!("error: {m}")),
            Failure::Verification(m) => Some(format!("verification failed: {m}")),
        }
    }
}

impl From<oidb::Error> for Failure {
    fn from(error: oidb::Error) -> Self {
        match error {
            oidb::Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Failure::OutputClosed
            }
            other => Failure::Error(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    /// An error writing our own output (stdout or stderr).
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::OutputClosed
        } else {
            Failure::Error(format!("cannot write output: {error}"))
        }
    }
}

/// What every command returns.
pub type Outcome = Result<(), Failure>;

impl From<serde_json::Error> for Failure {
    /// An error writing JSON to our own output; serializing an event or a summary cannot fail
    /// otherwise.
    fn from(error: serde_json::Error) -> Self {
        Failure::from(std::io::Error::from(error))
    }
}
