//! Alert rules: which activity someone must be told about. Pure: a rule set is compiled once
//! (every problem named with its rule and field), then each event is matched on the fields the
//! processor already reads; a [`Tracker`] adds what needs memory: thresholds ("at least N failed
//! logins of one user within M minutes") and de-duplication windows.
//!
//! The rule file (TOML for people, `das-setup alerts test` and `up --alert-rules`; the same
//! shape as JSON for the function) is a list of `[[rule]]` tables:
//!
//! ```toml
//! [[rule]]
//! name = "table-dropped"            # letters, digits, '-' and '_'; unique
//! severity = "high"                 # info, low, medium, high, critical
//! description = "A table was dropped or truncated"
//! category = ["DDL"]                # the processor's categories
//! statement = '(?i)^\s*(drop\s+table|truncate)\b'   # a regular expression on commandText
//! user = ["app_*"]                  # command, user, database, object, client_host,
//!                                   # application, engine: values, `*` any run of characters,
//!                                   # case ignored; one value or a list
//! master_user = true                # the database's master user (the function is told it)
//! except = { user = ["migrator"] }  # the same matchers: any that holds vetoes the rule
//! dedup_minutes = 10                # one alert per key in this window (default 0: every match)
//! dedup_by = ["user", "client_host"]# the key (default: user and client_host)
//! threshold = { count = 5, minutes = 1, by = "user" }
//! ```
//!
//! Every matcher given must hold (and); within one matcher any value may (or).
//!
//! Thresholds and de-duplication count events by their own `logTime` (the arrival time when
//! they have none) in the memory of one warm execution environment. That is the approximation:
//! Lambda keeps an environment warm between Firehose's invocations, and Firehose invokes the
//! function one batch at a time per shard, so a burst is counted whole unless its events reach
//! concurrent environments (several shards) or the environment is recycled between them, when
//! each part counts alone and a burst split across them can be missed. Bounded: at most
//! [`MAX_KEYS`] keys are remembered (the oldest forgotten first), and of a key's times only the
//! newest `count` within its window.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::classify::{Category, Engine};
use crate::event::EventFields;
use crate::redact::{self, Mode};

/// Keys remembered by a [`Tracker`] (thresholds and de-duplication together).
pub const MAX_KEYS: usize = 10_000;
/// Events a [`Tracker`] remembers having seen (those with an identity that matched a rule), so
/// that a retried batch is answered with the same alerts: several full batches' worth.
pub const MAX_SEEN: usize = 50_000;
/// The largest threshold count: a key keeps at most this many event times, so a tracker holds
/// at most `MAX_KEYS * MAX_THRESHOLD` of them (80 MB), whatever the event rate.
pub const MAX_THRESHOLD: u32 = 1000;
/// A statement regular expression's compiled size limit (the `regex` crate's guard).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The longest a statement is quoted in an alert.
pub const STATEMENT_CHARS: usize = 1000;

// --- the file ----------------------------------------------------------------------------------

/// A rule file as written: `[[rule]]` tables (TOML) or `{"rule": [...]}` (JSON).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleSpec>,
}

/// One value or a list of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Values(pub Vec<String>);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(v) => Values(vec![v]),
            OneOrMany::Many(v) => Values(v),
        })
    }
}

/// The matchers of a rule (and of its `except`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_host: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub count: u32,
    pub minutes: u32,
    pub by: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    // The matchers, as in `MatchSpec` (not flattened: serde cannot refuse unknown keys then,
    // and a misspelt matcher must not silently widen a rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_host: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<MatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_by: Option<Values>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<ThresholdSpec>,
}

impl RuleSpec {
    /// The rule's own matchers.
    pub fn when(&self) -> MatchSpec {
        MatchSpec {
            category: self.category.clone(),
            command: self.command.clone(),
            user: self.user.clone(),
            database: self.database.clone(),
            object: self.object.clone(),
            client_host: self.client_host.clone(),
            application: self.application.clone(),
            engine: self.engine.clone(),
            statement: self.statement.clone(),
            master_user: self.master_user,
        }
    }
}

/// The built-in rule set (`--alerts default`), documented in the README.
pub const DEFAULT_RULES: &str = include_str!("../alerts/default.toml");

// --- compiled ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A field of an event that rules match on, or key thresholds and de-duplication by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Command,
    User,
    Database,
    Object,
    ClientHost,
    Application,
    Engine,
}

impl Field {
    const ALL: [(Field, &'static str); 7] = [
        (Field::Command, "command"),
        (Field::User, "user"),
        (Field::Database, "database"),
        (Field::Object, "object"),
        (Field::ClientHost, "client_host"),
        (Field::Application, "application"),
        (Field::Engine, "engine"),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name.trim())
            .map(|(f, _)| *f)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n)
    }
}

