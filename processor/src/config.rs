//! The processor's configuration, read once at start-up from the environment (`das-setup up`
//! sets it on the function). Pure: the environment is passed in as a lookup function, and every
//! invalid value is an error naming the variable, so a misconfigured function fails at start-up
//! instead of quietly dropping audit data.

use std::collections::HashSet;
use std::time::Duration;

use crate::classify::Category;
use crate::inflate::DEFAULT_MAX_DECOMPRESSED;
use crate::redact::Mode;

/// The environment variables the processor reads: defined here once, used by `das-setup` to set
/// them (`up`) and to run the processor's filters itself (`tail`).
pub mod var {
    pub const OUTPUT_BUCKET: &str = "DAS_OUTPUT_BUCKET";
    pub const OUTPUT_PREFIX: &str = "DAS_OUTPUT_PREFIX";
    pub const INCLUDE_CATEGORIES: &str = "DAS_INCLUDE_CATEGORIES";
    pub const EXCLUDE_CATEGORIES: &str = "DAS_EXCLUDE_CATEGORIES";
    pub const EXCLUDE_USERS: &str = "DAS_EXCLUDE_USERS";
    pub const FIREHOSE_OUTPUT: &str = "DAS_FIREHOSE_OUTPUT";
    pub const RESOURCE_ID: &str = "DAS_RESOURCE_ID";
    pub const KEY_CACHE_SIZE: &str = "DAS_KEY_CACHE_SIZE";
    pub const KEY_CACHE_TTL_SECONDS: &str = "DAS_KEY_CACHE_TTL_SECONDS";
    pub const MAX_RECORD_BYTES: &str = "DAS_MAX_RECORD_BYTES";
    pub const GZIP_LEVEL: &str = "DAS_GZIP_LEVEL";
    pub const REDACT: &str = "DAS_REDACT";
    pub const DIGEST_KEY: &str = "DAS_DIGEST_KEY";
    pub const ALERT_RULES: &str = "DAS_ALERT_RULES";
    pub const ALERT_TOPIC_ARN: &str = "DAS_ALERT_TOPIC_ARN";
    pub const ALERT_EVENT_BUS: &str = "DAS_ALERT_EVENT_BUS";
    pub const MASTER_USER: &str = "DAS_MASTER_USER";
    pub const SECURITY_HUB_DATABASE_ARN: &str = "DAS_SECURITY_HUB_DATABASE_ARN";
    pub const EVENTS_METRIC: &str = "DAS_EVENTS_METRIC";
}

/// The file name of the alert rules in the function's zip (`das-setup up --alert-rules`): JSON,
/// the rule file's shape; `DAS_ALERT_RULES` names it relative to `LAMBDA_TASK_ROOT`.
pub const ALERT_RULES_FILE: &str = "alert-rules.json";

/// Users whose activity is the managed service's own (see the DAS documentation).
pub const DEFAULT_EXCLUDED_USERS: &str = "rdsadmin,rdsproxyadmin,RDSADMIN,RDSSEC";
pub const DEFAULT_PREFIX: &str = "parsed/";

/// What the processor answers Firehose for records whose events it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirehoseOutput {
    /// Events go to per-category S3 folders written by the processor; records are `Dropped`.
    S3,
    /// Records are `Ok` with their kept events as NDJSON, for the delivery stream's own prefix.
    Events,
}

/// Which events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Bit set of categories; every category when `DAS_INCLUDE_CATEGORIES` is unset or empty.
    included: u16,
    excluded_users: HashSet<String>,
}

impl Filter {
    pub fn new(
        include: Option<&[Category]>,
        exclude: &[Category],
        excluded_users: impl IntoIterator<Item = String>,
    ) -> Self {
        let all = Category::ALL.iter().fold(0, |acc, c| acc | c.bit());
        let included = include.map_or(all, |cs| cs.iter().fold(0, |acc, c| acc | c.bit()));
        let excluded = exclude.iter().fold(0, |acc, c| acc | c.bit());
        Self {
            included: included & !excluded,
            excluded_users: excluded_users.into_iter().collect(),
        }
    }

