//! `das-setup status`: every part of the pipeline checked and reported OK / WARN / FAIL (or
//! UNKNOWN when there is no data yet), with the reason. Read-only.
//!
//! Each resource checks itself (`resource::*::check`, named after the resource); this module
//! adds what no single resource tells: the Kinesis stream RDS made, whether events were written
//! in the window, failed records, and CloudWatch's metrics.
//!
//! Exit codes: 0 healthy (warnings too, unless `--strict`); 1 degraded: warnings with
//! `--strict`; 2 failing: at least one FAIL; 3 not deployed: none of das-setup's resources exist
//! and the activity stream is not running. Refusals (bad flags, no credentials) exit 2 too, with
//! `"health": "error"` in the JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kinesis::operation::describe_stream_summary::DescribeStreamSummaryError;
use aws_sdk_kinesis::types::StreamStatus;
use serde_json::json;

use crate::aws::{Clients, Named as _};
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs, StreamMode};
use crate::database::Database;
use crate::deployment::{self, Deployment};
use crate::desired::{Desired, Identity};
use crate::metrics;
use crate::naming::{Names, TargetRef};
use crate::policy::PolicyError;
use crate::resource::bucket::{self, BucketState};
use crate::resource::key::{self, KeyPurpose, KeyState};
use crate::resource::log_group::{self, LogGroupSpec};
use crate::resource::role::{self, RoleSpec};
use crate::resource::{
    Check, Level, Resource, activity_stream, alarms, catalog, delivery_stream, function, topic,
    workgroup,
};
use crate::session::{self, Refusal, emit_json, kind_word, refuse};
use crate::settings::{KeyChoice, StatusSettings, UpSettings};
use crate::stored;

pub const EXIT_HEALTHY: u8 = 0;
pub const EXIT_DEGRADED: u8 = 1;
pub const EXIT_FAILING: u8 = 2;
pub const EXIT_NOT_DEPLOYED: u8 = 3;

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check::new(name, level, detail)
}

pub async fn run(global: &GlobalArgs, args: &StatusArgs) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let result = async {
        let settings = StatusSettings::from_args(args)?;
        let clients = Clients::load(global).await;
        let (identity, database) = session::resolve(&clients, &settings.target).await?;
        let (checks, deployed) = checks(
            &clients,
            &settings.target,
            &identity,
            database.as_ref(),
            settings.since,
        )
        .await?;
        Ok::<_, Refusal>((settings, identity, checks, deployed))
    }
    .await;
    let (settings, identity, checks, deployed) = match result {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("das-setup status: {e}");
            emit_json(
                json_out,
                &json!({"command": "status", "health": "error", "exitCode": session::EXIT_REFUSED, "error": e.to_string()}),
            );
            return session::EXIT_REFUSED;
        }
    };
    let health = verdict(&checks, deployed);
    let code = match health {
        "not-deployed" => EXIT_NOT_DEPLOYED,
        "failing" => EXIT_FAILING,
        "degraded" if settings.strict => EXIT_DEGRADED,
        _ => EXIT_HEALTHY,
    };
    if json_out {
        emit_json(
            true,
            &json!({
                "command": "status",
                "target": {"kind": kind_word(settings.target.kind), "id": settings.target.id},
                "account": identity.account,
                "region": identity.region,
                "since": settings.since_text,
                "health": health,
                "exitCode": code,
                "checks": checks.iter().map(|c| json!({
                    "check": c.name, "status": c.level.as_str(), "detail": c.detail,
                })).collect::<Vec<_>>(),
            }),
        );
    } else {
        crate::outln!(
            "das-setup status: {} {} in {}, account {} (window {})",
            kind_word(settings.target.kind),
            settings.target.id,
            identity.region,
            identity.account,
            settings.since_text
        );
        for c in &checks {
            crate::outln!("  {:<8} {:<20} {}", c.level.as_str(), c.name, c.detail);
        }
        let summary = match health {
            "not-deployed" => "not deployed: run `das-setup up`".to_owned(),
            "degraded" if !settings.strict => {
                "degraded (warnings; --strict makes them exit 1)".to_owned()
            }
            other => other.to_owned(),
        };
        crate::outln!("{summary} (exit {code})");
    }
    code
}

/// The deployed function publishes alerts.
fn alerting(o: &Deployment) -> bool {
    o.function.as_ref().is_some_and(|f| {
        f.environment
            .contains_key(das_processor::config::var::ALERT_TOPIC_ARN)
    })
}

