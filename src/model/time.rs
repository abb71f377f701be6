//! Timestamps: UTC with microsecond precision, written as OpenIntent writes them.
//!
//! Uses nothing else in the crate.

use chrono::{DateTime, Datelike as _, NaiveDateTime, SecondsFormat, Utc};

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

/// Whether `t` has a wire form: RFC 3339 writes four-digit years, 0000 to 9999.
#[must_use]
pub fn has_wire_form(t: DateTime<Utc>) -> bool {
    (0..=9999).contains(&t.year())
}

/// Reads a wire time: RFC 3339 with `Z` or an offset (converted to UTC), or a naive ISO 8601 time
/// (as the OpenIntent server writes them), read as UTC. Precision beyond microseconds is truncated.
/// Years outside 0000 to 9999 are refused: [`format()`] could not write them back as RFC 3339.
///
/// # Errors
/// A message saying what form was expected.
pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
    let in_range = |t: DateTime<Utc>| {
        if has_wire_form(t) {
            Ok(t)
        } else {
            Err(format!(
                "{s:?} is outside the years 0000 to 9999 that an RFC 3339 time can hold"
            ))
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return in_range(truncate(t.with_timezone(&Utc)));
    }
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, layout) {
            return in_range(truncate(t.and_utc()));
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

    /// Found by fuzzing: a naive time past year 9999 was read, but `format` writes it as
    /// `+10000-…`, which no RFC 3339 reader (this one included) reads back.
    #[test]
    fn only_times_that_format_can_write_are_read() {
        for text in [
            "+10000-01-01T00:00:00",
            "-0001-01-01T00:00:00",
            "10000-01-01 00:00:00",
        ] {
            let error = parse(text).expect_err(text);
            assert!(
                error.contains(text) || error.contains("0000 to 9999"),
                "{error}"
            );
        }
        for text in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            let t = parse(text).unwrap();
            assert_eq!(parse(&format(t)), Ok(t));
        }
        // An offset can carry a time past the end of year 9999 in UTC.
        assert!(parse("9999-12-31T23:30:00-01:00").is_err());
    }
}