/// A rule that cannot be used: which rule, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule:?}: {field}: {problem}")]
pub struct RuleError {
    pub rule: String,
    pub field: &'static str,
    pub problem: String,
}

/// A `*` pattern, case ignored.
#[derive(Debug, Clone)]
struct Glob(Vec<String>);

impl Glob {
    fn new(pattern: &str) -> Self {
        Glob(pattern.split('*').map(str::to_lowercase).collect())
    }

    fn matches(&self, value: &str) -> bool {
        // ASCII (nearly every identifier) is compared in place; anything else lower-cased first.
        if value.is_ascii() {
            return self.matches_lower(value.as_bytes(), true);
        }
        self.matches_lower(value.to_lowercase().as_bytes(), false)
    }

    /// `fold`: compare ASCII case-insensitively (else `value` is lower-cased already).
    fn matches_lower(&self, value: &[u8], fold: bool) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if fold {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let parts = &self.0;
        let (first, last) = (parts[0].as_bytes(), parts[parts.len() - 1].as_bytes());
        if parts.len() == 1 {
            return eq(value, first);
        }
        if value.len() < first.len() + last.len()
            || !eq(&value[..first.len()], first)
            || !eq(&value[value.len() - last.len()..], last)
        {
            return false;
        }
        let mut rest = &value[first.len()..value.len() - last.len()];
        for middle in &parts[1..parts.len() - 1] {
            let middle = middle.as_bytes();
            match (0..=rest.len().saturating_sub(middle.len()))
                .find(|&i| rest.len() >= middle.len() && eq(&rest[i..i + middle.len()], middle))
            {
                Some(i) => rest = &rest[i + middle.len()..],
                None => return false,
            }
        }
        true
    }
}

#[derive(Debug, Clone, Default)]
struct Matcher {
    /// Category bit set; 0: any.
    categories: u16,
    fields: Vec<(Field, Vec<Glob>)>,
    statement: Option<Regex>,
    master_user: Option<bool>,
}

