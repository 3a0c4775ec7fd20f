//! The handler end to end with in-memory KMS and S3: one result per record, every kept event
//! exactly once in its category folder, bad records isolated, failures that must be retried fail
//! the invocation, retries overwrite. The same paths against a real moto server: `moto.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/support/encode.rs"]
#[allow(dead_code)]
mod encode;
#[path = "support/output.rs"]
mod output;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use das_processor::alert::{RuleFile, Rules};
use das_processor::config::Config;
use das_processor::digest::{self, DigestSigner, DigestStore, InMemory, Signature};
use das_processor::firehose::{FirehoseEvent, FirehoseRecord, RecordResult};
use das_processor::handler::{Alerting, InvocationError, KinesisRecord, Processor};
use das_processor::keys::{DataKey, EncryptionContext, KeyError, KeySource};
use das_processor::notify::{AlertSink, Destination, Notice};
use das_processor::sink::{ObjectSink, SinkError};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const RESOURCE: &str = "cluster-TESTRESOURCE";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// KMS: key blob -> plaintext, for the right context only.
#[derive(Default)]
struct FakeKms {
    keys: BTreeMap<Vec<u8>, [u8; 32]>,
    calls: AtomicUsize,
    unavailable: bool,
}

impl KeySource for FakeKms {
    async fn decrypt(&self, blob: &[u8], context: &EncryptionContext) -> Result<DataKey, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.unavailable {
            return Err(KeyError::Unavailable("ThrottlingException".into()));
        }
        if context.key != "aws:rds:dbc-id" || context.value != RESOURCE {
            return Err(KeyError::Refused(
                "InvalidCiphertextException: context".into(),
            ));
        }
        match self.keys.get(blob) {
            Some(key) => Ok(Zeroizing::new(*key)),
            None => Err(KeyError::Refused("InvalidCiphertextException".into())),
        }
    }
}

/// KMS `Sign` with a fixed P-384 key, returning DER as KMS does.
fn signing_key() -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[7; 48]).unwrap()
}

impl DigestSigner for FakeKms {
    async fn sign(&self, message: &[u8]) -> Result<Signature, String> {
        use p384::ecdsa::signature::Signer as _;
        let signature: p384::ecdsa::Signature = signing_key().sign(message);
        Ok(Signature {
            key_id: "arn:aws:kms:us-east-1:123456789012:key/digests".into(),
            algorithm: "ECDSA_SHA_384".into(),
            value: B64.encode(signature.to_der().as_bytes()),
        })
    }
}

/// The in-memory store (`digest::InMemory`, S3's semantics for these calls) behind failures
/// switched on by the test.
#[derive(Default)]
struct FakeS3 {
    objects: InMemory,
    failing: std::sync::atomic::AtomicBool,
    /// Writes of keys containing this fail.
    refused: Mutex<Option<&'static str>>,
}

impl ObjectSink for FakeS3 {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SinkError> {
        self.check(key)?;
        self.objects.put(key, body).await
    }
}

impl FakeS3 {
    /// Every call fails while `failing`, and calls on keys containing `refused`.
    fn check(&self, key: &str) -> Result<(), SinkError> {
        let refused = self
            .refused
            .lock()
            .unwrap()
            .is_some_and(|r| key.contains(r));
        if refused || self.failing.load(Ordering::SeqCst) {
            return Err(SinkError {
                bucket: "b".into(),
                key: key.into(),
                reason: "ServiceUnavailable".into(),
            });
        }
        Ok(())
    }
}

impl DigestStore for FakeS3 {
    async fn keys(&self, folder: &str) -> Result<Vec<String>, SinkError> {
        self.check(folder)?;
        self.objects.keys(folder).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, SinkError> {
        self.objects.get(key).await
    }
    async fn put_new(&self, key: &str, body: Vec<u8>) -> Result<bool, SinkError> {
        self.check(key)?;
        self.objects.put_new(key, body).await
    }
}

impl FakeS3 {
    /// (key, opened digest) of every digest, oldest first.
    fn digests(&self) -> Vec<(String, digest::Opened)> {
        let objects = self.objects.snapshot();
        let mut out: Vec<_> = objects
            .iter()
            .filter(|(key, _)| output::is_digest(key))
            .map(|(key, body)| (key.clone(), digest::open(body).unwrap()))
            .collect();
        out.sort_by_key(|(_, d)| d.digest.sequence);
        out
    }

    /// (key, line) for every line of every event object.
    fn lines(&self) -> Vec<(String, Value)> {
        let objects = self.objects.snapshot();
        objects
            .iter()
            .filter(|(key, _)| !output::is_manifest(key) && !output::is_digest(key))
            .flat_map(|(key, body)| output::object_lines(key, body))
            .collect()
    }

    /// Keys of the event objects.
    fn event_keys(&self) -> Vec<String> {
        let objects = self.objects.snapshot();
        objects
            .keys()
            .filter(|key| !output::is_manifest(key) && !output::is_digest(key))
            .cloned()
            .collect()
    }

    /// (key, parsed JSON) of every manifest.
    fn manifests(&self) -> Vec<(String, Value)> {
        let objects = self.objects.snapshot();
        objects
            .iter()
            .filter(|(key, _)| output::is_manifest(key))
            .map(|(key, body)| (key.clone(), serde_json::from_slice(body).unwrap()))
            .collect()
    }
}

struct Batch {
    kms: FakeKms,
    event: FirehoseEvent,
    rng: encode::Rng,
}

impl Batch {
    fn new() -> Self {
        Self {
            kms: FakeKms::default(),
            event: FirehoseEvent {
                source_kinesis_stream_arn: Some(format!(
                    "arn:aws:kinesis:us-east-1:123456789012:stream/aws-rds-das-{RESOURCE}"
                )),
                ..FirehoseEvent::default()
            },
            rng: encode::Rng(7),
        }
    }

    /// Adds a record of these events under data key number `key`.
    fn record(&mut self, key: u8, events: Vec<Value>) -> &mut Self {
        let payload = json!({"type": "DatabaseActivityMonitoringRecord", "clusterId": RESOURCE,
            "instanceId": "db-INSTANCE", "databaseActivityEventList": events});
        self.raw_record(key, serde_json::to_vec(&payload).unwrap(), true)
    }

    fn raw_record(&mut self, key: u8, payload: Vec<u8>, gzip: bool) -> &mut Self {
        let blob = vec![0xB0, key];
        let wrapping = [key; 32];
        self.kms.keys.insert(blob.clone(), wrapping);
        let plaintext = if gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &payload).unwrap();
            gz.finish().unwrap()
        } else {
            payload
        };
        let message = encode::encrypt(&plaintext, &wrapping, 4096, &mut self.rng).message;
        self.message_record(key, &message)
    }

    /// A record around a given Encryption SDK message, under data key number `key`.
    fn message_record(&mut self, key: u8, message: &[u8]) -> &mut Self {
        let blob = vec![0xB0, key];
        self.kms.keys.entry(blob.clone()).or_insert([key; 32]);
        let envelope = json!({"type": "DatabaseActivityMonitoringRecords", "version": "1.1",
            "databaseActivityEvents": B64.encode(message), "key": B64.encode(&blob)});
        self.data(B64.encode(serde_json::to_vec(&envelope).unwrap()))
    }

    /// The message `raw_record` would wrap: gzip'd payload encrypted under data key `key`.
    fn message(&mut self, key: u8, payload: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, payload).unwrap();
        let plaintext = gz.finish().unwrap();
        self.kms.keys.insert(vec![0xB0, key], [key; 32]);
        encode::encrypt(&plaintext, &[key; 32], 4096, &mut self.rng).message
    }

    fn data(&mut self, data: String) -> &mut Self {
        let n = self.event.records.len();
        self.event.records.push(FirehoseRecord {
            record_id: format!("record-{n:03}"),
            approximate_arrival_timestamp: Some(1_764_000_000_000.0 + n as f64),
            data,
        });
        self
    }
}

