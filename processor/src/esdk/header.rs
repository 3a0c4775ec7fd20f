//! The message header, versions 1 and 2: parsed into borrowed slices of the message so nothing is
//! copied. Validation here is structural; authentication happens once the content key is known.
//!
//! Spec: aws-encryption-sdk-specification `data-format/message-header.md`.

use super::error::{Error, Result};
use super::reader::Reader;
use super::suite::{IV_LEN, Suite, TAG_LEN};

/// Body layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// One block with a u64 length (0x01).
    NonFramed,
    /// Frames of `frame_length` bytes and a final frame (0x02).
    Framed,
}

/// One encrypted data key entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedDataKey<'a> {
    pub provider_id: &'a [u8],
    pub provider_info: &'a [u8],
    pub ciphertext: &'a [u8],
}

/// A parsed header, borrowing from the message.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    pub version: u8,
    pub suite: Suite,
    /// 16 bytes (version 1) or 32 bytes (version 2).
    pub message_id: &'a [u8],
    /// The serialized encryption context exactly as on the wire (without its length prefix):
    /// the AAD of the raw AES keyring.
    pub encryption_context_bytes: &'a [u8],
    /// The encryption context pairs, in wire order.
    pub encryption_context: Vec<(&'a str, &'a str)>,
    pub encrypted_data_keys: Vec<EncryptedDataKey<'a>>,
    pub content_type: ContentType,
    /// 0 for non-framed bodies.
    pub frame_length: u32,
    /// Version 2 only: the 32-byte commitment key.
    pub commitment: Option<&'a [u8; 32]>,
    /// The bytes covered by the header authentication tag.
    pub authenticated: &'a [u8],
    /// Version 1 carries the header IV; version 2 uses twelve zero bytes.
    pub header_iv: [u8; IV_LEN],
    pub header_tag: &'a [u8; TAG_LEN],
}

impl<'a> Header<'a> {
    /// The value of an encryption context key.
    pub fn context_value(&self, key: &str) -> Option<&'a str> {
        self.encryption_context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

const TYPE_CUSTOMER_AE: u8 = 0x80;

/// Parses the header, leaving the reader at the first byte of the body.
pub(crate) fn parse<'a>(r: &mut Reader<'a>) -> Result<Header<'a>> {
    let start = r.position();
    let version = r.u8("version")?;
    if version != 1 && version != 2 {
        return Err(Error::UnsupportedVersion(version));
    }
    if version == 1 && r.u8("type")? != TYPE_CUSTOMER_AE {
        return Err(invalid(
            "type",
            "must be 0x80 (customer authenticated encrypted data)",
        ));
    }
    let suite = Suite::from_id(r.u16("algorithm suite id")?)?;
    if suite.message_version() != version {
        return Err(invalid(
            "algorithm suite id",
            "suite does not belong to this message format version",
        ));
    }
    let message_id = r.take(if version == 1 { 16 } else { 32 }, "message id")?;
    let encryption_context_bytes = r.u16_prefixed("encryption context")?;
    let encryption_context = parse_encryption_context(encryption_context_bytes)?;

    let edk_count = r.u16("encrypted data key count")?;
    if edk_count == 0 {
        return Err(invalid("encrypted data key count", "must be at least 1"));
    }
    let mut encrypted_data_keys = Vec::with_capacity(usize::from(edk_count));
    for _ in 0..edk_count {
        encrypted_data_keys.push(EncryptedDataKey {
            provider_id: r.u16_prefixed("encrypted data key provider id")?,
            provider_info: r.u16_prefixed("encrypted data key provider info")?,
            ciphertext: r.u16_prefixed("encrypted data key ciphertext")?,
        });
    }

    let content_type = match r.u8("content type")? {
        0x01 => ContentType::NonFramed,
        0x02 => ContentType::Framed,
        _ => return Err(invalid("content type", "must be 0x01 or 0x02")),
    };
    if version == 1 {
        if r.u32("reserved")? != 0 {
            return Err(invalid("reserved", "must be zero"));
        }
        if usize::from(r.u8("IV length")?) != IV_LEN {
            return Err(invalid("IV length", "must be 12 for this suite"));
        }
    }
    let frame_length = r.u32("frame length")?;
    match (content_type, frame_length) {
        (ContentType::NonFramed, 0) => {}
        (ContentType::NonFramed, _) => {
            return Err(invalid("frame length", "must be 0 for a non-framed body"));
        }
        (ContentType::Framed, 0) => {
            return Err(invalid("frame length", "must not be 0 for a framed body"));
        }
        (ContentType::Framed, _) => {}
    }
    let commitment = if version == 2 {
        Some(r.array::<32>("commitment key")?)
    } else {
        None
    };
    let authenticated = r.since(start);

    let mut header_iv = [0u8; IV_LEN];
    if version == 1 {
        header_iv = *r.array::<IV_LEN>("header IV")?;
    }
    let header_tag = r.array::<TAG_LEN>("header authentication tag")?;

    Ok(Header {
        version,
        suite,
        message_id,
        encryption_context_bytes,
        encryption_context,
        encrypted_data_keys,
        content_type,
        frame_length,
        commitment,
        authenticated,
        header_iv,
        header_tag,
    })
}

