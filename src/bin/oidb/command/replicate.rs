//! `oidb replicate FILE --nats URL [--stream NAME] [--subject-prefix P] [--follow]`: a file's
//! events published to a JetStream stream, from where the last run stopped (the checkpoint
//! beside the file), until caught up, or without end with --follow. Killing it at any moment
//! loses nothing: the next run publishes again from the checkpoint and JetStream drops what it
//! already holds.

use std::time::{Duration, Instant};

use oidb::replicate::{encode_token, Replicator, Report, StreamSettings};

use crate::args::ReplicateArgs;
use crate::failure::{Failure, Outcome};

/// The least time between two lines of progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub fn run(args: &ReplicateArgs) -> Outcome {
    let replicator = Replicator::builder()
        .nats(args.nats.clone())
        .stream(args.stream.clone())
        .subject_prefix(args.subject_prefix.clone())
        .follow(args.follow)
        .in_flight(args.in_flight)
        .duplicate_window(Duration::from_secs(args.duplicate_window))
        .ack_timeout(Duration::from_secs(args.ack_timeout));
    let replicator = match &args.consumer {
        Some(name) => replicator.consumer(name.clone()),
        None => replicator,
    }
    .build(&args.file)
    .map_err(|e| Failure::Error(e.to_string()))?;
    println!(
        "replicating {} (store {}) to {} as {}.{}.<intent>, after position {} (checkpoint {})",
        args.file.display(),
        replicator.store_id(),
        args.nats,
        args.subject_prefix,
        encode_token(replicator.store_id()),
        replicator
            .checkpoint()
            .map_err(|e| Failure::Error(e.to_string()))?,
        replicator.checkpoint_path().display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the NATS client: {e}")))?;
    let mut last_line = Instant::now();
    let progress = runtime
        .block_on(replicator.run(|report| match report {
            Report::Stream(settings) => println!("{}", describe(&settings)),
            Report::Acked(p) if last_line.elapsed() >= PROGRESS_EVERY => {
                last_line = Instant::now();
                eprintln!(
                    "acknowledged up to position {} of {}: {} behind",
                    p.checkpoint, p.last, p.lag
                );
            }
            Report::CaughtUp(p) => println!(
                "caught up: every event up to position {} is in the stream ({} published in \
                 this run)",
                p.checkpoint, p.published
            ),
            Report::Retrying {
                error,
                delay,
                progress,
            } => {
                last_line = Instant::now();
                eprintln!(
                    "{error}; trying again in {delay:?} from position {} ({} behind)",
                    progress.checkpoint, progress.lag
                );
            }
            _ => {}
        }))
        .map_err(|e| Failure::Error(e.to_string()))?;
    println!(
        "replicated {}: every event up to position {} is in the stream {}",
        args.file.display(),
        progress.checkpoint,
        args.stream
    );
    Ok(())
}

/// A stream's settings, on one line.
fn describe(s: &StreamSettings) -> String {
    format!(
        "stream {} ({}): subjects {}, duplicate window {:?}, storage {}, replicas {}, max age {}, \
         {} messages",
        s.name,
        if s.created { "created" } else { "found" },
        s.subjects.join(" "),
        s.duplicate_window,
        s.storage,
        s.replicas,
        if s.max_age.is_zero() {
            "unlimited".to_owned()
        } else {
            format!("{:?}", s.max_age)
        },
        s.messages
    )
}
