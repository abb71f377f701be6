//! Query parameters as the routes take them: each one checked, and a bad one answered with 422
//! naming it and what it must be.
//!
//! Uses `server::answer`.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};

use crate::server::answer::ApiError;

/// A number parameter within `low..=high`, or `default` when absent.
pub(crate) fn number(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
    low: usize,
    high: usize,
) -> Result<usize, ApiError> {
    let Some(text) = params.get(name) else {
        return Ok(default);
    };
    text.parse::<usize>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{name} must be a whole number from {low} to {high}, not {text:?}"),
            )
            .field(name)
        })
}

/// Refuses parameters a route does not take, naming them.
pub(crate) fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "unknown parameter {unknown:?}; this route takes {}",
                known.join(", ")
            ),
        )
        .field(unknown)),
        None => Ok(()),
    }
}

/// A time parameter in ISO 8601 / RFC 3339 (a time without an offset is taken as UTC, as
/// Python's `datetime.isoformat()` of a naive time writes it).
pub(crate) fn time(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| Some(t.and_utc()))
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "{name} must be an ISO 8601 time such as 2026-12-06T09:00:00Z, not {text:?}"
                ),
            )
            .field(name)
        })
}
