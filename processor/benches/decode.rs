//! Decoder throughput against its floor, measured in the same run.
//!
//!   cargo bench -p das-processor --bench decode          # full run, prints the table
//!   cargo test  -p das-processor --bench decode          # quick smoke: one small round, checked
//!
//! Input: realistic Aurora PostgreSQL records of about 1 KB per event (100 to 5,000 events), gzip'd
//! and encrypted as DAS does (suite 0x0178, 4 KiB frames), inside the Kinesis envelope.
//! - floor:   bare AES-256-GCM decrypt of each frame (content key already derived) + raw inflate
//!   of the deflate stream into a pre-sized buffer (no gzip header, no CRC)
//! - decoder: esdk::decrypt (header parse, key unwrap, HKDF, header auth, frames) + inflate::gunzip
//! - record:  the decoder plus the envelope: JSON parse and base64 decode of the message
//! - parse:   ActivityRecord::parse of the inflated JSON (reported, not part of the ratio)
//!
//! Rounds interleave batches of each variant (about 2 ms), in a rotating order, so drift on a
//! shared machine and cache effects hit all alike; medians of the per-iteration times reported.

// Benchmark code: a panic is how a broken benchmark stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/activity.rs"]
#[allow(dead_code)]
mod activity;
#[path = "support/encode.rs"]
mod encode;
#[path = "support/events.rs"]
mod events;

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use activity::ActivityRecord;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use base64::Engine as _;
use das_processor::envelope::Envelope;
use das_processor::esdk::{self, RawAesKeyring};
use das_processor::inflate;
use encode::Rng;
use events::pg_event;

struct Input {
    events: usize,
    json: Vec<u8>,
    envelope: Vec<u8>,
    message: Vec<u8>,
    wrapping_key: [u8; 32],
    encrypted: encode::Encrypted,
}

fn build(events: usize, rng: &mut Rng) -> Input {
    let list: Vec<_> = (0..events).map(|i| pg_event(rng, i)).collect();
    let json = serde_json::to_vec(&serde_json::json!({
        "type": "DatabaseActivityMonitoringRecord", "clusterId": "cluster-BENCH", "instanceId": "db-BENCH",
        "databaseActivityEventList": list,
    }))
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).unwrap();
    let compressed = gz.finish().unwrap();
    let mut wrapping_key = [0u8; 32];
    rng.fill(&mut wrapping_key);
    let encrypted = encode::encrypt(&compressed, &wrapping_key, 4096, rng);
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = serde_json::to_vec(&serde_json::json!({
        "type": "DatabaseActivityMonitoringRecords", "version": "1.1",
        "databaseActivityEvents": b64.encode(&encrypted.message),
        "key": b64.encode([9u8; 184]),
    }))
    .unwrap();
    Input {
        events,
        json,
        envelope,
        message: encrypted.message.clone(),
        wrapping_key,
        encrypted,
    }
}

fn floor(input: &Input, plain: &mut Vec<u8>, json: &mut Vec<u8>) {
    plain.clear();
    json.clear();
    let cipher = Aes256Gcm::new((&input.encrypted.content_key).into());
    for f in &input.encrypted.frames {
        let start = plain.len();
        plain.resize(start + f.ciphertext.len(), 0);
        let buf = InOutBuf::new(&f.ciphertext, &mut plain[start..]).unwrap();
        cipher
            .decrypt_inout_detached((&f.iv).into(), &f.aad, buf, (&f.tag).into())
            .unwrap();
    }
    // Bare inflate: the raw deflate stream (10-byte gzip header and 8-byte CRC trailer skipped,
    // no CRC computed) into a buffer already sized for the whole output. Stricter than any gunzip.
    json.reserve(input.json.len());
    let deflate = &plain[10..plain.len() - 8];
    let status = flate2::Decompress::new(false)
        .decompress_vec(deflate, json, flate2::FlushDecompress::None)
        .unwrap();
    assert_eq!(status, flate2::Status::StreamEnd);
}

