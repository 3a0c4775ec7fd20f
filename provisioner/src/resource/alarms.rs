//! The pipeline's CloudWatch alarms (`up --alerts default` / `--alert-rules FILE`): one alarm
//! `das-setup-<name>-<signal>` per [`Signal`], each notifying the alerts topic when it goes to
//! ALARM and when it is OK again, tagged as das-setup's.
//!
//! The topic is encrypted with the activity stream's key, and CloudWatch can publish to an
//! encrypted topic only when the key's policy lets `cloudwatch.amazonaws.com` use the key
//! (`kms:Decrypt`, `kms:GenerateDataKey*`; SNS Developer Guide, "Enable compatibility between
//! event sources from AWS services and encrypted topics"); without it every notification is
//! dropped, silently. So this resource also owns that one statement
//! (`policies/key-policy-cloudwatch.json`, limited to this deployment's alarms by
//! `aws:SourceAccount` and `aws:SourceArn`): added to das-setup's own key with
//! `GetKeyPolicy` then `PutKeyPolicy` (the rest of the policy kept as found), and removed by
//! `down` when the key stays. A key given with `--kms-key` is the user's: the plan says what to
//! add, and `status` warns.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricAlarm, Statistic, Tag};
use serde_json::Value;

use super::{Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict};
use crate::aws::{AwsError, Clients, Named as _};
use crate::desired::Desired;
use crate::naming::Names;
use crate::policy::{self, Template, Values};

/// The one key policy KMS knows (GetKeyPolicy API reference, `PolicyName`).
const POLICY_NAME: &str = "default";

/// What each alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    ReadLag,
    ProcessingFailures,
    DeliveryFailures,
    LambdaErrors,
    LambdaThrottles,
    /// `--no-events-alarm HOURS` only.
    NoEvents,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::ReadLag,
        Signal::ProcessingFailures,
        Signal::DeliveryFailures,
        Signal::LambdaErrors,
        Signal::LambdaThrottles,
        Signal::NoEvents,
    ];

    /// The alarms every deployment with alerts has.
    pub fn always(self) -> bool {
        self != Signal::NoEvents
    }

    /// The alarm name's suffix: a documented interface (README, "Alerts").
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::ReadLag => "read-lag",
            Signal::ProcessingFailures => "processing-failures",
            Signal::DeliveryFailures => "delivery-failures",
            Signal::LambdaErrors => "lambda-errors",
            Signal::LambdaThrottles => "lambda-throttles",
            Signal::NoEvents => "no-events",
        }
    }
}

/// An alarm's settings, as `PutMetricAlarm` takes them and `DescribeAlarms` gives them back.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmConfig {
    pub description: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub statistic: String,
    pub period: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: Option<i32>,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
}

/// Read lag that starts to matter: Kinesis keeps DAS records 24 h, and `status` warns at 1 h.
pub const READ_LAG_THRESHOLD_MS: f64 = 3_600_000.0;

