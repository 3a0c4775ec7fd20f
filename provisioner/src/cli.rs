//! Command-line definitions only (clap). Parsing into validated settings happens elsewhere.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turns on Database Activity Streams for an Aurora cluster or RDS instance and keeps the audit
/// pipeline running: activity stream -> Kinesis -> Firehose -> processor Lambda -> S3, with
/// events decrypted, classified (DDL, DML, reads, logins, failures ...) and filtered.
#[derive(Debug, Parser)]
#[command(
    name = "das-setup",
    version,
    long_version = LONG_VERSION,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Credentials come from the standard AWS chain (environment, profile, SSO, \
instance role). Run `das-setup <command> --help` for each command's options."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after the command name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// AWS region (default: from the profile or AWS_REGION).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from the AWS config files.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint instead of AWS (e.g. the local emulator).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Output format: text for people, json for scripts and CI. For `package`: the file to
    /// write the zip to.
    #[arg(
        long,
        global = true,
        value_name = "text|json|FILE",
        value_parser = parse_output,
        default_value = "text"
    )]
    pub output: OutputFormat,
    /// More detail on stderr (-v: every AWS call, -vv: also the AWS SDK's debug log: retries,
    /// endpoints, credentials; never a request or response body).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

// `LONG_VERSION`, `das-setup --version`: the version and the SHA-256 of each processor zip this
// build carries (written by build.rs).
include!(concat!(env!("OUT_DIR"), "/long_version.rs"));

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
    /// Comma-separated values: only `query` prints them.
    Csv,
    /// A path: only `package` writes to one (the others refuse it, naming the choices).
    File(PathBuf),
}

/// `--output` is one flag for every command: a format for all but `package`, whose output is a
/// file (`das-setup package --output FILE`, as the issue names it).
fn parse_output(value: &str) -> Result<OutputFormat, String> {
    match value {
        "text" => Ok(OutputFormat::Text),
        "json" => Ok(OutputFormat::Json),
        "csv" => Ok(OutputFormat::Csv),
        "" => Err("expected text, json, csv (for `query`) or (for `package`) a file path".into()),
        path => Ok(OutputFormat::File(PathBuf::from(path))),
    }
}

impl GlobalArgs {
    /// The output format of a command that prints (all but `package`).
    pub fn format(&self) -> Result<OutputFormat, String> {
        self.format_of(false)
    }

