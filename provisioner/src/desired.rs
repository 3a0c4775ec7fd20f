//! What the pipeline should look like for one database: every name, ARN, setting and rendered
//! policy document `up` converges to. Pure: computed from the settings, the caller's account,
//! the database and the key, before anything is read or changed.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{ActivityStreamMode, AuditPolicyState};
use serde_json::Value;

use crate::cli::{Arch, AuditPolicy, StreamMode};
use crate::naming::{Names, tags};
use crate::policy::{self, PolicyError, Template, Values};
use crate::retention::{ObjectLock, Retention};
use crate::settings::{AlertSettings, AlertTargets, UpSettings};

/// The processor function.
pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
/// Peak RSS is under 20 MiB; 256 MB buys CPU (Lambda scales CPU with memory) for decrypting
/// and compressing full 6 MB batches quickly.
pub const MEMORY_MB: i32 = 256;
/// A full batch takes well under a second; 2 minutes leaves room for KMS and S3 retries while
/// staying inside Firehose's 5-minute invocation limit.
pub const TIMEOUT_SECONDS: i32 = 120;
/// Log groups of the function and the delivery stream (CloudWatch accepts fixed values only).
pub const LOG_RETENTION_DAYS: i32 = 30;

/// Firehose's own output: only used with `DAS_FIREHOSE_OUTPUT=events`; by default the
/// processor writes the events itself and answers `Dropped`.
pub const FIREHOSE_PREFIX: &str = "firehose/!{timestamp:yyyy/MM/dd}/";
/// Records the processor could not process (`processing-failed`) or Firehose could not deliver.
pub const ERROR_PREFIX: &str = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/";
/// `--keep-raw`: Firehose's source record backup, every record as the activity stream sent it
/// (Firehose Developer Guide, "Data transformation": source record backup); its failures under
/// `errors/`, named as the main destination's are.
pub const RAW_PREFIX: &str = "raw/!{timestamp:yyyy/MM/dd/HH}/";
pub const RAW_ERROR_PREFIX: &str =
    "errors/raw/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/";
/// Lambda buffering: up to 3 MB of encrypted records per invocation (the response stays small:
/// the processor writes to S3 itself), at least once a minute.
pub const PROCESSOR_BUFFER_MB: i32 = 3;
pub const PROCESSOR_BUFFER_SECONDS: i32 = 60;
pub const PROCESSOR_RETRIES: i32 = 3;
pub const S3_BUFFER_MB: i32 = 5;
pub const S3_BUFFER_SECONDS: i32 = 60;

/// Who is deploying, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub partition: String,
    pub region: String,
}

impl Identity {
    /// From STS `GetCallerIdentity`'s account and ARN (`arn:<partition>:...`).
    pub fn new(account: &str, caller_arn: &str, region: &str) -> Self {
        let partition = caller_arn
            .strip_prefix("arn:")
            .and_then(|rest| rest.split(':').next())
            .filter(|p| !p.is_empty())
            .unwrap_or("aws");
        Self {
            account: account.to_owned(),
            partition: partition.to_owned(),
            region: region.to_owned(),
        }
    }
}

pub use crate::database::{Database, StreamState};

pub fn mode_name(mode: StreamMode) -> &'static str {
    match mode {
        StreamMode::Async => "async",
        StreamMode::Sync => "sync",
    }
}

/// The activity stream mode, as RDS names it.
pub fn stream_mode(mode: StreamMode) -> ActivityStreamMode {
    match mode {
        StreamMode::Async => ActivityStreamMode::Async,
        StreamMode::Sync => ActivityStreamMode::Sync,
    }
}

pub fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::Arm64 => "arm64",
    }
}

/// The processor function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub role_arn: String,
    pub runtime: String,
    pub handler: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub arch: String,
    pub environment: BTreeMap<String, String>,
    pub code_sha256: String,
}