/// The alarms `up` wants, in [`Signal`] order, each notifying `topic_arn`. The metrics are the
/// ones `status` reads (`metrics.rs`): the delivery stream's read lag
/// (`KinesisMillisBehindLatest`, Maximum over 3 periods of 5 minutes, missing data left
/// INSUFFICIENT_DATA), its processing and delivery success (`ExecuteProcessing.Success`,
/// `DeliveryToS3.Success`: 1 when all went well, so an Average under 1 is a failure), and the
/// function's `Errors` and `Throttles` (any in 5 minutes). Periods without data are not
/// failures there: an idle pipeline is not a broken one.
///
/// `no_events_hours`: also `no-events`, on the function's own metric (`das-setup` /
/// `EventsStored`, which it logs in CloudWatch's embedded metric format): a Sum under 1 over each
/// of that many hourly periods, missing data breaching (no invocation at all stores nothing
/// either).
pub fn desired(
    names: &Names,
    topic_arn: &str,
    no_events_hours: Option<u32>,
) -> Vec<(Signal, String, AlarmConfig)> {
    Signal::ALL
        .into_iter()
        .filter(|s| s.always() || no_events_hours.is_some())
        .map(|signal| {
            let (namespace, metric, dimension, value, statistic) = match signal {
                Signal::ReadLag => (
                    "AWS/Firehose",
                    "KinesisMillisBehindLatest",
                    "DeliveryStreamName",
                    &names.delivery_stream,
                    "Maximum",
                ),
                Signal::ProcessingFailures => (
                    "AWS/Firehose",
                    "ExecuteProcessing.Success",
                    "DeliveryStreamName",
                    &names.delivery_stream,
                    "Average",
                ),
                Signal::DeliveryFailures => (
                    "AWS/Firehose",
                    "DeliveryToS3.Success",
                    "DeliveryStreamName",
                    &names.delivery_stream,
                    "Average",
                ),
                Signal::LambdaErrors => (
                    "AWS/Lambda",
                    "Errors",
                    "FunctionName",
                    &names.function,
                    "Sum",
                ),
                Signal::LambdaThrottles => (
                    "AWS/Lambda",
                    "Throttles",
                    "FunctionName",
                    &names.function,
                    "Sum",
                ),
                Signal::NoEvents => (
                    das_processor::emf::NAMESPACE,
                    das_processor::emf::EVENTS_STORED,
                    das_processor::emf::DIMENSION,
                    &names.function,
                    "Sum",
                ),
            };
            let (evaluation_periods, threshold, comparison, missing, what) = match signal {
                Signal::ReadLag => (
                    3,
                    READ_LAG_THRESHOLD_MS,
                    ComparisonOperator::GreaterThanThreshold,
                    "missing",
                    "Firehose's read of the activity stream is over an hour behind for 15 minutes; \
                     records older than the stream's 24 h retention are lost",
                ),
                Signal::ProcessingFailures => (
                    1,
                    1.0,
                    ComparisonOperator::LessThanThreshold,
                    "notBreaching",
                    "Firehose could not process records with the function; they go to the \
                     bucket's error prefix",
                ),
                Signal::DeliveryFailures => (
                    1,
                    1.0,
                    ComparisonOperator::LessThanThreshold,
                    "notBreaching",
                    "Firehose could not deliver to the bucket; it retries, then writes under \
                     the error prefix",
                ),
                Signal::LambdaErrors => (
                    1,
                    0.0,
                    ComparisonOperator::GreaterThanThreshold,
                    "notBreaching",
                    "the processor function failed invocations; Firehose retries them",
                ),
                Signal::LambdaThrottles => (
                    1,
                    0.0,
                    ComparisonOperator::GreaterThanThreshold,
                    "notBreaching",
                    "the processor function was throttled; the read lag grows",
                ),
                Signal::NoEvents => (
                    i32::try_from(no_events_hours.unwrap_or(1)).unwrap_or(1),
                    1.0,
                    ComparisonOperator::LessThanThreshold,
                    "breaching",
                    "no activity event was stored in the last hours: the database is idle, \
                     or the pipeline stopped",
                ),
            };
            let period = if signal == Signal::NoEvents {
                3600
            } else {
                300
            };
            let config = AlarmConfig {
                description: format!(
                    "das-setup: {what}. See das-setup status (README, \"Alerts\")."
                ),
                namespace: namespace.to_owned(),
                metric: metric.to_owned(),
                dimensions: vec![(dimension.to_owned(), value.clone())],
                statistic: statistic.to_owned(),
                period,
                evaluation_periods,
                datapoints_to_alarm: None,
                threshold,
                comparison: comparison.as_str().to_owned(),
                treat_missing_data: missing.to_owned(),
                actions_enabled: true,
                alarm_actions: vec![topic_arn.to_owned()],
                ok_actions: vec![topic_arn.to_owned()],
            };
            (signal, alarm_name(names, signal), config)
        })
        .collect()
}

