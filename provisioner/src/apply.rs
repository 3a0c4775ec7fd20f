//! Carrying out a [`Plan`]: exactly the listed changes, independent ones concurrently, every
//! wait bounded and shown, IAM's eventual consistency retried for a bounded time.
//!
//! Order: the KMS key (when created here) first, since the activity stream and the processor's
//! policy need it; then at once: starting the activity stream (slowest, so asked first), the
//! bucket, both roles, the log groups, and the function (after its role, until `Active`); then,
//! only if all that worked, the wait for the stream to be `started` and the delivery stream
//! (Firehose reads from LATEST: nothing written before it exists is delivered).
//! A failure stops only what depends on it; every failure is reported.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join;

use crate::aws::{AwsError, Clients, Named as _, found};
use crate::desired::{Desired, LIFECYCLE_RULE_ID, LOG_RETENTION_DAYS};
use crate::observe::{self, BucketState, Observed};
use crate::plan::{Change, Kind, Plan, retention_rule};
use crate::progress::{Progress, Step, seconds};
use crate::session::kind_word;

/// How long each kind of wait may last before `up` gives up naming it.
pub const STREAM_START_TIMEOUT: Duration = Duration::from_secs(45 * 60);
pub const FUNCTION_READY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const DELIVERY_READY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// IAM changes reach Lambda and Firehose within seconds, rarely a minute (Terraform allows 2).
pub const IAM_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// Test switch (issue 8): fail every mutating call after this many, as if the process had been
/// killed there, to prove that a second `up` converges from any partial state. Read only by
/// debug builds (the tests'): a release build ignores it, so no environment can make a user's
/// `up` fail on purpose.
pub const STOP_AFTER_ENV: &str = "DAS_SETUP_TEST_STOP_AFTER_MUTATIONS";

/// The test switch's value, in debug builds only.
fn stop_after() -> Option<usize> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var(STOP_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
}

#[derive(Debug, Clone)]
pub enum ApplyError {
    Aws(AwsError),
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
    Failed {
        what: String,
        reason: String,
    },
    /// A change this one needs failed first.
    Skipped {
        what: String,
    },
}

impl From<AwsError> for ApplyError {
    fn from(e: AwsError) -> Self {
        ApplyError::Aws(e)
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Aws(e) => write!(f, "{e}"),
            ApplyError::Timeout { what, waited, last } => write!(
                f,
                "gave up waiting for {what} after {} (last seen: {last}); run `das-setup up` again to keep waiting",
                seconds(*waited)
            ),
            ApplyError::Failed { what, reason } => write!(f, "{what}: {reason}"),
            ApplyError::Skipped { what } => {
                write!(f, "{what}: not attempted, a change it depends on failed")
            }
        }
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Mutating API calls made.
    pub mutating_calls: usize,
    /// The key ARN, when `up` created the key.
    pub created_key: Option<String>,
}

struct Ctx<'a> {
    clients: &'a Clients,
    d: Desired,
    plan: &'a Plan,
    observed: &'a Observed,
    zip: &'a [u8],
    progress: &'a Progress,
    mutations: AtomicUsize,
    stop_after: Option<usize>,
}

type Res<T = ()> = Result<T, ApplyError>;

