//! The footer of signed suites: u16 length + DER ECDSA P-384 signature over every byte before the
//! footer, checked with the public key the encryption context carries (`aws-crypto-public-key`,
//! base64 of a compressed SEC1 point).
//!
//! Spec: aws-encryption-sdk-specification `data-format/message-footer.md`.

use base64::Engine as _;
use p384::ecdsa::signature::Verifier as _;
use p384::ecdsa::{Signature, VerifyingKey};

use super::error::{Error, Result};
use super::header::{Header, invalid};
use super::reader::Reader;

/// The encryption context key holding the signer's public key.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";

/// Reads the verifying key from the header, so a bad key fails before any decryption work.
pub(crate) fn verifying_key(header: &Header<'_>) -> Result<VerifyingKey> {
    let encoded = header.context_value(PUBLIC_KEY_CONTEXT_KEY).ok_or(invalid(
        "encryption context",
        "signed suite without aws-crypto-public-key",
    ))?;
    let point = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid("aws-crypto-public-key", "not base64"))?;
    VerifyingKey::from_sec1_bytes(&point)
        .map_err(|_| invalid("aws-crypto-public-key", "not a P-384 point"))
}

/// Reads the footer and verifies it over `signed` (the header and body).
pub(crate) fn verify(r: &mut Reader<'_>, key: &VerifyingKey, signed: &[u8]) -> Result<()> {
    let der = r.u16_prefixed("footer signature")?;
    let signature = Signature::from_der(der).map_err(|_| Error::Signature)?;
    key.verify(signed, &signature).map_err(|_| Error::Signature)
}
