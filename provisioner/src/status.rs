//! `das-setup status`: every part of the pipeline checked and reported OK / WARN / FAIL (or
//! UNKNOWN when there is no data yet), with the reason. Read-only.
//!
//! Exit codes: 0 healthy (warnings too, unless `--strict`); 1 degraded: warnings with
//! `--strict`; 2 failing: at least one FAIL; 3 not deployed: none of das-setup's resources exist
//! and the activity stream is not running. Refusals (bad flags, no credentials) exit 2 too, with
//! `"health": "error"` in the JSON.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use serde_json::{Value, json};

use das_processor::config::var;

use crate::aws::{Clients, Named as _, found};
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs, StreamMode};
use crate::desired::{self, Database, Desired, Identity};
use crate::naming::{Names, TargetRef};
use crate::observe::{self, BucketState, DeliveryState, FunctionState, RoleState};
use crate::policy::PolicyError;
use crate::session::{self, Refusal, emit_json, kind_word, refuse};
use crate::settings::{KeyChoice, UpSettings};
use crate::stored;

pub const EXIT_HEALTHY: u8 = 0;
pub const EXIT_DEGRADED: u8 = 1;
pub const EXIT_FAILING: u8 = 2;
pub const EXIT_NOT_DEPLOYED: u8 = 3;

/// Kinesis keeps DAS records 24 h: an iterator this old is close to losing data.
const ITERATOR_AGE_FAIL: Duration = Duration::from_secs(12 * 3600);
const ITERATOR_AGE_WARN: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Unknown,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Unknown => "UNKNOWN",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
    }
}

/// `30s`, `10m`, `1h`, `2d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return None,
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

