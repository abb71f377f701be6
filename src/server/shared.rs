//! What every request handler shares: the store and the API key, and the way store calls,
//! which block, are run off the async threads.
//!
//! Uses `store::handle`, `server::answer`, `server::auth`.

use std::sync::Arc;

use axum::http::StatusCode;

use crate::server::answer::ApiError;
use crate::server::auth::ApiKey;
use crate::store::handle::Store;

/// What every handler shares: the store.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) key: ApiKey,
}

impl Shared {
    pub(crate) fn new(store: Store, api_key: Option<String>) -> Shared {
        Shared {
            store,
            key: ApiKey(api_key.map(Arc::from)),
        }
    }
}

/// Runs a store call on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}
