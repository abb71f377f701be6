//! `oidb`: look into a `.oidb` file as `sqlite3` looks into a SQLite file.
//!
//! The command is thin: it parses arguments, calls the `oidb` library, and formats what comes
//! back. One module per subcommand lives in `command/`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::all, clippy::pedantic)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]
// Counts are u64 in the file and usize in memory, and become f64 only to be shown.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

mod args;
mod command;
mod failure;
mod open;
mod output;
mod output_file;
mod progress;
mod table;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match command::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(message) = failure.message() {
                eprintln!("{message}");
            }
            failure.exit_code()
        }
    }
}