    /// Keeps every event.
    pub fn keep_all() -> Self {
        Self::new(None, &[], [])
    }

    pub fn keeps(&self, category: Category, user: Option<&str>) -> bool {
        self.included & category.bit() != 0
            && !user.is_some_and(|u| self.excluded_users.contains(u))
    }

    pub fn categories(&self) -> impl Iterator<Item = Category> + '_ {
        Category::ALL
            .into_iter()
            .filter(|c| self.included & c.bit() != 0)
    }
}

/// Everything the processor reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DAS_OUTPUT_BUCKET` (required).
    pub bucket: String,
    /// `DAS_OUTPUT_PREFIX`, default `parsed/`; always ends with `/`.
    pub prefix: String,
    pub filter: Filter,
    /// `DAS_FIREHOSE_OUTPUT`: `s3` (default) or `events`.
    pub firehose_output: FirehoseOutput,
    /// `DAS_RESOURCE_ID`: overrides the id read off the source stream ARN.
    pub resource_id: Option<String>,
    /// `DAS_KEY_CACHE_SIZE`, default 1000 data keys.
    pub key_cache_size: usize,
    /// `DAS_KEY_CACHE_TTL_SECONDS`, default 600.
    pub key_cache_ttl: Duration,
    /// `DAS_MAX_RECORD_BYTES`: decompressed size limit of one record, default 32 MiB.
    pub max_record_bytes: usize,
    /// `DAS_GZIP_LEVEL`: 1 (fastest) to 9 (smallest), default 6.
    pub gzip_level: u32,
    /// `DAS_REDACT`: `passwords` (default; secrets are always masked) or `literals`.
    pub redact: Mode,
    /// `DAS_DIGEST_KEY`: the asymmetric KMS key (ARN) that signs the integrity digests; unset,
    /// digests are chained but unsigned.
    pub digest_key: Option<String>,
    /// Where alerts come from and go (`DAS_ALERT_*`); `None`: no rules, no alerts.
    pub alerts: Option<AlertConfig>,
    /// `DAS_EVENTS_METRIC` `on`: each invocation logs the events-stored metric (`emf.rs`).
    pub events_metric: bool,
}

