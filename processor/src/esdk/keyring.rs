//! The raw AES keyring as DAS configures it: provider id `BC`, key name `DataKey`, AES-256-GCM
//! wrapping with the serialized encryption context as AAD. The wrapping key is the plaintext that
//! KMS returns for the record's `key`.
//!
//! Spec: aws-encryption-sdk-specification `framework/raw-aes-keyring.md`.

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};

use super::error::{Error, Result};
use super::header::Header;
use super::suite::{IV_LEN, KEY_LEN, TAG_LEN};

/// The provider id DAS writes in its encrypted data key.
pub const DAS_PROVIDER_ID: &str = "BC";
/// The key name DAS writes in its encrypted data key.
pub const DAS_KEY_NAME: &str = "DataKey";

/// A raw AES-256 wrapping key with its provider id and key name.
#[derive(Clone)]
pub struct RawAesKeyring<'k> {
    provider_id: &'k str,
    key_name: &'k str,
    wrapping_key: &'k [u8; KEY_LEN],
}

impl core::fmt::Debug for RawAesKeyring<'_> {
    // Never print key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawAesKeyring")
            .field("provider_id", &self.provider_id)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl<'k> RawAesKeyring<'k> {
    /// A keyring with an explicit provider id and key name.
    pub fn new(provider_id: &'k str, key_name: &'k str, wrapping_key: &'k [u8; KEY_LEN]) -> Self {
        Self {
            provider_id,
            key_name,
            wrapping_key,
        }
    }

    /// The keyring DAS uses (`BC` / `DataKey`) around a KMS-decrypted data key.
    pub fn das(wrapping_key: &'k [u8; KEY_LEN]) -> Self {
        Self::new(DAS_PROVIDER_ID, DAS_KEY_NAME, wrapping_key)
    }

    /// Unwraps the message's data key: the first encrypted data key of this keyring that decrypts.
    pub(crate) fn unwrap_data_key(&self, header: &Header<'_>) -> Result<[u8; KEY_LEN]> {
        let cipher = Aes256Gcm::new(self.wrapping_key.into());
        let mut matched = false;
        for edk in &header.encrypted_data_keys {
            if edk.provider_id != self.provider_id.as_bytes() {
                continue;
            }
            let Some(iv) = self.wrapping_iv(edk.provider_info) else {
                continue;
            };
            matched = true;
            let Some((wrapped, tag)) = edk.ciphertext.split_at_checked(KEY_LEN) else {
                continue;
            };
            let Ok(tag) = <&[u8; TAG_LEN]>::try_from(tag) else {
                continue;
            };
            let mut data_key = [0u8; KEY_LEN];
            let Ok(buf) = InOutBuf::new(wrapped, &mut data_key) else {
                continue;
            };
            if cipher
                .decrypt_inout_detached(iv.into(), header.encryption_context_bytes, buf, tag.into())
                .is_ok()
            {
                return Ok(data_key);
            }
        }
        if matched {
            Err(Error::DataKeyUnwrap)
        } else {
            Err(Error::NoMatchingDataKey {
                provider_id: self.provider_id.to_owned(),
                key_name: self.key_name.to_owned(),
                count: header.encrypted_data_keys.len(),
            })
        }
    }

    /// Provider info = key name || tag length in bits (u32 = 128) || IV length (u32 = 12) || IV.
    /// Returns the IV when the info names this key with the parameters we use.
    fn wrapping_iv<'i>(&self, info: &'i [u8]) -> Option<&'i [u8; IV_LEN]> {
        let rest = info.strip_prefix(self.key_name.as_bytes())?;
        let (tag_bits, rest) = rest.split_first_chunk::<4>()?;
        let (iv_len, iv) = rest.split_first_chunk::<4>()?;
        let tag_bits_ok = u32::from_be_bytes(*tag_bits) == 128;
        let iv_len_ok = u32::from_be_bytes(*iv_len) == 12;
        if !(tag_bits_ok && iv_len_ok) {
            return None;
        }
        iv.try_into().ok()
    }
}
