//! The Firehose delivery stream: reads the activity stream's Kinesis stream, invokes the
//! processor, writes Firehose's own output and failed records to the bucket, and with
//! `--keep-raw` every source record as received under `raw/` (source record backup: it can be
//! turned on in place, never off: Firehose API reference, ExtendedS3DestinationUpdate,
//! S3BackupMode). Its source cannot
//! change in place (CreateDeliveryStream only): a changed source, a failed stream or a
//! destination that is not extended S3 is replaced.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_firehose::operation::create_delivery_stream::CreateDeliveryStreamError;
use aws_sdk_firehose::operation::delete_delivery_stream::DeleteDeliveryStreamError;
use aws_sdk_firehose::operation::describe_delivery_stream::DescribeDeliveryStreamError;
use aws_sdk_firehose::types::{self as t, DeliveryStreamStatus as Status};
use aws_sdk_kinesis::operation::describe_stream_summary::DescribeStreamSummaryError;

use super::{
    ApplyError, Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict, invalid,
    message_says, missing_tags,
};
use crate::aws::{AwsError, Clients, Named as _};
use crate::desired::{DeliverySpec, Desired, RawBackupSpec};

pub const READY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub arn: String,
    pub status: Status,
    pub failure: Option<String>,
    pub version_id: String,
    pub destination_id: Option<String>,
    pub source_stream_arn: Option<String>,
    pub source_role_arn: Option<String>,
    /// Whether the Kinesis stream it was created to read still exists.
    pub source: Source,
    /// The extended S3 destination (`None`: another kind of destination).
    pub destination: Option<Destination>,
    pub tags: BTreeMap<String, String>,
}

/// The extended S3 destination as Firehose describes it: each setting das-setup sets, `None`
/// where Firehose gives none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Destination {
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub buffer_mb: Option<i32>,
    pub buffer_seconds: Option<i32>,
    pub lambda_arn: Option<String>,
    pub processor_buffer_mb: Option<i32>,
    pub processor_buffer_seconds: Option<i32>,
    pub processor_retries: Option<i32>,
    pub log_group: Option<String>,
    pub log_stream: Option<String>,
    /// The source record backup, when its mode is `Enabled`.
    pub raw: Option<RawBackup>,
}

/// The source record backup as Firehose describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawBackup {
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub buffer_mb: Option<i32>,
    pub buffer_seconds: Option<i32>,
    pub gzip: bool,
}

impl RawBackup {
    fn matches(&self, want: &RawBackupSpec, spec: &DeliverySpec) -> bool {
        self.role_arn == spec.role_arn
            && self.bucket_arn == spec.bucket_arn
            && self.prefix.as_deref() == Some(&want.prefix)
            && self.error_prefix.as_deref() == Some(&want.error_prefix)
            && self.buffer_mb == Some(want.buffer_mb)
            && self.buffer_seconds == Some(want.buffer_seconds)
            && self.gzip
    }
}

impl Destination {
    /// The bucket's name, from its ARN.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket_arn.rsplit(':').next().filter(|b| !b.is_empty())
    }

    /// Every setting as `up` wants it, but the source record backup ([`Destination::raw_matches`]).
    pub fn matches(&self, want: &DeliverySpec) -> bool {
        self.role_arn == want.role_arn
            && self.bucket_arn == want.bucket_arn
            && self.prefix.as_deref() == Some(&want.prefix)
            && self.error_prefix.as_deref() == Some(&want.error_prefix)
            && self.buffer_mb == Some(want.buffer_mb)
            && self.buffer_seconds == Some(want.buffer_seconds)
            && self.lambda_arn.as_deref() == Some(&want.lambda_arn)
            && self.processor_buffer_mb == Some(want.processor_buffer_mb)
            && self.processor_buffer_seconds == Some(want.processor_buffer_seconds)
            && self.processor_retries == Some(want.processor_retries)
            && self.log_group.as_deref() == Some(&want.log_group)
            && self.log_stream.as_deref() == Some(&want.log_stream)
    }

    /// The source record backup as `up` wants it (not asked for, or only kept as found:
    /// whatever it is).
    pub fn raw_matches(&self, want: &DeliverySpec) -> bool {
        want.raw
            .as_ref()
            .filter(|r| !r.found)
            .is_none_or(|r| self.raw.as_ref().is_some_and(|have| have.matches(r, want)))
    }
}

