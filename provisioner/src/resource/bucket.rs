//! The S3 bucket the audit events go to: private (all four public-access blocks, bucket owner
//! enforced), encrypted by default, versioned, TLS only, das-setup's lifecycle rule (other
//! rules kept), das-setup's tags (other tags kept). `down` empties and deletes it only with
//! `--delete-bucket`, and only when it is das-setup's.

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
use crate::aws::{AwsError, Clients, Named as _, absent_by_code, policy_document};
use crate::desired::{ABORT_INCOMPLETE_UPLOADS_DAYS, Desired, LIFECYCLE_RULE_ID};

/// Noncurrent versions (left by retries' overwrites, or by expiry in a versioned bucket) are
/// kept this long after they stop being current, when `--retention-days` is set.
pub const NONCURRENT_DAYS: i32 = 30;

#[derive(Debug, Clone, PartialEq)]
pub enum BucketState {
    Missing,
    /// The name exists but this account may not use it (403): another account's bucket.
    Foreign,
    Present(Box<BucketSettings>),
}

/// das-setup's lifecycle rule, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionRule {
    pub expiration_days: Option<i32>,
    pub noncurrent_days: Option<i32>,
    pub abort_incomplete_days: Option<i32>,
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
    /// das-setup's rule, if present.
    pub retention_rule: Option<RetentionRule>,
    /// The other lifecycle rules (kept when das-setup writes its own).
    pub other_rules: Vec<t::LifecycleRule>,
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
            BucketChange::Lifecycle => "lifecycle rule",
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
            | BucketChange::Lifecycle
            | BucketChange::Tags => Effect::Update,
        }
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

// The "not configured" answers of the bucket's sub-resources are documented error codes, not
// modelled errors (S3 API reference, "List of error codes":
// https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList).
const NO_PUBLIC_ACCESS_BLOCK: &str = "NoSuchPublicAccessBlockConfiguration";
const NO_OWNERSHIP_CONTROLS: &str = "OwnershipControlsNotFoundError";
const NO_ENCRYPTION: &str = "ServerSideEncryptionConfigurationNotFoundError";
const NO_POLICY: &str = "NoSuchBucketPolicy";
const NO_LIFECYCLE: &str = "NoSuchLifecycleConfiguration";
const NO_TAGS: &str = "NoSuchTagSet";

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
    let (pab, ownership, encryption, policy, versioning, lifecycle, tags) = tokio::join!(
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
    let mut retention_rule = None;
    let mut other_rules = Vec::new();
    for rule in lifecycle?.and_then(|o| o.rules).unwrap_or_default() {
        if rule.id.as_deref() == Some(LIFECYCLE_RULE_ID) {
            retention_rule = Some(RetentionRule {
                expiration_days: rule.expiration.as_ref().and_then(|e| e.days),
                noncurrent_days: rule
                    .noncurrent_version_expiration
                    .as_ref()
                    .and_then(|e| e.noncurrent_days),
                abort_incomplete_days: rule
                    .abort_incomplete_multipart_upload
                    .as_ref()
                    .and_then(|a| a.days_after_initiation),
            });
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
        retention_rule,
        other_rules,
        tags,
    })))
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
                C::Lifecycle,
                C::Tags,
            ];
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
            if b.retention_rule != Some(retention_rule(d.retention_days)) {
                plan.changes.push(C::Lifecycle);
            }
            if missing_tags(&d.tags, &b.tags) {
                plan.changes.push(C::Tags);
            }
        }
    }
    plan
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
                let mut create = s3.create_bucket().bucket(name);
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
            BucketChange::Lifecycle => {
                let bad = |e| invalid("s3:PutLifecycleConfiguration", name, e);
                let want = retention_rule(d.retention_days);
                let mut rule = t::LifecycleRule::builder()
                    .id(LIFECYCLE_RULE_ID)
                    .status(t::ExpirationStatus::Enabled)
                    .filter(t::LifecycleRuleFilter::builder().prefix("").build());
                if let Some(days) = want.expiration_days {
                    rule = rule.expiration(t::LifecycleExpiration::builder().days(days).build());
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
                let mut rules = present.map(|b| b.other_rules.clone()).unwrap_or_default();
                rules.push(rule.build().map_err(bad)?);
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
/// it. Returns how many versions were deleted.
pub async fn delete(clients: &Clients, bucket: &str) -> Result<usize, AwsError> {
    let deleted = crate::stored::empty(&clients.s3, bucket).await?;
    // DeleteBucket has no modelled errors; NoSuchBucket is the documented code (S3 error codes).
    absent_by_code(
        clients
            .s3
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .named("s3:DeleteBucket", &format!("bucket {bucket}")),
        "NoSuchBucket",
    )?;
    Ok(deleted)
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
    if missing.is_empty() {
        Check::of(
            Resource::Bucket,
            Level::Ok,
            format!("{name}: private, encrypted, versioned, TLS only"),
        )
    } else {
        Check::of(
            Resource::Bucket,
            Level::Warn,
            format!(
                "{name}: missing {} (das-setup up restores them)",
                missing.join(", ")
            ),
        )
    }
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
            retention_rule: Some(retention_rule(d.retention_days)),
            other_rules: vec![],
            tags: d.tags.clone(),
        }))
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
            } else if op.contains("publicAccessBlock") {
                Answer::error_s3(404, "NoSuchPublicAccessBlockConfiguration", "none")
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
            } else if op.contains("policy") {
                Answer::error_s3(404, "NoSuchBucketPolicy", "none")
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
            } else if op.contains("tagging") {
                Answer::error_s3(404, "NoSuchTagSet", "none")
            } else {
                Answer::unexpected()
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
        assert_eq!((b.retention_rule, b.other_rules.len()), (None, 1));
        assert!(b.tags.is_empty());
        assert_eq!(fake.calls().len(), 8);
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
}
