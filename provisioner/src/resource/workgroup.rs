//! The Athena workgroup `das-setup-<name>` that `das-setup query --engine athena` runs in.
//!
//! Its settings are enforced on every query run in it (`EnforceWorkGroupConfiguration`: a
//! client cannot send results elsewhere or unencrypted): results go to the pipeline's bucket
//! under `athena-results/<database>/`, encrypted with S3-managed keys (`SSE_S3`, as the bucket's
//! default), and expire with the bucket's lifecycle rule for that folder
//! (`retention::ATHENA_RESULTS_DAYS`): a result holds audit data (SQL text) and is a copy, not
//! the record. Its query metrics go to CloudWatch (`PublishCloudWatchMetricsEnabled`).
//!
//! Athena API reference: CreateWorkGroup, GetWorkGroup, UpdateWorkGroup, DeleteWorkGroup,
//! ListTagsForResource, TagResource.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use super::{Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict};
use crate::aws::{AwsError, Clients};
use crate::desired::Desired;
use crate::json_api::str_at;
use crate::naming::Names;

/// The folder of Athena's results in the bucket.
pub const RESULTS_FOLDER: &str = "athena-results/";

/// `s3://<bucket>/athena-results/<database>/`.
pub fn results_location(bucket: &str, database: &str) -> String {
    format!("s3://{bucket}/{RESULTS_FOLDER}{database}/")
}

/// The workgroup's configuration, as CreateWorkGroup takes it.
pub fn configuration(bucket: &str, database: &str) -> Value {
    json!({
        "ResultConfiguration": {
            "OutputLocation": results_location(bucket, database),
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
        },
        "EnforceWorkGroupConfiguration": true,
        "PublishCloudWatchMetricsEnabled": true,
    })
}

/// UpdateWorkGroup's `ConfigurationUpdates` that set [`configuration`].
fn updates(d: &Desired) -> Value {
    let c = configuration(&d.bucket, &d.database.id);
    json!({
        "ResultConfigurationUpdates": c["ResultConfiguration"],
        "EnforceWorkGroupConfiguration": c["EnforceWorkGroupConfiguration"],
        "PublishCloudWatchMetricsEnabled": c["PublishCloudWatchMetricsEnabled"],
    })
}

/// A missing workgroup: Athena answers `InvalidRequestException` whose message says the
/// workgroup "is not found" (it models no not-found error for GetWorkGroup).
fn not_found(e: &AwsError) -> bool {
    super::message_says(e, "InvalidRequestException", &["is not found"])
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkgroupState {
    pub state: String,
    pub configuration: Value,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WorkgroupChange {
    Create,
    Configuration,
    Tags,
}

impl fmt::Display for WorkgroupChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkgroupChange::Create => "create workgroup",
            WorkgroupChange::Configuration => "results location and encryption",
            WorkgroupChange::Tags => "tags",
        })
    }
}

impl Change for WorkgroupChange {
    fn effect(self) -> Effect {
        match self {
            WorkgroupChange::Create => Effect::Create,
            WorkgroupChange::Configuration | WorkgroupChange::Tags => Effect::Update,
        }
    }
}