/// Spec `data-format/message-header.md#aad` and `framework/structures.md#encryption-context`:
/// a u16 pair count then u16-prefixed UTF-8 keys and values; empty when the length is zero.
fn parse_encryption_context(bytes: &[u8]) -> Result<Vec<(&str, &str)>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(bytes);
    let count = r.u16("encryption context pair count")?;
    if count == 0 {
        return Err(invalid(
            "encryption context pair count",
            "must not be 0 when the context length is not 0",
        ));
    }
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let key = utf8(
            r.u16_prefixed("encryption context key")?,
            "encryption context key",
        )?;
        let value = utf8(
            r.u16_prefixed("encryption context value")?,
            "encryption context value",
        )?;
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(invalid("encryption context key", "duplicate key"));
        }
        pairs.push((key, value));
    }
    if r.left() != 0 {
        return Err(invalid(
            "encryption context",
            "length does not match its pairs",
        ));
    }
    Ok(pairs)
}

fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str> {
    core::str::from_utf8(bytes).map_err(|_| invalid(field, "not UTF-8"))
}

pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Error {
    Error::Invalid { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (pairs.len() as u16).to_be_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u16).to_be_bytes());
            out.extend(k.as_bytes());
            out.extend((v.len() as u16).to_be_bytes());
            out.extend(v.as_bytes());
        }
        out
    }

    #[test]
    fn encryption_context_pairs_parse() {
        let bytes = context(&[("a", "1"), ("aws:rds:dbc-id", "cluster-X")]);
        let pairs = parse_encryption_context(&bytes).unwrap();
        assert_eq!(pairs, vec![("a", "1"), ("aws:rds:dbc-id", "cluster-X")]);
    }

    #[test]
    fn encryption_context_rejects_duplicates_slack_and_bad_utf8() {
        let dup = context(&[("a", "1"), ("a", "2")]);
        assert_eq!(
            parse_encryption_context(&dup).unwrap_err(),
            invalid("encryption context key", "duplicate key")
        );
        let mut slack = context(&[("a", "1")]);
        slack.push(0);
        assert!(matches!(
            parse_encryption_context(&slack),
            Err(Error::Invalid {
                field: "encryption context",
                ..
            })
        ));
        let bad = [0, 1, 0, 1, 0xff, 0, 0];
        assert!(matches!(
            parse_encryption_context(&bad),
            Err(Error::Invalid {
                field: "encryption context key",
                ..
            })
        ));
        assert!(matches!(
            parse_encryption_context(&[0, 0]),
            Err(Error::Invalid {
                field: "encryption context pair count",
                ..
            })
        ));
    }
}
