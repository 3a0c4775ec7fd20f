//! The decoder against messages made by the AWS Encryption SDK for Python (`testdata/esdk`, or the
//! folder named by `ESDK_FIXTURES_DIR`, which `make test` points at a freshly generated set).

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/support/activity.rs"]
#[allow(dead_code)]
mod activity;

use std::path::PathBuf;

use activity::ActivityRecord;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use das_processor::envelope::Envelope;
use das_processor::esdk::{self, ContentType, Error, RawAesKeyring, Suite};
use das_processor::inflate;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    name: String,
    suite_id: u16,
    frame_length: u32,
    encryption_context: serde_json::Map<String, serde_json::Value>,
    wrapping_key: String,
    message: Option<String>,
    envelope: Option<String>,
    plaintext: String,
    record: Option<String>,
}

struct Case {
    name: String,
    fixture: Fixture,
    key: [u8; 32],
    message: Vec<u8>,
    plaintext: Vec<u8>,
}

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("ESDK_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/esdk"),
    }
}

fn cases() -> Vec<Case> {
    let dir = fixtures_dir();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    // A missing or half-generated folder must fail loudly, not pass on nothing.
    assert!(
        paths.len() >= 17,
        "expected at least 17 fixtures in {}, found {}",
        dir.display(),
        paths.len()
    );
    paths
        .into_iter()
        .map(|path| {
            let fixture: Fixture = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let key: [u8; 32] = B64
                .decode(&fixture.wrapping_key)
                .unwrap()
                .try_into()
                .unwrap();
            let message = match (&fixture.message, &fixture.envelope) {
                (Some(m), None) => B64.decode(m).unwrap(),
                (None, Some(env)) => {
                    let mut m = Vec::new();
                    Envelope::parse(env.as_bytes())
                        .unwrap()
                        .decode_message(&mut m)
                        .unwrap();
                    m
                }
                _ => panic!("{}: exactly one of message and envelope", fixture.name),
            };
            let plaintext = B64.decode(&fixture.plaintext).unwrap();
            Case {
                name: fixture.name.clone(),
                fixture,
                key,
                message,
                plaintext,
            }
        })
        .collect()
}

fn decrypt(message: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let result = esdk::decrypt(message, &RawAesKeyring::das(key), &mut out);
    if result.is_err() {
        assert!(out.is_empty(), "plaintext released on error");
    }
    result.map(|_| out)
}

