//! How long the bucket keeps what das-setup writes, and whether anyone can delete it sooner.
//! Pure: `--retention-days` and `--object-lock` parsed, checked against each other, and turned
//! into the lifecycle rules das-setup owns in the bucket.
//!
//! Lifecycle rules whose filters overlap all apply to an object, and "when you have overlapping
//! Expiration actions, the shorter one takes precedence" (S3 User Guide, "How Amazon S3 handles
//! conflicts in lifecycle configurations"). So a catch-all rule for `default` cannot sit beside
//! a longer rule for one category: the category would be expired by the catch-all. With
//! per-category days, every category folder gets its own rule (its days, or the default's), and
//! the other folders das-setup writes get theirs; one catch-all rule remains only for what no
//! rule expires: unfinished multipart uploads and noncurrent versions.

use std::collections::BTreeMap;
use std::fmt;

use das_processor::classify::Category;
use das_processor::route;
use das_processor::{digest, manifest};

/// Lifecycle rule id of the catch-all rule (and, with `--retention-days N`, of the expiry of
/// everything); the per-folder rules are `<id>-<folder>`. Other ids in the bucket are not ours.
pub const RULE_ID: &str = "das-setup-retention";
pub const ABORT_INCOMPLETE_UPLOADS_DAYS: i32 = 7;
/// Noncurrent versions (left by retries' overwrites, or by expiry in a versioned bucket) are
/// kept this long after they stop being current, when some retention is set.
pub const NONCURRENT_DAYS: i32 = 30;
/// S3 accepts more; a century is the longest retention anyone has asked for.
pub const MAX_DAYS: u32 = 36_500;
/// Athena's results (`resource::workgroup::RESULTS_FOLDER`): copies of audit data made by
/// queries, not the record; kept a week, then their versions a day more.
pub const ATHENA_RESULTS_DAYS: i32 = 7;

/// `--retention-days`: `400`, or `DQL=30,DDL=2555,default=400`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Everything no category entry names; `None`: kept forever.
    pub default: Option<u32>,
    pub categories: BTreeMap<Category, u32>,
}

/// `--object-lock MODE --object-lock-days N`: S3 Object Lock's default retention on the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: LockMode,
    pub days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LockMode {
    /// Nobody, the account's root user included, can delete or overwrite a version before its
    /// retention ends, nor shorten it.
    Compliance,
    /// Principals granted s3:BypassGovernanceRetention can delete or shorten; nobody else.
    Governance,
}

impl LockMode {
    /// The API's value (`ObjectLockRetentionMode`).
    pub const fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

impl fmt::Display for ObjectLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} mode, {} day(s) per version",
            self.mode.as_str(),
            self.days
        )
    }
}

/// One lifecycle rule das-setup owns, as written and as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub prefix: String,
    pub expiration_days: Option<i32>,
    pub noncurrent_days: Option<i32>,
    pub abort_incomplete_days: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error(
        "--retention-days {spec:?}: {problem}; give DAYS, or CATEGORY=DAYS pairs separated by commas (categories: {}, and default for the rest), e.g. DQL=30,DDL=2555,default=400",
        categories()
    )]
    Spec { spec: String, problem: String },
    #[error(
        "--object-lock-days {lock}: {what} would expire after {days} day(s), but Object Lock keeps every version {lock} day(s), so S3 could not delete them when asked; lower --object-lock-days to {days} or less, or keep {what} longer"
    )]
    LockOutlivesRetention { what: String, days: u32, lock: u32 },
    #[error("--object-lock-days {0}: expected 1 to {MAX_DAYS}")]
    LockDays(u32),
}

fn categories() -> String {
    Category::ALL.map(Category::as_str).join(", ")
}

fn days(text: &str) -> Result<u32, String> {
    let text = text.trim();
    match text.parse::<u32>() {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
        Ok(d) => Err(format!("{d} days: expected 1 to {MAX_DAYS}")),
        Err(_) => Err(format!("{text:?} is not a number of days")),
    }
}

