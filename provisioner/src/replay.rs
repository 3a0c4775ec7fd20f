//! `das-setup replay`: runs the deployed processor again over the raw archive of a window (`up
//! --keep-raw`: Firehose's source record backup, every record as the activity stream sent it),
//! so that events a filter dropped, or classified under older rules, are derived again.
//!
//! The deployed function does the work, with its own role, configuration and digest chain:
//! das-setup only reads the archive and invokes it (Lambda `Invoke`, synchronous) with events of
//! Firehose's shape plus a `dasSetupReplay` member (`das_processor::firehose::Replay`). So the
//! events are decrypted, filtered, masked and stored exactly as the live pipeline stores them,
//! and `verify` covers them.
//!
//! Idempotent: record ids are `<archive object key>#<index>` and one object's records are
//! batched the same way every time, so a replay of a window (or of any window overlapping it)
//! rewrites the same objects with the same bytes (the processor names objects after their
//! batch's record ids). Objects a replay writes are named `replay-...` so a query can tell them
//! from the live pipeline's: the live pipeline has already stored the events its filter kept,
//! and `--category` limits a replay to what was missing.
//!
//! The pure parts (window, archive layout, splitting an archive object into records, batching,
//! checking an answer) are tested here; `run` reads S3 and invokes the function.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use base64::Engine as _;
use das_processor::firehose::{
    FirehoseEvent, FirehoseRecord, FirehoseResponse, RecordResult, Replay,
};
use das_processor::manifest::rfc3339_millis;
use das_processor::route::UtcHour;
use serde_json::json;

use crate::aws::{AwsError, Clients, Named as _};
use crate::cli::{GlobalArgs, OutputFormat, ReplayArgs};
use crate::deployment;
use crate::desired::RAW_PREFIX;
use crate::naming::Names;
use crate::session::{self, Refusal, confirm, emit_json, kind_word, refuse};
use crate::settings::{parse_duration, target};

pub const EXIT_REPLAYED: u8 = 0;
pub const EXIT_INCOMPLETE: u8 = 1;

/// Base64 record data per invocation: the live pipeline's processor buffer (3 MB, `desired`),
/// so the function's memory and timeout fit a replay batch as they fit a live one; well under
/// Lambda's 6 MB synchronous request limit (Lambda Developer Guide, "Lambda quotas").
pub const INVOCATION_BYTES: usize = 3 * 1024 * 1024;
/// JSON around one record in the event: `{"recordId":"","approximateArrivalTimestamp":
/// 1764000000000.0,"data":""},` and the id's length on top.
const RECORD_OVERHEAD: usize = 80;
/// Decompressed size limit of one archive object (Firehose writes them at its 5 MB buffer,
/// measured before compression; a tenfold margin).
const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;
/// Attempts per invocation that the function answers with an error (Firehose retries a failed
/// transformation invocation 3 times: `desired`'s processor retries).
const ATTEMPTS: u32 = 4;
/// The first pause between those attempts; it doubles (2 s, 4 s, 8 s).
const PAUSE: Duration = Duration::from_secs(1);

/// The window, in Unix milliseconds: `since` floored to its hour (the archive is filed by hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since_millis: i64,
    pub until_millis: i64,
}

/// A time the flags give: a duration back from `now` (`30m`, `7d`) or a time (`2026-12-01T10:00Z`,
/// `2026-12-01 10:00`, UTC unless it names an offset); `None` when it is neither.
pub fn parse_time(text: &str, now_millis: i64) -> Option<i64> {
    match parse_duration(text) {
        Some(d) => Some(now_millis - i64::try_from(d.as_millis()).ok()?),
        None => das_processor::route::log_time_millis(text),
    }
}

impl Window {
    pub fn new(since_millis: i64, until_millis: i64) -> Result<Self, String> {
        if until_millis <= since_millis {
            return Err("--until must be later than --since".into());
        }
        Ok(Self {
            since_millis: UtcHour::from_epoch_millis(since_millis).start_millis(),
            until_millis,
        })
    }

    /// Whether an archive object filed under this hour can hold records of the window.
    pub fn holds(&self, hour: UtcHour) -> bool {
        let start = hour.start_millis();
        start >= self.since_millis && start < self.until_millis
    }
}

/// Where the archive is: its bucket's objects under `folder`, filed by hour when `by_hour`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub bucket: String,
    /// The prefix's fixed part (`raw/`).
    pub folder: String,
    /// The prefix is `<folder>!{timestamp:yyyy/MM/dd/HH}/` (das-setup's, and Firehose's own
    /// default when a prefix names no timestamp): keys name their hour. Otherwise objects are
    /// taken by the time S3 stored them.
    pub by_hour: bool,
}

