//! The hot-path view of a decrypted record: events stay as their raw JSON text, and only the few
//! fields that classification, filtering and routing need are read, borrowed where possible.
//!
//! Building a `serde_json::Value` tree per event costs about ten times the decryption and
//! decompression of the same bytes (BENCHMARKS.md), and would hold a whole record's tree in
//! memory. Output lines are the original event text with our three fields spliced in, so every
//! field the engine sent reaches S3 byte for byte, whatever its type.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::redact::{Redacted, SECRET_MASK};

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

/// Field names we add to each output line. An event that already has one keeps its value under
/// `original_<name>`.
pub const ADDED_FIELDS: [&str; 3] = ["category", "clusterId", "instanceId"];

/// A decrypted record with its events still as raw JSON.
#[derive(Debug)]
pub struct RecordView<'a> {
    pub cluster_id: Option<Cow<'a, str>>,
    pub instance_id: Option<Cow<'a, str>>,
    pub events: Vec<&'a RawValue>,
}

impl<'a> RecordView<'a> {
    /// Parses a decompressed payload (checks the type and that every event is an object).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ActivityError> {
        let view: Self = serde_json::from_slice(bytes).map_err(redacted)?;
        for (index, raw) in view.events.iter().enumerate() {
            let first = raw.get().as_bytes().first().copied();
            if first != Some(b'{') {
                return Err(ActivityError::EventNotObject {
                    index,
                    found: json_kind(first),
                });
            }
        }
        Ok(view)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RecordView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = RecordView<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DatabaseActivityMonitoringRecord object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kind: Option<Lenient<'de>> = None;
                let mut view = RecordView {
                    cluster_id: None,
                    instance_id: None,
                    events: Vec::new(),
                };
                while let Some(Lenient(key)) = map.next_key::<Lenient<'de>>()? {
                    let key = key.unwrap_or_default();
                    match key.as_ref() {
                        "type" => kind = Some(map.next_value()?),
                        "clusterId" => view.cluster_id = map.next_value::<Lenient<'de>>()?.0,
                        "instanceId" => view.instance_id = map.next_value::<Lenient<'de>>()?.0,
                        "databaseActivityEventList" => {
                            view.events = map.next_value::<EventList<'de>>()?.0;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match kind.and_then(|k| k.0) {
                    Some(t) if t == RECORD_TYPE => {}
                    other => {
                        return Err(de::Error::custom(format_args!(
                            "record type is {:?}, expected {RECORD_TYPE}",
                            other.unwrap_or_default()
                        )));
                    }
                }
                view.cluster_id = view.cluster_id.filter(|s| !s.is_empty());
                view.instance_id = view.instance_id.filter(|s| !s.is_empty());
                Ok(view)
            }
        }
        d.deserialize_map(RecordVisitor)
    }
}

struct EventList<'a>(Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for EventList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = EventList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("databaseActivityEventList as an array of event objects")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(EventList(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(4096));
                while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                    events.push(raw);
                }
                Ok(EventList(events))
            }
        }
        d.deserialize_any(ListVisitor)
    }
}

/// The fields of one event that decide its fate. Any JSON type is accepted for each.
#[derive(Debug, Default)]
pub struct EventFields<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub server_type: Option<Cow<'a, str>>,
    pub class: Option<Cow<'a, str>>,
    pub command: Option<Cow<'a, str>>,
    pub command_text: Option<Cow<'a, str>>,
    pub db_user_name: Option<Cow<'a, str>>,
    pub log_time: Option<Cow<'a, str>>,
    pub exit_code: Option<Cow<'a, str>>,
    /// What alert rules also match on (`alert`).
    pub database_name: Option<Cow<'a, str>>,
    pub object_name: Option<Cow<'a, str>>,
    pub remote_host: Option<Cow<'a, str>>,
    pub client_application: Option<Cow<'a, str>>,
    /// `paramList` holds a value (not absent, null, `""`, `[]` or `{}`).
    pub has_params: bool,
    /// The event already has a field named like one of [`ADDED_FIELDS`].
    pub has_added_field: bool,
}

impl<'a> EventFields<'a> {
    /// Reads the fields from one event's raw JSON object.
    pub fn parse(raw: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }

    pub fn is_heartbeat(&self) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("heartbeat"))
    }

    /// The statement or login failed: an exit code other than 0 (MySQL, Oracle).
    pub fn failed(&self) -> bool {
        self.exit_code
            .as_deref()
            .map(str::trim)
            .is_some_and(|c| !c.is_empty() && c != "0")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EventFields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = EventFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut e = EventFields::default();
                while let Some(Lenient(key)) = map.next_key::<Lenient<'de>>()? {
                    let key = key.unwrap_or_default();
                    let slot = match key.as_ref() {
                        "type" => &mut e.kind,
                        "serverType" => &mut e.server_type,
                        "class" => &mut e.class,
                        "command" => &mut e.command,
                        "commandText" => &mut e.command_text,
                        "dbUserName" => &mut e.db_user_name,
                        "logTime" => &mut e.log_time,
                        "exitCode" => &mut e.exit_code,
                        "databaseName" => &mut e.database_name,
                        "objectName" => &mut e.object_name,
                        "remoteHost" => &mut e.remote_host,
                        "clientApplication" => &mut e.client_application,
                        "paramList" => {
                            e.has_params = map.next_value::<Present>()?.0;
                            continue;
                        }
                        name => {
                            e.has_added_field |= ADDED_FIELDS.contains(&name);
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<Lenient<'de>>()?.0;
                }
                Ok(e)
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

/// Whether a JSON value holds anything: false for null, `""`, `[]` and `{}`.
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PresentVisitor;
        impl<'de> Visitor<'de> for PresentVisitor {
            type Value = Present;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Present(!v.is_empty()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Present(true))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Present(true))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Present(true))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Present(true))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Present(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut any = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(Present(any))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut any = false;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(Present(any))
            }
        }
        d.deserialize_any(PresentVisitor)
    }
}

/// Any JSON value as optional text: strings (borrowed when unescaped), numbers and booleans
/// printed; null, arrays and objects as `None`. Also used for map keys, because serde's own
/// `Cow<str>` always allocates.
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LenientVisitor;
        impl<'de> Visitor<'de> for LenientVisitor {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Borrowed(if v {
                    "true"
                } else {
                    "false"
                }))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(LenientVisitor)
    }
}

/// The constant tail of every output line of one record: `"clusterId":...,"instanceId":...}`.
pub fn ids_suffix(cluster_id: Option<&str>, instance_id: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"\"clusterId\":");
    push_json_string_or_null(&mut out, cluster_id);
    out.extend_from_slice(b",\"instanceId\":");
    push_json_string_or_null(&mut out, instance_id);
    out.push(b'}');
    out
}

