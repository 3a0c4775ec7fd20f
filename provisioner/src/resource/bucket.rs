//! The S3 bucket the audit events go to: private (all four public-access blocks, bucket owner
//! enforced), encrypted by default, versioned, TLS only, das-setup's lifecycle rules (other
//! rules kept: `retention`), Object Lock when asked (never removed: S3 cannot), das-setup's tags
//! (other tags kept). `down` empties and deletes it only with `--delete-bucket`, only when it is
//! das-setup's, and never bypasses Object Lock: what the lock keeps is named and kept.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::operation::head_bucket::HeadBucketError;
use aws_sdk_s3::types::{self as t, BucketVersioningStatus, ObjectOwnership, ServerSideEncryption};
use serde_json::Value;

use super::{
    ApplyError, Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict, invalid,
    missing_tags,
};
use crate::aws::{AwsError, Clients, ErrorKind, Named as _, absent_by_code, policy_document};
use crate::desired::Desired;
use crate::retention::{self, ObjectLock, Rule};

#[derive(Debug, Clone, PartialEq)]
pub enum BucketState {
    Missing,
    /// The name exists but this account may not use it (403): another account's bucket.
    Foreign,
    Present(Box<BucketSettings>),
}

/// The bucket's Object Lock, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LockState {
    #[default]
    Off,
    /// Enabled; with the default retention new versions get, if one is set.
    On(Option<DefaultLock>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultLock {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: String,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

impl DefaultLock {
    fn matches(&self, want: &ObjectLock) -> bool {
        self.mode == want.mode.as_str()
            && self.years.is_none()
            && self.days == i32::try_from(want.days).ok()
    }
}

impl fmt::Display for LockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockState::Off => f.write_str("no Object Lock"),
            LockState::On(None) => f.write_str("Object Lock on, no default retention"),
            LockState::On(Some(d)) => {
                write!(f, "Object Lock {}", d.mode)?;
                if let Some(days) = d.days {
                    write!(f, " {days} day(s)")?;
                }
                if let Some(years) = d.years {
                    write!(f, " {years} year(s)")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketSettings {
    /// All four public-access blocks on.
    pub public_access_blocked: bool,
    pub ownership: Option<ObjectOwnership>,
    /// The default encryption algorithm.
    pub encryption: Option<ServerSideEncryption>,
    /// The KMS key of SSE-KMS default encryption (`None`: none named, S3 uses `aws/s3`).
    pub encryption_key: Option<String>,
    pub policy: Option<Value>,
    pub versioning: Option<BucketVersioningStatus>,
    /// das-setup's rules (`retention::RULE_ID` and `<RULE_ID>-...`), by id.
    pub rules: BTreeMap<String, Rule>,
    /// The other lifecycle rules (kept when das-setup writes its own).
    pub other_rules: Vec<t::LifecycleRule>,
    pub object_lock: LockState,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BucketChange {
    Create,
    PublicAccessBlock,
    Ownership,
    Encryption,
    Policy,
    Versioning,
    ObjectLock,
    Lifecycle,
    Tags,
}

impl fmt::Display for BucketChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BucketChange::Create => "create bucket",
            BucketChange::PublicAccessBlock => "block public access",
            BucketChange::Ownership => "bucket-owner-enforced ownership",
            BucketChange::Encryption => "default encryption",
            BucketChange::Policy => "bucket policy (TLS only)",
            BucketChange::Versioning => "versioning",
            BucketChange::ObjectLock => "Object Lock default retention",
            BucketChange::Lifecycle => "lifecycle rules",
            BucketChange::Tags => "tags",
        })
    }
}

impl Change for BucketChange {
    fn effect(self) -> Effect {
        match self {
            BucketChange::Create => Effect::Create,
            BucketChange::PublicAccessBlock
            | BucketChange::Ownership
            | BucketChange::Encryption
            | BucketChange::Policy
            | BucketChange::Versioning
            | BucketChange::ObjectLock
            | BucketChange::Lifecycle
            | BucketChange::Tags => Effect::Update,
        }
    }
}

// The "not configured" answers of the bucket's sub-resources are documented error codes, not
// modelled errors (S3 API reference, "List of error codes":
// https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList).
const NO_PUBLIC_ACCESS_BLOCK: &str = "NoSuchPublicAccessBlockConfiguration";
const NO_OWNERSHIP_CONTROLS: &str = "OwnershipControlsNotFoundError";
const NO_ENCRYPTION: &str = "ServerSideEncryptionConfigurationNotFoundError";
const NO_POLICY: &str = "NoSuchBucketPolicy";
const NO_LIFECYCLE: &str = "NoSuchLifecycleConfiguration";
const NO_TAGS: &str = "NoSuchTagSet";
const NO_OBJECT_LOCK: &str = "ObjectLockConfigurationNotFoundError";

pub async fn observe(clients: &Clients, name: &str) -> Result<BucketState, AwsError> {
    let what = format!("bucket {name}");
    match clients.s3.head_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if matches!(e.err(), HeadBucketError::NotFound(_)) => {
            return Ok(BucketState::Missing);
        }
        // HeadBucket answers without a body, so S3 cannot name the error: "If the bucket does
        // not exist or you do not have permission to access it, the HEAD request returns a
        // generic 400 Bad Request, 403 Forbidden or 404 Not Found code" (HeadBucket API
        // reference). 403 for a name that exists: another account's bucket, or a policy that
        // denies this principal.
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 403 => {
            return Ok(BucketState::Foreign);
        }
        // A bucket in another region answers 301 (or 400) with its region in the
        // `x-amz-bucket-region` header (HeadBucket API reference, "BucketRegion").
        Err(SdkError::ServiceError(e))
            if matches!(e.raw().status().as_u16(), 301 | 400)
                && e.raw().headers().get("x-amz-bucket-region").is_some() =>
        {
            let region = e.raw().headers().get("x-amz-bucket-region").unwrap_or("?");
            return Err(AwsError::invalid(
                "s3:ListBucket",
                &what,
                format!(
                    "the bucket is in {region}, not the region in use: pass --region {region}, or choose a bucket of this region with --bucket"
                ),
            ));
        }
        Err(e) => return Err(AwsError::new("s3:ListBucket", &what, e)),
    }
    let s3 = &clients.s3;
    let (pab, ownership, encryption, policy, versioning, lifecycle, lock, tags) = tokio::join!(
        async {
            let r = s3.get_public_access_block().bucket(name).send().await;
            absent_by_code(
                r.named("s3:GetBucketPublicAccessBlock", &what),
                NO_PUBLIC_ACCESS_BLOCK,
            )
        },
        async {
            let r = s3.get_bucket_ownership_controls().bucket(name).send().await;
            absent_by_code(
                r.named("s3:GetBucketOwnershipControls", &what),
                NO_OWNERSHIP_CONTROLS,
            )
        },
        async {
            let r = s3.get_bucket_encryption().bucket(name).send().await;
            absent_by_code(
                r.named("s3:GetEncryptionConfiguration", &what),
                NO_ENCRYPTION,
            )
        },
        async {
            let r = s3.get_bucket_policy().bucket(name).send().await;
            absent_by_code(r.named("s3:GetBucketPolicy", &what), NO_POLICY)
        },
        async {
            let r = s3.get_bucket_versioning().bucket(name).send().await;
            r.named("s3:GetBucketVersioning", &what)
        },
        async {
            let r = s3
                .get_bucket_lifecycle_configuration()
                .bucket(name)
                .send()
                .await;
            absent_by_code(r.named("s3:GetLifecycleConfiguration", &what), NO_LIFECYCLE)
        },
        async {
            let r = s3.get_object_lock_configuration().bucket(name).send().await;
            absent_by_code(
                r.named("s3:GetBucketObjectLockConfiguration", &what),
                NO_OBJECT_LOCK,
            )
        },
        async {
            let r = s3.get_bucket_tagging().bucket(name).send().await;
            absent_by_code(r.named("s3:GetBucketTagging", &what), NO_TAGS)
        },
    );
    let public_access_blocked = pab?
        .and_then(|o| o.public_access_block_configuration)
        .is_some_and(|c| {
            c.block_public_acls == Some(true)
                && c.ignore_public_acls == Some(true)
                && c.block_public_policy == Some(true)
                && c.restrict_public_buckets == Some(true)
        });
    let ownership = ownership?
        .and_then(|o| o.ownership_controls)
        .and_then(|c| c.rules.first().map(|r| r.object_ownership.clone()));
    let default = encryption?
        .and_then(|o| o.server_side_encryption_configuration)
        .and_then(|c| {
            c.rules
                .into_iter()
                .next()
                .and_then(|r| r.apply_server_side_encryption_by_default)
        });
    let encryption = default.as_ref().map(|d| d.sse_algorithm.clone());
    let encryption_key = default.and_then(|d| d.kms_master_key_id);
    let policy = policy?
        .and_then(|o| o.policy)
        .and_then(|p| policy_document(&p));
    let versioning = versioning?.status;
    let mut rules = BTreeMap::new();
    let mut other_rules = Vec::new();
    for rule in lifecycle?.and_then(|o| o.rules).unwrap_or_default() {
        let ours = rule.id.as_deref().filter(|id| {
            *id == retention::RULE_ID
                || id
                    .strip_prefix(retention::RULE_ID)
                    .is_some_and(|rest| rest.starts_with('-'))
        });
        if let Some(id) = ours {
            let prefix = rule
                .filter
                .as_ref()
                .and_then(|f| f.prefix.clone())
                .or_else(|| {
                    #[allow(deprecated)]
                    rule.prefix.clone()
                })
                .unwrap_or_default();
            rules.insert(
                id.to_owned(),
                Rule {
                    prefix,
                    expiration_days: rule.expiration.as_ref().and_then(|e| e.days),
                    noncurrent_days: rule
                        .noncurrent_version_expiration
                        .as_ref()
                        .and_then(|e| e.noncurrent_days),
                    abort_incomplete_days: rule
                        .abort_incomplete_multipart_upload
                        .as_ref()
                        .and_then(|a| a.days_after_initiation),
                },
            );
        } else {
            other_rules.push(rule);
        }
    }
    let tags = tags?
        .map(|o| o.tag_set.into_iter().map(|t| (t.key, t.value)).collect())
        .unwrap_or_default();
    Ok(BucketState::Present(Box::new(BucketSettings {
        public_access_blocked,
        ownership,
        encryption,
        encryption_key,
        policy,
        versioning,
        rules,
        other_rules,
        object_lock: lock_state(lock?),
        tags,
    })))
}