pub fn alarm_name(names: &Names, signal: Signal) -> String {
    format!("{}{}", names.alarm_prefix, signal.as_str())
}

/// One alarm as found.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmState {
    pub signal: Signal,
    pub name: String,
    pub arn: String,
    /// OK, ALARM or INSUFFICIENT_DATA, and CloudWatch's reason.
    pub state: String,
    pub reason: String,
    pub config: AlarmConfig,
    pub tags: BTreeMap<String, String>,
}

/// das-setup's own stream key (the one behind its alias) and its policy.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPolicyState {
    pub key_arn: String,
    pub policy: Value,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlarmsState {
    pub alarms: Vec<AlarmState>,
    /// `None`: das-setup has no stream key of its own (none yet, or `--kms-key`).
    pub own_key: Option<KeyPolicyState>,
}

impl AlarmsState {
    fn get(&self, signal: Signal) -> Option<&AlarmState> {
        self.alarms.iter().find(|a| a.signal == signal)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlarmsChange {
    /// The key policy statement that lets CloudWatch notify the encrypted topic.
    KeyPolicy,
    /// `PutMetricAlarm` for every alarm (none exists).
    Create,
    /// `PutMetricAlarm` for the alarms missing or differing.
    Configure,
    /// `DeleteAlarms` for an optional alarm no longer asked for (`no-events`).
    Remove,
}

impl fmt::Display for AlarmsChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlarmsChange::KeyPolicy => "key policy: CloudWatch may use the key for the topic",
            AlarmsChange::Create => "create alarms",
            AlarmsChange::Configure => "alarm settings",
            AlarmsChange::Remove => "remove the no-events alarm",
        })
    }
}

impl Change for AlarmsChange {
    fn effect(self) -> Effect {
        match self {
            AlarmsChange::Create => Effect::Create,
            AlarmsChange::KeyPolicy | AlarmsChange::Configure | AlarmsChange::Remove => {
                Effect::Update
            }
        }
    }
}

