//! The Firehose data-transformation contract: the invocation event and the response.
//!
//! Our own small types rather than `aws_lambda_events`: that crate types `result` as a free
//! string, and Firehose accepts exactly `Ok`, `Dropped` and `ProcessingFailed` (anything else,
//! or a missing record id, fails the whole invocation with `Lambda.MissingRecordId` and friends).
//! Spec: Firehose developer guide, "Transform source data"; `../shared/reference/aws-pipeline.md`.

use serde::{Deserialize, Serialize};

/// One invocation: a batch of Kinesis records.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseEvent {
    #[serde(default)]
    pub invocation_id: String,
    #[serde(default)]
    pub delivery_stream_arn: String,
    /// Present for a Kinesis stream source: `.../stream/aws-rds-das-<resource id>`.
    #[serde(default)]
    pub source_kinesis_stream_arn: Option<String>,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub records: Vec<FirehoseRecord>,
    /// Set by `das-setup replay` only (Firehose sends no such member): the records come from
    /// the raw archive, and their events are to be derived again.
    #[serde(
        default,
        rename = "dasSetupReplay",
        skip_serializing_if = "Option::is_none"
    )]
    pub replay: Option<Replay>,
}

/// What a replay invocation asks beyond an ordinary one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    /// Store only the events of these categories (names as `DAS_INCLUDE_CATEGORIES` takes
    /// them), of those the function's filter keeps; empty: every category the filter keeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseRecord {
    pub record_id: String,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub approximate_arrival_timestamp: Option<f64>,
    /// Base64 of the Kinesis record: the DAS envelope JSON.
    #[serde(default)]
    pub data: String,
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordResult {
    Ok,
    Dropped,
    ProcessingFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseRecord {
    pub record_id: String,
    pub result: RecordResult,
    /// Base64; Firehose wants the field even when it is empty.
    pub data: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirehoseResponse {
    pub records: Vec<ResponseRecord>,
    /// The answer to a replay invocation only (`das-setup replay` sends one without records
    /// first: a function too old to answer it would ignore what the replay asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayAnswer>,
}

/// What a replay invocation stores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayAnswer {
    /// The categories whose events it stores: those asked for that the function's filter keeps.
    pub categories: Vec<String>,
}

/// Bytes of the response JSON around one record's base64 data, besides its record id:
/// `{"recordId":"","result":"ProcessingFailed","data":""},` is 54 bytes.
pub const RESPONSE_RECORD_OVERHEAD: usize = 54;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_response_wire_format() {
        let event: FirehoseEvent = serde_json::from_str(
            r#"{"invocationId":"i","deliveryStreamArn":"arn:d","sourceKinesisStreamArn":"arn:s",
                "region":"us-east-1","records":[{"recordId":"r1","approximateArrivalTimestamp":1622773367218,
                "data":"e30=","kinesisRecordMetadata":{"shardId":"shardId-0"}}]}"#,
        )
        .unwrap();
        assert_eq!(event.records[0].record_id, "r1");
        assert_eq!(
            event.records[0].approximate_arrival_timestamp,
            Some(1_622_773_367_218.0)
        );
        let response = FirehoseResponse {
            records: vec![ResponseRecord {
                record_id: "r1".into(),
                result: RecordResult::ProcessingFailed,
                data: String::new(),
            }],
            replay: None,
        };
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(
            json,
            r#"{"records":[{"recordId":"r1","result":"ProcessingFailed","data":""}]}"#
        );
        assert_eq!(
            json.len() - r#"{"records":[]}"#.len() - "r1".len() + 1,
            RESPONSE_RECORD_OVERHEAD
        );
    }
}