fn config(vars: &[(&str, &str)]) -> Config {
    let mut map: BTreeMap<&str, &str> = vars.iter().copied().collect();
    map.entry("DAS_OUTPUT_BUCKET").or_insert("audit-bucket");
    Config::from_env(|k| map.get(k).map(|v| v.to_string())).unwrap()
}

fn ev(id: &str, fields: Value) -> Value {
    let mut e = json!({"type": "record", "testId": id, "logTime": "2025-11-24 16:05:00.123456+00",
        "dbUserName": "alice"});
    e.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    e
}

fn pg(id: &str, class: &str, command: &str) -> Value {
    ev(
        id,
        json!({"serverType": "PostgreSQL", "class": class, "command": command, "exitCode": null}),
    )
}

fn mysql(id: &str, class: &str, command: &str, text: &str) -> Value {
    ev(
        id,
        json!({"serverType": "MySQL", "class": class, "command": command, "commandText": text,
        "exitCode": "0"}),
    )
}

fn heartbeat() -> Value {
    json!({"type": "heartbeat"})
}

/// testId -> category, from what landed in S3; panics on a duplicate or a misfiled event.
fn landed(s3: &FakeS3) -> BTreeMap<String, String> {
    output::landed(s3.lines())
}

fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn every_kept_event_lands_once_in_its_category_folder() {
    let mut b = Batch::new();
    b.record(1, vec![
        heartbeat(),
        pg("p1", "DDL", "CREATE TABLE"),
        pg("p2", "WRITE", "INSERT"),
        pg("p3", "READ", "SELECT"),
        ev("p4", json!({"serverType": "PostgreSQL", "class": "ERROR", "command": "AUTH FAILURE",
            "dbUserName": "mallory"})),
        ev("p5", json!({"serverType": "PostgreSQL", "class": "DDL", "command": "CREATE TABLE",
            "dbUserName": "rdsadmin"})),
    ])
    .record(1, vec![
        mysql("m1", "MAIN", "QUERY", "update t set a = 1"),
        mysql("m2", "AUX", "WRITE", ""),
        mysql("m3", "MAIN", "FAILED_CONNECT", ""),
        heartbeat(),
    ])
    .record(2, vec![heartbeat(), heartbeat()])
    .record(2, vec![
        ev("o1", json!({"serverType": "oracle", "class": "Standard", "command": "LOGON", "exitCode": 0})),
        ev("s1", json!({"serverType": "SQLSERVER", "class": "LOGIN", "command": "LOGIN FAILED",
            "logTime": "2025-11-24 17:59:59.1234567+00"})),
    ]);
    let p = Processor::new(config(&[]), b.kms, FakeS3::default());
    let (response, stats) = p.handle(b.event.clone()).await.unwrap();

    assert_eq!(response.records.len(), 4);
    for (i, r) in response.records.iter().enumerate() {
        assert_eq!(r.record_id, format!("record-{i:03}"));
        assert_eq!(r.result, RecordResult::Dropped);
        assert_eq!(r.data, "");
    }
    let got = landed(p.sink());
    assert_eq!(
        got,
        expect(&[
            ("p1", "DDL"),
            ("p2", "DML"),
            ("p3", "DQL"),
            ("p4", "AUTH_FAILURE"),
            ("m1", "DML"),
            ("m2", "DML"),
            ("m3", "AUTH_FAILURE"),
            ("o1", "CONNECT"),
            ("s1", "AUTH_FAILURE"),
        ])
    );
    assert_eq!((stats.kms_calls, stats.distinct_keys), (2, 2));
    assert_eq!((stats.kept, stats.filtered, stats.heartbeats), (9, 1, 4));
    assert_eq!(stats.events, 10);
    assert!(stats.decompressed_bytes > stats.decrypted_bytes && stats.decrypted_bytes > 0);
    // The SQL Server event's own hour, not the clock's.
    let keys = p.sink().event_keys();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("parsed/AUTH_FAILURE/2025/11/24/17/")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("parsed/AUTH_FAILURE/2025/11/24/16/")),
        "{keys:?}"
    );
    // Every event object, the invocation's manifest and its digest.
    assert_eq!(stats.s3_puts, keys.len() + 2);

    // Lines carry the record's ids and every original field.
    let line = p
        .sink()
        .lines()
        .into_iter()
        .find(|(_, l)| l["testId"] == "p1")
        .unwrap()
        .1;
    assert_eq!(line["clusterId"], RESOURCE);
    assert_eq!(line["instanceId"], "db-INSTANCE");
    assert_eq!(line["exitCode"], Value::Null);
    assert_eq!(line["logTime"], "2025-11-24 16:05:00.123456+00");

    // A retry of the same batch overwrites the same objects: nothing duplicated, and a warm
    // process asks KMS for nothing.
    let (_, again) = p.handle(b.event).await.unwrap();
    assert_eq!(again.kms_calls, 0);
    assert_eq!(p.sink().event_keys(), keys);
    assert_eq!(landed(p.sink()).len(), 9);
}

#[tokio::test]
async fn bad_records_fail_alone_and_leave_nothing_behind() {
    let mut b = Batch::new();
    b.record(1, vec![pg("good1", "DDL", "DROP TABLE")]);
    b.data("%%% not base64".into());
    b.data(B64.encode(b"not json"));
    b.data(B64.encode(
        br#"{"type":"DatabaseActivityMonitoringRecords","databaseActivityEvents":"AAAA"}"#,
    ));
    // A valid event, then a number: the record fails and its first event must not land.
    b.record(1, vec![pg("partial", "DDL", "CREATE TABLE"), json!(42)]);
    b.raw_record(
        1,
        b"{\"type\":\"DatabaseActivityMonitoringRecord\"}".to_vec(),
        false,
    ); // not gzip
    b.record(9, vec![pg("refused", "DDL", "CREATE TABLE")]);
    b.kms.keys.remove(&vec![0xB0, 9]); // KMS refuses this data key
    b.raw_record(1, b"[1,2]".to_vec(), true);
    b.record(1, vec![pg("good2", "WRITE", "UPDATE")]);
    let p = Processor::new(config(&[]), b.kms, FakeS3::default());
    let (response, stats) = p.handle(b.event.clone()).await.unwrap();
    let results: Vec<RecordResult> = response.records.iter().map(|r| r.result).collect();
    use RecordResult::*;
    assert_eq!(
        results,
        [
            Dropped,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed,
            Dropped
        ]
    );
    // A failed record is answered with its data as received, for the error prefix.
    for (r, input) in response.records.iter().zip(&b.event.records) {
        if r.result == ProcessingFailed {
            assert_eq!(r.data, input.data);
        }
    }
    assert_eq!(
        landed(p.sink()),
        expect(&[("good1", "DDL"), ("good2", "DML")])
    );
    assert_eq!(stats.failed, 7);
}

