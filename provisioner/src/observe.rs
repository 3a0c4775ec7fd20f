//! Reading what exists: read-only AWS calls only (Describe/Get/List/Head), each resource's state
//! reduced to what `plan` compares. A resource that does not exist is `None`; any other error
//! (a missing permission above all) stops `up` before it changes anything.

use std::collections::BTreeMap;

use aws_sdk_s3::error::SdkError;
use futures_util::future::join;
use serde_json::Value;

use das_processor::config::var;

use crate::aws::{AwsError, Clients, Named as _, found, policy_document};
use crate::desired::{Database, Desired, LIFECYCLE_RULE_ID, StreamState};
use crate::naming::{Names, TargetKind, TargetRef};

/// A KMS key as `DescribeKey` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub arn: String,
    pub id: String,
    /// `Enabled`, `Disabled`, `PendingDeletion` ...
    pub state: String,
    pub customer_managed: bool,
    pub symmetric: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BucketState {
    Missing,
    /// The name exists but this account may not use it (403): another account's bucket.
    Foreign,
    Present(BucketSettings),
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
    /// `BucketOwnerEnforced` ...
    pub ownership: Option<String>,
    /// Default encryption algorithm: `AES256`, `aws:kms` ...
    pub encryption: Option<String>,
    pub policy: Option<Value>,
    pub versioning_enabled: bool,
    /// das-setup's rule, if present.
    pub retention_rule: Option<RetentionRule>,
    /// The other lifecycle rules (kept when das-setup writes its own).
    pub other_rules: Vec<aws_sdk_s3::types::LifecycleRule>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleState {
    pub arn: String,
    pub trust: Option<Value>,
    pub policy: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupState {
    pub retention_days: Option<i32>,
    /// Whether the named log stream exists (the delivery stream's); `true` when none is asked.
    pub stream_present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionState {
    pub arn: String,
    pub role_arn: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub arch: String,
    pub environment: BTreeMap<String, String>,
    pub code_sha256: String,
    /// `Pending`, `Active`, `Failed` ...
    pub state: String,
    /// `Successful`, `InProgress`, `Failed`.
    pub last_update_status: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub arn: String,
    /// `CREATING`, `ACTIVE`, `CREATING_FAILED` ...
    pub status: String,
    pub failure: Option<String>,
    pub version_id: String,
    pub destination_id: Option<String>,
    pub source_stream_arn: Option<String>,
    pub source_role_arn: Option<String>,
    /// The S3 destination, as far as das-setup sets it (`None`: not an extended S3 one).
    pub destination: Option<crate::desired::DeliverySpec>,
    pub tags: BTreeMap<String, String>,
}

/// Everything but the database and the key (read first: the rest is named after them).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub bucket: BucketState,
    pub processor_role: Option<RoleState>,
    pub firehose_role: Option<RoleState>,
    pub lambda_log_group: Option<LogGroupState>,
    pub firehose_log_group: Option<LogGroupState>,
    pub function: Option<FunctionState>,
    pub delivery: Option<DeliveryState>,
}

/// The database named by `--cluster` / `--instance`; `Ok(None)` when RDS does not know it.
pub async fn database(clients: &Clients, target: &TargetRef) -> Result<Option<Database>, AwsError> {
    let lower = |s: Option<&str>| s.map(str::to_ascii_lowercase);
    match target.kind {
        TargetKind::Cluster => {
            let what = format!("cluster {}", target.id);
            let out = found(
                clients
                    .rds
                    .describe_db_clusters()
                    .db_cluster_identifier(&target.id)
                    .send()
                    .await
                    .named("rds:DescribeDBClusters", &what),
                &["DBClusterNotFoundFault"],
            )?;
            let Some(c) = out.as_ref().and_then(|o| o.db_clusters().first()) else {
                return Ok(None);
            };
            Ok(Some(Database {
                kind: target.kind,
                id: target.id.clone(),
                arn: c.db_cluster_arn().unwrap_or_default().to_owned(),
                resource_id: c.db_cluster_resource_id().unwrap_or_default().to_owned(),
                engine: c.engine().unwrap_or_default().to_owned(),
                status: c.status().unwrap_or_default().to_ascii_lowercase(),
                members: c.db_cluster_members().len(),
                stream: StreamState {
                    status: lower(c.activity_stream_status().map(|s| s.as_str()))
                        .unwrap_or_else(|| "stopped".into()),
                    kinesis_stream: c.activity_stream_kinesis_stream_name().map(str::to_owned),
                    kms_key: c.activity_stream_kms_key_id().map(str::to_owned),
                    mode: lower(c.activity_stream_mode().map(|m| m.as_str())),
                },
            }))
        }
        TargetKind::Instance => {
            let what = format!("instance {}", target.id);
            let out = found(
                clients
                    .rds
                    .describe_db_instances()
                    .db_instance_identifier(&target.id)
                    .send()
                    .await
                    .named("rds:DescribeDBInstances", &what),
                &["DBInstanceNotFound", "DBInstanceNotFoundFault"],
            )?;
            let Some(i) = out.as_ref().and_then(|o| o.db_instances().first()) else {
                return Ok(None);
            };
            Ok(Some(Database {
                kind: target.kind,
                id: target.id.clone(),
                arn: i.db_instance_arn().unwrap_or_default().to_owned(),
                resource_id: i.dbi_resource_id().unwrap_or_default().to_owned(),
                engine: i.engine().unwrap_or_default().to_owned(),
                status: i
                    .db_instance_status()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                members: 1,
                stream: StreamState {
                    status: lower(i.activity_stream_status().map(|s| s.as_str()))
                        .unwrap_or_else(|| "stopped".into()),
                    kinesis_stream: i.activity_stream_kinesis_stream_name().map(str::to_owned),
                    kms_key: i.activity_stream_kms_key_id().map(str::to_owned),
                    mode: lower(i.activity_stream_mode().map(|m| m.as_str())),
                },
            }))
        }
    }
}

/// `DescribeKey` of an id, ARN or alias; `Ok(None)` when it does not exist.
pub async fn key(clients: &Clients, key: &str) -> Result<Option<KeyState>, AwsError> {
    let out = found(
        clients
            .kms
            .describe_key()
            .key_id(key)
            .send()
            .await
            .named("kms:DescribeKey", &format!("key {key}")),
        &["NotFoundException"],
    )?;
    Ok(out.and_then(|o| o.key_metadata).map(|m| KeyState {
        arn: m.arn().unwrap_or_default().to_owned(),
        id: m.key_id().to_owned(),
        state: m
            .key_state()
            .map_or_else(String::new, |s| s.as_str().to_owned()),
        customer_managed: m.key_manager().is_some_and(|k| k.as_str() == "CUSTOMER"),
        symmetric: m
            .key_spec()
            .is_none_or(|s| s.as_str() == "SYMMETRIC_DEFAULT"),
    }))
}

/// A key das-setup created for this database whose alias is missing: `up` stopped between
/// `CreateKey` and `CreateAlias`. Found by its tags (ListKeys, ListResourceTags) and confirmed by
/// its description naming the database's ARN; keys this principal may not read are skipped.
/// Only looked for when the alias is missing, so a normal run pays nothing.
pub async fn orphan_key(
    clients: &Clients,
    target: &TargetRef,
    database_arn: &str,
) -> Result<Option<KeyState>, AwsError> {
    use crate::naming::{TAG_CLUSTER, TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE};
    let kms = &clients.kms;
    let mut marker = None;
    loop {
        let page = kms
            .list_keys()
            .set_marker(marker)
            .send()
            .await
            .named("kms:ListKeys", "the account's keys")?;
        for entry in page.keys() {
            let Some(id) = entry.key_id() else { continue };
            let Ok(tags) = kms.list_resource_tags().key_id(id).send().await else {
                continue;
            };
            let tag = |k: &str| {
                tags.tags()
                    .iter()
                    .find(|t| t.tag_key() == k)
                    .map(|t| t.tag_value())
            };
            if tag(TAG_MANAGED_BY) != Some(TAG_MANAGED_BY_VALUE)
                || tag(TAG_CLUSTER) != Some(target.id.as_str())
            {
                continue;
            }
            let Ok(described) = kms.describe_key().key_id(id).send().await else {
                continue;
            };
            let Some(meta) = described.key_metadata else {
                continue;
            };
            if meta.description().is_some_and(|d| d.contains(database_arn))
                && meta.key_state().is_some_and(|s| s.as_str() == "Enabled")
            {
                return key(clients, id).await;
            }
        }
        marker = page.next_marker().map(str::to_owned);
        if !page.truncated() || marker.is_none() {
            return Ok(None);
        }
    }
}

/// The bucket and prefix `up` used: from the function's environment while it exists, else the
/// delivery stream's destination, else the derived name (`down` and `status` both need it).
pub fn output_location(
    names: &Names,
    function: Option<&FunctionState>,
    delivery: Option<&DeliveryState>,
) -> (String, String) {
    let env = function.map(|f| &f.environment);
    let bucket = env
        .and_then(|e| e.get(var::OUTPUT_BUCKET).cloned())
        .or_else(|| {
            delivery
                .and_then(|d| d.destination.as_ref())
                .and_then(|d| d.bucket_arn.rsplit(':').next().map(str::to_owned))
        })
        .unwrap_or_else(|| names.bucket.clone());
    let prefix = env
        .and_then(|e| e.get(var::OUTPUT_PREFIX).cloned())
        .unwrap_or_else(|| "parsed/".to_owned());
    (bucket, prefix)
}

/// Reads every other resource, concurrently.
pub async fn everything(clients: &Clients, d: &Desired) -> Result<Observed, AwsError> {
    let n = &d.names;
    let (
        (bucket, (processor_role, firehose_role)),
        ((lambda_logs, firehose_logs), (function, delivery)),
    ) = join(
        join(
            bucket(clients, &d.bucket),
            join(
                role(clients, &n.processor_role, &n.role_policy),
                role(clients, &n.firehose_role, &n.role_policy),
            ),
        ),
        join(
            join(
                log_group(clients, &n.lambda_log_group, None),
                log_group(clients, &n.firehose_log_group, Some(&n.firehose_log_stream)),
            ),
            join(
                function(clients, &n.function),
                delivery(clients, &n.delivery_stream),
            ),
        ),
    )
    .await;
    Ok(Observed {
        bucket: bucket?,
        processor_role: processor_role?,
        firehose_role: firehose_role?,
        lambda_log_group: lambda_logs?,
        firehose_log_group: firehose_logs?,
        function: function?,
        delivery: delivery?,
    })
}

pub async fn bucket(clients: &Clients, name: &str) -> Result<BucketState, AwsError> {
    let what = format!("bucket {name}");
    match clients.s3.head_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 404 => {
            return Ok(BucketState::Missing);
        }
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 403 => {
            return Ok(BucketState::Foreign);
        }
        Err(e) => return Err(AwsError::new("s3:ListBucket", &what, e)),
    }
    let s3 = &clients.s3;
    let (((pab, ownership), (encryption, policy)), ((versioning, lifecycle), tags)) = join(
        join(
            join(
                async {
                    found(
                        s3.get_public_access_block()
                            .bucket(name)
                            .send()
                            .await
                            .named("s3:GetBucketPublicAccessBlock", &what),
                        &["NoSuchPublicAccessBlockConfiguration"],
                    )
                },
                async {
                    found(
                        s3.get_bucket_ownership_controls()
                            .bucket(name)
                            .send()
                            .await
                            .named("s3:GetBucketOwnershipControls", &what),
                        &["OwnershipControlsNotFoundError"],
                    )
                },
            ),
            join(
                async {
                    found(
                        s3.get_bucket_encryption()
                            .bucket(name)
                            .send()
                            .await
                            .named("s3:GetEncryptionConfiguration", &what),
                        &["ServerSideEncryptionConfigurationNotFoundError"],
                    )
                },
                async {
                    found(
                        s3.get_bucket_policy()
                            .bucket(name)
                            .send()
                            .await
                            .named("s3:GetBucketPolicy", &what),
                        &["NoSuchBucketPolicy"],
                    )
                },
            ),
        ),
        join(
            join(
                async {
                    s3.get_bucket_versioning()
                        .bucket(name)
                        .send()
                        .await
                        .named("s3:GetBucketVersioning", &what)
                },
                async {
                    found(
                        s3.get_bucket_lifecycle_configuration()
                            .bucket(name)
                            .send()
                            .await
                            .named("s3:GetLifecycleConfiguration", &what),
                        &["NoSuchLifecycleConfiguration"],
                    )
                },
            ),
            async {
                found(
                    s3.get_bucket_tagging()
                        .bucket(name)
                        .send()
                        .await
                        .named("s3:GetBucketTagging", &what),
                    &["NoSuchTagSet"],
                )
            },
        ),
    )
    .await;
    let public_access_blocked = pab?
        .and_then(|o| o.public_access_block_configuration)
        .is_some_and(|c| {
            c.block_public_acls == Some(true)
                && c.ignore_public_acls == Some(true)
                && c.block_public_policy == Some(true)
                && c.restrict_public_buckets == Some(true)
        });
    let ownership = ownership?.and_then(|o| o.ownership_controls).and_then(|c| {
        c.rules
            .first()
            .map(|r| r.object_ownership.as_str().to_owned())
    });
    let encryption = encryption?
        .and_then(|o| o.server_side_encryption_configuration)
        .and_then(|c| {
            c.rules.first().and_then(|r| {
                r.apply_server_side_encryption_by_default
                    .as_ref()
                    .map(|d| d.sse_algorithm.as_str().to_owned())
            })
        });
    let policy = policy?
        .and_then(|o| o.policy)
        .and_then(|p| policy_document(&p));
    let versioning_enabled = versioning?.status.is_some_and(|s| s.as_str() == "Enabled");
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
        .map(|o| {
            o.tag_set
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    Ok(BucketState::Present(BucketSettings {
        public_access_blocked,
        ownership,
        encryption,
        policy,
        versioning_enabled,
        retention_rule,
        other_rules,
        tags,
    }))
}

pub async fn role(
    clients: &Clients,
    name: &str,
    policy_name: &str,
) -> Result<Option<RoleState>, AwsError> {
    let what = format!("role {name}");
    let Some(out) = found(
        clients
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .named("iam:GetRole", &what),
        &["NoSuchEntity"],
    )?
    else {
        return Ok(None);
    };
    let Some(role) = out.role else {
        return Ok(None);
    };
    let policy = found(
        clients
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy_name)
            .send()
            .await
            .named("iam:GetRolePolicy", &what),
        &["NoSuchEntity"],
    )?
    .and_then(|p| policy_document(&p.policy_document));
    Ok(Some(RoleState {
        arn: role.arn,
        trust: role
            .assume_role_policy_document
            .as_deref()
            .and_then(policy_document),
        policy,
        tags: role
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect(),
    }))
}

pub async fn log_group(
    clients: &Clients,
    name: &str,
    stream: Option<&str>,
) -> Result<Option<LogGroupState>, AwsError> {
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
    let stream_present = match stream {
        None => true,
        Some(stream) => clients
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
    };
    Ok(Some(LogGroupState {
        retention_days: group.retention_in_days(),
        stream_present,
    }))
}

pub async fn function(clients: &Clients, name: &str) -> Result<Option<FunctionState>, AwsError> {
    let what = format!("function {name}");
    let Some(out) = found(
        clients
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .named("lambda:GetFunction", &what),
        &["ResourceNotFoundException"],
    )?
    else {
        return Ok(None);
    };
    let Some(c) = out.configuration() else {
        return Err(AwsError::invalid(
            "lambda:GetFunction",
            what,
            "the answer has no Configuration".into(),
        ));
    };
    Ok(Some(FunctionState {
        arn: c.function_arn().unwrap_or_default().to_owned(),
        role_arn: c.role().unwrap_or_default().to_owned(),
        runtime: c
            .runtime()
            .map_or_else(String::new, |r| r.as_str().to_owned()),
        handler: c.handler().unwrap_or_default().to_owned(),
        memory_mb: c.memory_size().unwrap_or_default(),
        timeout_seconds: c.timeout().unwrap_or_default(),
        arch: c
            .architectures()
            .first()
            .map_or_else(|| "x86_64".to_owned(), |a| a.as_str().to_owned()),
        environment: c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        code_sha256: c.code_sha256().unwrap_or_default().to_owned(),
        state: c
            .state()
            .map_or_else(String::new, |s| s.as_str().to_owned()),
        last_update_status: c
            .last_update_status()
            .map_or_else(String::new, |s| s.as_str().to_owned()),
        tags: out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }))
}

pub async fn delivery(clients: &Clients, name: &str) -> Result<Option<DeliveryState>, AwsError> {
    let what = format!("delivery stream {name}");
    let Some(out) = found(
        clients
            .firehose
            .describe_delivery_stream()
            .delivery_stream_name(name)
            .send()
            .await
            .named("firehose:DescribeDeliveryStream", &what),
        &["ResourceNotFoundException"],
    )?
    else {
        return Ok(None);
    };
    let Some(s) = out.delivery_stream_description() else {
        return Ok(None);
    };
    let tags = clients
        .firehose
        .list_tags_for_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await
        .named("firehose:ListTagsForDeliveryStream", &what)?
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect();
    let source = s
        .source()
        .and_then(|src| src.kinesis_stream_source_description());
    let first = s.destinations().first();
    let destination = first
        .and_then(|d| d.extended_s3_destination_description())
        .map(|e| {
            let processor = e
                .processing_configuration()
                .filter(|p| p.enabled() == Some(true))
                .and_then(|p| p.processors().first());
            let param = |name: &str| {
                processor.and_then(|p| {
                    p.parameters()
                        .iter()
                        .find(|x| x.parameter_name().as_str() == name)
                        .map(|x| x.parameter_value().to_owned())
                })
            };
            let number = |name: &str| {
                param(name)
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(-1)
            };
            let logging = e
                .cloud_watch_logging_options()
                .filter(|l| l.enabled() == Some(true));
            crate::desired::DeliverySpec {
                source_stream_arn: source
                    .and_then(|k| k.kinesis_stream_arn())
                    .unwrap_or_default()
                    .to_owned(),
                role_arn: e.role_arn().to_owned(),
                bucket_arn: e.bucket_arn().to_owned(),
                prefix: e.prefix().unwrap_or_default().to_owned(),
                error_prefix: e.error_output_prefix().unwrap_or_default().to_owned(),
                buffer_mb: e
                    .buffering_hints()
                    .and_then(|b| b.size_in_mbs())
                    .unwrap_or(-1),
                buffer_seconds: e
                    .buffering_hints()
                    .and_then(|b| b.interval_in_seconds())
                    .unwrap_or(-1),
                lambda_arn: param("LambdaArn").unwrap_or_default(),
                processor_buffer_mb: number("BufferSizeInMBs"),
                processor_buffer_seconds: number("BufferIntervalInSeconds"),
                processor_retries: number("NumberOfRetries"),
                log_group: logging
                    .and_then(|l| l.log_group_name())
                    .unwrap_or_default()
                    .to_owned(),
                log_stream: logging
                    .and_then(|l| l.log_stream_name())
                    .unwrap_or_default()
                    .to_owned(),
            }
        });
    Ok(Some(DeliveryState {
        arn: s.delivery_stream_arn().to_owned(),
        status: s.delivery_stream_status().as_str().to_owned(),
        failure: s
            .failure_description()
            .map(|f| format!("{}: {}", f.r#type().as_str(), f.details())),
        version_id: s.version_id().to_owned(),
        destination_id: first.map(|d| d.destination_id().to_owned()),
        source_stream_arn: source
            .and_then(|k| k.kinesis_stream_arn())
            .map(str::to_owned),
        source_role_arn: source.and_then(|k| k.role_arn()).map(str::to_owned),
        destination,
        tags,
    }))
}