/// The source stream as it stands. RDS deletes the activity stream's Kinesis stream when the
/// activity stream is stopped or the database deleted, and creates a new one of the same name
/// (and so the same ARN) when it starts again (Aurora User Guide, "Getting the status of a
/// database activity stream"; "Monitoring database activity streams"); a delivery stream reads
/// the stream it was created on, so one older than its source reads nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The stream exists and is older than the delivery stream.
    Current,
    /// No stream under the source ARN (the activity stream is stopped).
    Gone,
    /// A stream of that ARN created after the delivery stream: another incarnation.
    Recreated,
    /// No Kinesis source, or no creation times to compare.
    Unknown,
}

impl Source {
    /// Why the delivery stream reads nothing, if it does not.
    pub fn problem(self) -> Option<&'static str> {
        match self {
            Source::Current | Source::Unknown => None,
            Source::Gone => Some(
                "its source Kinesis stream no longer exists (RDS deletes it when the activity stream stops)",
            ),
            Source::Recreated => Some(
                "its source Kinesis stream was deleted and created anew (the activity stream was stopped and started again), so it reads nothing",
            ),
        }
    }
}

/// Compares the source stream's creation with the delivery stream's.
async fn source_state(
    clients: &Clients,
    arn: &str,
    delivery_created: Option<&aws_smithy_types::DateTime>,
) -> Result<Source, AwsError> {
    let summary = clients
        .kinesis
        .describe_stream_summary()
        .stream_arn(arn)
        .send()
        .await
        .or_absent("kinesis:DescribeStreamSummary", arn, |e| {
            matches!(e, DescribeStreamSummaryError::ResourceNotFoundException(_))
        })?;
    let Some(summary) = summary.and_then(|s| s.stream_description_summary) else {
        return Ok(Source::Gone);
    };
    let stream_created = summary.stream_creation_timestamp();
    Ok(match delivery_created {
        Some(d)
            if stream_created.secs() > d.secs()
                || (stream_created.secs() == d.secs()
                    && stream_created.subsec_nanos() > d.subsec_nanos()) =>
        {
            Source::Recreated
        }
        Some(_) => Source::Current,
        None => Source::Unknown,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryChange {
    /// Delete before creating again (its source changed, or it failed).
    Delete,
    Create,
    Destination,
    /// Turns the source record backup on (`--keep-raw`); never off.
    RawBackup,
    Tags,
}

impl fmt::Display for DeliveryChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeliveryChange::Delete => "delete (its source changed or is gone)",
            DeliveryChange::Create => "create delivery stream",
            DeliveryChange::Destination => "destination settings",
            DeliveryChange::RawBackup => {
                "raw archive under raw/ (source record backup: Firehose cannot turn it off)"
            }
            DeliveryChange::Tags => "tags",
        })
    }
}

impl Change for DeliveryChange {
    fn effect(self) -> Effect {
        match self {
            DeliveryChange::Delete => Effect::Replace,
            DeliveryChange::Create => Effect::Create,
            DeliveryChange::Destination | DeliveryChange::RawBackup | DeliveryChange::Tags => {
                Effect::Update
            }
        }
    }
}

/// The delivery stream and whether its source stream is still the one it reads.
pub async fn observe(clients: &Clients, name: &str) -> Result<Option<DeliveryState>, AwsError> {
    describe(clients, name, true).await
}

