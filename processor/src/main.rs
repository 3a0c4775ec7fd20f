//! das-processor: the Firehose transformation Lambda (`bootstrap` in the deployed zip).
//!
//! Thin: reads the configuration once, builds the KMS and S3 clients and the data-key cache once,
//! then serves invocations from the Lambda runtime API, or performs exactly one invocation on a
//! Firehose event file with `--event FILE` (tests, benchmarks, operators replaying a batch).

use std::process::ExitCode;

use das_processor::alert::{RuleFile, Rules};
use das_processor::aws::{self, AwsAlerts, KmsKeys, S3Sink};
use das_processor::config::{AlertConfig, Config};
use das_processor::firehose::{FirehoseEvent, FirehoseResponse};
use das_processor::handler::{Alerting, Processor};

const USAGE: &str = "\
das-processor: decrypts, classifies and stores Database Activity Stream records
(the Firehose transformation Lambda of das-setup).

Usage:
  das-processor                 serve invocations (inside AWS Lambda)
  das-processor --event FILE    perform one invocation on a Firehose event file ('-' for stdin)
                                and print the response JSON on stdout

In --event mode the invocation's counts and timings are printed on stderr as one line starting
with 'stats: ' (JSON). Exit status: 0 when the invocation succeeded, even if some records are
ProcessingFailed; 1 when it failed as a whole (as Lambda would report an error, so Firehose
retries); 2 for bad usage or configuration.

