//! The Encryption SDK decoder on arbitrary messages. Input: a 32-byte wrapping key (the DAS data
//! key KMS would return), then the message. Must never panic, and on error must release nothing.
#![no_main]

use das_processor::esdk::{self, RawAesKeyring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((key, message)) = data.split_first_chunk::<32>() else {
        return;
    };
    let keyring = RawAesKeyring::das(key);
    let mut out = b"prefix".to_vec();
    match esdk::decrypt(message, &keyring, &mut out) {
        Ok(info) => assert_eq!(out.len(), 6 + info.plaintext_len),
        Err(_) => assert_eq!(out, b"prefix", "plaintext released on error"),
    }
});