    /// The output format of a command that prints; `csv`: the command prints tables (`query`).
    pub fn format_of(&self, csv: bool) -> Result<OutputFormat, String> {
        match &self.output {
            OutputFormat::File(path) => Err(format!(
                "--output {}: expected text or json (only `das-setup package` writes a file)",
                path.display()
            )),
            OutputFormat::Csv if !csv => Err(
                "--output csv: expected text or json (only `das-setup query` prints csv)".into(),
            ),
            other => Ok(other.clone()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the activity stream and deploy the pipeline that stores its events in S3.
    ///
    /// Idempotent: a second run with the same flags changes nothing; a changed flag updates the
    /// resource in place. Prints the plan before applying it.
    /// Exit codes: 0 done or nothing to change, 1 a step failed (run it again: it converges),
    /// 2 refused before any change.
    Up(UpArgs),
    /// Tear the pipeline down and stop the activity stream. Keeps the bucket (audit data) unless
    /// --delete-bucket.
    ///
    /// Works after any partial `up`; leaves alone what is not tagged managed-by=das-setup.
    /// Exit codes: 0 done or nothing to do, 1 some deletions failed (run it again), 2 refused
    /// before any change.
    Down(DownArgs),
    /// Check every part of the pipeline and report OK / WARN / FAIL.
    ///
    /// Exit codes: 0 healthy, 1 degraded (only with --strict), 2 failing, 3 not deployed.
    Status(StatusArgs),
    /// Check the stored events against the processor's chained (and, with a signing key,
    /// signed) integrity digests.
    ///
    /// Every object a digest of the window lists must be in the bucket with the listed size and
    /// SHA-256; every object written under the prefix in the window must be listed; every digest
    /// must chain to the one before and, where the deployment signs them, carry a valid signature
    /// of its key. Each missing, altered or unexpected object and each removed or altered digest
    /// is named.
    /// Exit codes: 0 verified, 1 problems found, 2 refused (nothing to verify, bad usage).
    Verify(VerifyArgs),
    /// Run the deployed processor again over the raw archive (up --keep-raw) of a window, after
    /// a filter or rules change: the events its records give now are stored as the live
    /// pipeline stores them, in objects named replay-..., covered by the digests.
    ///
    /// Idempotent: replaying a window again rewrites the same objects with the same bytes.
    /// The live pipeline has already stored what its filter kept then: --category limits a
    /// replay to what was dropped. The function must keep those categories: change its filter
    /// with `up` first.
    /// Exit codes: 0 every record replayed, 1 some records, objects or invocations failed
    /// (named; run it again), 2 refused before any invocation.
    Replay(ReplayArgs),
    /// Print the activity stream's events as they happen, decrypted and classified.
    ///
    /// Reads the stream's Kinesis shards directly (not the bucket), with the processor's own
    /// decryption, key cache and classification. Ctrl-C stops.
    Tail(TailArgs),
    /// Search the audit trail with SQL: a table `events`, one row per stored event.
    ///
    /// Columns: the event fields in lower case (dbusername, commandtext, remotehost, logtime,
    /// sessionid, command, objectname ...; every one a string), and the partition columns
    /// `category` (DDL, DML, DQL, DCL, TCL, CONNECT, DISCONNECT, AUTH_FAILURE, ERROR, OTHER)
    /// and `hour` (yyyy/MM/dd/HH, UTC, of the event's own time). Only the objects of the
    /// window's hours are read, and only of the categories a `category = ...` or
    /// `category IN (...)` filter leaves.
    ///
    /// Saved queries (--saved NAME, --list-saved to print their SQL): failed-logins, ddl,
    /// privilege-changes, top-users, user-activity (--user), session (--session).
    ///
    /// Example: das-setup query --cluster prod --saved failed-logins --since 7d
    ///
    /// Example: das-setup query --cluster prod "SELECT dbusername, count(*) AS n FROM events
    /// WHERE category = 'DDL' GROUP BY dbusername ORDER BY n DESC"
    ///
    /// Example: das-setup query --cluster prod --engine athena --since 90d --saved ddl
    /// (the same SQL on Athena, over the Glue table and in the workgroup `up` made; the bytes
    /// Athena scanned are reported)
    ///
    /// Exit codes: 0 answered, 1 the query or a read failed, 2 refused before running.
    Query(QueryArgs),
    /// An audit summary of the window: events per category over time, the top users, hosts and
    /// applications, the failed logins, the DDL and privilege changes, and the pipeline's
    /// health (as `status` sees it now).
    ///
    /// --html FILE writes it as one self-contained HTML page (inline charts and styles, no
    /// script, nothing fetched): open it in any browser, offline, or attach it to a ticket.
    /// --output json prints the same figures. It reads the events as `query` does (in this
    /// process, only the window's objects).
    ///
    /// Example: das-setup report --cluster prod --since 7d --html audit-week.html
    ///
    /// Exit codes: 0 written, 1 a read failed, 2 refused before running.
    Report(ReportArgs),
    /// Alert rules: check them against sample events, with no AWS.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Write the processor's Lambda zip: exactly the zip `up` would deploy.
    ///
    /// The zip this das-setup carries (release builds embed both architectures), else one built
    /// from the source tree, reproducibly: the same source and Rust toolchain give the same
    /// bytes, so the same CodeSha256. Prints the file's SHA-256 and Lambda's CodeSha256. Needs no
    /// AWS account.
    Package(PackageArgs),
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Run alert rules over sample events, as the processor will: which rule each event
    /// matches, thresholds and de-duplication included (in file order, by each event's
    /// logTime). Needs no AWS account.
    ///
    /// Exit codes: 0 the rules ran (whether or not anything matched), 2 the rules or the
    /// events could not be read (the rule, the field and the problem are named).
    Test(AlertsTestArgs),
}

#[derive(Debug, Args)]
pub struct AlertsTestArgs {
    /// The rules: a TOML file (README, "Alert rules"), or `default` for the built-in set.
    #[arg(long, value_name = "FILE|default")]
    pub rules: String,
    /// Sample events: a DAS record's payload, a JSON array of events, one event, or one event
    /// per line (a stored object gunzipped, `tail --output json`).
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    /// The database's master user, for rules with `master_user = true`.
    #[arg(long, value_name = "NAME")]
    pub master_user: Option<String>,
}

/// `up`'s alerts: rules the function evaluates on every event, and where alerts go.
#[derive(Debug, Args)]
pub struct UpAlertArgs {
    /// Alert rules (TOML; README, "Alert rules"), checked before any change. The function
    /// evaluates them on every activity event and publishes each match to the SNS topic
    /// das-setup-<name>-alerts (created, encrypted with the stream's key) and as an EventBridge
    /// event on the default bus (source das-setup, detail-type "Database Activity Alert").
    /// Without rules the function raises no alerts.
    #[arg(long, value_name = "FILE", conflicts_with = "alerts")]
    pub alert_rules: Option<PathBuf>,
    /// A built-in rule set instead of a file: `default` (privilege and user changes, DROP /
    /// TRUNCATE / ALTER TABLE, failed-login bursts, the master user's activity).
    #[arg(long, value_name = "SET", value_parser = ["default"])]
    pub alerts: Option<String>,
    /// Subscribe this e-mail address to the alerts topic (AWS e-mails a confirmation link).
    #[arg(long, value_name = "ADDRESS")]
    pub alert_email: Option<String>,
    /// Also import high and critical alerts into AWS Security Hub as findings (ASFF, the
    /// account's own product; Security Hub must be enabled in the region).
    #[arg(long)]
    pub security_hub: bool,
    /// Also alarm when no event has been stored for this many hours (1-24): the function logs
    /// an events-stored metric (CloudWatch embedded metric format) and the alarm
    /// das-setup-<name>-no-events notifies the alerts topic.
    #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u32).range(1..=24))]
    pub no_events_alarm: Option<u32>,
}

/// Which alert rules apply: a file, or the built-in set.
#[derive(Debug, Args)]
pub struct AlertRulesArgs {
    /// Alert rules (TOML; README, "Alert rules"): events that match one are marked.
    #[arg(long, value_name = "FILE", conflicts_with = "alerts")]
    pub alert_rules: Option<PathBuf>,
    /// A built-in rule set instead of a file: `default` (privilege and user changes, DROP /
    /// TRUNCATE / ALTER TABLE, failed-login bursts, the master user's activity).
    #[arg(long, value_name = "SET", value_parser = ["default"])]
    pub alerts: Option<String>,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Lambda architecture of the zip.
    #[arg(long, value_enum, default_value_t = Arch::Arm64)]
    pub arch: Arch,
    /// Build from the source tree even when this das-setup carries an embedded zip.
    #[arg(long)]
    pub rebuild: bool,
}

/// Which database the activity stream belongs to.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// Aurora DB cluster identifier or ARN.
    #[arg(long, value_name = "ID|ARN")]
    pub cluster: Option<String>,
    /// RDS DB instance identifier or ARN (RDS for Oracle and SQL Server streams).
    #[arg(long, value_name = "ID|ARN")]
    pub instance: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamMode {
    /// Database performance first; events may be lost under extreme load.
    Async,
    /// Every event is recorded before the statement completes (Aurora PostgreSQL only).
    Sync,
}

/// The audit policy lock of an RDS for Oracle or SQL Server activity stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditPolicy {
    /// Nobody can change what the database audits (AWS's default once the stream starts).
    Locked,
    /// The DBA may change the unified audit policies (Oracle) or RDS_DAS_* audit specifications
    /// (SQL Server); lock again afterwards.
    Unlocked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    Arm64,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub target: Target,
    /// KMS key for the activity stream (id, ARN or alias). Default: a symmetric customer-managed
    /// key created for this cluster, alias/das-setup/<cluster>.
    #[arg(long, value_name = "KEY")]
    pub kms_key: Option<String>,
    /// Activity stream mode.
    #[arg(long, value_enum, default_value_t = StreamMode::Async)]
    pub mode: StreamMode,
    /// RDS for Oracle and SQL Server instances: lock or unlock the stream's audit policy
    /// (ModifyActivityStream). Unlock to let the DBA change what is audited, then lock again.
    /// Default: leave it as it is (locked when the stream starts).
    #[arg(long, value_enum, value_name = "STATE")]
    pub audit_policy: Option<AuditPolicy>,
    /// Bucket for the events (default: derived from account, region and cluster).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// Key prefix for the events in the bucket. Each database's events go under
    /// `<PREFIX><DB identifier>/<CATEGORY>/<yyyy>/<MM>/<dd>/<HH>/`, its digest chain beside
    /// them, so a query reads only one database's folders.
    #[arg(long, default_value = "parsed/", value_name = "PREFIX")]
    pub prefix: String,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Lambda architecture (arm64 costs less per GB-second).
    #[arg(long, value_enum, default_value_t = Arch::Arm64)]
    pub arch: Arch,
    /// Deploy this prebuilt processor zip instead of building it from source.
    #[arg(long, value_name = "PATH")]
    pub lambda_zip: Option<PathBuf>,
    /// Delete stored events after this many days (default: keep forever): DAYS for all, or
    /// per category, e.g. DQL=30,DDL=2555,default=400 (categories: DDL, DML, DQL, DCL, TCL,
    /// CONNECT, DISCONNECT, AUTH_FAILURE, ERROR, OTHER; default: the rest and failed records).
    /// Each becomes an S3 lifecycle rule on that category's folder.
    #[arg(long, value_name = "DAYS|CATEGORY=DAYS,...")]
    pub retention_days: Option<String>,
    /// Write once: S3 Object Lock on the bucket, so no stored version can be deleted or
    /// overwritten for --object-lock-days after it was written. compliance: by nobody, the
    /// root user included; governance: only by principals granted
    /// s3:BypassGovernanceRetention. Object Lock can never be turned off on a bucket again.
    #[arg(long, value_enum, value_name = "MODE", requires = "object_lock_days")]
    pub object_lock: Option<crate::retention::LockMode>,
    /// Days each version is locked by --object-lock (at most the shortest --retention-days).
    #[arg(long, value_name = "DAYS", requires = "object_lock")]
    pub object_lock_days: Option<u32>,
    /// Keep the raw archive: Firehose's source record backup writes every record as the
    /// activity stream sent it (still encrypted, heartbeats and filtered events included) under
    /// raw/ in the bucket, so events can be derived again and the filter's drops audited.
    /// Firehose cannot turn it off again.
    #[arg(long)]
    pub keep_raw: bool,
    #[command(flatten)]
    pub alerting: UpAlertArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run, for CI drift checks (as `terraform plan -detailed-exitcode`): exit 0 when
    /// nothing would change, 2 when changes are pending, 1 on any error or refusal.
    #[arg(long, requires = "dry_run")]
    pub detailed_exitcode: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub target: Target,
    /// The bucket `up` was given with --bucket, if the function and delivery stream that name
    /// it are already gone (default: found from them, else the derived name).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// Also empty (every version) and delete the bucket holding the audit events, then
    /// schedule deletion of the key that signed their digests (kept while the bucket is).
    #[arg(long)]
    pub delete_bucket: bool,
    /// Also schedule deletion of the activity stream's KMS key, if das-setup created it.
    #[arg(long)]
    pub delete_key: bool,
    /// Print what would be deleted and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Window for data freshness and error checks (e.g. 30m, 1h, 1d).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub since: String,
    /// Exit 1 on warnings too (default: warnings exit 0).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub target: Target,
    /// Check the digests written this far back, and the objects they list (e.g. 1h, 7d). Keep
    /// it within the shortest retention: objects S3 expired are reported missing.
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub since: String,
    /// The bucket, when the deployment is gone (default: the one the deployment writes to).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The output prefix, when the deployment is gone (default: the deployed function's, else
    /// parsed/<DB identifier>/).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Check signatures with this P-384 public key (SubjectPublicKeyInfo, PEM or DER: `aws kms
    /// get-public-key --key-id K --query PublicKey --output text | base64 -d`) instead of
    /// asking KMS for the deployment's: verification without access to the key.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryEngine {
    /// In this process (Apache DataFusion), reading the window's objects from S3.
    Local,
    /// On Amazon Athena, in the deployment's workgroup over the Glue table `up` made: for
    /// trails too large to read here. Athena bills the bytes it scans.
    Athena,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub target: Target,
    /// Start of the window: a duration back from now (e.g. 7d) or a time (2026-12-01T00:00Z).
    #[arg(long, default_value = "7d", value_name = "DURATION|TIME")]
    pub since: String,
    /// End of the window (default: now), as --since.
    #[arg(long, value_name = "DURATION|TIME")]
    pub until: Option<String>,
    /// Write the report as a self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// The longest list shown of failed logins, DDL and privilege changes (the totals count
    /// every one).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_rows: usize,
    /// The bucket, when the deployment is gone (default: the one the deployment writes to).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The deployment's prefix, when it is gone (default: the deployed function's, else
    /// parsed/<DB identifier>/).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub target: Target,
    /// The SQL, over the table `events` (or use --saved).
    #[arg(value_name = "SQL", required_unless_present_any = ["saved", "list_saved"], conflicts_with = "saved")]
    pub sql: Option<String>,
    /// Run a saved query by name (see --list-saved).
    #[arg(long, value_name = "NAME")]
    pub saved: Option<String>,
    /// Print the saved queries, their parameters and SQL, and exit.
    #[arg(long, conflicts_with_all = ["sql", "saved"])]
    pub list_saved: bool,
    /// The database user, for --saved user-activity.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The session id, for --saved session.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Start of the window: a duration back from now (e.g. 24h, 7d) or a time
    /// (2026-12-01T10:00Z; UTC unless it names an offset). Whole hours are read: an event's
    /// hour is that of its own time.
    #[arg(long, default_value = "24h", value_name = "DURATION|TIME")]
    pub since: String,
    /// End of the window (default: now), as --since.
    #[arg(long, value_name = "DURATION|TIME")]
    pub until: Option<String>,
    /// Where the query runs.
    #[arg(long, value_enum, default_value_t = QueryEngine::Local)]
    pub engine: QueryEngine,
    /// --engine athena: the longest wait for Athena's answer, in seconds (then the query is
    /// stopped).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// At most this many rows are printed (the query's own LIMIT aside); 0: all.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_rows: usize,
    /// The bucket, when the deployment is gone (default: the one the deployment writes to).
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The deployment's prefix, when it is gone (default: the deployed function's, else
    /// parsed/<DB identifier>/).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub target: Target,
    /// Start of the window: a duration back from now (e.g. 6h, 7d) or a time
    /// (2026-12-01T10:00Z; UTC unless it names an offset). The archive is filed by the hour its records arrived: the window
    /// starts on the hour.
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: String,
    /// End of the window (default: now), as --since.
    #[arg(long, value_name = "DURATION|TIME")]
    pub until: Option<String>,
    /// Store only the events of these categories (comma-separated, e.g. DQL), of those the
    /// deployed filter keeps (default: every category it keeps).
    #[arg(long, value_delimiter = ',', value_name = "CATEGORIES")]
    pub category: Vec<String>,
    /// The bucket holding the archive, when the delivery stream does not name it.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// List the archive objects of the window and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub target: Target,
    /// Keep reading new events until Ctrl-C (default: print what is there and stop).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Start this far back (e.g. 30s, 10m, 2h; at most the stream's 24 h) instead of now.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub alert_rules: AlertRulesArgs,
}

/// Which events are kept: the processor's filters, the same for `up` (what is stored) and `tail`
/// (what is shown).
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Keep only these event categories (comma-separated: DDL,DML,DQL,DCL,TCL,CONNECT,
    /// DISCONNECT,AUTH_FAILURE,ERROR,OTHER).
    #[arg(long, value_delimiter = ',', value_name = "CATEGORIES")]
    pub include: Vec<String>,
    /// Drop these event categories (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "CATEGORIES")]
    pub exclude: Vec<String>,
    /// Drop events of these database users (comma-separated; default: the RDS service users;
    /// an empty value keeps everyone).
    #[arg(long, value_name = "USERS")]
    pub exclude_users: Option<String>,
    /// What is masked in statement text before it is stored or shown: `passwords` (the default;
    /// password and secret values in user, role and login statements are always masked) or
    /// `literals` (every string and numeric literal and every bind value too, for PII-bearing
    /// workloads). Masked events carry a `redacted` field naming what was masked.
    #[arg(long, value_name = "WHAT", value_parser = ["passwords", "literals"])]
    pub redact: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let before =
            Cli::try_parse_from(["das-setup", "--region", "eu-west-1", "up", "--cluster", "c"])
                .unwrap();
        let after =
            Cli::try_parse_from(["das-setup", "up", "--cluster", "c", "--region", "eu-west-1"])
                .unwrap();
        assert_eq!(before.global.region.as_deref(), Some("eu-west-1"));
        assert_eq!(after.global.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn output_is_a_format_for_every_command_but_package_which_writes_a_file() {
        let status = Cli::try_parse_from(["das-setup", "status", "--cluster", "c"]).unwrap();
        assert_eq!(status.global.output, OutputFormat::Text);
        assert_eq!(status.global.format(), Ok(OutputFormat::Text));
        let json =
            Cli::try_parse_from(["das-setup", "--output", "json", "status", "--cluster", "c"])
                .unwrap();
        assert_eq!(json.global.format(), Ok(OutputFormat::Json));
        let file = Cli::try_parse_from([
            "das-setup",
            "status",
            "--cluster",
            "c",
            "--output",
            "plan.zip",
        ])
        .unwrap();
        let e = file.global.format().unwrap_err();
        assert!(
            e.contains("--output plan.zip") && e.contains("package"),
            "{e}"
        );

        let package = Cli::try_parse_from([
            "das-setup",
            "package",
            "--arch",
            "x86_64",
            "--output",
            "out/p.zip",
        ])
        .unwrap();
        let Command::Package(args) = &package.command else {
            panic!("not package")
        };
        assert_eq!(args.arch, Arch::X86_64);
        assert_eq!(
            package.global.output,
            OutputFormat::File(PathBuf::from("out/p.zip"))
        );
        let default = Cli::try_parse_from(["das-setup", "package"]).unwrap();
        let Command::Package(args) = &default.command else {
            panic!("not package")
        };
        assert_eq!(args.arch, Arch::Arm64, "up's default architecture");
        assert!(Cli::try_parse_from(["das-setup", "--output", "", "package"]).is_err());
    }

    #[test]
    fn categories_split_on_commas_and_targets_exclude_each_other() {
        let cli =
            Cli::try_parse_from(["das-setup", "up", "--cluster", "c", "--include", "DDL,DML"])
                .unwrap();
        let Command::Up(up) = cli.command else {
            panic!("not up")
        };
        assert_eq!(up.filters.include, ["DDL", "DML"]);
        assert_eq!(up.prefix, "parsed/");
        assert!(Cli::try_parse_from(["das-setup", "up"]).is_err());
        assert!(
            Cli::try_parse_from(["das-setup", "up", "--cluster", "a", "--instance", "b"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["das-setup", "up", "--cluster", "a", "--mode", "semi"]).is_err()
        );
    }
}
