//! `oidb serve`: OpenIntent's REST API and its server-sent events over a store, for the real
//! OpenIntent SDK (`OpenIntentClient`), curl and anything else that speaks HTTP.
//!
//! An agent can serve its own live store from its own process ([`serve`]); `oidb serve FILE`
//! does the same from the command line. The routes follow the reference server's paths, status
//! codes and JSON shapes (docs/server.md); a route the SDK has and oidb does not serve answers
//! 501. The HTTP stack is axum on tokio, on a runtime of the server's own, so the caller need
//! not run one; store calls, which block, run on its blocking threads.
//!
//! A server can also read a file that another process writes ([`Server::read_only`]): it serves
//! every read, follows the writer's commits for its streams, and answers writes with 405.
//!
//! Uses `model::error`, `store::handle`, `store::read_only`, `server::routes`, `server::shared`.

mod answer;
mod auth;
mod costs;
mod intents;
mod params;
mod proofs;
mod routes;
mod shared;
mod stream;
mod viewer;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::model::error::Error;
use crate::store::handle::Store;
use crate::store::read_only::ReadOnlyStore;

/// A server being set up: [`Server::new`], then [`Server::bind`].
///
/// ```
/// use oidb::server::Server;
///
/// # let dir = tempfile::tempdir()?;
/// let store = oidb::Store::open(dir.path().join("agent.oidb"))?;
/// let running = Server::new(store).bind("127.0.0.1:0".parse()?)?;
/// let base = format!("http://{}/api/v1", running.local_addr());
/// # assert!(base.starts_with("http://127.0.0.1:"));
/// running.stop()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct Server {
    store: shared::Backing,
    api_key: Option<String>,
}

impl Server {
    /// A server of `store`, without an API key (loopback addresses only).
    pub fn new(store: Store) -> Server {
        Server {
            store: shared::Backing::Writer(store),
            api_key: None,
        }
    }

    /// A server that only reads `store`, a file another process may be writing: every read
    /// route answers from the writer's last published commit, streams follow its new commits,
    /// and write routes answer 405.
    ///
    /// ```
    /// use oidb::server::Server;
    /// use oidb::ReadOnlyStore;
    ///
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("agent.oidb");
    /// let agent = oidb::Store::open(&path)?; // the agent, writing
    /// let running = Server::read_only(ReadOnlyStore::open(&path)?).bind("127.0.0.1:0".parse()?)?;
    /// # running.stop()?;
    /// # drop(agent);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_only(store: ReadOnlyStore) -> Server {
        Server {
            store: shared::Backing::Reader(Arc::new(store)),
            api_key: None,
        }
    }

    /// Requires every request to send `X-API-Key: key` (as `OpenIntentClient(api_key=...)`
    /// does); checked in constant time. Needed to listen on an address other than loopback.
    pub fn api_key(mut self, key: impl Into<String>) -> Server {
        self.api_key = Some(key.into()).filter(|k| !k.is_empty());
        self
    }

    /// Listens on `addr` and serves in threads of its own until [`Running::stop`].
    ///
    /// # Errors
    /// [`Error::Serve`] when `addr` is not a loopback address and no API key is set, or when the
    /// address cannot be listened on.
    pub fn bind(self, addr: SocketAddr) -> Result<Running, Error> {
        if !addr.ip().is_loopback() && self.api_key.is_none() {
            return Err(Error::Serve {
                addr,
                reason: "it is not a loopback address, and no API key is set: anyone who can \
                         reach it could read and write the store; set one (--api-key KEY), or \
                         listen on 127.0.0.1"
                    .into(),
            });
        }
        let fail = |reason: String| Error::Serve { addr, reason };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("oidb-server")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start its runtime: {e}")))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| fail(e.to_string()))?;
        let local_addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
        let app = routes::router(shared::Shared::new(self.store, self.api_key));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("oidb-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await
                })
            })
            .map_err(|e| fail(format!("cannot start its thread: {e}")))?;
        Ok(Running {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Serves `store` on `addr` (loopback, no API key): [`Server::new`] then [`Server::bind`].
///
/// # Errors
/// As [`Server::bind`].
pub fn serve(store: Store, addr: SocketAddr) -> Result<Running, Error> {
    Server::new(store).bind(addr)
}

/// A server that is listening; stopped by [`Running::stop`] or when dropped.
#[derive(Debug)]
pub struct Running {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The address it listens on (with the port the system chose, for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening, lets the requests in progress finish (server-sent event streams end),
    /// and returns once the server is gone.
    ///
    /// # Errors
    /// [`Error::Serve`] when serving had failed.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shut_down()
    }

    /// Serves until the server fails (it never stops on its own otherwise).
    ///
    /// # Errors
    /// [`Error::Serve`] when serving failed.
    pub fn wait(mut self) -> Result<(), Error> {
        let served = self.thread.take().map(std::thread::JoinHandle::join);
        self.result_of(served)
    }

    fn shut_down(&mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.thread.take().map(std::thread::JoinHandle::join);
        self.result_of(served)
    }

    fn result_of(
        &self,
        served: Option<std::thread::Result<std::io::Result<()>>>,
    ) -> Result<(), Error> {
        let reason = match served {
            None | Some(Ok(Ok(()))) => return Ok(()),
            Some(Ok(Err(e))) => e.to_string(),
            Some(Err(_)) => "its thread panicked".into(),
        };
        Err(Error::Serve {
            addr: self.local_addr,
            reason,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}
