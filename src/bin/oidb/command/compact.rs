//! `oidb compact FILE`: give a file's free space back to the file system.

use crate::args::CompactArgs;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::progress::{Progress, Unit};
use crate::table::bytes;

pub fn run(args: &CompactArgs) -> Outcome {
    if !args.file.exists() {
        // Let the shared message say what to do about a missing file.
        return open::for_writing(&args.file, false).map(drop);
    }
    let progress = Progress::new(true, None, Unit::Elapsed, "compacting");
    let done = oidb::compact(&args.file).map_err(|e| open::explain(&args.file, e));
    progress.finish();
    let done = done?;
    let freed = done.bytes_before.saturating_sub(done.bytes_after);
    if freed == 0 {
        println!(
            "{} is already compact ({})",
            args.file.display(),
            bytes(done.bytes_after)
        );
    } else {
        println!(
            "compacted {}: {} -> {} ({} given back)",
            args.file.display(),
            bytes(done.bytes_before),
            bytes(done.bytes_after),
            bytes(freed)
        );
    }
    Ok::<(), Failure>(())
}
