//! The viewer: a web page over the store, served at `/` by the same server (`oidb ui`, or
//! `oidb serve` and a browser). Its files are inside the binary (no CDN, no fonts fetched), and
//! it reads through its own routes under `/api/oidb/` ([`api`]) and the intent streams.
//!
//! The page files carry no data, so they are served without the API key; every read they make
//! sends it.
//!
//! Uses `server::shared`, `server::viewer::api`.

mod api;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::server::shared::Shared;

/// The viewer's data routes (behind the API key, as every other route).
pub(crate) fn api_routes() -> Router<Shared> {
    Router::new()
        .route("/api/oidb/runs", get(api::runs))
        .route("/api/oidb/runs/{intent_id}", get(api::run))
        .route(
            "/api/oidb/intents/{intent_id}/events",
            get(api::intent_events),
        )
        .route("/api/oidb/intents/{intent_id}/blocks", get(api::blocks))
        .route(
            "/api/oidb/intents/{intent_id}/traces",
            get(api::intent_traces),
        )
        .route("/api/oidb/traces/{trace_id}", get(api::trace))
        .route("/api/oidb/usage", get(api::usage))
        .route("/api/oidb/costs", get(api::costs))
        .route("/api/oidb/costs/over_time", get(api::cost_over_time))
        .route("/api/oidb/proofs", get(api::proofs))
}

/// A file of the page, with its type; the browser may keep it for a minute.
fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        body,
    )
}

/// The page's files, open without the key.
pub(crate) fn page_routes() -> Router<Shared> {
    Router::new()
        .route(
            "/",
            get(|| async { file("text/html; charset=utf-8", include_str!("page/index.html")) }),
        )
        .route(
            "/ui/app.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_str!("page/app.js"),
                )
            }),
        )
        .route(
            "/ui/charts.js",
            get(|| async {
                file(
                    "text/javascript; charset=utf-8",
                    include_str!("page/charts.js"),
                )
            }),
        )
        .route(
            "/ui/style.css",
            get(|| async { file("text/css; charset=utf-8", include_str!("page/style.css")) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { file("image/svg+xml", include_str!("page/icon.svg")) }),
        )
}
