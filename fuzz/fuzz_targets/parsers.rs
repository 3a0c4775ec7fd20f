//! Every parser of untrusted bytes before and after decryption: the DAS envelope (and its base64
//! fields), bounded gunzip, and the decrypted record with its events. Must never panic; gunzip
//! must respect its output limit.
#![no_main]

use das_processor::envelope::Envelope;
use das_processor::event::{EventFields, RecordView};
use das_processor::inflate;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        let mut message = Vec::new();
        let _ = envelope.decode_message(&mut message);
        let _ = envelope.decode_key();
    }
    let mut out = Vec::new();
    if inflate::gunzip(data, LIMIT, &mut out).is_ok() {
        assert!(out.len() <= LIMIT);
    }
    if let Ok(record) = RecordView::parse(data) {
        for raw in &record.events {
            if let Ok(fields) = EventFields::parse(raw.get()) {
                let _ = das_processor::classify::classify(&fields);
            }
        }
    }
});
