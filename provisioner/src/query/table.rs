//! The `events` table: its columns, and the decoding of the processor's NDJSON objects into them.
//!
//! One definition serves every engine: the local engine builds its Arrow schema from it, and the
//! columns are the processor's output fields as AWS documents them per engine (DAS User Guide,
//! "Monitoring database activity streams", the activity event tables of Aurora PostgreSQL,
//! Aurora MySQL, RDS for Oracle and RDS for SQL Server), plus the three the processor adds.
//!
//! Column names are the JSON names in lower case, the names Glue and Athena give them (Athena
//! User Guide, "Names for tables, databases, and columns": lower case), so one SQL text runs on
//! both engines. Every column is a string: engines disagree on the types (`exitCode`,
//! `sessionId`, `statementId`, `transactionId`, `paramList` are strings, numbers, null or arrays
//! depending on the engine); a JSON string becomes its text, `null` or an absent field becomes
//! SQL NULL, any other value its JSON text (`42`, `["a","b"]`). Never a failed object over a
//! field's type.
//!
//! `category` and `hour` are the partition columns: taken from the object's key
//! (`<prefix><CATEGORY>/<yyyy>/<MM>/<dd>/<HH>/...`), so a filter on them is answered from the key
//! names before any object is read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The table's name in every engine.
pub const TABLE: &str = "events";

/// The event fields, as the processor writes them (the column is the name in lower case).
pub const EVENT_FIELDS: [&str; 33] = [
    "type",
    "class",
    "clientApplication",
    "command",
    "commandText",
    "databaseName",
    "dbProtocol",
    "dbUserName",
    "errorMessage",
    "exitCode",
    "logTime",
    "netProtocol",
    "objectName",
    "objectType",
    "paramList",
    "pid",
    "remoteHost",
    "remotePort",
    "rowCount",
    "serverHost",
    "serverType",
    "serverVersion",
    "serviceName",
    "sessionId",
    "startTime",
    "endTime",
    "statementId",
    "substatementId",
    "transactionId",
    // RDS for Oracle.
    "dbid",
    "engineNativeAuditFields",
    // Added by the processor (`das_processor::event::ADDED_FIELDS`, but `category`, which is
    // the partition column).
    "clusterId",
    "instanceId",
];

/// The partition columns, after the event columns.
pub const PARTITION_COLUMNS: [&str; 2] = ["category", "hour"];

/// Every column name, in table order.
pub fn column_names() -> impl Iterator<Item = String> {
    EVENT_FIELDS
        .iter()
        .map(|f| f.to_ascii_lowercase())
        .chain(PARTITION_COLUMNS.iter().map(|c| (*c).to_owned()))
}

/// The table's Arrow schema: every column a nullable string.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        column_names()
            .map(|name| Field::new(name, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// The partition values of one object, from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub category: String,
    /// `yyyy/MM/dd/HH`, as in the key.
    pub hour: String,
}

/// Why an object's text could not be read as events. It names the line, never its content (the
/// content is audit data: SQL text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Decodes NDJSON into batches of the projected columns.
#[derive(Debug)]
pub struct Decoder {
    /// The projected schema the batches have.
    schema: SchemaRef,
    /// Event field (as the processor writes it) -> position in the projection.
    by_field: HashMap<&'static str, usize>,
    /// The same, by lower-case name, for fields spelled otherwise.
    by_lower: HashMap<String, usize>,
    /// Positions of `category` and `hour` in the projection.
    category: Option<usize>,
    hour: Option<usize>,
}

impl Decoder {
    /// `projection`: indexes into [`schema`] (all columns when `None`).
    pub fn new(projection: Option<&[usize]>) -> Result<Self, ArrowError> {
        let full = schema();
        let indexes: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..full.fields().len()).collect(),
        };
        let schema = Arc::new(full.project(&indexes)?);
        let mut by_field = HashMap::new();
        let mut by_lower = HashMap::new();
        let (mut category, mut hour) = (None, None);
        for (position, &index) in indexes.iter().enumerate() {
            match EVENT_FIELDS.get(index) {
                Some(field) => {
                    by_field.insert(*field, position);
                    by_lower.insert(field.to_ascii_lowercase(), position);
                }
                None if index == EVENT_FIELDS.len() => category = Some(position),
                None => hour = Some(position),
            }
        }
        Ok(Self {
            schema,
            by_field,
            by_lower,
            category,
            hour,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// One object's lines (already decompressed) as one batch.
    pub fn decode(&self, text: &[u8], partition: &Partition) -> Result<RecordBatch, DecodeError> {
        let columns = self.schema.fields().len();
        let mut builders: Vec<StringBuilder> = (0..columns).map(|_| StringBuilder::new()).collect();
        let mut row: Vec<Option<Cow<'_, str>>> = vec![None; columns];
        let mut rows = 0usize;
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            row.iter_mut().for_each(|v| *v = None);
            let mut de = serde_json::Deserializer::from_slice(line);
            de.deserialize_map(LineVisitor {
                decoder: self,
                row: &mut row,
            })
            .and_then(|()| de.end())
            .map_err(|e| DecodeError {
                line: n + 1,
                reason: format!("not a JSON object ({})", kind_of(&e)),
            })?;
            if let Some(i) = self.category {
                row[i] = Some(Cow::Borrowed(partition.category.as_str()));
            }
            if let Some(i) = self.hour {
                row[i] = Some(Cow::Borrowed(partition.hour.as_str()));
            }
            for (builder, value) in builders.iter_mut().zip(row.iter()) {
                builder.append_option(value.as_deref());
            }
            rows += 1;
        }
        let arrays: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| DecodeError {
            line: 0,
            reason: e.to_string(),
        })
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.by_field
            .get(key)
            .copied()
            .or_else(|| self.by_lower.get(&key.to_ascii_lowercase()).copied())
    }
}

