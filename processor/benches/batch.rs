//! A full Firehose batch through the handler, against the decode floor of the same bytes,
//! measured in the same run, on one thread.
//!
//!   cargo bench -p das-processor --bench batch           # full run, prints the table
//!   cargo test  -p das-processor --bench batch           # quick smoke: a small batch, checked
//!   cargo bench -p das-processor --bench batch -- --write-event FILE --data-key HEX \
//!       --key-blob BASE64 --resource-id cluster-...      # write the 6 MB event for a real KMS key
//!
//! Input: a 6 MB Firehose event (the Lambda request limit) of DAS records of 50 realistic Aurora
//! PostgreSQL events each (about 1 KB per event), gzip'd and encrypted as DAS does.
//! - floor:   what any processor must do per record: base64 of the Firehose data, the envelope,
//!   base64 of the message, Encryption SDK decrypt, gunzip (data key already known)
//! - handler: Processor::handle with KMS and S3 in memory (no network): the floor plus
//!   classification, filtering (default: rdsadmin dropped), routing and gzip of the output
//! - handler with the built-in alert rules (`--alerts default`): the rules on every event, and
//!   every alert's messages built (SNS and EventBridge) and handed to a sink that keeps nothing.
//!   The master user is `postgres`, who is not in the batch (a master user kept for emergencies)
//! - the same with `alice` as the master user: a storm. She makes a quarter of the events, each
//!   from another client host, so the per-host hour window never holds one back and about one
//!   event in four raises an alert: the cost of an alert, not of a realistic batch
//!
//! KMS and S3 over the network are measured separately, against moto, by
//! `scripts/bench-processor` (BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/encode.rs"]
#[allow(dead_code)]
mod encode;
#[path = "support/events.rs"]
mod events;

use std::io::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use das_processor::alert::{RuleFile, Rules};
use das_processor::classify::Engine;
use das_processor::config::Config;
use das_processor::digest::{DigestSigner, InMemory, Signature};
use das_processor::envelope::Envelope;
use das_processor::esdk::{self, RawAesKeyring};
use das_processor::firehose::{FirehoseEvent, FirehoseRecord, RecordResult};
use das_processor::handler::{Alerting, Processor};
use das_processor::inflate;
use das_processor::keys::{DataKey, EncryptionContext, KeyError, KeySource};
use das_processor::notify::{AlertSink, Destination, Notice};
use das_processor::redact;
use encode::Rng;
use zeroize::Zeroizing;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const EVENTS_PER_RECORD: usize = 50;

struct MemKms([u8; 32]);

impl KeySource for MemKms {
    async fn decrypt(&self, _: &[u8], _: &EncryptionContext) -> Result<DataKey, KeyError> {
        Ok(Zeroizing::new(self.0))
    }
}

impl DigestSigner for MemKms {
    async fn sign(&self, _: &[u8]) -> Result<Signature, String> {
        Err("the benchmark's deployment has no signing key".into())
    }
}

/// SNS and EventBridge that accept everything: the messages are built, as for AWS, then dropped.
struct Discard;

impl AlertSink for Discard {
    fn send<'a>(
        &'a self,
        _: Destination,
        notices: &'a [&'a Notice],
    ) -> futures_util::future::BoxFuture<'a, Vec<Result<(), String>>> {
        Box::pin(async move {
            notices
                .iter()
                .map(|n| {
                    std::hint::black_box((n.sns_message(), n.subject(), n.to_json()));
                    Ok(())
                })
                .collect()
        })
    }
}

fn default_alerts(master_user: &str) -> Alerting {
    let file: RuleFile = toml::from_str(das_processor::alert::DEFAULT_RULES).unwrap();
    let rules = Rules::compile(&file)
        .unwrap()
        .with_master_user(Some(master_user.into()));
    Alerting::new(
        rules,
        vec![Destination::Topic, Destination::EventBus],
        Box::new(Discard),
    )
}

struct Batch {
    event: FirehoseEvent,
    events: usize,
    json_bytes: usize,
    request_bytes: usize,
}

