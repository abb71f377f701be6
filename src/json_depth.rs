//! The nesting depth of JSON values, measured and torn down without recursion.
//!
//! `serde_json` serializes and drops a [`Value`] recursively, one stack frame (or more) a level,
//! so a value nested 100,000 deep that a caller built in code would overflow the stack the moment
//! the store serialized or dropped it. The write path measures depth first, and tears a refused
//! value down here, one level at a time.

use serde_json::Value;

/// Whether arrays and objects in `value` nest deeper than `max` levels (a top-level array or
/// object is level 1). Walks with a stack of at most `max` iterators.
pub(crate) fn exceeds(value: &Value, max: usize) -> bool {
    let mut open: Vec<Children<'_>> = Vec::new();
    let mut next = Some(value);
    loop {
        if let Some(children) = next.take().and_then(Children::of) {
            if open.len() == max {
                return true;
            }
            open.push(children);
        }
        let Some(innermost) = open.last_mut() else {
            return false;
        };
        next = innermost.next();
        if next.is_none() {
            open.pop();
        }
    }
}

/// The members of an array or the values of an object.
enum Children<'a> {
    Array(std::slice::Iter<'a, Value>),
    Object(serde_json::map::Values<'a>),
}

impl<'a> Children<'a> {
    fn of(value: &'a Value) -> Option<Children<'a>> {
        match value {
            Value::Array(items) => Some(Children::Array(items.iter())),
            Value::Object(map) => Some(Children::Object(map.values())),
            _ => None,
        }
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = &'a Value;

    fn next(&mut self) -> Option<&'a Value> {
        match self {
            Children::Array(items) => items.next(),
            Children::Object(values) => values.next(),
        }
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