/// The delivery stream's configuration (Kinesis source, Lambda processor, S3 destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySpec {
    pub source_stream_arn: String,
    pub role_arn: String,
    pub bucket_arn: String,
    pub prefix: String,
    pub error_prefix: String,
    pub buffer_mb: i32,
    pub buffer_seconds: i32,
    pub lambda_arn: String,
    pub processor_buffer_mb: i32,
    pub processor_buffer_seconds: i32,
    pub processor_retries: i32,
    pub log_group: String,
    pub log_stream: String,
    /// `--keep-raw`: the source record backup wanted (`None` leaves it as found: Firehose
    /// cannot turn it off).
    pub raw: Option<RawBackupSpec>,
}

/// Firehose's source record backup, as `up --keep-raw` sets it: same bucket and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBackupSpec {
    pub prefix: String,
    pub error_prefix: String,
    pub buffer_mb: i32,
    pub buffer_seconds: i32,
    /// Not asked for, but found on (Firehose cannot turn it off): kept, also when the delivery
    /// stream is created again.
    pub found: bool,
}

impl RawBackupSpec {
    pub fn new(found: bool) -> Self {
        Self {
            prefix: RAW_PREFIX.to_owned(),
            error_prefix: RAW_ERROR_PREFIX.to_owned(),
            buffer_mb: S3_BUFFER_MB,
            buffer_seconds: S3_BUFFER_SECONDS,
            found,
        }
    }
}

/// Every rendered policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Documents {
    pub processor_trust: Value,
    pub processor_policy: Value,
    pub firehose_trust: Value,
    pub firehose_policy: Value,
    pub bucket_policy: Value,
    /// Only used when das-setup creates the key.
    pub key_policy: Value,
}

/// The whole target state.
#[derive(Debug, Clone)]
pub struct Desired {
    pub identity: Identity,
    pub database: Database,
    pub names: Names,
    pub tags: BTreeMap<String, String>,
    pub mode: ActivityStreamMode,
    /// `--audit-policy`: the lock wanted, `None` to leave it.
    pub audit_policy: Option<AuditPolicyState>,
    /// The key the activity stream encrypts with.
    pub key: KeyRef,
    /// The key that signs the processor's integrity digests (always das-setup's own).
    pub digest_key: KeyRef,
    /// What the preflight could not confirm about support (`preflight::check`), for the plan.
    pub support_notes: Vec<String>,
    pub bucket: String,
    pub prefix: String,
    /// `--retention-days`: the lifecycle rules das-setup owns in the bucket.
    pub retention: Retention,
    /// `--object-lock`: `None` leaves the bucket's Object Lock as found (it cannot be removed).
    pub object_lock: Option<ObjectLock>,
    /// `--alert-rules` / `--alerts`: the rules the function evaluates; `None`: no alerts.
    pub alerts: Option<AlertSettings>,
    pub stream_name: String,
    pub processor_role_arn: String,
    pub firehose_role_arn: String,
    pub function_arn: String,
    pub documents: Documents,
    pub function: FunctionSpec,
    pub delivery: DeliverySpec,
    /// The placeholder values the documents were rendered with.
    values: Values,
}

/// Stand-in for a key `up` has yet to create (plans and dry runs only).
pub const PENDING_KEY_ID: &str = "<created-by-this-run>";

/// One of the KMS keys the pipeline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub arn: String,
    /// The key does not exist yet: `arn` is a stand-in until `up` creates it.
    pub pending: bool,
    /// The key exists but its alias does not (an interrupted `up`): `up` creates the alias.
    pub alias_missing: bool,
}

impl KeyRef {
    /// `arn`, or a stand-in for a key still to be created.
    fn new(arn: Option<&str>, identity: &Identity) -> Self {
        let Identity {
            account,
            partition,
            region,
        } = identity;
        Self {
            arn: arn.map_or_else(
                || format!("arn:{partition}:kms:{region}:{account}:key/{PENDING_KEY_ID}"),
                str::to_owned,
            ),
            pending: arn.is_none(),
            alias_missing: false,
        }
    }
}

/// Which of the pipeline's two keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Symmetric: RDS encrypts the activity stream's data keys with it.
    Stream,
    /// Asymmetric (ECC_NIST_P384, SIGN_VERIFY): the processor signs its digests with it.
    Digests,
}

