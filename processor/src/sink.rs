//! Where output objects go: S3 `PutObject` behind a small trait, so the handler is tested without
//! a network (the AWS implementation is in `aws.rs`).

use std::future::Future;

/// A failed write. The invocation fails with it, so Firehose retries the batch and nothing is
/// lost; object names are deterministic, so the retry overwrites rather than duplicates.
#[derive(Debug, Clone, thiserror::Error)]
#[error("writing s3://{bucket}/{key} failed: {reason}")]
pub struct SinkError {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

/// Stores whole objects.
pub trait ObjectSink: Send + Sync {
    /// Stores `body` (gzip'd NDJSON) under `key`, replacing any object of that name.
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<(), SinkError>> + Send;
}