#[test]
fn every_fixture_decrypts_to_exactly_its_plaintext() {
    let cases = cases();
    let mut suites_seen = std::collections::BTreeSet::new();
    for case in &cases {
        let mut out = b"keep".to_vec();
        let info = esdk::decrypt(&case.message, &RawAesKeyring::das(&case.key), &mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(&out[..4], b"keep", "{}: appends", case.name);
        assert_eq!(&out[4..], case.plaintext, "{}: plaintext", case.name);
        assert_eq!(info.plaintext_len, case.plaintext.len());
        assert_eq!(info.suite.id(), case.fixture.suite_id, "{}", case.name);
        assert_eq!(
            info.frame_length, case.fixture.frame_length,
            "{}",
            case.name
        );
        let expected_type = if case.fixture.frame_length == 0 {
            ContentType::NonFramed
        } else {
            ContentType::Framed
        };
        assert_eq!(info.content_type, expected_type, "{}", case.name);
        suites_seen.insert(info.suite.id());

        // The header carries the context the SDK was given (plus the signing key for signed suites).
        let header = esdk::parse_header(&case.message).unwrap();
        for (k, v) in &case.fixture.encryption_context {
            assert_eq!(
                header.context_value(k),
                v.as_str(),
                "{}: context {k}",
                case.name
            );
        }
        assert_eq!(
            header.context_value(esdk::PUBLIC_KEY_CONTEXT_KEY).is_some(),
            info.suite.is_signed(),
            "{}",
            case.name
        );

        if let Some(record) = &case.fixture.record {
            let mut json = Vec::new();
            inflate::gunzip(&out[4..], inflate::DEFAULT_MAX_DECOMPRESSED, &mut json).unwrap();
            assert_eq!(json, record.as_bytes(), "{}: inflated record", case.name);
            let parsed = ActivityRecord::parse(&json).unwrap();
            let expected: serde_json::Value = serde_json::from_str(record).unwrap();
            let expected_events = expected["databaseActivityEventList"].as_array().unwrap();
            assert_eq!(parsed.events.len(), expected_events.len(), "{}", case.name);
            for (got, want) in parsed.events.iter().zip(expected_events) {
                assert_eq!(
                    &serde_json::Value::Object(got.0.clone()),
                    want,
                    "{}",
                    case.name
                );
            }
        }
    }
    // The suites the issue requires, and the committing ones, are all exercised.
    assert_eq!(
        suites_seen.into_iter().collect::<Vec<_>>(),
        [0x0178, 0x0378, 0x0478, 0x0578]
    );
    let multi_frame = cases
        .iter()
        .filter(|c| c.plaintext.len() > 4096 && c.fixture.frame_length == 4096)
        .count();
    let over_64k = cases
        .iter()
        .filter(|c| c.plaintext.len() > 64 * 1024)
        .count();
    assert!(
        multi_frame >= 2 && over_64k >= 1,
        "fixture set lost its large messages"
    );
}

#[test]
fn every_truncation_is_rejected() {
    for case in cases() {
        for cut in 0..case.message.len() {
            assert!(
                decrypt(&case.message[..cut], &case.key).is_err(),
                "{}: truncated to {cut} of {} bytes was accepted",
                case.name,
                case.message.len()
            );
        }
    }
}

/// Byte positions to flip: all of them for small messages; for large ones the whole header, the
/// last 600 bytes (final frames, footer) and a stride through the body.
fn positions(case: &Case) -> Vec<usize> {
    let len = case.message.len();
    if len <= 16 * 1024 {
        return (0..len).collect();
    }
    let mut p: Vec<usize> = (0..400).chain(len - 600..len).collect();
    p.extend((400..len - 600).step_by(29));
    p
}

#[test]
fn every_flipped_bit_is_rejected() {
    for case in cases() {
        let small = case.message.len() <= 16 * 1024;
        let mut message = case.message.clone();
        for pos in positions(&case) {
            let bits: Vec<u8> = if small {
                (0..8).collect()
            } else {
                vec![(pos % 8) as u8]
            };
            for bit in bits {
                message[pos] ^= 1 << bit;
                let result = decrypt(&message, &case.key);
                assert!(
                    result.is_err(),
                    "{}: bit {bit} of byte {pos} flipped was accepted",
                    case.name
                );
                message[pos] ^= 1 << bit;
            }
        }
    }
}

#[test]
fn wrong_wrapping_key_is_rejected() {
    for case in cases() {
        let mut key = case.key;
        key[31] ^= 0x80;
        assert_eq!(
            decrypt(&case.message, &key).unwrap_err(),
            Error::DataKeyUnwrap,
            "{}",
            case.name
        );
        let other = RawAesKeyring::new("BC", "OtherKey", &case.key);
        let err = esdk::decrypt(&case.message, &other, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, Error::NoMatchingDataKey { count: 1, .. }),
            "{}: {err}",
            case.name
        );
        let aws_kms = RawAesKeyring::new("aws-kms", "DataKey", &case.key);
        assert!(matches!(
            esdk::decrypt(&case.message, &aws_kms, &mut Vec::new()),
            Err(Error::NoMatchingDataKey { .. })
        ));
    }
}

