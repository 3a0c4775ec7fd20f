//! Every command's flags -> validated settings, in one place and before any AWS call (pure):
//! `UpSettings`, `DownSettings`, `StatusSettings`, `TailSettings`, each from its command's
//! arguments. Targets, durations and filters are parsed here once, by the same functions for
//! every command. The processor's environment is rendered here and checked by the processor's
//! own configuration parser, so `up` refuses a filter the Lambda would refuse at start-up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use das_processor::config::{Config, check_bucket_name, normalize_prefix, var};

use crate::cli::{
    Arch, AuditPolicy, DownArgs, FilterArgs, StatusArgs, StreamMode, TailArgs, Target, UpAlertArgs,
    UpArgs,
};
use crate::naming::{NameError, TargetKind, TargetRef};
use crate::retention::{ObjectLock, Retention, RetentionError};

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
    /// `--audit-policy`: `None` leaves the lock as it is.
    pub audit_policy: Option<AuditPolicy>,
    /// `None`: the default name from `naming` (it needs the account and region).
    pub bucket: Option<String>,
    pub prefix: String,
    /// The processor's filter variables (`DAS_INCLUDE_CATEGORIES` ...), without the bucket.
    pub filters: BTreeMap<String, String>,
    pub arch: Arch,
    pub lambda_zip: Option<PathBuf>,
    pub retention: Retention,
    pub object_lock: Option<ObjectLock>,
    /// `--keep-raw`: Firehose's source record backup under `raw/`.
    pub keep_raw: bool,
    /// `--alert-rules` / `--alerts`: the rules the function evaluates, and `--alert-email`.
    pub alerts: Option<AlertSettings>,
    pub dry_run: bool,
    pub yes: bool,
}

/// Where the function's alerts go, and about which database.
#[derive(Debug, Clone, Copy)]
pub struct AlertTargets<'a> {
    pub topic_arn: &'a str,
    pub master_user: Option<&'a str>,
    pub database_arn: &'a str,
}

