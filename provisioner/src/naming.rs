//! Deterministic names for everything das-setup creates, derived from the database's identifier
//! (and the account and region for the bucket), so no state file is needed: `up`, `down` and
//! `status` find the same resources from the same flags. Pure.

use std::fmt;

use sha2::{Digest, Sha256};

/// What kind of database the activity stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// An Aurora DB cluster (`--cluster`).
    Cluster,
    /// An RDS DB instance (`--instance`; Oracle, SQL Server).
    Instance,
}

/// `--cluster` / `--instance` as given: an identifier or an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    pub kind: TargetKind,
    /// The DB identifier (lower case, as RDS stores it).
    pub id: String,
    /// Region and account when an ARN was given.
    pub region: Option<String>,
    pub account: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0:?} is not a DB {1} identifier or ARN: {2}")]
    BadTarget(String, &'static str, &'static str),
}

impl TargetRef {
    /// Parses an identifier (`demo`) or an ARN (`arn:aws:rds:eu-west-1:123456789012:cluster:demo`).
    pub fn parse(kind: TargetKind, text: &str) -> Result<Self, NameError> {
        let what = match kind {
            TargetKind::Cluster => "cluster",
            TargetKind::Instance => "instance",
        };
        let bad = |reason| NameError::BadTarget(text.to_owned(), what, reason);
        let (id, region, account) = if let Some(rest) = text.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.split(':').collect();
            let expected = match kind {
                TargetKind::Cluster => "cluster",
                TargetKind::Instance => "db",
            };
            if parts.len() != 6 || parts[1] != "rds" || parts[4] != expected {
                return Err(bad(
                    "expected arn:<partition>:rds:<region>:<account>:cluster:<id> (or :db:<id> for an instance)",
                ));
            }
            (
                parts[5],
                Some(parts[2].to_owned()),
                Some(parts[3].to_owned()),
            )
        } else {
            (text, None, None)
        };
        let id = id.to_ascii_lowercase();
        // RDS identifiers: 1-63 letters, digits or hyphens, starting with a letter, no double or
        // trailing hyphen.
        let valid = (1..=63).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && id.as_bytes()[0].is_ascii_lowercase()
            && !id.ends_with('-')
            && !id.contains("--");
        if !valid {
            return Err(bad(
                "1-63 letters, digits and hyphens, starting with a letter, no '--', not ending with '-'",
            ));
        }
        Ok(Self {
            kind,
            id,
            region,
            account,
        })
    }
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TargetKind::Cluster => write!(f, "cluster {}", self.id),
            TargetKind::Instance => write!(f, "instance {}", self.id),
        }
    }
}

/// The names of every resource of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Lambda function (64 characters at most).
    pub function: String,
    /// IAM role of the function, and of the delivery stream (64 at most).
    pub processor_role: String,
    pub firehose_role: String,
    /// The inline policy on each role.
    pub role_policy: String,
    /// Firehose delivery stream (64 at most).
    pub delivery_stream: String,
    pub lambda_log_group: String,
    pub firehose_log_group: String,
    pub firehose_log_stream: String,
    /// Default bucket: account, region and database (63 at most).
    pub bucket: String,
    /// Alias of the KMS key das-setup creates when none is given.
    pub key_alias: String,
    /// Alias of the asymmetric KMS key that signs the integrity digests (cluster and instance
    /// ids hold no `/`, so no target's `key_alias` can be another's `digest_key_alias`).
    pub digest_key_alias: String,
    /// The SNS topic alerts are published to (256 characters at most), and its ARN.
    pub alerts_topic: String,
    pub alerts_topic_arn: String,
    /// What the CloudWatch alarms' names start with: `das-setup-<name>-` (`resource::alarms`).
    pub alarm_prefix: String,
    /// The Glue database of `das-setup query --engine athena` (Athena User Guide, "Names for
    /// tables, databases, and columns": lower case letters, digits and underscores only).
    pub glue_database: String,
    pub glue_database_arn: String,
    /// The Athena workgroup (128 characters at most: `[a-zA-Z0-9._-]`), and its ARN.
    pub workgroup: String,
    pub workgroup_arn: String,
}

/// Tag keys on everything das-setup creates.
pub const TAG_MANAGED_BY: &str = "managed-by";
pub const TAG_MANAGED_BY_VALUE: &str = "das-setup";
pub const TAG_CLUSTER: &str = "das-setup:cluster";