pub async fn run(global: &GlobalArgs, args: &StatusArgs) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let result = async {
        let target = session::target(&args.target)?;
        let since = parse_duration(&args.since).ok_or_else(|| {
            refuse(format!(
                "--since {:?}: expected a number and a unit, e.g. 30m, 1h, 2d",
                args.since
            ))
        })?;
        let clients = Clients::load(global).await;
        let (identity, database) = session::resolve(&clients, &target).await?;
        let (checks, deployed) =
            checks(&clients, &target, &identity, database.as_ref(), since).await?;
        Ok::<_, Refusal>((target, identity, checks, deployed))
    }
    .await;
    let (target, identity, checks, deployed) = match result {
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
    let worst = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    let (health, code) = if !deployed {
        ("not-deployed", EXIT_NOT_DEPLOYED)
    } else if worst == Level::Fail {
        ("failing", EXIT_FAILING)
    } else if worst == Level::Warn {
        (
            "degraded",
            if args.strict {
                EXIT_DEGRADED
            } else {
                EXIT_HEALTHY
            },
        )
    } else {
        ("healthy", EXIT_HEALTHY)
    };
    if json_out {
        emit_json(
            true,
            &json!({
                "command": "status",
                "target": {"kind": kind_word(target.kind), "id": target.id},
                "account": identity.account,
                "region": identity.region,
                "since": args.since,
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
            kind_word(target.kind),
            target.id,
            identity.region,
            identity.account,
            args.since
        );
        for c in &checks {
            crate::outln!("  {:<8} {:<20} {}", c.level.as_str(), c.name, c.detail);
        }
        let summary = match health {
            "not-deployed" => "not deployed: run `das-setup up`".to_owned(),
            "degraded" if !args.strict => {
                "degraded (warnings; --strict makes them exit 1)".to_owned()
            }
            other => other.to_owned(),
        };
        crate::outln!("{summary} (exit {code})");
    }
    code
}

/// What `up` would render for this database, bucket, prefix and key.
fn desired_for(
    target: &TargetRef,
    identity: &Identity,
    db: &Database,
    bucket: &str,
    prefix: &str,
    key_arn: &str,
) -> Result<Desired, PolicyError> {
    let settings = UpSettings {
        target: target.clone(),
        key: KeyChoice::Existing(key_arn.to_owned()),
        mode: StreamMode::Async,
        bucket: Some(bucket.to_owned()),
        prefix: prefix.to_owned(),
        filters: BTreeMap::new(),
        arch: crate::cli::Arch::Arm64,
        lambda_zip: None,
        retention_days: None,
        dry_run: true,
        yes: false,
    };
    Desired::new(&settings, identity, db, Some(key_arn), "")
}

async fn checks(
    clients: &Clients,
    target: &TargetRef,
    identity: &Identity,
    db: Option<&Database>,
    since: Duration,
) -> Result<(Vec<Check>, bool), Refusal> {
    let names = Names::new(target, &identity.account, &identity.region);
    let n = &names;
    let function = observe::function(clients, &n.function).await?;
    let delivery = observe::delivery(clients, &n.delivery_stream).await?;
    let processor_role = observe::role(clients, &n.processor_role, &n.role_policy).await?;
    let firehose_role = observe::role(clients, &n.firehose_role, &n.role_policy).await?;
    let (bucket, prefix) = observe::output_location(n, function.as_ref(), delivery.as_ref());
    let running = db.is_some_and(|d| matches!(d.stream.status.as_str(), "started" | "starting"));
    let deployed = running
        || function.is_some()
        || delivery.is_some()
        || processor_role.is_some()
        || firehose_role.is_some();
    let mut out = Vec::new();
    if !deployed {
        out.push(check(
            "deployment",
            Level::Fail,
            format!(
                "no activity stream running and none of das-setup's resources for {} {}",
                kind_word(target.kind),
                target.id
            ),
        ));
        return Ok((out, false));
    }

    // The database and its activity stream.
    let Some(db) = db else {
        out.push(check(
            "database",
            Level::Fail,
            format!(
                "no DB {} named {:?}: das-setup's resources remain (das-setup down removes them)",
                kind_word(target.kind),
                target.id
            ),
        ));
        return Ok((out, true));
    };
    let stream_name = format!("aws-rds-das-{}", db.resource_id);
    out.push(match db.stream.status.as_str() {
        "started" => check(
            "activity-stream",
            Level::Ok,
            format!("started, {} mode", db.stream.mode.as_deref().unwrap_or("?")),
        ),
        "starting" => check(
            "activity-stream",
            Level::Warn,
            "starting: events are not recorded yet",
        ),
        other => check(
            "activity-stream",
            Level::Fail,
            format!(
                "{other}: the database's activity is not being recorded (das-setup up starts it)"
            ),
        ),
    });
    // The stream's retention bounds how late a record can reach Firehose (24 h unless changed).
    let mut retention = Duration::from_secs(24 * 3600);
    if running {
        let summary = found(
            clients
                .kinesis
                .describe_stream_summary()
                .stream_name(&stream_name)
                .send()
                .await
                .named("kinesis:DescribeStreamSummary", &stream_name),
            &["ResourceNotFoundException"],
        )?;
        out.push(match summary.and_then(|s| s.stream_description_summary) {
            Some(s) => {
                retention = Duration::from_secs(
                    u64::try_from(s.retention_period_hours()).unwrap_or(24) * 3600,
                );
                let status = s.stream_status().as_str().to_owned();
                let level = if status == "ACTIVE" {
                    Level::Ok
                } else {
                    Level::Warn
                };
                check(
                    "kinesis-stream",
                    level,
                    format!(
                        "{stream_name}: {status}, {} shard(s), {} h retention",
                        s.open_shard_count(),
                        s.retention_period_hours()
                    ),
                )
            }
            None => check(
                "kinesis-stream",
                Level::Fail,
                format!("{stream_name} does not exist"),
            ),
        });
    }

    // What `up` would set, to compare with.
    let key_arn = match &db.stream.kms_key {
        Some(k) => observe::key(clients, k).await?.map(|k| k.arn),
        None => None,
    };
    let want = match &key_arn {
        Some(key) => Some(
            desired_for(target, identity, db, &bucket, &prefix, key)
                .map_err(|e| refuse(e.to_string()))?,
        ),
        None => None,
    };

    out.push(function_check(function.as_ref(), want.as_ref(), n));
    out.push(delivery_check(
        delivery.as_ref(),
        want.as_ref(),
        &n.delivery_stream,
    ));
    for (name, role, trust, policy) in [
        (
            "processor-role",
            &processor_role,
            want.as_ref().map(|d| &d.documents.processor_trust),
            want.as_ref().map(|d| &d.documents.processor_policy),
        ),
        (
            "firehose-role",
            &firehose_role,
            want.as_ref().map(|d| &d.documents.firehose_trust),
            want.as_ref().map(|d| &d.documents.firehose_policy),
        ),
    ] {
        out.push(role_check(name, role.as_ref(), trust, policy));
    }
    for (name, group) in [
        ("function-logs", &n.lambda_log_group),
        ("firehose-logs", &n.firehose_log_group),
    ] {
        out.push(match observe::log_group(clients, group, None).await? {
            Some(g) => check(
                name,
                Level::Ok,
                format!(
                    "{group}, retention {}",
                    g.retention_days
                        .map_or("none".to_owned(), |d| format!("{d} days"))
                ),
            ),
            None => check(
                name,
                Level::Warn,
                format!("{group} does not exist: logs are not kept"),
            ),
        });
    }

    // The bucket, its settings and what arrived in it.
    let bucket_state = observe::bucket(clients, &bucket).await?;
    match &bucket_state {
        BucketState::Missing => out.push(check(
            "bucket",
            Level::Fail,
            format!("{bucket} does not exist"),
        )),
        BucketState::Foreign => out.push(check(
            "bucket",
            Level::Fail,
            format!("{bucket} is not accessible to this account"),
        )),
        BucketState::Present(b) => {
            let mut missing = Vec::new();
            if !b.public_access_blocked {
                missing.push("public access block");
            }
            if !b.versioning_enabled {
                missing.push("versioning");
            }
            if b.encryption.is_none() {
                missing.push("default encryption");
            }
            if want
                .as_ref()
                .is_some_and(|d| b.policy.as_ref() != Some(&d.documents.bucket_policy))
            {
                missing.push("TLS-only bucket policy");
            }
            out.push(if missing.is_empty() {
                check(
                    "bucket",
                    Level::Ok,
                    format!("{bucket}: private, encrypted, versioned, TLS only"),
                )
            } else {
                check(
                    "bucket",
                    Level::Warn,
                    format!(
                        "{bucket}: missing {} (das-setup up restores them)",
                        missing.join(", ")
                    ),
                )
            });
            out.extend(freshness(clients, &bucket, &prefix, since, retention).await?);
        }
    }
    out.extend(
        metrics(
            clients,
            &stream_name,
            &n.delivery_stream,
            &n.function,
            since,
        )
        .await,
    );
    Ok((out, true))
}

fn function_check(f: Option<&FunctionState>, want: Option<&Desired>, n: &Names) -> Check {
    let Some(f) = f else {
        return check(
            "function",
            Level::Fail,
            format!("{} does not exist: records cannot be processed", n.function),
        );
    };
    if f.state == "Failed" || f.last_update_status == "Failed" {
        return check(
            "function",
            Level::Fail,
            format!(
                "{}: state {}, last update {}",
                n.function, f.state, f.last_update_status
            ),
        );
    }
    if !f.state.is_empty() && f.state != "Active" {
        return check(
            "function",
            Level::Warn,
            format!("{}: state {}", n.function, f.state),
        );
    }
    let mut differs = Vec::new();
    if f.runtime != desired::RUNTIME {
        differs.push(format!("runtime {}", f.runtime));
    }
    if f.handler != desired::HANDLER {
        differs.push(format!("handler {}", f.handler));
    }
    if f.memory_mb != desired::MEMORY_MB {
        differs.push(format!("memory {} MB", f.memory_mb));
    }
    if f.timeout_seconds != desired::TIMEOUT_SECONDS {
        differs.push(format!("timeout {} s", f.timeout_seconds));
    }
    if let Some(d) = want
        && f.role_arn != d.processor_role_arn
    {
        differs.push(format!("role {}", f.role_arn));
    }
    if !f.environment.contains_key(var::OUTPUT_BUCKET) {
        differs.push("no DAS_OUTPUT_BUCKET".to_owned());
    }
    if differs.is_empty() {
        check(
            "function",
            Level::Ok,
            format!("{}: Active, {}, {}", n.function, f.runtime, f.arch),
        )
    } else {
        check(
            "function",
            Level::Warn,
            format!(
                "{}: differs from what up sets: {} (das-setup up restores it)",
                n.function,
                differs.join(", ")
            ),
        )
    }
}

fn delivery_check(s: Option<&DeliveryState>, want: Option<&Desired>, name: &str) -> Check {
    let Some(s) = s else {
        return check(
            "delivery-stream",
            Level::Fail,
            format!("{name} does not exist: nothing reads the activity stream"),
        );
    };
    if s.status != "ACTIVE" {
        return check(
            "delivery-stream",
            Level::Fail,
            format!(
                "{name}: {}{}",
                s.status,
                s.failure
                    .as_ref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            ),
        );
    }
    if let Some(f) = &s.failure {
        return check("delivery-stream", Level::Fail, format!("{name}: {f}"));
    }
    if let Some(d) = want {
        if s.source_stream_arn.as_deref() != Some(&d.delivery.source_stream_arn) {
            return check(
                "delivery-stream",
                Level::Fail,
                format!(
                    "{name} reads {}, not this database's stream (das-setup up replaces it)",
                    s.source_stream_arn.as_deref().unwrap_or("nothing")
                ),
            );
        }
        if s.destination.as_ref().map(|x| x.lambda_arn.as_str()) != Some(d.function_arn.as_str()) {
            return check(
                "delivery-stream",
                Level::Fail,
                format!("{name} does not invoke {}", d.names.function),
            );
        }
    }
    check("delivery-stream", Level::Ok, format!("{name}: ACTIVE"))
}

fn role_check(
    name: &'static str,
    role: Option<&RoleState>,
    trust: Option<&Value>,
    policy: Option<&Value>,
) -> Check {
    let Some(role) = role else {
        return check(name, Level::Fail, "does not exist");
    };
    let role_name = role.arn.rsplit('/').next().unwrap_or(&role.arn).to_owned();
    if role.policy.is_none() {
        return check(
            name,
            Level::Fail,
            format!("{role_name}: its permissions policy is missing"),
        );
    }
    let mut differs = Vec::new();
    if trust.is_some_and(|t| role.trust.as_ref() != Some(t)) {
        differs.push("trust policy");
    }
    if policy.is_some_and(|p| role.policy.as_ref() != Some(p)) {
        differs.push("permissions policy");
    }
    if differs.is_empty() {
        check(name, Level::Ok, role_name)
    } else {
        check(
            name,
            Level::Warn,
            format!(
                "{role_name}: {} differs from what up sets",
                differs.join(" and ")
            ),
        )
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
    let now = now_millis();
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

/// CloudWatch: iterator age against the 24 h retention, Firehose processing and delivery, Lambda
/// errors and throttles. No data is UNKNOWN, not a failure (metrics arrive every 1-5 minutes).
async fn metrics(
    clients: &Clients,
    stream: &str,
    delivery: &str,
    function: &str,
    since: Duration,
) -> Vec<Check> {
    let query = |id: &str, namespace: &str, metric: &str, dim: (&str, &str), stat: &str| {
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace(namespace)
                            .metric_name(metric)
                            .dimensions(Dimension::builder().name(dim.0).value(dim.1).build())
                            .build(),
                    )
                    .period(300)
                    .stat(stat)
                    .build(),
            )
            .build()
    };
    let now = SystemTime::now();
    let start = now - since;
    let result = clients
        .cloudwatch
        .get_metric_data()
        .start_time(start.into())
        .end_time(now.into())
        .metric_data_queries(query(
            "iterator",
            "AWS/Kinesis",
            "GetRecords.IteratorAgeMilliseconds",
            ("StreamName", stream),
            "Maximum",
        ))
        .metric_data_queries(query(
            "processing",
            "AWS/Firehose",
            "ExecuteProcessing.Success",
            ("DeliveryStreamName", delivery),
            "Average",
        ))
        .metric_data_queries(query(
            "delivery",
            "AWS/Firehose",
            "DeliveryToS3.Success",
            ("DeliveryStreamName", delivery),
            "Average",
        ))
        .metric_data_queries(query(
            "errors",
            "AWS/Lambda",
            "Errors",
            ("FunctionName", function),
            "Sum",
        ))
        .metric_data_queries(query(
            "throttles",
            "AWS/Lambda",
            "Throttles",
            ("FunctionName", function),
            "Sum",
        ))
        .send()
        .await
        .named("cloudwatch:GetMetricData", "the pipeline's metrics");
    let values: BTreeMap<String, Vec<f64>> = match result {
        Ok(out) => out
            .metric_data_results()
            .iter()
            .map(|r| (r.id().unwrap_or_default().to_owned(), r.values().to_vec()))
            .collect(),
        Err(e) => {
            let why = e
                .code
                .clone()
                .unwrap_or_else(|| "the answer was not CloudWatch's".into());
            return vec![check(
                "metrics",
                Level::Unknown,
                format!("cloudwatch:GetMetricData not available ({why})"),
            )];
        }
    };
    let get = |id: &str| values.get(id).filter(|v| !v.is_empty());
    let none = |name: &'static str| check(name, Level::Unknown, "no data points in the window yet");
    let mut out = Vec::new();
    out.push(
        match get("iterator").and_then(|v| v.iter().copied().reduce(f64::max)) {
            None => none("iterator-age"),
            Some(ms) => {
                let age = Duration::from_millis(ms.max(0.0) as u64);
                let text = format!(
                    "oldest unread record {} old (Kinesis keeps 24 h)",
                    crate::progress::seconds(age)
                );
                if age >= ITERATOR_AGE_FAIL {
                    check("iterator-age", Level::Fail, text)
                } else if age >= ITERATOR_AGE_WARN {
                    check("iterator-age", Level::Warn, text)
                } else {
                    check("iterator-age", Level::Ok, text)
                }
            }
        },
    );
    for (id, name, what) in [
        ("processing", "firehose-processing", "processing success"),
        ("delivery", "firehose-delivery", "delivery to S3 success"),
    ] {
        out.push(match get(id) {
            None => none(name),
            Some(v) => {
                let low = v.iter().copied().fold(f64::INFINITY, f64::min);
                if low < 1.0 {
                    check(
                        name,
                        Level::Warn,
                        format!("{what} fell to {:.0}% in the window", low * 100.0),
                    )
                } else {
                    check(name, Level::Ok, format!("{what} 100%"))
                }
            }
        });
    }
    for (id, name) in [
        ("errors", "function-errors"),
        ("throttles", "function-throttles"),
    ] {
        out.push(match get(id) {
            None => none(name),
            Some(v) => {
                let total: f64 = v.iter().sum();
                if total > 0.0 {
                    check(
                        name,
                        Level::Warn,
                        format!("{total:.0} in the window (Firehose retries them)"),
                    )
                } else {
                    check(name, Level::Ok, "none")
                }
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        for bad in ["", "h", "0m", "5", "5 m", "1w", "-1h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