fn from_sdk(a: &MetricAlarm) -> AlarmConfig {
    AlarmConfig {
        description: a.alarm_description().unwrap_or_default().to_owned(),
        namespace: a.namespace().unwrap_or_default().to_owned(),
        metric: a.metric_name().unwrap_or_default().to_owned(),
        dimensions: a
            .dimensions()
            .iter()
            .map(|d| {
                (
                    d.name().unwrap_or_default().to_owned(),
                    d.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        statistic: a
            .statistic()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        period: a.period().unwrap_or_default(),
        evaluation_periods: a.evaluation_periods().unwrap_or_default(),
        datapoints_to_alarm: a.datapoints_to_alarm(),
        threshold: a.threshold().unwrap_or_default(),
        comparison: a
            .comparison_operator()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        // "missing" is CloudWatch's default when the alarm was put without it.
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").to_owned(),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: a.alarm_actions().to_vec(),
        ok_actions: a.ok_actions().to_vec(),
    }
}

/// The alarms of `names` (one `DescribeAlarms` naming them all, then their tags), and
/// das-setup's own stream key with its policy.
pub async fn observe(clients: &Clients, names: &Names) -> Result<AlarmsState, AwsError> {
    let wanted: Vec<(Signal, String)> = Signal::ALL
        .into_iter()
        .map(|s| (s, alarm_name(names, s)))
        .collect();
    let what = format!("alarms {}*", names.alarm_prefix);
    let found = clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(wanted.iter().map(|(_, n)| n.clone()).collect()))
        .send()
        .await
        .named("cloudwatch:DescribeAlarms", &what)?;
    let mut alarms = Vec::new();
    for a in found.metric_alarms() {
        let Some((signal, name)) = wanted
            .iter()
            .find(|(_, n)| Some(n.as_str()) == a.alarm_name())
        else {
            continue;
        };
        let arn = a.alarm_arn().unwrap_or_default().to_owned();
        let tags = clients
            .cloudwatch
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .named("cloudwatch:ListTagsForResource", name)?
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        alarms.push(AlarmState {
            signal: *signal,
            name: name.clone(),
            arn,
            state: a
                .state_value()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason: a.state_reason().unwrap_or_default().to_owned(),
            config: from_sdk(a),
            tags,
        });
    }
    alarms.sort_by_key(|a| a.signal);
    let own_key = match super::key::observe(clients, &names.key_alias).await? {
        Some(k) => Some(KeyPolicyState {
            policy: key_policy(clients, &k.arn).await?,
            key_arn: k.arn,
        }),
        None => None,
    };
    Ok(AlarmsState { alarms, own_key })
}

async fn key_policy(clients: &Clients, key_arn: &str) -> Result<Value, AwsError> {
    let out = clients
        .kms
        .get_key_policy()
        .key_id(key_arn)
        .policy_name(POLICY_NAME)
        .send()
        .await
        .named("kms:GetKeyPolicy", key_arn)?;
    serde_json::from_str(out.policy().unwrap_or("{}")).map_err(|e| {
        AwsError::invalid(
            "kms:GetKeyPolicy",
            key_arn,
            format!("the key policy is not JSON: {e}"),
        )
    })
}

/// The statement of `policies/key-policy-cloudwatch.json` for these names.
pub fn cloudwatch_statement(names: &Names, values: &Values) -> Result<Value, AwsError> {
    let doc = policy::render(Template::KeyPolicyCloudWatch, values)
        .map_err(|e| AwsError::invalid("kms:PutKeyPolicy", &names.key_alias, e.to_string()))?;
    doc.get("Statement")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .cloned()
        .ok_or_else(|| {
            AwsError::invalid(
                "kms:PutKeyPolicy",
                &names.key_alias,
                "policies/key-policy-cloudwatch.json holds no statement".into(),
            )
        })
}

fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

/// `policy` with `statement` in it (replacing one of the same Sid), or without any statement of
/// that Sid when `statement` is `None`. `None` when nothing changes.
pub fn merged(policy: &Value, statement: &Value, keep: bool) -> Option<Value> {
    let id = sid(statement)?;
    let mut out = policy.clone();
    let list = out.get_mut("Statement")?.as_array_mut()?;
    let before = list.clone();
    list.retain(|s| sid(s) != Some(id));
    if keep {
        list.push(statement.clone());
    }
    (*list != before).then_some(out)
}

fn has_statement(policy: &Value, statement: &Value) -> bool {
    policy
        .get("Statement")
        .and_then(Value::as_array)
        .is_some_and(|l| l.contains(statement))
}

/// The stream key is das-setup's own (created by this `up`, or the one behind its alias).
fn own_key(d: &Desired, state: &AlarmsState) -> bool {
    d.key.pending
        || d.key.alias_missing
        || state
            .own_key
            .as_ref()
            .is_some_and(|k| k.key_arn == d.key.arn)
}

pub fn compare(d: &Desired, state: &AlarmsState) -> Planned<AlarmsChange> {
    let listed: Vec<Signal> = if d.alerts.is_some() {
        wanted(d).into_iter().map(|(s, _, _)| s).collect()
    } else {
        Signal::ALL.into_iter().filter(|s| s.always()).collect()
    };
    let name = format!("{}{{{}}}", d.names.alarm_prefix, signals(&listed));
    if d.alerts.is_none() {
        let mut p = Planned::new(name, vec![]);
        if !state.alarms.is_empty() {
            p.notes
                .push("kept: no alert rules given; down removes them".into());
        }
        return p;
    }
    let mut changes = vec![];
    let statement = cloudwatch_statement(&d.names, d.values());
    let mut notes = vec![];
    if own_key(d, state) {
        let present = match (&state.own_key, &statement) {
            (Some(k), Ok(s)) if k.key_arn == d.key.arn => has_statement(&k.policy, s),
            _ => false,
        };
        if !present {
            changes.push(AlarmsChange::KeyPolicy);
        }
    } else {
        notes.push(format!(
            "KMS key {} is not das-setup's: for the alarms to reach the encrypted topic, add the \
             statement of policies/key-policy-cloudwatch.json to its key policy",
            d.key.arn
        ));
    }
    let want = wanted(d);
    if state.alarms.is_empty() {
        changes.push(AlarmsChange::Create);
    } else if want
        .iter()
        .any(|(s, _, c)| state.get(*s).is_none_or(|a| a.config != *c))
    {
        changes.push(AlarmsChange::Configure);
    }
    if !unwanted(state, &want).is_empty() {
        changes.push(AlarmsChange::Remove);
    }
    let mut p = Planned::new(name, changes);
    p.notes = notes;
    p
}

/// The alarms `d` asks for.
pub fn wanted(d: &Desired) -> Vec<(Signal, String, AlarmConfig)> {
    let hours = d.alerts.as_ref().and_then(|a| a.no_events_hours);
    desired(&d.names, &d.names.alerts_topic_arn, hours)
}

/// Alarms found that `want` does not hold (the optional one, once its flag is gone).
fn unwanted(state: &AlarmsState, want: &[(Signal, String, AlarmConfig)]) -> Vec<String> {
    state
        .alarms
        .iter()
        .filter(|a| !want.iter().any(|(s, _, _)| *s == a.signal))
        .map(|a| a.name.clone())
        .collect()
}

fn signals(listed: &[Signal]) -> String {
    listed
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn apply(
    ctx: &Ctx<'_>,
    d: &Desired,
    plan: &Planned<AlarmsChange>,
    state: &AlarmsState,
) -> Res {
    if d.alerts.is_none() || plan.changes.is_empty() {
        return Ok(());
    }
    let step = ctx.progress.begin(
        format!("configuring alarms {}*", d.names.alarm_prefix),
        false,
    );
    if plan.has(AlarmsChange::KeyPolicy) {
        let statement = cloudwatch_statement(&d.names, d.values())?;
        // Read again just before writing: the policy may have changed since it was observed.
        let current = key_policy(ctx.clients, &d.key.arn).await?;
        if let Some(policy) = merged(&current, &statement, true) {
            ctx.mutate("kms:PutKeyPolicy", &d.key.arn)?;
            put_key_policy(ctx.clients, &d.key.arn, &policy).await?;
        }
    }
    let want = wanted(d);
    if plan.has(AlarmsChange::Remove) {
        let names = unwanted(state, &want);
        ctx.mutate("cloudwatch:DeleteAlarms", &names.join(","))?;
        delete_alarms(ctx.clients, names, &d.names.alarm_prefix).await?;
    }
    let mut put = 0;
    for (signal, name, config) in want {
        let found = state.get(signal);
        if found.is_some_and(|a| a.config == config) {
            continue;
        }
        ctx.mutate("cloudwatch:PutMetricAlarm", &name)?;
        let tags: Vec<Tag> = d
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let mut request = ctx
            .clients
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&name)
            .alarm_description(&config.description)
            .namespace(&config.namespace)
            .metric_name(&config.metric)
            .statistic(Statistic::from(config.statistic.as_str()))
            .period(config.period)
            .evaluation_periods(config.evaluation_periods)
            .set_datapoints_to_alarm(config.datapoints_to_alarm)
            .threshold(config.threshold)
            .comparison_operator(ComparisonOperator::from(config.comparison.as_str()))
            .treat_missing_data(&config.treat_missing_data)
            .actions_enabled(config.actions_enabled)
            .set_alarm_actions(Some(config.alarm_actions.clone()))
            .set_ok_actions(Some(config.ok_actions.clone()));
        for (key, value) in &config.dimensions {
            request = request.dimensions(Dimension::builder().name(key).value(value).build());
        }
        // Tags only when creating: on an existing alarm PutMetricAlarm ignores them, and giving
        // them needs cloudwatch:TagResource besides (PutMetricAlarm API reference, `Tags`).
        if found.is_none() {
            request = request.set_tags(Some(tags));
        }
        request
            .send()
            .await
            .named("cloudwatch:PutMetricAlarm", &name)?;
        put += 1;
    }
    step.done(&format!(
        "alarms {}*: {} ({put} put)",
        d.names.alarm_prefix,
        plan.descriptions().join(", ")
    ));
    Ok(())
}

async fn put_key_policy(clients: &Clients, key_arn: &str, policy: &Value) -> Result<(), AwsError> {
    clients
        .kms
        .put_key_policy()
        .key_id(key_arn)
        .policy_name(POLICY_NAME)
        .policy(policy.to_string())
        .send()
        .await
        .named("kms:PutKeyPolicy", key_arn)?;
    Ok(())
}

/// `DeleteAlarms`: names that do not exist are no error (DeleteAlarms API reference).
async fn delete_alarms(clients: &Clients, names: Vec<String>, what: &str) -> Result<(), AwsError> {
    clients
        .cloudwatch
        .delete_alarms()
        .set_alarm_names(Some(names))
        .send()
        .await
        .named("cloudwatch:DeleteAlarms", what)?;
    Ok(())
}

/// `down`: das-setup's alarms go; alarms of these names without its tag are left, all of them.
pub fn verdict(state: &AlarmsState) -> Verdict {
    if state.alarms.is_empty() {
        // What is left of them may be the key's statement (an interrupted down).
        return if key_statement_present(state) {
            Verdict::Delete
        } else {
            Verdict::Absent
        };
    }
    state
        .alarms
        .iter()
        .map(|a| Verdict::by_tags(&a.tags))
        .find(|v| *v != Verdict::Delete)
        .unwrap_or(Verdict::Delete)
}

/// Deletes the alarms of `names`, and takes the CloudWatch statement out of the policy of
/// das-setup's key when the key stays (`key_stays`: its ARN).
pub async fn delete(
    clients: &Clients,
    names: &Names,
    key_stays: Option<&str>,
) -> Result<(), AwsError> {
    let all: Vec<String> = Signal::ALL
        .into_iter()
        .map(|s| alarm_name(names, s))
        .collect();
    delete_alarms(clients, all, &names.alarm_prefix).await?;
    if let Some(key_arn) = key_stays {
        let current = key_policy(clients, key_arn).await?;
        let any_statement = serde_json::json!({"Sid": CLOUDWATCH_SID});
        if let Some(policy) = merged(&current, &any_statement, false) {
            put_key_policy(clients, key_arn, &policy).await?;
        }
    }
    Ok(())
}

/// The Sid of the statement in `policies/key-policy-cloudwatch.json`.
pub const CLOUDWATCH_SID: &str = "CloudWatchAlarmsNotifyTheEncryptedAlertsTopic";

/// The key statement is there (for `down`: something to take out).
pub fn key_statement_present(state: &AlarmsState) -> bool {
    state.own_key.as_ref().is_some_and(|k| {
        k.policy
            .get("Statement")
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|s| sid(s) == Some(CLOUDWATCH_SID)))
    })
}