/// Records until the event's JSON reaches `target` bytes.
fn build(target: usize, key: &[u8; 32], blob: &[u8], resource: &str, rng: &mut Rng) -> Batch {
    let mut event = FirehoseEvent {
        invocation_id: "bench".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/bench".into(),
        source_kinesis_stream_arn: Some(format!(
            "arn:aws:kinesis:us-east-1:123456789012:stream/aws-rds-das-{resource}"
        )),
        region: "us-east-1".into(),
        records: Vec::new(),
        replay: None,
    };
    let (mut size, mut events, mut json_bytes) = (200, 0, 0);
    loop {
        let list: Vec<_> = (0..EVENTS_PER_RECORD)
            .map(|i| events::pg_event(rng, i))
            .collect();
        let json = serde_json::to_vec(&serde_json::json!({
            "type": "DatabaseActivityMonitoringRecord", "clusterId": resource,
            "instanceId": "db-BENCH", "databaseActivityEventList": list,
        }))
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json).unwrap();
        let message = encode::encrypt(&gz.finish().unwrap(), key, 4096, rng).message;
        let envelope = serde_json::to_vec(&serde_json::json!({
            "type": "DatabaseActivityMonitoringRecords", "version": "1.1",
            "databaseActivityEvents": B64.encode(&message), "key": B64.encode(blob),
        }))
        .unwrap();
        let data = B64.encode(&envelope);
        let n = event.records.len();
        let record_size = data.len() + 200;
        if size + record_size > target {
            break;
        }
        size += record_size;
        events += EVENTS_PER_RECORD;
        json_bytes += json.len();
        event.records.push(FirehoseRecord {
            record_id: format!("{:056}", 4954698668313554428u64 + n as u64),
            approximate_arrival_timestamp: Some(1_795_000_000_000.0 + n as f64),
            data,
        });
    }
    let request_bytes = serde_json::to_vec(&event).unwrap().len();
    Batch {
        event,
        events,
        json_bytes,
        request_bytes,
    }
}

fn floor(event: &FirehoseEvent, key: &[u8; 32], bufs: &mut [Vec<u8>; 3]) -> usize {
    event
        .records
        .iter()
        .map(|r| decode(r, key, bufs).len())
        .sum()
}

/// What any processor must do for one record; its decrypted JSON.
fn decode<'b>(r: &FirehoseRecord, key: &[u8; 32], bufs: &'b mut [Vec<u8>; 3]) -> &'b [u8] {
    let [data, plain, json] = bufs;
    data.clear();
    plain.clear();
    json.clear();
    B64.decode_vec(r.data.as_bytes(), data).unwrap();
    let envelope = Envelope::parse(data).unwrap();
    let mut message = Vec::new();
    envelope.decode_message(&mut message).unwrap();
    esdk::decrypt(&message, &RawAesKeyring::das(key), plain).unwrap();
    inflate::gunzip(plain, inflate::DEFAULT_MAX_DECOMPRESSED, json).unwrap();
    json
}

