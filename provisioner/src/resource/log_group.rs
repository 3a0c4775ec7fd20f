//! A CloudWatch Logs group with das-setup's retention. Two instances: the function's
//! (`/aws/lambda/<function>`, where Lambda writes) and the delivery stream's (with the log
//! stream Firehose reports delivery errors to). A group follows its owner in `down`: the logs
//! of a function or delivery stream das-setup keeps are kept with it.

use std::fmt;

use aws_sdk_cloudwatchlogs::operation::create_log_group::CreateLogGroupError;
use aws_sdk_cloudwatchlogs::operation::create_log_stream::CreateLogStreamError;
use aws_sdk_cloudwatchlogs::operation::delete_log_group::DeleteLogGroupError;

use super::{Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict};
use crate::aws::{AwsError, Clients, Named as _};
use crate::desired::{Desired, LOG_RETENTION_DAYS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupState {
    pub retention_days: Option<i32>,
    /// Whether the named log stream exists (`None`: none is asked of this group).
    pub stream_present: Option<bool>,
}

/// Which group, and the log stream it must hold.
#[derive(Debug, Clone, Copy)]
pub struct LogGroupSpec<'a> {
    pub resource: Resource,
    pub name: &'a str,
    pub stream: Option<&'a str>,
    /// Its owner, for `down`: `function <name>`, `delivery stream <name>`.
    pub owner: (&'static str, &'a str),
}

impl<'a> LogGroupSpec<'a> {
    pub fn function(names: &'a crate::naming::Names) -> Self {
        Self {
            resource: Resource::FunctionLogGroup,
            name: &names.lambda_log_group,
            stream: None,
            owner: ("function", &names.function),
        }
    }

    pub fn firehose(names: &'a crate::naming::Names) -> Self {
        Self {
            resource: Resource::FirehoseLogGroup,
            name: &names.firehose_log_group,
            stream: Some(&names.firehose_log_stream),
            owner: ("delivery stream", &names.delivery_stream),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogGroupChange {
    Create,
    Retention,
    Stream,
}

impl fmt::Display for LogGroupChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogGroupChange::Create => "create log group",
            LogGroupChange::Retention => "retention",
            LogGroupChange::Stream => "log stream",
        })
    }
}

impl Change for LogGroupChange {
    fn effect(self) -> Effect {
        match self {
            LogGroupChange::Create => Effect::Create,
            LogGroupChange::Retention | LogGroupChange::Stream => Effect::Update,
        }
    }
}

pub async fn observe(
    clients: &Clients,
    spec: LogGroupSpec<'_>,
) -> Result<Option<LogGroupState>, AwsError> {
    let name = spec.name;
    let what = format!("log group {name}");
    let out = clients
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .named("logs:DescribeLogGroups", &what)?;
    let Some(group) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(None);
    };
    let stream_present = match spec.stream {
        None => None,
        Some(stream) => Some(
            clients
                .logs
                .describe_log_streams()
                .log_group_name(name)
                .log_stream_name_prefix(stream)
                .send()
                .await
                .named("logs:DescribeLogStreams", &what)?
                .log_streams()
                .iter()
                .any(|s| s.log_stream_name() == Some(stream)),
        ),
    };
    Ok(Some(LogGroupState {
        retention_days: group.retention_in_days(),
        stream_present,
    }))
}

pub fn compare(spec: LogGroupSpec<'_>, state: Option<&LogGroupState>) -> Planned<LogGroupChange> {
    let mut changes = vec![];
    match state {
        None => {
            changes.push(LogGroupChange::Create);
            changes.push(LogGroupChange::Retention);
            if spec.stream.is_some() {
                changes.push(LogGroupChange::Stream);
            }
        }
        Some(g) => {
            if g.retention_days != Some(LOG_RETENTION_DAYS) {
                changes.push(LogGroupChange::Retention);
            }
            if g.stream_present == Some(false) {
                changes.push(LogGroupChange::Stream);
            }
        }
    }
    Planned::new(spec.name, changes)
}