impl Desired {
    /// `key_arn`: the key's ARN, or `None` when `up` is going to create it.
    pub fn new(
        settings: &UpSettings,
        identity: &Identity,
        database: &Database,
        key_arn: Option<&str>,
        code_sha256: &str,
    ) -> Result<Self, PolicyError> {
        let Identity {
            account,
            partition,
            region,
        } = identity;
        let names = Names::new(&settings.target, account, region);
        let bucket = settings
            .bucket
            .clone()
            .unwrap_or_else(|| names.bucket.clone());
        let key = KeyRef::new(key_arn, identity);
        // Found or created once the deployment is read (`set_key`).
        let digest_key = KeyRef::new(None, identity);
        let stream_name = database.stream_name();
        let role_arn = |name: &str| format!("arn:{partition}:iam::{account}:role/{name}");
        let function_arn = format!(
            "arn:{partition}:lambda:{region}:{account}:function:{}",
            names.function
        );
        let values: Values = [
            ("ACCOUNT_ID", account.clone()),
            ("PARTITION", partition.clone()),
            ("REGION", region.clone()),
            ("BUCKET", bucket.clone()),
            ("PREFIX", settings.prefix.clone()),
            ("DAS_KMS_KEY_ARN", key.arn.clone()),
            ("DIGEST_KEY_ARN", digest_key.arn.clone()),
            ("ENCRYPTION_CONTEXT_KEY", database.context_key().to_owned()),
            ("RESOURCE_ID", database.resource_id.clone()),
            ("DAS_STREAM_NAME", stream_name.clone()),
            ("FUNCTION_NAME", names.function.clone()),
            ("LAMBDA_LOG_GROUP", names.lambda_log_group.clone()),
            ("FIREHOSE_LOG_GROUP", names.firehose_log_group.clone()),
            ("FIREHOSE_LOG_STREAM", names.firehose_log_stream.clone()),
            ("ALERTS_TOPIC_ARN", names.alerts_topic_arn.clone()),
            ("ALARM_PREFIX", names.alarm_prefix.clone()),
        ]
        .into_iter()
        .collect();
        let documents = Documents {
            processor_trust: policy::render(Template::LambdaTrust, &values)?,
            processor_policy: processor_policy(settings.alerts.as_ref(), &values)?,
            firehose_trust: policy::render(Template::FirehoseTrust, &values)?,
            firehose_policy: policy::render(Template::FirehoseDelivery, &values)?,
            bucket_policy: policy::render(Template::BucketPolicy, &values)?,
            key_policy: policy::render(Template::KeyPolicy, &values)?,
        };
        let processor_role_arn = role_arn(&names.processor_role);
        let firehose_role_arn = role_arn(&names.firehose_role);
        let bucket_arn = format!("arn:{partition}:s3:::{bucket}");
        let function = FunctionSpec {
            role_arn: processor_role_arn.clone(),
            runtime: RUNTIME.to_owned(),
            handler: HANDLER.to_owned(),
            memory_mb: MEMORY_MB,
            timeout_seconds: TIMEOUT_SECONDS,
            arch: arch_name(settings.arch).to_owned(),
            environment: settings.lambda_environment(
                &bucket,
                &digest_key.arn,
                Some(AlertTargets {
                    topic_arn: &names.alerts_topic_arn,
                    master_user: database.master_user.as_deref(),
                    database_arn: &database.arn,
                }),
            ),
            code_sha256: code_sha256.to_owned(),
        };
        let delivery = DeliverySpec {
            source_stream_arn: format!(
                "arn:{partition}:kinesis:{region}:{account}:stream/{stream_name}"
            ),
            role_arn: firehose_role_arn.clone(),
            bucket_arn,
            prefix: FIREHOSE_PREFIX.to_owned(),
            error_prefix: ERROR_PREFIX.to_owned(),
            buffer_mb: S3_BUFFER_MB,
            buffer_seconds: S3_BUFFER_SECONDS,
            lambda_arn: function_arn.clone(),
            processor_buffer_mb: PROCESSOR_BUFFER_MB,
            processor_buffer_seconds: PROCESSOR_BUFFER_SECONDS,
            processor_retries: PROCESSOR_RETRIES,
            log_group: names.firehose_log_group.clone(),
            log_stream: names.firehose_log_stream.clone(),
            raw: settings.keep_raw.then(|| RawBackupSpec::new(false)),
        };
        Ok(Self {
            identity: identity.clone(),
            database: database.clone(),
            tags: tags(&settings.target)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            mode: stream_mode(settings.mode),
            audit_policy: settings.audit_policy.map(|p| match p {
                AuditPolicy::Locked => AuditPolicyState::LockedPolicy,
                AuditPolicy::Unlocked => AuditPolicyState::UnlockedPolicy,
            }),
            key,
            digest_key,
            support_notes: Vec::new(),
            bucket,
            prefix: settings.prefix.clone(),
            retention: settings.retention.clone(),
            object_lock: settings.object_lock,
            alerts: settings.alerts.clone(),
            stream_name,
            processor_role_arn,
            firehose_role_arn,
            function_arn,
            documents,
            function,
            delivery,
            names,
            values,
        })
    }