/// `with_source`: also compare the source stream's creation (waits need only the status).
async fn describe(
    clients: &Clients,
    name: &str,
    with_source: bool,
) -> Result<Option<DeliveryState>, AwsError> {
    let what = format!("delivery stream {name}");
    let Some(out) = clients
        .firehose
        .describe_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await
        .or_absent("firehose:DescribeDeliveryStream", &what, |e| {
            matches!(e, DescribeDeliveryStreamError::ResourceNotFoundException(_))
        })?
    else {
        return Ok(None);
    };
    let Some(s) = out.delivery_stream_description() else {
        return Err(AwsError::invalid(
            "firehose:DescribeDeliveryStream",
            what,
            "the answer has no DeliveryStreamDescription".into(),
        ));
    };
    let tags = clients
        .firehose
        .list_tags_for_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await
        .named("firehose:ListTagsForDeliveryStream", &what)?
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect();
    let source = s
        .source()
        .and_then(|src| src.kinesis_stream_source_description());
    let first = s.destinations().first();
    let destination = first
        .and_then(|d| d.extended_s3_destination_description())
        .map(|e| {
            let processor = e
                .processing_configuration()
                .filter(|p| p.enabled() == Some(true))
                .and_then(|p| p.processors().first());
            let param = |name: &t::ProcessorParameterName| {
                processor.and_then(|p| {
                    p.parameters()
                        .iter()
                        .find(|x| x.parameter_name() == name)
                        .map(|x| x.parameter_value().to_owned())
                })
            };
            let number = |name| param(&name).and_then(|v| v.parse::<i32>().ok());
            let logging = e
                .cloud_watch_logging_options()
                .filter(|l| l.enabled() == Some(true));
            let raw = (e.s3_backup_mode() == Some(&t::S3BackupMode::Enabled)).then(|| {
                let b = e.s3_backup_description();
                RawBackup {
                    role_arn: b.map(|b| b.role_arn().to_owned()).unwrap_or_default(),
                    bucket_arn: b.map(|b| b.bucket_arn().to_owned()).unwrap_or_default(),
                    prefix: b.and_then(|b| b.prefix()).map(str::to_owned),
                    error_prefix: b.and_then(|b| b.error_output_prefix()).map(str::to_owned),
                    buffer_mb: b
                        .and_then(|b| b.buffering_hints())
                        .and_then(|h| h.size_in_mbs()),
                    buffer_seconds: b
                        .and_then(|b| b.buffering_hints())
                        .and_then(|h| h.interval_in_seconds()),
                    gzip: b.map(|b| b.compression_format()) == Some(&t::CompressionFormat::Gzip),
                }
            });
            Destination {
                raw,
                role_arn: e.role_arn().to_owned(),
                bucket_arn: e.bucket_arn().to_owned(),
                prefix: e.prefix().map(str::to_owned),
                error_prefix: e.error_output_prefix().map(str::to_owned),
                buffer_mb: e.buffering_hints().and_then(|b| b.size_in_mbs()),
                buffer_seconds: e.buffering_hints().and_then(|b| b.interval_in_seconds()),
                lambda_arn: param(&t::ProcessorParameterName::LambdaArn),
                processor_buffer_mb: number(t::ProcessorParameterName::BufferSizeInMb),
                processor_buffer_seconds: number(
                    t::ProcessorParameterName::BufferIntervalInSeconds,
                ),
                processor_retries: number(t::ProcessorParameterName::LambdaNumberOfRetries),
                log_group: logging.and_then(|l| l.log_group_name()).map(str::to_owned),
                log_stream: logging.and_then(|l| l.log_stream_name()).map(str::to_owned),
            }
        });
    let source_stream_arn = source
        .and_then(|k| k.kinesis_stream_arn())
        .map(str::to_owned);
    let source_state = match &source_stream_arn {
        Some(arn) if with_source => source_state(clients, arn, s.create_timestamp()).await?,
        _ => Source::Unknown,
    };
    Ok(Some(DeliveryState {
        arn: s.delivery_stream_arn().to_owned(),
        status: s.delivery_stream_status().clone(),
        failure: s
            .failure_description()
            .map(|f| format!("{}: {}", f.r#type().as_str(), f.details())),
        version_id: s.version_id().to_owned(),
        destination_id: first.map(|d| d.destination_id().to_owned()),
        source_stream_arn,
        source_role_arn: source.and_then(|k| k.role_arn()).map(str::to_owned),
        source: source_state,
        destination,
        tags,
    }))
}

fn broken(status: &Status) -> bool {
    matches!(status, Status::CreatingFailed | Status::DeletingFailed)
}

pub fn compare(d: &Desired, state: Option<&DeliveryState>) -> Planned<DeliveryChange> {
    let mut plan = Planned::new(d.names.delivery_stream.clone(), vec![]);
    match state {
        Some(s) => compare_found(d, s, &mut plan),
        None => plan.changes.push(DeliveryChange::Create),
    }
    match &d.delivery.raw {
        Some(r) if r.found => plan
            .notes
            .push("raw archive under raw/ kept: found on, and Firehose cannot turn it off".into()),
        Some(_)
            if plan
                .changes
                .iter()
                .any(|c| matches!(c, DeliveryChange::Create | DeliveryChange::RawBackup)) =>
        {
            plan.notes
                .push("the raw archive under raw/ cannot be turned off once on".into());
        }
        _ => {}
    }
    plan
}

fn compare_found(d: &Desired, s: &DeliveryState, plan: &mut Planned<DeliveryChange>) {
    let source_changed = s.source_stream_arn.as_deref() != Some(&d.delivery.source_stream_arn)
        || s.source_role_arn.as_deref() != Some(&d.delivery.role_arn);
    let source_gone = s.source.problem();
    if source_changed || source_gone.is_some() || broken(&s.status) || s.destination.is_none() {
        plan.changes.push(DeliveryChange::Delete);
        plan.changes.push(DeliveryChange::Create);
        if let Some(why) = source_gone.filter(|_| !source_changed) {
            plan.notes.push(why.to_owned());
        }
        if broken(&s.status) {
            plan.notes.push(format!(
                "status {}{}",
                s.status.as_str(),
                s.failure
                    .as_ref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            ));
        }
    } else {
        if !s
            .destination
            .as_ref()
            .is_some_and(|x| x.matches(&d.delivery))
        {
            plan.changes.push(DeliveryChange::Destination);
        }
        if !s
            .destination
            .as_ref()
            .is_some_and(|x| x.raw_matches(&d.delivery))
        {
            plan.changes.push(DeliveryChange::RawBackup);
        }
        if missing_tags(&d.tags, &s.tags) {
            plan.changes.push(DeliveryChange::Tags);
        }
    }
}

/// The delivery stream found backs up its source records: `up` keeps that, with or without
/// `--keep-raw`, so that a delivery stream created again keeps it too.
pub fn raw_found(state: Option<&DeliveryState>) -> bool {
    state
        .and_then(|s| s.destination.as_ref())
        .is_some_and(|d| d.raw.is_some())
}

/// IAM has not reached Firehose yet (IAM User Guide, "Changes that I make are not always
/// immediately visible"). Firehose models no error for it: CreateDeliveryStream and
/// UpdateDestination answer their generic InvalidArgumentException (Firehose API reference,
/// Errors) with "Firehose is unable to assume role ..." or "... is not authorized to perform
/// ...". Those messages, on that code, are the conditions terraform-provider-aws retries for its
/// IAM propagation timeout (internal/service/firehose/delivery_stream.go); nothing else is.
fn propagating(e: &AwsError) -> bool {
    message_says(
        e,
        "InvalidArgumentException",
        &[
            "Firehose is unable to assume role",
            "is not authorized to perform",
        ],
    )
}

pub async fn apply(
    ctx: &Ctx<'_>,
    d: &Desired,
    plan: &Planned<DeliveryChange>,
    state: Option<&DeliveryState>,
) -> Res {
    if plan.changes.is_empty() {
        return Ok(());
    }
    let name = &d.names.delivery_stream;
    let what = format!("delivery stream {name}");
    let firehose = &ctx.clients.firehose;
    let spec = &d.delivery;
    let bad = |e| invalid("firehose:CreateDeliveryStream", name, e);
    let parameter = |n: t::ProcessorParameterName, v: String| {
        t::ProcessorParameter::builder()
            .parameter_name(n)
            .parameter_value(v)
            .build()
            .map_err(bad)
    };
    let processor = t::Processor::builder()
        .r#type(t::ProcessorType::Lambda)
        .parameters(parameter(
            t::ProcessorParameterName::LambdaArn,
            spec.lambda_arn.clone(),
        )?)
        .parameters(parameter(
            t::ProcessorParameterName::BufferSizeInMb,
            spec.processor_buffer_mb.to_string(),
        )?)
        .parameters(parameter(
            t::ProcessorParameterName::BufferIntervalInSeconds,
            spec.processor_buffer_seconds.to_string(),
        )?)
        .parameters(parameter(
            t::ProcessorParameterName::LambdaNumberOfRetries,
            spec.processor_retries.to_string(),
        )?)
        .build()
        .map_err(bad)?;
    let processing = t::ProcessingConfiguration::builder()
        .enabled(true)
        .processors(processor)
        .build();
    let buffering = t::BufferingHints::builder()
        .size_in_mbs(spec.buffer_mb)
        .interval_in_seconds(spec.buffer_seconds)
        .build();
    let logging = t::CloudWatchLoggingOptions::builder()
        .enabled(true)
        .log_group_name(&spec.log_group)
        .log_stream_name(&spec.log_stream)
        .build();
    let mut tags = Vec::new();
    for (k, v) in &d.tags {
        tags.push(t::Tag::builder().key(k).value(v).build().map_err(bad)?);
    }
    // The source record backup: same bucket and role, gzip'd like the rest.
    let raw = |r: &RawBackupSpec| {
        (
            t::BufferingHints::builder()
                .size_in_mbs(r.buffer_mb)
                .interval_in_seconds(r.buffer_seconds)
                .build(),
            t::CompressionFormat::Gzip,
        )
    };
    let raw_create = match &spec.raw {
        Some(r) => {
            let (hints, gzip) = raw(r);
            Some(
                t::S3DestinationConfiguration::builder()
                    .role_arn(&spec.role_arn)
                    .bucket_arn(&spec.bucket_arn)
                    .prefix(&r.prefix)
                    .error_output_prefix(&r.error_prefix)
                    .buffering_hints(hints)
                    .compression_format(gzip)
                    .build()
                    .map_err(bad)?,
            )
        }
        None => None,
    };
    // An update leaves a backup found on as it is (omitted: unchanged).
    let asked = spec.raw.as_ref().filter(|r| !r.found);
    let raw_update = asked.map(|r| {
        let (hints, gzip) = raw(r);
        t::S3DestinationUpdate::builder()
            .role_arn(&spec.role_arn)
            .bucket_arn(&spec.bucket_arn)
            .prefix(&r.prefix)
            .error_output_prefix(&r.error_prefix)
            .buffering_hints(hints)
            .compression_format(gzip)
            .build()
    });
    let backup_mode = spec.raw.as_ref().map(|_| t::S3BackupMode::Enabled);
    let update_mode = asked.map(|_| t::S3BackupMode::Enabled);
    let mut updated = false;
    for change in &plan.changes {
        match change {
            DeliveryChange::Delete => {
                ctx.mutate("firehose:DeleteDeliveryStream", name)?;
                delete(ctx, name).await?;
            }
            DeliveryChange::Create => {
                let step = ctx.progress.begin(format!("creating {what}"), false);
                let destination = t::ExtendedS3DestinationConfiguration::builder()
                    .role_arn(&spec.role_arn)
                    .bucket_arn(&spec.bucket_arn)
                    .prefix(&spec.prefix)
                    .error_output_prefix(&spec.error_prefix)
                    .buffering_hints(buffering.clone())
                    .compression_format(t::CompressionFormat::Gzip)
                    .cloud_watch_logging_options(logging.clone())
                    .processing_configuration(processing.clone())
                    .set_s3_backup_mode(backup_mode.clone())
                    .set_s3_backup_configuration(raw_create.clone())
                    .build()
                    .map_err(bad)?;
                let source = t::KinesisStreamSourceConfiguration::builder()
                    .kinesis_stream_arn(&spec.source_stream_arn)
                    .role_arn(&spec.role_arn)
                    .build()
                    .map_err(bad)?;
                // Counted (and the test switch checked) once, not per IAM-propagation retry.
                ctx.mutate("firehose:CreateDeliveryStream", name)?;
                let created = ctx
                    .retry_iam(&what, propagating, || async {
                        let result = firehose
                            .create_delivery_stream()
                            .delivery_stream_name(name)
                            .delivery_stream_type(t::DeliveryStreamType::KinesisStreamAsSource)
                            .kinesis_stream_source_configuration(source.clone())
                            .extended_s3_destination_configuration(destination.clone())
                            .set_tags(Some(tags.clone()))
                            .send()
                            .await;
                        // Created by an interrupted run (or a retry whose answer was lost):
                        // the wait below tells whether it is usable.
                        result
                            .or_absent("firehose:CreateDeliveryStream", &what, |e| {
                                matches!(e, CreateDeliveryStreamError::ResourceInUseException(_))
                            })
                            .map(|_| ())
                    })
                    .await;
                created?;
                step.done(&format!("created {what}"));
            }
            DeliveryChange::Destination | DeliveryChange::RawBackup if updated => {}
            DeliveryChange::Destination | DeliveryChange::RawBackup => {
                updated = true;
                let Some(current) = state else {
                    return Err(ApplyError::Failed {
                        what,
                        reason: "its destination was to be updated but it was not found".into(),
                    });
                };
                let update = t::ExtendedS3DestinationUpdate::builder()
                    .role_arn(&spec.role_arn)
                    .bucket_arn(&spec.bucket_arn)
                    .prefix(&spec.prefix)
                    .error_output_prefix(&spec.error_prefix)
                    .buffering_hints(buffering.clone())
                    .compression_format(t::CompressionFormat::Gzip)
                    .cloud_watch_logging_options(logging.clone())
                    .processing_configuration(processing.clone())
                    .set_s3_backup_mode(update_mode.clone())
                    .set_s3_backup_update(raw_update.clone())
                    .build();
                let step = ctx.progress.begin(format!("updating {what}"), false);
                ctx.mutate("firehose:UpdateDestination", name)?;
                ctx.retry_iam(&what, propagating, || async {
                    firehose
                        .update_destination()
                        .delivery_stream_name(name)
                        .current_delivery_stream_version_id(&current.version_id)
                        .set_destination_id(current.destination_id.clone())
                        .extended_s3_destination_update(update.clone())
                        .send()
                        .await
                        .named("firehose:UpdateDestination", &what)
                })
                .await?;
                step.done(&format!("{what}: destination settings"));
            }
            DeliveryChange::Tags => {
                ctx.mutate("firehose:TagDeliveryStream", name)?;
                firehose
                    .tag_delivery_stream()
                    .delivery_stream_name(name)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .named("firehose:TagDeliveryStream", &what)?;
            }
        }
    }
    wait_active(ctx, name).await
}

async fn wait_active(ctx: &Ctx<'_>, name: &str) -> Res {
    let what = format!("delivery stream {name}");
    let mut poll: Option<super::Poll> = None;
    loop {
        let Some(s) = describe(ctx.clients, name, false).await? else {
            return Err(ApplyError::Failed {
                what,
                reason: "it disappeared while being created".into(),
            });
        };
        match &s.status {
            Status::Active => {
                if let Some(p) = poll {
                    p.done(&format!("{what} is active"));
                }
                return Ok(());
            }
            Status::Creating => {}
            other => {
                return Err(ApplyError::Failed {
                    what,
                    reason: format!(
                        "status {}: {}",
                        other.as_str(),
                        s.failure.as_deref().unwrap_or("no failure description")
                    ),
                });
            }
        }
        let p = poll.get_or_insert_with(|| ctx.poll(format!("{what} to be active"), READY_TIMEOUT));
        p.next(s.status.as_str()).await?;
    }
}

pub fn verdict(state: Option<&DeliveryState>) -> Verdict {
    state.map_or(Verdict::Absent, |s| Verdict::by_tags(&s.tags))
}

/// Deletes it and waits until it is gone; "not found" counts as done.
pub async fn delete(ctx: &Ctx<'_>, name: &str) -> Res {
    let what = format!("delivery stream {name}");
    ctx.clients
        .firehose
        .delete_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await
        .or_absent("firehose:DeleteDeliveryStream", &what, |e| {
            matches!(e, DeleteDeliveryStreamError::ResourceNotFoundException(_))
        })?;
    let mut poll = ctx.poll(format!("{what} to be deleted"), READY_TIMEOUT);
    while let Some(s) = describe(ctx.clients, name, false).await? {
        if s.status == Status::DeletingFailed {
            return Err(ApplyError::Failed {
                what,
                reason: format!(
                    "deletion failed: {}",
                    s.failure.as_deref().unwrap_or("no failure description")
                ),
            });
        }
        poll.next(s.status.as_str()).await?;
    }
    poll.done(&format!("{what} deleted"));
    Ok(())
}

/// `status`: active, reading this database's stream, invoking das-setup's function.
pub fn check(name: &str, s: Option<&DeliveryState>, want: Option<&Desired>) -> Check {
    let fail = |detail: String| Check::of(Resource::DeliveryStream, Level::Fail, detail);
    let Some(s) = s else {
        return fail(format!(
            "{name} does not exist: nothing reads the activity stream"
        ));
    };
    if s.status != Status::Active {
        return fail(format!(
            "{name}: {}{}",
            s.status.as_str(),
            s.failure
                .as_ref()
                .map(|f| format!(": {f}"))
                .unwrap_or_default()
        ));
    }
    if let Some(f) = &s.failure {
        return fail(format!("{name}: {f}"));
    }
    if let Some(why) = s.source.problem() {
        return fail(format!("{name}: {why}; das-setup up replaces it"));
    }
    if let Some(d) = want {
        if s.source_stream_arn.as_deref() != Some(&d.delivery.source_stream_arn) {
            return fail(format!(
                "{name} reads {}, not this database's stream (das-setup up replaces it)",
                s.source_stream_arn.as_deref().unwrap_or("nothing")
            ));
        }
        if s.destination.as_ref().and_then(|x| x.lambda_arn.as_deref())
            != Some(d.function_arn.as_str())
        {
            return fail(format!("{name} does not invoke {}", d.names.function));
        }
    }
    Check::of(
        Resource::DeliveryStream,
        Level::Ok,
        format!(
            "{name}: ACTIVE{}",
            if raw_found(Some(s)) {
                ", raw archive under raw/"
            } else {
                ""
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    /// A summary of the source stream, created at `created` (epoch seconds).
    fn summary(created: u32) -> String {
        format!(
            r#"{{"StreamDescriptionSummary":{{"StreamName":"s","StreamARN":"arn:aws:kinesis:eu-west-1:1:stream/s","StreamStatus":"ACTIVE",
            "RetentionPeriodHours":24,"StreamCreationTimestamp":{created},"EnhancedMonitoring":[],"OpenShardCount":1}}}}"#
        )
    }

    /// Created at epoch second 2000.
    fn description(d: &Desired, status: &str, source: &str) -> String {
        let s = &d.delivery;
        format!(
            r#"{{"DeliveryStreamDescription":{{"DeliveryStreamName":"{name}","DeliveryStreamARN":"arn:aws:firehose:eu-west-1:111122223333:deliverystream/{name}","CreateTimestamp":2000,
            "DeliveryStreamStatus":"{status}","DeliveryStreamType":"KinesisStreamAsSource","VersionId":"3","HasMoreDestinations":false,
            "Source":{{"KinesisStreamSourceDescription":{{"KinesisStreamARN":"{source}","RoleARN":"{role}"}}}},
            "Destinations":[{{"DestinationId":"destinationId-000000000001","ExtendedS3DestinationDescription":{{
              "RoleARN":"{role}","BucketARN":"{bucket}","Prefix":"{prefix}","ErrorOutputPrefix":"{error}",
              "BufferingHints":{{"SizeInMBs":{mb},"IntervalInSeconds":{secs}}},"CompressionFormat":"GZIP",
              "EncryptionConfiguration":{{"NoEncryptionConfig":"NoEncryption"}},
              "CloudWatchLoggingOptions":{{"Enabled":true,"LogGroupName":"{group}","LogStreamName":"{stream}"}},
              "ProcessingConfiguration":{{"Enabled":true,"Processors":[{{"Type":"Lambda","Parameters":[
                {{"ParameterName":"LambdaArn","ParameterValue":"{lambda}"}},
                {{"ParameterName":"BufferSizeInMBs","ParameterValue":"{pmb}"}},
                {{"ParameterName":"BufferIntervalInSeconds","ParameterValue":"{psecs}"}},
                {{"ParameterName":"NumberOfRetries","ParameterValue":"{retries}"}}]}}]}}}}}}]}}}}"#,
            name = d.names.delivery_stream,
            role = s.role_arn,
            bucket = s.bucket_arn,
            prefix = s.prefix,
            error = s.error_prefix,
            mb = s.buffer_mb,
            secs = s.buffer_seconds,
            group = s.log_group,
            stream = s.log_stream,
            lambda = s.lambda_arn,
            pmb = s.processor_buffer_mb,
            psecs = s.processor_buffer_seconds,
            retries = s.processor_retries,
        )
    }

    #[tokio::test]
    async fn a_stream_as_up_sets_it_compares_unchanged_and_sends_nothing() {
        let d = crate::desired::tests::desired_started();
        let body = description(&d, "ACTIVE", &d.delivery.source_stream_arn);
        let tags = serde_json::json!({
            "Tags": d.tags.iter().map(|(k, v)| serde_json::json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
            "HasMoreTags": false,
        })
        .to_string();
        let fake = FakeAws::new(move |c| match c.operation.as_str() {
            "Firehose_20150804.DescribeDeliveryStream" => Answer::json(200, &body),
            "Firehose_20150804.ListTagsForDeliveryStream" => Answer::json(200, &tags),
            "Kinesis_20131202.DescribeStreamSummary" => Answer::json(200, &summary(1000)),
            _ => Answer::unexpected(),
        });
        let clients = fake.clients();
        let state = observe(&clients, &d.names.delivery_stream)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.status, Status::Active);
        let plan = compare(&d, Some(&state));
        assert!(plan.changes.is_empty(), "{plan:?}");
        let before = fake.calls().len();
        let progress = crate::progress::Progress::new(true);
        assert!(
            apply(&Ctx::new(&clients, &progress), &d, &plan, Some(&state))
                .await
                .is_ok()
        );
        assert_eq!(
            fake.calls().len(),
            before,
            "nothing is sent for an unchanged stream"
        );
        assert_eq!(
            check(&d.names.delivery_stream, Some(&state), Some(&d)).level,
            Level::Ok
        );
        assert_eq!(verdict(Some(&state)), Verdict::Delete);
    }

    #[tokio::test]
    async fn another_source_is_a_replacement() {
        let d = crate::desired::tests::desired_started();
        let body = description(
            &d,
            "ACTIVE",
            "arn:aws:kinesis:eu-west-1:111122223333:stream/other",
        );
        let fake = FakeAws::new(move |c| match c.operation.as_str() {
            "Firehose_20150804.DescribeDeliveryStream" => Answer::json(200, &body),
            "Firehose_20150804.ListTagsForDeliveryStream" => {
                Answer::json(200, r#"{"Tags":[],"HasMoreTags":false}"#)
            }
            "Kinesis_20131202.DescribeStreamSummary" => Answer::json(200, &summary(1000)),
            _ => Answer::unexpected(),
        });
        let state = observe(&fake.clients(), "x").await.unwrap();
        let plan = compare(&d, state.as_ref());
        assert_eq!(
            plan.changes,
            [DeliveryChange::Delete, DeliveryChange::Create]
        );
        assert_eq!(plan.action(), super::super::Action::Replace);
        assert_eq!(verdict(state.as_ref()), Verdict::by_tags(&BTreeMap::new()));
    }

    #[tokio::test]
    async fn a_source_stream_gone_or_created_anew_is_seen_and_replaced() {
        let d = crate::desired::tests::desired_started();
        let body = description(&d, "ACTIVE", &d.delivery.source_stream_arn);
        for (answer, source) in [
            (Answer::json(200, &summary(1999)), Source::Current),
            (Answer::json(200, &summary(2001)), Source::Recreated),
            (
                Answer::error_json(400, "ResourceNotFoundException", "Stream s not found"),
                Source::Gone,
            ),
        ] {
            let body = body.clone();
            let fake = FakeAws::new(move |c| match c.operation.as_str() {
                "Firehose_20150804.DescribeDeliveryStream" => Answer::json(200, &body),
                "Firehose_20150804.ListTagsForDeliveryStream" => {
                    Answer::json(200, r#"{"Tags":[],"HasMoreTags":false}"#)
                }
                "Kinesis_20131202.DescribeStreamSummary" => answer.clone(),
                _ => Answer::unexpected(),
            });
            let state = observe(&fake.clients(), "x").await.unwrap().unwrap();
            assert_eq!(state.source, source);
            let plan = compare(&d, Some(&state));
            let replaced = plan.changes == [DeliveryChange::Delete, DeliveryChange::Create];
            assert_eq!(replaced, source != Source::Current, "{source:?}: {plan:?}");
        }
    }

    #[tokio::test]
    async fn delete_waits_until_the_stream_is_gone() {
        let d = crate::desired::tests::desired_started();
        let deleting = description(&d, "DELETING", &d.delivery.source_stream_arn);
        let looks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = looks.clone();
        let fake = FakeAws::new(move |c| match c.operation.as_str() {
            "Firehose_20150804.DeleteDeliveryStream" => Answer::json(200, "{}"),
            "Firehose_20150804.DescribeDeliveryStream" => {
                if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    Answer::json(200, &deleting)
                } else {
                    Answer::error_json(400, "ResourceNotFoundException", "gone")
                }
            }
            "Firehose_20150804.ListTagsForDeliveryStream" => {
                Answer::json(200, r#"{"Tags":[],"HasMoreTags":false}"#)
            }
            _ => Answer::unexpected(),
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let result = delete(&Ctx::new(&clients, &progress), "s").await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            fake.operations(),
            [
                "Firehose_20150804.DeleteDeliveryStream",
                "Firehose_20150804.DescribeDeliveryStream",
                "Firehose_20150804.ListTagsForDeliveryStream",
                "Firehose_20150804.DescribeDeliveryStream"
            ]
        );
    }

    #[test]
    fn propagation_is_the_documented_conditions_only() {
        let e = |code: &str, message: &str| AwsError {
            action: "firehose:CreateDeliveryStream",
            resource: "s".into(),
            kind: crate::aws::ErrorKind::Service,
            code: Some(code.into()),
            message: message.into(),
        };
        assert!(propagating(&e(
            "InvalidArgumentException",
            "Firehose is unable to assume role arn:aws:iam::1:role/r. Please check the role provided."
        )));
        assert!(!propagating(&e(
            "InvalidArgumentException",
            "Bucket prefix is invalid"
        )));
        assert!(!propagating(&e(
            "ResourceInUseException",
            "Firehose is unable to assume role"
        )));
    }
}