impl Retention {
    pub fn parse(spec: &str) -> Result<Self, RetentionError> {
        let bad = |problem: String| RetentionError::Spec {
            spec: spec.to_owned(),
            problem,
        };
        if !spec.contains('=') {
            return Ok(Self {
                default: Some(days(spec).map_err(bad)?),
                categories: BTreeMap::new(),
            });
        }
        let mut out = Self::default();
        for item in spec.split(',') {
            let Some((name, value)) = item.split_once('=') else {
                return Err(bad(format!("{item:?} is not CATEGORY=DAYS")));
            };
            let value = days(value).map_err(|p| bad(format!("{}: {p}", name.trim())))?;
            let twice = || bad(format!("{} is given twice", name.trim()));
            if name.trim().eq_ignore_ascii_case("default") {
                if out.default.replace(value).is_some() {
                    return Err(twice());
                }
            } else {
                let category = Category::parse(name)
                    .ok_or_else(|| bad(format!("{:?} is not a category", name.trim())))?;
                if out.categories.insert(category, value).is_some() {
                    return Err(twice());
                }
            }
        }
        Ok(out)
    }

    pub fn is_set(&self) -> bool {
        self.default.is_some() || !self.categories.is_empty()
    }

    /// How long events of `category` are kept (`None`: forever).
    pub fn days_of(&self, category: Category) -> Option<u32> {
        self.categories.get(&category).copied().or(self.default)
    }

    /// The manifests list what was written: kept as long as the longest-kept events, so that
    /// every stored object stays accounted for.
    fn manifest_days(&self) -> Option<u32> {
        if Category::ALL.iter().any(|c| self.days_of(*c).is_none()) {
            return None;
        }
        Category::ALL.iter().filter_map(|c| self.days_of(*c)).max()
    }

    /// The rules das-setup owns for events under `prefix`, by rule id.
    pub fn rules(&self, prefix: &str) -> BTreeMap<String, Rule> {
        let as_i32 = |d: u32| i32::try_from(d).unwrap_or(i32::MAX);
        let noncurrent = self.is_set().then_some(NONCURRENT_DAYS);
        let mut out = BTreeMap::new();
        let base = |expiration_days| Rule {
            prefix: String::new(),
            expiration_days,
            noncurrent_days: noncurrent,
            abort_incomplete_days: Some(ABORT_INCOMPLETE_UPLOADS_DAYS),
        };
        out.insert(
            format!("{RULE_ID}-athena-results"),
            Rule {
                prefix: crate::resource::workgroup::RESULTS_FOLDER.to_owned(),
                expiration_days: Some(ATHENA_RESULTS_DAYS),
                noncurrent_days: Some(1),
                abort_incomplete_days: None,
            },
        );
        if self.categories.is_empty() {
            out.insert(RULE_ID.to_owned(), base(self.default.map(as_i32)));
            return out;
        }
        out.insert(RULE_ID.to_owned(), base(None));
        let mut expire = |folder: &str, path: String, days: Option<u32>| {
            if let Some(days) = days {
                out.insert(
                    format!("{RULE_ID}-{folder}"),
                    Rule {
                        prefix: path,
                        expiration_days: Some(as_i32(days)),
                        noncurrent_days: None,
                        abort_incomplete_days: None,
                    },
                );
            }
        };
        for category in Category::ALL {
            expire(
                category.as_str(),
                route::category_prefix(prefix, category),
                self.days_of(category),
            );
        }
        expire(
            "manifests",
            format!("{prefix}{}", manifest::FOLDER),
            self.manifest_days(),
        );
        // The integrity digests: as long as the manifests, so every stored object stays
        // verifiable (`das-setup verify`).
        expire(
            "digests",
            format!("{prefix}{}", digest::FOLDER),
            self.manifest_days(),
        );
        // The raw archive (`--keep-raw`, `desired::RAW_PREFIX`): every category's records, so
        // as long as the longest-kept category, for that category's events to be derived again.
        expire("raw", "raw/".to_owned(), self.manifest_days());
        // Firehose's own folders (`desired::ERROR_PREFIX`, `desired::FIREHOSE_PREFIX`).
        expire("errors", "errors/".to_owned(), self.default);
        expire("firehose", "firehose/".to_owned(), self.default);
        out
    }