impl Archive {
    /// The archive of a source record backup with this prefix (Firehose's default: none).
    pub fn new(bucket: &str, prefix: Option<&str>) -> Self {
        let prefix = prefix.unwrap_or("");
        let folder = prefix.split("!{").next().unwrap_or("").to_owned();
        let rest = &prefix[folder.len()..];
        // "If you don't specify a timestamp namespace, Firehose appends yyyy/MM/dd/HH/ to the
        // prefix" (Firehose Developer Guide, "Understand custom prefixes for Amazon S3 objects").
        let by_hour = rest.is_empty() || rest == "!{timestamp:yyyy/MM/dd/HH}/";
        Self {
            bucket: bucket.to_owned(),
            folder,
            by_hour,
        }
    }

    /// The hour a key is filed under, when the archive is filed by hour.
    pub fn hour_of(&self, key: &str) -> Option<UtcHour> {
        let rest = key.strip_prefix(&self.folder)?;
        UtcHour::from_folder(rest.get(..13)?).filter(|_| rest.as_bytes().get(13) == Some(&b'/'))
    }

    /// The key to start listing after: every key of an earlier hour sorts before it.
    pub fn start_after(&self, window: &Window) -> Option<String> {
        self.by_hour.then(|| {
            format!(
                "{}{}",
                self.folder,
                UtcHour::from_epoch_millis(window.since_millis)
            )
        })
    }
}

/// An archive object that does not split whole into records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The records before the damage.
    pub records: Vec<Range<usize>>,
    /// Where the damage starts.
    pub offset: usize,
    pub reason: String,
}

/// The records of one archive object (its bytes decompressed): Firehose writes them one after
/// the other, without a delimiter. Each is a DAS envelope, a JSON object.
pub fn split(bytes: &[u8]) -> Result<Vec<Range<usize>>, Damage> {
    let mut records = Vec::new();
    let mut stream =
        serde_json::Deserializer::from_slice(bytes).into_iter::<&serde_json::value::RawValue>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return Ok(records),
            Some(Ok(raw)) => {
                let end = stream.byte_offset();
                let text = raw.get();
                if !text.starts_with('{') {
                    return Err(Damage {
                        records,
                        offset: start,
                        reason: "a record that is not a JSON object".into(),
                    });
                }
                // The value's own bytes, without the whitespace before it.
                let begin = end - text.len();
                records.push(begin..end);
            }
            Some(Err(e)) => {
                return Err(Damage {
                    records,
                    offset: start,
                    reason: format!("not a JSON record: {e}"),
                });
            }
        }
    }
}

/// One object's records as invocation events, at most [`INVOCATION_BYTES`] of record data each
/// (a record larger than that alone). The same object always gives the same events.
pub fn events(
    object_key: &str,
    records: &[&[u8]],
    arrival_millis: i64,
    stream_arn: &str,
    categories: &[String],
) -> Vec<FirehoseEvent> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out: Vec<FirehoseEvent> = Vec::new();
    let mut size = 0;
    for (index, data) in records.iter().enumerate() {
        let record = FirehoseRecord {
            record_id: format!("{object_key}#{index}"),
            approximate_arrival_timestamp: Some(arrival_millis as f64),
            data: b64.encode(data),
        };
        let bytes = record.data.len() + record.record_id.len() + RECORD_OVERHEAD;
        if out.is_empty() || size + bytes > INVOCATION_BYTES {
            out.push(FirehoseEvent {
                invocation_id: String::new(),
                delivery_stream_arn: String::new(),
                source_kinesis_stream_arn: Some(stream_arn.to_owned()),
                region: String::new(),
                records: Vec::new(),
                replay: Some(Replay {
                    categories: categories.to_vec(),
                }),
            });
            size = 0;
        }
        size += bytes;
        if let Some(event) = out.last_mut() {
            event.records.push(record);
        }
    }
    out
}

/// What one invocation's answer says of its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records processed (their events stored, or none to store).
    pub done: usize,
    /// Indexes (in the archive object) of records the function could not process.
    pub failed: Vec<usize>,
}

/// Checks an answer as Firehose does (every record id answered exactly once, with a known
/// result) and counts it. `Ok` results are refused: a replay's events are stored by the
/// function, never handed back.
pub fn tally(event: &FirehoseEvent, response: &FirehoseResponse) -> Result<Tally, String> {
    let asked: HashSet<&str> = event.records.iter().map(|r| r.record_id.as_str()).collect();
    let mut seen = HashSet::new();
    let mut tally = Tally::default();
    for answer in &response.records {
        if !asked.contains(answer.record_id.as_str()) || !seen.insert(answer.record_id.as_str()) {
            return Err(format!(
                "the function answered record id {:?} it was not asked, or twice",
                answer.record_id
            ));
        }
        match answer.result {
            RecordResult::Dropped => tally.done += 1,
            RecordResult::ProcessingFailed => {
                let index = answer
                    .record_id
                    .rsplit('#')
                    .next()
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(usize::MAX);
                tally.failed.push(index);
            }
            RecordResult::Ok => {
                return Err(
                    "the function handed events back instead of storing them (it predates replay: run das-setup up to update it)"
                        .into(),
                );
            }
        }
    }
    if seen.len() != asked.len() {
        return Err(format!(
            "the function answered {} of {} records",
            seen.len(),
            asked.len()
        ));
    }
    tally.failed.sort_unstable();
    Ok(tally)
}

