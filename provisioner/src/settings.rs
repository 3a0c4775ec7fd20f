//! `up`'s flags -> validated settings, before any AWS call (pure). The processor's environment
//! is rendered here and checked by the processor's own configuration parser, so `up` refuses a
//! filter the Lambda would refuse at start-up.

use std::collections::BTreeMap;
use std::path::PathBuf;

use das_processor::config::{Config, check_bucket_name, normalize_prefix, var};

use crate::cli::{Arch, FilterArgs, StreamMode, UpArgs};
use crate::naming::{NameError, TargetKind, TargetRef};

/// The KMS key for the activity stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// A symmetric customer-managed key created by das-setup (alias `alias/das-setup/<id>`).
    Create,
    /// An existing key: id, ARN, alias name or alias ARN.
    Existing(String),
}

/// Everything `up` needs from its flags.
#[derive(Debug, Clone)]
pub struct UpSettings {
    pub target: TargetRef,
    pub key: KeyChoice,
    pub mode: StreamMode,
    /// `None`: the default name from `naming` (it needs the account and region).
    pub bucket: Option<String>,
    pub prefix: String,
    /// The processor's filter variables (`DAS_INCLUDE_CATEGORIES` ...), without the bucket.
    pub filters: BTreeMap<String, String>,
    pub arch: Arch,
    pub lambda_zip: Option<PathBuf>,
    pub retention_days: Option<u32>,
    pub dry_run: bool,
    pub yes: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("give --cluster or --instance")]
    NoTarget,
    #[error(transparent)]
    Target(#[from] NameError),
    #[error("--mode sync is for Aurora PostgreSQL clusters only (instances stream in async mode)")]
    SyncOnInstance,
    #[error("--bucket {0:?}: {1}")]
    Bucket(String, &'static str),
    #[error("--prefix {0:?}: {1}")]
    Prefix(String, &'static str),
    #[error("--{flag}: {reason}")]
    Filter { flag: &'static str, reason: String },
    #[error("--lambda-zip {0}: {1}")]
    LambdaZip(PathBuf, String),
    #[error("--retention-days {0}: expected 1 to 36500")]
    Retention(u32),
}

impl UpSettings {
    pub fn from_args(args: &UpArgs) -> Result<Self, SettingsError> {
        let target = match (&args.target.cluster, &args.target.instance) {
            (Some(c), None) => TargetRef::parse(TargetKind::Cluster, c)?,
            (None, Some(i)) => TargetRef::parse(TargetKind::Instance, i)?,
            _ => return Err(SettingsError::NoTarget),
        };
        if args.mode == StreamMode::Sync && target.kind == TargetKind::Instance {
            return Err(SettingsError::SyncOnInstance);
        }
        if let Some(bucket) = &args.bucket {
            check_bucket(bucket)?;
        }
        let prefix = check_prefix(&args.prefix)?;
        let filters = filters(&args.filters)?;
        if let Some(zip) = &args.lambda_zip {
            let meta = std::fs::metadata(zip)
                .map_err(|e| SettingsError::LambdaZip(zip.clone(), e.to_string()))?;
            if !meta.is_file() {
                return Err(SettingsError::LambdaZip(zip.clone(), "not a file".into()));
            }
        }
        if let Some(days) = args.retention_days
            && !(1..=36_500).contains(&days)
        {
            return Err(SettingsError::Retention(days));
        }
        Ok(Self {
            target,
            key: args
                .kms_key
                .clone()
                .map_or(KeyChoice::Create, KeyChoice::Existing),
            mode: args.mode,
            bucket: args.bucket.clone(),
            prefix,
            filters,
            arch: args.arch,
            lambda_zip: args.lambda_zip.clone(),
            retention_days: args.retention_days,
            dry_run: args.dry_run,
            yes: args.yes,
        })
    }

    /// The processor function's whole environment for this bucket.
    pub fn lambda_environment(&self, bucket: &str) -> BTreeMap<String, String> {
        let mut env = self.filters.clone();
        env.insert(var::OUTPUT_BUCKET.into(), bucket.to_owned());
        env.insert(var::OUTPUT_PREFIX.into(), self.prefix.clone());
        env
    }
}

/// The processor's filter variables from `--include`, `--exclude`, `--exclude-users` (`up` and
/// `tail` alike), checked by the processor's own parser.
pub fn filters(args: &FilterArgs) -> Result<BTreeMap<String, String>, SettingsError> {
    let mut env = BTreeMap::new();
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    };
    if !args.include.is_empty() {
        env.insert(var::INCLUDE_CATEGORIES.to_owned(), list(&args.include));
    }
    if !args.exclude.is_empty() {
        env.insert(var::EXCLUDE_CATEGORIES.to_owned(), list(&args.exclude));
    }
    if let Some(users) = &args.exclude_users {
        env.insert(var::EXCLUDE_USERS.to_owned(), users.trim().to_owned());
    }
    let mut probe = env.clone();
    probe.insert(var::OUTPUT_BUCKET.into(), "validation-only".into());
    Config::from_env(|k| probe.get(k).cloned()).map_err(|e| SettingsError::Filter {
        flag: match e.var {
            var::EXCLUDE_CATEGORIES => "exclude",
            var::EXCLUDE_USERS => "exclude-users",
            _ => "include",
        },
        reason: e.reason,
    })?;
    Ok(env)
}

fn check_bucket(name: &str) -> Result<(), SettingsError> {
    check_bucket_name(name).map_err(|reason| SettingsError::Bucket(name.to_owned(), reason))
}

/// The processor's prefix rules, plus two of `up`'s own: the prefix must separate the events
/// from Firehose's error prefix, and the processor (not Firehose) names the folders.
fn check_prefix(prefix: &str) -> Result<String, SettingsError> {
    let bad = |reason| SettingsError::Prefix(prefix.to_owned(), reason);
    if prefix.is_empty() {
        return Err(bad(
            "must not be empty: the error prefix and other data share the bucket",
        ));
    }
    if prefix.contains("!{") {
        return Err(bad(
            "Firehose expressions are not used here: the processor names the folders",
        ));
    }
    let normalized = normalize_prefix(prefix).map_err(bad)?;
    if crate::desired::RESERVED_PREFIXES
        .iter()
        .any(|r| normalized.starts_with(r))
    {
        return Err(bad(
            "firehose/ and errors/ are where Firehose writes its own output and failed records",
        ));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn up(args: &[&str]) -> Result<UpSettings, SettingsError> {
        let cli = Cli::try_parse_from(["das-setup", "up"].iter().chain(args)).unwrap();
        let Command::Up(up) = cli.command else {
            panic!("not up")
        };
        UpSettings::from_args(&up)
    }

    #[test]
    fn defaults_and_the_blog_filter() {
        let s = up(&["--cluster", "demo"]).unwrap();
        assert_eq!(s.target.id, "demo");
        assert_eq!(s.key, KeyChoice::Create);
        assert_eq!(s.prefix, "parsed/");
        assert!(s.filters.is_empty());
        let env = s.lambda_environment("b-1");
        assert_eq!(env["DAS_OUTPUT_BUCKET"], "b-1");
        assert_eq!(env["DAS_OUTPUT_PREFIX"], "parsed/");

        let s = up(&[
            "--cluster",
            "demo",
            "--include",
            "ddl,DML",
            "--exclude-users",
            "",
        ])
        .unwrap();
        assert_eq!(s.filters["DAS_INCLUDE_CATEGORIES"], "DDL,DML");
        assert_eq!(s.filters["DAS_EXCLUDE_USERS"], "");
        let s = up(&[
            "--instance",
            "ora1",
            "--kms-key",
            "alias/mine",
            "--prefix",
            "audit",
        ])
        .unwrap();
        assert_eq!(s.key, KeyChoice::Existing("alias/mine".into()));
        assert_eq!(s.prefix, "audit/");
    }

    #[test]
    fn bad_flags_are_refused_before_any_call_naming_the_flag() {
        let cases: [(&[&str], &str); 10] = [
            (
                &["--cluster", "demo", "--include", "DDL,READS"],
                "--include: unknown category \"READS\"",
            ),
            (
                &["--cluster", "demo", "--exclude", "nope"],
                "--exclude: unknown category",
            ),
            (
                &["--cluster", "demo", "--include", "DDL", "--exclude", "DDL"],
                "keeps no category",
            ),
            (
                &["--cluster", "demo", "--bucket", "Bad_Bucket"],
                "--bucket \"Bad_Bucket\"",
            ),
            (
                &["--cluster", "demo", "--bucket", "192.168.1.1"],
                "IP address",
            ),
            (&["--cluster", "demo", "--prefix", "/x"], "--prefix \"/x\""),
            (
                &["--cluster", "demo", "--prefix", "errors/a"],
                "Firehose writes",
            ),
            (&["--instance", "ora1", "--mode", "sync"], "--mode sync"),
            (
                &["--cluster", "demo", "--lambda-zip", "/nonexistent/x.zip"],
                "--lambda-zip /nonexistent/x.zip",
            ),
            (
                &["--cluster", "demo", "--retention-days", "0"],
                "--retention-days 0",
            ),
        ];
        for (args, expected) in cases {
            let e = up(args).unwrap_err().to_string();
            assert!(
                e.contains(expected),
                "{args:?}: {e:?} should contain {expected:?}"
            );
        }
        assert!(matches!(
            up(&["--cluster", "1bad"]),
            Err(SettingsError::Target(_))
        ));
    }
}