fn lock_state(
    found: Option<
        aws_sdk_s3::operation::get_object_lock_configuration::GetObjectLockConfigurationOutput,
    >,
) -> LockState {
    let Some(config) = found.and_then(|o| o.object_lock_configuration) else {
        return LockState::Off;
    };
    if config.object_lock_enabled != Some(t::ObjectLockEnabled::Enabled) {
        return LockState::Off;
    }
    LockState::On(config.rule.and_then(|r| r.default_retention).and_then(|d| {
        Some(DefaultLock {
            mode: d.mode?.as_str().to_owned(),
            days: d.days,
            years: d.years,
        })
    }))
}

/// Why the processor and Firehose could not write to this bucket, if they could not: its
/// default encryption is SSE-KMS under a customer-managed key. S3 then calls KMS for each
/// write with the writer's permissions (`kms:GenerateDataKey`, and `kms:Decrypt` for the
/// multipart uploads Firehose makes: Firehose Developer Guide, "Grant Firehose access to an
/// Amazon S3 destination"), which das-setup's roles do not hold. The AWS-managed `aws/s3` key
/// (no key named, or `alias/aws/s3`) grants them through its key policy.
pub fn unwritable(state: &BucketState) -> Option<String> {
    let BucketState::Present(b) = state else {
        return None;
    };
    let key = b.encryption_key.as_deref()?;
    let kms = matches!(
        b.encryption,
        Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
    );
    (kms && !key.ends_with("alias/aws/s3")).then(|| {
        format!(
            "its default encryption is SSE-KMS with key {key}, which the processor and Firehose roles may not use, so every write would be refused; choose another --bucket, or set the bucket's default encryption to SSE-S3 or the aws/s3 key"
        )
    })
}

