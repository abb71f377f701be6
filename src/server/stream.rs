//! Server-sent events for an intent, on both paths the SDK and the reference server use
//! (`/api/v1/intents/{id}/subscribe`, `/api/v1/subscribe/intents/{id}`).
//!
//! Each event goes out as `event: <event_type>`, `id: <position>` and `data: <the event's
//! OpenIntent JSON>`. A client that reconnects with `Last-Event-ID` gets everything after that
//! position, then the live events; one without starts with what comes next. `?after=POSITION`
//! does the same as `Last-Event-ID` for a client that cannot set headers on its first request
//! (the header wins when both are given). Behind it is a
//! store subscription on a blocking thread: a client too slow to read keeps its place, and the
//! subscription reads what it missed from the file, so nothing is dropped. A comment every 15 s
//! keeps idle connections open.
//!
//! Uses `model::event`, `model::filter`, `subscribe::hub`, `server::answer`, `server::intents`,
//! `server::shared`.

use std::convert::Infallible;
use std::time::Duration;

use std::collections::HashMap;

use axum::extract::{Path, Query as Params, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use crate::model::event::Position;
use crate::model::filter::Query;
use crate::server::answer::ApiError;
use crate::server::shared::{blocking, Shared};
use crate::subscribe::hub::{Delivery, Filter, Start};

/// Events waiting for a client before the subscription behind it stops taking more.
const BUFFER: usize = 256;

/// `GET .../subscribe`: the intent's events as they are appended.
pub(crate) async fn intent(
    State(shared): State<Shared>,
    Path(intent_id): Path<String>,
    headers: HeaderMap,
    Params(params): Params<HashMap<String, String>>,
) -> Response {
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "after") {
        return ApiError::bad(
            unknown,
            format!("unknown parameter {unknown:?}; this route takes after"),
        )
        .into_response();
    }
    let after: Option<Position> = match headers.get("last-event-id") {
        None => match params.get("after").map(|a| a.trim().parse()) {
            None => None,
            Some(Ok(position)) => Some(position),
            Some(Err(_)) => {
                return ApiError::bad("after", "after must be a position (a whole number)")
                    .into_response()
            }
        },
        Some(value) => match value.to_str().ok().and_then(|v| v.trim().parse().ok()) {
            Some(position) => Some(position),
            None => {
                return ApiError::bad(
                    "Last-Event-ID",
                    "Last-Event-ID must be the id of an event this stream sent (a position)",
                )
                .into_response()
            }
        },
    };
    let store = shared.store.clone();
    let id = intent_id.clone();
    let subscription = blocking(move || {
        let known = store
            .snapshot()?
            .query(&Query::new().intent(id.as_str()).limit(1))?;
        if known.events.is_empty() {
            return Err(ApiError::no_intent(&id));
        }
        let start = after.map_or(Start::Now, Start::After);
        Ok(store.subscribe(Filter::new().intent(id), start)?)
    })
    .await;
    let mut subscription = match subscription {
        Ok(subscription) => subscription,
        Err(error) => return error.into_response(),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<SseEvent>(BUFFER);
    tokio::task::spawn_blocking(move || loop {
        match subscription.recv_timeout(Duration::from_secs(1)) {
            Ok(Some(Delivery::Event(event))) => {
                let data = serde_json::to_string(&*event).unwrap_or_default();
                let sse = SseEvent::default()
                    .event(event.event_type.as_str())
                    .id(event.position.to_string())
                    .data(data);
                // Waits while the client is slow; the subscription behind keeps its place.
                if sender.blocking_send(sse).is_err() {
                    return;
                }
            }
            Ok(None) if sender.is_closed() => return,
            // History's end, or a quiet second: nothing to send.
            Ok(Some(Delivery::CaughtUp { .. }) | None) => {}
            Err(error) => {
                let _ = sender.blocking_send(
                    SseEvent::default()
                        .event("error")
                        .data(serde_json::json!({"error": error.to_string()}).to_string()),
                );
                return;
            }
        }
    });
    let events = stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<SseEvent, Infallible>(event), receiver))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
