//! Reading OpenIntent payload fields by key, leniently: an event written by another tool may leave
//! a field out or give it another JSON type, and that makes it absent here, never an error.
//!
//! Uses nothing else in the crate.

use serde_json::Value;

/// The string at `key`, if it is a non-empty string.
pub(crate) fn text<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The count at `key`: a non-negative integer, or a float with no fraction (`12.0`).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked: whole, in range
pub(crate) fn count(payload: &Value, key: &str) -> Option<u64> {
    let value = payload.get(key)?;
    if let Some(n) = value.as_u64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
}

/// The number at `key`, if it is a finite number.
pub(crate) fn number(payload: &Value, key: &str) -> Option<f64> {
    payload
        .get(key)
        .and_then(Value::as_f64)
        .filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_or_mistyped_fields_are_absent() {
        let p = json!({"a": "x", "e": "", "n": 12, "f": 12.0, "h": 1.5, "neg": -1, "s": "12"});
        assert_eq!(text(&p, "a"), Some("x"));
        assert_eq!(text(&p, "e"), None);
        assert_eq!(text(&p, "n"), None);
        assert_eq!(count(&p, "n"), Some(12));
        assert_eq!(count(&p, "f"), Some(12));
        assert_eq!(count(&p, "h"), None);
        assert_eq!(count(&p, "neg"), None);
        assert_eq!(count(&p, "s"), None);
        assert_eq!(number(&p, "h"), Some(1.5));
        assert_eq!(number(&p, "missing"), None);
    }
}
