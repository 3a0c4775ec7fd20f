//! The plan: for each resource, what `up` must do to reach [`Desired`] from the observed
//! [`Deployment`], in the resource's own change type. Pure, so every decision is unit-tested;
//! `engine::apply` carries out exactly the changes listed here and nothing else.

use serde_json::{Value, json};

use crate::deployment::Deployment;
use crate::desired::Desired;
use crate::resource::activity_stream::{self, StreamChange};
use crate::resource::alarms::{self, AlarmsChange};
use crate::resource::bucket::{self, BucketChange};
use crate::resource::catalog::{self, CatalogChange};
use crate::resource::delivery_stream::{self, DeliveryChange};
use crate::resource::function::{self, FunctionChange};
use crate::resource::key::{self, KeyChange, KeyPurpose};
use crate::resource::log_group::{self, LogGroupChange, LogGroupSpec};
use crate::resource::role::{self, RoleChange, RoleSpec};
use crate::resource::topic::{self, TopicChange};
use crate::resource::workgroup::{self, WorkgroupChange};
use crate::resource::{Action, Change, Planned, Resource};

/// One [`Planned`] per resource. Every function over the plan destructures it without `..`:
/// a new resource does not compile until each of them handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub key: Planned<KeyChange>,
    pub signing_key: Planned<KeyChange>,
    pub stream: Planned<StreamChange>,
    pub bucket: Planned<BucketChange>,
    pub alerts_topic: Planned<TopicChange>,
    pub alarms: Planned<AlarmsChange>,
    pub processor_role: Planned<RoleChange>,
    pub firehose_role: Planned<RoleChange>,
    pub function_logs: Planned<LogGroupChange>,
    pub firehose_logs: Planned<LogGroupChange>,
    pub function: Planned<FunctionChange>,
    pub delivery: Planned<DeliveryChange>,
    pub catalog: Planned<CatalogChange>,
    pub workgroup: Planned<WorkgroupChange>,
}

/// A resource's plan, whatever its change type: what the reports print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    pub resource: Resource,
    pub name: &'a str,
    pub action: Action,
    pub changes: Vec<String>,
    pub notes: &'a [String],
}

fn row<C: Change>(resource: Resource, p: &Planned<C>) -> Row<'_> {
    Row {
        resource,
        name: &p.name,
        action: p.action(),
        changes: p.descriptions(),
        notes: &p.notes,
    }
}

impl Plan {
    /// The resources in dependency order.
    pub fn rows(&self) -> Vec<Row<'_>> {
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
        } = self;
        vec![
            row(Resource::Key, key),
            row(Resource::SigningKey, signing_key),
            row(Resource::ActivityStream, stream),
            row(Resource::Bucket, bucket),
            row(Resource::AlertsTopic, alerts_topic),
            row(Resource::Alarms, alarms),
            row(Resource::ProcessorRole, processor_role),
            row(Resource::FirehoseRole, firehose_role),
            row(Resource::FunctionLogGroup, function_logs),
            row(Resource::FirehoseLogGroup, firehose_logs),
            row(Resource::Function, function),
            row(Resource::DeliveryStream, delivery),
            row(Resource::GlueTable, catalog),
            row(Resource::Workgroup, workgroup),
        ]
    }

    /// Resources with at least one change.
    pub fn changed(&self) -> usize {
        self.rows()
            .iter()
            .filter(|r| r.action != Action::Unchanged)
            .count()
    }
}

/// Compares, resource by resource.
pub fn diff(d: &Desired, o: &Deployment) -> Plan {
    Plan {
        key: key::compare(d, KeyPurpose::Stream),
        signing_key: key::compare(d, KeyPurpose::Digests),
        stream: activity_stream::compare(d),
        bucket: bucket::compare(d, &o.bucket),
        alerts_topic: topic::compare(d, o.alerts_topic.as_ref()),
        alarms: alarms::compare(d, &o.alarms),
        processor_role: role::compare(RoleSpec::processor(d), o.processor_role.as_ref(), &d.tags),
        firehose_role: role::compare(RoleSpec::firehose(d), o.firehose_role.as_ref(), &d.tags),
        function_logs: log_group::compare(
            LogGroupSpec::function(&d.names),
            o.function_logs.as_ref(),
        ),
        firehose_logs: log_group::compare(
            LogGroupSpec::firehose(&d.names),
            o.firehose_logs.as_ref(),
        ),
        function: function::compare(d, o.function.as_ref()),
        delivery: delivery_stream::compare(d, o.delivery.as_ref()),
        catalog: catalog::compare(d, o.catalog.as_ref()),
        workgroup: workgroup::compare(d, o.workgroup.as_ref()),
    }
}