    /// The placeholder values the documents are rendered with.
    pub fn values(&self) -> &Values {
        &self.values
    }

    pub fn key_of(&self, purpose: KeyPurpose) -> &KeyRef {
        match purpose {
            KeyPurpose::Stream => &self.key,
            KeyPurpose::Digests => &self.digest_key,
        }
    }

    /// A key found or just created (`alias_missing`: found without its alias): the
    /// processor's policy names both keys, and its environment the digests' key.
    pub fn set_key(
        &mut self,
        purpose: KeyPurpose,
        arn: &str,
        alias_missing: bool,
    ) -> Result<(), PolicyError> {
        let (placeholder, key) = match purpose {
            KeyPurpose::Stream => ("DAS_KMS_KEY_ARN", &mut self.key),
            KeyPurpose::Digests => {
                self.function.environment.insert(
                    das_processor::config::var::DIGEST_KEY.to_owned(),
                    arn.to_owned(),
                );
                ("DIGEST_KEY_ARN", &mut self.digest_key)
            }
        };
        *key = KeyRef {
            arn: arn.to_owned(),
            pending: false,
            alias_missing,
        };
        self.values.insert(placeholder, arn.to_owned());
        self.documents.processor_policy = processor_policy(self.alerts.as_ref(), &self.values)?;
        Ok(())
    }
}