fn decoder(message: &[u8], key: &[u8; 32], plain: &mut Vec<u8>, json: &mut Vec<u8>) {
    plain.clear();
    json.clear();
    esdk::decrypt(message, &RawAesKeyring::das(key), plain).unwrap();
    inflate::gunzip(plain, inflate::DEFAULT_MAX_DECOMPRESSED, json).unwrap();
}

fn record(input: &Input, msg: &mut Vec<u8>, plain: &mut Vec<u8>, json: &mut Vec<u8>) {
    msg.clear();
    let envelope = Envelope::parse(&input.envelope).unwrap();
    envelope.decode_message(msg).unwrap();
    decoder(msg, &input.wrapping_key, plain, json);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full { &[100, 1000, 5000] } else { &[100] };
    let mut rng = Rng(0x00DA_55E7);
    println!(
        "{:>6} {:>9} {:>9} {:>10} {:>10} {:>10} {:>7} {:>7} {:>10} {:>10}",
        "events",
        "json KiB",
        "msg KiB",
        "floor us",
        "decoder us",
        "record us",
        "dec/fl",
        "rec/fl",
        "dec MB/s",
        "parse us"
    );
    for &events in sizes {
        let input = build(events, &mut rng);
        let (mut plain, mut json, mut msg) = (Vec::new(), Vec::new(), Vec::new());
        // Correctness first: every variant yields the exact JSON.
        floor(&input, &mut plain, &mut json);
        assert_eq!(json, input.json);
        decoder(&input.message, &input.wrapping_key, &mut plain, &mut json);
        assert_eq!(json, input.json);
        record(&input, &mut msg, &mut plain, &mut json);
        assert_eq!(json, input.json);
        assert_eq!(ActivityRecord::parse(&json).unwrap().events.len(), events);

        let rounds = if full {
            (100_000 / events).clamp(30, 300)
        } else {
            3
        };
        // A batch of about 2 ms per variant per round: long enough that switching variants (cache,
        // allocator state) does not dominate a 100-event measurement.
        let batch = (2000 / events).max(1);
        let mut times: [Vec<Duration>; 4] = Default::default();
        for round in 0..rounds {
            // Rotate the order every round: whichever runs first after another variant pays for
            // its cache misses, and that must not always be the same one.
            for k in 0..4 {
                let variant = (round + k) % 4;
                let t = Instant::now();
                for _ in 0..batch {
                    match variant {
                        0 => floor(black_box(&input), &mut plain, &mut json),
                        1 => decoder(
                            black_box(&input.message),
                            &input.wrapping_key,
                            &mut plain,
                            &mut json,
                        ),
                        2 => record(black_box(&input), &mut msg, &mut plain, &mut json),
                        _ => {
                            black_box(ActivityRecord::parse(black_box(&input.json)).unwrap());
                        }
                    }
                }
                times[variant].push(t.elapsed() / batch as u32);
            }
        }
        let [tf, td, tr, tp] = times;
        let (f, d, r, p) = (median(tf), median(td), median(tr), median(tp));
        println!(
            "{:>6} {:>9.0} {:>9.1} {:>10.1} {:>10.1} {:>10.1} {:>7.3} {:>7.3} {:>10.0} {:>10.1}",
            input.events,
            input.json.len() as f64 / 1024.0,
            input.message.len() as f64 / 1024.0,
            f.as_secs_f64() * 1e6,
            d.as_secs_f64() * 1e6,
            r.as_secs_f64() * 1e6,
            d.as_secs_f64() / f.as_secs_f64(),
            r.as_secs_f64() / f.as_secs_f64(),
            input.json.len() as f64 / d.as_secs_f64() / 1e6,
            p.as_secs_f64() * 1e6,
        );
    }
    println!(
        "dec/fl: decoder time over floor time (target <= 1.3); rec/fl: with envelope parse + base64"
    );
    if !full {
        println!(
            "quick smoke only (cargo test); run `cargo bench -p das-processor --bench decode` for figures"
        );
    }
}
