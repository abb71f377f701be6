//! `oidb ship FILE --otlp http://HOST:4318 [--json] [--follow]`: a file's spans sent to an
//! OTLP/HTTP receiver's /v1/traces, each once it is finished, from where the last run stopped
//! (the checkpoint beside the file), until caught up, or without end with --follow.

use std::time::{Duration, Instant};

use oidb::ship::{Encoding, Report, Shipper};

use crate::args::ShipArgs;
use crate::failure::{Failure, Outcome};

/// The least time between two lines of progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub fn run(args: &ShipArgs) -> Outcome {
    let shipper = Shipper::builder()
        .otlp(args.otlp.clone())
        .encoding(if args.json {
            Encoding::Json
        } else {
            Encoding::Protobuf
        })
        .follow(args.follow)
        .consumer(args.consumer.clone())
        .batch(args.batch)
        .timeout(Duration::from_secs(args.timeout))
        .build(&args.file)
        .map_err(|e| Failure::Error(e.to_string()))?;
    println!(
        "shipping the spans of {} (store {}) to {} as {}, after position {} (checkpoint {})",
        args.file.display(),
        shipper.store_id(),
        shipper.endpoint(),
        if args.json { "JSON" } else { "protobuf" },
        shipper
            .checkpoint()
            .map_err(|e| Failure::Error(e.to_string()))?,
        shipper.checkpoint_path().display()
    );
    let mut last_line = Instant::now();
    let progress = shipper
        .run(|report| match report {
            Report::Sent { progress: p, .. } if last_line.elapsed() >= PROGRESS_EVERY => {
                last_line = Instant::now();
                eprintln!(
                    "{} spans accepted, up to position {} of {}: {} behind",
                    p.spans, p.checkpoint, p.last, p.lag
                );
            }
            Report::CaughtUp(p) => println!(
                "caught up: every span finished up to position {} is accepted ({} sent in this \
                 run)",
                p.checkpoint, p.spans
            ),
            Report::Retrying {
                error,
                delay,
                progress,
            } => {
                last_line = Instant::now();
                eprintln!(
                    "{error}; trying again in {delay:?} ({} behind)",
                    progress.lag
                );
            }
            _ => {}
        })
        .map_err(|e| Failure::Error(e.to_string()))?;
    println!(
        "shipped {}: {} spans in this run; every span finished up to position {} is at {}",
        args.file.display(),
        progress.spans,
        progress.checkpoint,
        shipper.endpoint()
    );
    Ok(())
}