/// The alert rules `up` deploys, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// The rule file as the function reads it (`alert-rules.json` in the zip).
    pub rules_json: String,
    /// The rules' names, in order (for the plan and `--output json`).
    pub rule_names: Vec<String>,
    pub email: Option<String>,
    /// `--security-hub`: high and critical alerts become Security Hub findings too.
    pub security_hub: bool,
    /// `--no-events-alarm HOURS`: the events-stored metric and its alarm.
    pub no_events_hours: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("give --cluster or --instance")]
    NoTarget,
    #[error(transparent)]
    Target(#[from] NameError),
    #[error("--mode sync is for Aurora PostgreSQL clusters only (instances stream in async mode)")]
    SyncOnInstance,
    #[error(
        "--audit-policy is for RDS for Oracle and SQL Server instances (--instance): Aurora clusters have no audit policy lock"
    )]
    AuditPolicyOnCluster,
    #[error("--bucket {0:?}: {1}")]
    Bucket(String, &'static str),
    #[error("--prefix {0:?}: {1}")]
    Prefix(String, &'static str),
    #[error("--{flag}: {reason}")]
    Filter { flag: &'static str, reason: String },
    #[error("--lambda-zip {0}: {1}")]
    LambdaZip(PathBuf, String),
    #[error("{0}")]
    AlertRules(String),
    #[error("--alert-email {0:?}: {1}")]
    AlertEmail(String, &'static str),
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error("--since {0:?}: expected a number and a unit (s, m, h, d), e.g. 30m, 1h, 2d{1}")]
    Since(String, &'static str),
}

/// The EventBridge bus alerts are put on: the account's default bus, where rules of other
/// tools (and AWS's own events) already are.
pub const ALERT_EVENT_BUS: &str = "default";

/// The folders Firehose writes; `--prefix` must stay clear of them.
pub const RESERVED_PREFIXES: [&str; 2] = ["firehose/", "errors/"];

/// Kinesis keeps activity stream records 24 hours: `tail --since` cannot reach further.
pub const STREAM_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// `--cluster` / `--instance`, for every command.
pub fn target(t: &Target) -> Result<TargetRef, SettingsError> {
    match (&t.cluster, &t.instance) {
        (Some(c), None) => Ok(TargetRef::parse(TargetKind::Cluster, c)?),
        (None, Some(i)) => Ok(TargetRef::parse(TargetKind::Instance, i)?),
        _ => Err(SettingsError::NoTarget),
    }
}

/// `30s`, `10m`, `1h`, `2d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// Everything `down` needs from its flags.
#[derive(Debug, Clone)]
pub struct DownSettings {
    pub target: TargetRef,
    /// `None`: the bucket the deployment writes to.
    pub bucket: Option<String>,
    pub delete_bucket: bool,
    pub delete_key: bool,
    pub dry_run: bool,
    pub yes: bool,
}

impl DownSettings {
    pub fn from_args(args: &DownArgs) -> Result<Self, SettingsError> {
        if let Some(bucket) = &args.bucket {
            check_bucket(bucket)?;
        }
        Ok(Self {
            target: target(&args.target)?,
            bucket: args.bucket.clone(),
            delete_bucket: args.delete_bucket,
            delete_key: args.delete_key,
            dry_run: args.dry_run,
            yes: args.yes,
        })
    }
}

/// Everything `status` needs from its flags.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    pub target: TargetRef,
    pub since: Duration,
    /// `--since` as given, for the report.
    pub since_text: String,
    pub strict: bool,
}

impl StatusSettings {
    pub fn from_args(args: &StatusArgs) -> Result<Self, SettingsError> {
        Ok(Self {
            target: target(&args.target)?,
            since: parse_duration(&args.since)
                .ok_or_else(|| SettingsError::Since(args.since.clone(), ""))?,
            since_text: args.since.clone(),
            strict: args.strict,
        })
    }
}

/// Everything `tail` needs from its flags.
#[derive(Debug, Clone)]
pub struct TailSettings {
    pub target: TargetRef,
    pub follow: bool,
    /// `None`: from now on.
    pub since: Option<Duration>,
    /// The processor's filter variables, as for `up`.
    pub filters: BTreeMap<String, String>,
}

impl TailSettings {
    pub fn from_args(args: &TailArgs) -> Result<Self, SettingsError> {
        let since = match &args.since {
            None => None,
            Some(text) => Some(
                parse_duration(text)
                    .filter(|d| *d <= STREAM_RETENTION)
                    .ok_or_else(|| {
                        SettingsError::Since(text.clone(), ", at most 24h (the stream's retention)")
                    })?,
            ),
        };
        Ok(Self {
            target: target(&args.target)?,
            follow: args.follow,
            since,
            filters: filters(&args.filters)?,
        })
    }
}

impl UpSettings {
    pub fn from_args(args: &UpArgs) -> Result<Self, SettingsError> {
        let target = target(&args.target)?;
        if args.mode == StreamMode::Sync && target.kind == TargetKind::Instance {
            return Err(SettingsError::SyncOnInstance);
        }
        if args.audit_policy.is_some() && target.kind == TargetKind::Cluster {
            return Err(SettingsError::AuditPolicyOnCluster);
        }
        if let Some(bucket) = &args.bucket {
            check_bucket(bucket)?;
        }
        let prefix =
            das_processor::route::database_prefix(&check_prefix(&args.prefix)?, &target.id);
        let filters = filters(&args.filters)?;
        if let Some(zip) = &args.lambda_zip {
            let meta = std::fs::metadata(zip)
                .map_err(|e| SettingsError::LambdaZip(zip.clone(), e.to_string()))?;
            if !meta.is_file() {
                return Err(SettingsError::LambdaZip(zip.clone(), "not a file".into()));
            }
        }
        let retention = match &args.retention_days {
            Some(spec) => Retention::parse(spec)?,
            None => Retention::default(),
        };
        let object_lock = args
            .object_lock
            .zip(args.object_lock_days)
            .map(|(mode, days)| ObjectLock { mode, days });
        retention.check_lock(object_lock.as_ref())?;
        let alerts = alert_settings(&args.alerting)?;
        Ok(Self {
            target,
            key: args
                .kms_key
                .clone()
                .map_or(KeyChoice::Create, KeyChoice::Existing),
            mode: args.mode,
            audit_policy: args.audit_policy,
            bucket: args.bucket.clone(),
            prefix,
            filters,
            arch: args.arch,
            lambda_zip: args.lambda_zip.clone(),
            retention,
            object_lock,
            keep_raw: args.keep_raw,
            alerts,
            dry_run: args.dry_run,
            yes: args.yes,
        })
    }

    /// The processor function's whole environment for this bucket.
    /// `alerts`: the topic's ARN and the database's master user, when alerts are on.
    pub fn lambda_environment(
        &self,
        bucket: &str,
        digest_key: &str,
        alerts: Option<AlertTargets<'_>>,
    ) -> BTreeMap<String, String> {
        let mut env = self.filters.clone();
        env.insert(var::OUTPUT_BUCKET.into(), bucket.to_owned());
        env.insert(var::OUTPUT_PREFIX.into(), self.prefix.clone());
        env.insert(var::DIGEST_KEY.into(), digest_key.to_owned());
        if let (Some(t), Some(settings)) = (alerts, &self.alerts) {
            env.insert(
                var::ALERT_RULES.into(),
                das_processor::config::ALERT_RULES_FILE.to_owned(),
            );
            env.insert(var::ALERT_TOPIC_ARN.into(), t.topic_arn.to_owned());
            env.insert(var::ALERT_EVENT_BUS.into(), ALERT_EVENT_BUS.to_owned());
            if let Some(user) = t.master_user {
                env.insert(var::MASTER_USER.into(), user.to_owned());
            }
            if settings.no_events_hours.is_some() {
                env.insert(var::EVENTS_METRIC.into(), "on".to_owned());
            }
            if settings.security_hub {
                env.insert(
                    var::SECURITY_HUB_DATABASE_ARN.into(),
                    t.database_arn.to_owned(),
                );
            }
        }
        env
    }
}

/// `--alert-rules FILE` / `--alerts default` loaded and compiled as the function will (every
/// problem named with its rule and field), and `--alert-email` checked.
fn alert_settings(args: &UpAlertArgs) -> Result<Option<AlertSettings>, SettingsError> {
    let spec = match (&args.alert_rules, &args.alerts) {
        (Some(path), _) => path.to_string_lossy().into_owned(),
        (None, Some(set)) => set.clone(),
        (None, None) => {
            let needing = [
                ("--alert-email", args.alert_email.is_some()),
                ("--security-hub", args.security_hub),
                ("--no-events-alarm", args.no_events_alarm.is_some()),
            ];
            return match needing.iter().find(|(_, given)| *given) {
                Some((flag, _)) => Err(SettingsError::AlertRules(format!(
                    "{flag} needs rules: give --alerts default or --alert-rules FILE"
                ))),
                None => Ok(None),
            };
        }
    };
    let (file, _) = crate::alerts::load(&spec).map_err(SettingsError::AlertRules)?;
    let rules_json = serde_json::to_string(&file)
        .map_err(|e| SettingsError::AlertRules(format!("alert rules {spec}: {e}")))?;
    let email = args
        .alert_email
        .as_deref()
        .map(str::trim)
        .map(str::to_owned);
    if let Some(email) = &email {
        let valid = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }) && !email.contains(char::is_whitespace);
        if !valid {
            return Err(SettingsError::AlertEmail(
                email.clone(),
                "expected an e-mail address such as security@example.com",
            ));
        }
    }
    Ok(Some(AlertSettings {
        rules_json,
        rule_names: file.rules.iter().map(|r| r.name.clone()).collect(),
        email,
        security_hub: args.security_hub,
        no_events_hours: args.no_events_alarm,
    }))
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
    // Secrets are masked whatever the flag says; only `literals` changes the function.
    if args.redact.as_deref() == Some("literals") {
        env.insert(var::REDACT.to_owned(), "literals".to_owned());
    }
    let mut probe = env.clone();
    probe.insert(var::OUTPUT_BUCKET.into(), "validation-only".into());
    Config::from_env(|k| probe.get(k).cloned()).map_err(|e| SettingsError::Filter {
        flag: match e.var {
            var::EXCLUDE_CATEGORIES => "exclude",
            var::EXCLUDE_USERS => "exclude-users",
            var::REDACT => "redact",
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
    if RESERVED_PREFIXES.iter().any(|r| normalized.starts_with(r)) {
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

    fn command(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once(&"das-setup").chain(args))
            .unwrap()
            .command
    }

    #[test]
    fn alert_flags_are_checked_before_anything_else() {
        let s = up(&[
            "--cluster",
            "demo",
            "--alerts",
            "default",
            "--alert-email",
            " sec@example.com ",
        ])
        .unwrap();
        let alerts = s.alerts.unwrap();
        assert_eq!(alerts.email.as_deref(), Some("sec@example.com"));
        assert!(
            alerts
                .rule_names
                .contains(&"table-dropped-or-truncated".to_owned())
        );
        // What the function reads back is the same rule set.
        let file: das_processor::alert::RuleFile =
            serde_json::from_str(&alerts.rules_json).unwrap();
        assert_eq!(file.rules.len(), alerts.rule_names.len());
        assert!(up(&["--cluster", "demo"]).unwrap().alerts.is_none());
        let err = up(&["--cluster", "demo", "--alert-email", "sec@example.com"]).unwrap_err();
        assert!(
            err.to_string().contains("--alert-email needs rules"),
            "{err}"
        );
        for bad in [
            "sec",
            "sec@example",
            "@example.com",
            "a b@example.com",
            "sec@.com",
        ] {
            let err = up(&[
                "--cluster",
                "demo",
                "--alerts",
                "default",
                "--alert-email",
                bad,
            ])
            .unwrap_err();
            assert!(err.to_string().starts_with("--alert-email"), "{bad}: {err}");
        }
        let err = up(&[
            "--cluster",
            "demo",
            "--alert-rules",
            "/nonexistent/rules.toml",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rules.toml"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        for bad in [
            "",
            "h",
            "0m",
            "5",
            "5 m",
            "1w",
            "-1h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_command_resolves_targets_durations_and_filters_the_same_way() {
        let Command::Status(status) = command(&["status", "--instance", "ora", "--since", "2h"])
        else {
            unreachable!()
        };
        let s = StatusSettings::from_args(&status).unwrap();
        assert_eq!(
            (s.target.kind, s.since),
            (TargetKind::Instance, Duration::from_secs(7200))
        );
        let Command::Status(status) = command(&["status", "--cluster", "c", "--since", "2w"])
        else {
            unreachable!()
        };
        let e = StatusSettings::from_args(&status).unwrap_err().to_string();
        assert!(e.contains("--since \"2w\""), "{e}");
        let Command::Tail(tail) = command(&["tail", "--cluster", "c", "--since", "2d"]) else {
            unreachable!()
        };
        let e = TailSettings::from_args(&tail).unwrap_err().to_string();
        assert!(e.contains("at most 24h"), "{e}");
        // tail takes up's filters, checked by the same parser.
        let Command::Tail(tail) = command(&[
            "tail",
            "--cluster",
            "c",
            "--exclude-users",
            "rdsadmin",
            "--include",
            "DDL",
        ]) else {
            unreachable!()
        };
        let s = TailSettings::from_args(&tail).unwrap();
        assert_eq!(s.filters[var::EXCLUDE_USERS], "rdsadmin");
        assert_eq!(s.filters[var::INCLUDE_CATEGORIES], "DDL");
        let Command::Tail(tail) = command(&["tail", "--cluster", "c", "--include", "NOPE"]) else {
            unreachable!()
        };
        assert!(
            TailSettings::from_args(&tail)
                .unwrap_err()
                .to_string()
                .contains("--include")
        );
        let Command::Down(down) = command(&["down", "--cluster", "c", "--bucket", "Bad_Name"])
        else {
            unreachable!()
        };
        assert!(
            DownSettings::from_args(&down)
                .unwrap_err()
                .to_string()
                .contains("--bucket")
        );
        let Command::Down(down) = command(&[
            "down",
            "--cluster",
            "arn:aws:rds:eu-west-1:1:cluster:c",
            "--delete-key",
        ]) else {
            unreachable!()
        };
        let s = DownSettings::from_args(&down).unwrap();
        assert_eq!(
            (s.target.id.as_str(), s.delete_key, s.delete_bucket),
            ("c", true, false)
        );
    }

    #[test]
    fn defaults_and_the_blog_filter() {
        let s = up(&["--cluster", "demo"]).unwrap();
        assert_eq!(s.target.id, "demo");
        assert_eq!(s.key, KeyChoice::Create);
        assert_eq!(s.prefix, "parsed/demo/", "the key names the database");
        assert!(s.filters.is_empty());
        let env = s.lambda_environment("b-1", "arn:aws:kms:eu-west-1:1:key/d", None);
        assert_eq!(env["DAS_OUTPUT_BUCKET"], "b-1");
        assert_eq!(env["DAS_DIGEST_KEY"], "arn:aws:kms:eu-west-1:1:key/d");
        assert_eq!(env["DAS_OUTPUT_PREFIX"], "parsed/demo/");

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
        let s = up(&["--cluster", "demo", "--redact", "literals"]).unwrap();
        assert_eq!(s.filters["DAS_REDACT"], "literals");
        let s = up(&["--cluster", "demo", "--redact", "passwords"]).unwrap();
        assert!(
            s.filters.is_empty(),
            "the default leaves the function as it is"
        );
        assert!(
            Cli::try_parse_from(["das-setup", "up", "--cluster", "d", "--redact", "none"]).is_err(),
            "masking secrets cannot be turned off"
        );
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
        assert_eq!(s.prefix, "audit/ora1/");
    }

    #[test]
    fn bad_flags_are_refused_before_any_call_naming_the_flag() {
        let cases: [(&[&str], &str); 14] = [
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
                &["--cluster", "c", "--audit-policy", "unlocked"],
                "Aurora clusters have no audit policy lock",
            ),
            (
                &["--cluster", "demo", "--lambda-zip", "/nonexistent/x.zip"],
                "--lambda-zip /nonexistent/x.zip",
            ),
            (
                &["--cluster", "demo", "--retention-days", "0"],
                "--retention-days \"0\": 0 days",
            ),
            (
                &["--cluster", "demo", "--retention-days", "SELECT=3"],
                "\"SELECT\" is not a category",
            ),
            (
                &[
                    "--cluster",
                    "demo",
                    "--retention-days",
                    "DQL=30,default=400",
                    "--object-lock",
                    "compliance",
                    "--object-lock-days",
                    "90",
                ],
                "DQL events would expire after 30 day(s)",
            ),
            (
                &[
                    "--cluster",
                    "demo",
                    "--object-lock",
                    "governance",
                    "--object-lock-days",
                    "0",
                ],
                "--object-lock-days 0: expected 1 to 36500",
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
