//! What the server answers when a request fails: the reference server's status codes, with a
//! JSON body that says what is wrong and, where a field or parameter is at fault, names it.
//!
//! The body keeps `FastAPI`'s `detail` (what the reference server sends) and adds `message`
//! (what the SDK's errors read) and `field`.
//!
//! Uses `model::error`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::model::error::Error;

/// A refused or failed request (boxed: results that carry it stay small).
#[derive(Debug)]
pub(crate) struct ApiError(Box<Refusal>);

#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
    field: Option<String>,
    /// More members of the body (`current_version` of a conflict).
    extra: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(Box::new(Refusal {
            status,
            message: message.into(),
            field: None,
            extra: None,
        }))
    }

    /// 400: a parameter, header or body member the request got wrong.
    pub(crate) fn bad(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message).field(field)
    }

    /// 404: no such intent.
    pub(crate) fn no_intent(intent_id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Intent not found: no intent {intent_id} in this store"),
        )
        .field("intent_id")
    }

    /// 501: a route of the OpenIntent API this server does not serve.
    pub(crate) fn not_served(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "{method} {path} is part of the OpenIntent API, but oidb serve does not serve it \
                 (docs/server.md lists the routes it serves)"
            ),
        )
    }

    pub(crate) fn field(mut self, field: &str) -> ApiError {
        self.0.field = Some(field.to_owned());
        self
    }

    pub(crate) fn with(mut self, name: &'static str, value: serde_json::Value) -> ApiError {
        self.0.extra = Some((name, value));
        self
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match &error {
            Error::InvalidEvent { field, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).field(field)
            }
            Error::InvalidTraceId(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).field("trace_id")
            }
            Error::Conflict { .. } | Error::WrongExpectedSequence { .. } => {
                ApiError::new(StatusCode::CONFLICT, message)
            }
            Error::BudgetExceeded { .. } => ApiError::new(StatusCode::FORBIDDEN, message)
                .with("rule", serde_json::Value::from("max_cost")),
            Error::InvalidCursor(_) => ApiError::bad("after", message),
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Refusal {
            status,
            message,
            field,
            extra,
        } = *self.0;
        let mut body = serde_json::Map::new();
        body.insert("detail".into(), message.clone().into());
        body.insert("message".into(), message.into());
        if let Some(field) = field {
            body.insert("field".into(), field.into());
        }
        if let Some((name, value)) = extra {
            body.insert(name.into(), value);
        }
        (status, Json(serde_json::Value::Object(body))).into_response()
    }
}