#[tokio::test]
async fn kms_unavailable_or_s3_failing_fails_the_invocation_and_the_retry_converges() {
    let mut b = Batch::new();
    b.record(
        1,
        vec![pg("a", "DDL", "CREATE TABLE"), pg("b", "READ", "SELECT")],
    );
    let event = b.event.clone();
    let mut kms = b.kms;
    kms.unavailable = true;
    let p = Processor::new(config(&[]), kms, FakeS3::default());
    let err = p.handle(event.clone()).await.unwrap_err();
    assert!(matches!(err, InvocationError::Kms(_)), "{err}");
    assert!(p.sink().objects.snapshot().is_empty());

    let mut b = Batch::new();
    b.record(
        1,
        vec![pg("a", "DDL", "CREATE TABLE"), pg("b", "READ", "SELECT")],
    );
    let s3 = FakeS3::default();
    s3.failing.store(true, Ordering::SeqCst);
    let p = Processor::new(config(&[]), b.kms, s3);
    let err = p.handle(b.event.clone()).await.unwrap_err();
    assert!(err.to_string().contains("ServiceUnavailable"), "{err}");
    p.sink().failing.store(false, Ordering::SeqCst);
    p.handle(b.event.clone()).await.unwrap();
    p.handle(b.event).await.unwrap();
    assert_eq!(landed(p.sink()), expect(&[("a", "DDL"), ("b", "DQL")]));
}

/// 2027-12-31T23:59:59.500Z, half a second before a new year (and a new hour folder).
fn before_new_year() -> i64 {
    1_830_297_599_500
}

/// A second later: 2028-01-01T00:00:00.500Z.
fn after_new_year() -> i64 {
    1_830_297_600_500
}

#[tokio::test]
async fn the_manifest_lists_every_object_written_filed_by_write_time_not_event_time() {
    let mut b = Batch::new();
    // Events of an old day and of two categories: their objects go to 2025's folders, the
    // manifest to the folder of the hour it is written.
    b.record(
        1,
        vec![
            pg("d1", "DDL", "CREATE TABLE"),
            pg("d2", "DDL", "DROP TABLE"),
            pg("w1", "WRITE", "INSERT"),
        ],
    );
    let p = Processor::new(config(&[]), b.kms, FakeS3::default()).with_clock(before_new_year);
    let (_, stats) = p.handle(b.event.clone()).await.unwrap();
    let keys = p.sink().event_keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.contains("/2025/11/24/16/")),
        "{keys:?}"
    );
    let manifests = p.sink().manifests();
    let [(key, manifest)] = manifests.as_slice() else {
        panic!("one manifest per invocation: {manifests:?}");
    };
    let batch = manifest["batch"].as_str().unwrap();
    assert_eq!(
        key,
        &format!("parsed/_manifests/2027/12/31/23/{batch}.json")
    );
    assert_eq!(manifest["writtenAt"], "2027-12-31T23:59:59.500Z");
    assert!(keys[0].ends_with(&format!("/{batch}.json.gz")), "{keys:?}");
    // Exactly the event objects, each with its size, event count and digest.
    let objects = p.sink().objects.snapshot();
    let mut listed: Vec<(String, u64, u64, String)> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_owned(),
                o["bytes"].as_u64().unwrap(),
                o["events"].as_u64().unwrap(),
                o["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    let mut want: Vec<(String, u64, u64, String)> = keys
        .iter()
        .map(|k| {
            let body = &objects[k];
            let digest = <sha2::Sha256 as sha2::Digest>::digest(body);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            let events = output::object_lines(k, body).len() as u64;
            (k.clone(), body.len() as u64, events, hex)
        })
        .collect();
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(
        listed.iter().map(|l| l.2).collect::<Vec<_>>(),
        [2, 1],
        "DDL holds two events, DML one"
    );
    assert_eq!(stats.s3_puts, 4, "two objects, the manifest, the digest");

    // The same batch retried after the top of the hour (and the year): the same objects, the same
    // manifest name in the new hour's folder; the first one stays, so no hour misses it.
    let p = p.with_clock(after_new_year);
    p.handle(b.event).await.unwrap();
    assert_eq!(p.sink().event_keys(), keys);
    let manifests = p.sink().manifests();
    assert_eq!(
        manifests
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        [
            format!("parsed/_manifests/2027/12/31/23/{batch}.json"),
            format!("parsed/_manifests/2028/01/01/00/{batch}.json"),
        ]
    );
    assert_eq!(manifests[1].1["objects"], manifests[0].1["objects"]);
}

#[tokio::test]
async fn no_manifest_without_objects_or_before_every_object_is_written() {
    // Heartbeats only, and everything filtered: nothing written, no manifest.
    let mut b = Batch::new();
    b.record(1, vec![heartbeat(), pg("r", "READ", "SELECT")]);
    let p = Processor::new(
        config(&[("DAS_EXCLUDE_CATEGORIES", "DQL")]),
        b.kms,
        FakeS3::default(),
    );
    let (_, stats) = p.handle(b.event).await.unwrap();
    assert!(p.sink().objects.snapshot().is_empty());
    assert_eq!(stats.s3_puts, 0);

    // One event object refused: the invocation fails and no manifest claims the batch.
    let mut b = Batch::new();
    b.record(
        1,
        vec![pg("d", "DDL", "CREATE TABLE"), pg("w", "WRITE", "INSERT")],
    );
    let s3 = FakeS3::default();
    *s3.refused.lock().unwrap() = Some("/DML/");
    let p = Processor::new(config(&[]), b.kms, s3);
    let err = p.handle(b.event.clone()).await.unwrap_err();
    assert!(err.to_string().contains("/DML/"), "{err}");
    assert!(p.sink().manifests().is_empty());
    // The manifest refused: the invocation fails too (Firehose retries; the retry writes it).
    *p.sink().refused.lock().unwrap() = Some("_manifests/");
    let err = p.handle(b.event.clone()).await.unwrap_err();
    assert!(err.to_string().contains("_manifests/"), "{err}");
    *p.sink().refused.lock().unwrap() = None;
    p.handle(b.event).await.unwrap();
    assert_eq!(p.sink().manifests().len(), 1);

    // Events mode: Firehose writes the events of Ok records, so the processor claims nothing.
    let mut b = Batch::new();
    b.record(1, vec![pg("d", "DDL", "CREATE TABLE")]);
    let p = Processor::new(
        config(&[("DAS_FIREHOSE_OUTPUT", "events")]),
        b.kms,
        FakeS3::default(),
    );
    p.handle(b.event).await.unwrap();
    assert!(p.sink().objects.snapshot().is_empty());
}

