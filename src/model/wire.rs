//! The wire form: events as OpenIntent's `IntentEvent.to_dict()` writes them, in and out.
//!
//! Uses `model::event`, `model::event_type`, `model::time`.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::event::Event;
use crate::model::event::NewEvent;
use crate::model::event::{GivenChain, Level};
use crate::model::event_type::EventType;
use crate::model::time;

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("intent_id", &self.intent_id)?;
        map.serialize_entry("event_type", self.event_type.as_str())?;
        map.serialize_entry("actor", &self.actor)?;
        map.serialize_entry("payload", &self.payload)?;
        map.serialize_entry("created_at", &time::format(self.created_at))?;
        map.serialize_entry("sequence", &self.sequence)?;
        if let Some(previous) = &self.previous_event_hash {
            map.serialize_entry("previous_event_hash", previous)?;
        }
        map.serialize_entry("event_hash", &self.event_hash)?;
        if let Some(trace_id) = &self.trace_id {
            map.serialize_entry("trace_id", trace_id)?;
        }
        if let Some(parent) = &self.parent_event_id {
            map.serialize_entry("parent_event_id", parent)?;
        }
        if let Some(proof) = &self.proof {
            map.serialize_entry("proof", proof)?;
        }
        map.serialize_entry("position", &self.position)?;
        if self.level != Level::Info {
            map.serialize_entry("level", self.level.as_str())?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads the wire form back. `created_at`, `sequence` and `event_hash` are required (an event
    /// without them was never stored: import it instead); `position` is 0 when absent.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let wire = WireEvent::from_value(value).map_err(D::Error::custom)?;
        let chain = wire
            .chain
            .ok_or_else(|| D::Error::custom("missing `sequence` or `event_hash`"))?;
        let created_at = wire.event.created_at.ok_or_else(|| {
            D::Error::custom("field `created_at` is missing (a stored event has its time)")
        })?;
        Ok(Event {
            position: wire.position.unwrap_or(0),
            id: wire.id,
            intent_id: wire.event.intent_id,
            event_type: wire.event.event_type,
            actor: wire.event.actor,
            payload: wire.event.payload.into(),
            created_at,
            sequence: chain.sequence,
            previous_event_hash: chain.previous_event_hash,
            event_hash: chain.event_hash,
            trace_id: wire.event.trace_id,
            parent_event_id: wire.event.parent_event_id,
            level: wire.event.level,
            proof: wire.event.proof,
        })
    }
}

/// One event read from wire JSON: the [`NewEvent`] it asks for, plus what came with it.
#[derive(Debug, Clone)]
pub(crate) struct WireEvent {
    pub(crate) id: Uuid,
    pub(crate) position: Option<u64>,
    pub(crate) event: NewEvent,
    pub(crate) chain: Option<GivenChain>,
    /// What of the object as written is kept in another form (or not at all): a hash computed
    /// over the object as written does not match the event as stored.
    pub(crate) rewritten: Vec<String>,
}

