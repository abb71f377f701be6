//! The nesting depth of JSON values, measured and torn down without unbounded recursion.
//!
//! `serde_json` serializes and drops a [`Value`] recursively, one stack frame (or more) a level,
//! so a value nested 100,000 deep that a caller built in code would overflow the stack the moment
//! the store serialized or dropped it. The write path measures depth first (recursing no deeper
//! than the limit), and tears a refused value down here, one level at a time.
//!
//! Uses nothing else in the crate.

use serde_json::Value;

/// Whether arrays and objects in `value` nest deeper than `max` levels (a top-level array or
/// object is level 1). Recurses at most `max + 1` calls deep, however deep `value` is: every
/// event's payload is measured, so this walk allocates nothing.
pub(crate) fn exceeds(value: &Value, max: usize) -> bool {
    match value {
        Value::Array(items) => max == 0 || items.iter().any(|item| exceeds(item, max - 1)),
        Value::Object(map) => max == 0 || map.values().any(|item| exceeds(item, max - 1)),
        _ => false,
    }
}

/// Drops `value` without recursion, however deep it is.
pub(crate) fn dismantle(value: Value) {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested_arrays(depth: usize) -> Value {
        let mut value = Value::Array(Vec::new());
        for _ in 1..depth {
            value = Value::Array(vec![value]);
        }
        value
    }

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert!(!exceeds(&json!(1), 0));
        assert!(exceeds(&json!([]), 0));
        assert!(!exceeds(&json!({"a": [1, {"b": 2}]}), 3));
        assert!(exceeds(&json!({"a": [1, {"b": []}]}), 3));
        assert!(!exceeds(&nested_arrays(128), 128));
        assert!(exceeds(&nested_arrays(129), 128));
    }

    #[test]
    fn a_million_levels_are_measured_and_dropped_without_recursion() {
        let deep = nested_arrays(1_000_000);
        assert!(exceeds(&deep, 128));
        dismantle(deep);
    }
}