impl Matcher {
    /// `except`: these are a rule's `except` matchers (errors name `except.<field>`).
    fn compile(rule: &str, spec: &MatchSpec, except: bool) -> Result<Self, RuleError> {
        let err = |field: &'static str, problem: String| RuleError {
            rule: rule.to_owned(),
            field,
            problem,
        };
        let mut m = Matcher::default();
        if let Some(Values(names)) = &spec.category {
            let field = if except {
                "except.category"
            } else {
                "category"
            };
            if names.is_empty() {
                return Err(err(field, "an empty list matches nothing".into()));
            }
            for name in names {
                let c = Category::parse(name).ok_or_else(|| {
                    let known: Vec<_> = Category::ALL.iter().map(|c| c.as_str()).collect();
                    err(
                        field,
                        format!("unknown category {name:?} (known: {})", known.join(", ")),
                    )
                })?;
                m.categories |= c.bit();
            }
        }
        let lists = [
            (Field::Command, &spec.command, "command", "except.command"),
            (Field::User, &spec.user, "user", "except.user"),
            (
                Field::Database,
                &spec.database,
                "database",
                "except.database",
            ),
            (Field::Object, &spec.object, "object", "except.object"),
            (
                Field::ClientHost,
                &spec.client_host,
                "client_host",
                "except.client_host",
            ),
            (
                Field::Application,
                &spec.application,
                "application",
                "except.application",
            ),
            (Field::Engine, &spec.engine, "engine", "except.engine"),
        ];
        for (f, values, name, except_name) in lists {
            let Some(Values(values)) = values else {
                continue;
            };
            let name = if except { except_name } else { name };
            if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) {
                return Err(err(
                    name,
                    "give one or more non-empty values (`*` matches any)".into(),
                ));
            }
            m.fields
                .push((f, values.iter().map(|v| Glob::new(v.trim())).collect()));
        }
        if let Some(pattern) = &spec.statement {
            let name = if except {
                "except.statement"
            } else {
                "statement"
            };
            let regex = RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    err(
                        name,
                        format!("not a regular expression the processor can use: {e}"),
                    )
                })?;
            m.statement = Some(regex);
        }
        m.master_user = spec.master_user;
        Ok(m)
    }

    fn is_empty(&self) -> bool {
        self.categories == 0
            && self.fields.is_empty()
            && self.statement.is_none()
            && self.master_user.is_none()
    }

    /// Every matcher holds (`all`), or any does (`!all`: an `except`).
    fn holds(&self, s: &Subject<'_>, master: Option<&str>, all: bool) -> bool {
        let mut results = std::iter::empty::<bool>()
            .chain((self.categories != 0).then(|| self.categories & s.category.bit() != 0))
            .chain(self.fields.iter().map(|(field, globs)| {
                s.get(*field)
                    .is_some_and(|value| globs.iter().any(|g| g.matches(value)))
            }))
            .chain(
                self.statement
                    .as_ref()
                    .map(|r| s.statement.is_some_and(|t| r.is_match(t))),
            )
            .chain(self.master_user.map(|want| {
                let is_master = matches!((master, s.user), (Some(m), Some(u)) if m == u);
                is_master == want
            }));
        if all {
            results.all(|r| r)
        } else {
            results.any(|r| r)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Threshold {
    pub count: u32,
    pub window_millis: i64,
    pub by: Field,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    pub description: Option<String>,
    when: Matcher,
    except: Option<Matcher>,
    pub dedup_millis: i64,
    pub dedup_by: Vec<Field>,
    pub threshold: Option<Threshold>,
}

/// A compiled rule set.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    /// The database's master user (`master_user` matchers).
    master_user: Option<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Rules {
    /// Compiles a rule file; the first problem is named with its rule and field.
    pub fn compile(file: &RuleFile) -> Result<Self, RuleError> {
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, spec) in file.rules.iter().enumerate() {
            let rule = if spec.name.trim().is_empty() {
                format!("#{}", i + 1)
            } else {
                spec.name.clone()
            };
            let err = |field: &'static str, problem: String| RuleError {
                rule: rule.clone(),
                field,
                problem,
            };
            if !valid_name(&spec.name) {
                return Err(err(
                    "name",
                    "1 to 64 letters, digits, '-' or '_' (it names the rule in every alert)".into(),
                ));
            }
            if rules.iter().any(|r: &Rule| r.name == spec.name) {
                return Err(err("name", "two rules have this name".into()));
            }
            let severity = Severity::ALL
                .into_iter()
                .find(|s| s.as_str().eq_ignore_ascii_case(spec.severity.trim()))
                .ok_or_else(|| {
                    err(
                        "severity",
                        format!(
                            "{:?}: one of info, low, medium, high, critical",
                            spec.severity
                        ),
                    )
                })?;
            let when = Matcher::compile(&rule, &spec.when(), false)?;
            if when.is_empty() {
                return Err(err(
                    "rule",
                    "matches every event: give at least one of category, command, user, database, object, client_host, application, engine, statement, master_user".into(),
                ));
            }
            let except = spec
                .except
                .as_ref()
                .map(|e| Matcher::compile(&rule, e, true))
                .transpose()?;
            if except.as_ref().is_some_and(Matcher::is_empty) {
                return Err(err("except", "an empty except vetoes nothing".into()));
            }
            let fields = |values: &Values, field: &'static str| -> Result<Vec<Field>, RuleError> {
                values
                    .0
                    .iter()
                    .map(|v| {
                        Field::parse(v).ok_or_else(|| {
                            err(
                                field,
                                format!(
                                    "{v:?}: one of command, user, database, object, client_host, application, engine"
                                ),
                            )
                        })
                    })
                    .collect()
            };
            let dedup_by = match &spec.dedup_by {
                Some(values) => fields(values, "dedup_by")?,
                None => vec![Field::User, Field::ClientHost],
            };
            let threshold = match &spec.threshold {
                None => None,
                Some(t) => {
                    if !(2..=MAX_THRESHOLD).contains(&t.count) {
                        return Err(err(
                            "threshold.count",
                            format!(
                                "{}: from 2 to {MAX_THRESHOLD} (1 is an ordinary rule)",
                                t.count
                            ),
                        ));
                    }
                    if !(1..=1440).contains(&t.minutes) {
                        return Err(err(
                            "threshold.minutes",
                            format!("{}: from 1 to 1440 (a day)", t.minutes),
                        ));
                    }
                    let by = fields(&Values(vec![t.by.clone()]), "threshold.by")?[0];
                    Some(Threshold {
                        count: t.count,
                        window_millis: i64::from(t.minutes) * 60_000,
                        by,
                    })
                }
            };
            let dedup_minutes = spec.dedup_minutes.unwrap_or(0);
            if dedup_minutes > 10_080 {
                return Err(err(
                    "dedup_minutes",
                    format!("{dedup_minutes}: at most 10080 (a week)"),
                ));
            }
            rules.push(Rule {
                name: spec.name.clone(),
                severity,
                description: spec.description.clone(),
                when,
                except,
                // A threshold rule alerts once per window by default, not on every event past N.
                dedup_millis: match (&threshold, spec.dedup_minutes) {
                    (Some(t), None) => t.window_millis,
                    _ => i64::from(dedup_minutes) * 60_000,
                },
                dedup_by,
                threshold,
            });
        }
        Ok(Self {
            rules,
            master_user: None,
        })
    }

    /// The same rules, told the database's master user.
    #[must_use]
    pub fn with_master_user(mut self, user: Option<String>) -> Self {
        self.master_user = user.filter(|u| !u.is_empty());
        self
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules whose matchers hold for this event (before thresholds and de-duplication).
    pub fn matching<'r>(&'r self, s: &'r Subject<'_>) -> impl Iterator<Item = (usize, &'r Rule)> {
        let master = self.master_user.as_deref();
        self.rules.iter().enumerate().filter(move |(_, r)| {
            r.when.holds(s, master, true)
                && !r.except.as_ref().is_some_and(|e| e.holds(s, master, false))
        })
    }
}

