//! The plan: for each resource, what `apply` must do to reach [`Desired`] from [`Observed`]
//! (create, update which settings, replace, or nothing). Pure, so every decision is unit-tested;
//! `apply` carries out exactly the changes listed here and nothing else.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use crate::desired::{ABORT_INCOMPLETE_UPLOADS_DAYS, Desired, LOG_RETENTION_DAYS};
use crate::observe::{BucketState, Observed, RetentionRule, RoleState};

/// Noncurrent versions (left by retries' overwrites, or by expiry in a versioned bucket) are
/// kept this long after they stop being current, when `--retention-days` is set.
pub const NONCURRENT_DAYS: i32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Key,
    ActivityStream,
    Bucket,
    ProcessorRole,
    FirehoseRole,
    LambdaLogGroup,
    FirehoseLogGroup,
    Function,
    DeliveryStream,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Key => "kms-key",
            Kind::ActivityStream => "activity-stream",
            Kind::Bucket => "bucket",
            Kind::ProcessorRole => "processor-role",
            Kind::FirehoseRole => "firehose-role",
            Kind::LambdaLogGroup => "function-log-group",
            Kind::FirehoseLogGroup => "firehose-log-group",
            Kind::Function => "function",
            Kind::DeliveryStream => "delivery-stream",
        }
    }
}

/// One mutation (or group of mutations that belong together) on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    CreateKey,
    CreateAlias,
    StartStream,
    CreateBucket,
    PublicAccessBlock,
    Ownership,
    Encryption,
    BucketPolicy,
    Versioning,
    Lifecycle,
    BucketTags,
    CreateRole,
    Trust,
    RolePolicy,
    RoleTags,
    CreateLogGroup,
    Retention,
    LogStream,
    CreateFunction,
    FunctionConfiguration,
    FunctionCode,
    FunctionTags,
    DeleteDeliveryStream,
    CreateDeliveryStream,
    Destination,
    DeliveryTags,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::CreateKey => "create key and alias",
            Change::CreateAlias => "alias for the key an interrupted run created",
            Change::StartStream => "start activity stream",
            Change::CreateBucket => "create bucket",
            Change::PublicAccessBlock => "block public access",
            Change::Ownership => "bucket-owner-enforced ownership",
            Change::Encryption => "default encryption",
            Change::BucketPolicy => "bucket policy (TLS only)",
            Change::Versioning => "versioning",
            Change::Lifecycle => "lifecycle rule",
            Change::BucketTags => "tags",
            Change::CreateRole => "create role",
            Change::Trust => "trust policy",
            Change::RolePolicy => "permissions policy",
            Change::RoleTags => "tags",
            Change::CreateLogGroup => "create log group",
            Change::Retention => "retention",
            Change::LogStream => "log stream",
            Change::CreateFunction => "create function",
            Change::FunctionConfiguration => "configuration",
            Change::FunctionCode => "code",
            Change::FunctionTags => "tags",
            Change::DeleteDeliveryStream => "delete (its source changed)",
            Change::CreateDeliveryStream => "create delivery stream",
            Change::Destination => "destination settings",
            Change::DeliveryTags => "tags",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Replace,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: Kind,
    pub name: String,
    pub changes: Vec<Change>,
    /// Facts worth telling (a stream still starting, a setting kept as found ...).
    pub notes: Vec<String>,
}

impl Item {
    pub fn action(&self) -> Action {
        use Change::*;
        if self.changes.contains(&DeleteDeliveryStream) {
            Action::Replace
        } else if self.changes.iter().any(|c| {
            matches!(
                c,
                CreateKey
                    | StartStream
                    | CreateBucket
                    | CreateRole
                    | CreateLogGroup
                    | CreateFunction
                    | CreateDeliveryStream
            )
        }) {
            Action::Create
        } else if self.changes.is_empty() {
            Action::Unchanged
        } else {
            Action::Update
        }
    }