/// The policy documents a resource carries, for `--output json`.
fn documents(resource: Resource, d: &Desired) -> Option<Value> {
    let docs = &d.documents;
    match resource {
        Resource::Key => d
            .key
            .pending
            .then(|| json!({ "keyPolicy": docs.key_policy })),
        Resource::SigningKey => d
            .digest_key
            .pending
            .then(|| json!({ "keyPolicy": docs.key_policy })),
        Resource::Bucket => Some(json!({ "bucketPolicy": docs.bucket_policy })),
        Resource::ProcessorRole => Some(json!({
            "trustPolicy": docs.processor_trust,
            "permissionsPolicy": docs.processor_policy,
        })),
        Resource::FirehoseRole => Some(json!({
            "trustPolicy": docs.firehose_trust,
            "permissionsPolicy": docs.firehose_policy,
        })),
        Resource::ActivityStream
        | Resource::AlertsTopic
        | Resource::Alarms
        | Resource::FunctionLogGroup
        | Resource::FirehoseLogGroup
        | Resource::Function
        | Resource::DeliveryStream
        | Resource::Workgroup => None,
        Resource::GlueTable => Some(json!({
            "tableInput": catalog::table_input(&d.bucket, &d.prefix),
        })),
    }
}

/// The plan as JSON: each resource with its action, changes and the policy documents it
/// carries.
pub fn to_json(plan: &Plan, d: &Desired) -> Value {
    let items: Vec<Value> = plan
        .rows()
        .into_iter()
        .map(|r| {
            let mut v = json!({
                "resource": r.resource.as_str(),
                "name": r.name,
                "action": r.action.as_str(),
                "changes": r.changes,
            });
            if !r.notes.is_empty() {
                v["notes"] = json!(r.notes);
            }
            if let Some(documents) = documents(r.resource, d) {
                v["documents"] = documents;
            }
            v
        })
        .collect();
    Value::Array(items)
}

