//! The AWS Encryption SDK message decoder, as DAS needs it: message format versions 1 and 2, the
//! raw AES keyring, framed and non-framed bodies, signed suites. Pure code over bytes: no I/O, no
//! panics, plaintext released only once the whole message (and its signature) has verified.
//!
//! Layout on the wire: `../shared/reference/das-format.md` section 3, and the
//! aws-encryption-sdk-specification `data-format/` documents.

mod body;
mod error;
mod header;
mod kdf;
mod keyring;
mod reader;
mod signature;
mod suite;

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};

pub use error::{Error, Result};
pub use header::{ContentType, EncryptedDataKey, Header};
pub use keyring::{DAS_KEY_NAME, DAS_PROVIDER_ID, RawAesKeyring};
pub use signature::PUBLIC_KEY_CONTEXT_KEY;
pub use suite::Suite;

use reader::Reader;

/// What a successfully decrypted message was, for logs and metrics (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub version: u8,
    pub suite: Suite,
    pub content_type: ContentType,
    pub frame_length: u32,
    /// Number of encryption context pairs.
    pub encryption_context_pairs: usize,
    /// Plaintext bytes appended to the output.
    pub plaintext_len: usize,
}

/// Decrypts one complete message with `keyring`, appending the plaintext to `out`.
///
/// On any error `out` is left as it was: no unauthenticated plaintext is ever released.
pub fn decrypt(
    message: &[u8],
    keyring: &RawAesKeyring<'_>,
    out: &mut Vec<u8>,
) -> Result<MessageInfo> {
    let start = out.len();
    let result = decrypt_inner(message, keyring, out, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn decrypt_inner(
    message: &[u8],
    keyring: &RawAesKeyring<'_>,
    out: &mut Vec<u8>,
    start: usize,
) -> Result<MessageInfo> {
    let mut r = Reader::new(message);
    let header = header::parse(&mut r)?;
    let verifying_key = if header.suite.is_signed() {
        Some(signature::verifying_key(&header)?)
    } else {
        None
    };
    let mut data_key = keyring.unwrap_data_key(&header)?;
    let content_key = kdf::content_key(&header, &data_key);
    data_key.fill(0);
    let mut content_key = content_key?;
    let cipher = Aes256Gcm::new((&content_key).into());
    content_key.fill(0);

    // Header authentication: AES-GCM over an empty plaintext with the header as AAD.
    let mut empty = [0u8; 0];
    let buf = InOutBuf::new(&[], &mut empty).map_err(|_| Error::HeaderAuth)?;
    cipher
        .decrypt_inout_detached(
            (&header.header_iv).into(),
            header.authenticated,
            buf,
            header.header_tag.into(),
        )
        .map_err(|_| Error::HeaderAuth)?;

    body::decrypt(&mut r, &header, &cipher, out)?;

    if let Some(key) = verifying_key {
        let signed = r.since(0);
        signature::verify(&mut r, &key, signed)?;
    }
    if r.left() != 0 {
        return Err(Error::TrailingBytes(r.left()));
    }
    Ok(MessageInfo {
        version: header.version,
        suite: header.suite,
        content_type: header.content_type,
        frame_length: header.frame_length,
        encryption_context_pairs: header.encryption_context.len(),
        plaintext_len: out.len().saturating_sub(start),
    })
}

/// Parses only the header: for diagnostics (which key, which suite) without any key material.
pub fn parse_header(message: &[u8]) -> Result<Header<'_>> {
    header::parse(&mut Reader::new(message))
}