pub async fn apply(
    ctx: &Ctx<'_>,
    d: &Desired,
    spec: LogGroupSpec<'_>,
    plan: &Planned<LogGroupChange>,
) -> Res {
    if plan.changes.is_empty() {
        return Ok(());
    }
    let name = spec.name;
    let what = format!("log group {name}");
    let step = ctx.progress.begin(format!("configuring {what}"), false);
    let logs = &ctx.clients.logs;
    for change in &plan.changes {
        match change {
            LogGroupChange::Create => {
                ctx.mutate("logs:CreateLogGroup", name)?;
                // Already there (created meanwhile by Lambda, which logs on its first run, or
                // by an interrupted run): the retention change that follows makes it ours.
                logs.create_log_group()
                    .log_group_name(name)
                    .set_tags(Some(d.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .or_absent("logs:CreateLogGroup", &what, |e| {
                        matches!(e, CreateLogGroupError::ResourceAlreadyExistsException(_))
                    })?;
            }
            LogGroupChange::Retention => {
                ctx.mutate("logs:PutRetentionPolicy", name)?;
                logs.put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(LOG_RETENTION_DAYS)
                    .send()
                    .await
                    .named("logs:PutRetentionPolicy", &what)?;
            }
            LogGroupChange::Stream => {
                let Some(stream) = spec.stream else { continue };
                ctx.mutate("logs:CreateLogStream", name)?;
                logs.create_log_stream()
                    .log_group_name(name)
                    .log_stream_name(stream)
                    .send()
                    .await
                    .or_absent("logs:CreateLogStream", &what, |e| {
                        matches!(e, CreateLogStreamError::ResourceAlreadyExistsException(_))
                    })?;
            }
        }
    }
    step.done(&format!("{what}: {}", plan.descriptions().join(", ")));
    Ok(())
}

/// `down`: a group follows its owner (`owner_managed`: `None` when the owner is gone).
pub fn verdict(spec: LogGroupSpec<'_>, exists: bool, owner_managed: Option<bool>) -> Verdict {
    let (owner_kind, owner) = spec.owner;
    match (exists, owner_managed) {
        (false, _) => Verdict::Absent,
        (true, Some(false)) => Verdict::Keep(format!(
            "the log group of {owner_kind} {owner}, which is not das-setup's: left alone with it"
        )),
        (true, Some(true) | None) => Verdict::Delete,
    }
}

pub async fn delete(clients: &Clients, name: &str) -> Result<(), AwsError> {
    clients
        .logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
        .or_absent("logs:DeleteLogGroup", name, |e| {
            matches!(e, DeleteLogGroupError::ResourceNotFoundException(_))
        })?;
    Ok(())
}

pub fn check(spec: LogGroupSpec<'_>, state: Option<&LogGroupState>) -> Check {
    let group = spec.name;
    match state {
        Some(g) => Check::of(
            spec.resource,
            Level::Ok,
            format!(
                "{group}, retention {}",
                g.retention_days
                    .map_or("none".to_owned(), |d| format!("{d} days"))
            ),
        ),
        None => Check::of(
            spec.resource,
            Level::Warn,
            format!("{group} does not exist: logs are not kept"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    #[test]
    fn a_log_group_follows_its_owner() {
        // Regression: the log groups of a function down keeps (not tagged as das-setup's) were
        // deleted, because log groups were judged by their name alone.
        let names = crate::desired::tests::desired_started().names;
        let spec = LogGroupSpec::function(&names);
        assert!(matches!(
            verdict(spec, true, Some(false)),
            Verdict::Keep(why) if why.contains(&format!("function {}", names.function))
        ));
        assert_eq!(verdict(spec, true, Some(true)), Verdict::Delete);
        // The owner is gone (an interrupted down, an up stopped early): the group is das-setup's.
        assert_eq!(verdict(spec, true, None), Verdict::Delete);
        assert_eq!(verdict(spec, false, Some(false)), Verdict::Absent);
    }

    #[tokio::test]
    async fn observe_apply_and_delete_against_the_wire() {
        let d = crate::desired::tests::desired_started();
        let spec = LogGroupSpec::firehose(&d.names);
        let group = spec.name.to_owned();
        let fake = FakeAws::new(move |c| match c.operation.as_str() {
            "Logs_20140328.DescribeLogGroups" => Answer::json(
                200,
                &format!(
                    r#"{{"logGroups":[{{"logGroupName":"{group}-other"}},{{"logGroupName":"{group}","retentionInDays":7}}]}}"#
                ),
            ),
            "Logs_20140328.DescribeLogStreams" => Answer::json(200, r#"{"logStreams":[]}"#),
            "Logs_20140328.PutRetentionPolicy" => Answer::json(200, "{}"),
            "Logs_20140328.CreateLogStream" => {
                Answer::error_json(400, "ResourceAlreadyExistsException", "exists")
            }
            "Logs_20140328.DeleteLogGroup" => {
                Answer::error_json(400, "ResourceNotFoundException", "gone")
            }
            _ => Answer::unexpected(),
        });
        let clients = fake.clients();
        let state = observe(&clients, spec).await.unwrap();
        assert_eq!(
            state,
            Some(LogGroupState {
                retention_days: Some(7),
                stream_present: Some(false)
            })
        );
        let plan = compare(spec, state.as_ref());
        assert_eq!(
            plan.changes,
            [LogGroupChange::Retention, LogGroupChange::Stream]
        );
        let progress = crate::progress::Progress::new(true);
        let ctx = Ctx::new(&clients, &progress);
        // A stream created meanwhile (ResourceAlreadyExistsException) is done.
        assert!(apply(&ctx, &d, spec, &plan).await.is_ok());
        assert!(delete(&clients, spec.name).await.is_ok());
        assert_eq!(
            fake.operations()[2..],
            [
                "Logs_20140328.PutRetentionPolicy",
                "Logs_20140328.CreateLogStream",
                "Logs_20140328.DeleteLogGroup"
            ]
        );
        let silent = FakeAws::silent();
        let settled = LogGroupState {
            retention_days: Some(LOG_RETENTION_DAYS),
            stream_present: Some(true),
        };
        let plan = compare(spec, Some(&settled));
        let clients = silent.clients();
        assert!(
            apply(&Ctx::new(&clients, &progress), &d, spec, &plan)
                .await
                .is_ok()
        );
        assert!(silent.calls().is_empty());
    }
}
