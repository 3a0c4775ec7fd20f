//! One Firehose batch in, one result per record out. Orchestration only: every stage it calls is
//! its own module.
//!
//! 1. Decode every record (base64, envelope, message and key blob). A bad record is
//!    `ProcessingFailed`; the batch goes on.
//! 2. Fetch each distinct data key once: from the cache, else KMS, concurrently. KMS refusing a
//!    key fails the records that need it; KMS being unavailable fails the invocation (Firehose
//!    retries it).
//! 3. Per record: decrypt, gunzip, parse, classify, filter, route. A record is validated whole
//!    before any of its events is routed, so a failed record never leaves part of itself in S3.
//! 4. Write one gzip'd NDJSON object per (category, hour), then (in the default `s3` output mode)
//!    the invocation's manifest of what it wrote (`manifest`) and its integrity digest (`digest`),
//!    and only then answer: a failed write fails the invocation, and the retry overwrites the
//!    same object names (and appends another digest of them).
//!
//! Memory stays bounded by the batch: one record's plaintext at a time, and compressed output.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::alert::{self, Alert, Rules, Subject, Tracker};
use crate::classify::{Category, Engine, classify};
use crate::config::{Config, FirehoseOutput};
use crate::digest::{Chain, DigestError, DigestSigner, DigestStore};
use crate::envelope::{Envelope, EnvelopeError};
use crate::esdk::{self, RawAesKeyring};
use crate::event::{
    ActivityError, EventFields, Masking, RecordView, ids_suffix, redacted, write_line,
    write_line_masked,
};
use crate::firehose::{
    FirehoseEvent, FirehoseResponse, RESPONSE_RECORD_OVERHEAD, RecordResult, Replay, ReplayAnswer,
    ResponseRecord,
};
use crate::inflate::{self, InflateError};
use crate::keys::{
    DataKey, DataKeyCache, EncryptionContext, KeyError, KeySource, resource_id_from_stream_arn,
};
use crate::manifest::{self, Manifest};
use crate::notify::{self, AlertSink, Delivered, Destination, Notice, Origin, PublishError};
use crate::redact::{self, Redacted};
use crate::route::{GroupKey, UtcHour, batch_name, object_key};
use crate::sink::{ObjectSink, SinkError};

/// Lambda's synchronous response limit is 6 MB (6,291,456 bytes); keep a margin for the JSON
/// around the records.
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024 - 64 * 1024;
/// KMS calls and S3 writes in flight at once.
const CONCURRENCY: usize = 8;

