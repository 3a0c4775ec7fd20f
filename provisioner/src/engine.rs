//! Dependency order and concurrency, nothing else: what each resource does is its module's
//! business (`resource::*`), and the one concurrent read of a deployment that `up`, `down` and
//! `status` share is `deployment::observe`.
//!
//! - [`apply`] (`up`): the KMS keys first when created here (the activity stream and the
//!   processor's policy need the stream's key; its policy and environment the signing key);
//!   then at once: starting the activity stream (slowest, so asked first), the bucket, the
//!   query's Glue table and Athena workgroup, both roles, the log groups, the alerts topic and
//!   then, side by side, its alarms and the function (after its role, until `Active`); then,
//!   if all of that but the alarms worked, the wait for the stream to be `started` and the
//!   delivery stream (Firehose reads from LATEST: nothing written before it exists is
//!   delivered). A failure stops only what depends on it; every
//!   failure is reported.
//! - [`delete`] (`down`): the delivery stream first (nothing reads the activity stream or calls
//!   the function any more); then at once the function, both roles, the log groups, the topic,
//!   the alarms, the query's Glue database and Athena workgroup, and stopping the activity
//!   stream; then the bucket and the keys, when asked (the signing key only once
//!   the bucket whose digests it signed is gone).

use std::collections::BTreeMap;

use futures_util::future::{join, join_all};

use crate::aws::Clients;
use crate::database::Database;
use crate::deployment::Deployment;
use crate::desired::Desired;
use crate::naming::Names;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::resource::key::{self, KeyPurpose, KeyState};
use crate::resource::log_group::{self, LogGroupSpec};
use crate::resource::role::{self, RoleSpec};
use crate::resource::{
    ApplyError, Ctx, Resource, Verdict, activity_stream, alarms, bucket, catalog, delivery_stream,
    function, topic, workgroup,
};

/// What `apply` did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Mutating API calls made (each once, however often it was retried).
    pub mutating_calls: usize,
    /// The key ARN, when `up` created the activity stream's key.
    pub created_key: Option<String>,
    /// The signing key's ARN, when `up` created it.
    pub created_signing_key: Option<String>,
}