// --- events ------------------------------------------------------------------------------------

/// What a rule sees of one event.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub category: Category,
    /// The event's command or, where the engine names the statement nowhere else (MySQL's
    /// `QUERY`), the statement's leading keywords.
    pub command: Option<&'a str>,
    pub user: Option<&'a str>,
    pub database: Option<&'a str>,
    pub object: Option<&'a str>,
    pub client_host: Option<&'a str>,
    pub application: Option<&'a str>,
    pub engine: Option<&'a str>,
    /// The statement as logged (not masked: rules may look for what masking hides; alerts quote
    /// the masked text).
    pub statement: Option<&'a str>,
    /// The statement as the caller already masked it (the processor, for the events it
    /// stores), so an alert quotes it without masking it again; `None`: masked when quoted.
    pub masked: Option<&'a str>,
    pub time_millis: i64,
    /// The event's identity where it has one that a retry repeats (the processor: its Firehose
    /// record id and its place in the record). A [`Tracker`] that saw it already answers with
    /// the alerts it raised then and changes nothing: a retried batch neither counts its events
    /// twice nor loses the alerts of its first attempt to de-duplication.
    pub id: Option<u64>,
}

impl<'a> Subject<'a> {
    /// `fallback_millis`: the time of an event without a readable `logTime` (its arrival).
    pub fn new(
        fields: &'a EventFields<'a>,
        category: Category,
        command: &'a str,
        fallback_millis: i64,
    ) -> Self {
        let s = |v: &'a Option<Cow<'a, str>>| v.as_deref().filter(|s| !s.is_empty());
        Self {
            category,
            command: Some(command).filter(|c| !c.is_empty()),
            user: s(&fields.db_user_name),
            database: s(&fields.database_name),
            object: s(&fields.object_name),
            client_host: s(&fields.remote_host),
            application: s(&fields.client_application),
            engine: s(&fields.server_type),
            statement: s(&fields.command_text),
            masked: None,
            time_millis: fields
                .log_time
                .as_deref()
                .and_then(crate::route::log_time_millis)
                .unwrap_or(fallback_millis),
            id: None,
        }
    }

    /// The same event, with its statement as already masked.
    #[must_use]
    pub fn with_masked(self, masked: Option<&'a str>) -> Self {
        Self { masked, ..self }
    }

    /// The same event, with the identity a retry repeats.
    #[must_use]
    pub fn with_id(self, id: u64) -> Self {
        Self {
            id: Some(id),
            ..self
        }
    }

    fn get(&self, field: Field) -> Option<&'a str> {
        match field {
            Field::Command => self.command,
            Field::User => self.user,
            Field::Database => self.database,
            Field::Object => self.object,
            Field::ClientHost => self.client_host,
            Field::Application => self.application,
            Field::Engine => self.engine,
        }
    }
}

/// The command rules match: the event's own, unless it is a generic one (MySQL says `QUERY`
/// for every statement), then the statement's first two keywords, upper-cased (`DROP TABLE`).
pub fn command_of<'a>(fields: &'a EventFields<'a>) -> Cow<'a, str> {
    let command = fields.command.as_deref().unwrap_or("").trim();
    let generic = command.is_empty()
        || ["QUERY", "EXECUTE", "PREPARE"]
            .iter()
            .any(|g| g.eq_ignore_ascii_case(command));
    if !generic {
        return Cow::Borrowed(command);
    }
    let text = fields.command_text.as_deref().unwrap_or("");
    let words: Vec<String> = leading_words(text, 2);
    if words.is_empty() {
        Cow::Borrowed(command)
    } else {
        Cow::Owned(words.join(" "))
    }
}

