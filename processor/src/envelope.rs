//! The DAS Kinesis record (`DatabaseActivityMonitoringRecords`): the outer JSON that carries the
//! base64 Encryption SDK message and the base64 KMS ciphertext of its data key. Any version is
//! accepted (1.0 to 1.4 exist today); unknown fields are kept.

use std::borrow::Cow;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The `type` every DAS Kinesis record carries.
pub const RECORDS_TYPE: &str = "DatabaseActivityMonitoringRecords";

/// Why a Kinesis record is not a DAS envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("record is not a DAS envelope JSON object: {0}")]
    Json(#[source] serde_json::Error),
    #[error("record type is {0:?}, expected \"DatabaseActivityMonitoringRecords\"")]
    WrongType(String),
    #[error("field {field} is not valid base64: {source}")]
    Base64 {
        field: &'static str,
        #[source]
        source: base64::DecodeError,
    },
}

/// A parsed envelope, borrowing the large base64 strings from the input where it can.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(rename = "type")]
    pub kind: String,
    /// "1.0" ... "1.4" today; a number is accepted too.
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: Option<String>,
    /// Base64 of the Encryption SDK message.
    #[serde(rename = "databaseActivityEvents", borrow)]
    pub database_activity_events: Cow<'a, str>,
    /// Base64 of the KMS ciphertext blob of the data key.
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    /// Fields this version of das-setup does not know.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl<'a> Envelope<'a> {
    /// Parses and checks the record type.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        let envelope: Self = serde_json::from_slice(bytes).map_err(EnvelopeError::Json)?;
        if envelope.kind != RECORDS_TYPE {
            return Err(EnvelopeError::WrongType(envelope.kind));
        }
        Ok(envelope)
    }

    /// The Encryption SDK message bytes, appended to `out`.
    pub fn decode_message(&self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        base64::engine::general_purpose::STANDARD
            .decode_vec(self.database_activity_events.as_bytes(), out)
            .map_err(|source| EnvelopeError::Base64 {
                field: "databaseActivityEvents",
                source,
            })
    }

    /// The KMS ciphertext blob of the data key (the cache key for KMS plaintexts).
    pub fn decode_key(&self) -> Result<Vec<u8>, EnvelopeError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.key.as_bytes())
            .map_err(|source| EnvelopeError::Base64 {
                field: "key",
                source,
            })
    }
}

/// Serde helper: a string, number or boolean as `Some(text)`; null, absent, arrays and objects as
/// `None` (DAS versions disagree on the JSON type of `version`).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_version_keeps_unknown_fields_and_borrows() {
        let json = br#"{"type":"DatabaseActivityMonitoringRecords","version":"1.4",
            "databaseActivityEvents":"AQID","key":"BAUG","futureField":{"x":1}}"#;
        let env = Envelope::parse(json).unwrap();
        assert_eq!(env.version.as_deref(), Some("1.4"));
        assert!(matches!(env.database_activity_events, Cow::Borrowed(_)));
        assert_eq!(env.other["futureField"]["x"], 1);
        let mut msg = Vec::new();
        env.decode_message(&mut msg).unwrap();
        assert_eq!(msg, [1, 2, 3]);
        assert_eq!(env.decode_key().unwrap(), [4, 5, 6]);

        let numeric = br#"{"type":"DatabaseActivityMonitoringRecords","version":1.2,"databaseActivityEvents":"","key":""}"#;
        assert_eq!(
            Envelope::parse(numeric).unwrap().version.as_deref(),
            Some("1.2")
        );
        let missing =
            br#"{"type":"DatabaseActivityMonitoringRecords","databaseActivityEvents":"","key":""}"#;
        assert_eq!(Envelope::parse(missing).unwrap().version, None);
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let wrong = br#"{"type":"Other","databaseActivityEvents":"","key":""}"#;
        assert!(matches!(Envelope::parse(wrong), Err(EnvelopeError::WrongType(t)) if t == "Other"));
        let no_key = br#"{"type":"DatabaseActivityMonitoringRecords","databaseActivityEvents":""}"#;
        let err = Envelope::parse(no_key).unwrap_err().to_string();
        assert!(err.contains("missing field `key`"), "{err}");
        assert!(matches!(
            Envelope::parse(b"[1,2]"),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            Envelope::parse(b"\xff"),
            Err(EnvelopeError::Json(_))
        ));
        let bad = br#"{"type":"DatabaseActivityMonitoringRecords","databaseActivityEvents":"!!","key":"AA=="}"#;
        let env = Envelope::parse(bad).unwrap();
        let err = env.decode_message(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("databaseActivityEvents"), "{err}");
    }
}
