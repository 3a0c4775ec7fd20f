//! A minimal Encryption SDK *encoder* (format version 1, suite 0x0178, framed, raw AES keyring
//! `BC`/`DataKey`, empty context): enough to build benchmark inputs of any size. It is test-only
//! and deterministic (seeded); the decoder is proven against the Python SDK, not against this.

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;

/// splitmix64: deterministic bytes for ids, keys and IVs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One frame as the floor measurement needs it: nonce, AAD, ciphertext, tag.
pub struct Frame {
    pub iv: [u8; 12],
    pub aad: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub tag: [u8; 16],
}

pub struct Encrypted {
    pub message: Vec<u8>,
    /// The derived content key and the frames, for the bare AES-GCM floor.
    pub content_key: [u8; 32],
    pub frames: Vec<Frame>,
}

fn seal(cipher: &Aes256Gcm, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
    let tag = cipher
        .encrypt_inout_detached(iv.into(), aad, InOutBuf::from(data))
        .expect("encrypt");
    tag.into()
}

pub fn encrypt(
    plaintext: &[u8],
    wrapping_key: &[u8; 32],
    frame_len: u32,
    rng: &mut Rng,
) -> Encrypted {
    let mut message_id = [0u8; 16];
    let mut data_key = [0u8; 32];
    let mut wrap_iv = [0u8; 12];
    rng.fill(&mut message_id);
    rng.fill(&mut data_key);
    rng.fill(&mut wrap_iv);

    let wrapper = Aes256Gcm::new(wrapping_key.into());
    let mut wrapped = data_key;
    let wrap_tag = seal(&wrapper, &wrap_iv, &[], &mut wrapped);

    let mut m = vec![0x01, 0x80, 0x01, 0x78];
    m.extend_from_slice(&message_id);
    m.extend_from_slice(&0u16.to_be_bytes()); // empty encryption context
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&2u16.to_be_bytes());
    m.extend_from_slice(b"BC");
    m.extend_from_slice(&27u16.to_be_bytes());
    m.extend_from_slice(b"DataKey");
    m.extend_from_slice(&128u32.to_be_bytes());
    m.extend_from_slice(&12u32.to_be_bytes());
    m.extend_from_slice(&wrap_iv);
    m.extend_from_slice(&48u16.to_be_bytes());
    m.extend_from_slice(&wrapped);
    m.extend_from_slice(&wrap_tag);
    m.push(0x02);
    m.extend_from_slice(&[0, 0, 0, 0, 12]);
    m.extend_from_slice(&frame_len.to_be_bytes());

    let mut content_key = [0u8; 32];
    Hkdf::<Sha256>::new(None, &data_key)
        .expand_multi_info(&[&[0x01, 0x78], &message_id], &mut content_key)
        .expect("hkdf");
    let cipher = Aes256Gcm::new((&content_key).into());
    let header_tag = seal(&cipher, &[0; 12], &m.clone(), &mut []);
    m.extend_from_slice(&[0; 12]);
    m.extend_from_slice(&header_tag);

    let mut frames = Vec::new();
    let mut rest = plaintext;
    let mut seq: u32 = 1;
    loop {
        let is_final = rest.len() <= frame_len as usize;
        let take = if is_final {
            rest.len()
        } else {
            frame_len as usize
        };
        let (chunk, tail) = rest.split_at(take);
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&seq.to_be_bytes());
        let label: &[u8] = if is_final {
            b"AWSKMSEncryptionClient Final Frame"
        } else {
            b"AWSKMSEncryptionClient Frame"
        };
        let mut aad = message_id.to_vec();
        aad.extend_from_slice(label);
        aad.extend_from_slice(&seq.to_be_bytes());
        aad.extend_from_slice(&(take as u64).to_be_bytes());
        let mut ciphertext = chunk.to_vec();
        let tag = seal(&cipher, &iv, &aad, &mut ciphertext);
        if is_final {
            m.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&iv);
        if is_final {
            m.extend_from_slice(&(take as u32).to_be_bytes());
        }
        m.extend_from_slice(&ciphertext);
        m.extend_from_slice(&tag);
        frames.push(Frame {
            iv,
            aad,
            ciphertext,
            tag,
        });
        if is_final {
            break;
        }
        rest = tail;
        seq += 1;
    }
    Encrypted {
        message: m,
        content_key,
        frames,
    }
}
