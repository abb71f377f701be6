//! [`Payload`]: an event's data, kept in the form the file holds it and decoded into a
//! `serde_json::Value` the first time it is looked at.
//!
//! Uses nothing else in the crate: the engine hands over bytes it has checked, with the function
//! that decodes them.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An event's data: a JSON object, read as a [`serde_json::Value`] through `Deref`.
///
/// An event read from a store keeps its payload as the file's bytes and decodes them the first
/// time the payload is looked at, then keeps the `Value`. A read that returns many events and
/// looks at few payloads builds no `Value` it does not need. The bytes were checked when the
/// event was read, so looking at a payload cannot fail.
///
/// Everything `&Value` offers works on a payload: indexing, `get`, `as_object`, comparison with
/// a `Value`, and passing `&event.payload` where a `&Value` is wanted. `DerefMut` gives a
/// `&mut Value`; [`Payload::into_value`] takes the `Value` out.
///
/// ```
/// use oidb::Payload;
/// use serde_json::{json, Value};
///
/// let payload = Payload::from(json!({"message": "Starting research phase", "step": 1}));
/// assert_eq!(payload["message"], "Starting research phase");
/// assert_eq!(payload.get("step").and_then(Value::as_u64), Some(1));
/// assert_eq!(payload, json!({"message": "Starting research phase", "step": 1}));
///
/// let value: Value = payload.into_value();
/// assert!(value.is_object());
/// ```
#[derive(Clone)]
pub struct Payload {
    form: Form,
}

#[derive(Clone)]
enum Form {
    /// A `Value` given or already decoded.
    Value(Value),
    /// The file's checked bytes, the function that decodes them, and the `Value` once decoded.
    Encoded {
        bytes: Box<[u8]>,
        decode: fn(&[u8]) -> Value,
        decoded: OnceLock<Value>,
    },
}

impl Payload {
    /// A payload kept as `bytes`, which `decode` turns into its `Value` when first looked at.
    /// `bytes` must have been checked: `decode` has no way to fail.
    pub(crate) fn encoded(bytes: Box<[u8]>, decode: fn(&[u8]) -> Value) -> Payload {
        Payload {
            form: Form::Encoded {
                bytes,
                decode,
                decoded: OnceLock::new(),
            },
        }
    }

    /// The payload as a `Value`, decoded if it was not yet.
    #[must_use]
    pub fn as_value(&self) -> &Value {
        match &self.form {
            Form::Value(value) => value,
            Form::Encoded {
                bytes,
                decode,
                decoded,
            } => decoded.get_or_init(|| decode(bytes)),
        }
    }

    /// The payload's `Value`, decoded if it was not yet.
    #[must_use]
    pub fn into_value(self) -> Value {
        match self.form {
            Form::Value(value) => value,
            Form::Encoded {
                bytes,
                decode,
                decoded,
            } => decoded.into_inner().unwrap_or_else(|| decode(&bytes)),
        }
    }
}

impl Deref for Payload {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.as_value()
    }
}

impl DerefMut for Payload {
    /// The payload's `Value`, to change; the file's bytes, no longer its form, are dropped.
    fn deref_mut(&mut self) -> &mut Value {
        if let Form::Encoded { .. } = self.form {
            let value = std::mem::take(self).into_value();
            self.form = Form::Value(value);
        }
        match &mut self.form {
            Form::Value(value) => value,
            Form::Encoded { .. } => unreachable!("the payload was decoded just above"),
        }
    }
}

impl Default for Payload {
    /// An empty object.
    fn default() -> Self {
        Payload::from(Value::Object(serde_json::Map::new()))
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload {
            form: Form::Value(value),
        }
    }
}

impl From<Payload> for Value {
    fn from(payload: Payload) -> Self {
        payload.into_value()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        if let (Form::Encoded { bytes: a, .. }, Form::Encoded { bytes: b, .. }) =
            (&self.form, &other.form)
        {
            // The same bytes decode to the same value; different bytes may still.
            if a == b {
                return true;
            }
        }
        self.as_value() == other.as_value()
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.as_value() == other
    }
}

impl PartialEq<Payload> for Value {
    fn eq(&self, other: &Payload) -> bool {
        self == other.as_value()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_value(), f)
    }
}

impl fmt::Display for Payload {
    /// The payload's JSON text, as `Value`'s `Display` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_value(), f)
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Payload::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Stands in for the engine's decoder: the bytes are JSON text.
    fn from_text(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn encoded(value: &Value) -> Payload {
        Payload::encoded(value.to_string().into_bytes().into(), from_text)
    }

    #[test]
    fn an_encoded_payload_reads_as_its_value() {
        let value = json!({"a": 1, "b": [true, null]});
        let payload = encoded(&value);
        assert_eq!(payload["b"][0], true);
        assert_eq!(payload, value);
        assert_eq!(value, payload);
        assert_eq!(payload.clone().into_value(), value);
        assert_eq!(format!("{payload:?}"), format!("{value:?}"));
        assert_eq!(payload.to_string(), value.to_string());
        assert_eq!(serde_json::to_value(&payload).unwrap(), value);
    }

    #[test]
    fn payloads_are_equal_by_value_whatever_their_form() {
        let value = json!({"x": "y"});
        assert_eq!(encoded(&value), Payload::from(value.clone()));
        assert_eq!(encoded(&value), encoded(&value));
        let spaced = Payload::encoded(b"{ \"x\" : \"y\" }".to_vec().into(), from_text);
        assert_eq!(spaced, encoded(&value));
        assert_ne!(encoded(&json!({"x": "z"})), encoded(&value));
    }

    #[test]
    fn changing_a_payload_changes_its_value() {
        let mut payload = encoded(&json!({"n": 1}));
        payload["n"] = json!(2);
        payload
            .as_object_mut()
            .unwrap()
            .insert("m".into(), json!(3));
        assert_eq!(payload, json!({"n": 2, "m": 3}));
        assert_ne!(payload, encoded(&json!({"n": 1})));
    }

    #[test]
    fn a_payload_reads_back_from_json() {
        let payload: Payload = serde_json::from_str(r#"{"k": [1, 2]}"#).unwrap();
        assert_eq!(payload, json!({"k": [1, 2]}));
        assert_eq!(Payload::default(), json!({}));
    }
}