impl Names {
    pub fn new(target: &TargetRef, account: &str, region: &str) -> Self {
        // Instances get `db-` so a cluster and an instance of the same name never collide.
        let qualified = match target.kind {
            TargetKind::Cluster => target.id.clone(),
            TargetKind::Instance => format!("db-{}", target.id),
        };
        let base = format!("das-setup-{qualified}");
        let function = bounded(&base, 64);
        let alerts_topic = format!("{base}-alerts");
        let delivery_stream = bounded(&base, 64);
        let glue_database = bounded(&base.replace('-', "_"), 255);
        let workgroup = bounded(&base, 128);
        Self {
            processor_role: bounded(&format!("{base}-processor"), 64),
            firehose_role: bounded(&format!("{base}-firehose"), 64),
            role_policy: "das-setup".to_owned(),
            lambda_log_group: format!("/aws/lambda/{function}"),
            firehose_log_group: format!("/aws/kinesisfirehose/{delivery_stream}"),
            firehose_log_stream: "DestinationDelivery".to_owned(),
            bucket: bounded(&format!("{base}-{account}-{region}"), 63),
            key_alias: format!("alias/das-setup/{qualified}"),
            digest_key_alias: format!("alias/das-setup/digests/{qualified}"),
            alerts_topic_arn: format!(
                "arn:{}:sns:{region}:{account}:{alerts_topic}",
                partition_of(region)
            ),
            alerts_topic,
            alarm_prefix: format!("{base}-"),
            glue_database_arn: format!(
                "arn:{}:glue:{region}:{account}:database/{glue_database}",
                partition_of(region)
            ),
            glue_database,
            workgroup_arn: format!(
                "arn:{}:athena:{region}:{account}:workgroup/{workgroup}",
                partition_of(region)
            ),
            workgroup,
            function,
            delivery_stream,
        }
    }
}

/// The partition of a region (AWS General Reference, "Amazon Resource Names"): China's and
/// GovCloud's regions have their own.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The tags das-setup puts on what it creates.
pub fn tags(target: &TargetRef) -> [(&'static str, String); 2] {
    [
        (TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE.to_owned()),
        (TAG_CLUSTER, target.id.clone()),
    ]
}

/// `name` itself if it fits, else a prefix of it and 8 hex digits of its SHA-256, so two long
/// names that share a prefix still differ.
pub fn bounded(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let keep = max - hash.len() - 1;
    let prefix = name[..keep].trim_end_matches(['-', '.']);
    format!("{prefix}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(id: &str) -> TargetRef {
        TargetRef::parse(TargetKind::Cluster, id).unwrap()
    }

    #[test]
    fn targets_by_identifier_or_arn() {
        assert_eq!(cluster("Demo").id, "demo");
        let arn = cluster("arn:aws:rds:eu-west-1:123456789012:cluster:prod-db");
        assert_eq!(
            (
                arn.id.as_str(),
                arn.region.as_deref(),
                arn.account.as_deref()
            ),
            ("prod-db", Some("eu-west-1"), Some("123456789012"))
        );
        let db = TargetRef::parse(TargetKind::Instance, "arn:aws:rds:us-east-1:1:db:ora1").unwrap();
        assert_eq!(db.id, "ora1");
        for bad in [
            "",
            "1abc",
            "a--b",
            "a-",
            "a_b",
            "arn:aws:rds:r:1:db:x",
            "arn:aws:s3:::b",
            &"a".repeat(64),
        ] {
            let e = TargetRef::parse(TargetKind::Cluster, bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("cluster"), "{bad}: {e}");
        }
    }

    #[test]
    fn names_are_deterministic_valid_and_bounded() {
        let n = Names::new(&cluster("demo"), "123456789012", "us-east-1");
        assert_eq!(n.function, "das-setup-demo");
        assert_eq!(n.processor_role, "das-setup-demo-processor");
        assert_eq!(n.firehose_role, "das-setup-demo-firehose");
        assert_eq!(n.delivery_stream, "das-setup-demo");
        assert_eq!(n.bucket, "das-setup-demo-123456789012-us-east-1");
        assert_eq!(n.lambda_log_group, "/aws/lambda/das-setup-demo");
        assert_eq!(n.key_alias, "alias/das-setup/demo");
        assert_eq!(n.digest_key_alias, "alias/das-setup/digests/demo");
        assert_eq!(n.workgroup, "das-setup-demo");
        assert_eq!(n, Names::new(&cluster("DEMO"), "123456789012", "us-east-1"));
        let n = Names::new(&cluster("my-db-1"), "1", "r");
        assert_eq!(
            n.glue_database, "das_setup_my_db_1",
            "Athena's names: lower case, digits and underscores"
        );

        let long = "a".repeat(63);
        let n = Names::new(&cluster(&long), "123456789012", "ap-southeast-2");
        for (name, max) in [
            (&n.function, 64),
            (&n.processor_role, 64),
            (&n.firehose_role, 64),
            (&n.delivery_stream, 64),
            (&n.bucket, 63),
        ] {
            assert!(name.len() <= max, "{name}");
            assert!(!name.ends_with('-'));
        }
        assert_ne!(n.processor_role, n.firehose_role);
        let other = Names::new(
            &cluster(&format!("{}b", "a".repeat(62))),
            "123456789012",
            "ap-southeast-2",
        );
        assert_ne!(
            n.bucket, other.bucket,
            "a shared prefix still gives distinct names"
        );

        let db = Names::new(
            &TargetRef::parse(TargetKind::Instance, "demo").unwrap(),
            "1",
            "r",
        );
        assert_ne!(db.function, Names::new(&cluster("demo"), "1", "r").function);
    }

    #[test]
    fn buckets_follow_s3_rules() {
        for id in ["demo", "x", &"z".repeat(63), "a-1-b"] {
            let b = Names::new(&cluster(id), "123456789012", "eu-central-1").bucket;
            assert!((3..=63).contains(&b.len()), "{b}");
            assert!(
                b.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
                "{b}"
            );
            assert!(
                b.as_bytes()[0].is_ascii_alphanumeric()
                    && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
            );
        }
    }
}