#[tokio::test]
async fn records_read_from_the_stream_itself_give_their_events_and_write_nothing() {
    // What `das-setup tail` does: the stream's raw records, not a Firehose invocation.
    let mut b = Batch::new();
    b.record(
        1,
        vec![
            heartbeat(),
            pg("d", "DDL", "CREATE TABLE"),
            pg("r", "READ", "SELECT"),
        ],
    );
    b.record(1, vec![heartbeat()]);
    b.data(B64.encode(b"not json"));
    b.record(9, vec![pg("refused", "DDL", "CREATE TABLE")]);
    b.kms.keys.remove(&vec![0xB0, 9]);
    let raw: Vec<Vec<u8>> = b
        .event
        .records
        .iter()
        .map(|r| B64.decode(&r.data).unwrap())
        .collect();
    let records: Vec<KinesisRecord<'_>> = raw
        .iter()
        .map(|data| KinesisRecord {
            data,
            arrival_millis: Some(0),
        })
        .collect();
    let p = Processor::new(
        config(&[("DAS_EXCLUDE_CATEGORIES", "DQL")]),
        b.kms,
        FakeS3::default(),
    );
    let opened = p.events(RESOURCE, &records).await.unwrap();
    assert_eq!(opened.len(), 4);
    let lines: Vec<Value> = opened[0]
        .as_ref()
        .unwrap()
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "the read is filtered out, the heartbeat dropped"
    );
    assert_eq!(
        (
            &lines[0]["testId"],
            &lines[0]["category"],
            &lines[0]["clusterId"]
        ),
        (&json!("d"), &json!("DDL"), &json!(RESOURCE))
    );
    assert_eq!(opened[1].as_ref().unwrap(), &Vec::<u8>::new());
    let bad = opened[2].as_ref().unwrap_err().to_string();
    assert!(bad.contains("not a DAS envelope"), "{bad}");
    assert!(opened[3].is_err(), "KMS refused its data key");
    assert!(p.sink().objects.snapshot().is_empty());
    // Another database's records cannot be opened with this one's encryption context.
    let other = p.events("cluster-OTHER", &records[..1]).await.unwrap();
    assert!(other[0].is_err());
}

#[tokio::test]
async fn filters_from_the_environment() {
    let mut b = Batch::new();
    b.record(
        1,
        vec![
            pg("ddl", "DDL", "CREATE TABLE"),
            pg("dml", "WRITE", "INSERT"),
            pg("read", "READ", "SELECT"),
            ev(
                "admin",
                json!({"serverType": "PostgreSQL", "class": "WRITE", "command": "INSERT",
            "dbUserName": "rdsadmin"}),
            ),
        ],
    );
    let p = Processor::new(
        config(&[("DAS_INCLUDE_CATEGORIES", "DDL,DML")]),
        b.kms,
        FakeS3::default(),
    );
    let (_, stats) = p.handle(b.event.clone()).await.unwrap();
    assert_eq!(landed(p.sink()), expect(&[("ddl", "DDL"), ("dml", "DML")]));
    assert_eq!(stats.filtered, 2);

    let mut b = Batch::new();
    b.record(
        1,
        vec![ev(
            "admin",
            json!({"serverType": "PostgreSQL", "class": "WRITE",
        "command": "INSERT", "dbUserName": "rdsadmin"}),
        )],
    );
    let p = Processor::new(
        config(&[("DAS_EXCLUDE_USERS", "")]),
        b.kms,
        FakeS3::default(),
    );
    p.handle(b.event).await.unwrap();
    assert_eq!(landed(p.sink()), expect(&[("admin", "DML")]));
}

/// The stored line of each testId.
fn stored(s3: &FakeS3) -> BTreeMap<String, Value> {
    s3.lines()
        .into_iter()
        .map(|(_, line)| (line["testId"].as_str().unwrap().to_owned(), line))
        .collect()
}

#[tokio::test]
async fn secrets_never_reach_s3_and_the_rest_of_the_event_is_unchanged() {
    let events = vec![
        ev(
            "pg",
            json!({"serverType": "PostgreSQL", "class": "ROLE", "command": "ALTER ROLE",
                "commandText": "ALTER ROLE app PASSWORD 'hunter2'", "paramList": [],
                "errorMessage": null, "remoteHost": "10.0.0.1"}),
        ),
        mysql(
            "my",
            "MAIN",
            "QUERY",
            "CREATE USER 'u'@'%' IDENTIFIED BY 'it\\'s-s3cret'",
        ),
        ev(
            "bind",
            json!({"serverType": "PostgreSQL", "class": "WRITE", "command": "UPDATE",
                "commandText": "UPDATE accounts SET password = $1 WHERE id = $2",
                "paramList": ["p4ssw0rd", 7]}),
        ),
        ev(
            "err",
            json!({"serverType": "PostgreSQL", "class": "ERROR", "command": "ERROR",
                "commandText": "ALTER USER app PASSWORD 'unclosed",
                "errorMessage": "unterminated quoted string at or near \"'unclosed\""}),
        ),
        ev(
            "clash",
            json!({"serverType": "PostgreSQL", "class": "ROLE", "command": "ALTER ROLE",
                "commandText": "ALTER ROLE app PASSWORD 'x1'", "redacted": "engine's own"}),
        ),
        pg("plain", "READ", "SELECT"),
    ];
    let mut b = Batch::new();
    b.record(1, events.clone());
    let p = Processor::new(config(&[]), b.kms, FakeS3::default());
    p.handle(b.event.clone()).await.unwrap();
    let lines = stored(p.sink());
    for (_, line) in p.sink().lines() {
        let text = line.to_string();
        for secret in ["hunter2", "s3cret", "p4ssw0rd", "unclosed", "x1"] {
            assert!(!text.contains(secret), "{secret} reached S3: {text}");
        }
    }
    let pg = &lines["pg"];
    assert_eq!(pg["commandText"], "ALTER ROLE app PASSWORD '***'");
    assert_eq!(pg["redacted"], json!(["password"]));
    assert_eq!(pg["category"], "DCL");
    // Every other field as the engine sent it.
    let sent = events[0].as_object().unwrap();
    for (name, value) in sent {
        if name != "commandText" {
            assert_eq!(&pg[name], value, "{name}");
        }
    }
    assert_eq!(
        lines["my"]["commandText"],
        "CREATE USER 'u'@'%' IDENTIFIED BY '***'"
    );
    assert_eq!(
        lines["bind"]["commandText"],
        "UPDATE accounts SET password = $1 WHERE id = $2"
    );
    assert_eq!(lines["bind"]["paramList"], json!(["***", "***"]));
    assert_eq!(lines["bind"]["redacted"], json!(["password"]));
    assert_eq!(
        lines["err"]["errorMessage"],
        "unterminated quoted string at or near \"***\""
    );
    assert_eq!(lines["clash"]["original_redacted"], "engine's own");
    assert_eq!(lines["clash"]["redacted"], json!(["password"]));
    assert!(lines["plain"].get("redacted").is_none());

    // --redact literals: every literal and bind value too.
    let mut b = Batch::new();
    b.record(
        1,
        vec![
            ev(
                "ins",
                json!({"serverType": "PostgreSQL", "class": "WRITE", "command": "INSERT",
                    "commandText": "INSERT INTO patients (name, born) VALUES ('Ada Lovelace', 1815)",
                    "paramList": []}),
            ),
            ev(
                "sel",
                json!({"serverType": "PostgreSQL", "class": "READ", "command": "SELECT",
                    "commandText": "SELECT * FROM patients WHERE ssn = $1", "paramList": ["123-45-6789"]}),
            ),
            ev(
                "none",
                json!({"serverType": "PostgreSQL", "class": "READ", "command": "SELECT",
                    "commandText": "SELECT count(*) FROM patients", "paramList": null}),
            ),
        ],
    );
    let p = Processor::new(
        config(&[("DAS_REDACT", "literals")]),
        b.kms,
        FakeS3::default(),
    );
    p.handle(b.event.clone()).await.unwrap();
    let lines = stored(p.sink());
    assert_eq!(
        lines["ins"]["commandText"],
        "INSERT INTO patients (name, born) VALUES (?, ?)"
    );
    assert_eq!(lines["ins"]["redacted"], json!(["literal"]));
    assert_eq!(lines["sel"]["paramList"], json!(["***"]));
    assert_eq!(lines["sel"]["redacted"], json!(["literal"]));
    assert!(lines["none"].get("redacted").is_none());
    assert_eq!(
        lines["none"]["commandText"],
        "SELECT count(*) FROM patients"
    );
}

