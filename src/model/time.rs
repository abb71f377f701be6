//! Timestamps: UTC with microsecond precision, written as OpenIntent writes them.
//!
//! Uses nothing else in the crate.

use chrono::{DateTime, Datelike as _, NaiveDateTime, SecondsFormat, Timelike as _, Utc};

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

/// The length of a wire time of a four-digit year: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub(crate) const WIRE_LEN: usize = 27;

/// Writes `t` as [`format()`] does, into `buf` instead of a new string; `None` when its form is
/// not [`WIRE_LEN`] bytes long (years outside 0000 to 9999), for which use [`format()`].
pub(crate) fn format_into(t: DateTime<Utc>, buf: &mut [u8; WIRE_LEN]) -> Option<&str> {
    let year = u32::try_from(t.year()).ok().filter(|year| *year <= 9999)?;
    // A leap second (never made from microseconds) is left to chrono.
    let micros = Some(t.nanosecond() / 1_000).filter(|micros| *micros < 1_000_000)?;
    let fields: [(u32, usize, usize); 7] = [
        (year, 0, 4),
        (t.month(), 5, 2),
        (t.day(), 8, 2),
        (t.hour(), 11, 2),
        (t.minute(), 14, 2),
        (t.second(), 17, 2),
        (micros, 20, 6),
    ];
    *buf = *b"0000-00-00T00:00:00.000000Z";
    for (mut value, at, width) in fields {
        for digit in buf.get_mut(at..at + width)?.iter_mut().rev() {
            // `value % 10` is a digit.
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    std::str::from_utf8(buf).ok()
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

    /// Written into a buffer, a time reads as [`format()`] writes it, from year 0000 to 9999;
    /// other years are left to [`format()`].
    #[test]
    fn format_into_writes_what_format_writes() {
        let mut buf = [0; WIRE_LEN];
        let first = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        let last = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
        let mut micros = first;
        while micros <= last {
            let t = from_micros(micros).unwrap();
            assert_eq!(
                format_into(t, &mut buf),
                Some(format(t).as_str()),
                "{micros}"
            );
            micros += 9_876_543_210_987;
        }
        for micros in [first, last, 0, -1, 1, 1_790_000_000_123_456] {
            let t = from_micros(micros).unwrap();
            assert_eq!(
                format_into(t, &mut buf),
                Some(format(t).as_str()),
                "{micros}"
            );
        }
        for micros in [first - 1, last + 1, i64::MIN / 2, i64::MAX / 2] {
            assert_eq!(format_into(from_micros(micros).unwrap(), &mut buf), None);
        }
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