/// What `up` would render for this database, the deployment's bucket and prefix, and the key.
fn desired_for(
    target: &TargetRef,
    identity: &Identity,
    db: &Database,
    o: &Deployment,
    key_arn: &str,
) -> Result<Desired, PolicyError> {
    let settings = UpSettings {
        target: target.clone(),
        key: KeyChoice::Existing(key_arn.to_owned()),
        mode: StreamMode::Async,
        audit_policy: None,
        bucket: Some(o.bucket_name.clone()),
        prefix: o.prefix(&target.id),
        filters: BTreeMap::new(),
        arch: crate::cli::Arch::Arm64,
        lambda_zip: None,
        retention: crate::retention::Retention::default(),
        object_lock: None,
        keep_raw: false,
        // The deployed function's rules are in its zip; what the policy and environment
        // depend on is only whether there are any.
        alerts: alerting(o).then(|| crate::settings::AlertSettings {
            rules_json: String::new(),
            rule_names: Vec::new(),
            email: None,
            security_hub: o.function.as_ref().is_some_and(|f| {
                f.environment
                    .contains_key(das_processor::config::var::SECURITY_HUB_DATABASE_ARN)
            }),
            // Whether the metric is on is all the function's environment depends on (the
            // alarm's hours are the alarm's, which status reads from CloudWatch).
            no_events_hours: o
                .function
                .as_ref()
                .is_some_and(|f| {
                    f.environment
                        .contains_key(das_processor::config::var::EVENTS_METRIC)
                })
                .then_some(1),
        }),
        dry_run: true,
        yes: false,
    };
    let mut d = Desired::new(&settings, identity, db, Some(key_arn), "")?;
    if let Some(k) = &o.signing_key {
        d.set_key(KeyPurpose::Digests, &k.arn, false)?;
    }
    Ok(d)
}

/// The activity stream's Kinesis stream (RDS's, not das-setup's); its retention bounds how
/// late a record can reach Firehose.
async fn kinesis(clients: &Clients, name: &str) -> Result<(Check, Option<Duration>), Refusal> {
    let summary = clients
        .kinesis
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .or_absent("kinesis:DescribeStreamSummary", name, |e| {
            matches!(e, DescribeStreamSummaryError::ResourceNotFoundException(_))
        })?;
    Ok(match summary.and_then(|s| s.stream_description_summary) {
        Some(s) => {
            let hours = s.retention_period_hours();
            let level = if *s.stream_status() == StreamStatus::Active {
                Level::Ok
            } else {
                Level::Warn
            };
            (
                check(
                    "kinesis-stream",
                    level,
                    format!(
                        "{name}: {}, {} shard(s), {hours} h retention",
                        s.stream_status().as_str(),
                        s.open_shard_count()
                    ),
                ),
                Some(Duration::from_secs(
                    u64::try_from(hours).unwrap_or(24) * 3600,
                )),
            )
        }
        None => (
            check(
                "kinesis-stream",
                Level::Fail,
                format!("{name} does not exist"),
            ),
            None,
        ),
    })
}

/// The check of each resource, in the vocabulary's order.
fn resource_checks(
    db: &Database,
    stream_key: Option<&KeyState>,
    names: &Names,
    o: &Deployment,
    want: Option<&Desired>,
) -> Vec<Check> {
    Resource::ALL
        .into_iter()
        .map(|resource| match resource {
            Resource::Key => key::check(db.stream.kms_key.as_deref(), stream_key),
            Resource::SigningKey => key::digest_check(
                &names.digest_key_alias,
                o.signing_key.as_ref(),
                o.function
                    .as_ref()
                    .and_then(|f| f.environment.get(das_processor::config::var::DIGEST_KEY))
                    .map(String::as_str),
            ),
            Resource::ActivityStream => activity_stream::check(db),
            Resource::Bucket => bucket::check(&o.bucket_name, &o.bucket, want),
            Resource::AlertsTopic => topic::check(
                &names.alerts_topic_arn,
                o.alerts_topic.as_ref(),
                o.function
                    .as_ref()
                    .and_then(|f| {
                        f.environment
                            .get(das_processor::config::var::ALERT_TOPIC_ARN)
                    })
                    .map(String::as_str),
            ),
            Resource::Alarms => alarms::check(
                names,
                &o.alarms,
                o.function.as_ref().is_some_and(|f| {
                    f.environment
                        .contains_key(das_processor::config::var::ALERT_TOPIC_ARN)
                }),
            ),
            Resource::ProcessorRole => role::check(
                resource,
                o.processor_role.as_ref(),
                want.map(RoleSpec::processor),
            ),
            Resource::FirehoseRole => role::check(
                resource,
                o.firehose_role.as_ref(),
                want.map(RoleSpec::firehose),
            ),
            Resource::FunctionLogGroup => {
                log_group::check(LogGroupSpec::function(names), o.function_logs.as_ref())
            }
            Resource::FirehoseLogGroup => {
                log_group::check(LogGroupSpec::firehose(names), o.firehose_logs.as_ref())
            }
            Resource::Function => function::check(&names.function, o.function.as_ref(), want),
            Resource::DeliveryStream => {
                delivery_stream::check(&names.delivery_stream, o.delivery.as_ref(), want)
            }
            Resource::GlueTable => catalog::check(
                &format!("{}.{}", names.glue_database, crate::query::table::TABLE),
                o.catalog.as_ref(),
                &o.bucket_name,
                &o.prefix(&db.id),
            ),
            Resource::Workgroup => {
                workgroup::check(names, o.workgroup.as_ref(), &o.bucket_name, &db.id)
            }
        })
        .collect()
}