/// `status`: each alarm's state. `alerting`: the function publishes alerts (alarms expected).
pub fn check(names: &Names, state: &AlarmsState, alerting: bool) -> Check {
    let r = Resource::Alarms;
    if state.alarms.is_empty() {
        return if alerting {
            Check::of(
                r,
                Level::Warn,
                format!("no alarms {}*: run up", names.alarm_prefix),
            )
        } else {
            Check::of(r, Level::Ok, "alarms off (they come with alerts)")
        };
    }
    let mut level = Level::Ok;
    let mut parts = Vec::new();
    for signal in Signal::ALL {
        match state.get(signal) {
            None if !signal.always() => {}
            None => {
                level = level.max(Level::Warn);
                parts.push(format!("{} missing (run up)", signal.as_str()));
            }
            Some(a) if a.state == "ALARM" => {
                level = Level::Fail;
                parts.push(format!("{} ALARM ({})", signal.as_str(), a.reason));
            }
            Some(a) => parts.push(format!("{} {}", signal.as_str(), a.state)),
        }
    }
    if state.own_key.is_some() && !key_statement_present(state) {
        level = level.max(Level::Warn);
        parts.push(
            "the key's policy does not let CloudWatch use it: notifications are dropped (run up)"
                .into(),
        );
    }
    Check::of(r, level, parts.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::desired::tests::desired as desired_of;
    use serde_json::json;

    /// What AWS would report after `up` of `d` with alerts.
    pub(crate) fn found(d: &Desired) -> AlarmsState {
        let alarms = wanted(d)
            .into_iter()
            .map(|(signal, name, config)| AlarmState {
                signal,
                arn: format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"),
                name,
                state: "OK".into(),
                reason: String::new(),
                config,
                tags: d.tags.clone(),
            })
            .collect();
        let mut policy = d.documents.key_policy.clone();
        let statement = cloudwatch_statement(&d.names, d.values()).unwrap();
        policy = merged(&policy, &statement, true).unwrap();
        AlarmsState {
            alarms,
            own_key: Some(KeyPolicyState {
                key_arn: d.key.arn.clone(),
                policy,
            }),
        }
    }

    fn with_key(args: &[&str]) -> Desired {
        let mut d = desired_of(args);
        d.set_key(
            crate::desired::KeyPurpose::Stream,
            "arn:aws:kms:eu-west-1:123456789012:key/own",
            false,
        )
        .unwrap();
        d
    }

    #[test]
    fn created_with_the_key_statement_then_unchanged() {
        let d = with_key(&["--cluster", "demo", "--alerts", "default"]);
        let names: Vec<String> = desired(&d.names, "t", None)
            .into_iter()
            .map(|a| a.1)
            .collect();
        assert_eq!(
            names,
            [
                "das-setup-demo-read-lag",
                "das-setup-demo-processing-failures",
                "das-setup-demo-delivery-failures",
                "das-setup-demo-lambda-errors",
                "das-setup-demo-lambda-throttles"
            ]
        );
        let nothing = AlarmsState {
            alarms: vec![],
            own_key: Some(KeyPolicyState {
                key_arn: d.key.arn.clone(),
                policy: d.documents.key_policy.clone(),
            }),
        };
        assert_eq!(
            compare(&d, &nothing).changes,
            vec![AlarmsChange::KeyPolicy, AlarmsChange::Create]
        );
        assert!(compare(&d, &found(&d)).changes.is_empty());
    }

    #[test]
    fn drift_is_put_back_and_a_users_key_is_only_named() {
        let d = with_key(&["--cluster", "demo", "--alerts", "default"]);
        let mut state = found(&d);
        state.alarms[3].config.threshold = 10.0;
        state.alarms.remove(0);
        assert_eq!(compare(&d, &state).changes, vec![AlarmsChange::Configure]);
        // Someone else's key: das-setup leaves its policy and says what to add.
        let mut state = found(&d);
        state.own_key = None;
        let p = compare(&d, &state);
        assert!(p.changes.is_empty());
        assert!(
            p.notes[0].contains("policies/key-policy-cloudwatch.json"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn without_rules_found_alarms_are_kept_and_said_so() {
        let on = with_key(&["--cluster", "demo", "--alerts", "default"]);
        let off = with_key(&["--cluster", "demo"]);
        let p = compare(&off, &found(&on));
        assert!(p.changes.is_empty());
        assert!(p.notes[0].contains("kept"), "{:?}", p.notes);
        assert_eq!(verdict(&found(&on)), Verdict::Delete);
        let mut foreign = found(&on);
        foreign.alarms[0].tags.clear();
        assert!(matches!(verdict(&foreign), Verdict::Keep(_)));
        assert_eq!(verdict(&AlarmsState::default()), Verdict::Absent);
    }

    #[test]
    fn the_key_statement_is_scoped_to_this_deployments_alarms_and_merges_once() {
        let d = with_key(&["--cluster", "demo", "--alerts", "default"]);
        let s = cloudwatch_statement(&d.names, d.values()).unwrap();
        assert_eq!(
            s["Principal"],
            json!({"Service": "cloudwatch.amazonaws.com"})
        );
        assert_eq!(
            s["Condition"]["ArnLike"]["aws:SourceArn"],
            format!(
                "arn:aws:cloudwatch:{}:{}:alarm:das-setup-demo-*",
                d.identity.region, d.identity.account
            )
        );
        let once = merged(&d.documents.key_policy, &s, true).unwrap();
        assert_eq!(once["Statement"].as_array().unwrap().len(), 2);
        assert!(merged(&once, &s, true).is_none(), "already there");
        let out = merged(&once, &json!({"Sid": CLOUDWATCH_SID}), false).unwrap();
        assert_eq!(
            out, d.documents.key_policy,
            "down puts the policy back as it was"
        );
    }

    #[test]
    fn the_no_events_alarm_comes_and_goes_with_its_flag() {
        let with = with_key(&[
            "--cluster",
            "demo",
            "--alerts",
            "default",
            "--no-events-alarm",
            "6",
        ]);
        let without = with_key(&["--cluster", "demo", "--alerts", "default"]);
        let want = wanted(&with);
        let (_, name, c) = want.iter().find(|a| a.0 == Signal::NoEvents).unwrap();
        assert_eq!(name, "das-setup-demo-no-events");
        assert_eq!(
            (
                c.period,
                c.evaluation_periods,
                c.treat_missing_data.as_str()
            ),
            (3600, 6, "breaching")
        );
        assert_eq!(
            (c.namespace.as_str(), c.metric.as_str()),
            ("das-setup", "EventsStored")
        );
        assert_eq!(
            c.dimensions,
            [("FunctionName".into(), "das-setup-demo".into())]
        );
        // Asked for later: put; asked for no more: removed; unchanged otherwise.
        assert_eq!(
            compare(&with, &found(&without)).changes,
            vec![AlarmsChange::Configure]
        );
        assert_eq!(
            compare(&without, &found(&with)).changes,
            vec![AlarmsChange::Remove]
        );
        assert!(compare(&with, &found(&with)).changes.is_empty());
        assert!(
            compare(&with, &found(&with)).name.ends_with(",no-events}"),
            "the plan names it"
        );
        // status: shown when there, not missed when not asked for.
        let c = check(&with.names, &found(&with), true);
        assert!(c.detail.contains("no-events OK"), "{}", c.detail);
        let c = check(&without.names, &found(&without), true);
        assert_eq!(c.level, Level::Ok, "{}", c.detail);
        assert!(!c.detail.contains("no-events"), "{}", c.detail);
    }

    #[test]
    fn status_shows_each_alarm() {
        let d = with_key(&["--cluster", "demo", "--alerts", "default"]);
        let mut state = found(&d);
        let c = check(&d.names, &state, true);
        assert_eq!(c.level, Level::Ok, "{}", c.detail);
        assert!(c.detail.contains("read-lag OK"), "{}", c.detail);
        state.alarms[3].state = "ALARM".into();
        state.alarms[3].reason = "Threshold Crossed".into();
        let c = check(&d.names, &state, true);
        assert_eq!(c.level, Level::Fail);
        assert!(
            c.detail.contains("lambda-errors ALARM (Threshold Crossed)"),
            "{}",
            c.detail
        );
        state.own_key.as_mut().unwrap().policy = d.documents.key_policy.clone();
        state.alarms[3].state = "OK".into();
        let c = check(&d.names, &state, true);
        assert_eq!(c.level, Level::Warn);
        assert!(
            c.detail.contains("notifications are dropped"),
            "{}",
            c.detail
        );
        assert_eq!(
            check(&d.names, &AlarmsState::default(), true).level,
            Level::Warn
        );
        assert_eq!(
            check(&d.names, &AlarmsState::default(), false).level,
            Level::Ok
        );
    }
}