pub async fn observe(clients: &Clients, names: &Names) -> Result<Option<WorkgroupState>, AwsError> {
    let name = &names.workgroup;
    let what = format!("Athena workgroup {name}");
    let found = match clients
        .athena
        .call("athena:GetWorkGroup", &what, &json!({"WorkGroup": name}))
        .await
    {
        Ok(v) => v,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let tags = clients
        .athena
        .call(
            "athena:ListTagsForResource",
            &what,
            &json!({"ResourceARN": names.workgroup_arn}),
        )
        .await?
        .get("Tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    Some((
                        str_at(t, &["Key"])?.to_owned(),
                        str_at(t, &["Value"]).unwrap_or_default().to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(WorkgroupState {
        state: str_at(&found, &["WorkGroup", "State"])
            .unwrap_or_default()
            .to_owned(),
        configuration: found["WorkGroup"]["Configuration"].clone(),
        tags,
    }))
}

pub fn compare(d: &Desired, state: Option<&WorkgroupState>) -> Planned<WorkgroupChange> {
    let changes = match state {
        None => vec![WorkgroupChange::Create],
        Some(s) => {
            let mut changes = vec![];
            if !super::catalog::contains(
                &s.configuration,
                &configuration(&d.bucket, &d.database.id),
            ) {
                changes.push(WorkgroupChange::Configuration);
            }
            if super::missing_tags(&d.tags, &s.tags) {
                changes.push(WorkgroupChange::Tags);
            }
            changes
        }
    };
    let mut p = Planned::new(d.names.workgroup.clone(), changes);
    if let Some(s) = state
        && s.state != "ENABLED"
    {
        p.notes.push(format!(
            "the workgroup is {}: queries in it are refused until its owner enables it",
            s.state
        ));
    }
    p
}

pub async fn apply(ctx: &Ctx<'_>, d: &Desired, plan: &Planned<WorkgroupChange>) -> Res {
    if plan.changes.is_empty() {
        return Ok(());
    }
    let name = &d.names.workgroup;
    let what = format!("Athena workgroup {name}");
    let step = ctx.progress.begin(format!("configuring {what}"), false);
    let athena = &ctx.clients.athena;
    let tags: Vec<Value> = d
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    for change in &plan.changes {
        match change {
            WorkgroupChange::Create => {
                ctx.mutate("athena:CreateWorkGroup", name)?;
                let created = athena
                    .call(
                        "athena:CreateWorkGroup",
                        &what,
                        &json!({
                            "Name": name,
                            "Configuration": configuration(&d.bucket, &d.database.id),
                            "Description": format!("das-setup: queries over the audit trail of {}", d.database.id),
                            "Tags": tags,
                        }),
                    )
                    .await;
                // A name in use is InvalidRequestException (CreateWorkGroup API reference): an
                // interrupted run's workgroup, when it is there, is given the settings.
                if let Err(e) = created {
                    let exists = e.code_is("InvalidRequestException")
                        && observe(ctx.clients, &d.names).await?.is_some();
                    if !exists {
                        return Err(e.into());
                    }
                    update(ctx, d, &what).await?;
                }
            }
            WorkgroupChange::Configuration => update(ctx, d, &what).await?,
            WorkgroupChange::Tags => {
                ctx.mutate("athena:TagResource", name)?;
                athena
                    .call(
                        "athena:TagResource",
                        &what,
                        &json!({"ResourceARN": d.names.workgroup_arn, "Tags": tags}),
                    )
                    .await?;
            }
        }
    }
    step.done(&format!("{what}: {}", plan.descriptions().join(", ")));
    Ok(())
}

/// Puts back the workgroup's settings.
async fn update(ctx: &Ctx<'_>, d: &Desired, what: &str) -> Res {
    ctx.mutate("athena:UpdateWorkGroup", &d.names.workgroup)?;
    ctx.clients
        .athena
        .call(
            "athena:UpdateWorkGroup",
            what,
            &json!({"WorkGroup": d.names.workgroup, "ConfigurationUpdates": updates(d)}),
        )
        .await?;
    Ok(())
}

pub fn verdict(state: Option<&WorkgroupState>) -> Verdict {
    state.map_or(Verdict::Absent, |s| Verdict::by_tags(&s.tags))
}

/// Deletes the workgroup with its saved queries and query history (`RecursiveDeleteOption`);
/// the results already in S3 stay until their lifecycle rule expires them.
pub async fn delete(clients: &Clients, name: &str) -> Result<(), AwsError> {
    match clients
        .athena
        .call(
            "athena:DeleteWorkGroup",
            name,
            &json!({"WorkGroup": name, "RecursiveDeleteOption": true}),
        )
        .await
    {
        Err(e) if not_found(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// `status`: the workgroup of `names`, whose results should go to `bucket` for `database`.
pub fn check(names: &Names, state: Option<&WorkgroupState>, bucket: &str, database: &str) -> Check {
    let r = Resource::Workgroup;
    let name = &names.workgroup;
    match state {
        None => Check::of(
            r,
            Level::Warn,
            format!("{name} does not exist: query --engine athena cannot run (run up)"),
        ),
        Some(s) if s.state != "ENABLED" => Check::of(
            r,
            Level::Warn,
            format!("{name} is {}: Athena refuses queries in it", s.state),
        ),
        Some(s)
            if !super::catalog::contains(&s.configuration, &configuration(bucket, database)) =>
        {
            Check::of(
                r,
                Level::Warn,
                format!(
                    "{name}: its results location or encryption differs from das-setup's: run up"
                ),
            )
        }
        Some(_) => Check::of(
            r,
            Level::Ok,
            format!(
                "{name}, results encrypted in {}",
                results_location(bucket, database)
            ),
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aws::ErrorKind;
    use crate::desired::tests::desired;

    /// What Athena reports after `up`.
    pub(crate) fn found(d: &Desired) -> WorkgroupState {
        let mut configuration = configuration(&d.bucket, &d.database.id);
        // What Athena adds to an answer.
        configuration["EngineVersion"] = json!({"SelectedEngineVersion": "AUTO"});
        configuration["RequesterPaysEnabled"] = json!(false);
        WorkgroupState {
            state: "ENABLED".into(),
            configuration,
            tags: d.tags.clone(),
        }
    }

    #[test]
    fn created_enforced_and_encrypted_then_unchanged() {
        let d = desired(&["--cluster", "demo"]);
        assert_eq!(compare(&d, None).changes, vec![WorkgroupChange::Create]);
        let c = configuration(&d.bucket, &d.database.id);
        assert_eq!(
            c["ResultConfiguration"]["OutputLocation"],
            format!("s3://{}/athena-results/demo/", d.bucket)
        );
        assert_eq!(c["EnforceWorkGroupConfiguration"], true);
        let state = found(&d);
        assert!(compare(&d, Some(&state)).changes.is_empty());
        assert_eq!(
            check(&d.names, Some(&state), &d.bucket, &d.database.id).level,
            Level::Ok
        );
        assert_eq!(verdict(Some(&state)), Verdict::Delete);
    }

    #[test]
    fn drift_is_put_back_and_a_disabled_workgroup_is_said() {
        let d = desired(&["--cluster", "demo"]);
        let mut state = found(&d);
        state.configuration["ResultConfiguration"]["EncryptionConfiguration"] = Value::Null;
        state.tags.clear();
        state.state = "DISABLED".into();
        let p = compare(&d, Some(&state));
        assert_eq!(
            p.changes,
            vec![WorkgroupChange::Configuration, WorkgroupChange::Tags]
        );
        assert!(p.notes[0].contains("DISABLED"), "{:?}", p.notes);
        assert_eq!(
            check(&d.names, Some(&state), &d.bucket, &d.database.id).level,
            Level::Warn
        );
        assert!(matches!(verdict(Some(&state)), Verdict::Keep(_)));
    }

    #[test]
    fn only_a_missing_workgroup_counts_as_absent() {
        let error = |code: &str, message: &str| AwsError {
            action: "athena:GetWorkGroup",
            resource: "w".into(),
            kind: ErrorKind::Service,
            code: Some(code.into()),
            message: message.into(),
        };
        assert!(not_found(&error(
            "InvalidRequestException",
            "WorkGroup das-setup-demo is not found."
        )));
        assert!(!not_found(&error("InvalidRequestException", "bad name")));
    }
}
