//! The decrypted DAS record (`DatabaseActivityMonitoringRecord`) and its events.
//!
//! Engines disagree on field types (exitCode, sessionId, statementId, transactionId, paramList may
//! be strings, numbers, null or arrays), and new fields appear with new versions. So an event is
//! kept as its JSON object, untouched, with accessors that read any scalar as text: no record is
//! ever refused because a known field has an unexpected type.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub use crate::classify::Engine;

/// The `type` of a decrypted record.
pub const RECORD_TYPE: &str = "DatabaseActivityMonitoringRecord";

/// Why a decrypted payload is not a DAS record.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    #[error("decrypted payload is not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The hot path's parse error, with every quoted value blanked out: it is logged, and the
    /// payload is plaintext audit data.
    #[error("decrypted record is not a DAS record: {0}")]
    Invalid(String),
    #[error("decrypted payload is JSON {0}, expected an object")]
    NotAnObject(&'static str),
    #[error("record type is {0:?}, expected \"DatabaseActivityMonitoringRecord\"")]
    WrongType(String),
    #[error("databaseActivityEventList is JSON {0}, expected an array")]
    EventListNotArray(&'static str),
    #[error("event {index} of databaseActivityEventList is JSON {found}, expected an object")]
    EventNotObject { index: usize, found: &'static str },
}

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

/// Serde helper: a string, number or boolean as `Some(text)`; null or absent as `None`.
pub(crate) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null | Value::Array(_) | Value::Object(_) => None,
        scalar => Some(scalar_text(&scalar).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: &str = r#"{"type":"DatabaseActivityMonitoringRecord","clusterId":"cluster-ABC","instanceId":"db-XYZ",
      "databaseActivityEventList":[
        {"type":"heartbeat"},
        {"type":"record","class":"DDL","command":"CREATE TABLE","commandText":"create table t(i int)",
         "dbUserName":"alice","databaseName":"app","exitCode":0,"serverType":"PostgreSQL",
         "logTime":"2021-06-04 02:22:47.218201+00","paramList":[],"statementId":7,"newField":{"a":1}},
        {"type":"record","class":"MAIN","command":"QUERY","serverType":"MySQL","exitCode":"0",
         "statementId":"7","transactionId":null,"paramList":null}
      ],"futureTopLevel":true}"#;

    #[test]
    fn parses_engines_with_different_field_types() {
        let rec = ActivityRecord::parse(PG.as_bytes()).unwrap();
        assert_eq!(rec.cluster_id.as_deref(), Some("cluster-ABC"));
        assert_eq!(rec.instance_id.as_deref(), Some("db-XYZ"));
        assert_eq!(rec.events.len(), 3);
        assert!(!rec.is_heartbeat_only());
        assert_eq!(rec.activity().count(), 2);
        assert_eq!(rec.other["futureTopLevel"], true);

        let pg = &rec.events[1];
        assert_eq!(pg.engine(), Engine::PostgreSql);
        assert_eq!(pg.text("exitCode").as_deref(), Some("0"));
        assert_eq!(pg.text("statementId").as_deref(), Some("7"));
        assert_eq!(pg.text("paramList"), None);
        assert_eq!(pg.get("newField").unwrap()["a"], 1);
        assert_eq!(pg.command().as_deref(), Some("CREATE TABLE"));

        let my = &rec.events[2];
        assert_eq!(my.engine(), Engine::MySql);
        assert_eq!(my.text("exitCode").as_deref(), Some("0"));
        assert_eq!(my.text("transactionId"), None);
        assert_eq!(rec.events[0].kind(), EventKind::Heartbeat);
    }

    #[test]
    fn keeps_field_order_and_values_exactly() {
        let rec = ActivityRecord::parse(PG.as_bytes()).unwrap();
        let reserialized = serde_json::to_string(&rec.events[1].0).unwrap();
        assert!(
            reserialized.starts_with(r#"{"type":"record","class":"DDL","command":"CREATE TABLE""#)
        );
    }

    #[test]
    fn instance_records_and_heartbeat_only_records() {
        let rec = ActivityRecord::parse(
            br#"{"type":"DatabaseActivityMonitoringRecord","clusterId":"","instanceId":"db-1",
                "databaseActivityEventList":[{"type":"heartbeat"}]}"#,
        )
        .unwrap();
        assert_eq!(rec.cluster_id, None);
        assert!(rec.is_heartbeat_only());
        let empty = ActivityRecord::parse(
            br#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":[]}"#,
        )
        .unwrap();
        assert!(empty.is_heartbeat_only());
        assert_eq!(empty.activity().count(), 0);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: [(&[u8], &str); 6] = [
            (b"nope", "not JSON"),
            (b"[]", "JSON array, expected an object"),
            (br#"{"type":"X"}"#, r#"record type is "X""#),
            (
                br#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":{}}"#,
                "databaseActivityEventList is JSON object",
            ),
            (
                br#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":[{},3]}"#,
                "event 1 of databaseActivityEventList is JSON number",
            ),
            (b"{\"type\":\"DatabaseActivityMonitoringRecord\",\"x\":\"\xff\"}", "not JSON"),
        ];
        for (input, expected) in cases {
            let err = ActivityRecord::parse(input).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }
}