/// The deployment's health from its checks: `not-deployed`, `failing` (a FAIL), `degraded` (a
/// WARN) or `healthy`; `status` and `report` say it alike.
pub(crate) fn verdict(checks: &[Check], deployed: bool) -> &'static str {
    match checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok) {
        _ if !deployed => "not-deployed",
        Level::Fail => "failing",
        Level::Warn => "degraded",
        Level::Ok | Level::Unknown => "healthy",
    }
}

pub(crate) async fn checks(
    clients: &Clients,
    target: &TargetRef,
    identity: &Identity,
    db: Option<&Database>,
    since: Duration,
) -> Result<(Vec<Check>, bool), Refusal> {
    let names = Names::new(target, &identity.account, &identity.region);
    let o = deployment::observe(clients, &names, None).await?;
    let running = db.is_some_and(|d| d.stream.running());
    let deployed = running || o.any();
    if !deployed {
        let detail = format!(
            "no activity stream running and none of das-setup's resources for {} {}",
            kind_word(target.kind),
            target.id
        );
        return Ok((vec![check("deployment", Level::Fail, detail)], false));
    }
    let Some(db) = db else {
        let detail = format!(
            "no DB {} named {:?}: das-setup's resources remain (das-setup down removes them)",
            kind_word(target.kind),
            target.id
        );
        return Ok((vec![check("database", Level::Fail, detail)], true));
    };
    // What `up` would set, to compare with (when the stream's key is known).
    // The stream's key, read once: its own check, and the policies `up` would render.
    let stream_key = match db.stream.kms_key.as_deref() {
        Some(key) => key::observe(clients, key).await?,
        None => None,
    };
    let want = match &stream_key {
        Some(k) => {
            Some(desired_for(target, identity, db, &o, &k.arn).map_err(|e| refuse(e.to_string()))?)
        }
        None => None,
    };
    let mut out = resource_checks(db, stream_key.as_ref(), &names, &o, want.as_ref());
    // The stream's retention bounds how late a record can reach Firehose (24 h unless changed).
    let mut retention = Duration::from_secs(24 * 3600);
    let stream_name = db.stream_name();
    if running {
        let (kinesis, hours) = kinesis(clients, &stream_name).await?;
        retention = hours.unwrap_or(retention);
        let at = out
            .iter()
            .position(|c| c.name == Resource::ActivityStream.as_str())
            .map_or(out.len(), |i| i + 1);
        out.insert(at, kinesis);
    }
    if matches!(o.bucket, BucketState::Present(_)) {
        out.extend(
            freshness(
                clients,
                &o.bucket_name,
                &o.prefix(&target.id),
                since,
                retention,
            )
            .await?,
        );
    }
    out.extend(metrics::checks(clients, &names.delivery_stream, &names.function, since).await);
    Ok((out, true))
}

/// Event objects written in the window (read off the processor's manifests, so whatever hour
/// folder their events went to) and failed records under `errors/` in the window.
async fn freshness(
    clients: &Clients,
    bucket: &str,
    prefix: &str,
    since: Duration,
    retention: Duration,
) -> Result<Vec<Check>, Refusal> {
    let now = crate::session::now_millis();
    let window_start = now - i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
    let window = crate::progress::seconds(since);
    let written = stored::written(&clients.s3, bucket, prefix, window_start).await?;
    let freshness = match written.newest_millis {
        Some(t) => check(
            "freshness",
            Level::Ok,
            format!(
                "{} batch(es) of events written under s3://{bucket}/{prefix} in the last {window}, newest {} ago",
                written.batches,
                crate::progress::seconds(Duration::from_millis(
                    u64::try_from(now - t).unwrap_or(0)
                ))
            ),
        ),
        None => check(
            "freshness",
            Level::Warn,
            format!(
                "no events stored under s3://{bucket}/{prefix} in the last {window} (an idle database looks the same)"
            ),
        ),
    };
    // Firehose keeps retrying a record for up to 24 hours after it read it.
    let lookback = retention + Duration::from_secs(24 * 3600);
    let errors = stored::failed(&clients.s3, bucket, window_start, lookback).await?;
    let failed = if errors == 0 {
        check(
            "failed-records",
            Level::Ok,
            format!("none under s3://{bucket}/errors/ in the last {window}"),
        )
    } else {
        check(
            "failed-records",
            Level::Warn,
            format!(
                "{errors} object(s) under s3://{bucket}/errors/ in the last {window}: records the processor could not process or Firehose could not deliver"
            ),
        )
    };
    Ok(vec![freshness, failed])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    #[tokio::test]
    async fn a_missing_kinesis_stream_fails_from_the_modelled_error() {
        let fake = FakeAws::new(|_| {
            Answer::error_json(400, "ResourceNotFoundException", "Stream s not found")
        });
        let (check, retention) = kinesis(&fake.clients(), "s").await.unwrap();
        assert_eq!((check.name, check.level), ("kinesis-stream", Level::Fail));
        assert_eq!(retention, None);
    }
}
