//! Content key derivation and key commitment.
//!
//! Non-committing suites: HKDF(hash, IKM = data key, no salt, info = suite id || message id).
//! Committing suites: HKDF-SHA512 with salt = message id; info = suite id || "DERIVEKEY" for the
//! content key, "COMMITKEY" for the commitment that the header carries.
//! Spec: aws-encryption-sdk-specification `framework/algorithm-suites.md#key-derivation`.

use hkdf::Hkdf;
use sha2::{Sha256, Sha384, Sha512};

use super::error::{Error, Result};
use super::header::Header;
use super::suite::{KEY_LEN, Kdf};

pub(crate) fn content_key(header: &Header<'_>, data_key: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN]> {
    let suite_id = header.suite.id().to_be_bytes();
    let mut key = [0u8; KEY_LEN];
    let expanded = match (header.suite.kdf(), header.commitment) {
        (Kdf::Sha256, None) => Hkdf::<Sha256>::new(None, data_key)
            .expand_multi_info(&[&suite_id, header.message_id], &mut key),
        (Kdf::Sha384, None) => Hkdf::<Sha384>::new(None, data_key)
            .expand_multi_info(&[&suite_id, header.message_id], &mut key),
        (Kdf::Sha512, Some(commitment)) => {
            let hkdf = Hkdf::<Sha512>::new(Some(header.message_id), data_key);
            let mut expected = [0u8; 32];
            hkdf.expand(b"COMMITKEY", &mut expected)
                .map_err(|_| Error::CommitmentMismatch)?;
            if !constant_time_eq(&expected, commitment) {
                return Err(Error::CommitmentMismatch);
            }
            hkdf.expand_multi_info(&[&suite_id, b"DERIVEKEY"], &mut key)
        }
        // The header parser pairs suites with versions, so these cannot occur; refuse anyway.
        _ => {
            return Err(Error::Invalid {
                field: "algorithm suite id",
                reason: "suite and key commitment do not agree",
            });
        }
    };
    expanded.map_err(|_| Error::Invalid {
        field: "algorithm suite id",
        reason: "key derivation failed",
    })?;
    Ok(key)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