/// What kind of JSON error, as a word: the error's own text could quote the line.
fn kind_of(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "not an object",
        serde_json::error::Category::Eof => "truncated",
    }
}

/// Fills one row from one line's object, borrowing from the line where it can.
struct LineVisitor<'d, 'r, 'a> {
    decoder: &'d Decoder,
    row: &'r mut Vec<Option<Cow<'a, str>>>,
}

impl<'de: 'a, 'a> Visitor<'de> for LineVisitor<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match self.decoder.position(&key.0) {
                Some(i) => {
                    let raw: &'de RawValue = map.next_value()?;
                    self.row[i] = text_of(raw).map_err(de::Error::custom)?;
                }
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A value as the column holds it: a string's text, NULL for null, else the JSON text.
fn text_of(raw: &RawValue) -> Result<Option<Cow<'_, str>>, serde_json::Error> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let s: Cow<'_, str> = serde_json::from_str::<Key<'_>>(text)?.0;
            Ok(Some(s))
        }
        Some(b'n') => Ok(None),
        _ => Ok(Some(Cow::Borrowed(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, StringArray};

    fn column<'b>(batch: &'b RecordBatch, name: &str) -> &'b StringArray {
        batch
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
    }

    fn part() -> Partition {
        Partition {
            category: "DDL".into(),
            hour: "2026/12/06/19".into(),
        }
    }

    #[test]
    fn columns_are_the_lower_case_fields_then_the_partitions() {
        let names: Vec<String> = column_names().collect();
        assert_eq!(names[0], "type");
        assert!(names.contains(&"dbusername".to_owned()));
        assert_eq!(&names[names.len() - 2..], ["category", "hour"]);
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "no column twice");
        // The processor's added fields are columns (category as the partition column).
        for added in das_processor::event::ADDED_FIELDS {
            assert!(names.contains(&added.to_ascii_lowercase()), "{added}");
        }
    }

    #[test]
    fn every_value_type_becomes_text_and_null_stays_null() {
        let text = concat!(
            r#"{"type":"record","dbUserName":"alice","exitCode":0,"sessionId":"12","paramList":["a","b"],"errorMessage":null,"engineNativeAuditFields":{"X":1},"unknownField":[1]}"#,
            "\n\n",
            r#"{"type":"record","dbUserName":"b\u00f6b \"q\"","exitCode":"1","category":"DDL"}"#,
            "\n"
        );
        let d = Decoder::new(None).unwrap();
        let b = d.decode(text.as_bytes(), &part()).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(column(&b, "dbusername").value(0), "alice");
        assert_eq!(column(&b, "dbusername").value(1), "böb \"q\"");
        assert_eq!(column(&b, "exitcode").value(0), "0");
        assert_eq!(column(&b, "exitcode").value(1), "1");
        assert_eq!(column(&b, "paramlist").value(0), r#"["a","b"]"#);
        assert_eq!(column(&b, "enginenativeauditfields").value(0), r#"{"X":1}"#);
        assert!(column(&b, "errormessage").is_null(0));
        assert!(column(&b, "commandtext").is_null(1), "absent is NULL");
        assert_eq!(column(&b, "category").value(0), "DDL");
        assert_eq!(column(&b, "hour").value(1), "2026/12/06/19");
    }

    #[test]
    fn a_projection_decodes_only_its_columns() {
        let full = schema();
        let user = full.index_of("dbusername").unwrap();
        let hour = full.index_of("hour").unwrap();
        let d = Decoder::new(Some(&[hour, user])).unwrap();
        let b = d
            .decode(br#"{"dbUserName":"alice","commandText":"x"}"#, &part())
            .unwrap();
        assert_eq!(b.num_columns(), 2);
        assert_eq!(column(&b, "dbusername").value(0), "alice");
        assert_eq!(column(&b, "hour").value(0), "2026/12/06/19");
        // COUNT(*) projects nothing: rows without columns.
        let none = Decoder::new(Some(&[])).unwrap();
        assert_eq!(none.decode(b"{}\n{}\n", &part()).unwrap().num_rows(), 2);
    }

    #[test]
    fn a_broken_line_is_named_without_its_content() {
        let d = Decoder::new(None).unwrap();
        let e = d
            .decode(
                b"{\"dbUserName\":\"a\"}\n{\"commandText\":\"SELECT secret",
                &part(),
            )
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = d.decode(b"[1,2]\n", &part()).unwrap_err();
        assert_eq!(e.line, 1);
    }
}