pub async fn apply(
    clients: &Clients,
    desired: &Desired,
    plan: &Plan,
    observed: &Observed,
    zip: &[u8],
    progress: &Progress,
) -> (Report, Vec<ApplyError>) {
    let mut ctx = Ctx {
        clients,
        d: desired.clone(),
        plan,
        observed,
        zip,
        progress,
        mutations: AtomicUsize::new(0),
        stop_after: stop_after(),
    };
    let mut report = Report::default();
    let mut errors = Vec::new();

    if plan.changes(Kind::Key).contains(&Change::CreateAlias)
        && let Err(e) = ctx.create_alias(&ctx.d.key_arn).await
    {
        errors.push(e);
    }
    if plan.changes(Kind::Key).contains(&Change::CreateKey) {
        match ctx.create_key().await {
            Ok(arn) => {
                if let Err(e) = ctx.d.set_key_arn(&arn) {
                    errors.push(ApplyError::Failed {
                        what: "rendering the processor's policy".into(),
                        reason: e.to_string(),
                    });
                }
                report.created_key = Some(arn);
            }
            Err(e) => errors.push(e),
        }
        if !errors.is_empty() {
            errors.push(ApplyError::Skipped {
                what: "everything else".into(),
            });
            report.mutating_calls = ctx.mutations.load(Ordering::Relaxed);
            return (report, errors);
        }
    }
    let ctx = &ctx;

    // Everything but the delivery stream, while the activity stream starts; then, only if all
    // of it worked, the wait for `started` and the delivery stream.
    let ((stream, bucket), ((function, firehose_role), logs)) = join(
        join(ctx.start_stream(), ctx.bucket()),
        join(
            join(
                async {
                    ctx.role(Kind::ProcessorRole).await?;
                    ctx.function().await
                },
                ctx.role(Kind::FirehoseRole),
            ),
            join(
                ctx.log_group(Kind::LambdaLogGroup),
                ctx.log_group(Kind::FirehoseLogGroup),
            ),
        ),
    )
    .await;
    let before = errors.len();
    let stream = match stream {
        Ok(status) => Some(status),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    for result in [bucket, function, firehose_role, logs.0, logs.1] {
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if let (Some(status), true) = (stream, errors.len() == before) {
        let result = match ctx.wait_stream_started(status).await {
            Ok(()) => ctx.delivery_stream().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    } else if !plan.changes(Kind::DeliveryStream).is_empty() {
        errors.push(ApplyError::Skipped {
            what: format!("delivery stream {}", ctx.d.names.delivery_stream),
        });
    }
    report.mutating_calls = ctx.mutations.load(Ordering::Relaxed);
    (report, errors)
}

/// A bounded poll with growing intervals (0.5 s up to 10 s), shown as a step.
struct Poll {
    step: Step,
    deadline: Instant,
    interval: Duration,
    what: String,
}

impl Poll {
    fn new(progress: &Progress, what: String, timeout: Duration) -> Self {
        Self {
            step: progress.begin(format!("waiting for {what}"), true),
            deadline: Instant::now() + timeout,
            interval: Duration::from_millis(500),
            what,
        }
    }

    /// Sleeps before the next look, or fails naming the resource once the deadline passed.
    async fn next(&mut self, last: &str) -> Res {
        if Instant::now() + self.interval > self.deadline {
            return Err(ApplyError::Timeout {
                what: self.what.clone(),
                waited: self.step.elapsed(),
                last: last.to_owned(),
            });
        }
        tokio::time::sleep(self.interval).await;
        self.interval = (self.interval.mul_f64(1.5)).min(Duration::from_secs(10));
        self.step.tick();
        Ok(())
    }

    fn done(self, text: &str) {
        self.step.done(text);
    }
}

/// IAM has not reached the service yet: the role "cannot be assumed", "is not authorized" ...
fn is_propagation(e: &AwsError) -> bool {
    let m = e.message.to_ascii_lowercase();
    e.code_is(&[
        "InvalidParameterValueException",
        "InvalidArgumentException",
        "AccessDeniedException",
    ]) && (m.contains("assume")
        || m.contains("not authorized")
        || m.contains("access was denied")
        || m.contains("role"))
}

impl Ctx<'_> {
    /// Counts a mutating call; the test switch makes it fail instead.
    fn mutate(&self, action: &'static str, resource: &str) -> Res {
        let n = self.mutations.fetch_add(1, Ordering::SeqCst);
        if let Some(limit) = self.stop_after
            && n >= limit
        {
            return Err(ApplyError::Failed {
                what: format!("{action} on {resource}"),
                reason: format!("stopped by {STOP_AFTER_ENV}={limit} (test switch)"),
            });
        }
        Ok(())
    }

    /// Runs `call` until IAM has propagated, for a bounded time.
    async fn retry_iam<T, F, Fut>(&self, what: &str, mut call: F) -> Res<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_secs(1);
        let mut step = None;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if is_propagation(&e) && start.elapsed() < IAM_PROPAGATION_TIMEOUT => {
                    let s = step.get_or_insert_with(|| {
                        self.progress.begin(
                            format!("waiting for IAM to reach {what} ({})", e.message),
                            true,
                        )
                    });
                    s.tick();
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn create_key(&self) -> Res<String> {
        let alias = &self.d.names.key_alias;
        let step = self
            .progress
            .begin(format!("creating KMS key {alias}"), false);
        let kms = &self.clients.kms;
        let mut tags = Vec::new();
        for (k, v) in &self.d.tags {
            tags.push(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .map_err(|e| invalid("kms:CreateKey", alias, e))?,
            );
        }
        self.mutate("kms:CreateKey", alias)?;
        let key = kms
            .create_key()
            .description(format!(
                "Database activity stream of {} (das-setup)",
                self.d.database.arn
            ))
            .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
            .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
            .policy(self.d.documents.key_policy.to_string())
            .set_tags(Some(tags))
            .send()
            .await
            .named("kms:CreateKey", alias)?;
        let Some(meta) = key.key_metadata else {
            return Err(ApplyError::Failed {
                what: format!("KMS key {alias}"),
                reason: "CreateKey answered without KeyMetadata".into(),
            });
        };
        let arn = meta.arn().unwrap_or_default().to_owned();
        self.create_alias(&arn).await?;
        step.done(&format!("created KMS key {alias} ({arn})"));
        Ok(arn)
    }

    async fn create_alias(&self, key_arn: &str) -> Res {
        let alias = &self.d.names.key_alias;
        self.mutate("kms:CreateAlias", alias)?;
        self.clients
            .kms
            .create_alias()
            .alias_name(alias)
            .target_key_id(key_arn)
            .send()
            .await
            .named("kms:CreateAlias", alias)?;
        Ok(())
    }

    /// Starts the activity stream if the plan says so (after a stopping one has stopped);
    /// returns its status. Waiting for `started` is [`Self::wait_stream_started`].
    async fn start_stream(&self) -> Res<String> {
        let db = &self.d.database;
        let what = format!("the activity stream of {} {}", kind_word(db.kind), db.id);
        let mut status = db.stream.status.clone();
        if status == "started" {
            return Ok(status);
        }
        if status == "stopping" {
            let mut poll = Poll::new(
                self.progress,
                format!("{what} to stop"),
                STREAM_START_TIMEOUT,
            );
            while status != "stopped" {
                poll.next(&status).await?;
                status = self.stream_status().await?;
            }
            poll.done(&format!("{what} stopped"));
        }
        if self
            .plan
            .changes(Kind::ActivityStream)
            .contains(&Change::StartStream)
        {
            self.mutate("rds:StartActivityStream", &db.arn)?;
            let step = self.progress.begin(format!("starting {what}"), false);
            self.clients
                .rds
                .start_activity_stream()
                .resource_arn(&db.arn)
                .mode(aws_sdk_rds::types::ActivityStreamMode::from(
                    self.d.mode.as_str(),
                ))
                .kms_key_id(&self.d.key_arn)
                .apply_immediately(true)
                .send()
                .await
                .named("rds:StartActivityStream", &db.arn)?;
            step.done(&format!("asked RDS to start {what} ({} mode)", self.d.mode));
            status = "starting".into();
        }
        Ok(status)
    }

    async fn wait_stream_started(&self, mut status: String) -> Res {
        if status == "started" {
            return Ok(());
        }
        let db = &self.d.database;
        let what = format!("the activity stream of {} {}", kind_word(db.kind), db.id);
        let mut poll = Poll::new(
            self.progress,
            format!("{what} to start"),
            STREAM_START_TIMEOUT,
        );
        loop {
            match status.as_str() {
                "started" => break,
                "starting" => {}
                other => {
                    return Err(ApplyError::Failed {
                        what,
                        reason: format!(
                            "its status became {other:?} while starting; see the RDS events of the database"
                        ),
                    });
                }
            }
            poll.next(&status).await?;
            status = self.stream_status().await?;
        }
        poll.done(&format!("{what} started"));
        Ok(())
    }

    async fn stream_status(&self) -> Res<String> {
        let target = crate::naming::TargetRef {
            kind: self.d.database.kind,
            id: self.d.database.id.clone(),
            region: None,
            account: None,
        };
        match observe::database(self.clients, &target).await? {
            Some(db) => Ok(db.stream.status),
            None => Err(ApplyError::Failed {
                what: format!("{} {}", kind_word(self.d.database.kind), self.d.database.id),
                reason: "no longer exists".into(),
            }),
        }
    }

    async fn bucket(&self) -> Res {
        let changes = self.plan.changes(Kind::Bucket);
        if changes.is_empty() {
            return Ok(());
        }
        let name = &self.d.bucket;
        let what = format!("bucket {name}");
        let step = self.progress.begin(format!("configuring {what}"), false);
        let s3 = &self.clients.s3;
        use aws_sdk_s3::types as t;
        if changes.contains(&Change::CreateBucket) {
            self.mutate("s3:CreateBucket", name)?;
            let mut create = s3.create_bucket().bucket(name);
            let region = self.d.identity.region.as_str();
            if region != "us-east-1" {
                create = create.create_bucket_configuration(
                    t::CreateBucketConfiguration::builder()
                        .location_constraint(t::BucketLocationConstraint::from(region))
                        .build(),
                );
            }
            match create.send().await.named("s3:CreateBucket", &what) {
                Ok(_) => {}
                // Created by an earlier, interrupted run: ours already.
                Err(e) if e.code_is(&["BucketAlreadyOwnedByYou"]) => {}
                Err(e) if e.code_is(&["BucketAlreadyExists"]) => {
                    return Err(ApplyError::Failed {
                        what,
                        reason:
                            "the name belongs to another AWS account; choose another with --bucket"
                                .into(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        // The settings one after another: S3 refuses concurrent configuration changes of a
        // bucket ("A conflicting conditional operation is in progress").
        for change in changes {
            match change {
                Change::PublicAccessBlock => {
                    self.mutate("s3:PutBucketPublicAccessBlock", name)?;
                    s3.put_public_access_block()
                        .bucket(name)
                        .public_access_block_configuration(
                            t::PublicAccessBlockConfiguration::builder()
                                .block_public_acls(true)
                                .ignore_public_acls(true)
                                .block_public_policy(true)
                                .restrict_public_buckets(true)
                                .build(),
                        )
                        .send()
                        .await
                        .named("s3:PutBucketPublicAccessBlock", &what)?;
                }
                Change::Ownership => {
                    self.mutate("s3:PutBucketOwnershipControls", name)?;
                    let rule = t::OwnershipControlsRule::builder()
                        .object_ownership(t::ObjectOwnership::BucketOwnerEnforced)
                        .build()
                        .map_err(|e| invalid("s3:PutBucketOwnershipControls", name, e))?;
                    let controls = t::OwnershipControls::builder()
                        .rules(rule)
                        .build()
                        .map_err(|e| invalid("s3:PutBucketOwnershipControls", name, e))?;
                    s3.put_bucket_ownership_controls()
                        .bucket(name)
                        .ownership_controls(controls)
                        .send()
                        .await
                        .named("s3:PutBucketOwnershipControls", &what)?;
                }
                Change::Encryption => {
                    self.mutate("s3:PutEncryptionConfiguration", name)?;
                    let default = t::ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(t::ServerSideEncryption::Aes256)
                        .build()
                        .map_err(|e| invalid("s3:PutEncryptionConfiguration", name, e))?;
                    let config = t::ServerSideEncryptionConfiguration::builder()
                        .rules(
                            t::ServerSideEncryptionRule::builder()
                                .apply_server_side_encryption_by_default(default)
                                .build(),
                        )
                        .build()
                        .map_err(|e| invalid("s3:PutEncryptionConfiguration", name, e))?;
                    s3.put_bucket_encryption()
                        .bucket(name)
                        .server_side_encryption_configuration(config)
                        .send()
                        .await
                        .named("s3:PutEncryptionConfiguration", &what)?;
                }
                Change::BucketPolicy => {
                    self.mutate("s3:PutBucketPolicy", name)?;
                    s3.put_bucket_policy()
                        .bucket(name)
                        .policy(self.d.documents.bucket_policy.to_string())
                        .send()
                        .await
                        .named("s3:PutBucketPolicy", &what)?;
                }
                Change::Versioning => {
                    self.mutate("s3:PutBucketVersioning", name)?;
                    s3.put_bucket_versioning()
                        .bucket(name)
                        .versioning_configuration(
                            t::VersioningConfiguration::builder()
                                .status(t::BucketVersioningStatus::Enabled)
                                .build(),
                        )
                        .send()
                        .await
                        .named("s3:PutBucketVersioning", &what)?;
                }
                Change::Lifecycle => {
                    let want = retention_rule(self.d.retention_days);
                    let mut rule = t::LifecycleRule::builder()
                        .id(LIFECYCLE_RULE_ID)
                        .status(t::ExpirationStatus::Enabled)
                        .filter(t::LifecycleRuleFilter::builder().prefix("").build());
                    if let Some(days) = want.expiration_days {
                        rule =
                            rule.expiration(t::LifecycleExpiration::builder().days(days).build());
                    }
                    if let Some(days) = want.noncurrent_days {
                        rule = rule.noncurrent_version_expiration(
                            t::NoncurrentVersionExpiration::builder()
                                .noncurrent_days(days)
                                .build(),
                        );
                    }
                    if let Some(days) = want.abort_incomplete_days {
                        rule = rule.abort_incomplete_multipart_upload(
                            t::AbortIncompleteMultipartUpload::builder()
                                .days_after_initiation(days)
                                .build(),
                        );
                    }
                    let rule = rule
                        .build()
                        .map_err(|e| invalid("s3:PutLifecycleConfiguration", name, e))?;
                    let mut rules = match &self.observed.bucket {
                        BucketState::Present(b) => b.other_rules.clone(),
                        _ => Vec::new(),
                    };
                    rules.push(rule);
                    let config = t::BucketLifecycleConfiguration::builder()
                        .set_rules(Some(rules))
                        .build()
                        .map_err(|e| invalid("s3:PutLifecycleConfiguration", name, e))?;
                    self.mutate("s3:PutLifecycleConfiguration", name)?;
                    s3.put_bucket_lifecycle_configuration()
                        .bucket(name)
                        .lifecycle_configuration(config)
                        .send()
                        .await
                        .named("s3:PutLifecycleConfiguration", &what)?;
                }
                Change::BucketTags => {
                    let mut tags = match &self.observed.bucket {
                        BucketState::Present(b) => b.tags.clone(),
                        _ => Default::default(),
                    };
                    tags.extend(self.d.tags.clone());
                    let mut set = Vec::new();
                    for (k, v) in tags {
                        set.push(
                            t::Tag::builder()
                                .key(k)
                                .value(v)
                                .build()
                                .map_err(|e| invalid("s3:PutBucketTagging", name, e))?,
                        );
                    }
                    let tagging = t::Tagging::builder()
                        .set_tag_set(Some(set))
                        .build()
                        .map_err(|e| invalid("s3:PutBucketTagging", name, e))?;
                    self.mutate("s3:PutBucketTagging", name)?;
                    s3.put_bucket_tagging()
                        .bucket(name)
                        .tagging(tagging)
                        .send()
                        .await
                        .named("s3:PutBucketTagging", &what)?;
                }
                _ => {}
            }
        }
        step.done(&format!("{what}: {}", describe(changes)));
        Ok(())
    }

    async fn role(&self, kind: Kind) -> Res {
        let changes = self.plan.changes(kind);
        if changes.is_empty() {
            return Ok(());
        }
        let d = &self.d;
        let (name, trust, policy, purpose) = match kind {
            Kind::ProcessorRole => (
                &d.names.processor_role,
                &d.documents.processor_trust,
                &d.documents.processor_policy,
                "the das-setup processor Lambda",
            ),
            _ => (
                &d.names.firehose_role,
                &d.documents.firehose_trust,
                &d.documents.firehose_policy,
                "the das-setup delivery stream",
            ),
        };
        let what = format!("role {name}");
        let step = self.progress.begin(format!("configuring {what}"), false);
        let iam = &self.clients.iam;
        let mut tags = Vec::new();
        for (k, v) in &d.tags {
            tags.push(
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| invalid("iam:TagRole", name, e))?,
            );
        }
        for change in changes {
            match change {
                Change::CreateRole => {
                    self.mutate("iam:CreateRole", name)?;
                    let created = iam
                        .create_role()
                        .role_name(name)
                        .description(format!(
                            "Used by {purpose} of {} {}",
                            kind_word(d.database.kind),
                            d.database.id
                        ))
                        .assume_role_policy_document(trust.to_string())
                        .set_tags(Some(tags.clone()))
                        .send()
                        .await
                        .named("iam:CreateRole", &what);
                    match created {
                        Ok(_) => {}
                        // An interrupted run created it: make sure it is what we want.
                        Err(e) if e.code_is(&["EntityAlreadyExists"]) => {
                            self.mutate("iam:UpdateAssumeRolePolicy", name)?;
                            iam.update_assume_role_policy()
                                .role_name(name)
                                .policy_document(trust.to_string())
                                .send()
                                .await
                                .named("iam:UpdateAssumeRolePolicy", &what)?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Change::Trust => {
                    self.mutate("iam:UpdateAssumeRolePolicy", name)?;
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(trust.to_string())
                        .send()
                        .await
                        .named("iam:UpdateAssumeRolePolicy", &what)?;
                }
                Change::RolePolicy => {
                    self.mutate("iam:PutRolePolicy", name)?;
                    iam.put_role_policy()
                        .role_name(name)
                        .policy_name(&d.names.role_policy)
                        .policy_document(policy.to_string())
                        .send()
                        .await
                        .named("iam:PutRolePolicy", &what)?;
                }
                Change::RoleTags => {
                    self.mutate("iam:TagRole", name)?;
                    iam.tag_role()
                        .role_name(name)
                        .set_tags(Some(tags.clone()))
                        .send()
                        .await
                        .named("iam:TagRole", &what)?;
                }
                _ => {}
            }
        }
        step.done(&format!("{what}: {}", describe(changes)));
        Ok(())
    }

    async fn log_group(&self, kind: Kind) -> Res {
        let changes = self.plan.changes(kind);
        if changes.is_empty() {
            return Ok(());
        }
        let names = &self.d.names;
        let name = match kind {
            Kind::LambdaLogGroup => &names.lambda_log_group,
            _ => &names.firehose_log_group,
        };
        let what = format!("log group {name}");
        let step = self.progress.begin(format!("configuring {what}"), false);
        let logs = &self.clients.logs;
        for change in changes {
            match change {
                Change::CreateLogGroup => {
                    self.mutate("logs:CreateLogGroup", name)?;
                    let created = logs
                        .create_log_group()
                        .log_group_name(name)
                        .set_tags(Some(self.d.tags.clone().into_iter().collect()))
                        .send()
                        .await
                        .named("logs:CreateLogGroup", &what);
                    found(created, &["ResourceAlreadyExistsException"])?;
                }
                Change::Retention => {
                    self.mutate("logs:PutRetentionPolicy", name)?;
                    logs.put_retention_policy()
                        .log_group_name(name)
                        .retention_in_days(LOG_RETENTION_DAYS)
                        .send()
                        .await
                        .named("logs:PutRetentionPolicy", &what)?;
                }
                Change::LogStream => {
                    self.mutate("logs:CreateLogStream", name)?;
                    let created = logs
                        .create_log_stream()
                        .log_group_name(name)
                        .log_stream_name(&names.firehose_log_stream)
                        .send()
                        .await
                        .named("logs:CreateLogStream", &what);
                    found(created, &["ResourceAlreadyExistsException"])?;
                }
                _ => {}
            }
        }
        step.done(&format!("{what}: {}", describe(changes)));
        Ok(())
    }

    async fn function(&self) -> Res {
        let changes = self.plan.changes(Kind::Function);
        let name = &self.d.names.function;
        let what = format!("function {name}");
        let lambda = &self.clients.lambda;
        let spec = &self.d.function;
        use aws_sdk_lambda::primitives::Blob;
        use aws_sdk_lambda::types as t;
        let environment = || {
            t::Environment::builder()
                .set_variables(Some(
                    spec.environment
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<HashMap<_, _>>(),
                ))
                .build()
        };
        let description = format!(
            "Decrypts and classifies the activity stream of {} {} (das-setup)",
            kind_word(self.d.database.kind),
            self.d.database.id
        );
        for change in changes {
            let step = self.progress.begin(format!("{what}: {change}"), false);
            match change {
                Change::CreateFunction => {
                    // Counted (and the test switch checked) once, not per IAM-propagation retry.
                    self.mutate("lambda:CreateFunction", name)?;
                    let created = self
                        .retry_iam(&what, || async {
                            lambda
                                .create_function()
                                .function_name(name)
                                .description(&description)
                                .runtime(t::Runtime::from(spec.runtime.as_str()))
                                .handler(&spec.handler)
                                .role(&spec.role_arn)
                                .architectures(t::Architecture::from(spec.arch.as_str()))
                                .memory_size(spec.memory_mb)
                                .timeout(spec.timeout_seconds)
                                .environment(environment())
                                .code(
                                    t::FunctionCode::builder()
                                        .zip_file(Blob::new(self.zip))
                                        .build(),
                                )
                                .set_tags(Some(self.d.tags.clone().into_iter().collect()))
                                .send()
                                .await
                                .named("lambda:CreateFunction", &what)
                        })
                        .await;
                    match created {
                        Ok(_) => {}
                        Err(ApplyError::Aws(e)) if e.code_is(&["ResourceConflictException"]) => {
                            return Err(ApplyError::Failed {
                                what,
                                reason: "it was created meanwhile by someone else; run `das-setup up` again".into(),
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
                Change::FunctionConfiguration => {
                    self.wait_function(&what, false).await?;
                    // Counted (and the test switch checked) once, not per IAM-propagation retry.
                    self.mutate("lambda:UpdateFunctionConfiguration", name)?;
                    self.retry_iam(&what, || async {
                        lambda
                            .update_function_configuration()
                            .function_name(name)
                            .description(&description)
                            .runtime(t::Runtime::from(spec.runtime.as_str()))
                            .handler(&spec.handler)
                            .role(&spec.role_arn)
                            .memory_size(spec.memory_mb)
                            .timeout(spec.timeout_seconds)
                            .environment(environment())
                            .send()
                            .await
                            .named("lambda:UpdateFunctionConfiguration", &what)
                    })
                    .await?;
                }
                Change::FunctionCode => {
                    self.wait_function(&what, false).await?;
                    self.mutate("lambda:UpdateFunctionCode", name)?;
                    lambda
                        .update_function_code()
                        .function_name(name)
                        .zip_file(Blob::new(self.zip))
                        .architectures(t::Architecture::from(spec.arch.as_str()))
                        .send()
                        .await
                        .named("lambda:UpdateFunctionCode", &what)?;
                }
                Change::FunctionTags => {
                    self.mutate("lambda:TagResource", name)?;
                    lambda
                        .tag_resource()
                        .resource(&self.d.function_arn)
                        .set_tags(Some(self.d.tags.clone().into_iter().collect()))
                        .send()
                        .await
                        .named("lambda:TagResource", &what)?;
                }
                _ => {}
            }
            step.done(&format!("{what}: {change}"));
        }
        // Always: the delivery stream must not point at a function that is not ready.
        self.wait_function(&what, true).await
    }

    /// Waits for `State = Active` and `LastUpdateStatus = Successful`.
    async fn wait_function(&self, what: &str, announce_done: bool) -> Res {
        let name = &self.d.names.function;
        let mut poll: Option<Poll> = None;
        loop {
            let c = self
                .clients
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .named("lambda:GetFunctionConfiguration", what)?;
            let state = c.state().map_or("", |s| s.as_str());
            let update = c.last_update_status().map_or("", |s| s.as_str());
            if state == "Failed" || update == "Failed" {
                return Err(ApplyError::Failed {
                    what: what.to_owned(),
                    reason: format!(
                        "state {state}, last update {update}: {}",
                        c.state_reason()
                            .or(c.last_update_status_reason())
                            .unwrap_or("no reason given")
                    ),
                });
            }
            if (state.is_empty() || state == "Active")
                && (update.is_empty() || update == "Successful")
            {
                if let Some(p) = poll {
                    p.done(&format!("{what} is active"));
                } else if announce_done && !self.plan.changes(Kind::Function).is_empty() {
                    self.progress.line(&format!("  ✓ {what} is active"));
                }
                return Ok(());
            }
            let p = poll.get_or_insert_with(|| {
                Poll::new(
                    self.progress,
                    format!("{what} to be active"),
                    FUNCTION_READY_TIMEOUT,
                )
            });
            p.next(&format!("state {state}, last update {update}"))
                .await?;
        }
    }

    async fn delivery_stream(&self) -> Res {
        let changes = self.plan.changes(Kind::DeliveryStream);
        if changes.is_empty() {
            return Ok(());
        }
        let name = &self.d.names.delivery_stream;
        let what = format!("delivery stream {name}");
        let firehose = &self.clients.firehose;
        let spec = &self.d.delivery;
        use aws_sdk_firehose::types as t;
        let bad = |e| invalid("firehose:CreateDeliveryStream", name, e);
        let parameter = |n: t::ProcessorParameterName, v: String| {
            t::ProcessorParameter::builder()
                .parameter_name(n)
                .parameter_value(v)
                .build()
        };
        let processor = t::Processor::builder()
            .r#type(t::ProcessorType::Lambda)
            .parameters(
                parameter(
                    t::ProcessorParameterName::LambdaArn,
                    spec.lambda_arn.clone(),
                )
                .map_err(bad)?,
            )
            .parameters(
                parameter(
                    t::ProcessorParameterName::BufferSizeInMb,
                    spec.processor_buffer_mb.to_string(),
                )
                .map_err(bad)?,
            )
            .parameters(
                parameter(
                    t::ProcessorParameterName::BufferIntervalInSeconds,
                    spec.processor_buffer_seconds.to_string(),
                )
                .map_err(bad)?,
            )
            .parameters(
                parameter(
                    t::ProcessorParameterName::LambdaNumberOfRetries,
                    spec.processor_retries.to_string(),
                )
                .map_err(bad)?,
            )
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
        for (k, v) in &self.d.tags {
            tags.push(t::Tag::builder().key(k).value(v).build().map_err(bad)?);
        }

        for change in changes {
            match change {
                Change::DeleteDeliveryStream => {
                    self.mutate("firehose:DeleteDeliveryStream", name)?;
                    let deleted = firehose
                        .delete_delivery_stream()
                        .delivery_stream_name(name)
                        .send()
                        .await
                        .named("firehose:DeleteDeliveryStream", &what);
                    found(deleted, &["ResourceNotFoundException"])?;
                    let mut poll = Poll::new(
                        self.progress,
                        format!("{what} to be deleted"),
                        DELIVERY_READY_TIMEOUT,
                    );
                    while let Some(s) = observe::delivery(self.clients, name).await? {
                        poll.next(&s.status).await?;
                    }
                    poll.done(&format!("{what} deleted"));
                }
                Change::CreateDeliveryStream => {
                    let step = self.progress.begin(format!("creating {what}"), false);
                    let destination = t::ExtendedS3DestinationConfiguration::builder()
                        .role_arn(&spec.role_arn)
                        .bucket_arn(&spec.bucket_arn)
                        .prefix(&spec.prefix)
                        .error_output_prefix(&spec.error_prefix)
                        .buffering_hints(buffering.clone())
                        .compression_format(t::CompressionFormat::Gzip)
                        .cloud_watch_logging_options(logging.clone())
                        .processing_configuration(processing.clone())
                        .build()
                        .map_err(bad)?;
                    let source = t::KinesisStreamSourceConfiguration::builder()
                        .kinesis_stream_arn(&spec.source_stream_arn)
                        .role_arn(&spec.role_arn)
                        .build()
                        .map_err(bad)?;
                    // Counted (and the test switch checked) once, not per IAM-propagation retry.
                    self.mutate("firehose:CreateDeliveryStream", name)?;
                    let created = self
                        .retry_iam(&what, || async {
                            firehose
                                .create_delivery_stream()
                                .delivery_stream_name(name)
                                .delivery_stream_type(t::DeliveryStreamType::KinesisStreamAsSource)
                                .kinesis_stream_source_configuration(source.clone())
                                .extended_s3_destination_configuration(destination.clone())
                                .set_tags(Some(tags.clone()))
                                .send()
                                .await
                                .named("firehose:CreateDeliveryStream", &what)
                        })
                        .await;
                    match created {
                        Ok(_) => {}
                        Err(ApplyError::Aws(e)) if e.code_is(&["ResourceInUseException"]) => {}
                        Err(e) => return Err(e),
                    }
                    step.done(&format!("created {what}"));
                }
                Change::Destination => {
                    let Some(current) = &self.observed.delivery else {
                        continue;
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
                        .build();
                    let step = self.progress.begin(format!("updating {what}"), false);
                    // Counted (and the test switch checked) once, not per IAM-propagation retry.
                    self.mutate("firehose:UpdateDestination", name)?;
                    self.retry_iam(&what, || async {
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
                Change::DeliveryTags => {
                    self.mutate("firehose:TagDeliveryStream", name)?;
                    firehose
                        .tag_delivery_stream()
                        .delivery_stream_name(name)
                        .set_tags(Some(tags.clone()))
                        .send()
                        .await
                        .named("firehose:TagDeliveryStream", &what)?;
                }
                _ => {}
            }
        }
        let mut poll: Option<Poll> = None;
        loop {
            let Some(s) = observe::delivery(self.clients, name).await? else {
                return Err(ApplyError::Failed {
                    what,
                    reason: "it disappeared while being created".into(),
                });
            };
            match s.status.as_str() {
                "ACTIVE" => {
                    if let Some(p) = poll {
                        p.done(&format!("{what} is active"));
                    }
                    return Ok(());
                }
                "CREATING" | "UPDATING" => {}
                other => {
                    return Err(ApplyError::Failed {
                        what,
                        reason: format!(
                            "status {other}: {}",
                            s.failure.as_deref().unwrap_or("no failure description")
                        ),
                    });
                }
            }
            let p = poll.get_or_insert_with(|| {
                Poll::new(
                    self.progress,
                    format!("{what} to be active"),
                    DELIVERY_READY_TIMEOUT,
                )
            });
            p.next(&s.status).await?;
        }
    }
}

fn invalid(action: &'static str, resource: &str, e: impl fmt::Display) -> ApplyError {
    ApplyError::Aws(AwsError::invalid(action, resource, e.to_string()))
}

fn describe(changes: &[Change]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