pub fn compare(d: &Desired, state: &BucketState) -> Planned<BucketChange> {
    use BucketChange as C;
    let mut plan = Planned::new(d.bucket.clone(), vec![]);
    match state {
        BucketState::Missing | BucketState::Foreign => {
            plan.changes = vec![
                C::Create,
                C::PublicAccessBlock,
                C::Ownership,
                C::Encryption,
                C::Policy,
                C::Versioning,
            ];
            if let Some(lock) = &d.object_lock {
                plan.changes.push(C::ObjectLock);
                plan.notes.push(lock_note(lock));
            }
            plan.changes.extend([C::Lifecycle, C::Tags]);
        }
        BucketState::Present(b) => {
            if !b.public_access_blocked {
                plan.changes.push(C::PublicAccessBlock);
            }
            if b.ownership != Some(ObjectOwnership::BucketOwnerEnforced) {
                plan.changes.push(C::Ownership);
            }
            match &b.encryption {
                Some(ServerSideEncryption::Aes256) => {}
                Some(other) => plan.notes.push(format!(
                    "default encryption {} kept as found",
                    other.as_str()
                )),
                None => plan.changes.push(C::Encryption),
            }
            if b.policy.as_ref() != Some(&d.documents.bucket_policy) {
                plan.changes.push(C::Policy);
            }
            if b.versioning != Some(BucketVersioningStatus::Enabled) {
                plan.changes.push(C::Versioning);
            }
            match (&d.object_lock, &b.object_lock) {
                (Some(want), LockState::On(Some(found))) if found.matches(want) => {}
                (Some(want), found) => {
                    plan.changes.push(C::ObjectLock);
                    plan.notes.push(if *found == LockState::Off {
                        lock_note(want)
                    } else {
                        format!(
                            "{found} becomes {want} for versions written from now on; versions already written keep the retention they have"
                        )
                    });
                }
                (None, LockState::Off) => {}
                (None, found) => plan.notes.push(format!(
                    "{found} kept as found (S3 cannot turn Object Lock off)"
                )),
            }
            if b.rules != d.retention.rules(&d.prefix) {
                plan.changes.push(C::Lifecycle);
            }
            if missing_tags(&d.tags, &b.tags) {
                plan.changes.push(C::Tags);
            }
        }
    }
    plan
}

fn lock_note(lock: &ObjectLock) -> String {
    format!(
        "Object Lock {lock}: permanent on this bucket (S3 cannot turn it off), and no version can be deleted before its {} day(s) are over{}",
        lock.days,
        match lock.mode {
            retention::LockMode::Compliance => ", by anyone, the root user included",
            retention::LockMode::Governance => {
                " except by principals granted s3:BypassGovernanceRetention"
            }
        }
    )
}