    /// Refuses a retention shorter than the Object Lock that would keep the same versions.
    pub fn check_lock(&self, lock: Option<&ObjectLock>) -> Result<(), RetentionError> {
        let Some(lock) = lock else { return Ok(()) };
        if !(1..=MAX_DAYS).contains(&lock.days) {
            return Err(RetentionError::LockDays(lock.days));
        }
        let default = self
            .default
            .map(|d| ("the events of the default".to_owned(), d));
        let categories = self
            .categories
            .iter()
            .map(|(c, d)| (format!("{c} events"), *d));
        match default
            .into_iter()
            .chain(categories)
            .min_by_key(|(_, d)| *d)
        {
            Some((what, days)) if days < lock.days => Err(RetentionError::LockOutlivesRetention {
                what,
                days,
                lock: lock.days,
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .categories
            .iter()
            .map(|(c, d)| format!("{c} {d} days"))
            .collect();
        match (self.default, parts.is_empty()) {
            (Some(d), true) => return write!(f, "{d} days"),
            (Some(d), false) => parts.push(format!("the rest {d} days")),
            (None, true) => return f.write_str("forever"),
            (None, false) => parts.push("the rest forever".into()),
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_the_default_and_pairs_name_categories() {
        let r = Retention::parse("400").unwrap();
        assert_eq!((r.default, r.categories.len()), (Some(400), 0));
        let r = Retention::parse(" dql = 30 ,DDL=2555,Default=400").unwrap();
        assert_eq!(r.default, Some(400));
        assert_eq!(r.days_of(Category::Dql), Some(30));
        assert_eq!(r.days_of(Category::Ddl), Some(2555));
        assert_eq!(r.days_of(Category::Dml), Some(400));
        assert_eq!(
            r.to_string(),
            "DDL 2555 days, DQL 30 days, the rest 400 days"
        );
        let r = Retention::parse("AUTH_FAILURE=90").unwrap();
        assert_eq!(r.default, None);
        assert_eq!(r.days_of(Category::Dml), None);
    }

    #[test]
    fn bad_specs_name_the_part_that_is_wrong() {
        for (spec, names) in [
            ("0", "0 days: expected 1 to 36500"),
            ("36501", "expected 1 to 36500"),
            ("forever", "\"forever\" is not a number of days"),
            ("SELECTS=30", "\"SELECTS\" is not a category"),
            ("DQL=30,DQL=40", "DQL is given twice"),
            ("default=1,default=2", "default is given twice"),
            ("DQL=30,,DDL=1", "\"\" is not CATEGORY=DAYS"),
            ("DQL=", "DQL: \"\" is not a number of days"),
            ("DQL=-1", "DQL: \"-1\" is not a number"),
        ] {
            let e = Retention::parse(spec).unwrap_err().to_string();
            assert!(e.contains(names), "{spec}: {e}");
            assert!(e.contains("DQL=30,DDL=2555,default=400"), "{e}");
            assert!(e.contains("AUTH_FAILURE"), "{e}");
        }
    }

    #[test]
    fn one_default_is_one_rule_over_everything() {
        let rules = Retention::parse("400").unwrap().rules("parsed/");
        assert_eq!(rules.len(), 2, "{rules:?}");
        // And Athena's results, a week, always (they are copies of audit data).
        let results = &rules[&format!("{RULE_ID}-athena-results")];
        assert_eq!(results.prefix, "athena-results/");
        assert_eq!(results.expiration_days, Some(ATHENA_RESULTS_DAYS));
        assert_eq!(results.noncurrent_days, Some(1));
        let rule = &rules[RULE_ID];
        assert_eq!(rule.prefix, "");
        assert_eq!(rule.expiration_days, Some(400));
        assert_eq!(rule.noncurrent_days, Some(NONCURRENT_DAYS));
        // No retention: only unfinished uploads are cleaned up.
        let rules = Retention::default().rules("parsed/");
        assert_eq!(
            rules[RULE_ID],
            Rule {
                prefix: String::new(),
                expiration_days: None,
                noncurrent_days: None,
                abort_incomplete_days: Some(ABORT_INCOMPLETE_UPLOADS_DAYS),
            }
        );
    }

    #[test]
    fn per_category_days_never_overlap_a_shorter_expiry() {
        let r = Retention::parse("DQL=30,DDL=2555,default=400").unwrap();
        let rules = r.rules("audit/");
        // The catch-all expires nothing: S3 would apply its days to DDL too (shorter wins).
        assert_eq!(rules[RULE_ID].expiration_days, None);
        assert_eq!(rules[RULE_ID].noncurrent_days, Some(NONCURRENT_DAYS));
        let by_prefix: BTreeMap<&str, i32> = rules
            .values()
            .filter_map(|r| r.expiration_days.map(|d| (r.prefix.as_str(), d)))
            .collect();
        assert_eq!(by_prefix["audit/DQL/"], 30);
        assert_eq!(by_prefix["audit/DDL/"], 2555);
        assert_eq!(by_prefix["audit/AUTH_FAILURE/"], 400);
        assert_eq!(
            by_prefix["audit/_manifests/"], 2555,
            "as long as the longest"
        );
        assert_eq!(
            by_prefix["audit/_digests/"], 2555,
            "as long as the manifests"
        );
        assert_eq!(by_prefix["raw/"], 2555, "as long as the longest");
        assert_eq!(by_prefix["errors/"], 400);
        assert_eq!(by_prefix["firehose/"], 400);
        assert_eq!(by_prefix["athena-results/"], ATHENA_RESULTS_DAYS);
        assert_eq!(by_prefix.len(), Category::ALL.len() + 6);
        // Every expiring prefix is where the processor writes that category.
        let group = route::GroupKey {
            category: Category::Dql,
            hour: route::UtcHour::from_epoch_millis(0),
        };
        assert!(route::object_key("audit/", &group, "b").starts_with("audit/DQL/"));
        // No two rules expire the same objects.
        let prefixes: Vec<&str> = by_prefix.keys().copied().collect();
        for a in &prefixes {
            for b in &prefixes {
                assert!(a == b || !a.starts_with(b), "{a} overlaps {b}");
            }
        }
        // Without a default, what no entry names is kept, and so are the manifests (Athena's
        // results, copies, go after their week whatever the events' retention).
        let rules = Retention::parse("DQL=30").unwrap().rules("audit/");
        let expiring: Vec<&str> = rules
            .values()
            .filter(|r| r.expiration_days.is_some())
            .map(|r| r.prefix.as_str())
            .collect();
        assert_eq!(expiring, ["audit/DQL/", "athena-results/"]);
    }

    #[test]
    fn a_lock_longer_than_a_retention_is_refused() {
        let lock = |days| ObjectLock {
            mode: LockMode::Compliance,
            days,
        };
        let r = Retention::parse("DQL=30,DDL=2555,default=400").unwrap();
        assert!(r.check_lock(Some(&lock(30))).is_ok());
        let e = r.check_lock(Some(&lock(31))).unwrap_err().to_string();
        assert!(
            e.contains("DQL events would expire after 30 day(s)") && e.contains("31 day(s)"),
            "{e}"
        );
        let e = Retention::parse("100")
            .unwrap()
            .check_lock(Some(&lock(365)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the events of the default would expire after 100"),
            "{e}"
        );
        assert!(Retention::default().check_lock(Some(&lock(3650))).is_ok());
        assert!(Retention::default().check_lock(None).is_ok());
        assert!(Retention::default().check_lock(Some(&lock(0))).is_err());
    }
}