/// Why one record could not be processed (it is answered `ProcessingFailed`).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(
        "no DAS resource id: the source stream {0:?} is not named aws-rds-das-<resource id> and DAS_RESOURCE_ID is not set"
    )]
    NoResourceId(String),
    #[error("Firehose record data is not base64: {0}")]
    Data(#[source] base64::DecodeError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("decrypting the Encryption SDK message: {0}")]
    Decrypt(#[source] esdk::Error),
    #[error("decompressing the decrypted payload: {0}")]
    Inflate(#[source] InflateError),
    #[error(transparent)]
    Parse(#[from] ActivityError),
}

/// Why the whole invocation failed (Firehose retries it).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error(transparent)]
    Kms(KeyError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("compressing output: {0}")]
    Compress(#[source] std::io::Error),
    #[error("appending the integrity digest: {0}")]
    Digest(#[from] DigestError),
    #[error(
        "replay: unknown category {0:?} (known: DDL DML DQL DCL TCL CONNECT DISCONNECT AUTH_FAILURE ERROR OTHER)"
    )]
    ReplayCategory(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Counts and timings of one invocation (logged; printed by `--event` mode). No content.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub records: usize,
    pub ok: usize,
    pub dropped: usize,
    pub failed: usize,
    /// Activity events (not heartbeats) in the records that could be opened.
    pub events: usize,
    pub heartbeats: usize,
    pub kept: usize,
    pub filtered: usize,
    /// Kept events whose `logTime` was missing or unreadable: routed by arrival time.
    pub undated: usize,
    /// Records answered `Dropped` after their events went to S3 because the response was full.
    pub spilled: usize,
    /// Alerts the rules raised (a retried batch raises its alerts again).
    pub alerts: usize,
    /// Alert messages published (over every destination; none already delivered).
    pub alerts_sent: usize,
    pub distinct_keys: usize,
    pub kms_calls: usize,
    pub s3_puts: usize,
    pub s3_bytes: usize,
    pub decrypted_bytes: usize,
    pub decompressed_bytes: usize,
    pub decode_ms: f64,
    pub kms_ms: f64,
    pub s3_ms: f64,
    pub total_ms: f64,
}

/// The processor: configuration, the KMS key source, the data-key cache and the sink, built once
/// per process and shared by every invocation.
pub struct Processor<K, S> {
    config: Config,
    keys: K,
    sink: S,
    cache: DataKeyCache,
    /// The deployment's digest chain (`digest`): its head, remembered between invocations.
    chain: Chain,
    /// Unix time in milliseconds; only the manifest's write time reads it (events are filed by
    /// their own time). Tests set it.
    clock: fn() -> i64,
    /// Alert rules and where their alerts go (`notify`), when the deployment has rules.
    alerting: Option<Alerting>,
}

/// Alert rules, what they remember in this environment, and where their alerts go.
pub struct Alerting {
    rules: Rules,
    tracker: Mutex<Tracker>,
    destinations: Vec<Destination>,
    sink: Box<dyn AlertSink>,
    delivered: Mutex<Delivered>,
}

impl Alerting {
    /// `destinations`: where every alert is published through `sink` (none: only counted).
    pub fn new(rules: Rules, destinations: Vec<Destination>, sink: Box<dyn AlertSink>) -> Self {
        Self {
            rules,
            tracker: Mutex::default(),
            destinations,
            sink,
            delivered: Mutex::default(),
        }
    }

    fn description(&self, rule: &str) -> Option<&str> {
        self.rules
            .rules()
            .iter()
            .find(|r| r.name == rule)
            .and_then(|r| r.description.as_deref())
    }
}

/// An alert raised by one event of the record being opened.
struct Raised {
    alert: Alert,
    /// The event's place in its record (the alert's identity).
    index: usize,
    /// Where the event is stored, when the filter keeps it.
    group: Option<GroupKey>,
}

/// A Kinesis record as a reader of the stream gets it: the DAS envelope JSON (not base64).
#[derive(Debug, Clone, Copy)]
pub struct KinesisRecord<'a> {
    pub data: &'a [u8],
    /// Kinesis's `ApproximateArrivalTimestamp`: the hour of events without a `logTime`.
    pub arrival_millis: Option<i64>,
}

/// One output object being built: its compressed lines and how many events they are.
struct Group {
    encoder: GzEncoder<Vec<u8>>,
    events: usize,
}

/// A record after stage 1.
struct Decoded {
    message: Vec<u8>,
    key_blob: Vec<u8>,
}

/// Buffers reused from record to record.
#[derive(Default)]
struct Work {
    plaintext: Vec<u8>,
    json: Vec<u8>,
    lines: Vec<u8>,
    /// (group, end offset in `lines`) per kept event.
    line_groups: Vec<(GroupKey, usize)>,
    heartbeats: usize,
    filtered: usize,
    undated: usize,
    /// A replay's categories (bit set): events of others are counted as filtered.
    only: Option<u16>,
    /// The alerts of the record being opened, and its database's ids.
    raised: Vec<Raised>,
    cluster: Option<String>,
    instance: Option<String>,
}

impl<K: KeySource, S: ObjectSink> Processor<K, S> {
    pub fn new(config: Config, keys: K, sink: S) -> Self {
        let cache = DataKeyCache::new(config.key_cache_size, config.key_cache_ttl);
        let chain = Chain::new(&config.prefix, config.digest_key.is_some());
        Self {
            chain,
            config,
            keys,
            sink,
            cache,
            clock: now_millis,
            alerting: None,
        }
    }

    /// The same processor, evaluating alert rules on every activity event of live invocations
    /// (not replays: their events had their alerts when they first arrived).
    #[must_use]
    pub fn with_alerts(self, alerting: Alerting) -> Self {
        Self {
            alerting: Some(alerting),
            ..self
        }
    }

    /// The same processor reading the time from `clock` (Unix milliseconds).
    #[must_use]
    pub fn with_clock(self, clock: fn() -> i64) -> Self {
        Self { clock, ..self }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }
}

impl<K: KeySource + DigestSigner, S: ObjectSink + DigestStore> Processor<K, S> {
    /// Processes one invocation.
    pub async fn handle(
        &self,
        event: FirehoseEvent,
    ) -> Result<(FirehoseResponse, Stats), InvocationError> {
        let started = Instant::now();
        let mut stats = Stats {
            records: event.records.len(),
            ..Stats::default()
        };
        let context = self.context(&event);
        let mut work = Work::default();
        // A replay's events always go to the per-category folders: it has no Firehose to hand
        // them to.
        let output = match &event.replay {
            Some(replay) => {
                work.only = Some(replay_categories(replay)?);
                FirehoseOutput::S3
            }
            None => self.config.firehose_output,
        };

        // 1. Decode.
        let t = Instant::now();
        let decoded: Vec<Result<Decoded, RecordError>> = event
            .records
            .iter()
            .map(|record| decode(&record.data))
            .collect();
        let mut decode_time = t.elapsed();

        // 2. Data keys.
        let t = Instant::now();
        let keys = match &context {
            Ok(context) => self.data_keys(context, &decoded, &mut stats).await?,
            Err(_) => HashMap::new(),
        };
        stats.kms_ms = ms(t.elapsed());

        // 3. Records.
        let t = Instant::now();
        let earliest = event
            .records
            .iter()
            .filter_map(|r| r.approximate_arrival_timestamp)
            .map(|ms| ms as i64)
            .min();
        let mut batch = batch_name(event.records.iter().map(|r| r.record_id.as_str()), earliest);
        if event.replay.is_some() {
            // Objects a replay wrote are told apart from the live pipeline's by name.
            batch.insert_str(0, "replay-");
        }
        let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
        // Response bytes if every record not yet answered failed (data returned as received).
        let mut reserved: usize = 16
            + event
                .records
                .iter()
                .map(|r| RESPONSE_RECORD_OVERHEAD + r.record_id.len() + r.data.len())
                .sum::<usize>();
        let mut responses = Vec::with_capacity(event.records.len());
        let mut notices: Vec<Notice> = Vec::new();
        for (record, decoded) in event.records.into_iter().zip(decoded) {
            let arrival = record
                .approximate_arrival_timestamp
                .map(|ms| ms as i64)
                .or(earliest)
                .unwrap_or(0);
            let opened = match (&context, decoded) {
                (Err(e), _) => Err(RecordError::NoResourceId(e.clone())),
                (_, Err(e)) => Err(e),
                (Ok(_), Ok(d)) => match keys.get(&d.key_blob) {
                    Some(Ok(key)) => self.open(
                        &d.message,
                        key,
                        UtcHour::from_epoch_millis(arrival),
                        &mut work,
                        Some(&record.record_id),
                    ),
                    Some(Err(e)) => Err(RecordError::Key(e.clone())),
                    None => Err(RecordError::Key(KeyError::Unavailable(
                        "data key was not fetched".into(),
                    ))),
                },
            };
            let opened_ok = opened.is_ok();
            let (result, data) = match opened {
                Err(error) => {
                    tracing::warn!(record_id = %record.record_id, %error, "record failed");
                    stats.failed += 1;
                    (RecordResult::ProcessingFailed, record.data)
                }
                Ok(()) => {
                    stats.events += work.line_groups.len() + work.filtered;
                    stats.decrypted_bytes += work.plaintext.len();
                    stats.decompressed_bytes += work.json.len();
                    stats.kept += work.line_groups.len();
                    stats.heartbeats += work.heartbeats;
                    stats.filtered += work.filtered;
                    stats.undated += work.undated;
                    reserved -= record.data.len();
                    let encoded_len = work.lines.len().div_ceil(3) * 4;
                    if work.lines.is_empty() {
                        stats.dropped += 1;
                        (RecordResult::Dropped, String::new())
                    } else if output == FirehoseOutput::Events
                        && reserved + encoded_len <= RESPONSE_LIMIT
                    {
                        reserved += encoded_len;
                        stats.ok += 1;
                        let data = base64::engine::general_purpose::STANDARD.encode(&work.lines);
                        (RecordResult::Ok, data)
                    } else {
                        if output == FirehoseOutput::Events {
                            stats.spilled += 1;
                        }
                        self.route(&work, &mut groups)?;
                        stats.dropped += 1;
                        (RecordResult::Dropped, String::new())
                    }
                }
            };
            if opened_ok {
                // Routed to the processor's own objects: answered Dropped with lines kept.
                let stored = result == RecordResult::Dropped && !work.lines.is_empty();
                stats.alerts += work.raised.len();
                for r in work.raised.drain(..) {
                    let alerting = self.alerting.as_ref();
                    let description = alerting.and_then(|a| a.description(&r.alert.rule));
                    let origin = Origin {
                        cluster: work.cluster.clone(),
                        instance: work.instance.clone(),
                        s3_key: r
                            .group
                            .filter(|_| stored)
                            .map(|g| object_key(&self.config.prefix, &g, &batch)),
                    };
                    notices.push(Notice::new(
                        r.alert,
                        description,
                        origin,
                        Some(&self.config.bucket),
                        &record.record_id,
                        r.index,
                    ));
                }
            }
            responses.push(ResponseRecord {
                record_id: record.record_id,
                result,
                data,
            });
        }
        let objects = groups
            .into_iter()
            .map(|(key, group)| {
                let key = object_key(&self.config.prefix, &key, &batch);
                group.encoder.finish().map(|body| (key, body, group.events))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(InvocationError::Compress)?;
        decode_time += t.elapsed();
        stats.decode_ms = ms(decode_time);

        // 4. Write, then the manifest (only once every object is in place), then answer.
        let t = Instant::now();
        let entries: Vec<manifest::Entry> = match output {
            FirehoseOutput::S3 if !objects.is_empty() => objects
                .iter()
                .map(|(key, body, events)| manifest::Entry::new(key, body, *events))
                .collect(),
            // Firehose writes the events of `Ok` records; what the processor spills is not the
            // whole picture, so no manifest claims it is.
            _ => Vec::new(),
        };
        stats.s3_puts = objects.len();
        stats.s3_bytes = objects.iter().map(|(_, body, _)| body.len()).sum();
        let results: Vec<Result<(), SinkError>> = stream::iter(objects)
            .map(|(key, body, _)| async move { self.sink.put(&key, body).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        if !entries.is_empty() {
            let written_at = (self.clock)();
            let key = manifest::key(&self.config.prefix, written_at, &batch);
            let manifest = Manifest::new(&batch, written_at, entries);
            let body = manifest.to_json();
            stats.s3_puts += 2;
            stats.s3_bytes += body.len();
            self.sink.put(&key, body).await?;
            // Last: a digest names only objects already in place.
            self.chain
                .append(&self.sink, &self.keys, &batch, written_at, manifest.objects)
                .await?;
        }
        stats.s3_ms = ms(t.elapsed());
        // 5. Alerts, once the events they point at are stored.
        if let Some(alerting) = &self.alerting
            && !notices.is_empty()
        {
            tracing::info!(alerts = notices.len(), "alerts raised");
            if notices.len() > notify::MAX_NOTICES {
                tracing::warn!(
                    alerts = notices.len(),
                    published = notify::MAX_NOTICES,
                    "alert storm: the rest summarized, one alert per rule"
                );
            }
            let notices = notify::cap(notices, notify::MAX_NOTICES);
            stats.alerts_sent = notify::publish(
                alerting.sink.as_ref(),
                &alerting.destinations,
                &alerting.delivered,
                &notices,
            )
            .await?;
        }
        stats.total_ms = ms(started.elapsed());
        let replay = work.only.map(|bits| ReplayAnswer {
            categories: self
                .config
                .filter
                .categories()
                .filter(|c| bits & c.bit() != 0)
                .map(|c| c.as_str().to_owned())
                .collect(),
        });
        Ok((
            FirehoseResponse {
                records: responses,
                replay,
            },
            stats,
        ))
    }
}

impl<K: KeySource, S: ObjectSink> Processor<K, S> {
    /// The kept events of Kinesis records of one activity stream read by something other than
    /// Firehose (`das-setup tail`): per record, its events as NDJSON lines exactly as the S3
    /// objects hold them (empty when it had none to keep), or why it could not be opened. The
    /// same decoding, data-key cache, classification and filters as `handle`; nothing is
    /// written. KMS unavailable fails the call, as it fails an invocation.
    pub async fn events(
        &self,
        resource_id: &str,
        records: &[KinesisRecord<'_>],
    ) -> Result<Vec<Result<Vec<u8>, RecordError>>, InvocationError> {
        let Some(context) = EncryptionContext::for_resource(resource_id) else {
            return Ok(records
                .iter()
                .map(|_| Err(RecordError::NoResourceId(resource_id.to_owned())))
                .collect());
        };
        let decoded: Vec<Result<Decoded, RecordError>> =
            records.iter().map(|r| decode_envelope(r.data)).collect();
        let keys = self
            .data_keys(&context, &decoded, &mut Stats::default())
            .await?;
        let mut work = Work::default();
        let mut out = Vec::with_capacity(records.len());
        for (record, decoded) in records.iter().zip(decoded) {
            let arrival = UtcHour::from_epoch_millis(record.arrival_millis.unwrap_or(0));
            out.push(decoded.and_then(|d| {
                match keys.get(&d.key_blob) {
                    Some(Ok(key)) => self
                        .open(&d.message, key, arrival, &mut work, None)
                        .map(|()| work.lines.clone()),
                    Some(Err(e)) => Err(RecordError::Key(e.clone())),
                    None => Err(RecordError::Key(KeyError::Unavailable(
                        "data key was not fetched".into(),
                    ))),
                }
            }));
        }
        Ok(out)
    }

    /// The encryption context for this batch, or the stream name it could not be read from.
    fn context(&self, event: &FirehoseEvent) -> Result<EncryptionContext, String> {
        let stream = event.source_kinesis_stream_arn.as_deref().unwrap_or("");
        let id = match &self.config.resource_id {
            Some(id) => id.as_str(),
            None => resource_id_from_stream_arn(stream).ok_or_else(|| stream.to_owned())?,
        };
        EncryptionContext::for_resource(id).ok_or_else(|| stream.to_owned())
    }

    /// Every distinct data key of the batch: cached, or fetched from KMS concurrently.
    async fn data_keys(
        &self,
        context: &EncryptionContext,
        decoded: &[Result<Decoded, RecordError>],
        stats: &mut Stats,
    ) -> Result<HashMap<Vec<u8>, Result<DataKey, KeyError>>, InvocationError> {
        let blobs: HashSet<&[u8]> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .map(|d| d.key_blob.as_slice())
            .collect();
        stats.distinct_keys = blobs.len();
        let mut keys = HashMap::with_capacity(blobs.len());
        let mut missing = Vec::new();
        for blob in blobs {
            match self.cache.get(context, blob) {
                Some(key) => {
                    keys.insert(blob.to_vec(), Ok(key));
                }
                None => missing.push(blob),
            }
        }
        stats.kms_calls = missing.len();
        let fetched: Vec<_> = stream::iter(missing)
            .map(|blob| async move { (blob, self.keys.decrypt(blob, context).await) })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (blob, result) in fetched {
            match result {
                Ok(key) => {
                    self.cache.insert(context, blob, key.clone());
                    keys.insert(blob.to_vec(), Ok(key));
                }
                Err(KeyError::Unavailable(reason)) => {
                    return Err(InvocationError::Kms(KeyError::Unavailable(reason)));
                }
                Err(refused) => {
                    keys.insert(blob.to_vec(), Err(refused));
                }
            }
        }
        Ok(keys)
    }

    /// Decrypts, decompresses and parses one record into `work.lines`, validating all of it
    /// before anything is routed.
    fn open(
        &self,
        message: &[u8],
        key: &DataKey,
        arrival_hour: UtcHour,
        work: &mut Work,
        record_id: Option<&str>,
    ) -> Result<(), RecordError> {
        let Work {
            plaintext,
            json,
            lines,
            line_groups,
            heartbeats,
            filtered,
            undated,
            only,
            raised,
            cluster,
            instance,
        } = work;
        plaintext.clear();
        json.clear();
        lines.clear();
        line_groups.clear();
        raised.clear();
        (*heartbeats, *filtered, *undated) = (0, 0, 0);
        // Alert rules see live events only (a replay's were seen when they arrived), and only
        // those of records Firehose sent (not `tail`'s).
        let alerting = self
            .alerting
            .as_ref()
            .filter(|a| !a.rules.is_empty() && only.is_none())
            .zip(record_id);
        let mut tracker =
            alerting.map(|(a, _)| a.tracker.lock().unwrap_or_else(PoisonError::into_inner));
        let id_base = alerting.map_or(0, |(_, id)| id_base(id));
        let key: &[u8; 32] = key;
        esdk::decrypt(message, &RawAesKeyring::das(key), plaintext)
            .map_err(RecordError::Decrypt)?;
        inflate::gunzip(plaintext, self.config.max_record_bytes, json)
            .map_err(RecordError::Inflate)?;
        let view = RecordView::parse(json)?;
        let suffix = ids_suffix(view.cluster_id.as_deref(), view.instance_id.as_deref());
        if alerting.is_some() {
            *cluster = view.cluster_id.as_deref().map(str::to_owned);
            *instance = view.instance_id.as_deref().map(str::to_owned);
        }
        for (index, raw) in view.events.iter().enumerate() {
            let fields = EventFields::parse(raw.get()).map_err(redacted)?;
            if fields.is_heartbeat() {
                *heartbeats += 1;
                continue;
            }
            let category = classify(&fields);
            // Alert rules see every activity event, stored or not; a stored one's alert quotes
            // the statement as stored (masked once, below).
            let mut raise =
                |group: Option<GroupKey>, masked: Option<&str>| {
                    if let (Some((a, _)), Some(tracker)) = (alerting, tracker.as_mut()) {
                        let command = alert::command_of(&fields);
                        let subject =
                            Subject::new(&fields, category, &command, arrival_hour.start_millis())
                                .with_masked(masked)
                                .with_id(event_id(id_base, index));
                        raised.extend(tracker.observe(&a.rules, &subject).into_iter().map(
                            |alert| Raised {
                                alert,
                                index,
                                group,
                            },
                        ));
                    }
                };
            if !self
                .config
                .filter
                .keeps(category, fields.db_user_name.as_deref())
                || only.is_some_and(|bits| bits & category.bit() == 0)
            {
                raise(None, None);
                *filtered += 1;
                continue;
            }
            let hour = match fields.log_time.as_deref().and_then(UtcHour::from_log_time) {
                Some(hour) => hour,
                None => {
                    *undated += 1;
                    arrival_hour
                }
            };
            let mode = self.config.redact;
            let statement = fields.command_text.as_deref().and_then(|text| {
                redact::redact(
                    text,
                    Engine::from_server_type(fields.server_type.as_deref()),
                    mode,
                )
            });
            raise(
                Some(GroupKey { category, hour }),
                statement
                    .as_ref()
                    .map(|r| r.text.as_str())
                    .or(fields.command_text.as_deref()),
            );
            let mask_params = fields.has_params
                && (mode == redact::Mode::Literals || statement.as_ref().is_some_and(|s| s.params));
            if statement.is_some() || mask_params {
                let mut kinds = statement.as_ref().map(Redacted::kinds).unwrap_or_default();
                if mask_params
                    && mode == redact::Mode::Literals
                    && !kinds.contains(&redact::KIND_LITERAL)
                {
                    kinds.push(redact::KIND_LITERAL);
                }
                let masking = Masking {
                    statement: statement.as_ref(),
                    params: mask_params,
                    kinds,
                };
                write_line_masked(lines, raw, &masking, category.as_str(), &suffix)
                    .map_err(redacted)?;
            } else {
                write_line(lines, raw, &fields, category.as_str(), &suffix).map_err(redacted)?;
            }
            line_groups.push((GroupKey { category, hour }, lines.len()));
        }
        Ok(())
    }

    /// Appends a record's lines to the objects of their groups.
    fn route(
        &self,
        work: &Work,
        groups: &mut BTreeMap<GroupKey, Group>,
    ) -> Result<(), InvocationError> {
        let level = Compression::new(self.config.gzip_level);
        let mut start = 0;
        let mut i = 0;
        while i < work.line_groups.len() {
            // Consecutive lines of the same group are written in one go.
            let group = work.line_groups[i].0;
            let first = i;
            while i + 1 < work.line_groups.len() && work.line_groups[i + 1].0 == group {
                i += 1;
            }
            let end = work.line_groups[i].1;
            let out = groups.entry(group).or_insert_with(|| Group {
                encoder: GzEncoder::new(Vec::new(), level),
                events: 0,
            });
            out.encoder
                .write_all(&work.lines[start..end])
                .map_err(InvocationError::Compress)?;
            out.events += i + 1 - first;
            start = end;
            i += 1;
        }
        Ok(())
    }
}

/// The bit set of a replay's categories (every category when it names none).
fn replay_categories(replay: &Replay) -> Result<u16, InvocationError> {
    if replay.categories.is_empty() {
        return Ok(u16::MAX);
    }
    replay.categories.iter().try_fold(0, |bits, name| {
        Category::parse(name)
            .map(|c| bits | c.bit())
            .ok_or_else(|| InvocationError::ReplayCategory(name.clone()))
    })
}

/// Stage 1 for one Firehose record: base64, then the envelope.
fn decode(data: &str) -> Result<Decoded, RecordError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(RecordError::Data)?;
    decode_envelope(&bytes)
}

/// The envelope of one Kinesis record: the message and key blob.
fn decode_envelope(bytes: &[u8]) -> Result<Decoded, RecordError> {
    let envelope = Envelope::parse(bytes)?;
    let mut message = Vec::new();
    envelope.decode_message(&mut message)?;
    let key_blob = envelope.decode_key()?;
    Ok(Decoded { message, key_blob })
}

/// A record's share of its events' identities: the first 8 bytes of SHA-256 of its Firehose
/// record id (which a retry of the batch repeats).
fn id_base(record_id: &str) -> u64 {
    let digest = Sha256::digest(record_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// An event's identity: its record's, mixed with its place in the record.
fn event_id(base: u64, index: usize) -> u64 {
    base ^ (index as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
