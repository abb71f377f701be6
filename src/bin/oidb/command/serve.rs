//! `oidb serve FILE [--addr 127.0.0.1:8765] [--api-key KEY]`: the file over OpenIntent's REST API
//! and SSE, until the process is told to stop (Ctrl-C, SIGTERM), when it closes the file cleanly.

use oidb::server::Server;

use crate::args::ServeArgs;
use crate::failure::{Failure, Outcome};
use crate::open;

pub fn run(args: &ServeArgs) -> Outcome {
    let store = open::for_writing(&args.file, true)?;
    let mut server = Server::new(store.clone());
    if let Some(key) = &args.api_key {
        server = server.api_key(key.clone());
    }
    let running = server.bind(args.addr).map_err(Failure::from)?;
    println!(
        "serving {} at http://{}/api/v1 (OpenIntentClient(base_url=\"http://{}\", ...)); \
         stop with Ctrl-C",
        args.file.display(),
        running.local_addr(),
        running.local_addr()
    );
    wait_for_a_stop_signal()?;
    running.stop().map_err(Failure::from)?;
    store.close().map_err(|e| open::explain(&args.file, e))?;
    eprintln!("stopped; {} closed", args.file.display());
    Ok(())
}

/// Waits for SIGINT or SIGTERM.
fn wait_for_a_stop_signal() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot wait for signals: {e}")))?;
    runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| Failure::Error(format!("cannot wait for SIGTERM: {e}")))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}
