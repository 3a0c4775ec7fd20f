//! The message body: framed (regular frames then exactly one final frame) or a single non-framed
//! block. Each frame is decrypted straight from the message into the output buffer.
//!
//! Spec: aws-encryption-sdk-specification `data-format/message-body.md` and `message-body-aad.md`.

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, Aes256Gcm};

use super::error::{Error, Result};
use super::header::{ContentType, Header, invalid};
use super::reader::Reader;
use super::suite::{IV_LEN, TAG_LEN};

const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
const LABEL_FRAME: &[u8] = b"AWSKMSEncryptionClient Frame";
const LABEL_FINAL: &[u8] = b"AWSKMSEncryptionClient Final Frame";
const LABEL_SINGLE: &[u8] = b"AWSKMSEncryptionClient Single Block";
/// AES-GCM's limit on one plaintext (2^36 - 32 bytes).
const MAX_BLOCK_LEN: u64 = (1 << 36) - 32;

/// Decrypts the body, appending the plaintext to `out`. On error `out` may hold a partial
/// plaintext: the caller discards it.
pub(crate) fn decrypt(
    r: &mut Reader<'_>,
    header: &Header<'_>,
    cipher: &Aes256Gcm,
    out: &mut Vec<u8>,
) -> Result<()> {
    match header.content_type {
        ContentType::NonFramed => {
            let iv = r.array::<IV_LEN>("body IV")?;
            let len = r.u64("body content length")?;
            if len > MAX_BLOCK_LEN {
                return Err(invalid("body content length", "exceeds the AES-GCM limit"));
            }
            let len = usize::try_from(len)
                .map_err(|_| invalid("body content length", "does not fit in memory"))?;
            let ciphertext = r.take(len, "body content")?;
            let tag = r.array::<TAG_LEN>("body authentication tag")?;
            let aad = BodyAad::new(header.message_id, LABEL_SINGLE, 1, len as u64);
            open(cipher, iv, aad.as_bytes(), ciphertext, tag, out, 1)
        }
        ContentType::Framed => decrypt_frames(r, header, cipher, out),
    }
}

fn decrypt_frames(
    r: &mut Reader<'_>,
    header: &Header<'_>,
    cipher: &Aes256Gcm,
    out: &mut Vec<u8>,
) -> Result<()> {
    let frame_length = header.frame_length as usize;
    // The plaintext is never longer than what is left of the message.
    out.reserve(r.left());
    let mut expected: u32 = 1;
    loop {
        let marker = r.u32("frame sequence number")?;
        let is_final = marker == FINAL_FRAME_MARKER;
        let sequence = if is_final {
            r.u32("final frame sequence number")?
        } else {
            marker
        };
        if sequence != expected {
            return Err(Error::FrameSequence {
                expected,
                found: sequence,
            });
        }
        let iv = r.array::<IV_LEN>("frame IV")?;
        let (label, len) = if is_final {
            let len = r.u32("final frame content length")? as usize;
            if len > frame_length {
                return Err(invalid(
                    "final frame content length",
                    "exceeds the frame length",
                ));
            }
            (LABEL_FINAL, len)
        } else {
            (LABEL_FRAME, frame_length)
        };
        let ciphertext = r.take(len, "frame content")?;
        let tag = r.array::<TAG_LEN>("frame authentication tag")?;
        let aad = BodyAad::new(header.message_id, label, sequence, len as u64);
        open(cipher, iv, aad.as_bytes(), ciphertext, tag, out, sequence)?;
        if is_final {
            return Ok(());
        }
        // The final-frame marker is not a valid regular sequence number.
        expected = match expected.checked_add(1) {
            Some(next) if next != FINAL_FRAME_MARKER => next,
            _ => return Err(invalid("frame sequence number", "too many frames")),
        };
    }
}

fn open(
    cipher: &Aes256Gcm,
    iv: &[u8; IV_LEN],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8; TAG_LEN],
    out: &mut Vec<u8>,
    sequence: u32,
) -> Result<()> {
    let start = out.len();
    out.resize(start + ciphertext.len(), 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    let buf = InOutBuf::new(ciphertext, dst).map_err(|_| Error::FrameAuth { sequence })?;
    cipher
        .decrypt_inout_detached(iv.into(), aad, buf, tag.into())
        .map_err(|_| Error::FrameAuth { sequence })
}

/// message id (16 or 32) || label (at most 35) || sequence number (u32) || content length (u64).
struct BodyAad {
    buf: [u8; 32 + 35 + 4 + 8],
    len: usize,
}

impl BodyAad {
    fn new(message_id: &[u8], label: &[u8], sequence: u32, content_len: u64) -> Self {
        let mut aad = Self {
            buf: [0; 32 + 35 + 4 + 8],
            len: 0,
        };
        aad.push(message_id);
        aad.push(label);
        aad.push(&sequence.to_be_bytes());
        aad.push(&content_len.to_be_bytes());
        aad
    }

    fn push(&mut self, bytes: &[u8]) {
        // Inputs are bounded by construction (message id is 16 or 32 bytes); stay panic-free anyway.
        let end = (self.len + bytes.len()).min(self.buf.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes.get(..dst.len()).unwrap_or_default());
        }
        self.len = end;
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}