pub async fn apply(
    ctx: &Ctx<'_>,
    d: &Desired,
    plan: &Planned<BucketChange>,
    state: &BucketState,
) -> Res {
    if plan.changes.is_empty() {
        return Ok(());
    }
    let name = &d.bucket;
    let what = format!("bucket {name}");
    let step = ctx.progress.begin(format!("configuring {what}"), false);
    let s3 = &ctx.clients.s3;
    let present = match state {
        BucketState::Present(b) => Some(&**b),
        BucketState::Missing | BucketState::Foreign => None,
    };
    // The settings one after another: S3 refuses concurrent configuration changes of a bucket
    // ("A conflicting conditional operation is in progress").
    for change in &plan.changes {
        match change {
            BucketChange::Create => {
                ctx.mutate("s3:CreateBucket", name)?;
                let mut create = s3
                    .create_bucket()
                    .bucket(name)
                    // Object Lock is best enabled at creation, where it needs no empty bucket
                    // nor prior versioning (CreateBucket API reference,
                    // ObjectLockEnabledForBucket).
                    .set_object_lock_enabled_for_bucket(d.object_lock.map(|_| true));
                let region = d.identity.region.as_str();
                // us-east-1 takes no location constraint (CreateBucket API reference).
                if region != "us-east-1" {
                    create = create.create_bucket_configuration(
                        t::CreateBucketConfiguration::builder()
                            .location_constraint(t::BucketLocationConstraint::from(region))
                            .build(),
                    );
                }
                match create.send().await {
                    Ok(_) => {}
                    Err(SdkError::ServiceError(e))
                        if matches!(e.err(), CreateBucketError::BucketAlreadyOwnedByYou(_)) =>
                    {
                        // Created by an earlier, interrupted run: ours already.
                    }
                    Err(SdkError::ServiceError(e))
                        if matches!(e.err(), CreateBucketError::BucketAlreadyExists(_)) =>
                    {
                        return Err(ApplyError::Failed {
                            what,
                            reason: "the name belongs to another AWS account; choose another with --bucket".into(),
                        });
                    }
                    Err(e) => return Err(AwsError::new("s3:CreateBucket", &what, e).into()),
                }
            }
            BucketChange::PublicAccessBlock => {
                ctx.mutate("s3:PutBucketPublicAccessBlock", name)?;
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
            BucketChange::Ownership => {
                let bad = |e| invalid("s3:PutBucketOwnershipControls", name, e);
                let rule = t::OwnershipControlsRule::builder()
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .build()
                    .map_err(bad)?;
                let controls = t::OwnershipControls::builder()
                    .rules(rule)
                    .build()
                    .map_err(bad)?;
                ctx.mutate("s3:PutBucketOwnershipControls", name)?;
                s3.put_bucket_ownership_controls()
                    .bucket(name)
                    .ownership_controls(controls)
                    .send()
                    .await
                    .named("s3:PutBucketOwnershipControls", &what)?;
            }
            BucketChange::Encryption => {
                let bad = |e| invalid("s3:PutEncryptionConfiguration", name, e);
                let default = t::ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .map_err(bad)?;
                let config = t::ServerSideEncryptionConfiguration::builder()
                    .rules(
                        t::ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(default)
                            .build(),
                    )
                    .build()
                    .map_err(bad)?;
                ctx.mutate("s3:PutEncryptionConfiguration", name)?;
                s3.put_bucket_encryption()
                    .bucket(name)
                    .server_side_encryption_configuration(config)
                    .send()
                    .await
                    .named("s3:PutEncryptionConfiguration", &what)?;
            }
            BucketChange::Policy => {
                ctx.mutate("s3:PutBucketPolicy", name)?;
                s3.put_bucket_policy()
                    .bucket(name)
                    .policy(d.documents.bucket_policy.to_string())
                    .send()
                    .await
                    .named("s3:PutBucketPolicy", &what)?;
            }
            BucketChange::Versioning => {
                ctx.mutate("s3:PutBucketVersioning", name)?;
                s3.put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(
                        t::VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .named("s3:PutBucketVersioning", &what)?;
            }
            BucketChange::ObjectLock => {
                let Some(lock) = &d.object_lock else { continue };
                let days = i32::try_from(lock.days).unwrap_or(i32::MAX);
                let config = t::ObjectLockConfiguration::builder()
                    .object_lock_enabled(t::ObjectLockEnabled::Enabled)
                    .rule(
                        t::ObjectLockRule::builder()
                            .default_retention(
                                t::DefaultRetention::builder()
                                    .mode(t::ObjectLockRetentionMode::from(lock.mode.as_str()))
                                    .days(days)
                                    .build(),
                            )
                            .build(),
                    )
                    .build();
                ctx.mutate("s3:PutBucketObjectLockConfiguration", name)?;
                // "You can enable Object Lock for new or existing buckets" once versioning is
                // on (PutObjectLockConfiguration API reference); versioning is set just before.
                s3.put_object_lock_configuration()
                    .bucket(name)
                    .object_lock_configuration(config)
                    .send()
                    .await
                    .named("s3:PutBucketObjectLockConfiguration", &what)
                    .map_err(|e| match e.kind {
                        ErrorKind::Service => ApplyError::Failed {
                            what: what.clone(),
                            reason: format!(
                                "S3 refused Object Lock on this bucket, so it cannot be made write-once: {}: {}; choose another --bucket, or run without --object-lock",
                                e.code.as_deref().unwrap_or("error"),
                                e.message
                            ),
                        },
                        _ => e.into(),
                    })?;
            }
            BucketChange::Lifecycle => {
                let bad = |e| invalid("s3:PutLifecycleConfiguration", name, e);
                let mut rules = present.map(|b| b.other_rules.clone()).unwrap_or_default();
                for (id, want) in d.retention.rules(&d.prefix) {
                    let mut rule = t::LifecycleRule::builder()
                        .id(id)
                        .status(t::ExpirationStatus::Enabled)
                        .filter(
                            t::LifecycleRuleFilter::builder()
                                .prefix(want.prefix)
                                .build(),
                        );
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
                    rules.push(rule.build().map_err(bad)?);
                }
                let config = t::BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()
                    .map_err(bad)?;
                ctx.mutate("s3:PutLifecycleConfiguration", name)?;
                s3.put_bucket_lifecycle_configuration()
                    .bucket(name)
                    .lifecycle_configuration(config)
                    .send()
                    .await
                    .named("s3:PutLifecycleConfiguration", &what)?;
            }
            BucketChange::Tags => {
                let bad = |e| invalid("s3:PutBucketTagging", name, e);
                let mut tags = present.map(|b| b.tags.clone()).unwrap_or_default();
                tags.extend(d.tags.clone());
                let mut set = Vec::new();
                for (k, v) in tags {
                    set.push(t::Tag::builder().key(k).value(v).build().map_err(bad)?);
                }
                let tagging = t::Tagging::builder()
                    .set_tag_set(Some(set))
                    .build()
                    .map_err(bad)?;
                ctx.mutate("s3:PutBucketTagging", name)?;
                s3.put_bucket_tagging()
                    .bucket(name)
                    .tagging(tagging)
                    .send()
                    .await
                    .named("s3:PutBucketTagging", &what)?;
            }
        }
    }
    step.done(&format!("{what}: {}", plan.descriptions().join(", ")));
    Ok(())
}

/// `down`: the bucket holds the audit events, so it goes only with `--delete-bucket`.
pub fn verdict(state: &BucketState, delete_bucket: bool) -> Verdict {
    match (state, delete_bucket) {
        (BucketState::Missing, _) => Verdict::Absent,
        (BucketState::Foreign, _) => Verdict::Keep("not accessible to this account".into()),
        (BucketState::Present(_), false) => {
            Verdict::Keep("holds the audit events; --delete-bucket deletes it".into())
        }
        (BucketState::Present(b), true) => Verdict::by_tags(&b.tags),
    }
}

/// Empties the bucket (every object version and delete marker: `stored::empty`), then deletes
/// it. Returns how many versions were deleted. Versions S3 will not delete (Object Lock, legal
/// holds) are never forced (no governance bypass): the bucket is kept, and the error names how
/// many, why, and until when.
pub async fn delete(clients: &Clients, bucket: &str) -> Result<usize, ApplyError> {
    let what = format!("bucket {bucket}");
    let emptied = crate::stored::empty(&clients.s3, bucket).await?;
    if !emptied.refused.is_empty() {
        return Err(ApplyError::Failed {
            reason: refusal(clients, bucket, &emptied).await,
            what,
        });
    }
    // DeleteBucket has no modelled errors; NoSuchBucket is the documented code (S3 error codes).
    absent_by_code(
        clients
            .s3
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .named("s3:DeleteBucket", &what),
        "NoSuchBucket",
    )?;
    Ok(emptied.deleted)
}

/// Why versions were not deleted: the retention of the newest refused one (it is retained
/// longest under a bucket's default retention), read with GetObjectRetention.
async fn refusal(clients: &Clients, bucket: &str, emptied: &crate::stored::Emptied) -> String {
    let refused = &emptied.refused;
    let newest = refused
        .iter()
        .max_by_key(|r| r.written_millis)
        .unwrap_or(&refused[0]);
    let head = format!(
        "deleted {} object version(s), but S3 refused to delete {} ({}: {}), so the bucket and those versions are kept",
        emptied.deleted,
        refused.len(),
        newest.code,
        newest.message
    );
    let retention = clients
        .s3
        .get_object_retention()
        .bucket(bucket)
        .key(&newest.key)
        .set_version_id(newest.version.clone())
        .send()
        .await
        .named("s3:GetObjectRetention", &format!("{bucket}/{}", newest.key));
    match retention.map(|o| o.retention) {
        Ok(Some(r)) => {
            let until = r
                .retain_until_date
                .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                .unwrap_or_else(|| "a date S3 did not give".into());
            let mode = r.mode.as_ref().map_or("an unnamed", |m| m.as_str());
            let bypass = if r.mode == Some(t::ObjectLockRetentionMode::Governance) {
                " (governance mode: a principal granted s3:BypassGovernanceRetention can delete them sooner with the S3 API; das-setup never bypasses it)"
            } else {
                ""
            };
            format!(
                "{head}: they are under Object Lock {mode} retention, the newest until {until}; run `das-setup down --delete-bucket` again after that{bypass}"
            )
        }
        Ok(None) => format!(
            "{head}: the newest has no retention period (a legal hold or a bucket policy keeps it)"
        ),
        Err(e) => format!("{head}; reading why failed: {e}"),
    }
}

/// `status`: the settings that keep the audit data safe.
pub fn check(name: &str, state: &BucketState, want: Option<&Desired>) -> Check {
    let b = match state {
        BucketState::Missing => {
            return Check::of(
                Resource::Bucket,
                Level::Fail,
                format!("{name} does not exist"),
            );
        }
        BucketState::Foreign => {
            return Check::of(
                Resource::Bucket,
                Level::Fail,
                format!("{name} is not accessible to this account"),
            );
        }
        BucketState::Present(b) => b,
    };
    let mut missing = Vec::new();
    if !b.public_access_blocked {
        missing.push("public access block");
    }
    if b.versioning != Some(BucketVersioningStatus::Enabled) {
        missing.push("versioning");
    }
    if b.encryption.is_none() {
        missing.push("default encryption");
    }
    if want.is_some_and(|d| b.policy.as_ref() != Some(&d.documents.bucket_policy)) {
        missing.push("TLS-only bucket policy");
    }
    let asked_lock = want.and_then(|d| d.object_lock.as_ref());
    match (&b.object_lock, asked_lock) {
        (LockState::On(Some(found)), Some(lock)) if !found.matches(lock) => {
            missing.push("the Object Lock retention asked for");
        }
        (LockState::Off | LockState::On(None), Some(_)) => missing.push("Object Lock"),
        _ => {}
    }
    let mut lock = match &b.object_lock {
        LockState::Off => String::new(),
        found => format!(", {found}"),
    };
    if let Some(expiry) = expiry_summary(&b.rules) {
        lock.push_str(&format!(", {expiry}"));
    }
    if missing.is_empty() {
        Check::of(
            Resource::Bucket,
            Level::Ok,
            format!("{name}: private, encrypted, versioned, TLS only{lock}"),
        )
    } else {
        Check::of(
            Resource::Bucket,
            Level::Warn,
            format!(
                "{name}: missing {} (das-setup up restores them){lock}",
                missing.join(", ")
            ),
        )
    }
}

/// What das-setup's lifecycle rules expire, grouped by days: `expiry 30 d: DQL; 400 d: DML ...`
/// (`everything` for the one bucket-wide rule), as an auditor reads it off `status`.
fn expiry_summary(rules: &BTreeMap<String, Rule>) -> Option<String> {
    let mut by_days: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    for (id, rule) in rules {
        if let Some(days) = rule.expiration_days {
            let folder = id
                .strip_prefix(retention::RULE_ID)
                .and_then(|rest| rest.strip_prefix('-'))
                .unwrap_or("everything");
            by_days.entry(days).or_default().push(folder);
        }
    }
    (!by_days.is_empty()).then(|| {
        let groups: Vec<String> = by_days
            .iter()
            .map(|(days, folders)| format!("{days} d: {}", folders.join(" ")))
            .collect();
        format!("expiry {}", groups.join("; "))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    /// The bucket as a complete `up` of `d` leaves it.
    pub(crate) fn converged(d: &Desired) -> BucketState {
        BucketState::Present(Box::new(BucketSettings {
            public_access_blocked: true,
            ownership: Some(ObjectOwnership::BucketOwnerEnforced),
            encryption: Some(ServerSideEncryption::Aes256),
            encryption_key: None,
            policy: Some(d.documents.bucket_policy.clone()),
            versioning: Some(BucketVersioningStatus::Enabled),
            rules: d.retention.rules(&d.prefix),
            other_rules: vec![],
            object_lock: LockState::Off,
            tags: d.tags.clone(),
        }))
    }

    /// S3's documented answer for a bucket sub-resource that is not configured (S3 error codes).
    fn unconfigured(op: &str) -> Answer {
        for (sub, code) in [
            ("publicAccessBlock", "NoSuchPublicAccessBlockConfiguration"),
            ("ownershipControls", "OwnershipControlsNotFoundError"),
            (
                "encryption",
                "ServerSideEncryptionConfigurationNotFoundError",
            ),
            ("policy", "NoSuchBucketPolicy"),
            ("lifecycle", "NoSuchLifecycleConfiguration"),
            ("tagging", "NoSuchTagSet"),
            ("object-lock", "ObjectLockConfigurationNotFoundError"),
        ] {
            if op.contains(sub) {
                return Answer::error_s3(404, code, "not configured");
            }
        }
        Answer::unexpected()
    }

    #[tokio::test]
    async fn missing_foreign_and_present_buckets_from_the_wire() {
        let fake = FakeAws::new(|c| {
            if c.operation.starts_with("HEAD") {
                Answer::xml(404, "")
            } else {
                Answer::unexpected()
            }
        });
        assert_eq!(
            observe(&fake.clients(), "b").await.ok(),
            Some(BucketState::Missing)
        );
        let fake = FakeAws::new(|_| Answer::xml(403, ""));
        assert_eq!(
            observe(&fake.clients(), "b").await.ok(),
            Some(BucketState::Foreign)
        );
        // Another region's bucket: named, with the flag that fixes it.
        let fake =
            FakeAws::new(|_| Answer::xml(301, "").with_header("x-amz-bucket-region", "us-west-2"));
        let e = observe(&fake.clients(), "b").await;
        assert!(
            matches!(&e, Err(e) if e.to_string().contains("pass --region us-west-2")),
            "{e:?}"
        );

        // Present: sub-resources that are not configured answer with their documented codes.
        let fake = FakeAws::new(|c| {
            let op = c.operation.as_str();
            if op.starts_with("HEAD") {
                Answer::xml(200, "")
            } else if op.contains("publicAccessBlock") || op.contains("policy") {
                unconfigured(op)
            } else if op.contains("ownershipControls") {
                Answer::xml(
                    200,
                    "<OwnershipControls><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>",
                )
            } else if op.contains("encryption") {
                Answer::xml(
                    200,
                    "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>arn:aws:kms:eu-west-1:1:key/c</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
                )
            } else if op.contains("versioning") {
                Answer::xml(
                    200,
                    "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
                )
            } else if op.contains("lifecycle") {
                Answer::xml(
                    200,
                    "<LifecycleConfiguration><Rule><ID>theirs</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
                )
            } else {
                unconfigured(op)
            }
        });
        let Ok(BucketState::Present(b)) = observe(&fake.clients(), "b").await else {
            panic!("present: {:?}", fake.operations());
        };
        assert!(!b.public_access_blocked);
        assert_eq!(b.ownership, Some(ObjectOwnership::BucketOwnerEnforced));
        assert_eq!(b.encryption, Some(ServerSideEncryption::AwsKms));
        assert_eq!(
            b.encryption_key.as_deref(),
            Some("arn:aws:kms:eu-west-1:1:key/c")
        );
        assert_eq!(b.policy, None);
        assert_eq!(b.versioning, Some(BucketVersioningStatus::Enabled));
        assert_eq!((b.rules.len(), b.other_rules.len()), (0, 1));
        assert_eq!(b.object_lock, LockState::Off);
        assert!(b.tags.is_empty());
        assert_eq!(fake.calls().len(), 9);
    }

    #[tokio::test]
    async fn a_denied_sub_resource_is_an_error_not_an_absence() {
        let fake = FakeAws::new(|c| {
            if c.operation.starts_with("HEAD") {
                Answer::xml(200, "")
            } else {
                Answer::error_s3(403, "AccessDenied", "Access Denied")
            }
        });
        let e = observe(&fake.clients(), "b").await;
        assert!(matches!(&e, Err(e) if e.is_access_denied()), "{e:?}");
    }

    #[tokio::test]
    async fn delete_empties_every_version_then_the_bucket() {
        let listed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = listed.clone();
        let fake = FakeAws::new(move |c| {
            let op = c.operation.as_str();
            if op.starts_with("GET") && op.contains("versions") {
                if seen.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    Answer::xml(
                        200,
                        "<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>",
                    )
                } else {
                    Answer::xml(
                        200,
                        "<ListVersionsResult><IsTruncated>false</IsTruncated><Version><Key>a</Key><VersionId>1</VersionId></Version><DeleteMarker><Key>a</Key><VersionId>2</VersionId></DeleteMarker></ListVersionsResult>",
                    )
                }
            } else if op.starts_with("POST") && op.contains("delete") {
                Answer::xml(200, "<DeleteResult></DeleteResult>")
            } else if op.starts_with("DELETE") {
                Answer::error_s3(404, "NoSuchBucket", "gone meanwhile")
            } else {
                Answer::unexpected()
            }
        });
        let deleted = delete(&fake.clients(), "b").await;
        assert!(
            matches!(deleted, Ok(2)),
            "{deleted:?}: {:?}",
            fake.operations()
        );
        let body = &fake.calls()[1].body;
        assert!(
            body.contains("<VersionId>1</VersionId>") && body.contains("<VersionId>2</VersionId>"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_new_bucket_is_created_then_configured_one_setting_at_a_time() {
        let d = crate::desired::tests::desired_started();
        let plan = compare(&d, &BucketState::Missing);
        assert_eq!(plan.changes.len(), 8);
        // Created by an interrupted run: BucketAlreadyOwnedByYou is ours already.
        let fake = FakeAws::new(|c| {
            if c.operation.starts_with("PUT") && !c.operation.contains('?') {
                Answer::error_s3(409, "BucketAlreadyOwnedByYou", "yours")
            } else if c.operation.starts_with("PUT") {
                Answer::xml(200, "")
            } else {
                Answer::unexpected()
            }
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let ctx = Ctx::new(&clients, &progress);
        let result = apply(&ctx, &d, &plan, &BucketState::Missing).await;
        assert!(result.is_ok(), "{result:?}: {:?}", fake.operations());
        let subresources: Vec<String> = fake
            .operations()
            .iter()
            .map(|op| {
                op.split('?')
                    .nth(1)
                    .unwrap_or("")
                    .split(['=', '&'])
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            subresources,
            [
                "",
                "publicAccessBlock",
                "ownershipControls",
                "encryption",
                "policy",
                "versioning",
                "lifecycle",
                "tagging"
            ]
        );
        // eu-west-1 needs its location constraint.
        assert!(
            fake.calls()[0]
                .body
                .contains("<LocationConstraint>eu-west-1</LocationConstraint>")
        );
        assert_eq!(ctx.mutations(), 8);
        // Another account's name: refused with the flag to change.
        let fake = FakeAws::new(|_| Answer::error_s3(409, "BucketAlreadyExists", "taken"));
        let clients = fake.clients();
        let e = apply(
            &Ctx::new(&clients, &progress),
            &d,
            &plan,
            &BucketState::Missing,
        )
        .await;
        assert!(
            matches!(&e, Err(e) if e.to_string().contains("--bucket")),
            "{e:?}"
        );
        assert_eq!(fake.calls().len(), 1);
    }

    #[test]
    fn a_bucket_under_a_customer_key_is_unwritable_and_aws_s3_is_not() {
        let d = crate::desired::tests::desired_started();
        let with = |algorithm, key: Option<&str>| {
            let BucketState::Present(mut b) = converged(&d) else {
                unreachable!()
            };
            b.encryption = Some(algorithm);
            b.encryption_key = key.map(str::to_owned);
            BucketState::Present(b)
        };
        let customer = with(
            ServerSideEncryption::AwsKms,
            Some("arn:aws:kms:eu-west-1:123456789012:key/c"),
        );
        assert!(unwritable(&customer).is_some_and(|why| why.contains("key/c")));
        assert_eq!(unwritable(&with(ServerSideEncryption::AwsKms, None)), None);
        assert_eq!(
            unwritable(&with(ServerSideEncryption::AwsKms, Some("alias/aws/s3"))),
            None
        );
        assert_eq!(unwritable(&converged(&d)), None);
        assert_eq!(unwritable(&BucketState::Missing), None);
    }

    #[tokio::test]
    async fn nothing_is_sent_for_a_bucket_as_wanted() {
        let d = crate::desired::tests::desired_started();
        let state = converged(&d);
        let plan = compare(&d, &state);
        assert!(plan.changes.is_empty(), "{plan:?}");
        let fake = FakeAws::silent();
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        assert!(
            apply(&Ctx::new(&clients, &progress), &d, &plan, &state)
                .await
                .is_ok()
        );
        assert!(fake.calls().is_empty());
        assert_eq!(check(&d.bucket, &state, Some(&d)).level, Level::Ok);
    }

    #[tokio::test]
    async fn object_lock_and_our_lifecycle_rules_are_read_back() {
        let fake = FakeAws::new(|c| {
            let op = c.operation.as_str();
            if op.starts_with("HEAD") {
                Answer::xml(200, "")
            } else if op.contains("versioning") {
                Answer::xml(
                    200,
                    "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
                )
            } else if op.contains("object-lock") {
                Answer::xml(
                    200,
                    "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>365</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
                )
            } else if op.contains("lifecycle") {
                Answer::xml(
                    200,
                    "<LifecycleConfiguration>\
                     <Rule><ID>das-setup-retention</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter><NoncurrentVersionExpiration><NoncurrentDays>30</NoncurrentDays></NoncurrentVersionExpiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
                     <Rule><ID>das-setup-retention-DQL</ID><Status>Enabled</Status><Filter><Prefix>parsed/DQL/</Prefix></Filter><Expiration><Days>30</Days></Expiration></Rule>\
                     <Rule><ID>das-setup-retentionist</ID><Status>Enabled</Status><Filter><Prefix>x/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule>\
                     </LifecycleConfiguration>",
                )
            } else {
                unconfigured(op)
            }
        });
        let found = observe(&fake.clients(), "b").await;
        let Ok(BucketState::Present(b)) = found else {
            panic!("present: {found:?}");
        };
        assert_eq!(
            b.object_lock,
            LockState::On(Some(DefaultLock {
                mode: "COMPLIANCE".into(),
                days: Some(365),
                years: None
            }))
        );
        assert_eq!(
            b.object_lock.to_string(),
            "Object Lock COMPLIANCE 365 day(s)"
        );
        // Ours: the catch-all and `das-setup-retention-*`; a look-alike id is someone else's.
        assert_eq!(
            b.rules.keys().collect::<Vec<_>>(),
            ["das-setup-retention", "das-setup-retention-DQL"]
        );
        assert_eq!(b.rules["das-setup-retention-DQL"].prefix, "parsed/DQL/");
        assert_eq!(b.other_rules.len(), 1);
    }

    #[tokio::test]
    async fn object_lock_is_enabled_at_creation_and_set_after_versioning() {
        let d = crate::desired::tests::desired(&[
            "--cluster",
            "demo",
            "--retention-days",
            "DQL=30,DDL=2555,default=400",
            "--object-lock",
            "governance",
            "--object-lock-days",
            "30",
        ]);
        let plan = compare(&d, &BucketState::Missing);
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("S3 cannot turn it off")),
            "{plan:?}"
        );
        let fake = FakeAws::new(|c| {
            if c.operation.starts_with("PUT") {
                Answer::xml(200, "")
            } else {
                Answer::unexpected()
            }
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let ctx = Ctx::new(&clients, &progress);
        let result = apply(&ctx, &d, &plan, &BucketState::Missing).await;
        assert!(result.is_ok(), "{result:?}: {:?}", fake.operations());
        let calls = fake.calls();
        assert_eq!(
            calls[0]
                .headers
                .get("x-amz-bucket-object-lock-enabled")
                .map(String::as_str),
            Some("true")
        );
        let ops = fake.operations();
        let at = |sub: &str| ops.iter().position(|o| o.contains(sub)).unwrap();
        assert!(at("versioning") < at("object-lock"), "{ops:?}");
        let lock = &calls[at("object-lock")].body;
        assert!(
            lock.contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>")
                && lock.contains("<Mode>GOVERNANCE</Mode>")
                && lock.contains("<Days>30</Days>"),
            "{lock}"
        );
        let lifecycle = &calls[at("lifecycle")].body;
        assert!(
            lifecycle.contains("<ID>das-setup-retention-DDL</ID>")
                && lifecycle.contains("<Prefix>parsed/demo/DDL/</Prefix>")
                && lifecycle.contains("<Days>2555</Days>"),
            "{lifecycle}"
        );
        // Read back as written: nothing more to do.
        let BucketState::Present(mut b) = converged(&d) else {
            unreachable!()
        };
        b.object_lock = LockState::On(Some(DefaultLock {
            mode: "GOVERNANCE".into(),
            days: Some(30),
            years: None,
        }));
        let state = BucketState::Present(b.clone());
        assert!(compare(&d, &state).changes.is_empty());
        let shown = check(&d.bucket, &state, Some(&d)).detail;
        assert!(
            shown.contains("Object Lock GOVERNANCE 30 day(s)")
                && shown.contains("expiry 7 d: athena-results; 30 d: DQL; 400 d: AUTH_FAILURE CONNECT DCL DISCONNECT DML ERROR OTHER TCL errors firehose; 2555 d: DDL digests manifests raw"),
            "{shown}"
        );
        // A lock found but not asked for is kept, and said.
        let plain = crate::desired::tests::desired_started();
        let BucketState::Present(mut p) = converged(&plain) else {
            unreachable!()
        };
        p.object_lock = b.object_lock.clone();
        let plan = compare(&plain, &BucketState::Present(p));
        assert!(plan.changes.is_empty(), "{plan:?}");
        assert!(
            plan.notes.iter().any(|n| n.contains("kept as found")),
            "{plan:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_object_lock_names_the_reason_and_the_way_out() {
        let d = crate::desired::tests::desired(&[
            "--cluster",
            "demo",
            "--object-lock",
            "compliance",
            "--object-lock-days",
            "1",
        ]);
        let plan = Planned::new(d.bucket.clone(), vec![BucketChange::ObjectLock]);
        let fake = FakeAws::new(|_| {
            Answer::error_s3(
                409,
                "InvalidBucketState",
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
            )
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let e = apply(
            &Ctx::new(&clients, &progress),
            &d,
            &plan,
            &BucketState::Missing,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("InvalidBucketState: Versioning must be 'Enabled'")
                && e.contains("choose another --bucket, or run without --object-lock"),
            "{e}"
        );
        // Not a refusal of the bucket: a missing permission stays one.
        let fake = FakeAws::new(|_| Answer::error_s3(403, "AccessDenied", "Access Denied"));
        let clients = fake.clients();
        let e = apply(
            &Ctx::new(&clients, &progress),
            &d,
            &plan,
            &BucketState::Missing,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("needs s3:PutBucketObjectLockConfiguration"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn locked_versions_are_kept_and_named_with_their_retention() {
        // Two pages of versions; S3 refuses one version of the second page.
        let fake = FakeAws::new(|c| {
            let op = c.operation.as_str();
            if op.starts_with("GET") && op.contains("versions") && !op.contains("key-marker") {
                Answer::xml(
                    200,
                    "<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>a</NextKeyMarker><NextVersionIdMarker>1</NextVersionIdMarker><Version><Key>a</Key><VersionId>1</VersionId><LastModified>2026-11-01T00:00:00.000Z</LastModified></Version></ListVersionsResult>",
                )
            } else if op.starts_with("GET") && op.contains("versions") {
                Answer::xml(
                    200,
                    "<ListVersionsResult><IsTruncated>false</IsTruncated><Version><Key>b</Key><VersionId>2</VersionId><LastModified>2026-11-30T00:00:00.000Z</LastModified></Version><Version><Key>c</Key><VersionId>3</VersionId><LastModified>2026-10-01T00:00:00.000Z</LastModified></Version></ListVersionsResult>",
                )
            } else if op.starts_with("POST") && c.body.contains("<Key>b</Key>") {
                Answer::xml(
                    200,
                    "<DeleteResult><Error><Key>b</Key><VersionId>2</VersionId><Code>AccessDenied</Code><Message>Access Denied because object protected by object lock.</Message></Error></DeleteResult>",
                )
            } else if op.starts_with("POST") {
                Answer::xml(200, "<DeleteResult></DeleteResult>")
            } else if op.contains("retention") {
                Answer::xml(
                    200,
                    "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2027-11-30T00:00:00Z</RetainUntilDate></Retention>",
                )
            } else {
                Answer::unexpected()
            }
        });
        let e = delete(&fake.clients(), "b").await.unwrap_err().to_string();
        assert!(
            e.contains("deleted 2 object version(s), but S3 refused to delete 1")
                && e.contains(
                    "Object Lock GOVERNANCE retention, the newest until 2027-11-30T00:00:00Z"
                )
                && e.contains("s3:BypassGovernanceRetention")
                && e.contains("run `das-setup down --delete-bucket` again"),
            "{e}"
        );
        let ops = fake.operations();
        assert!(ops.iter().any(|o| o.contains("key-marker=a")), "{ops:?}");
        assert!(
            ops.iter()
                .any(|o| o.contains("/b?retention") && o.contains("versionId=2")),
            "{ops:?}"
        );
        // The bucket itself was not asked to go.
        assert!(!ops.iter().any(|o| o.starts_with("DELETE")), "{ops:?}");
    }
}
