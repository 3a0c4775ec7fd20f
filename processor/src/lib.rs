//! das-processor: turns encrypted Database Activity Stream records into classified audit events.
//!
//! One stage per module, data flowing one way:
//! `firehose` (the invocation) -> `envelope` (the Kinesis record JSON) -> `keys` (the KMS data
//! key, cached) -> `esdk` (Encryption SDK message) -> `inflate` (bounded gunzip) -> `event`
//! (the record's events as raw JSON) -> `classify` -> `config::Filter` -> `redact` (secrets
//! masked) -> `route` (category and hour -> S3 key) -> `sink` (S3) -> `manifest` (what the invocation wrote, filed by write time) -> `digest` (the
//! same, chained to the digest before and signed) ->
//! the Firehose response. `handler` orchestrates one batch.
//!
//! Everything is pure except `aws` (KMS and S3 clients, over the HTTP client in `https`), which sits behind the `KeySource` and
//! `ObjectSink` traits so the handler is tested without a network.

/// The Lambda build is static musl (provisioner/src/package.rs), whose malloc is slow for this
/// workload's large, short-lived buffers; dlmalloc (a Rust port) serves every allocation of a
/// binary linking this library there: the Lambda, its benchmarks and tests.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

pub mod alert;
pub mod aws;
pub mod classify;
pub mod config;
pub mod digest;
pub mod emf;
pub mod envelope;
pub mod esdk;
pub mod event;
pub mod finding;
pub mod firehose;
pub mod handler;
pub mod https;
pub mod inflate;
pub mod keys;
pub mod manifest;
pub mod notify;
pub mod redact;
pub mod route;
pub mod securityhub;
pub mod signed;
pub mod sink;