fn push_json_string_or_null(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        // Serializing a &str into a Vec cannot fail.
        Some(s) => serde_json::to_writer(&mut *out, s).unwrap_or_default(),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends one output line: the event's own JSON with `category`, `clusterId` and `instanceId`
/// added, on a single line, newline-terminated.
pub fn write_line(
    out: &mut Vec<u8>,
    raw: &RawValue,
    fields: &EventFields<'_>,
    category: &str,
    ids_suffix: &[u8],
) -> Result<(), serde_json::Error> {
    if fields.has_added_field {
        return write_line_renaming(out, raw, category, ids_suffix);
    }
    let text = raw.get().as_bytes();
    // `RecordView::parse` checked the leading '{'; a raw object ends with '}'.
    let body = text.strip_suffix(b"}").unwrap_or(text);
    let empty = body.iter().skip(1).all(u8::is_ascii_whitespace);
    // Whitespace between tokens may hold line breaks; strings cannot (JSON forbids raw control
    // characters in them), so replacing them keeps the JSON identical and the line whole.
    if body.iter().any(|&b| b == b'\n' || b == b'\r') {
        out.extend(
            body.iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
    } else {
        out.extend_from_slice(body);
    }
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(b"\"category\":\"");
    out.extend_from_slice(category.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(ids_suffix);
    out.push(b'\n');
    Ok(())
}

/// The rare event that already carries one of our field names: re-serialize it with that field
/// moved to `original_<name>`, so nothing the engine sent is overwritten.
fn write_line_renaming(
    out: &mut Vec<u8>,
    raw: &RawValue,
    category: &str,
    ids_suffix: &[u8],
) -> Result<(), serde_json::Error> {
    rewrite_line(out, raw, category, ids_suffix, |_| {})
}

/// What to mask in one event (`crate::redact`).
#[derive(Debug, Default)]
pub struct Masking<'r> {
    /// The statement, masked; its values are scrubbed from `errorMessage` too.
    pub statement: Option<&'r Redacted>,
    /// Every value of `paramList` becomes `"***"`.
    pub params: bool,
    /// The `redacted` field: the kinds of value masked.
    pub kinds: Vec<&'static str>,
}

/// Appends an event with values masked: `commandText` replaced, `paramList` masked, the masked
/// values scrubbed from `errorMessage`, and `redacted` listing what kinds of value were masked.
/// Every other field is kept (one the engine sent named `redacted` moves to `original_redacted`).
pub fn write_line_masked(
    out: &mut Vec<u8>,
    raw: &RawValue,
    masking: &Masking<'_>,
    category: &str,
    ids_suffix: &[u8],
) -> Result<(), serde_json::Error> {
    rewrite_line(out, raw, category, ids_suffix, |map| {
        if let Some(value) = map.shift_remove(REDACTED_FIELD) {
            map.insert(format!("original_{REDACTED_FIELD}"), value);
        }
        if let Some(statement) = masking.statement {
            map.insert("commandText".into(), statement.text.clone().into());
            if let Some(serde_json::Value::String(message)) = map.get_mut("errorMessage") {
                let mut values: Vec<&String> = statement.values.iter().collect();
                // Longest first, so a value inside another is not left half-replaced.
                values.sort_by_key(|v| std::cmp::Reverse(v.len()));
                for value in values {
                    if message.contains(value.as_str()) {
                        *message = message.replace(value.as_str(), SECRET_MASK);
                    }
                }
            }
        }
        if masking.params
            && let Some(params) = map.get_mut("paramList")
        {
            mask_params(params);
        }
        map.insert(REDACTED_FIELD.into(), masking.kinds.clone().into());
    })
}

/// The field listing what was masked in an event.
pub const REDACTED_FIELD: &str = "redacted";

fn mask_params(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => {}
        Value::Array(items) => items.iter_mut().for_each(mask_params),
        other => *other = Value::String(SECRET_MASK.into()),
    }
}

/// Re-serializes an event: `edit` changes it, fields named like ours move to `original_<name>`.
fn rewrite_line(
    out: &mut Vec<u8>,
    raw: &RawValue,
    category: &str,
    ids_suffix: &[u8],
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<(), serde_json::Error> {
    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw.get())?;
    for name in ADDED_FIELDS {
        if let Some(value) = map.shift_remove(name) {
            map.insert(format!("original_{name}"), value);
        }
    }
    edit(&mut map);
    map.insert("category".into(), category.into());
    let mut line = serde_json::to_vec(&map)?;
    line.pop(); // the closing '}', replaced by the ids suffix
    if map.len() > 1 {
        line.push(b',');
    }
    out.extend_from_slice(&line);
    out.extend_from_slice(ids_suffix);
    out.push(b'\n');
    Ok(())
}

/// A JSON error about decrypted data, safe to log: serde quotes the values it did not expect
/// (`invalid type: string "SELECT ..."`), so every double-quoted span is blanked out.
pub fn redacted(error: serde_json::Error) -> ActivityError {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' {
            out.push('…');
            let mut escaped = false;
            for c in chars.by_ref() {
                if c == '"' && !escaped {
                    out.push('"');
                    break;
                }
                escaped = c == '\\' && !escaped;
            }
        }
    }
    ActivityError::Invalid(out)
}