/// The plan for people: one line per resource.
pub fn to_text(plan: &Plan) -> String {
    let mut out = String::new();
    let rows = plan.rows();
    for r in &rows {
        let (mark, detail) = match r.action {
            Action::Create if r.resource == Resource::ActivityStream => ("+", "start".to_owned()),
            Action::Create => ("+", "create".to_owned()),
            Action::Replace => ("±", "replace: its source changed or it failed".to_owned()),
            Action::Unchanged => ("=", "unchanged".to_owned()),
            Action::Update => ("~", format!("update {}", r.changes.join(", "))),
        };
        let mut line = format!(
            "  {mark} {:<20} {:<44} {detail}",
            r.resource.as_str(),
            r.name
        );
        for note in r.notes {
            line.push_str(&format!(" ({note})"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let count = |a: Action| rows.iter().filter(|r| r.action == a).count();
    out.push_str(&format!(
        "{} to create, {} to update, {} to replace, {} unchanged\n",
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Unchanged)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_firehose::types::DeliveryStreamStatus;
    use aws_sdk_lambda::types::Architecture;
    use aws_sdk_rds::types::ActivityStreamStatus;
    use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption};

    use crate::desired::LOG_RETENTION_DAYS;
    use crate::desired::tests::desired;
    use crate::resource::Level;
    use crate::resource::bucket::BucketState;
    use crate::resource::delivery_stream::{DeliveryState, Destination, RawBackup, Source};
    use crate::resource::log_group::LogGroupState;
    use crate::resource::role::RoleState;
    use crate::resource::topic::TopicState;
    use crate::retention::Retention;

    fn nothing(d: &Desired) -> Deployment {
        Deployment {
            signing_key: None,
            bucket_name: d.bucket.clone(),
            bucket: BucketState::Missing,
            processor_role: None,
            firehose_role: None,
            function_logs: None,
            firehose_logs: None,
            function: None,
            delivery: None,
            alerts_topic: None,
            alarms: Default::default(),
            catalog: None,
            workgroup: None,
        }
    }

    fn started(args: &[&str]) -> Desired {
        let mut d = desired(args);
        d.database.stream.status = ActivityStreamStatus::Started;
        d
    }

    /// What AWS would report after a complete `up` of `d`.
    fn converged(d: &Desired) -> Deployment {
        let role = |arn: &str, trust: &Value, policy: &Value| RoleState {
            arn: arn.to_owned(),
            trust: Some(trust.clone()),
            policy: Some(policy.clone()),
            tags: d.tags.clone(),
        };
        let s = &d.delivery;
        Deployment {
            alarms: d
                .alerts
                .as_ref()
                .map(|_| crate::resource::alarms::tests::found(d))
                .unwrap_or_default(),
            alerts_topic: d.alerts.as_ref().map(|_| TopicState {
                arn: d.names.alerts_topic_arn.clone(),
                kms_key: Some(d.key.arn.clone()),
                tags: d.tags.clone(),
                subscriptions: Vec::new(),
            }),
            signing_key: None,
            catalog: Some(crate::resource::catalog::tests::found(d)),
            workgroup: Some(crate::resource::workgroup::tests::found(d)),
            bucket_name: d.bucket.clone(),
            bucket: bucket::tests::converged(d),
            processor_role: Some(role(
                &d.processor_role_arn,
                &d.documents.processor_trust,
                &d.documents.processor_policy,
            )),
            firehose_role: Some(role(
                &d.firehose_role_arn,
                &d.documents.firehose_trust,
                &d.documents.firehose_policy,
            )),
            function_logs: Some(LogGroupState {
                retention_days: Some(LOG_RETENTION_DAYS),
                stream_present: None,
            }),
            firehose_logs: Some(LogGroupState {
                retention_days: Some(LOG_RETENTION_DAYS),
                stream_present: Some(true),
            }),
            function: Some(function::tests::converged(d)),
            delivery: Some(DeliveryState {
                arn: "arn:aws:firehose:eu-west-1:123456789012:deliverystream/x".into(),
                status: DeliveryStreamStatus::Active,
                failure: None,
                version_id: "1".into(),
                destination_id: Some("destinationId-000000000001".into()),
                source_stream_arn: Some(s.source_stream_arn.clone()),
                source_role_arn: Some(s.role_arn.clone()),
                source: Source::Current,
                destination: Some(Destination {
                    role_arn: s.role_arn.clone(),
                    bucket_arn: s.bucket_arn.clone(),
                    prefix: Some(s.prefix.clone()),
                    error_prefix: Some(s.error_prefix.clone()),
                    buffer_mb: Some(s.buffer_mb),
                    buffer_seconds: Some(s.buffer_seconds),
                    lambda_arn: Some(s.lambda_arn.clone()),
                    processor_buffer_mb: Some(s.processor_buffer_mb),
                    processor_buffer_seconds: Some(s.processor_buffer_seconds),
                    processor_retries: Some(s.processor_retries),
                    log_group: Some(s.log_group.clone()),
                    log_stream: Some(s.log_stream.clone()),
                    raw: s.raw.as_ref().map(|r| RawBackup {
                        role_arn: s.role_arn.clone(),
                        bucket_arn: s.bucket_arn.clone(),
                        prefix: Some(r.prefix.clone()),
                        error_prefix: Some(r.error_prefix.clone()),
                        buffer_mb: Some(r.buffer_mb),
                        buffer_seconds: Some(r.buffer_seconds),
                        gzip: true,
                    }),
                }),
                tags: d.tags.clone(),
            }),
        }
    }

    #[test]
    fn from_nothing_everything_is_created() {
        let d = desired(&["--cluster", "demo", "--alerts", "default"]);
        let plan = diff(&d, &nothing(&d));
        let rows = plan.rows();
        assert_eq!(
            (rows[0].resource, rows[0].action),
            (Resource::Key, Action::Unchanged),
            "an existing key is used"
        );
        assert_eq!(
            (rows[1].resource, rows[1].action),
            (Resource::SigningKey, Action::Unchanged),
            "the signing key found is used"
        );
        for r in &rows[2..] {
            assert_eq!(r.action, Action::Create, "{:?}", r.resource);
        }
        assert!(plan.bucket.has(BucketChange::Versioning));
        assert!(plan.firehose_logs.has(LogGroupChange::Stream));
        assert!(!plan.function_logs.has(LogGroupChange::Stream));
        // Every resource of the vocabulary, once, in order.
        let resources: Vec<_> = rows.iter().map(|r| r.resource).collect();
        assert_eq!(resources, Resource::ALL);
    }

    #[test]
    fn after_a_complete_up_nothing_changes() {
        for args in [
            &["--cluster", "demo"][..],
            &[
                "--cluster",
                "demo",
                "--include",
                "DDL,DML",
                "--retention-days",
                "365",
            ],
            &["--cluster", "demo", "--alerts", "default"],
        ] {
            let d = started(args);
            let plan = diff(&d, &converged(&d));
            assert_eq!(plan.changed(), 0, "{args:?}: {plan:#?}");
            assert!(
                to_text(&plan).contains("0 to create, 0 to update, 0 to replace, 14 unchanged")
            );
        }
    }

    #[test]
    fn alerts_add_the_topic_the_grants_and_the_environment() {
        let d = desired(&["--cluster", "demo", "--alerts", "default"]);
        let policy = d.documents.processor_policy.to_string();
        assert!(
            policy.contains(r#""Action":"sns:Publish","Resource":"arn:aws:sns:eu-west-1:123456789012:das-setup-demo-alerts""#),
            "{policy}"
        );
        assert!(
            policy.contains(r#""events:source":"das-setup""#),
            "{policy}"
        );
        let env = &d.function.environment;
        assert_eq!(env["DAS_ALERT_RULES"], "alert-rules.json");
        assert_eq!(env["DAS_ALERT_TOPIC_ARN"], d.names.alerts_topic_arn);
        assert_eq!(env["DAS_ALERT_EVENT_BUS"], "default");
        // Without rules: none of it, and the topic is not planned.
        let off = desired(&["--cluster", "demo"]);
        assert!(!off.documents.processor_policy.to_string().contains("sns:"));
        assert!(
            !off.function
                .environment
                .keys()
                .any(|k| k.starts_with("DAS_ALERT"))
        );
        assert_eq!(
            diff(&off, &nothing(&off)).alerts_topic.action(),
            Action::Unchanged
        );
    }

    #[test]
    fn a_changed_filter_touches_only_the_function_configuration() {
        let before = started(&["--cluster", "demo"]);
        let observed = converged(&before);
        let after = started(&["--cluster", "demo", "--exclude", "DQL"]);
        let plan = diff(&after, &observed);
        assert_eq!(plan.changed(), 1, "{plan:#?}");
        assert_eq!(plan.function.changes, [FunctionChange::Configuration]);
    }

    #[test]
    fn new_code_or_architecture_updates_the_code_only() {
        let d = started(&["--cluster", "demo"]);
        let mut o = converged(&d);
        if let Some(f) = o.function.as_mut() {
            f.code_sha256 = Some("old".into());
        }
        assert_eq!(diff(&d, &o).function.changes, [FunctionChange::Code]);
        let mut o = converged(&d);
        if let Some(f) = o.function.as_mut() {
            f.arch = Architecture::X8664;
        }
        assert_eq!(diff(&d, &o).function.changes, [FunctionChange::Code]);
    }

    #[test]
    fn drifted_settings_are_put_back_one_by_one() {
        let d = started(&["--cluster", "demo", "--retention-days", "30"]);
        let mut o = converged(&d);
        let BucketState::Present(b) = &mut o.bucket else {
            unreachable!()
        };
        b.versioning = Some(BucketVersioningStatus::Suspended);
        b.policy = None;
        b.rules = Retention::parse("7").unwrap().rules(&d.prefix);
        b.tags.clear();
        b.tags.insert("owner".into(), "team".into());
        if let Some(r) = o.firehose_role.as_mut() {
            r.policy = Some(json!({"Version": "2012-10-17", "Statement": []}));
        }
        if let Some(g) = o.firehose_logs.as_mut() {
            g.retention_days = None;
            g.stream_present = Some(false);
        }
        let plan = diff(&d, &o);
        assert_eq!(
            plan.bucket.changes,
            [
                BucketChange::Policy,
                BucketChange::Versioning,
                BucketChange::Lifecycle,
                BucketChange::Tags
            ]
        );
        assert_eq!(plan.firehose_role.changes, [RoleChange::Policy]);
        assert_eq!(
            plan.firehose_logs.changes,
            [LogGroupChange::Retention, LogGroupChange::Stream]
        );
        assert_eq!(plan.changed(), 3);
    }

    #[test]
    fn kms_encryption_found_on_the_bucket_is_kept() {
        let d = started(&["--cluster", "demo"]);
        let mut o = converged(&d);
        let BucketState::Present(b) = &mut o.bucket else {
            unreachable!()
        };
        b.encryption = Some(ServerSideEncryption::AwsKms);
        let plan = diff(&d, &o);
        assert_eq!(plan.changed(), 0);
        assert!(plan.bucket.notes[0].contains("aws:kms kept"));
    }

    #[test]
    fn a_delivery_stream_reading_another_stream_or_failed_is_replaced() {
        let d = started(&["--cluster", "demo"]);
        let mut o = converged(&d);
        if let Some(s) = o.delivery.as_mut() {
            s.source_stream_arn = Some("arn:aws:kinesis:eu-west-1:1:stream/aws-rds-das-old".into());
        }
        assert_eq!(diff(&d, &o).delivery.action(), Action::Replace);
        let mut o = converged(&d);
        if let Some(s) = o.delivery.as_mut() {
            s.status = DeliveryStreamStatus::CreatingFailed;
            s.failure = Some("INVALID_KINESIS_STREAM: x".into());
        }
        let plan = diff(&d, &o);
        assert_eq!(plan.delivery.action(), Action::Replace);
        assert!(plan.delivery.notes[0].contains("INVALID_KINESIS_STREAM"));
        let mut o = converged(&d);
        if let Some(dest) = o.delivery.as_mut().and_then(|s| s.destination.as_mut()) {
            dest.processor_buffer_mb = Some(1);
        }
        assert_eq!(diff(&d, &o).delivery.changes, [DeliveryChange::Destination]);
        // A setting Firehose does not report is a difference, not a match.
        let mut o = converged(&d);
        if let Some(dest) = o.delivery.as_mut().and_then(|s| s.destination.as_mut()) {
            dest.buffer_seconds = None;
        }
        assert_eq!(diff(&d, &o).delivery.changes, [DeliveryChange::Destination]);
        // Its source stream deleted, or deleted and created anew: replaced, saying why.
        for (source, why) in [
            (Source::Gone, "no longer exists"),
            (Source::Recreated, "created anew"),
        ] {
            let mut o = converged(&d);
            if let Some(s) = o.delivery.as_mut() {
                s.source = source;
            }
            let plan = diff(&d, &o);
            assert_eq!(plan.delivery.action(), Action::Replace);
            assert!(
                plan.delivery.notes.iter().any(|n| n.contains(why)),
                "{:?}",
                plan.delivery.notes
            );
            let check = crate::resource::delivery_stream::check("x", o.delivery.as_ref(), Some(&d));
            assert_eq!(check.level, Level::Fail);
            assert!(check.detail.contains(why), "{}", check.detail);
        }
    }

    #[test]
    fn the_raw_archive_is_turned_on_in_place_and_never_off() {
        let plain = started(&["--cluster", "demo"]);
        let raw = started(&["--cluster", "demo", "--keep-raw"]);
        // Asked for on a delivery stream without it: turned on by UpdateDestination, saying
        // that it stays.
        let plan = diff(&raw, &converged(&plain));
        assert_eq!(plan.delivery.changes, [DeliveryChange::RawBackup]);
        assert_eq!(plan.changed(), 1);
        assert!(plan.delivery.notes[0].contains("cannot be turned off"));
        assert!(diff(&raw, &converged(&raw)).delivery.changes.is_empty());
        // Created with it.
        let plan = diff(&raw, &nothing(&raw));
        assert_eq!(plan.delivery.changes, [DeliveryChange::Create]);
        assert!(plan.delivery.notes[0].contains("cannot be turned off"));
        // Found on, not asked for: nothing to change (and `up` keeps it: `raw_found`).
        let o = converged(&raw);
        assert!(diff(&plain, &o).delivery.changes.is_empty());
        assert!(crate::resource::delivery_stream::raw_found(
            o.delivery.as_ref()
        ));
        // A backup of `raw` under another prefix.
        let elsewhere = |prefix: &str| {
            let mut o = converged(&raw);
            if let Some(b) = o
                .delivery
                .as_mut()
                .and_then(|s| s.destination.as_mut())
                .and_then(|d| d.raw.as_mut())
            {
                b.prefix = Some(prefix.into());
            }
            o
        };
        // Kept as found: its settings are its owner's, whatever they are.
        let mut kept = plain.clone();
        kept.delivery.raw = Some(crate::desired::RawBackupSpec::new(true));
        let plan = diff(&kept, &elsewhere("their-backup/"));
        assert!(plan.delivery.changes.is_empty(), "{plan:?}");
        assert!(plan.delivery.notes[0].contains("kept"));
        // Asked for and drifted: put back.
        assert_eq!(
            diff(&raw, &elsewhere("elsewhere/")).delivery.changes,
            [DeliveryChange::RawBackup]
        );
    }

    #[test]
    fn the_stream_is_started_unless_started_or_starting() {
        let mut d = desired(&["--cluster", "demo"]);
        for (status, start) in [
            (ActivityStreamStatus::Stopped, true),
            (ActivityStreamStatus::Starting, false),
            (ActivityStreamStatus::Started, false),
            (ActivityStreamStatus::Stopping, true),
        ] {
            d.database.stream.status = status.clone();
            let plan = diff(&d, &converged(&d));
            assert_eq!(
                plan.stream.changes == [StreamChange::Start],
                start,
                "{status:?}"
            );
        }
    }

    #[test]
    fn the_audit_policy_is_locked_or_unlocked_only_when_it_differs() {
        use aws_sdk_rds::types::ActivityStreamPolicyStatus as P;
        let mut d = desired(&["--cluster", "demo"]);
        d.database.kind = crate::naming::TargetKind::Instance;
        d.database.stream.status = ActivityStreamStatus::Started;
        d.audit_policy = Some(aws_sdk_rds::types::AuditPolicyState::UnlockedPolicy);
        for (now, change) in [
            (Some(P::Locked), Some(StreamChange::UnlockAuditPolicy)),
            (
                Some(P::LockingPolicy),
                Some(StreamChange::UnlockAuditPolicy),
            ),
            (Some(P::Unlocked), None),
            (Some(P::UnlockingPolicy), None),
            (None, Some(StreamChange::UnlockAuditPolicy)),
        ] {
            d.database.stream.policy = now.clone();
            let plan = diff(&d, &converged(&d));
            assert_eq!(plan.stream.changes.first().copied(), change, "{now:?}");
        }
        // A stream about to start will be locked: unlocking it is a change, locking is not.
        d.database.stream.status = ActivityStreamStatus::Stopped;
        d.database.stream.policy = None;
        let plan = diff(&d, &converged(&d));
        assert_eq!(
            plan.stream.changes,
            [StreamChange::Start, StreamChange::UnlockAuditPolicy]
        );
        d.audit_policy = Some(aws_sdk_rds::types::AuditPolicyState::LockedPolicy);
        let plan = diff(&d, &converged(&d));
        assert_eq!(plan.stream.changes, [StreamChange::Start]);
        // Without the flag the lock is left as it is.
        d.audit_policy = None;
        d.database.stream.status = ActivityStreamStatus::Started;
        d.database.stream.policy = Some(P::Unlocked);
        assert!(diff(&d, &converged(&d)).stream.changes.is_empty());
    }

    #[test]
    fn the_json_plan_carries_every_policy_document() {
        let mut d = desired(&["--cluster", "demo"]);
        d.key.pending = true;
        d.digest_key.pending = true;
        let plan = diff(&d, &nothing(&d));
        let v = to_json(&plan, &d);
        let text = v.to_string();
        for doc in [
            &d.documents.processor_trust,
            &d.documents.processor_policy,
            &d.documents.firehose_trust,
            &d.documents.firehose_policy,
            &d.documents.bucket_policy,
            &d.documents.key_policy,
        ] {
            assert!(text.contains(&doc.to_string()), "{doc}");
        }
        assert_eq!(v[0]["action"], "create");
        assert_eq!(v[0]["resource"], "kms-key");
        assert_eq!(v[1]["action"], "create");
        assert_eq!(v[1]["resource"], "signing-key");
        assert_eq!(v[1]["name"], "alias/das-setup/digests/demo");
    }

    #[test]
    fn a_signing_key_to_create_or_to_alias_is_planned() {
        let mut d = started(&["--cluster", "demo"]);
        let o = converged(&d);
        d.digest_key.alias_missing = true;
        let plan = diff(&d, &o);
        assert_eq!(plan.signing_key.changes, [KeyChange::Alias]);
        assert_eq!(plan.changed(), 1);
        // A new key: the processor's policy and environment name it once made (rendered
        // anew by `Desired::set_key`), so its role and its function change too.
        let mut fresh = desired(&["--cluster", "demo"]);
        fresh.database.stream.status = ActivityStreamStatus::Started;
        let identity = fresh.identity.clone();
        let pending = Desired::new(
            &crate::desired::tests::settings(&["--cluster", "demo"]),
            &identity,
            &fresh.database,
            Some(&fresh.key.arn),
            "c2hh",
        )
        .unwrap();
        let plan = diff(&pending, &converged(&fresh));
        assert_eq!(plan.signing_key.changes, [KeyChange::Create]);
        assert_eq!(plan.processor_role.changes, [RoleChange::Policy]);
        assert_eq!(plan.function.changes, [FunctionChange::Configuration]);
    }
}
