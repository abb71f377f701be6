//! Times inside payloads, written as OpenIntent's Python SDK writes them: `datetime.isoformat()`
//! of a naive time, `YYYY-MM-DDTHH:MM:SS.ffffff` (the fraction left out when it is zero).
//!
//! oidb writes UTC there and reads such naive times as UTC, as it does everywhere else.
//!
//! Uses `model::time`.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serializer};

use crate::model::time;

/// `t` as Python's `isoformat()` writes a naive time.
pub(crate) fn format(t: DateTime<Utc>) -> String {
    let t = time::truncate(t);
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// Serde `serialize_with` for an optional time (skipped when `None` by the caller).
#[allow(clippy::ref_option)] // serde hands `serialize_with` a reference to the field
pub(crate) fn serialize<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serializer.serialize_str(&format(*t)),
        None => serializer.serialize_none(),
    }
}

/// Serde `deserialize_with` for an optional time: naive (read as UTC) or RFC 3339; `null` is `None`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => time::parse(text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_as_python_isoformat() {
        let t = time::parse("2026-11-20T09:00:13.367759").unwrap();
        assert_eq!(format(t), "2026-11-20T09:00:13.367759");
        let whole = time::parse("2026-11-20T09:00:13Z").unwrap();
        assert_eq!(format(whole), "2026-11-20T09:00:13");
        let leading_zeros = time::parse("2026-11-20T09:00:13.000500").unwrap();
        assert_eq!(format(leading_zeros), "2026-11-20T09:00:13.000500");
    }
}