impl WireEvent {
    /// Reads an OpenIntent event object. Server style (no sequence, no hashes) and chained
    /// (sequence and hashes present) are both accepted; `sequence` without `event_hash` is refused.
    pub(crate) fn from_value(value: Value) -> Result<WireEvent, String> {
        let Value::Object(mut object) = value else {
            return Err(format!("expected a JSON object, found {}", kind(&value)));
        };
        let mut rewritten = Vec::new();
        let id_text = required_string(&mut object, "id")?;
        let id = Uuid::parse_str(&id_text)
            .map_err(|e| format!("field `id`: {id_text:?} is not a UUID ({e})"))?;
        if id_text != id.to_string() {
            rewritten.push(format!("`id` {id_text:?} is kept as \"{id}\""));
        }
        let intent_id = required_string(&mut object, "intent_id")?;
        let event_type = EventType::parse(&required_string(&mut object, "event_type")?);
        let actor = optional_string(&mut object, "actor")?.unwrap_or_default();
        let payload = match object.remove("payload") {
            None => Value::Object(Map::new()),
            Some(Value::Null) => {
                rewritten.push("`payload` null is kept as {}".into());
                Value::Object(Map::new())
            }
            Some(p) => p,
        };
        let created_at = match optional_string(&mut object, "created_at")? {
            Some(text) => {
                let at = time::parse(&text).map_err(|e| format!("field `created_at`: {e}"))?;
                if text != time::format(at) {
                    rewritten.push(format!(
                        "`created_at` {text:?} is kept as {:?}",
                        time::format(at)
                    ));
                }
                Some(at)
            }
            None => None,
        };
        let sequence = match object.remove("sequence") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|s| *s > 0).ok_or_else(|| {
                format!("field `sequence`: expected a whole number from 1, found {v}")
            })?),
        };
        let previous_event_hash = optional_string(&mut object, "previous_event_hash")?;
        let event_hash = optional_string(&mut object, "event_hash")?;
        let trace_id = optional_string(&mut object, "trace_id")?;
        let parent_event_id = optional_string(&mut object, "parent_event_id")?;
        let level = match optional_string(&mut object, "level")? {
            Some(name) => Level::parse(&name).ok_or_else(|| {
                format!("field `level`: unknown level {name:?}; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL")
            })?,
            None => Level::Info,
        };
        let proof = object.remove("proof").filter(|p| !p.is_null());
        let position = match object.remove("position") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                format!("field `position`: expected a whole number from 0, found {v}")
            })?),
        };

        let chain = match (sequence, event_hash) {
            (Some(sequence), Some(event_hash)) => Some(GivenChain {
                sequence,
                previous_event_hash,
                event_hash,
            }),
            (None, None) if previous_event_hash.is_none() => None,
            (None, None) => return Err("field `previous_event_hash` is given without `sequence` and `event_hash`".into()),
            (Some(_), None) => return Err("field `event_hash` is missing while `sequence` is given (a chained event has both)".into()),
            (None, Some(_)) => return Err("field `sequence` is missing while `event_hash` is given (a chained event has both)".into()),
        };

        let mut event = NewEvent::new(intent_id, event_type, actor)
            .payload(payload)
            .id(id)
            .level(level);
        event.created_at = created_at;
        event.trace_id = trace_id;
        event.parent_event_id = parent_event_id;
        event.proof = proof;
        event.chain.clone_from(&chain);
        if !object.is_empty() {
            let names: Vec<&str> = object.keys().map(String::as_str).collect();
            rewritten.push(format!("fields {} are not kept", names.join(", ")));
        }
        Ok(WireEvent {
            id,
            position,
            event,
            chain,
            rewritten,
        })
    }
}

fn required_string(object: &mut Map<String, Value>, field: &str) -> Result<String, String> {
    optional_string(object, field)?.ok_or_else(|| format!("field `{field}` is missing"))
}

fn optional_string(object: &mut Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "field `{field}`: expected a string, found {}",
            kind(&other)
        )),
    }
}

/// The JSON kind of `value`, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::model::event::Event;

    fn stored() -> Value {
        json!({
            "id": "81e74ef5-e8e2-4d94-8ed9-04759531985d",
            "intent_id": "i",
            "event_type": "comment",
            "actor": "a",
            "payload": {},
            "created_at": "2026-11-20T09:00:07.097374Z",
            "sequence": 1,
            "event_hash": "sha256:00",
            "position": 7
        })
    }

    fn error_of(value: Value) -> String {
        serde_json::from_value::<Event>(value)
            .expect_err("an event that was never stored")
            .to_string()
    }

    #[test]
    fn a_stored_event_reads_back() {
        let event: Event = serde_json::from_value(stored()).unwrap();
        assert_eq!(event.position, 7);
        assert_eq!(
            crate::model::time::format(event.created_at),
            "2026-11-20T09:00:07.097374Z"
        );
    }

    /// It read as 1970-01-01 instead.
    #[test]
    fn an_event_without_created_at_is_an_error_naming_it() {
        let mut value = stored();
        value.as_object_mut().unwrap().remove("created_at");
        assert!(error_of(value).contains("`created_at`"));
    }

    /// It read as position 0 instead.
    #[test]
    fn a_position_that_is_not_a_whole_number_is_an_error_naming_it() {
        for position in [json!("7"), json!(-1), json!(1.5)] {
            let mut value = stored();
            value["position"] = position;
            assert!(error_of(value).contains("`position`"));
        }
        let mut value = stored();
        value["position"] = Value::Null;
        assert_eq!(serde_json::from_value::<Event>(value).unwrap().position, 0);
    }
}