/// The first `n` keywords of a statement, skipping comments, upper-cased.
fn leading_words(text: &str, n: usize) -> Vec<String> {
    let mut rest = text;
    let mut words = Vec::new();
    while words.len() < n {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
            continue;
        }
        if rest.starts_with("--") || rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |i| &rest[i + 1..]);
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        words.push(rest[..end].to_ascii_uppercase());
        rest = &rest[end..];
    }
    words
}

// --- matches -----------------------------------------------------------------------------------

/// One alert: what a rule matched, with the fields an alert carries (the statement masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub rule: String,
    pub severity: Severity,
    pub category: &'static str,
    pub command: Option<String>,
    pub user: Option<String>,
    pub database: Option<String>,
    pub object: Option<String>,
    pub client: Option<String>,
    pub application: Option<String>,
    pub engine: Option<String>,
    /// `commandText` with secrets masked (`redact`), at most [`STATEMENT_CHARS`] characters.
    pub statement: Option<String>,
    /// The event's time, Unix milliseconds.
    pub event_time: i64,
    /// A threshold rule's `count`, reached within its window (1 for other rules).
    pub count: u32,
    /// Matches of this rule and key the de-duplication window held back before this alert.
    pub suppressed: u32,
}

/// Thresholds and de-duplication: what one execution environment remembers.
#[derive(Debug, Default)]
pub struct Tracker {
    /// (rule index, key) -> event times within the threshold window.
    counts: HashMap<(usize, String), VecDeque<i64>>,
    /// (rule index, key) -> (time of the last alert, matches held back since).
    alerted: HashMap<(usize, String), (i64, u32)>,
    /// Insertion order of the keys of both maps, to forget the oldest first.
    order: VecDeque<(usize, String)>,
    /// Events with an identity that matched a rule -> the alerts they raised (often none).
    seen: HashMap<u64, Vec<Alert>>,
    /// Insertion order of `seen`, to forget the oldest first.
    seen_order: VecDeque<u64>,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {}",
            self.rule,
            self.severity.as_str(),
            self.category
        )?;
        if let Some(u) = &self.user {
            write!(f, " user={u}")?;
        }
        if let Some(d) = &self.database {
            write!(f, " database={d}")?;
        }
        if let Some(c) = &self.client {
            write!(f, " client={c}")?;
        }
        if self.count > 1 {
            write!(f, " count={}", self.count)?;
        }
        Ok(())
    }
}

impl Tracker {
    /// The alerts one event raises, in rule order.
    pub fn observe(&mut self, rules: &Rules, s: &Subject<'_>) -> Vec<Alert> {
        if let Some(alerts) = s.id.and_then(|id| self.seen.get(&id)) {
            return alerts.clone();
        }
        let mut matched = false;
        let mut out = Vec::new();
        for (index, rule) in rules.matching(s) {
            matched = true;
            let mut count = 1;
            if let Some(t) = &rule.threshold {
                let key = (index, s.get(t.by).unwrap_or("").to_owned());
                let times = match self.counts.get_mut(&key) {
                    Some(times) => times,
                    None => {
                        self.remember(key.clone());
                        self.counts.entry(key).or_default()
                    }
                };
                // Events may come out of order: insert in place, then drop what fell out of
                // the window that ends at the newest, and all but the newest `count` (enough
                // to know the threshold is reached).
                let at = times.partition_point(|t| *t <= s.time_millis);
                times.insert(at, s.time_millis);
                let newest = times.back().copied().unwrap_or(s.time_millis);
                while times
                    .front()
                    .is_some_and(|time| *time <= newest - t.window_millis)
                    || times.len() > t.count as usize
                {
                    times.pop_front();
                }
                if times.len() < t.count as usize {
                    continue;
                }
                count = u32::try_from(times.len()).unwrap_or(u32::MAX);
            }
            if rule.dedup_millis > 0 {
                let key = (index, dedup_key(&rule.dedup_by, s));
                match self.alerted.get_mut(&key) {
                    Some((last, held)) if s.time_millis - *last < rule.dedup_millis => {
                        *held += 1;
                        continue;
                    }
                    Some(entry) => {
                        let held = entry.1;
                        *entry = (s.time_millis, 0);
                        out.push(alert(rule, s, count, held));
                        continue;
                    }
                    None => {
                        self.remember(key.clone());
                        self.alerted.insert(key, (s.time_millis, 0));
                    }
                }
            }
            out.push(alert(rule, s, count, 0));
        }
        if let Some(id) = s.id.filter(|_| matched) {
            self.seen.insert(id, out.clone());
            self.seen_order.push_back(id);
            while self.seen_order.len() > MAX_SEEN {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
        out
    }

    fn remember(&mut self, key: (usize, String)) {
        self.order.push_back(key);
        while self.order.len() > MAX_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.counts.remove(&old);
                self.alerted.remove(&old);
            }
        }
    }
}