/// `DAS_ALERT_RULES` and the destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    /// The rule file (JSON): a path, relative ones under `LAMBDA_TASK_ROOT` (the unpacked zip).
    pub rules_path: String,
    /// `DAS_ALERT_TOPIC_ARN`: the SNS topic every alert is published to.
    pub topic_arn: Option<String>,
    /// `DAS_ALERT_EVENT_BUS`: the EventBridge bus alerts are put on (`default`).
    pub event_bus: Option<String>,
    /// `DAS_MASTER_USER`: the database's master user, for `master_user` matchers.
    pub master_user: Option<String>,
    /// `DAS_SECURITY_HUB_DATABASE_ARN`: high and critical alerts also become Security Hub
    /// findings about this database, in its account and region.
    pub security_hub: Option<crate::finding::HubTarget>,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Reads the configuration through `env` (`|name| std::env::var(name).ok()` in the binary).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let err = |var: &'static str, value: &str, reason: String| ConfigError {
            var,
            value: value.to_owned(),
            reason,
        };
        let bucket = env(var::OUTPUT_BUCKET).unwrap_or_default();
        if bucket.is_empty() {
            return Err(err(
                var::OUTPUT_BUCKET,
                "",
                "required: the S3 bucket for the events".into(),
            ));
        }
        check_bucket_name(&bucket)
            .map_err(|reason| err(var::OUTPUT_BUCKET, &bucket, reason.into()))?;
        let prefix = match env(var::OUTPUT_PREFIX) {
            None => DEFAULT_PREFIX.to_owned(),
            Some(p) => {
                normalize_prefix(&p).map_err(|reason| err(var::OUTPUT_PREFIX, &p, reason.into()))?
            }
        };
        let categories = |var: &'static str| -> Result<Option<Vec<Category>>, ConfigError> {
            let Some(raw) = env(var) else { return Ok(None) };
            let names: Vec<&str> = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if names.is_empty() {
                return Ok(None);
            }
            names
                .iter()
                .map(|name| {
                    Category::parse(name).ok_or_else(|| {
                        let known: Vec<_> = Category::ALL.iter().map(|c| c.as_str()).collect();
                        err(
                            var,
                            &raw,
                            format!("unknown category {name:?}; known: {}", known.join(", ")),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        };
        let include = categories(var::INCLUDE_CATEGORIES)?;
        let exclude = categories(var::EXCLUDE_CATEGORIES)?.unwrap_or_default();
        let users = env(var::EXCLUDE_USERS).unwrap_or_else(|| DEFAULT_EXCLUDED_USERS.to_owned());
        let users = users
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let filter = Filter::new(include.as_deref(), &exclude, users);
        if filter.categories().next().is_none() {
            return Err(err(
                var::EXCLUDE_CATEGORIES,
                &env(var::EXCLUDE_CATEGORIES).unwrap_or_default(),
                "together with DAS_INCLUDE_CATEGORIES this keeps no category at all".into(),
            ));
        }
        let firehose_output = match env(var::FIREHOSE_OUTPUT).as_deref().map(str::trim) {
            None | Some("" | "s3" | "S3") => FirehoseOutput::S3,
            Some("events" | "EVENTS") => FirehoseOutput::Events,
            Some(other) => {
                return Err(err(
                    var::FIREHOSE_OUTPUT,
                    other,
                    "expected \"s3\" or \"events\"".into(),
                ));
            }
        };
        let redact = match env(var::REDACT) {
            None => Mode::Passwords,
            Some(raw) if raw.trim().is_empty() => Mode::Passwords,
            Some(raw) => Mode::parse(&raw).ok_or_else(|| {
                err(
                    var::REDACT,
                    &raw,
                    "expected \"passwords\" (secrets only, always masked) or \"literals\" (every literal too)".into(),
                )
            })?,
        };
        let resource_id = env(var::RESOURCE_ID).filter(|s| !s.is_empty());
        if let Some(id) = &resource_id
            && crate::keys::EncryptionContext::for_resource(id).is_none()
        {
            return Err(err(
                var::RESOURCE_ID,
                id,
                "expected a cluster resource id (cluster-...) or an instance resource id (db-...)"
                    .into(),
            ));
        }
        let number =
            |var: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                match env(var) {
                    None => Ok(default),
                    Some(raw) => match raw.trim().parse::<u64>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(err(
                            var,
                            &raw,
                            format!("expected a whole number from {min} to {max}"),
                        )),
                    },
                }
            };
        Ok(Self {
            bucket,
            prefix,
            filter,
            firehose_output,
            resource_id,
            key_cache_size: number(var::KEY_CACHE_SIZE, 1000, 1, 1_000_000)? as usize,
            key_cache_ttl: Duration::from_secs(number(var::KEY_CACHE_TTL_SECONDS, 600, 0, 86_400)?),
            max_record_bytes: number(
                var::MAX_RECORD_BYTES,
                DEFAULT_MAX_DECOMPRESSED as u64,
                1024,
                1 << 30,
            )? as usize,
            gzip_level: number(var::GZIP_LEVEL, 6, 1, 9)? as u32,
            redact,
            digest_key: env(var::DIGEST_KEY)
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty()),
            alerts: alert_config(&env)?,
            events_metric: match env(var::EVENTS_METRIC).as_deref().map(str::trim) {
                None | Some("" | "off") => false,
                Some("on") => true,
                Some(other) => {
                    return Err(ConfigError {
                        var: var::EVENTS_METRIC,
                        value: other.to_owned(),
                        reason: "expected on or off".into(),
                    });
                }
            },
        })
    }
}