fn config(level: &str, redact: &str) -> Config {
    let vars = [
        ("DAS_OUTPUT_BUCKET", "bench-bucket"),
        ("DAS_GZIP_LEVEL", level),
        ("DAS_REDACT", redact),
    ];
    Config::from_env(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut rng = Rng(0xBA7C_4000);
    if let Some(path) = arg(&args, "--write-event") {
        let hex = arg(&args, "--data-key").expect("--data-key HEX");
        let key: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let blob = B64
            .decode(arg(&args, "--key-blob").expect("--key-blob BASE64"))
            .unwrap();
        let resource = arg(&args, "--resource-id").expect("--resource-id");
        let batch = build(
            6_000_000,
            &key.try_into().unwrap(),
            &blob,
            &resource,
            &mut rng,
        );
        std::fs::write(&path, serde_json::to_vec(&batch.event).unwrap()).unwrap();
        println!(
            "wrote {path}: {} records, {} events, request {} bytes, decrypted JSON {} bytes",
            batch.event.records.len(),
            batch.events,
            batch.request_bytes,
            batch.json_bytes
        );
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let target = if full { 6_000_000 } else { 300_000 };
    let rounds = if full { 15 } else { 1 };
    let key = [7u8; 32];
    let batch = build(target, &key, &[1, 2, 3], "cluster-BENCH", &mut rng);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Level 1, level 6 (the default), level 6 with --redact literals, the default with the
    // built-in alert rules, and with an alert storm.
    let mut processors: Vec<Processor<MemKms, InMemory>> =
        [("1", "passwords"), ("6", "passwords"), ("6", "literals")]
            .iter()
            .map(|(level, redact)| {
                Processor::new(config(level, redact), MemKms(key), InMemory::default())
            })
            .collect();
    // (Made again before each of their runs, below.)
    for master_user in ["postgres", "alice"] {
        processors.push(
            Processor::new(config("6", "passwords"), MemKms(key), InMemory::default())
                .with_alerts(default_alerts(master_user)),
        );
    }

    // Correctness first: every record answered, every non-admin event kept.
    let (response, stats) = runtime
        .block_on(processors[1].handle(batch.event.clone()))
        .unwrap();
    assert_eq!(response.records.len(), batch.event.records.len());
    assert!(
        response
            .records
            .iter()
            .all(|r| r.result == RecordResult::Dropped)
    );
    assert_eq!(stats.kept + stats.filtered, batch.events);
    let mut bufs: [Vec<u8>; 3] = Default::default();
    assert_eq!(floor(&batch.event, &key, &mut bufs), batch.json_bytes);

    // The statements of the batch, to time the secret masking on its own.
    let statements = statements(&batch.event, &key, &mut bufs);
    let mut times: [Vec<Duration>; 7] = Default::default();
    let mut s3_bytes = [0usize; 5];
    // (raised, published) by the alert variants.
    let mut alerts = [(0, 0); 2];
    for round in 0..rounds {
        for k in 0..7 {
            let variant = (round + k) % 7;
            let event = batch.event.clone();
            if variant >= 5 {
                // A processor that has seen nothing: every round's batch is new to the rules
                // (the same events again would be a retry, answered from memory, or held back
                // by de-duplication windows).
                processors[variant - 2] =
                    Processor::new(config("6", "passwords"), MemKms(key), InMemory::default())
                        .with_alerts(default_alerts(["postgres", "alice"][variant - 5]));
            }
            let t = Instant::now();
            if variant == 3 {
                std::hint::black_box(floor(&event, &key, &mut bufs));
            } else if variant == 4 {
                for (text, engine) in &statements {
                    std::hint::black_box(redact::redact(text, *engine, redact::Mode::Passwords));
                }
            } else if variant >= 5 {
                let (_, st) = runtime
                    .block_on(processors[variant - 2].handle(event))
                    .unwrap();
                s3_bytes[variant - 2] = st.s3_bytes;
                alerts[variant - 5] = (st.alerts, st.alerts_sent / 2);
                // Every alert published to both destinations; past 500, a storm's summaries.
                assert_eq!(st.alerts_sent % 2, 0);
                assert!(
                    st.alerts_sent / 2 <= st.alerts.min(das_processor::notify::MAX_NOTICES) + 6
                );
            } else {
                let (_, st) = runtime.block_on(processors[variant].handle(event)).unwrap();
                s3_bytes[variant] = st.s3_bytes;
            }
            times[variant].push(t.elapsed());
        }
    }
    let [l1, l6, lit, fl, masking, with_alerts, storm] = times.map(median);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "batch: {} records, {} events, request {:.2} MB, decrypted JSON {:.1} MB, kept {} (rdsadmin filtered {})",
        batch.event.records.len(),
        batch.events,
        batch.request_bytes as f64 / 1e6,
        batch.json_bytes as f64 / 1e6,
        stats.kept,
        stats.filtered
    );
    println!(
        "{:<22} {:>9} {:>12} {:>10} {:>11}",
        "variant", "ms", "events/s", "vs floor", "S3 KiB"
    );
    println!(
        "{:<22} {:>9.1} {:>12.0} {:>10} {:>11}",
        "floor (decode only)",
        ms(fl),
        batch.events as f64 / fl.as_secs_f64(),
        "1.00",
        "-"
    );
    for (name, d, bytes) in [
        ("handler, gzip level 1", l1, s3_bytes[0]),
        ("handler, gzip level 6", l6, s3_bytes[1]),
        ("handler, redact literals", lit, s3_bytes[2]),
        ("handler, default alerts", with_alerts, s3_bytes[3]),
        ("handler, alert storm", storm, s3_bytes[4]),
    ] {
        println!(
            "{:<22} {:>9.1} {:>12.0} {:>10.2} {:>11}",
            name,
            ms(d),
            batch.events as f64 / d.as_secs_f64(),
            d.as_secs_f64() / fl.as_secs_f64(),
            bytes / 1024
        );
    }
    println!(
        "secret masking alone (in every handler run): {:.1} ms for {} statements, {:.1}% of the default handler",
        ms(masking),
        statements.len(),
        100.0 * masking.as_secs_f64() / l6.as_secs_f64()
    );
    println!(
        "--redact literals vs default: {:.2}x",
        lit.as_secs_f64() / l6.as_secs_f64()
    );
    println!(
        "default alert rules vs default: {:.3}x ({} alerts a batch; {:+.1} ms for the rules on {} events)",
        with_alerts.as_secs_f64() / l6.as_secs_f64(),
        alerts[0].0,
        (with_alerts.as_secs_f64() - l6.as_secs_f64()) * 1e3,
        batch.events
    );
    println!(
        "alert storm vs default: {:.3}x ({} alerts raised, {} published (the rest summarized), each to SNS and EventBridge; {:.1} us an alert raised)",
        storm.as_secs_f64() / l6.as_secs_f64(),
        alerts[1].0,
        alerts[1].1,
        (storm.as_secs_f64() - l6.as_secs_f64()) * 1e6 / alerts[1].0.max(1) as f64
    );
}

/// Every event's statement and engine, decoded from the batch.
fn statements(
    event: &FirehoseEvent,
    key: &[u8; 32],
    bufs: &mut [Vec<u8>; 3],
) -> Vec<(String, Engine)> {
    let mut out = Vec::new();
    for r in &event.records {
        let record: serde_json::Value = serde_json::from_slice(decode(r, key, bufs)).unwrap();
        for e in record["databaseActivityEventList"].as_array().unwrap() {
            let engine = Engine::from_server_type(e["serverType"].as_str());
            out.push((e["commandText"].as_str().unwrap_or("").to_owned(), engine));
        }
    }
    out
}