// --- AWS ------------------------------------------------------------------------------------

/// An archive object to replay.
#[derive(Debug, Clone)]
struct RawObject {
    key: String,
    size: i64,
    /// The arrival time given to its records: its hour (Firehose files an object under the
    /// arrival hour of its oldest record), else when S3 stored it.
    arrival_millis: i64,
}

/// The archive objects of the window, in key order.
async fn list(
    s3: &aws_sdk_s3::Client,
    archive: &Archive,
    window: &Window,
) -> Result<Vec<RawObject>, AwsError> {
    let what = format!("s3://{}/{}", archive.bucket, archive.folder);
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&archive.bucket)
            .prefix(&archive.folder)
            .set_start_after(archive.start_after(window))
            .set_continuation_token(token)
            .send()
            .await
            .named("s3:ListBucket", &what)?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            let modified = o.last_modified().and_then(|t| t.to_millis().ok());
            let arrival = if archive.by_hour {
                match archive.hour_of(key) {
                    Some(hour) if hour.start_millis() >= window.until_millis => return Ok(out),
                    Some(hour) if window.holds(hour) => hour.start_millis(),
                    _ => continue, // not an archive object (or before the window)
                }
            } else {
                match modified {
                    Some(t) if t >= window.since_millis && t < window.until_millis => t,
                    _ => continue,
                }
            };
            out.push(RawObject {
                key: key.to_owned(),
                size: o.size().unwrap_or(0),
                arrival_millis: arrival,
            });
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
    let what = format!("s3://{bucket}/{key}");
    let body = crate::stored::get(s3, bucket, key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{what} is gone since it was listed (expired or deleted)"))?;
    // Firehose gzips the backup when its compression is GZIP (das-setup's): one or more members.
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        das_processor::inflate::gunzip(&body, MAX_OBJECT_BYTES, &mut plain)
            .map_err(|e| format!("decompressing {what}: {e}"))?;
        Ok(plain)
    } else {
        Ok(body)
    }
}

/// Why an invocation did not give an answer.
#[derive(Debug)]
enum InvokeError {
    /// Lambda refused the call (permissions, throttling after retries, request too large).
    Aws(AwsError),
    /// The function ran and failed (`X-Amz-Function-Error`), or answered something else than a
    /// transformation response.
    Function(String),
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Aws(e) => write!(f, "{e}"),
            InvokeError::Function(e) => write!(f, "{e}"),
        }
    }
}

async fn invoke_once(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: &[u8],
) -> Result<FirehoseResponse, InvokeError> {
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send()
        .await
        .named("lambda:InvokeFunction", function)
        .map_err(InvokeError::Aws)?;
    let body = out.payload.map(Blob::into_inner).unwrap_or_default();
    if let Some(kind) = out.function_error {
        // The function's error JSON: errorType and errorMessage (Invoke API reference,
        // FunctionError). The processor's messages name no event content.
        let detail: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = detail["errorMessage"].as_str().unwrap_or("no message");
        let message: String = message.chars().take(300).collect();
        return Err(InvokeError::Function(format!(
            "the function failed ({kind}): {message}"
        )));
    }
    serde_json::from_slice(&body).map_err(|e| {
        InvokeError::Function(format!(
            "the function's answer is not a transformation response: {e}"
        ))
    })
}

