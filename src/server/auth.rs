//! The API key: when the server has one, every request must send it in `X-API-Key` (as
//! `OpenIntentClient(api_key=...)` does), compared in constant time; the rest get 401 and never
//! reach a handler. Without one (loopback only), any key, or none, is let in.
//!
//! Uses `server::answer`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::server::answer::ApiError;

/// The key requests must carry, if any.
#[derive(Clone, Debug)]
pub(crate) struct ApiKey(pub(crate) Option<std::sync::Arc<str>>);

/// Lets a request through when it carries the key (or none is set); else answers 401.
pub(crate) async fn check(State(key): State<ApiKey>, request: Request, next: Next) -> Response {
    if let Some(wanted) = &key.0 {
        let given = request
            .headers()
            .get("x-api-key")
            .map(axum::http::HeaderValue::as_bytes)
            .unwrap_or_default();
        // The lengths may differ in time; the bytes are compared in constant time.
        let matches = given.len() == wanted.len() && bool::from(given.ct_eq(wanted.as_bytes()));
        if !matches {
            return ApiError::new(StatusCode::UNAUTHORIZED, "Invalid or missing API key")
                .field("X-API-Key")
                .into_response();
        }
    }
    next.run(request).await
}