    pub fn has(&self, change: Change) -> bool {
        self.changes.contains(&change)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub items: Vec<Item>,
}

impl Plan {
    pub fn item(&self, kind: Kind) -> Option<&Item> {
        self.items.iter().find(|i| i.kind == kind)
    }

    pub fn changes(&self, kind: Kind) -> &[Change] {
        self.item(kind).map_or(&[], |i| &i.changes)
    }

    /// Resources with at least one change.
    pub fn changed(&self) -> usize {
        self.items.iter().filter(|i| !i.changes.is_empty()).count()
    }
}

/// The lifecycle rule das-setup wants.
pub fn retention_rule(days: Option<u32>) -> RetentionRule {
    RetentionRule {
        expiration_days: days.map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
        noncurrent_days: days.map(|_| NONCURRENT_DAYS),
        abort_incomplete_days: Some(ABORT_INCOMPLETE_UPLOADS_DAYS),
    }
}

/// Compares. `key_exists`: the KMS key is there (`Desired::key_pending` is false).
pub fn diff(d: &Desired, o: &Observed) -> Plan {
    let mut items = Vec::new();

    let mut key = Item {
        kind: Kind::Key,
        name: if d.key_pending {
            d.names.key_alias.clone()
        } else {
            d.key_arn.clone()
        },
        changes: vec![],
        notes: vec![],
    };
    if d.key_pending {
        key.changes.push(Change::CreateKey);
    } else if d.key_alias_missing {
        key.changes.push(Change::CreateAlias);
    }
    items.push(key);

    let mut stream = Item {
        kind: Kind::ActivityStream,
        name: d.stream_name.clone(),
        changes: vec![],
        notes: vec![],
    };
    match d.database.stream.status.as_str() {
        "started" => {}
        "starting" => stream.notes.push("starting: up waits for it".into()),
        "stopping" => {
            stream.changes.push(Change::StartStream);
            stream
                .notes
                .push("stopping: up waits for it to stop, then starts it".into());
        }
        _ => stream.changes.push(Change::StartStream),
    }
    items.push(stream);

    let mut bucket = Item {
        kind: Kind::Bucket,
        name: d.bucket.clone(),
        changes: vec![],
        notes: vec![],
    };
    let all_bucket = [
        Change::PublicAccessBlock,
        Change::Ownership,
        Change::Encryption,
        Change::BucketPolicy,
        Change::Versioning,
        Change::Lifecycle,
        Change::BucketTags,
    ];
    match &o.bucket {
        BucketState::Missing | BucketState::Foreign => {
            bucket.changes.push(Change::CreateBucket);
            bucket.changes.extend(all_bucket);
        }
        BucketState::Present(b) => {
            if !b.public_access_blocked {
                bucket.changes.push(Change::PublicAccessBlock);
            }
            if b.ownership.as_deref() != Some("BucketOwnerEnforced") {
                bucket.changes.push(Change::Ownership);
            }
            match b.encryption.as_deref() {
                Some("AES256") => {}
                Some(other) => bucket
                    .notes
                    .push(format!("default encryption {other} kept as found")),
                None => bucket.changes.push(Change::Encryption),
            }
            if b.policy.as_ref() != Some(&d.documents.bucket_policy) {
                bucket.changes.push(Change::BucketPolicy);
            }
            if !b.versioning_enabled {
                bucket.changes.push(Change::Versioning);
            }
            if b.retention_rule != Some(retention_rule(d.retention_days)) {
                bucket.changes.push(Change::Lifecycle);
            }
            if missing_tags(&d.tags, &b.tags) {
                bucket.changes.push(Change::BucketTags);
            }
        }
    }
    items.push(bucket);

    for (kind, name, state, trust, policy) in [
        (
            Kind::ProcessorRole,
            &d.names.processor_role,
            &o.processor_role,
            &d.documents.processor_trust,
            &d.documents.processor_policy,
        ),
        (
            Kind::FirehoseRole,
            &d.names.firehose_role,
            &o.firehose_role,
            &d.documents.firehose_trust,
            &d.documents.firehose_policy,
        ),
    ] {
        items.push(Item {
            kind,
            name: name.clone(),
            changes: role_changes(state.as_ref(), trust, policy, &d.tags),
            notes: vec![],
        });
    }

    for (kind, name, state, wants_stream) in [
        (
            Kind::LambdaLogGroup,
            &d.names.lambda_log_group,
            &o.lambda_log_group,
            false,
        ),
        (
            Kind::FirehoseLogGroup,
            &d.names.firehose_log_group,
            &o.firehose_log_group,
            true,
        ),
    ] {
        let mut changes = vec![];
        match state {
            None => {
                changes.push(Change::CreateLogGroup);
                changes.push(Change::Retention);
                if wants_stream {
                    changes.push(Change::LogStream);
                }
            }
            Some(g) => {
                if g.retention_days != Some(LOG_RETENTION_DAYS) {
                    changes.push(Change::Retention);
                }
                if !g.stream_present {
                    changes.push(Change::LogStream);
                }
            }
        }
        items.push(Item {
            kind,
            name: name.clone(),
            changes,
            notes: vec![],
        });
    }

    let mut function = Item {
        kind: Kind::Function,
        name: d.names.function.clone(),
        changes: vec![],
        notes: vec![],
    };
    match &o.function {
        None => function.changes.push(Change::CreateFunction),
        Some(f) => {
            let want = &d.function;
            if f.role_arn != want.role_arn
                || f.runtime != want.runtime
                || f.handler != want.handler
                || f.memory_mb != want.memory_mb
                || f.timeout_seconds != want.timeout_seconds
                || f.environment != want.environment
            {
                function.changes.push(Change::FunctionConfiguration);
            }
            if f.code_sha256 != want.code_sha256 || f.arch != want.arch {
                function.changes.push(Change::FunctionCode);
            }
            if missing_tags(&d.tags, &f.tags) {
                function.changes.push(Change::FunctionTags);
            }
            if f.state == "Failed" {
                function.notes.push("its state is Failed".into());
            }
        }
    }
    items.push(function);

    let mut delivery = Item {
        kind: Kind::DeliveryStream,
        name: d.names.delivery_stream.clone(),
        changes: vec![],
        notes: vec![],
    };
    match &o.delivery {
        None => delivery.changes.push(Change::CreateDeliveryStream),
        Some(s) => {
            let source_changed = s.source_stream_arn.as_deref()
                != Some(&d.delivery.source_stream_arn)
                || s.source_role_arn.as_deref() != Some(&d.delivery.role_arn);
            let broken = matches!(s.status.as_str(), "CREATING_FAILED" | "DELETING_FAILED");
            if source_changed || broken || s.destination.is_none() {
                // The source of a delivery stream cannot be changed in place.
                delivery.changes.push(Change::DeleteDeliveryStream);
                delivery.changes.push(Change::CreateDeliveryStream);
                if broken {
                    delivery.notes.push(format!(
                        "status {}{}",
                        s.status,
                        s.failure
                            .as_ref()
                            .map(|f| format!(": {f}"))
                            .unwrap_or_default()
                    ));
                }
            } else {
                if s.destination.as_ref() != Some(&d.delivery) {
                    delivery.changes.push(Change::Destination);
                }
                if missing_tags(&d.tags, &s.tags) {
                    delivery.changes.push(Change::DeliveryTags);
                }
            }
        }
    }
    items.push(delivery);

    Plan { items }
}

fn role_changes(
    state: Option<&RoleState>,
    trust: &Value,
    policy: &Value,
    tags: &BTreeMap<String, String>,
) -> Vec<Change> {
    match state {
        None => vec![Change::CreateRole, Change::RolePolicy],
        Some(r) => {
            let mut changes = vec![];
            if r.trust.as_ref() != Some(trust) {
                changes.push(Change::Trust);
            }
            if r.policy.as_ref() != Some(policy) {
                changes.push(Change::RolePolicy);
            }
            if missing_tags(tags, &r.tags) {
                changes.push(Change::RoleTags);
            }
            changes
        }
    }
}

/// das-setup's tags are missing or differ (other tags are the owner's business).
fn missing_tags(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> bool {
    want.iter().any(|(k, v)| have.get(k) != Some(v))
}

/// The plan as JSON: each resource with its action, changes and, with `documents`, the policy
/// documents it carries.
pub fn to_json(plan: &Plan, d: &Desired) -> Value {
    let items: Vec<Value> = plan
        .items
        .iter()
        .map(|item| {
            let mut v = json!({
                "resource": item.kind.as_str(),
                "name": item.name,
                "action": item.action().as_str(),
                "changes": item.changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            if !item.notes.is_empty() {
                v["notes"] = json!(item.notes);
            }
            let docs = &d.documents;
            let documents = match item.kind {
                Kind::Key if d.key_pending => Some(json!({ "keyPolicy": docs.key_policy })),
                Kind::Bucket => Some(json!({ "bucketPolicy": docs.bucket_policy })),
                Kind::ProcessorRole => Some(json!({
                    "trustPolicy": docs.processor_trust,
                    "permissionsPolicy": docs.processor_policy,
                })),
                Kind::FirehoseRole => Some(json!({
                    "trustPolicy": docs.firehose_trust,
                    "permissionsPolicy": docs.firehose_policy,
                })),
                _ => None,
            };
            if let Some(documents) = documents {
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
    for item in &plan.items {
        let (mark, detail) = match item.action() {
            Action::Create if item.kind == Kind::ActivityStream => ("+", "start".to_owned()),
            Action::Create => ("+", "create".to_owned()),
            Action::Replace => ("±", "replace: its source changed or it failed".to_owned()),
            Action::Unchanged => ("=", "unchanged".to_owned()),
            Action::Update => (
                "~",
                format!(
                    "update {}",
                    item.changes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        let mut line = format!(
            "  {mark} {:<20} {:<44} {detail}",
            item.kind.as_str(),
            item.name
        );
        for note in &item.notes {
            line.push_str(&format!(" ({note})"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let count = |a: Action| plan.items.iter().filter(|i| i.action() == a).count();
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
    use crate::desired::tests::{database, settings};
    use crate::desired::{Desired, Identity};
    use crate::observe::{
        BucketSettings, DeliveryState, FunctionState, LogGroupState, Observed, RoleState,
    };

    fn desired(args: &[&str]) -> Desired {
        let identity = Identity::new(
            "123456789012",
            "arn:aws:iam::123456789012:user/u",
            "eu-west-1",
        );
        Desired::new(
            &settings(args),
            &identity,
            &database(),
            Some("arn:aws:kms:eu-west-1:123456789012:key/k-1"),
            "c2hh",
        )
        .unwrap()
    }

    fn nothing() -> Observed {
        Observed {
            bucket: BucketState::Missing,
            processor_role: None,
            firehose_role: None,
            lambda_log_group: None,
            firehose_log_group: None,
            function: None,
            delivery: None,
        }
    }

    /// What AWS would report after a complete `up` of `d`.
    fn converged(d: &Desired) -> Observed {
        let role = |arn: &str, trust: &Value, policy: &Value| RoleState {
            arn: arn.to_owned(),
            trust: Some(trust.clone()),
            policy: Some(policy.clone()),
            tags: d.tags.clone(),
        };
        Observed {
            bucket: BucketState::Present(BucketSettings {
                public_access_blocked: true,
                ownership: Some("BucketOwnerEnforced".into()),
                encryption: Some("AES256".into()),
                policy: Some(d.documents.bucket_policy.clone()),
                versioning_enabled: true,
                retention_rule: Some(retention_rule(d.retention_days)),
                other_rules: vec![],
                tags: d.tags.clone(),
            }),
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
            lambda_log_group: Some(LogGroupState {
                retention_days: Some(LOG_RETENTION_DAYS),
                stream_present: true,
            }),
            firehose_log_group: Some(LogGroupState {
                retention_days: Some(LOG_RETENTION_DAYS),
                stream_present: true,
            }),
            function: Some(FunctionState {
                arn: d.function_arn.clone(),
                role_arn: d.function.role_arn.clone(),
                runtime: d.function.runtime.clone(),
                handler: d.function.handler.clone(),
                memory_mb: d.function.memory_mb,
                timeout_seconds: d.function.timeout_seconds,
                arch: d.function.arch.clone(),
                environment: d.function.environment.clone(),
                code_sha256: d.function.code_sha256.clone(),
                state: "Active".into(),
                last_update_status: "Successful".into(),
                tags: d.tags.clone(),
            }),
            delivery: Some(DeliveryState {
                arn: "arn:aws:firehose:eu-west-1:123456789012:deliverystream/x".into(),
                status: "ACTIVE".into(),
                failure: None,
                version_id: "1".into(),
                destination_id: Some("destinationId-000000000001".into()),
                source_stream_arn: Some(d.delivery.source_stream_arn.clone()),
                source_role_arn: Some(d.delivery.role_arn.clone()),
                destination: Some(d.delivery.clone()),
                tags: d.tags.clone(),
            }),
        }
    }

    #[test]
    fn from_nothing_everything_is_created() {
        let d = desired(&["--cluster", "demo"]);
        let plan = diff(&d, &nothing());
        let actions: Vec<_> = plan.items.iter().map(|i| (i.kind, i.action())).collect();
        assert_eq!(
            actions[0],
            (Kind::Key, Action::Unchanged),
            "an existing key is used"
        );
        for (kind, action) in &actions[1..] {
            assert_eq!(*action, Action::Create, "{kind:?}");
        }
        assert!(plan.changes(Kind::Bucket).contains(&Change::Versioning));
        assert!(
            plan.changes(Kind::FirehoseLogGroup)
                .contains(&Change::LogStream)
        );
        assert!(
            !plan
                .changes(Kind::LambdaLogGroup)
                .contains(&Change::LogStream)
        );
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
        ] {
            let mut d = desired(args);
            d.database.stream.status = "started".into();
            let plan = diff(&d, &converged(&d));
            assert_eq!(plan.changed(), 0, "{args:?}: {plan:#?}");
            assert!(to_text(&plan).contains("0 to create, 0 to update, 0 to replace, 9 unchanged"));
        }
    }

    #[test]
    fn a_changed_filter_touches_only_the_function_configuration() {
        let mut before = desired(&["--cluster", "demo"]);
        before.database.stream.status = "started".into();
        let observed = converged(&before);
        let mut after = desired(&["--cluster", "demo", "--exclude", "DQL"]);
        after.database.stream.status = "started".into();
        let plan = diff(&after, &observed);
        let changed: Vec<_> = plan
            .items
            .iter()
            .filter(|i| !i.changes.is_empty())
            .collect();
        assert_eq!(changed.len(), 1, "{plan:#?}");
        assert_eq!(changed[0].kind, Kind::Function);
        assert_eq!(changed[0].changes, [Change::FunctionConfiguration]);
    }

    #[test]
    fn new_code_or_architecture_updates_the_code_only() {
        let mut d = desired(&["--cluster", "demo"]);
        d.database.stream.status = "started".into();
        let mut o = converged(&d);
        if let Some(f) = o.function.as_mut() {
            f.code_sha256 = "old".into();
        }
        assert_eq!(diff(&d, &o).changes(Kind::Function), [Change::FunctionCode]);
        let mut o = converged(&d);
        if let Some(f) = o.function.as_mut() {
            f.arch = "x86_64".into();
        }
        assert_eq!(diff(&d, &o).changes(Kind::Function), [Change::FunctionCode]);
    }

    #[test]
    fn drifted_settings_are_put_back_one_by_one() {
        let mut d = desired(&["--cluster", "demo", "--retention-days", "30"]);
        d.database.stream.status = "started".into();
        let mut o = converged(&d);
        let BucketState::Present(b) = &mut o.bucket else {
            unreachable!()
        };
        b.versioning_enabled = false;
        b.policy = None;
        b.retention_rule = Some(retention_rule(Some(7)));
        b.tags.clear();
        b.tags.insert("owner".into(), "team".into());
        if let Some(r) = o.firehose_role.as_mut() {
            r.policy = Some(json!({"Version": "2012-10-17", "Statement": []}));
        }
        if let Some(g) = o.firehose_log_group.as_mut() {
            g.retention_days = None;
            g.stream_present = false;
        }
        let plan = diff(&d, &o);
        assert_eq!(
            plan.changes(Kind::Bucket),
            [
                Change::BucketPolicy,
                Change::Versioning,
                Change::Lifecycle,
                Change::BucketTags
            ]
        );
        assert_eq!(plan.changes(Kind::FirehoseRole), [Change::RolePolicy]);
        assert_eq!(
            plan.changes(Kind::FirehoseLogGroup),
            [Change::Retention, Change::LogStream]
        );
        assert_eq!(plan.changed(), 3);
    }

    #[test]
    fn kms_encryption_found_on_the_bucket_is_kept() {
        let mut d = desired(&["--cluster", "demo"]);
        d.database.stream.status = "started".into();
        let mut o = converged(&d);
        let BucketState::Present(b) = &mut o.bucket else {
            unreachable!()
        };
        b.encryption = Some("aws:kms".into());
        let plan = diff(&d, &o);
        assert_eq!(plan.changed(), 0);
        assert!(plan.item(Kind::Bucket).unwrap().notes[0].contains("aws:kms kept"));
    }

    #[test]
    fn a_delivery_stream_reading_another_stream_or_failed_is_replaced() {
        let mut d = desired(&["--cluster", "demo"]);
        d.database.stream.status = "started".into();
        let mut o = converged(&d);
        if let Some(s) = o.delivery.as_mut() {
            s.source_stream_arn = Some("arn:aws:kinesis:eu-west-1:1:stream/aws-rds-das-old".into());
        }
        let plan = diff(&d, &o);
        assert_eq!(
            plan.item(Kind::DeliveryStream).unwrap().action(),
            Action::Replace
        );
        let mut o = converged(&d);
        if let Some(s) = o.delivery.as_mut() {
            s.status = "CREATING_FAILED".into();
            s.failure = Some("INVALID_KINESIS_STREAM: x".into());
        }
        let plan = diff(&d, &o);
        let item = plan.item(Kind::DeliveryStream).unwrap();
        assert_eq!(item.action(), Action::Replace);
        assert!(item.notes[0].contains("INVALID_KINESIS_STREAM"));
        let mut o = converged(&d);
        if let Some(dest) = o.delivery.as_mut().and_then(|s| s.destination.as_mut()) {
            dest.processor_buffer_mb = 1;
        }
        assert_eq!(
            diff(&d, &o).changes(Kind::DeliveryStream),
            [Change::Destination]
        );
    }

    #[test]
    fn the_stream_is_started_unless_started_or_starting() {
        let mut d = desired(&["--cluster", "demo"]);
        for (status, start) in [
            ("stopped", true),
            ("starting", false),
            ("started", false),
            ("stopping", true),
        ] {
            d.database.stream.status = status.into();
            let plan = diff(&d, &converged(&d));
            assert_eq!(
                plan.changes(Kind::ActivityStream) == [Change::StartStream],
                start,
                "{status}"
            );
        }
    }

    #[test]
    fn the_json_plan_carries_every_policy_document() {
        let mut d = desired(&["--cluster", "demo"]);
        d.key_pending = true;
        let plan = diff(&d, &nothing());
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
    }
}