#[tokio::test]
async fn events_mode_answers_ok_and_spills_what_does_not_fit_the_response() {
    let mut b = Batch::new();
    b.record(1, vec![pg("small", "DDL", "CREATE TABLE"), heartbeat()]);
    b.record(1, vec![heartbeat()]);
    // Highly compressible, so the input is small and the decrypted events are 7 MB: more than a
    // Lambda response may carry.
    let big: Vec<Value> = (0..7000)
        .map(|i| {
            let mut e = pg(&format!("big{i}"), "WRITE", "INSERT");
            e["commandText"] = json!("x".repeat(1000));
            e
        })
        .collect();
    b.record(1, big);
    let p = Processor::new(
        config(&[("DAS_FIREHOSE_OUTPUT", "events")]),
        b.kms,
        FakeS3::default(),
    );
    let (response, stats) = p.handle(b.event).await.unwrap();
    let results: Vec<RecordResult> = response.records.iter().map(|r| r.result).collect();
    assert_eq!(
        results,
        [
            RecordResult::Ok,
            RecordResult::Dropped,
            RecordResult::Dropped
        ]
    );
    let text = String::from_utf8(B64.decode(&response.records[0].data).unwrap()).unwrap();
    assert!(text.ends_with('\n'));
    let line: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(
        (line["testId"].as_str(), line["category"].as_str()),
        (Some("small"), Some("DDL"))
    );
    assert_eq!(stats.spilled, 1);
    assert_eq!(
        landed(p.sink()).len(),
        7000,
        "the spilled record's events are all in S3"
    );
    assert!(serde_json::to_vec(&response).unwrap().len() < 6 * 1024 * 1024);
}

#[tokio::test]
async fn without_a_resource_id_every_record_fails_and_an_empty_batch_is_fine() {
    let mut b = Batch::new();
    b.record(1, vec![pg("a", "DDL", "CREATE TABLE")]);
    b.event.source_kinesis_stream_arn = Some("arn:aws:kinesis:us-east-1:1:stream/mystream".into());
    let p = Processor::new(config(&[]), b.kms, FakeS3::default());
    let (response, _) = p.handle(b.event.clone()).await.unwrap();
    assert_eq!(response.records[0].result, RecordResult::ProcessingFailed);

    // DAS_RESOURCE_ID rescues it.
    let mut b2 = Batch::new();
    b2.record(1, vec![pg("a", "DDL", "CREATE TABLE")]);
    b2.event.source_kinesis_stream_arn = None;
    let p = Processor::new(
        config(&[("DAS_RESOURCE_ID", RESOURCE)]),
        b2.kms,
        FakeS3::default(),
    );
    let (response, _) = p.handle(b2.event).await.unwrap();
    assert_eq!(response.records[0].result, RecordResult::Dropped);

    let (response, stats) = p.handle(FirehoseEvent::default()).await.unwrap();
    assert!(response.records.is_empty());
    assert_eq!((stats.kms_calls, stats.s3_puts), (0, 0));
}

/// One kind of bad input: adds a bad record to a batch.
type AddBad = Box<dyn Fn(&mut Batch)>;

/// A DAS record payload (decrypted, before gzip) holding these events.
fn payload(events: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"type": "DatabaseActivityMonitoringRecord", "clusterId": RESOURCE,
        "instanceId": "db-INSTANCE", "databaseActivityEventList": events}),
    )
    .unwrap()
}