fn json_kind(first: Option<u8>) -> &'static str {
    match first {
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "boolean",
        _ => "number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const RECORD: &str = r#"{"type":"DatabaseActivityMonitoringRecord","clusterId":"cluster-A","instanceId":"db-B",
      "databaseActivityEventList":[
        {"type":"heartbeat"},
        {"type":"record","class":"DDL","command":"CREATE TABLE","commandText":"create table \"t\"(i int)",
         "dbUserName":"alice","exitCode":0,"serverType":"PostgreSQL","paramList":[1,{"x":2}],
         "logTime":"2021-06-04 02:22:47.218201+00"},
        {}
      ],"futureField":[1,2]}"#;

    #[test]
    fn record_view_borrows_events_and_ids() {
        let view = RecordView::parse(RECORD.as_bytes()).unwrap();
        assert_eq!(view.cluster_id.as_deref(), Some("cluster-A"));
        assert!(matches!(view.instance_id, Some(Cow::Borrowed("db-B"))));
        assert_eq!(view.events.len(), 3);
        let f = EventFields::parse(view.events[1].get()).unwrap();
        assert!(!f.is_heartbeat());
        assert_eq!(f.command_text.as_deref(), Some("create table \"t\"(i int)"));
        assert_eq!(f.exit_code.as_deref(), Some("0"));
        assert!(!f.failed());
        assert!(
            EventFields::parse(view.events[0].get())
                .unwrap()
                .is_heartbeat()
        );
    }

    #[test]
    fn record_view_errors_name_the_problem() {
        let cases: [(&str, &str); 5] = [
            (
                r#"{"type":"X"}"#,
                r#"record type is "…", expected DatabaseActivityMonitoringRecord"#,
            ),
            (
                r#"{"databaseActivityEventList":[]}"#,
                r#"record type is "…""#,
            ),
            (
                r#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":{}}"#,
                "expected databaseActivityEventList as an array",
            ),
            (
                r#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":[{},3]}"#,
                "event 1 of databaseActivityEventList is JSON number",
            ),
            ("[1]", "expected a DatabaseActivityMonitoringRecord object"),
        ];
        for (input, expected) in cases {
            let err = RecordView::parse(input.as_bytes()).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
        // Values from the payload never reach an error message (it is logged).
        let secret = r#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":"SELECT \"secret\" FROM t"}"#;
        let err = RecordView::parse(secret.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("secret") && err.contains("expected databaseActivityEventList"),
            "{err}"
        );
        let err = RecordView::parse(br#"{"type":"password=hunter2"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("hunter2") && err.contains("record type is"),
            "{err}"
        );
        let ok = RecordView::parse(
            br#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":null,"clusterId":""}"#,
        )
        .unwrap();
        assert!(ok.events.is_empty() && ok.cluster_id.is_none());
        assert!(RecordView::parse(b"{\"type\":\"\xff\"}").is_err());
    }

    #[test]
    fn lines_keep_every_field_and_add_ours() {
        let view = RecordView::parse(RECORD.as_bytes()).unwrap();
        let suffix = ids_suffix(view.cluster_id.as_deref(), None);
        let mut out = Vec::new();
        for raw in &view.events[1..] {
            let f = EventFields::parse(raw.get()).unwrap();
            write_line(&mut out, raw, &f, "DDL", &suffix).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(lines[0]["paramList"], json!([1, {"x": 2}]));
        assert_eq!(lines[0]["category"], "DDL");
        assert_eq!(lines[0]["clusterId"], "cluster-A");
        assert_eq!(lines[0]["instanceId"], Value::Null);
        assert_eq!(lines[0]["exitCode"], 0);
        assert_eq!(
            lines[1],
            json!({"category":"DDL","clusterId":"cluster-A","instanceId":null})
        );
    }

    #[test]
    fn multi_line_events_become_one_line_and_clashes_are_renamed() {
        let raw: &RawValue =
            serde_json::from_str("{\n \"type\" : \"record\",\r\n \"category\": 5, \"a\": \"x\"\n}")
                .unwrap();
        let f = EventFields::parse(raw.get()).unwrap();
        assert!(f.has_added_field);
        let mut out = Vec::new();
        write_line(
            &mut out,
            raw,
            &f,
            "OTHER",
            &ids_suffix(Some("c\"1"), Some("db-1")),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["original_category"], 5);
        assert_eq!(v["category"], "OTHER");
        assert_eq!(v["clusterId"], "c\"1");

        let raw: &RawValue = serde_json::from_str("{\"type\":\"record\",\n\"a\":1}").unwrap();
        let f = EventFields::parse(raw.get()).unwrap();
        let mut out = Vec::new();
        write_line(
            &mut out,
            raw,
            &f,
            "DML",
            b"\"clusterId\":null,\"instanceId\":null}",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"type\":\"record\", \"a\":1,\"category\":\"DML\",\"clusterId\":null,\"instanceId\":null}\n"
        );
    }

    #[test]
    fn fields_of_any_type_never_fail() {
        let f = EventFields::parse(
            r#"{"type":null,"command":["x"],"dbUserName":12,"exitCode":1.5,"logTime":{"a":1},"class":true}"#,
        )
        .unwrap();
        assert_eq!(f.kind, None);
        assert_eq!(f.command, None);
        assert_eq!(f.db_user_name.as_deref(), Some("12"));
        assert!(f.failed());
        assert_eq!(f.log_time, None);
        assert_eq!(f.class.as_deref(), Some("true"));
    }
}