/// Carries out `plan` in dependency order.
pub async fn apply(
    clients: &Clients,
    desired: &Desired,
    plan: &Plan,
    observed: &Deployment,
    zip: &[u8],
    progress: &Progress,
) -> (Report, Vec<ApplyError>) {
    let ctx = Ctx::new(clients, progress);
    let mut d = desired.clone();
    let mut report = Report::default();
    let mut errors = Vec::new();
    let Plan {
        key,
        signing_key,
        stream,
        bucket,
        alerts_topic,
        alarms,
        processor_role,
        firehose_role,
        function_logs,
        firehose_logs,
        function,
        delivery,
        catalog,
        workgroup,
    } = plan;

    for (purpose, plan) in [
        (KeyPurpose::Stream, key),
        (KeyPurpose::Digests, signing_key),
    ] {
        match key::apply(&ctx, &d, purpose, plan).await {
            Ok(Some(arn)) => {
                if let Err(e) = d.set_key(purpose, &arn, false) {
                    errors.push(ApplyError::Failed {
                        what: "rendering the processor's policy".into(),
                        reason: e.to_string(),
                    });
                }
                match purpose {
                    KeyPurpose::Stream => report.created_key = Some(arn),
                    KeyPurpose::Digests => report.created_signing_key = Some(arn),
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        if !errors.is_empty() {
            break;
        }
    }
    if !errors.is_empty() {
        errors.push(ApplyError::Skipped {
            what: "everything else".into(),
        });
        report.mutating_calls = ctx.mutations();
        return (report, errors);
    }
    let (ctx, d) = (&ctx, &d);

    let (
        ((started, bucket), (catalog, workgroup)),
        (((alarms, function), firehose_role), (function_logs, firehose_logs)),
    ) = join(
        join(
            join(
                activity_stream::start(ctx, d, stream),
                bucket::apply(ctx, d, bucket, &observed.bucket),
            ),
            // The query's table and workgroup name the bucket; neither reads it, nor
            // does anything else wait for them.
            join(
                catalog::apply(ctx, d, catalog),
                workgroup::apply(ctx, d, workgroup),
            ),
        ),
        join(
            join(
                async {
                    // The topic before the function and the alarms that publish to it; the
                    // alarms and the function do not wait for each other.
                    if let Err(e) = topic::apply(ctx, d, alerts_topic).await {
                        let skipped = ApplyError::Skipped {
                            what: format!("alarms {}*", d.names.alarm_prefix),
                        };
                        let alarms = if alarms.changes.is_empty() {
                            Ok(())
                        } else {
                            Err(skipped)
                        };
                        return (alarms, Err(e));
                    }
                    join(alarms::apply(ctx, d, alarms, &observed.alarms), async {
                        role::apply(ctx, d, RoleSpec::processor(d), processor_role).await?;
                        function::apply(ctx, d, function, zip).await
                    })
                    .await
                },
                role::apply(ctx, d, RoleSpec::firehose(d), firehose_role),
            ),
            join(
                log_group::apply(ctx, d, LogGroupSpec::function(&d.names), function_logs),
                log_group::apply(ctx, d, LogGroupSpec::firehose(&d.names), firehose_logs),
            ),
        ),
    )
    .await;
    let started = started.map_err(|e| errors.push(e)).ok();
    for result in [
        bucket,
        function,
        firehose_role,
        function_logs,
        firehose_logs,
    ] {
        if let Err(e) = result {
            errors.push(e);
        }
    }
    match started {
        Some(status) if errors.is_empty() => {
            let result = match activity_stream::wait_started(ctx, &d.database, status).await {
                Ok(()) => {
                    let (policy, delivery) = join(
                        activity_stream::set_audit_policy(ctx, d, stream),
                        delivery_stream::apply(ctx, d, delivery, observed.delivery.as_ref()),
                    )
                    .await;
                    policy.and(delivery)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        _ if !delivery.changes.is_empty() => errors.push(ApplyError::Skipped {
            what: format!("delivery stream {}", d.names.delivery_stream),
        }),
        _ => {}
    }
    // The delivery stream does not wait for the alarms: their failure is reported, not a reason
    // to stop the pipeline.
    for result in [alarms, catalog, workgroup] {
        if let Err(e) = result {
            errors.push(e);
        }
    }
    report.mutating_calls = ctx.mutations();
    (report, errors)
}

/// What `down` found, resource by resource.
#[derive(Debug, Clone)]
pub struct Teardown {
    pub database: Option<Database>,
    pub names: Names,
    pub bucket: String,
    /// The KMS key das-setup's alias points to (or an orphan of an interrupted `up`).
    pub key: Option<KeyState>,
    /// The same for the signing key.
    pub signing_key: Option<KeyState>,
    /// das-setup's stream key holds the alarms' statement (`resource::alarms`).
    pub own_key_statement: bool,
    pub verdicts: BTreeMap<Resource, (String, Verdict)>,
}

impl Teardown {
    /// The ARN of das-setup's stream key when `down` keeps it (the alarms' statement comes
    /// out of its policy).
    pub fn key_stays(&self) -> Option<&str> {
        let key = self.key.as_ref()?;
        let kept = !matches!(self.verdicts.get(&Resource::Key), Some((_, v)) if v.acts());
        (kept && self.own_key_statement).then_some(key.arn.as_str())
    }

    pub fn wants(&self, resource: Resource) -> Option<&str> {
        self.verdicts
            .get(&resource)
            .filter(|(_, v)| v.acts())
            .map(|(name, _)| name.as_str())
    }
}

/// A deletion that failed.
#[derive(Debug)]
pub struct DownError {
    pub resource: Resource,
    pub name: String,
    pub reason: String,
}

impl std::fmt::Display for DownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.resource, self.name, self.reason)
    }
}

/// Deletes what `teardown` says, in reverse dependency order; a failure does not stop the rest.
pub async fn delete(clients: &Clients, teardown: &Teardown, progress: &Progress) -> Vec<DownError> {
    let ctx = &Ctx::new(clients, progress);
    let one = |resource: Resource| async move {
        let name = teardown.wants(resource)?;
        let step = progress.begin(
            match resource {
                Resource::ActivityStream => format!("stopping the activity stream {name}"),
                Resource::Bucket => format!("emptying and deleting bucket {name}"),
                Resource::AlertsTopic
                | Resource::Alarms
                | Resource::Key
                | Resource::SigningKey
                | Resource::ProcessorRole
                | Resource::FirehoseRole
                | Resource::FunctionLogGroup
                | Resource::FirehoseLogGroup
                | Resource::Function
                | Resource::DeliveryStream
                | Resource::GlueTable
                | Resource::Workgroup => format!("deleting {resource} {name}"),
            },
            matches!(resource, Resource::Bucket | Resource::DeliveryStream),
        );
        let result: Result<String, ApplyError> = match resource {
            Resource::DeliveryStream => delivery_stream::delete(ctx, name)
                .await
                .map(|()| "deleted".into()),
            Resource::AlertsTopic => topic::delete(clients, &teardown.names.alerts_topic_arn)
                .await
                .map(|()| "deleted with its subscriptions".into())
                .map_err(Into::into),
            Resource::Alarms => alarms::delete(clients, &teardown.names, teardown.key_stays())
                .await
                .map(|()| "deleted".into())
                .map_err(Into::into),
            Resource::Function => function::delete(clients, name)
                .await
                .map(|()| "deleted".into())
                .map_err(Into::into),
            Resource::ProcessorRole | Resource::FirehoseRole => role::delete(clients, name)
                .await
                .map(|()| "deleted".into())
                .map_err(Into::into),
            Resource::FunctionLogGroup | Resource::FirehoseLogGroup => {
                log_group::delete(clients, name)
                    .await
                    .map(|()| "deleted".into())
                    .map_err(Into::into)
            }
            Resource::ActivityStream => match &teardown.database {
                Some(db) => activity_stream::stop(ctx, db)
                    .await
                    .map(|()| "stopped".into()),
                None => Ok("stopped".into()),
            },
            Resource::GlueTable => catalog::delete(clients, &teardown.names.glue_database)
                .await
                .map(|()| "deleted (the events stay in S3)".into())
                .map_err(Into::into),
            Resource::Workgroup => workgroup::delete(clients, name)
                .await
                .map(|()| "deleted with its query history".into())
                .map_err(Into::into),
            Resource::Bucket => bucket::delete(clients, name)
                .await
                .map(|n| format!("deleted with {n} object version(s)")),
            Resource::Key | Resource::SigningKey => {
                let (alias, found) = match resource {
                    Resource::Key => (&teardown.names.key_alias, &teardown.key),
                    _ => (&teardown.names.digest_key_alias, &teardown.signing_key),
                };
                match found {
                    Some(k) => key::delete(clients, alias, k)
                        .await
                        .map(|()| {
                            format!(
                                "deletion scheduled in {} days (aws kms cancel-key-deletion undoes it)",
                                key::DELETION_WINDOW_DAYS
                            )
                        })
                        .map_err(Into::into),
                    None => Ok("not found".into()),
                }
            }
        };
        Some(match result {
            Ok(done) => {
                step.done(&format!("{resource} {name}: {done}"));
                Ok(())
            }
            Err(e) => Err(DownError {
                resource,
                name: name.to_owned(),
                reason: e.to_string(),
            }),
        })
    };
    let mut results = vec![one(Resource::DeliveryStream).await];
    results.extend(
        join_all([
            one(Resource::Function),
            one(Resource::ProcessorRole),
            one(Resource::FirehoseRole),
            one(Resource::FunctionLogGroup),
            one(Resource::FirehoseLogGroup),
            one(Resource::ActivityStream),
            one(Resource::AlertsTopic),
            one(Resource::Alarms),
            one(Resource::GlueTable),
            one(Resource::Workgroup),
        ])
        .await,
    );
    let bucket = one(Resource::Bucket).await;
    let bucket_failed = matches!(bucket, Some(Err(_)));
    results.push(bucket);
    results.push(one(Resource::Key).await);
    // The digests of a bucket that could not be deleted stay verifiable.
    if bucket_failed && let Some(name) = teardown.wants(Resource::SigningKey) {
        results.push(Some(Err(DownError {
            resource: Resource::SigningKey,
            name: name.to_owned(),
            reason: "kept: the bucket it signed digests for could not be deleted".into(),
        })));
    } else {
        results.push(one(Resource::SigningKey).await);
    }
    results
        .into_iter()
        .flatten()
        .filter_map(Result::err)
        .collect()
}
