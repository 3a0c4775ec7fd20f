//! das-processor: turns encrypted Database Activity Stream records into classified audit events.
//!
//! One stage per module, data flowing one way:
//! `envelope` (the Kinesis record JSON) -> KMS data key (in the Lambda) -> `esdk` (Encryption SDK
//! message) -> `inflate` (bounded gunzip) -> `activity` (the decrypted record and its events).
//! Everything here is pure: no AWS calls, no I/O.

pub mod activity;
pub mod envelope;
pub mod esdk;
pub mod inflate;
