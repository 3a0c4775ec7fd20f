//! The whole per-record path of the Lambda: one arbitrary Kinesis record (the DAS envelope as RDS
//! writes it) between two good ones, through `Processor::handle` with in-memory KMS and S3. KMS
//! "decrypts" a key blob of 32 bytes to those bytes, so seeds carry working keys.
//!
//! Must never panic; must answer exactly one result per record, same ids, same order; the good
//! records must succeed whatever the bad one is; a failed record must be returned unchanged.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use das_processor::config::Config;
use das_processor::digest::{DigestSigner, InMemory, Signature};
use das_processor::firehose::{FirehoseEvent, FirehoseRecord, RecordResult};
use das_processor::handler::Processor;
use das_processor::keys::{DataKey, EncryptionContext, KeyError, KeySource};
use libfuzzer_sys::fuzz_target;

const STREAM: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/aws-rds-das-cluster-FUZZ";
/// A good record: the smallest seed (an empty event list), embedded at build time.
const GOOD: &[u8] = include_bytes!("../good-record.json");

struct Kms;

impl KeySource for Kms {
    async fn decrypt(&self, blob: &[u8], _context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let key: [u8; 32] = blob.try_into().map_err(|_| KeyError::Refused("InvalidCiphertextException".into()))?;
        Ok(zeroize::Zeroizing::new(key))
    }
}

/// The fuzzed deployment has no signing key: digests are unsigned, this is never called.
impl DigestSigner for Kms {
    async fn sign(&self, _message: &[u8]) -> Result<Signature, String> {
        Err("no signing key".into())
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let config = Config::from_env(|k| (k == "DAS_OUTPUT_BUCKET").then(|| "fuzz-bucket".to_owned())).unwrap();
    let processor = Processor::new(config, Kms, InMemory::default());
    let records = [GOOD, data, GOOD]
        .iter()
        .enumerate()
        .map(|(i, d)| FirehoseRecord {
            record_id: format!("r{i}"),
            approximate_arrival_timestamp: Some(1.7e12),
            data: b64(d),
        })
        .collect::<Vec<_>>();
    let event = FirehoseEvent {
        invocation_id: "fuzz".into(),
        delivery_stream_arn: String::new(),
        source_kinesis_stream_arn: Some(STREAM.into()),
        region: "us-east-1".into(),
        records: records.clone(),
        replay: None,
    };
    let (response, _) = runtime().block_on(processor.handle(event)).expect("in-memory KMS and S3 never fail");
    assert_eq!(response.records.len(), 3);
    for (sent, got) in records.iter().zip(&response.records) {
        assert_eq!(sent.record_id, got.record_id);
        if got.result == RecordResult::ProcessingFailed {
            assert_eq!(sent.data, got.data, "a failed record comes back as received");
        }
    }
    assert_ne!(response.records[0].result, RecordResult::ProcessingFailed);
    assert_ne!(response.records[2].result, RecordResult::ProcessingFailed);
});