Configuration (environment):
  DAS_OUTPUT_BUCKET          S3 bucket for the events (required)
  DAS_OUTPUT_PREFIX          key prefix, default parsed/
  DAS_INCLUDE_CATEGORIES     keep only these categories (comma-separated), default all
  DAS_EXCLUDE_CATEGORIES     drop these categories
  DAS_EXCLUDE_USERS          drop these users, default rdsadmin,rdsproxyadmin,RDSADMIN,RDSSEC
                             (set it empty to keep everyone)
  DAS_FIREHOSE_OUTPUT        s3 (default: events in per-category folders, records Dropped) or
                             events (records Ok with their events, for the stream's own prefix)
  DAS_RESOURCE_ID            cluster-... or db-..., default: read off the source stream name
  DAS_KEY_CACHE_SIZE         data keys cached, default 1000
  DAS_KEY_CACHE_TTL_SECONDS  how long a data key is cached, default 600
  DAS_MAX_RECORD_BYTES       decompressed size limit of one record, default 33554432
  DAS_GZIP_LEVEL             output compression 1-9, default 6
  DAS_LOG_LEVEL              error, warn, info (default), debug
  DAS_ALERT_RULES            alert rules (JSON, as das-setup writes them: alert-rules.json in the
                             zip); a relative path is under LAMBDA_TASK_ROOT (else the current
                             directory). Unset: no alerts
  DAS_ALERT_TOPIC_ARN        SNS topic every alert is published to (PublishBatch)
  DAS_ALERT_EVENT_BUS        EventBridge bus alerts are put on (PutEvents; das-setup: default)
  DAS_EVENTS_METRIC          on: log the events-stored metric (CloudWatch embedded metric format)
  DAS_SECURITY_HUB_DATABASE_ARN
                             high and critical alerts also become Security Hub findings about
                             this database (BatchImportFindings)
  DAS_MASTER_USER            the database's master user, for rules with master_user
  AWS_ENDPOINT_URL           another endpoint for KMS, S3, SNS and EventBridge (a local emulator)
Categories: DDL DML DQL DCL TCL CONNECT DISCONNECT AUTH_FAILURE ERROR OTHER";

enum Mode {
    Lambda,
    Event(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => Mode::Lambda,
        ["--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["--version" | "-V"] => {
            println!("das-processor {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        ["--event", path] => Mode::Event((*path).to_owned()),
        _ => {
            eprintln!("das-processor: unexpected arguments {args:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_tracing(matches!(mode, Mode::Lambda));
    let config = match Config::from_env(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("das-processor: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("das-processor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rules = match config.alerts.as_ref().map(load_rules).transpose() {
        Ok(rules) => rules,
        Err(e) => {
            eprintln!("das-processor: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let sdk = aws::sdk_config().await;
        let bucket = config.bucket.clone();
        let keys = KmsKeys::new(&sdk).signing_with(config.digest_key.clone());
        let alerts = config.alerts.clone();
        // The function's name, as Lambda sets it, for the events-stored metric.
        let metric = config
            .events_metric
            .then(|| std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok())
            .flatten();
        let mut processor = Processor::new(config, keys, S3Sink::new(&sdk, bucket));
        if let (Some(rules), Some(alerts)) = (rules, alerts) {
            let sink = AwsAlerts::new(
                &sdk,
                alerts.topic_arn,
                alerts.event_bus,
                alerts.security_hub,
            );
            let destinations = sink.destinations();
            processor = processor.with_alerts(Alerting::new(rules, destinations, Box::new(sink)));
        }
        match mode {
            Mode::Event(path) => local(&processor, &path).await,
            Mode::Lambda => lambda(&processor, metric.as_deref()).await,
        }
    })
}

type Live = Processor<KmsKeys, S3Sink>;

/// The alert rules `DAS_ALERT_RULES` names, compiled (every problem named with its rule).
fn load_rules(alerts: &AlertConfig) -> Result<Rules, String> {
    let mut path = std::path::PathBuf::from(&alerts.rules_path);
    if path.is_relative()
        && let Some(root) = std::env::var_os("LAMBDA_TASK_ROOT")
    {
        path = std::path::Path::new(&root).join(path);
    }
    let text = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read the alert rules {} (DAS_ALERT_RULES): {e}",
            path.display()
        )
    })?;
    let file: RuleFile = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "the alert rules {} (DAS_ALERT_RULES) are not a rule file in JSON: {e}",
            path.display()
        )
    })?;
    let rules = Rules::compile(&file)
        .map_err(|e| format!("the alert rules {} (DAS_ALERT_RULES): {e}", path.display()))?;
    Ok(rules.with_master_user(alerts.master_user.clone()))
}

/// One invocation on an event file.
async fn local(processor: &Live, path: &str) -> ExitCode {
    let bytes = if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("das-processor: cannot read event file {path}: {e}");
            return ExitCode::from(2);
        }
    };
    // serde would also accept a JSON array for a struct; an event is an object.
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let parsed = if is_object {
        serde_json::from_slice(&bytes)
    } else {
        Err(serde::de::Error::custom("expected a JSON object"))
    };
    let event: FirehoseEvent = match parsed {
        Ok(event) => event,
        Err(e) => {
            eprintln!("das-processor: {path} is not a Firehose transformation event: {e}");
            return ExitCode::from(2);
        }
    };
    drop(bytes);
    match processor.handle(event).await {
        Ok((response, stats)) => {
            let stats = serde_json::to_string(&stats).unwrap_or_default();
            eprintln!("stats: {stats}");
            print_response(&response)
        }
        Err(e) => {
            eprintln!("das-processor: invocation failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_response(response: &FirehoseResponse) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, response)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("das-processor: cannot write the response: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves invocations until the Lambda environment shuts the process down.
async fn lambda(processor: &Live, metric: Option<&str>) -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "das-processor: not running in AWS Lambda (AWS_LAMBDA_RUNTIME_API is not set); \
             use --event FILE to process an event file\n\n{USAGE}"
        );
        return ExitCode::from(2);
    }
    let handler = lambda_runtime::service_fn(
        |event: lambda_runtime::LambdaEvent<FirehoseEvent>| async move {
            match processor.handle(event.payload).await {
                Ok((response, stats)) => {
                    if let Some(function) = metric {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                        // Standard output: Lambda sends it to the log group, where CloudWatch
                        // reads the metric.
                        println!(
                            "{}",
                            das_processor::emf::events_stored(function, stats.kept, now)
                        );
                    }
                    let stats = serde_json::to_string(&stats).unwrap_or_default();
                    tracing::info!(%stats, "invocation done");
                    Ok(response)
                }
                Err(e) => {
                    tracing::error!(error = %e, "invocation failed; Firehose will retry");
                    Err(e.to_string())
                }
            }
        },
    );
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("das-processor: Lambda runtime error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(in_lambda: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = match std::env::var("DAS_LOG_LEVEL").as_deref().map(str::trim) {
        Ok("error") => LevelFilter::ERROR,
        Ok("warn") => LevelFilter::WARN,
        Ok("debug") => LevelFilter::DEBUG,
        Ok("trace") => LevelFilter::TRACE,
        Ok("off") => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    };
    // Our own events at the chosen level; the SDK's never below WARN: at debug and trace it
    // logs request and response bodies, and KMS responses carry plaintext data keys.
    let targets = Targets::new()
        .with_default(level.min(LevelFilter::WARN))
        .with_target("das_processor", level)
        .with_target("lambda_runtime", level.min(LevelFilter::INFO));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    // CloudWatch stamps every line itself.
    let result = if in_lambda {
        tracing_subscriber::registry()
            .with(fmt.without_time())
            .with(targets)
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(fmt)
            .with(targets)
            .try_init()
    };
    if let Err(e) = result {
        eprintln!("das-processor: logging unavailable: {e}");
    }
}
