//! `oidb import FILE --nats URL --stream NAME [--store-id ID]`: a store rebuilt from the stream
//! `oidb replicate` wrote, in one transaction, each chain verified as it is written.

use std::io::Write;

use oidb::replicate::import_stream;
use serde_json::json;

use crate::args::ImportArgs;
use crate::failure::{Failure, Outcome};
use crate::open;
use crate::table::count;

pub fn run(args: &ImportArgs) -> Outcome {
    let (Some(nats), Some(stream)) = (&args.nats, &args.stream) else {
        return Err(Failure::Error(
            "--nats: give the server and --stream the stream to read".to_owned(),
        ));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the NATS client: {e}")))?;
    let created = !args.file.exists();
    let store = open::for_writing(&args.file, true)?;
    let imported = runtime.block_on(import_stream(
        &store,
        nats,
        stream,
        &args.subject_prefix,
        args.store_id.as_deref(),
    ));
    let imported = match imported {
        Ok(imported) => imported,
        Err(e) => {
            // A file this import created and put nothing in is not left behind.
            if created && store.last_position().is_ok_and(|last| last == 0) && store.close().is_ok()
            {
                let _ = std::fs::remove_file(&args.file);
            }
            return Err(Failure::Error(e.to_string()));
        }
    };
    store.close().map_err(|e| open::explain(&args.file, e))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = json!({
            "file": args.file.display().to_string(),
            "stream": stream,
            "store_id": imported.store_id,
            "messages": imported.messages,
            "read": imported.report.read,
            "appended": imported.report.appended,
            "already_present": imported.report.already_present,
        });
        writeln!(out, "{report}")?;
    } else {
        writeln!(
            out,
            "imported store {} from the stream {stream} into {}: {} messages, {} events, {} new, \
             {} already there",
            imported.store_id,
            args.file.display(),
            count(imported.messages),
            count(imported.report.read),
            count(imported.report.appended),
            count(imported.report.already_present),
        )?;
    }
    out.flush()?;
    Ok(())
}
