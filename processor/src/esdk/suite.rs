//! The algorithm suites we accept. DAS uses 0x0178 (and 0x0378 is reported for Aurora MySQL); the
//! committing suites of message format version 2 are accepted too, so a future DAS switch to them
//! is not an outage. Every other suite is refused by id.
//!
//! Spec: aws-encryption-sdk-specification `framework/algorithm-suites.md`.

use super::error::{Error, Result};

/// An accepted algorithm suite. All use AES-256-GCM with a 12-byte IV and a 16-byte tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// 0x0178: HKDF-SHA256, no signature. What DAS sends.
    Aes256GcmHkdfSha256,
    /// 0x0378: HKDF-SHA384, ECDSA P-384 signature.
    Aes256GcmHkdfSha384EcdsaP384,
    /// 0x0478: HKDF-SHA512 with key commitment (message format version 2).
    Aes256GcmHkdfSha512Commit,
    /// 0x0578: HKDF-SHA512 with key commitment and an ECDSA P-384 signature (version 2).
    Aes256GcmHkdfSha512CommitEcdsaP384,
}

/// The hash behind the suite's HKDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kdf {
    Sha256,
    Sha384,
    Sha512,
}

/// IV length of every accepted suite.
pub(crate) const IV_LEN: usize = 12;
/// Authentication tag length of every accepted suite.
pub(crate) const TAG_LEN: usize = 16;
/// Data key and content key length of every accepted suite.
pub(crate) const KEY_LEN: usize = 32;

impl Suite {
    /// The suite for a wire id, or `UnsupportedSuite` naming the id.
    pub fn from_id(id: u16) -> Result<Self> {
        match id {
            0x0178 => Ok(Self::Aes256GcmHkdfSha256),
            0x0378 => Ok(Self::Aes256GcmHkdfSha384EcdsaP384),
            0x0478 => Ok(Self::Aes256GcmHkdfSha512Commit),
            0x0578 => Ok(Self::Aes256GcmHkdfSha512CommitEcdsaP384),
            other => Err(Error::UnsupportedSuite(other)),
        }
    }

    /// The wire id.
    pub fn id(self) -> u16 {
        match self {
            Self::Aes256GcmHkdfSha256 => 0x0178,
            Self::Aes256GcmHkdfSha384EcdsaP384 => 0x0378,
            Self::Aes256GcmHkdfSha512Commit => 0x0478,
            Self::Aes256GcmHkdfSha512CommitEcdsaP384 => 0x0578,
        }
    }

    /// Whether the message ends with an ECDSA P-384 signature footer.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            Self::Aes256GcmHkdfSha384EcdsaP384 | Self::Aes256GcmHkdfSha512CommitEcdsaP384
        )
    }

    /// Whether the suite commits to its key (and so belongs to message format version 2).
    pub fn is_committing(self) -> bool {
        matches!(
            self,
            Self::Aes256GcmHkdfSha512Commit | Self::Aes256GcmHkdfSha512CommitEcdsaP384
        )
    }

    pub(crate) fn kdf(self) -> Kdf {
        match self {
            Self::Aes256GcmHkdfSha256 => Kdf::Sha256,
            Self::Aes256GcmHkdfSha384EcdsaP384 => Kdf::Sha384,
            Self::Aes256GcmHkdfSha512Commit | Self::Aes256GcmHkdfSha512CommitEcdsaP384 => {
                Kdf::Sha512
            }
        }
    }

    /// The message format version this suite is used with.
    pub(crate) fn message_version(self) -> u8 {
        if self.is_committing() { 2 } else { 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_others_are_named() {
        for id in [0x0178, 0x0378, 0x0478, 0x0578] {
            assert_eq!(Suite::from_id(id).unwrap().id(), id);
        }
        // 0x0078 (no KDF) and 0x0346 (AES-192) are real suites we deliberately refuse.
        for id in [0x0000, 0x0014, 0x0078, 0x0346, 0x0214, 0xffff] {
            let err = Suite::from_id(id).unwrap_err();
            assert_eq!(err, Error::UnsupportedSuite(id));
            assert!(err.to_string().contains(&format!("0x{id:04x}")));
        }
    }
}