/// The bad-input matrix: each kind of bad record sits between two good ones. Expected for every
/// kind: the bad record is ProcessingFailed with its data returned as received, the good ones are
/// Dropped with their events in S3 exactly once, and nothing of the bad record lands.
#[tokio::test]
async fn bad_input_matrix() {
    let ok_events = || json!([pg("ok", "DDL", "CREATE TABLE")]);
    let tampered = |offset: fn(usize) -> usize| {
        move |b: &mut Batch| {
            let mut m = b.message(1, &payload(json!([pg("bad", "DDL", "DROP TABLE")])));
            let i = offset(m.len());
            m[i] ^= 0x01;
            b.message_record(1, &m);
        }
    };
    let cases: Vec<(&str, AddBad)> = vec![
        (
            "data not base64",
            Box::new(|b: &mut Batch| {
                b.data("%%% not base64".into());
            }),
        ),
        (
            "data not JSON",
            Box::new(|b: &mut Batch| {
                b.data(B64.encode(b"not json at all"));
            }),
        ),
        (
            "envelope JSON of another type",
            Box::new(|b: &mut Batch| {
                b.data(B64.encode(b"[1,2,3]"));
            }),
        ),
        (
            "envelope of another record type",
            Box::new(|b: &mut Batch| {
                b.data(
                    B64.encode(br#"{"type":"Other","databaseActivityEvents":"AAAA","key":"AAAA"}"#),
                );
            }),
        ),
        (
            "missing key",
            Box::new(|b: &mut Batch| {
                b.data(B64.encode(br#"{"type":"DatabaseActivityMonitoringRecords","databaseActivityEvents":"AAAA"}"#));
            }),
        ),
        (
            "key not base64",
            Box::new(|b: &mut Batch| {
                b.data(B64.encode(br#"{"type":"DatabaseActivityMonitoringRecords","databaseActivityEvents":"AAAA","key":"%%"}"#));
            }),
        ),
        (
            "KMS refuses the data key",
            Box::new(|b: &mut Batch| {
                let m = b.message(9, &payload(json!([pg("bad", "DDL", "DROP TABLE")])));
                b.message_record(9, &m);
                b.kms.keys.remove(&vec![0xB0, 9]);
            }),
        ),
        (
            "truncated message",
            Box::new(|b: &mut Batch| {
                let m = b.message(1, &payload(json!([pg("bad", "DDL", "DROP TABLE")])));
                b.message_record(1, &m[..m.len() / 2]);
            }),
        ),
        ("tampered header (message id)", Box::new(tampered(|_| 10))),
        (
            "tampered data key (EDK ciphertext)",
            Box::new(tampered(|_| 70)),
        ),
        ("tampered header tag", Box::new(tampered(|_| 135))),
        (
            "tampered frame ciphertext",
            Box::new(tampered(|len| len - 20)),
        ),
        ("tampered frame tag", Box::new(tampered(|len| len - 1))),
        (
            "unsupported algorithm suite",
            Box::new(|b: &mut Batch| {
                let mut m = b.message(1, &payload(json!([pg("bad", "DDL", "DROP TABLE")])));
                m[2..4].copy_from_slice(&0x0014u16.to_be_bytes());
                b.message_record(1, &m);
            }),
        ),
        (
            "tampered signature (0x0378, Python SDK fixture)",
            Box::new(|b: &mut Batch| {
                let fixture: Value = serde_json::from_slice(
                    &std::fs::read(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/testdata/esdk/das-mysql-signed.json"
                    ))
                    .unwrap(),
                )
                .unwrap();
                let key: [u8; 32] = B64
                    .decode(fixture["wrapping_key"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap();
                let envelope: Value =
                    serde_json::from_str(fixture["envelope"].as_str().unwrap()).unwrap();
                let mut m = B64
                    .decode(envelope["databaseActivityEvents"].as_str().unwrap())
                    .unwrap();
                let last = m.len() - 1;
                m[last] ^= 0x01;
                b.kms.keys.insert(vec![0xB0, 7], key);
                b.message_record(7, &m);
            }),
        ),
        (
            "gzip bomb (40 MiB of zeros)",
            Box::new(|b: &mut Batch| {
                let m = b.message(1, &vec![0u8; 40 << 20]);
                b.message_record(1, &m);
            }),
        ),
        (
            "not gzip",
            Box::new(|b: &mut Batch| {
                b.raw_record(1, payload(json!([pg("bad", "DDL", "DROP TABLE")])), false);
            }),
        ),
        (
            "decrypted payload not UTF-8",
            Box::new(|b: &mut Batch| {
                let mut p = payload(json!([pg("bad", "DDL", "DROP TABLE")]));
                let at = p.windows(4).position(|w| w == b"DROP").unwrap();
                p[at] = 0xFF;
                b.raw_record(1, p, true);
            }),
        ),
        (
            "decrypted payload not JSON",
            Box::new(|b: &mut Batch| {
                b.raw_record(1, b"{not json".to_vec(), true);
            }),
        ),
        (
            "decrypted JSON of another type",
            Box::new(|b: &mut Batch| {
                b.raw_record(1, b"[{\"type\":\"record\"}]".to_vec(), true);
            }),
        ),
        (
            "event list a string",
            Box::new(|b: &mut Batch| {
                b.raw_record(1, payload(json!("SELECT secret")), true);
            }),
        ),
        (
            "event list with a number after a good event",
            Box::new(|b: &mut Batch| {
                b.raw_record(1, payload(json!([pg("bad", "DDL", "DROP TABLE"), 7])), true);
            }),
        ),
    ];
    let count = cases.len();
    assert!(count >= 15);
    for (name, add_bad) in cases {
        let mut b = Batch::new();
        b.record(1, ok_events().as_array().unwrap().clone());
        add_bad(&mut b);
        b.record(2, vec![pg("ok2", "WRITE", "INSERT")]);
        let p = Processor::new(config(&[]), b.kms, FakeS3::default());
        let (response, stats) = p
            .handle(b.event.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let results: Vec<RecordResult> = response.records.iter().map(|r| r.result).collect();
        assert_eq!(
            results,
            [
                RecordResult::Dropped,
                RecordResult::ProcessingFailed,
                RecordResult::Dropped
            ],
            "{name}"
        );
        assert_eq!(
            response.records[1].data, b.event.records[1].data,
            "{name}: data returned as received"
        );
        assert_eq!(
            landed(p.sink()),
            expect(&[("ok", "DDL"), ("ok2", "DML")]),
            "{name}"
        );
        assert_eq!(stats.failed, 1, "{name}");
    }
}

#[tokio::test]
async fn huge_records_and_duplicate_record_ids_are_processed_whole() {
    // A 20 MB record (decompressed) is under the 32 MiB limit: every event lands.
    let mut b = Batch::new();
    let big: Vec<Value> = (0..20_000)
        .map(|i| {
            let mut e = pg(&format!("h{i}"), "READ", "SELECT");
            e["commandText"] = json!(format!("select {i} /* {} */", "p".repeat(900)));
            e
        })
        .collect();
    b.record(1, big);
    // Firehose does not send one record id twice; if it did, each entry is answered in order.
    b.record(1, vec![pg("d1", "DDL", "CREATE TABLE")]);
    b.record(1, vec![pg("d2", "DDL", "ALTER TABLE")]);
    b.event.records[2].record_id = b.event.records[1].record_id.clone();
    let p = Processor::new(config(&[]), b.kms, FakeS3::default());
    let (response, stats) = p.handle(b.event).await.unwrap();
    assert!(
        stats.decompressed_bytes > 20_000_000,
        "{}",
        stats.decompressed_bytes
    );
    let ids: Vec<&str> = response
        .records
        .iter()
        .map(|r| r.record_id.as_str())
        .collect();
    assert_eq!(ids, ["record-000", "record-001", "record-001"]);
    assert!(
        response
            .records
            .iter()
            .all(|r| r.result == RecordResult::Dropped)
    );
    let landed = landed(p.sink());
    assert_eq!(landed.len(), 20_002);
    assert_eq!(landed["d2"], "DDL");
}

/// Random corruption of one record's bytes (the Firehose data, the envelope, or the message
/// inside it): never a panic, always one result per record with the same ids, and the other
/// records are untouched. A smoke of what issue 8's fuzzing explores with coverage guidance.
#[tokio::test]
async fn random_corruptions_never_panic_and_never_disturb_the_other_records() {
    let mut rng = encode::Rng(0xC0FF_EE00);
    for round in 0..400 {
        let mut b = Batch::new();
        b.record(1, vec![pg("a", "DDL", "CREATE TABLE"), heartbeat()]);
        b.record(
            2,
            vec![pg("b", "READ", "SELECT"), pg("c", "WRITE", "DELETE")],
        );
        b.record(1, vec![pg("d", "ROLE", "GRANT")]);
        let victim = rng.below(3) as usize;
        let data = B64.decode(&b.event.records[victim].data).unwrap();
        let mutated = match rng.below(3) {
            // The message inside the envelope.
            0 => {
                let mut envelope: Value = serde_json::from_slice(&data).unwrap();
                let mut m = B64
                    .decode(envelope["databaseActivityEvents"].as_str().unwrap())
                    .unwrap();
                mutate(&mut m, &mut rng);
                envelope["databaseActivityEvents"] = json!(B64.encode(&m));
                serde_json::to_vec(&envelope).unwrap()
            }
            // The envelope JSON itself.
            1 => {
                let mut d = data.clone();
                mutate(&mut d, &mut rng);
                d
            }
            // The Firehose data as text (base64 damage).
            _ => {
                let mut text = b.event.records[victim].data.clone().into_bytes();
                mutate(&mut text, &mut rng);
                b.event.records[victim].data = String::from_utf8_lossy(&text).into_owned();
                Vec::new()
            }
        };
        if !mutated.is_empty() {
            b.event.records[victim].data = B64.encode(&mutated);
        }
        let ids: Vec<String> = b
            .event
            .records
            .iter()
            .map(|r| r.record_id.clone())
            .collect();
        let p = Processor::new(config(&[]), b.kms, FakeS3::default());
        let (response, _) = p
            .handle(b.event)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let answered: Vec<String> = response
            .records
            .iter()
            .map(|r| r.record_id.clone())
            .collect();
        assert_eq!(answered, ids, "round {round}");
        for (i, r) in response.records.iter().enumerate() {
            if i != victim {
                assert_eq!(
                    r.result,
                    RecordResult::Dropped,
                    "round {round}: record {i} was disturbed"
                );
            }
        }
        let landed = landed(p.sink());
        for (i, id) in [(0, "a"), (1, "b"), (1, "c"), (2, "d")] {
            if i != victim {
                assert!(landed.contains_key(id), "round {round}: {id} lost");
            }
        }
    }
}

/// One random edit: flip a bit, overwrite, insert, delete or cut.
fn mutate(bytes: &mut Vec<u8>, rng: &mut encode::Rng) {
    if bytes.is_empty() {
        bytes.push(rng.below(256) as u8);
        return;
    }
    let at = rng.below(bytes.len() as u64) as usize;
    match rng.below(5) {
        0 => bytes[at] ^= 1 << rng.below(8),
        1 => bytes[at] = rng.below(256) as u8,
        2 => bytes.insert(at, rng.below(256) as u8),
        3 => {
            bytes.remove(at);
        }
        _ => bytes.truncate(at),
    }
}

#[tokio::test]
async fn each_invocation_appends_a_signed_digest_of_what_it_wrote_chained_to_the_last() {
    let mut b = Batch::new();
    b.record(
        1,
        vec![pg("a", "DDL", "CREATE TABLE"), pg("b", "READ", "SELECT")],
    );
    let first = b.event.clone();
    let mut b2 = Batch::new();
    b2.record(1, vec![pg("c", "WRITE", "INSERT")]);
    b2.event.records[0].record_id = "another-batch".into();
    let p = Processor::new(
        config(&[(
            "DAS_DIGEST_KEY",
            "arn:aws:kms:us-east-1:123456789012:key/digests",
        )]),
        b.kms,
        FakeS3::default(),
    );
    p.handle(first).await.unwrap();
    p.handle(b2.event.clone()).await.unwrap();

    let digests = p.sink().digests();
    assert_eq!(digests.len(), 2);
    let (k1, d1) = &digests[0];
    let manifests = p.sink().manifests();
    let (manifest_key, manifest) = manifests
        .iter()
        .find(|(_, m)| m["batch"] == d1.digest.batch.as_str())
        .unwrap();
    let (k2, d2) = &digests[1];
    assert_eq!(k1, &digest::key("parsed/", 1));
    assert_eq!(k2, &digest::key("parsed/", 2));
    // The first digest lists what its manifest lists: every event object, with its hash.
    let listed: Vec<Value> = d1
        .digest
        .objects
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(Value::Array(listed), manifest["objects"], "{manifest_key}");
    let objects = p.sink().objects.snapshot();
    for entry in &d1.digest.objects {
        assert_eq!(digest::hex_sha256(&objects[&entry.key]), entry.sha256);
        assert_eq!(objects[&entry.key].len(), entry.bytes);
    }
    assert_eq!(d1.digest.objects.len(), 2);
    // Chained to the first digest's bytes; signed over its key and digest bytes.
    let link = d2.digest.previous.clone().unwrap();
    assert_eq!((link.sequence, &link.key), (1, k1));
    assert_eq!(link.sha256, digest::hex_sha256(&objects[k1]));
    use p384::ecdsa::signature::Verifier as _;
    for (key, d) in &digests {
        let sig = d.signature.clone().unwrap();
        let der = B64.decode(&sig.value).unwrap();
        let sig = p384::ecdsa::Signature::from_der(&der).unwrap();
        let message = digest::signing_message(key, &d.digest_json);
        signing_key()
            .verifying_key()
            .verify(&message, &sig)
            .unwrap();
        // Not over anything else.
        assert!(
            signing_key()
                .verifying_key()
                .verify(&digest::signing_message(k2, b"{}"), &sig)
                .is_err()
        );
    }
}

#[tokio::test]
async fn a_digest_that_cannot_be_written_fails_the_invocation() {
    let mut b = Batch::new();
    b.record(1, vec![pg("a", "DDL", "CREATE TABLE")]);
    let s3 = FakeS3::default();
    *s3.refused.lock().unwrap() = Some(digest::FOLDER);
    let p = Processor::new(config(&[]), b.kms, s3);
    // The head's listing of `_digests/` refused (as S3 refuses a role without s3:ListBucket).
    let err = p.handle(b.event.clone()).await.unwrap_err();
    assert!(matches!(err, InvocationError::Digest(_)), "{err}");
    assert!(err.to_string().contains("_digests/"), "{err}");
}

#[tokio::test]
async fn a_replay_stores_only_its_categories_under_replay_names_and_converges() {
    use das_processor::firehose::Replay;
    let mut b = Batch::new();
    b.record(
        1,
        vec![
            pg("ddl", "DDL", "CREATE TABLE"),
            pg("read", "READ", "SELECT"),
            heartbeat(),
        ],
    );
    // A function in events mode: a replay has no Firehose to hand events to, so it stores them.
    let p = Processor::new(
        config(&[("DAS_FIREHOSE_OUTPUT", "events")]),
        b.kms,
        FakeS3::default(),
    );
    let mut event = b.event.clone();
    event.replay = Some(Replay {
        categories: vec!["dql".into()],
    });
    let (response, stats) = p.handle(event.clone()).await.unwrap();
    assert_eq!(response.records[0].result, RecordResult::Dropped);
    assert_eq!(
        response.replay.map(|r| r.categories),
        Some(vec!["DQL".to_owned()])
    );
    assert_eq!(landed(p.sink()), expect(&[("read", "DQL")]));
    assert_eq!((stats.kept, stats.filtered), (1, 1), "DDL is not asked for");
    let events = p.sink().event_keys();
    assert_eq!(events.len(), 1);
    let name = events[0].rsplit('/').next().unwrap();
    assert!(name.starts_with("replay-"), "{name}");
    // The same records again: the same object, the same bytes.
    let before = p.sink().objects.snapshot().get(&events[0]).cloned();
    p.handle(event.clone()).await.unwrap();
    assert_eq!(p.sink().event_keys(), events);
    assert_eq!(p.sink().objects.snapshot().get(&events[0]).cloned(), before);

    // No categories: whatever the filter keeps; a probe without records says which.
    event.replay = Some(Replay::default());
    p.handle(event.clone()).await.unwrap();
    let probe = FirehoseEvent {
        records: Vec::new(),
        ..event.clone()
    };
    let (answer, _) = p.handle(probe).await.unwrap();
    assert_eq!(answer.replay.unwrap().categories.len(), 10);
    let (live, _) = p.handle(b.event.clone()).await.unwrap();
    assert_eq!(
        live.replay, None,
        "a live invocation's answer is Firehose's shape only"
    );
    assert_eq!(p.sink().event_keys().len(), 2, "DDL and DQL");

    event.replay = Some(Replay {
        categories: vec!["SELECTS".into()],
    });
    let e = p.handle(event).await.unwrap_err();
    assert!(
        matches!(&e, InvocationError::ReplayCategory(name) if name == "SELECTS"),
        "{e}"
    );
}

/// SNS and EventBridge in memory: what each accepted, and refusals switched on by the test.
#[derive(Default)]
struct FakeAlerts {
    got: Mutex<Vec<(Destination, Notice)>>,
    refuse: Mutex<Option<Destination>>,
}

/// The sink the processor owns, sharing the fake with the test.
struct Shared(std::sync::Arc<FakeAlerts>);

impl AlertSink for Shared {
    fn send<'a>(
        &'a self,
        destination: Destination,
        notices: &'a [&'a Notice],
    ) -> futures_util::future::BoxFuture<'a, Vec<Result<(), String>>> {
        Box::pin(async move {
            let this = &self.0;
            if *this.refuse.lock().unwrap() == Some(destination) {
                return notices
                    .iter()
                    .map(|_| Err("InternalError".to_owned()))
                    .collect();
            }
            let mut got = this.got.lock().unwrap();
            got.extend(notices.iter().map(|n| (destination, (*n).clone())));
            notices.iter().map(|_| Ok(())).collect()
        })
    }
}

fn alerting(sink: &std::sync::Arc<FakeAlerts>) -> Alerting {
    let file: RuleFile = toml::from_str(das_processor::alert::DEFAULT_RULES).unwrap();
    let rules = Rules::compile(&file)
        .unwrap()
        .with_master_user(Some("postgres".into()));
    Alerting::new(
        rules,
        vec![Destination::Topic, Destination::EventBus],
        Box::new(Shared(sink.clone())),
    )
}

#[tokio::test]
async fn alerts_are_published_once_stored_and_a_retry_sends_only_what_failed() {
    let mut b = Batch::new();
    let drop = ev(
        "d1",
        json!({"serverType": "PostgreSQL", "class": "DDL", "command": "DROP TABLE",
            "commandText": "DROP TABLE orders", "objectName": "orders", "databaseName": "shop",
            "remoteHost": "10.0.0.9", "dbUserName": "mallory"}),
    );
    let grant = ev(
        "g1",
        json!({"serverType": "PostgreSQL", "class": "ROLE", "command": "GRANT",
            "commandText": "GRANT ALL ON orders TO mallory", "dbUserName": "mallory"}),
    );
    b.record(1, vec![pg("s1", "READ", "SELECT"), drop, heartbeat()])
        .record(1, vec![grant, pg("s2", "READ", "SELECT")]);
    let sink = std::sync::Arc::new(FakeAlerts::default());
    // DQL is filtered out: alerts still see every activity event.
    let p = Processor::new(
        config(&[("DAS_EXCLUDE_CATEGORIES", "DQL")]),
        b.kms,
        FakeS3::default(),
    )
    .with_alerts(alerting(&sink));

    *sink.refuse.lock().unwrap() = Some(Destination::EventBus);
    let err = p.handle(b.event.clone()).await.unwrap_err();
    assert!(matches!(err, InvocationError::Publish(_)), "{err}");
    assert!(err.to_string().contains("eventbridge"), "{err}");
    // The events were stored first; SNS took both alerts.
    assert_eq!(landed(p.sink()), expect(&[("d1", "DDL"), ("g1", "DCL")]));
    let first: Vec<Notice> = sink
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(first.len(), 2);

    *sink.refuse.lock().unwrap() = None;
    let (_, stats) = p.handle(b.event.clone()).await.unwrap();
    assert_eq!((stats.alerts, stats.alerts_sent), (2, 2));
    let got = sink.got.lock().unwrap().clone();
    let per = |d: Destination| got.iter().filter(|(dest, _)| *dest == d).count();
    assert_eq!(
        (per(Destination::Topic), per(Destination::EventBus)),
        (2, 2)
    );
    // The retry published the same alerts (same ids) to EventBridge only.
    let ids = |d: Destination| {
        let mut v: Vec<String> = got
            .iter()
            .filter(|(dest, _)| *dest == d)
            .map(|(_, n)| n.alert_id.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(Destination::Topic), ids(Destination::EventBus));

    let by_rule = |rule: &str| got.iter().find(|(_, n)| n.rule == rule).unwrap().1.clone();
    let dropped = by_rule("table-dropped-or-truncated");
    assert_eq!(dropped.severity, "high");
    assert_eq!(dropped.category, "DDL");
    assert_eq!(dropped.user.as_deref(), Some("mallory"));
    assert_eq!(dropped.database.as_deref(), Some("shop"));
    assert_eq!(dropped.object.as_deref(), Some("orders"));
    assert_eq!(dropped.client.as_deref(), Some("10.0.0.9"));
    assert_eq!(dropped.statement.as_deref(), Some("DROP TABLE orders"));
    assert_eq!(dropped.cluster.as_deref(), Some(RESOURCE));
    assert_eq!(dropped.event_time, "2025-11-24T16:05:00.123Z");
    let key = dropped.s3_key.clone().unwrap();
    assert!(
        p.sink().event_keys().contains(&key),
        "{key} is the stored object"
    );
    assert_eq!(dropped.bucket.as_deref(), Some("audit-bucket"));
    assert_eq!(by_rule("privilege-or-user-change").category, "DCL");

    // A third delivery of the same batch sends nothing new.
    let (_, stats) = p.handle(b.event).await.unwrap();
    assert_eq!((stats.alerts, stats.alerts_sent), (2, 0));
}

#[tokio::test]
async fn replays_raise_no_alerts_and_failed_logins_need_a_burst() {
    let mut b = Batch::new();
    let failed = |id: &str, second: u32| {
        ev(
            id,
            json!({"serverType": "PostgreSQL", "class": "ERROR", "command": "AUTH FAILURE",
                "dbUserName": "admin", "remoteHost": "203.0.113.7",
                "logTime": format!("2025-11-24 16:05:{second:02}.000000+00")}),
        )
    };
    b.record(1, (0..4).map(|i| failed(&format!("f{i}"), i)).collect());
    let sink = std::sync::Arc::new(FakeAlerts::default());
    let p = Processor::new(config(&[]), b.kms, FakeS3::default()).with_alerts(alerting(&sink));
    let (_, stats) = p.handle(b.event.clone()).await.unwrap();
    assert_eq!(stats.alerts, 0, "four failed logins are not a burst");

    // A replay carrying a fifth failure raises nothing: its events had their alerts when
    // they first arrived.
    let mut fifth = Batch::new();
    fifth.record(1, vec![failed("f4", 10)]);
    let mut replay = fifth.event.clone();
    for r in &mut replay.records {
        r.record_id = format!("replay-{}", r.record_id);
    }
    replay.replay = Some(Default::default());
    let (_, stats) = p.handle(replay).await.unwrap();
    assert_eq!(stats.alerts, 0);
    // Live, the fifth failure within the minute is a burst.
    let mut next = fifth.event.clone();
    for r in &mut next.records {
        r.record_id = format!("next-{}", r.record_id);
    }
    let (_, stats) = p.handle(next).await.unwrap();
    // Per user and per host: both rules reach 5 on the fifth failure.
    assert_eq!(stats.alerts, 2);
    let got = sink.got.lock().unwrap();
    assert!(got.iter().all(|(_, n)| n.count == 5), "{got:?}");
}