/// The alert settings: rules required for any destination to mean something.
fn alert_config(env: &impl Fn(&str) -> Option<String>) -> Result<Option<AlertConfig>, ConfigError> {
    let get = |var: &str| {
        env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let topic_arn = get(var::ALERT_TOPIC_ARN);
    let event_bus = get(var::ALERT_EVENT_BUS);
    let Some(rules_path) = get(var::ALERT_RULES) else {
        if let Some((var, value)) = topic_arn
            .map(|t| (var::ALERT_TOPIC_ARN, t))
            .or(event_bus.map(|b| (var::ALERT_EVENT_BUS, b)))
            .or(get(var::SECURITY_HUB_DATABASE_ARN).map(|a| (var::SECURITY_HUB_DATABASE_ARN, a)))
        {
            return Err(ConfigError {
                var,
                value,
                reason: format!("alerts need rules: set {} too", var::ALERT_RULES),
            });
        }
        return Ok(None);
    };
    if let Some(arn) = &topic_arn
        && !(arn.starts_with("arn:") && arn.split(':').nth(2) == Some("sns"))
    {
        return Err(ConfigError {
            var: var::ALERT_TOPIC_ARN,
            value: arn.clone(),
            reason: "expected an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)".into(),
        });
    }
    let security_hub = match get(var::SECURITY_HUB_DATABASE_ARN) {
        None => None,
        Some(arn) => Some(
            crate::finding::HubTarget::from_database_arn(&arn).ok_or_else(|| ConfigError {
                var: var::SECURITY_HUB_DATABASE_ARN,
                value: arn.clone(),
                reason: "expected an RDS cluster or instance ARN \
                         (arn:aws:rds:<region>:<account>:cluster:<id> or ...:db:<id>)"
                    .into(),
            })?,
        ),
    };
    Ok(Some(AlertConfig {
        rules_path,
        topic_arn,
        event_bus,
        master_user: get(var::MASTER_USER),
        security_hub,
    }))
}

/// S3's bucket naming rules; the rule a name breaks. Shared with `das-setup up --bucket`.
pub fn check_bucket_name(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("lower-case letters, digits, '.' and '-' only");
    }
    let (first, last) = (name.as_bytes()[0], name.as_bytes()[name.len() - 1]);
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err("must start and end with a letter or digit");
    }
    if name.contains("..") || name.starts_with("xn--") || name.ends_with("-s3alias") {
        return Err("not a valid S3 bucket name");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("must not look like an IP address");
    }
    Ok(())
}

