//! Tests and benchmarks only: the decrypted DAS record (`DatabaseActivityMonitoringRecord`) and its
//! events as a `serde_json::Value` tree, an independent second parser to check the processor's
//! hot-path view (`das_processor::event`) and the fixtures against. Not in the library: nothing
//! there needs it, and it made `activity`, `classify` and `event` import one another.
//!
//! Engines disagree on field types (exitCode, sessionId, statementId, transactionId, paramList may
//! be strings, numbers, null or arrays), and new fields appear with new versions. So an event is
//! kept as its JSON object, untouched, with accessors that read any scalar as text: no record is
//! ever refused because a known field has an unexpected type.

use std::borrow::Cow;

use serde_json::{Map, Value};

pub use das_processor::classify::Engine;
pub use das_processor::event::{ActivityError, RECORD_TYPE};

/// A decrypted record: its ids, its events, and any fields we do not know.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    /// `cluster-...` for Aurora; absent or empty for RDS instances.
    pub cluster_id: Option<String>,
    /// `db-...`.
    pub instance_id: Option<String>,
    pub events: Vec<Event>,
    /// Every other top-level field, as received.
    pub other: Map<String, Value>,
}

impl ActivityRecord {
    /// Parses a decrypted, decompressed payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, ActivityError> {
        let value: Value = serde_json::from_slice(bytes).map_err(ActivityError::Json)?;
        let Value::Object(mut map) = value else {
            return Err(ActivityError::NotAnObject(json_kind(&value)));
        };
        match map.get("type") {
            Some(Value::String(t)) if t == RECORD_TYPE => {}
            Some(other) => return Err(ActivityError::WrongType(scalar_text(other).into_owned())),
            None => return Err(ActivityError::WrongType(String::new())),
        }
        let events = match map.shift_remove("databaseActivityEventList") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| match item {
                    Value::Object(fields) => Ok(Event(fields)),
                    other => Err(ActivityError::EventNotObject {
                        index,
                        found: json_kind(&other),
                    }),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(ActivityError::EventListNotArray(json_kind(&other))),
        };
        let cluster_id = non_empty(map.get("clusterId"));
        let instance_id = non_empty(map.get("instanceId"));
        Ok(Self {
            cluster_id,
            instance_id,
            events,
            other: map,
        })
    }

    /// True when the record carries no activity: only heartbeats, or no events at all.
    pub fn is_heartbeat_only(&self) -> bool {
        self.events.iter().all(Event::is_heartbeat)
    }

    /// The events that are activity (not heartbeats).
    pub fn activity(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| !e.is_heartbeat())
    }
}

/// What an event is, from its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `"record"`: database activity.
    Record,
    /// `"heartbeat"`: keep-alive every few seconds; never activity.
    Heartbeat,
    /// Anything else: kept as activity so nothing is silently lost.
    Unknown,
}

/// One event, exactly as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Event(pub Map<String, Value>);

impl Event {
    pub fn kind(&self) -> EventKind {
        match self.0.get("type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case("record") => EventKind::Record,
            Some(t) if t.eq_ignore_ascii_case("heartbeat") => EventKind::Heartbeat,
            _ => EventKind::Unknown,
        }
    }

    pub fn is_heartbeat(&self) -> bool {
        self.kind() == EventKind::Heartbeat
    }

    /// A field as text whatever its JSON type: strings as they are, numbers and booleans
    /// printed; `None` for null, absent, arrays and objects.
    pub fn text(&self, field: &str) -> Option<Cow<'_, str>> {
        match self.0.get(field)? {
            Value::Null | Value::Array(_) | Value::Object(_) => None,
            scalar => Some(scalar_text(scalar)),
        }
    }

    /// A field as received.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }

    pub fn engine(&self) -> Engine {
        Engine::from_server_type(self.text("serverType").as_deref())
    }

    pub fn class(&self) -> Option<Cow<'_, str>> {
        self.text("class")
    }
    pub fn command(&self) -> Option<Cow<'_, str>> {
        self.text("command")
    }
    pub fn command_text(&self) -> Option<Cow<'_, str>> {
        self.text("commandText")
    }
    pub fn db_user_name(&self) -> Option<Cow<'_, str>> {
        self.text("dbUserName")
    }
    pub fn database_name(&self) -> Option<Cow<'_, str>> {
        self.text("databaseName")
    }
    pub fn log_time(&self) -> Option<Cow<'_, str>> {
        self.text("logTime")
    }
}

fn non_empty(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null | Value::Array(_) | Value::Object(_) => None,
        scalar => Some(scalar_text(scalar).into_owned()).filter(|s| !s.is_empty()),
    }
}

fn scalar_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Null => Cow::Borrowed(""),
        Value::Array(_) | Value::Object(_) => Cow::Owned(value.to_string()),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