fn dedup_key(fields: &[Field], s: &Subject<'_>) -> String {
    let mut key = String::new();
    for f in fields {
        key.push_str(s.get(*f).unwrap_or(""));
        key.push('\u{1f}');
    }
    key
}

fn alert(rule: &Rule, s: &Subject<'_>, count: u32, suppressed: u32) -> Alert {
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let statement = s.statement.map(|text| {
        let masked = match s.masked {
            Some(masked) => masked.to_owned(),
            None => {
                let engine = Engine::from_server_type(s.engine);
                redact::redact(text, engine, Mode::Passwords)
                    .map_or_else(|| text.to_owned(), |r| r.text)
            }
        };
        if masked.chars().count() > STATEMENT_CHARS {
            masked.chars().take(STATEMENT_CHARS - 1).collect::<String>() + "…"
        } else {
            masked
        }
    });
    Alert {
        rule: rule.name.clone(),
        severity: rule.severity,
        category: s.category.as_str(),
        command: owned(s.command),
        user: owned(s.user),
        database: owned(s.database),
        object: owned(s.object),
        client: owned(s.client_host),
        application: owned(s.application),
        engine: owned(s.engine),
        statement,
        event_time: s.time_millis,
        count,
        suppressed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn rules(toml_like_json: serde_json::Value) -> Result<Rules, RuleError> {
        let file: RuleFile = serde_json::from_value(toml_like_json).unwrap();
        Rules::compile(&file)
    }

    /// The alerts of a sequence of events (JSON objects as DAS writes them).
    fn run(rules: &Rules, events: &[serde_json::Value]) -> Vec<Alert> {
        let mut tracker = Tracker::default();
        let mut out = Vec::new();
        for e in events {
            let text = e.to_string();
            let fields = EventFields::parse(&text).unwrap();
            let category = classify(&fields);
            let command = command_of(&fields);
            let subject = Subject::new(&fields, category, &command, 0);
            out.extend(tracker.observe(rules, &subject));
        }
        out
    }

    fn pg(class: &str, command: &str, text: &str, user: &str, time: &str) -> serde_json::Value {
        serde_json::json!({"type": "record", "serverType": "PostgreSQL", "class": class,
            "command": command, "commandText": text, "dbUserName": user, "databaseName": "shop",
            "remoteHost": "10.0.0.9", "logTime": format!("2026-12-04 10:{time}.000000+00")})
    }

    #[test]
    fn globs_ignore_case_and_star_matches_any_run() {
        for (pattern, value, expected) in [
            ("alice", "ALICE", true),
            ("alice", "alice2", false),
            ("app_*", "APP_reader", true),
            ("*_svc", "batch_svc", true),
            ("*_svc", "batch_svc_old", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "ac", false),
            ("*", "", true),
            ("ab*ba", "aba", false),
            ("ÉTÉ*", "étéhiver", true),
            ("*ünchen", "MÜNCHEN", true),
            ("a*", "", false),
        ] {
            assert_eq!(
                Glob::new(pattern).matches(value),
                expected,
                "{pattern} {value}"
            );
        }
    }

    #[test]
    fn every_problem_names_its_rule_and_field() {
        let cases = [
            (
                serde_json::json!({"rule": [{"name": "x y", "severity": "high", "category": "DDL"}]}),
                "name",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "urgent", "category": "DDL"}]}),
                "severity",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high", "category": "WRITES"}]}),
                "category",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high", "statement": "(unclosed"}]}),
                "statement",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high"}]}),
                "rule",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high", "user": []}]}),
                "user",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high", "user": "u",
                "threshold": {"count": 1, "minutes": 5, "by": "user"}}]}),
                "threshold.count",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high", "user": "u",
                "threshold": {"count": 5, "minutes": 5, "by": "host"}}]}),
                "threshold.by",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high", "user": "u",
                "except": {"category": ["NOPE"]}}]}),
                "except.category",
            ),
            (
                serde_json::json!({"rule": [{"name": "a", "severity": "high", "user": "u"},
                {"name": "a", "severity": "low", "user": "v"}]}),
                "name",
            ),
        ];
        for (file, field) in cases {
            let e = rules(file.clone()).unwrap_err();
            assert_eq!(e.field, field, "{file}: {e}");
            assert!(e.to_string().starts_with("rule \""), "{e}");
        }
        // Unknown keys are refused by the file's shape itself.
        let unknown: Result<RuleFile, _> = serde_json::from_value(
            serde_json::json!({"rule": [{"name": "a", "severity": "high", "usr": "u"}]}),
        );
        assert!(unknown.unwrap_err().to_string().contains("usr"));
    }

    #[test]
    fn matchers_combine_with_and_values_with_or_and_except_vetoes() {
        let r = rules(serde_json::json!({"rule": [{
            "name": "drops", "severity": "high", "category": "DDL",
            "statement": "(?i)^\\s*(drop\\s+table|truncate)\\b", "user": ["alice", "bob"],
            "except": {"database": "scratch"}}]}))
        .unwrap();
        let drop = pg("DDL", "DROP TABLE", "drop table t", "alice", "00:00");
        let create = pg(
            "DDL",
            "CREATE TABLE",
            "create table t (a int)",
            "alice",
            "00:01",
        );
        let other_user = pg("DDL", "DROP TABLE", "DROP TABLE t", "carol", "00:02");
        let mut scratch = pg("DDL", "TRUNCATE TABLE", "truncate t", "bob", "00:03");
        scratch["databaseName"] = "scratch".into();
        let alerts = run(&r, &[drop, create, other_user, scratch]);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].user.as_deref(), Some("alice"));
        assert_eq!(alerts[0].command.as_deref(), Some("DROP TABLE"));
    }

    #[test]
    fn mysql_commands_come_from_the_statement_and_alerts_quote_it_masked() {
        let r = rules(
            serde_json::json!({"rule": [{"name": "users", "severity": "high",
            "command": ["ALTER USER", "CREATE USER"]}]}),
        )
        .unwrap();
        let e = serde_json::json!({"type": "record", "serverType": "MySQL", "class": "MAIN",
            "command": "QUERY", "commandText": "/* x */ ALTER USER 'app'@'%' IDENTIFIED BY 'hunter2'",
            "dbUserName": "admin", "logTime": "2026-12-04 10:00:00"});
        let alerts = run(&r, &[e]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].command.as_deref(), Some("ALTER USER"));
        let statement = alerts[0].statement.as_deref().unwrap();
        assert!(!statement.contains("hunter2"), "{statement}");
        assert!(statement.contains("ALTER USER"), "{statement}");
    }

    #[test]
    fn thresholds_count_by_event_time_and_alert_once_per_window() {
        let r = rules(
            serde_json::json!({"rule": [{"name": "burst", "severity": "high",
            "category": "AUTH_FAILURE", "threshold": {"count": 3, "minutes": 1, "by": "user"}}]}),
        )
        .unwrap();
        let fail = |user: &str, t: &str| {
            serde_json::json!({"type": "record", "serverType": "PostgreSQL", "class": "ERROR",
                "command": "AUTH FAILURE", "dbUserName": user, "logTime": format!("2026-12-04 10:{t}")})
        };
        // Two of mallory's within a minute, one of eve's, then a third of mallory's: one alert,
        // counting three. Out of order is fine. Later ones in the same window are held back.
        let events = [
            fail("mallory", "00:10"),
            fail("eve", "00:11"),
            fail("mallory", "00:05"),
            fail("mallory", "00:40"),
            fail("mallory", "00:50"),
        ];
        let alerts = run(&r, &events);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(
            (alerts[0].user.as_deref(), alerts[0].count),
            (Some("mallory"), 3)
        );
        // A flood of one key: one alert a window, and only `count` times remembered.
        let mut tracker = Tracker::default();
        let mut alerts = 0;
        for i in 0..5000 {
            let e = fail(
                "mallory",
                &format!("{:02}:{:02}.{:03}", i / 1000, (i / 10) % 60, i % 1000),
            );
            let text = e.to_string();
            let fields = EventFields::parse(&text).unwrap();
            let command = command_of(&fields);
            let subject = Subject::new(&fields, classify(&fields), &command, 0);
            alerts += tracker.observe(&r, &subject).len();
        }
        assert!(tracker.counts.values().all(|t| t.len() <= 3));
        assert!(
            (1..=6).contains(&alerts),
            "{alerts}: once per minute of events at most"
        );
        // Spread over more than a minute: none.
        let slow = [
            fail("mallory", "00:00"),
            fail("mallory", "01:00"),
            fail("mallory", "02:00"),
        ];
        assert!(run(&r, &slow).is_empty());
    }

    #[test]
    fn dedup_holds_back_repeats_and_says_how_many() {
        let r = rules(
            serde_json::json!({"rule": [{"name": "master", "severity": "medium",
            "master_user": true, "dedup_minutes": 10}]}),
        )
        .unwrap()
        .with_master_user(Some("admin".into()));
        let events: Vec<_> = ["00:00", "01:00", "05:00", "11:00"]
            .iter()
            .map(|t| pg("READ", "SELECT", "select 1", "admin", t))
            .chain([pg("READ", "SELECT", "select 1", "alice", "12:00")])
            .collect();
        let alerts = run(&r, &events);
        assert_eq!(
            alerts.iter().map(|a| a.suppressed).collect::<Vec<_>>(),
            [0, 2],
            "the first, then the one after the window, naming the two held back"
        );
    }

    #[test]
    fn the_default_set_compiles_and_covers_what_a_security_team_expects() {
        let file: RuleFile = toml::from_str(DEFAULT_RULES).unwrap();
        let r = Rules::compile(&file)
            .unwrap()
            .with_master_user(Some("admin".into()));
        let grant = pg(
            "ROLE",
            "GRANT",
            "grant select on t to bob",
            "alice",
            "00:00",
        );
        let drop = pg("DDL", "DROP TABLE", "drop table orders", "alice", "00:01");
        let alter = pg(
            "DDL",
            "ALTER TABLE",
            "alter table orders add c int",
            "alice",
            "00:02",
        );
        // A second ALTER by the same user within 10 minutes is held back.
        let migration = pg(
            "DDL",
            "ALTER TABLE",
            "alter table customers add d int",
            "alice",
            "00:03",
        );
        let select = pg("READ", "SELECT", "select * from orders", "alice", "00:03");
        let master = pg("READ", "SELECT", "select 1", "admin", "00:04");
        let fail = |t: &str| {
            serde_json::json!({"type": "record", "serverType": "PostgreSQL", "class": "ERROR",
                "command": "AUTH FAILURE", "dbUserName": "mallory", "remoteHost": "203.0.113.7",
                "logTime": format!("2026-12-04 10:05:{t}")})
        };
        let mut events = vec![grant, drop, alter, migration, select, master];
        events.extend(["01", "02", "03", "04", "05"].map(fail));
        let alerts = run(&r, &events);
        let names: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(
            names,
            [
                "privilege-or-user-change",
                "table-dropped-or-truncated",
                "table-altered",
                "master-user-activity",
                "failed-login-burst-user",
                "failed-login-burst-host"
            ]
        );
        // The JSON the function will be given reads back as the same rules.
        let json = serde_json::to_string(&file).unwrap();
        let again: RuleFile = serde_json::from_str(&json).unwrap();
        assert_eq!(
            Rules::compile(&again).unwrap().rules().len(),
            file.rules.len()
        );
    }
    #[test]
    fn an_event_seen_again_raises_what_it_raised_then_and_counts_once() {
        let rules = rules(serde_json::json!({"rule": [
            {"name": "burst", "severity": "high", "category": "AUTH_FAILURE",
             "threshold": {"count": 3, "minutes": 1, "by": "user"}},
            {"name": "drops", "severity": "high", "category": "DDL", "dedup_minutes": 10}]}))
        .unwrap();
        let observe = |tracker: &mut Tracker, event: serde_json::Value, id: u64| {
            let text = event.to_string();
            let f = EventFields::parse(&text).unwrap();
            let command = command_of(&f);
            let s = Subject::new(&f, classify(&f), &command, 0).with_id(id);
            tracker.observe(&rules, &s)
        };
        let batch = [
            pg("ERROR", "AUTH FAILURE", "", "eve", "00:01"),
            pg("DDL", "DROP TABLE", "drop table a", "eve", "00:02"),
            pg("ERROR", "AUTH FAILURE", "", "eve", "00:03"),
        ];
        let mut tracker = Tracker::default();
        let pass = |tracker: &mut Tracker| -> Vec<Alert> {
            (0..batch.len())
                .flat_map(|i| observe(tracker, batch[i].clone(), i as u64))
                .collect()
        };
        let first = pass(&mut tracker);
        assert_eq!(
            first.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(),
            ["drops"]
        );
        // The batch again (a retry): the same alert, not held back by its own de-duplication,
        // and the two failures not counted twice (four would be a burst).
        assert_eq!(pass(&mut tracker), first);
        assert_eq!(pass(&mut tracker), first);
        // A third failure, a new event: the burst, counted three.
        let burst = observe(
            &mut tracker,
            pg("ERROR", "AUTH FAILURE", "", "eve", "00:04"),
            7,
        );
        assert_eq!(burst.len(), 1);
        assert_eq!((burst[0].rule.as_str(), burst[0].count), ("burst", 3));
    }
}
