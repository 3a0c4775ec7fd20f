//! Errors of the Encryption SDK decoder. Every variant names the field or stage that was wrong,
//! so a `ProcessingFailed` record can be explained in a log line without logging its bytes.

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The message ended inside a field.
    #[error("message truncated in {field}: needs {needed} bytes, {available} left")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    /// A field held a value the format does not allow.
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    /// The first byte is not a message format version we know (1 or 2).
    #[error("unsupported message format version 0x{0:02x}")]
    UnsupportedVersion(u8),
    /// The algorithm suite is not one DAS uses (0x0178, 0x0378) nor a committing one (0x0478, 0x0578).
    #[error("unsupported algorithm suite 0x{0:04x}")]
    UnsupportedSuite(u16),
    /// No encrypted data key belongs to the raw AES keyring we were given.
    #[error(
        "no encrypted data key for provider {provider_id:?} and key {key_name:?} among {count}"
    )]
    NoMatchingDataKey {
        provider_id: String,
        key_name: String,
        count: usize,
    },
    /// A matching encrypted data key did not decrypt: wrong wrapping key, or the data key or the
    /// encryption context was altered.
    #[error(
        "encrypted data key did not decrypt with the wrapping key (wrong key, or data key or encryption context altered)"
    )]
    DataKeyUnwrap,
    /// Committing suites: the commitment key in the header does not match the data key.
    #[error("key commitment does not match the data key")]
    CommitmentMismatch,
    /// The header authentication tag does not match the header.
    #[error("header authentication failed")]
    HeaderAuth,
    /// A body frame (or the single non-framed block) failed authentication.
    #[error("body authentication failed at frame {sequence}")]
    FrameAuth { sequence: u32 },
    /// Frames out of order, repeated or missing.
    #[error("frame sequence number {found} where {expected} was expected")]
    FrameSequence { expected: u32, found: u32 },
    /// The footer signature does not verify against the public key in the encryption context.
    #[error("message signature does not verify")]
    Signature,
    /// Bytes follow the end of the message.
    #[error("{0} trailing bytes after the end of the message")]
    TrailingBytes(usize),
}

/// Shorthand used across the decoder.
pub type Result<T> = core::result::Result<T, Error>;