/// An output key prefix as the processor uses it: a trailing `/` added unless it is empty.
/// Shared with `das-setup up --prefix`.
pub fn normalize_prefix(prefix: &str) -> Result<String, &'static str> {
    if prefix.starts_with('/') || prefix.contains("//") || prefix.chars().any(char::is_control) {
        return Err("must not start with '/', contain '//' or control characters");
    }
    Ok(if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("DAS_OUTPUT_BUCKET".into())
            .or_insert_with(|| "audit-bucket".into());
        Config::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn security_hub_names_a_database_arn_and_needs_rules() {
        let arn = "arn:aws:rds:eu-west-1:123456789012:cluster:shop";
        let c = config(&[
            ("DAS_ALERT_RULES", "alert-rules.json"),
            ("DAS_SECURITY_HUB_DATABASE_ARN", arn),
        ])
        .unwrap();
        let hub = c.alerts.unwrap().security_hub.unwrap();
        assert_eq!(hub.database_arn, arn);
        let e = config(&[
            ("DAS_ALERT_RULES", "alert-rules.json"),
            ("DAS_SECURITY_HUB_DATABASE_ARN", "shop"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "DAS_SECURITY_HUB_DATABASE_ARN");
        assert!(e.reason.contains("RDS cluster or instance ARN"), "{e}");
        let e = config(&[("DAS_SECURITY_HUB_DATABASE_ARN", arn)]).unwrap_err();
        assert!(e.reason.contains("alerts need rules"), "{e}");
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.prefix, "parsed/");
        assert_eq!(c.firehose_output, FirehoseOutput::S3);
        assert_eq!(c.filter.categories().count(), 10);
        assert!(!c.filter.keeps(Category::Ddl, Some("rdsadmin")));
        assert!(!c.filter.keeps(Category::Ddl, Some("RDSSEC")));
        assert!(c.filter.keeps(Category::Ddl, Some("alice")));
        assert!(c.filter.keeps(Category::Ddl, None));
        assert_eq!(c.gzip_level, 6);
        assert_eq!(c.key_cache_ttl, Duration::from_secs(600));
        assert_eq!(c.redact, Mode::Passwords);
        assert_eq!(
            config(&[("DAS_REDACT", " Literals ")]).unwrap().redact,
            Mode::Literals
        );
        assert_eq!(
            config(&[("DAS_REDACT", "")]).unwrap().redact,
            Mode::Passwords
        );
    }

    #[test]
    fn the_blog_use_case_ddl_and_dml_but_not_reads() {
        let c = config(&[("DAS_INCLUDE_CATEGORIES", "DDL, dml")]).unwrap();
        let kept: Vec<_> = c.filter.categories().collect();
        assert_eq!(kept, [Category::Ddl, Category::Dml]);
        assert!(!c.filter.keeps(Category::Dql, Some("alice")));
    }

    #[test]
    fn exclusions_and_empty_values() {
        let c = config(&[
            ("DAS_EXCLUDE_CATEGORIES", "DQL,CONNECT,DISCONNECT"),
            ("DAS_EXCLUDE_USERS", ""),
            ("DAS_INCLUDE_CATEGORIES", ""),
            ("DAS_OUTPUT_PREFIX", "audit"),
        ])
        .unwrap();
        assert_eq!(c.filter.categories().count(), 7);
        assert!(
            c.filter.keeps(Category::Ddl, Some("rdsadmin")),
            "empty user list keeps everyone"
        );
        assert_eq!(c.prefix, "audit/");
        let c = config(&[("DAS_EXCLUDE_USERS", "bob, carol")]).unwrap();
        assert!(!c.filter.keeps(Category::Ddl, Some("carol")));
        assert!(c.filter.keeps(Category::Ddl, Some("rdsadmin")));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases: [(&[(&str, &str)], &str); 10] = [
            // No value turns the masking of secrets off.
            (&[("DAS_REDACT", "none")], "DAS_REDACT"),
            (&[("DAS_OUTPUT_BUCKET", "")], "DAS_OUTPUT_BUCKET"),
            (&[("DAS_OUTPUT_BUCKET", "Bad_Bucket")], "DAS_OUTPUT_BUCKET"),
            (
                &[("DAS_INCLUDE_CATEGORIES", "DDL,READS")],
                "unknown category \"READS\"",
            ),
            (
                &[("DAS_EXCLUDE_CATEGORIES", "nope")],
                var::EXCLUDE_CATEGORIES,
            ),
            (
                &[
                    ("DAS_INCLUDE_CATEGORIES", "DDL"),
                    ("DAS_EXCLUDE_CATEGORIES", "DDL"),
                ],
                "keeps no category",
            ),
            (&[("DAS_FIREHOSE_OUTPUT", "kinesis")], "DAS_FIREHOSE_OUTPUT"),
            (&[("DAS_RESOURCE_ID", "abc")], "DAS_RESOURCE_ID"),
            (&[("DAS_GZIP_LEVEL", "11")], "DAS_GZIP_LEVEL"),
            (&[("DAS_OUTPUT_PREFIX", "/x")], "DAS_OUTPUT_PREFIX"),
        ];
        for (vars, expected) in cases {
            let e = config(vars).unwrap_err().to_string();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
    }
}
