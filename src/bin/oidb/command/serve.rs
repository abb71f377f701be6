//! `oidb serve FILE [--addr 127.0.0.1:8765] [--api-key KEY]`: the file over OpenIntent's REST API
//! and SSE, and the viewer at `/`, until the process is told to stop (Ctrl-C, SIGTERM), when it
//! closes the file cleanly. `oidb ui FILE` does the same, prints the viewer's address and opens
//! it in a browser.
//!
//! When another process writes the file (an agent running), the file is served read-only: every
//! page and read route works and follows the writer's commits; write routes answer 405.

use std::path::Path;

use oidb::server::{Running, Server};
use oidb::{Error, ReadOnlyStore, Store};

use crate::args::{ServeArgs, UiArgs};
use crate::failure::{Failure, Outcome};
use crate::open;

pub fn run(args: &ServeArgs) -> Outcome {
    serve(args, |running| {
        println!(
            "serving {} at http://{addr}/api/v1 (OpenIntentClient(base_url=\"http://{addr}\", \
             ...)), the viewer at http://{addr}/; stop with Ctrl-C",
            args.file.display(),
            addr = running.local_addr()
        );
    })
}

pub fn run_ui(args: &UiArgs) -> Outcome {
    if !args.serve.file.exists() {
        return Err(Failure::Error(format!(
            "{}: no such file; `oidb demo` writes one to look at",
            args.serve.file.display()
        )));
    }
    serve(&args.serve, |running| {
        let url = format!("http://{}/", running.local_addr());
        println!(
            "the viewer of {} is at {url}; stop with Ctrl-C",
            args.serve.file.display()
        );
        if !args.no_open {
            open_in_browser(&url);
        }
    })
}

/// The file as this process opens it: its writer, or a reader beside the process that writes it.
enum Opened {
    Writer(Store),
    Reader,
}

fn serve(args: &ServeArgs, started: impl FnOnce(&Running)) -> Outcome {
    let (opened, server) = match Store::builder().actor("oidb-cli").open(&args.file) {
        Ok(store) => (Opened::Writer(store.clone()), Server::new(store)),
        Err(Error::FileInUse { .. }) => {
            let reader =
                ReadOnlyStore::open(&args.file).map_err(|e| open::explain(&args.file, e))?;
            eprintln!(
                "note: another process writes {}: serving it read-only (reads follow its commits; \
                 writes answer 405)",
                args.file.display()
            );
            (Opened::Reader, Server::read_only(reader))
        }
        Err(error) => return Err(open::explain(&args.file, error)),
    };
    let server = match &args.api_key {
        Some(key) => server.api_key(key.clone()),
        None => server,
    };
    let running = server.bind(args.addr).map_err(Failure::from)?;
    started(&running);
    wait_for_a_stop_signal()?;
    running.stop().map_err(Failure::from)?;
    if let Opened::Writer(store) = opened {
        store.close().map_err(|e| open::explain(&args.file, e))?;
    }
    eprintln!("stopped; {} closed", args.file.display());
    Ok(())
}

/// Opens `url` with the desktop's opener when there is a desktop to open it on; says so when
/// there is none, and goes on serving either way.
fn open_in_browser(url: &str) {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let opener = ["xdg-open", "open"].into_iter().find(|name| on_path(name));
    match opener {
        Some(opener) if desktop || opener == "open" => {
            let spawned = std::process::Command::new(opener)
                .arg(url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            if let Err(e) = spawned {
                eprintln!("note: could not open a browser ({opener}: {e}); open {url} yourself");
            }
        }
        _ => eprintln!(
            "note: no browser to open here; open {url} in one (--no-open stops this note)"
        ),
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(name).is_file())
    })
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