/// Invokes, retrying an error the function answers (as Firehose retries a failed
/// transformation); Lambda's refusals are the SDK's to retry (throttling) or final.
async fn invoke(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &FirehoseEvent,
    pause: Duration,
) -> Result<FirehoseResponse, InvokeError> {
    let payload = serde_json::to_vec(event)
        .map_err(|e| InvokeError::Function(format!("encoding the event: {e}")))?;
    let mut attempt = 1;
    loop {
        match invoke_once(lambda, function, &payload).await {
            Err(InvokeError::Function(e)) if attempt < ATTEMPTS => {
                crate::errln!("  … attempt {attempt} of {ATTEMPTS} failed, retrying: {e}");
                tokio::time::sleep(pause * (1 << attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// What `run` found before invoking anything.
struct Prepared {
    function: String,
    stream_arn: String,
    archive: Archive,
    window: Window,
    objects: Vec<RawObject>,
    /// The categories the function stores (its answer to the probe).
    categories: Vec<String>,
    /// The first pause between attempts of a failed invocation.
    pause: Duration,
}

async fn prepare(clients: &Clients, args: &ReplayArgs, now: i64) -> Result<Prepared, Refusal> {
    let target = target(&args.target)?;
    let time = |flag: &str, text: &str| {
        parse_time(text, now).ok_or_else(|| {
            refuse(format!(
                "{flag} {text:?}: expected a duration back from now (30m, 12h, 7d) or a time (2026-12-01T10:00Z)"
            ))
        })
    };
    let since = time("--since", &args.since)?;
    let until = match &args.until {
        Some(text) => time("--until", text)?,
        None => now,
    };
    let window = Window::new(since, until).map_err(refuse)?;
    let asked: Vec<String> = args
        .category
        .iter()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
        .collect();
    for c in &asked {
        if das_processor::classify::Category::parse(c).is_none() {
            return Err(refuse(format!(
                "--category {c}: not a category (DDL, DML, DQL, DCL, TCL, CONNECT, DISCONNECT, AUTH_FAILURE, ERROR, OTHER)"
            )));
        }
    }
    let (identity, database) = session::resolve(clients, &target).await?;
    let names = Names::new(&target, &identity.account, &identity.region);
    let o = deployment::observe(clients, &names, args.bucket.as_deref()).await?;
    let Some(function) = &o.function else {
        return Err(refuse(format!(
            "no processor function {} to replay through: run das-setup up first (replay runs the deployed function, with its filter and role)",
            names.function
        )));
    };
    let backup = o
        .delivery
        .as_ref()
        .and_then(|d| d.destination.as_ref())
        .and_then(|d| d.raw.as_ref());
    let archive = match (backup, &args.bucket) {
        (_, Some(bucket)) => Archive::new(bucket, Some(RAW_PREFIX)),
        (Some(b), None) => Archive::new(
            b.bucket_arn.rsplit(':').next().unwrap_or(&o.bucket_name),
            b.prefix.as_deref(),
        ),
        (None, None) => Archive::new(&o.bucket_name, Some(RAW_PREFIX)),
    };
    // The stream the records came from: the processor reads the database's resource id off it.
    let stream_arn = o
        .delivery
        .as_ref()
        .and_then(|d| d.source_stream_arn.clone())
        .or_else(|| {
            database.as_ref().map(|db| {
                format!(
                    "arn:{}:kinesis:{}:{}:stream/{}",
                    identity.partition,
                    identity.region,
                    identity.account,
                    db.stream_name()
                )
            })
        })
        .ok_or_else(|| {
            refuse(format!(
                "the {} {} is not known to RDS and no delivery stream names its activity stream",
                kind_word(target.kind),
                target.id
            ))
        })?;
    let objects = list(&clients.s3, &archive, &window).await?;
    if objects.is_empty() {
        let hint = if backup.is_none() {
            " and the delivery stream keeps none: turn it on with das-setup up --keep-raw (records from then on can be replayed)"
        } else {
            ""
        };
        return Err(refuse(format!(
            "no raw archive objects under s3://{}/{} in the window{hint}",
            archive.bucket, archive.folder
        )));
    }
    // A probe without records: the function says what it will store, or shows it predates
    // replay (then it would store every category under live names), before anything is written.
    let probe = FirehoseEvent {
        source_kinesis_stream_arn: Some(stream_arn.clone()),
        replay: Some(Replay {
            categories: asked.clone(),
        }),
        ..FirehoseEvent::default()
    };
    let answer = invoke(&clients.lambda, &function.arn, &probe, PAUSE)
        .await
        .map_err(|e| refuse(format!("asking the function {}: {e}", names.function)))?;
    let Some(replay) = answer.replay else {
        return Err(refuse(format!(
            "the function {} predates replay (it would ignore --category and name objects as the live pipeline does): run das-setup up to update it, then replay",
            names.function
        )));
    };
    let dropped: Vec<&String> = asked
        .iter()
        .filter(|c| !replay.categories.contains(c))
        .collect();
    if !dropped.is_empty() || replay.categories.is_empty() {
        return Err(refuse(format!(
            "the function's filter drops {}: change the filter with das-setup up first (replay stores what the deployed filter keeps)",
            if dropped.is_empty() {
                "every category asked".to_owned()
            } else {
                dropped
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    Ok(Prepared {
        function: function.arn.clone(),
        stream_arn,
        archive,
        window,
        objects,
        categories: replay.categories,
        pause: PAUSE,
    })
}

/// What the replay did.
#[derive(Debug, Default)]
struct Outcome {
    objects: usize,
    records: usize,
    invocations: usize,
    /// (object, record index) of records the function could not process.
    failed: Vec<(String, usize)>,
    /// (object, what is wrong): objects not (wholly) replayed.
    damaged: Vec<(String, String)>,
    /// Why the replay stopped before the end, and at which object.
    stopped: Option<(String, String)>,
}

async fn replay(clients: &Clients, p: &Prepared, progress: &crate::progress::Progress) -> Outcome {
    let mut outcome = Outcome::default();
    let mut step = progress.begin("replaying the raw archive", true);
    for (n, object) in p.objects.iter().enumerate() {
        step.tick();
        let bytes = match read(&clients.s3, &p.archive.bucket, &object.key).await {
            Ok(bytes) => bytes,
            Err(e) => {
                outcome.stopped = Some((object.key.clone(), e));
                break;
            }
        };
        let ranges = match split(&bytes) {
            Ok(ranges) => ranges,
            Err(damage) => {
                outcome.damaged.push((
                    object.key.clone(),
                    format!(
                        "at byte {}: {}; the {} record(s) before it are replayed",
                        damage.offset,
                        damage.reason,
                        damage.records.len()
                    ),
                ));
                damage.records
            }
        };
        let records: Vec<&[u8]> = ranges.iter().map(|r| &bytes[r.clone()]).collect();
        let events = events(
            &object.key,
            &records,
            object.arrival_millis,
            &p.stream_arn,
            &p.categories,
        );
        for event in &events {
            let answer = invoke(&clients.lambda, &p.function, event, p.pause).await;
            outcome.invocations += 1;
            match answer
                .map_err(|e| e.to_string())
                .and_then(|a| tally(event, &a))
            {
                Ok(t) => {
                    outcome.records += t.done + t.failed.len();
                    outcome
                        .failed
                        .extend(t.failed.into_iter().map(|i| (object.key.clone(), i)));
                }
                Err(e) => {
                    outcome.stopped = Some((object.key.clone(), e));
                    break;
                }
            }
        }
        if outcome.stopped.is_some() {
            break;
        }
        outcome.objects += 1;
        if (n + 1) % 25 == 0 {
            progress.line(&format!(
                "  {}/{} archive object(s), {} record(s)",
                n + 1,
                p.objects.len(),
                outcome.records
            ));
        }
    }
    step.done(&format!(
        "replayed {} of {} archive object(s)",
        outcome.objects,
        p.objects.len()
    ));
    outcome
}

/// `das-setup replay`. Exit 0 replayed, 1 some records or objects not replayed, 2 refused.
pub async fn run(global: &GlobalArgs, args: &ReplayArgs) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let progress = crate::progress::Progress::new(json_out);
    let clients = Clients::load(global).await;
    let p = match prepare(&clients, args, crate::session::now_millis()).await {
        Ok(p) => p,
        Err(e) => return session::refused("replay", json_out, &progress, &e, json!({})),
    };
    let bytes: i64 = p.objects.iter().map(|o| o.size).sum();
    let window = format!(
        "{} to {}",
        rfc3339_millis(p.window.since_millis),
        rfc3339_millis(p.window.until_millis)
    );
    let doc = |outcome: Option<&Outcome>, code: u8| {
        json!({
            "command": "replay",
            "function": p.function,
            "archive": format!("s3://{}/{}", p.archive.bucket, p.archive.folder),
            "window": {"since": rfc3339_millis(p.window.since_millis), "until": rfc3339_millis(p.window.until_millis)},
            "categories": p.categories,
            "rawObjects": p.objects.len(),
            "rawBytes": bytes,
            "dryRun": outcome.is_none(),
            "replayedObjects": outcome.map(|o| o.objects),
            "records": outcome.map(|o| o.records),
            "invocations": outcome.map(|o| o.invocations),
            "failedRecords": outcome.map(|o| o.failed.iter().map(|(k, i)| json!({"object": k, "index": i})).collect::<Vec<_>>()),
            "damagedObjects": outcome.map(|o| o.damaged.iter().map(|(k, r)| json!({"object": k, "detail": r})).collect::<Vec<_>>()),
            "stopped": outcome.and_then(|o| o.stopped.as_ref()).map(|(k, r)| json!({"object": k, "error": r})),
            "exitCode": code,
        })
    };
    let plan = format!(
        "Replay {} raw archive object(s) ({bytes} bytes compressed) of {window} from s3://{}/{} through {}, storing {}.",
        p.objects.len(),
        p.archive.bucket,
        p.archive.folder,
        p.function,
        p.categories.join(", ")
    );
    progress.line(&plan);
    if args.dry_run {
        progress.finish();
        if !json_out {
            for o in &p.objects {
                crate::outln!("  {}  {} bytes", o.key, o.size);
            }
            crate::outln!("Dry run: nothing was invoked.");
        }
        emit_json(json_out, &doc(None, EXIT_REPLAYED));
        return EXIT_REPLAYED;
    }
    if !args.yes {
        match confirm("Store the events these records give (objects named replay-...)?") {
            Ok(true) => {}
            Ok(false) => {
                return session::refused(
                    "replay",
                    json_out,
                    &progress,
                    &refuse("not confirmed"),
                    json!({}),
                );
            }
            Err(e) => return session::refused("replay", json_out, &progress, &e, json!({})),
        }
    }
    let outcome = replay(&clients, &p, &progress).await;
    progress.finish();
    let complete =
        outcome.failed.is_empty() && outcome.damaged.is_empty() && outcome.stopped.is_none();
    let code = if complete {
        EXIT_REPLAYED
    } else {
        EXIT_INCOMPLETE
    };
    if json_out {
        emit_json(true, &doc(Some(&outcome), code));
        return code;
    }
    crate::outln!(
        "das-setup replay: {} of {} archive object(s), {} record(s) in {} invocation(s); stored: {}",
        outcome.objects,
        p.objects.len(),
        outcome.records,
        outcome.invocations,
        p.categories.join(", ")
    );
    for (key, index) in &outcome.failed {
        crate::outln!(
            "  FAILED   {key} record {index}: the function could not process it (see its log group; the record stays in the archive)"
        );
    }
    for (key, detail) in &outcome.damaged {
        crate::outln!("  DAMAGED  {key}: {detail}");
    }
    if let Some((key, error)) = &outcome.stopped {
        crate::outln!("  STOPPED  at {key}: {error}");
        crate::outln!(
            "Run the same command again when it is mended: replay is idempotent (the objects already replayed are rewritten with the same bytes)."
        );
    }
    if complete {
        crate::outln!("replayed: every record of the window went through the function (exit 0)");
    } else {
        crate::outln!("NOT complete (exit 1)");
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn hour(text: &str) -> UtcHour {
        UtcHour::from_folder(text).unwrap()
    }

    #[test]
    fn times_are_durations_back_or_times_and_the_window_starts_on_the_hour() {
        let now = hour("2026/12/04/21").start_millis() + 25 * 60_000; // 21:25
        assert_eq!(parse_time("30m", now), Some(now - 30 * 60_000));
        assert_eq!(
            parse_time("2026-12-01T10:15Z", now),
            Some(hour("2026/12/01/10").start_millis() + 15 * 60_000)
        );
        assert_eq!(
            parse_time("2026-12-01 10:15:59", now),
            Some(hour("2026/12/01/10").start_millis() + 15 * 60_000 + 59_000)
        );
        assert_eq!(
            parse_time("2026-12-01 15:45+05:30", now),
            Some(hour("2026/12/01/10").start_millis() + 15 * 60_000)
        );
        for bad in ["", "yesterday", "5x", "2026-12-01"] {
            assert_eq!(parse_time(bad, now), None, "{bad}");
        }
        let w = Window::new(now - 30 * 60_000, now).unwrap();
        assert_eq!(w.since_millis, hour("2026/12/04/20").start_millis());
        assert!(w.holds(hour("2026/12/04/20")) && w.holds(hour("2026/12/04/21")));
        assert!(!w.holds(hour("2026/12/04/19")) && !w.holds(hour("2026/12/04/22")));
        assert!(Window::new(now, now - HOUR).is_err());
    }

    #[test]
    fn the_archive_layout_follows_the_backup_prefix() {
        let a = Archive::new("b", Some(RAW_PREFIX));
        assert_eq!((a.folder.as_str(), a.by_hour), ("raw/", true));
        assert_eq!(
            a.hour_of("raw/2026/12/04/21/das-setup-x-1-2026-12-04-21-59-59-u.gz"),
            Some(hour("2026/12/04/21"))
        );
        assert_eq!(a.hour_of("raw/2026/12/04/21"), None);
        assert_eq!(a.hour_of("parsed/2026/12/04/21/x"), None);
        let w = Window::new(hour("2026/12/04/20").start_millis() + 1, i64::MAX).unwrap();
        let start = a.start_after(&w).unwrap();
        assert_eq!(start, "raw/2026/12/04/20");
        assert!("raw/2026/12/04/19/z" < start.as_str() && start.as_str() < "raw/2026/12/04/20/a");
        // Firehose's default prefix (none) files by hour at the top of the bucket.
        let none = Archive::new("b", None);
        assert_eq!((none.folder.as_str(), none.by_hour), ("", true));
        // Another layout: taken by the time S3 stored the objects.
        let other = Archive::new("b", Some("backup/!{timestamp:yyyy-MM-dd}/"));
        assert_eq!((other.folder.as_str(), other.by_hour), ("backup/", false));
        assert_eq!(other.start_after(&w), None);
    }

    #[test]
    fn an_archive_object_splits_into_its_records_and_damage_is_located() {
        let a = br#"{"type":"DatabaseActivityMonitoringRecords","key":"k1"}"#;
        let b = br#"{"type":"DatabaseActivityMonitoringRecords","key":"k\"2}"}"#;
        let joined = [&a[..], &b[..], b"\n", &a[..]].concat();
        let ranges = split(&joined).unwrap();
        let parts: Vec<&[u8]> = ranges.iter().map(|r| &joined[r.clone()]).collect();
        assert_eq!(parts, [&a[..], &b[..], &a[..]]);
        assert_eq!(split(b"").unwrap(), Vec::<Range<usize>>::new());

        let damaged = [&a[..], b"{\"type\":", &b[..]].concat();
        let d = split(&damaged).unwrap_err();
        assert_eq!((d.records.len(), d.offset), (1, a.len()));
        assert!(d.reason.contains("not a JSON record"), "{}", d.reason);
        let d = split(&[&a[..], b"42"].concat()).unwrap_err();
        assert_eq!(d.records.len(), 1);
        assert!(d.reason.contains("not a JSON object"), "{}", d.reason);
    }

    #[test]
    fn records_become_the_same_bounded_events_every_time() {
        let big = vec![b'x'; INVOCATION_BYTES / 3];
        let small = b"{}".to_vec();
        let records: Vec<&[u8]> = vec![&big, &big, &small, &big, &small];
        let make = || events("raw/k.gz", &records, 1_000, "arn:s", &["DQL".into()]);
        let made = make();
        assert_eq!(
            made.iter().map(|e| e.records.len()).collect::<Vec<_>>(),
            [3, 2],
            "two 4/3 MB records and a small one fit, the third big one does not"
        );
        for e in &made {
            let data: usize = e.records.iter().map(|r| r.data.len()).sum();
            assert!(data <= INVOCATION_BYTES, "{data}");
            assert!(serde_json::to_vec(e).unwrap().len() < 6 * 1024 * 1024);
            assert_eq!(e.source_kinesis_stream_arn.as_deref(), Some("arn:s"));
            assert_eq!(e.replay.as_ref().unwrap().categories, ["DQL"]);
        }
        assert_eq!(made[1].records[0].record_id, "raw/k.gz#3");
        assert_eq!(
            made[0].records[0].approximate_arrival_timestamp,
            Some(1_000.0)
        );
        let again = make();
        let ids = |es: &[FirehoseEvent]| -> Vec<String> {
            es.iter()
                .flat_map(|e| e.records.iter().map(|r| r.record_id.clone()))
                .collect()
        };
        assert_eq!(ids(&made), ids(&again));
        assert!(events("k", &[], 0, "s", &[]).is_empty());
    }

    #[test]
    fn answers_are_checked_as_firehose_checks_them() {
        use das_processor::firehose::ResponseRecord;
        let records: Vec<&[u8]> = vec![b"{}", b"{}", b"{}"];
        let event = events("k", &records, 0, "s", &[]).remove(0);
        let answer = |results: &[(&str, RecordResult)]| FirehoseResponse {
            records: results
                .iter()
                .map(|(id, result)| ResponseRecord {
                    record_id: (*id).to_owned(),
                    result: *result,
                    data: String::new(),
                })
                .collect(),
            replay: None,
        };
        let (d, f) = (RecordResult::Dropped, RecordResult::ProcessingFailed);
        assert_eq!(
            tally(&event, &answer(&[("k#0", d), ("k#2", f), ("k#1", d)])),
            Ok(Tally {
                done: 2,
                failed: vec![2]
            })
        );
        let missing = tally(&event, &answer(&[("k#0", d), ("k#1", d)])).unwrap_err();
        assert!(missing.contains("2 of 3"), "{missing}");
        let twice = tally(&event, &answer(&[("k#0", d), ("k#0", d), ("k#1", d)])).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        let stranger = tally(&event, &answer(&[("k#9", d)])).unwrap_err();
        assert!(stranger.contains("k#9"), "{stranger}");
        let ok = tally(
            &event,
            &answer(&[("k#0", RecordResult::Ok), ("k#1", d), ("k#2", d)]),
        )
        .unwrap_err();
        assert!(ok.contains("das-setup up"), "{ok}");
    }

    #[test]
    fn the_archive_prefix_is_the_one_up_configures() {
        assert!(RAW_PREFIX.starts_with(&Archive::new("b", Some(RAW_PREFIX)).folder));
        assert!(Archive::new("b", Some(RAW_PREFIX)).by_hour);
    }

    mod with_aws {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use super::*;
        use crate::resource::testing::{Answer, FakeAws};

        const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:das-setup-c";

        fn prepared(objects: &[&str]) -> Prepared {
            Prepared {
                function: FUNCTION.into(),
                stream_arn: "arn:aws:kinesis:eu-west-1:123456789012:stream/aws-rds-das-cluster-X"
                    .into(),
                archive: Archive::new("bucket", Some(RAW_PREFIX)),
                window: Window::new(0, i64::MAX).unwrap(),
                objects: objects
                    .iter()
                    .map(|k| RawObject {
                        key: (*k).to_owned(),
                        size: 1,
                        arrival_millis: 0,
                    })
                    .collect(),
                categories: vec!["DQL".into()],
                pause: Duration::from_millis(1),
            }
        }

        /// The answer to every record of an invocation: Dropped, or ProcessingFailed for #1.
        fn answer_all(body: &str) -> String {
            let event: FirehoseEvent = serde_json::from_str(body).unwrap();
            let records: Vec<_> = event
                .records
                .iter()
                .map(|r| {
                    let result = if r.record_id.ends_with("#1") {
                        "ProcessingFailed"
                    } else {
                        "Dropped"
                    };
                    json!({"recordId": r.record_id, "result": result, "data": ""})
                })
                .collect();
            json!({"records": records, "replay": {"categories": ["DQL"]}}).to_string()
        }

        const TWO_RECORDS: &str = r#"{"type":"DatabaseActivityMonitoringRecords","n":0}{"type":"DatabaseActivityMonitoringRecords","n":1}"#;

        #[tokio::test]
        async fn a_failing_function_is_retried_then_the_replay_stops_naming_the_object() {
            let failures = Arc::new(AtomicUsize::new(0));
            let seen = Arc::clone(&failures);
            let fake = FakeAws::new(move |call| {
                if call.operation.starts_with("GET /bucket/raw/") {
                    Answer::xml(200, TWO_RECORDS)
                } else if call.operation.ends_with("/invocations") {
                    // Fails twice, then answers: the retry converges.
                    if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                        Answer::rest_json(
                            200,
                            r#"{"errorType":"KmsError","errorMessage":"KMS unavailable"}"#,
                        )
                        .with_header("x-amz-function-error", "Unhandled")
                    } else {
                        Answer::rest_json(200, &answer_all(&call.body))
                    }
                } else {
                    Answer::unexpected()
                }
            });
            let p = prepared(&["raw/2026/12/04/21/a.gz"]);
            let outcome = replay(&fake.clients(), &p, &crate::progress::Progress::new(true)).await;
            assert_eq!(outcome.stopped, None);
            assert_eq!(
                (outcome.objects, outcome.records, outcome.invocations),
                (1, 2, 1)
            );
            assert_eq!(outcome.failed, [("raw/2026/12/04/21/a.gz".to_owned(), 1)]);
            assert_eq!(
                failures.load(Ordering::SeqCst),
                3,
                "two failures, then the answer"
            );
            let sent: FirehoseEvent =
                serde_json::from_str(&fake.calls().last().unwrap().body).unwrap();
            assert_eq!(sent.records.len(), 2);
            assert_eq!(sent.replay.unwrap().categories, ["DQL"]);
            let data = base64::engine::general_purpose::STANDARD
                .decode(&sent.records[1].data)
                .unwrap();
            assert_eq!(
                data,
                br#"{"type":"DatabaseActivityMonitoringRecords","n":1}"#
            );

            // Always failing: stops at the first object after its attempts, names it and why,
            // and reads no further object.
            let fake = FakeAws::new(|call| {
                if call.operation.starts_with("GET /bucket/raw/") {
                    Answer::xml(200, TWO_RECORDS)
                } else {
                    Answer::rest_json(
                        200,
                        r#"{"errorType":"KmsError","errorMessage":"KMS unavailable"}"#,
                    )
                    .with_header("x-amz-function-error", "Unhandled")
                }
            });
            let p = prepared(&["raw/2026/12/04/21/a.gz", "raw/2026/12/04/22/b.gz"]);
            let outcome = replay(&fake.clients(), &p, &crate::progress::Progress::new(true)).await;
            let (key, error) = outcome.stopped.unwrap();
            assert_eq!(key, "raw/2026/12/04/21/a.gz");
            assert!(
                error.contains("Unhandled") && error.contains("KMS unavailable"),
                "{error}"
            );
            assert_eq!(outcome.objects, 0);
            let invocations = fake
                .operations()
                .iter()
                .filter(|o| o.ends_with("/invocations"))
                .count();
            assert_eq!(invocations, ATTEMPTS as usize);
            assert!(
                !fake.operations().iter().any(|o| o.contains("b.gz")),
                "{:?}",
                fake.operations()
            );
        }

        #[tokio::test]
        async fn lambda_refusing_the_call_stops_at_once_naming_the_permission() {
            let fake = FakeAws::new(|call| {
                if call.operation.starts_with("GET /bucket/raw/") {
                    Answer::xml(200, TWO_RECORDS)
                } else {
                    Answer::error_rest_json(403, "AccessDeniedException", "not authorized")
                }
            });
            let p = prepared(&["raw/2026/12/04/21/a.gz"]);
            let outcome = replay(&fake.clients(), &p, &crate::progress::Progress::new(true)).await;
            let (_, error) = outcome.stopped.unwrap();
            assert!(error.contains("lambda:InvokeFunction"), "{error}");
            assert_eq!(
                fake.operations().len(),
                2,
                "one read, one invocation: no retry of a refusal"
            );
        }
    }
}