#[test]
fn other_algorithm_suites_are_refused_by_id() {
    for case in cases() {
        let at = if case.message[0] == 1 { 2 } else { 1 };
        for id in [0x0014u16, 0x0078, 0x0346, 0x0214, 0x1234] {
            let mut m = case.message.clone();
            m[at..at + 2].copy_from_slice(&id.to_be_bytes());
            let err = decrypt(&m, &case.key).unwrap_err();
            assert_eq!(err, Error::UnsupportedSuite(id), "{}", case.name);
            assert!(err.to_string().contains(&format!("0x{id:04x}")));
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    for case in cases() {
        for extra in [&[0u8][..], &[0xff; 17][..]] {
            let mut m = case.message.clone();
            m.extend_from_slice(extra);
            assert_eq!(
                decrypt(&m, &case.key).unwrap_err(),
                Error::TrailingBytes(extra.len()),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn frames_swapped_or_dropped_are_rejected_by_sequence() {
    // das-pg-over-64k has many 4 KiB frames: drop the first, or move the second before the first.
    let case = cases()
        .into_iter()
        .find(|c| c.name == "das-pg-over-64k")
        .unwrap();
    let header_len = esdk::parse_header(&case.message)
        .unwrap()
        .authenticated
        .len()
        + 12
        + 16;
    let frame = 4 + 12 + 4096 + 16;
    let body = &case.message[header_len..];
    let mut dropped = case.message[..header_len].to_vec();
    dropped.extend_from_slice(&body[frame..]);
    assert_eq!(
        decrypt(&dropped, &case.key).unwrap_err(),
        Error::FrameSequence {
            expected: 1,
            found: 2
        }
    );
    let mut swapped = case.message[..header_len].to_vec();
    swapped.extend_from_slice(&body[frame..2 * frame]);
    swapped.extend_from_slice(&body[..frame]);
    swapped.extend_from_slice(&body[2 * frame..]);
    assert_eq!(
        decrypt(&swapped, &case.key).unwrap_err(),
        Error::FrameSequence {
            expected: 1,
            found: 2
        }
    );
}

#[test]
fn the_blog_posts_real_das_message_parses_as_das_messages_do() {
    let b64 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/das-blog-sample-message.b64"
    ))
    .unwrap();
    let message = B64.decode(b64.trim()).unwrap();
    assert_eq!(message.len(), 357);
    let header = esdk::parse_header(&message).unwrap();
    assert_eq!(header.version, 1);
    assert_eq!(header.suite, Suite::Aes256GcmHkdfSha256);
    assert!(header.encryption_context.is_empty());
    assert_eq!(header.encrypted_data_keys.len(), 1);
    let edk = header.encrypted_data_keys[0];
    assert_eq!(edk.provider_id, b"BC");
    assert!(edk.provider_info.starts_with(b"DataKey"));
    assert_eq!(edk.ciphertext.len(), 48);
    assert_eq!(header.content_type, ContentType::Framed);
    assert_eq!(header.frame_length, 4096);
    // Without its KMS data key the message cannot be opened, and says why.
    assert_eq!(
        decrypt(&message, &[7; 32]).unwrap_err(),
        Error::DataKeyUnwrap
    );
}

/// Deterministic splitmix64, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_structural_edits_are_rejected_without_panicking() {
    // Overwrites, insertions, deletions and cuts, one to four per message: shapes that single
    // bit flips and truncations do not reach (lengths that now point elsewhere, shifted fields).
    for (index, case) in cases().into_iter().enumerate() {
        if case.message.len() > 16 * 1024 {
            continue;
        }
        let mut rng = Rng(0xE5D4 + index as u64);
        for iteration in 0..1500 {
            let mut m = case.message.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len().max(1));
                match rng.below(4) {
                    0 if !m.is_empty() => m[at] = rng.next() as u8,
                    1 => m.insert(at, rng.next() as u8),
                    2 if !m.is_empty() => {
                        m.remove(at);
                    }
                    _ => m.truncate(at),
                }
            }
            if m == case.message {
                continue;
            }
            assert!(
                decrypt(&m, &case.key).is_err(),
                "{}: edit {iteration} accepted",
                case.name
            );
        }
    }
}

// The second parser's own tests (benches/support/activity.rs): it checks the fixtures, so it is
// checked too.
mod activity_parser {
    use super::activity::{ActivityRecord, Engine, EventKind};

    const PG: &str = r#"{"type":"DatabaseActivityMonitoringRecord","clusterId":"cluster-ABC","instanceId":"db-XYZ",
      "databaseActivityEventList":[
        {"type":"heartbeat"},
        {"type":"record","class":"DDL","command":"CREATE TABLE","commandText":"create table t(i int)",
         "dbUserName":"alice","databaseName":"app","exitCode":0,"serverType":"PostgreSQL",
         "logTime":"2021-06-04 02:22:47.218201+00","paramList":[],"statementId":7,"newField":{"a":1}},
        {"type":"record","class":"MAIN","command":"QUERY","serverType":"MySQL","exitCode":"0",
         "statementId":"7","transactionId":null,"paramList":null}
      ],"futureTopLevel":true}"#;

    #[test]
    fn parses_engines_with_different_field_types() {
        let rec = ActivityRecord::parse(PG.as_bytes()).unwrap();
        assert_eq!(rec.cluster_id.as_deref(), Some("cluster-ABC"));
        assert_eq!(rec.instance_id.as_deref(), Some("db-XYZ"));
        assert_eq!(rec.events.len(), 3);
        assert!(!rec.is_heartbeat_only());
        assert_eq!(rec.activity().count(), 2);
        assert_eq!(rec.other["futureTopLevel"], true);

        let pg = &rec.events[1];
        assert_eq!(pg.engine(), Engine::PostgreSql);
        assert_eq!(pg.text("exitCode").as_deref(), Some("0"));
        assert_eq!(pg.text("statementId").as_deref(), Some("7"));
        assert_eq!(pg.text("paramList"), None);
        assert_eq!(pg.get("newField").unwrap()["a"], 1);
        assert_eq!(pg.command().as_deref(), Some("CREATE TABLE"));

        let my = &rec.events[2];
        assert_eq!(my.engine(), Engine::MySql);
        assert_eq!(my.text("exitCode").as_deref(), Some("0"));
        assert_eq!(my.text("transactionId"), None);
        assert_eq!(rec.events[0].kind(), EventKind::Heartbeat);
    }

    #[test]
    fn keeps_field_order_and_values_exactly() {
        let rec = ActivityRecord::parse(PG.as_bytes()).unwrap();
        let reserialized = serde_json::to_string(&rec.events[1].0).unwrap();
        assert!(
            reserialized.starts_with(r#"{"type":"record","class":"DDL","command":"CREATE TABLE""#)
        );
    }

    #[test]
    fn instance_records_and_heartbeat_only_records() {
        let rec = ActivityRecord::parse(
            br#"{"type":"DatabaseActivityMonitoringRecord","clusterId":"","instanceId":"db-1",
                "databaseActivityEventList":[{"type":"heartbeat"}]}"#,
        )
        .unwrap();
        assert_eq!(rec.cluster_id, None);
        assert!(rec.is_heartbeat_only());
        let empty = ActivityRecord::parse(
            br#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":[]}"#,
        )
        .unwrap();
        assert!(empty.is_heartbeat_only());
        assert_eq!(empty.activity().count(), 0);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: [(&[u8], &str); 6] = [
            (b"nope", "not JSON"),
            (b"[]", "JSON array, expected an object"),
            (br#"{"type":"X"}"#, r#"record type is "X""#),
            (
                br#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":{}}"#,
                "databaseActivityEventList is JSON object",
            ),
            (
                br#"{"type":"DatabaseActivityMonitoringRecord","databaseActivityEventList":[{},3]}"#,
                "event 1 of databaseActivityEventList is JSON number",
            ),
            (b"{\"type\":\"DatabaseActivityMonitoringRecord\",\"x\":\"\xff\"}", "not JSON"),
        ];
        for (input, expected) in cases {
            let err = ActivityRecord::parse(input).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }
}