/// The processor's policy: `lambda-exec.json`, and `lambda-alerts.json`'s statements when it
/// publishes alerts.
fn processor_policy(alerts: Option<&AlertSettings>, values: &Values) -> Result<Value, PolicyError> {
    let mut doc = policy::render(Template::LambdaExec, values)?;
    let mut extra = Vec::new();
    if let Some(a) = alerts {
        extra.push(Template::LambdaAlerts);
        if a.security_hub {
            extra.push(Template::LambdaSecurityHub);
        }
    }
    for template in extra {
        let more = policy::render(template, values)?;
        if let (Some(all), Some(more)) = (
            doc.get_mut("Statement").and_then(Value::as_array_mut),
            more.get("Statement").and_then(Value::as_array),
        ) {
            all.extend(more.iter().cloned());
        }
    }
    Ok(doc)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::naming::TargetKind;
    use clap::Parser as _;

    pub(crate) fn settings(args: &[&str]) -> UpSettings {
        let cli = Cli::try_parse_from(["das-setup", "up"].iter().chain(args)).unwrap();
        let Command::Up(up) = cli.command else {
            panic!("not up")
        };
        UpSettings::from_args(&up).unwrap()
    }

    pub(crate) fn database() -> Database {
        Database {
            kind: TargetKind::Cluster,
            id: "demo".into(),
            arn: "arn:aws:rds:eu-west-1:123456789012:cluster:demo".into(),
            resource_id: "cluster-ABCDEFGHIJKL".into(),
            engine: "aurora-postgresql".into(),
            engine_version: "16.4".into(),
            status: "available".into(),
            members: vec!["demo-1".into()],
            shape: crate::database::Shape::default(),
            stream: StreamState::default(),
            master_user: None,
        }
    }

    /// The signing key of [`desired`].
    pub(crate) const DIGEST_KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/d-1";

    /// What `up --cluster demo <args>` wants, with existing keys.
    pub(crate) fn desired(args: &[&str]) -> Desired {
        let identity = Identity::new(
            "123456789012",
            "arn:aws:iam::123456789012:user/u",
            "eu-west-1",
        );
        let mut d = Desired::new(
            &settings(args),
            &identity,
            &database(),
            Some("arn:aws:kms:eu-west-1:123456789012:key/k-1"),
            "c2hh",
        )
        .unwrap();
        d.set_key(KeyPurpose::Digests, DIGEST_KEY, false).unwrap();
        d
    }

    /// [`desired`] of `--cluster demo` whose activity stream runs.
    pub(crate) fn desired_started() -> Desired {
        let mut d = desired(&["--cluster", "demo"]);
        d.database.stream.status = aws_sdk_rds::types::ActivityStreamStatus::Started;
        d
    }

    #[test]
    fn identity_takes_the_partition_from_the_caller() {
        let id = Identity::new("1", "arn:aws-cn:sts::1:assumed-role/r/s", "cn-north-1");
        assert_eq!(id.partition, "aws-cn");
        assert_eq!(Identity::new("1", "weird", "r").partition, "aws");
    }

    #[test]
    fn the_processor_may_decrypt_only_this_databases_keys_and_write_only_under_the_prefix() {
        let identity = Identity::new(
            "123456789012",
            "arn:aws:iam::123456789012:user/u",
            "eu-west-1",
        );
        let d = Desired::new(
            &settings(&["--cluster", "demo", "--include", "DDL"]),
            &identity,
            &database(),
            Some("arn:aws:kms:eu-west-1:123456789012:key/k-1"),
            "sha",
        )
        .unwrap();
        let text = d.documents.processor_policy.to_string();
        assert!(
            text.contains(r#""kms:EncryptionContext:aws:rds:dbc-id":"cluster-ABCDEFGHIJKL""#),
            "{text}"
        );
        assert!(text.contains("key/k-1"));
        assert!(
            text.contains(&format!("{}/parsed/demo/*", d.bucket)),
            "only under this database's folder: {text}"
        );
        assert_eq!(d.stream_name, "aws-rds-das-cluster-ABCDEFGHIJKL");
        assert_eq!(
            d.delivery.source_stream_arn,
            "arn:aws:kinesis:eu-west-1:123456789012:stream/aws-rds-das-cluster-ABCDEFGHIJKL"
        );
        assert_eq!(d.function.environment["DAS_INCLUDE_CATEGORIES"], "DDL");
        assert_eq!(d.function.environment["DAS_OUTPUT_BUCKET"], d.bucket);
        assert_eq!(d.function.arch, "arm64");
        assert!(!d.key.pending);
        // Until the signing key is known, a stand-in; then the policy and the environment name it.
        assert!(d.digest_key.pending);
        assert_eq!(
            d.function.environment[das_processor::config::var::DIGEST_KEY],
            d.digest_key.arn
        );
        let mut d = d;
        d.set_key(KeyPurpose::Digests, DIGEST_KEY, false).unwrap();
        let text = d.documents.processor_policy.to_string();
        assert!(text.contains(DIGEST_KEY), "{text}");
        assert!(text.contains("key/k-1"), "{text}");
        assert_eq!(
            d.function.environment[das_processor::config::var::DIGEST_KEY],
            DIGEST_KEY
        );
        assert_eq!(d.tags["das-setup:cluster"], "demo");

        let pending = Desired::new(
            &settings(&["--cluster", "demo"]),
            &identity,
            &database(),
            None,
            "sha",
        )
        .unwrap();
        assert!(pending.key.pending);
        assert!(pending.key.arn.ends_with(PENDING_KEY_ID));
    }
}
