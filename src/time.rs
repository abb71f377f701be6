//! Timestamps: UTC with microsecond precision, written as OpenIntent writes them.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// The current time, truncated to whole microseconds (what the store keeps).
#[must_use]
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// `t` truncated to whole microseconds.
#[must_use]
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    from_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Microseconds since the Unix epoch.
#[must_use]
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The time `micros` microseconds after the Unix epoch, if representable.
#[must_use]
pub fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// Writes `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, the wire form.
#[must_use]
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads a wire time: RFC 3339 with `Z` or an offset (converted to UTC), or a naive ISO 8601 time
/// (as the OpenIntent server writes them), read as UTC. Precision beyond microseconds is truncated.
///
/// # Errors
/// A message saying what form was expected.
pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(truncate(t.with_timezone(&Utc)));
    }
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return Ok(truncate(t.and_utc()));
        }
    }
    Err(format!(
        "{s:?} is not a time; expected RFC 3339 like 2026-11-20T09:00:07.097374Z (naive times are read as UTC)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_and_offset_times_become_utc() {
        let naive = parse("2026-11-20T09:00:07.097374").unwrap();
        assert_eq!(format(naive), "2026-11-20T09:00:07.097374Z");
        let offset = parse("2026-11-20T10:00:07.5+01:00").unwrap();
        assert_eq!(format(offset), "2026-11-20T09:00:07.500000Z");
        let nanos = parse("2026-11-20T09:00:07.123456789Z").unwrap();
        assert_eq!(format(nanos), "2026-11-20T09:00:07.123456Z");
        assert!(parse("yesterday").is_err());
    }
}
