//! `das-setup tail`: the activity stream's events now, read from its Kinesis shards (not from
//! the bucket, so nothing waits for Firehose's buffer), decrypted and classified by the
//! processor's own code: the same `Processor`, KMS data-key cache and filters, through its
//! record-level `events` (no Firehose invocation, nothing written), one batch per `GetRecords`
//! answer.
//!
//! Exit codes: 0 (also on Ctrl-C), 1 a read or decryption infrastructure failure, 2 refused
//! (bad flags, database unknown, stream not started).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::types::{ChildShard, ShardIteratorType};

use das_processor::alert::{Rules, Tracker};
use das_processor::aws::KmsKeys;
use das_processor::config::{Config, var};
use das_processor::handler::{KinesisRecord, Processor};
use das_processor::sink::{ObjectSink, SinkError};
use serde_json::Value;

use crate::aws::{Clients, Named as _};
use crate::cli::{GlobalArgs, OutputFormat, TailArgs};
use crate::session::{self, Refusal, kind_word, refuse};
use crate::settings::TailSettings;
use aws_sdk_rds::types::ActivityStreamStatus;

/// Kinesis allows 5 GetRecords per second per shard; once caught up, look twice a second.
const POLL: Duration = Duration::from_millis(500);
/// The statement is shortened to this many characters in text output.
const STATEMENT_WIDTH: usize = 120;

/// `tail` writes nothing: the processor's sink is never called by `Processor::events`.
struct NoWrites;

impl ObjectSink for NoWrites {
    async fn put(&self, key: &str, _: Vec<u8>) -> Result<(), SinkError> {
        Err(SinkError {
            bucket: String::new(),
            key: key.to_owned(),
            reason: "das-setup tail writes nothing".into(),
        })
    }
}

pub async fn run(global: &GlobalArgs, args: &TailArgs) -> u8 {
    match tail(global, args).await {
        Ok(()) => session::EXIT_OK,
        Err(Failure::Refused(e)) => {
            crate::errln!("das-setup tail: {e}");
            session::EXIT_REFUSED
        }
        Err(Failure::Failed(e)) => {
            crate::errln!("das-setup tail: {e}");
            session::EXIT_FAILED
        }
    }
}

enum Failure {
    Refused(Refusal),
    Failed(String),
}

impl From<Refusal> for Failure {
    fn from(e: Refusal) -> Self {
        Failure::Refused(e)
    }
}

async fn tail(global: &GlobalArgs, args: &TailArgs) -> Result<(), Failure> {
    let settings = TailSettings::from_args(args).map_err(Refusal::from)?;
    let target = settings.target.clone();
    let since = settings.since;
    // The processor's own filters from the same flags as up's, checked by its own parser.
    let mut env = settings.filters.clone();
    // Required by the processor's configuration; tail writes nothing there.
    env.insert(var::OUTPUT_BUCKET.to_owned(), "das-setup-tail".to_owned());
    let config = Config::from_env(|k| env.get(k).cloned())
        .map_err(|e| refuse(format!("{}: {}", e.var, e.reason)))?;

    let alert_rules = crate::alerts::from_args(&args.alert_rules).map_err(refuse)?;

    let clients = Clients::load(global).await;
    let (identity, db) = session::resolve(&clients, &target).await?;
    let db = db.ok_or_else(|| {
        refuse(format!(
            "no DB {} named {:?} in {}",
            kind_word(target.kind),
            target.id,
            identity.region
        ))
    })?;
    if db.stream.status != ActivityStreamStatus::Started {
        return Err(refuse(format!(
            "the activity stream of {} {} is {}: there is nothing to read (das-setup up starts it)",
            kind_word(db.kind),
            db.id,
            db.stream.status.as_str()
        ))
        .into());
    }
    let stream = db
        .stream
        .kinesis_stream
        .clone()
        .unwrap_or_else(|| db.stream_name());
    // The stream exists (RDS deletes it when the activity stream stops): refuse clearly if not.
    clients
        .kinesis
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .named("kinesis:DescribeStreamSummary", &stream)
        .map_err(|e| Failure::Refused(e.into()))?;
    let shards = clients
        .kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .named("kinesis:ListShards", &stream)
        .map_err(|e| Failure::Refused(e.into()))?;

    let open = |shard: String, kind: ShardIteratorType| {
        let clients = &clients;
        let stream = &stream;
        async move {
            let mut request = clients
                .kinesis
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard)
                .shard_iterator_type(kind.clone());
            if kind == ShardIteratorType::AtTimestamp
                && let Some(back) = since
            {
                request = request.timestamp((SystemTime::now() - back).into());
            }
            let out = request
                .send()
                .await
                .named("kinesis:GetShardIterator", stream)
                .map_err(|e| Failure::Failed(e.to_string()))?;
            Ok::<_, Failure>(out.shard_iterator().map(str::to_owned))
        }
    };
    let start = if since.is_some() {
        ShardIteratorType::AtTimestamp
    } else {
        ShardIteratorType::Latest
    };
    let mut known = HashSet::new();
    let mut iterators = Vec::new();
    for shard in shards.shards() {
        known.insert(shard.shard_id().to_owned());
        iterators.push(open(shard.shard_id().to_owned(), start.clone()).await?);
    }
    crate::errln!(
        "das-setup tail: {} {}, {} shard(s) of {stream}, from {}{}",
        kind_word(db.kind),
        db.id,
        iterators.len(),
        args.since
            .as_deref()
            .map_or_else(|| "now".to_owned(), |s| format!("{s} ago")),
        if settings.follow {
            "; Ctrl-C stops"
        } else {
            ""
        }
    );

    let processor = Processor::new(config, KmsKeys::new(&clients.config), NoWrites);
    let json_out = global.output == OutputFormat::Json;
    let mut marks = alert_rules.map(|(_, rules)| Marks {
        rules: rules.with_master_user(db.master_user.clone()),
        tracker: Tracker::default(),
    });
    loop {
        let mut caught_up = true;
        let mut children = Vec::new();
        for iterator in &mut iterators {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let out = clients
                .kinesis
                .get_records()
                .shard_iterator(&current)
                .limit(1000)
                .send()
                .await
                .named("kinesis:GetRecords", &stream)
                .map_err(|e| Failure::Failed(e.to_string()))?;
            *iterator = out.next_shard_iterator().map(str::to_owned);
            if iterator.is_none() {
                // The shard was closed: RDS scales the stream ("Aurora scales the Kinesis stream
                // if necessary"), and its records go on in the child shards, which GetRecords
                // names at the end of the parent (GetRecords API reference, ChildShards).
                children.extend(new_children(&mut known, out.child_shards()));
            }
            if out.millis_behind_latest().unwrap_or(0) > 0 {
                caught_up = false;
            }
            if out.records().is_empty() {
                continue;
            }
            let records: Vec<KinesisRecord<'_>> = out
                .records()
                .iter()
                .map(|r| KinesisRecord {
                    data: r.data().as_ref(),
                    arrival_millis: r
                        .approximate_arrival_timestamp()
                        .and_then(|t| t.to_millis().ok()),
                })
                .collect();
            let opened = processor
                .events(&db.resource_id, &records)
                .await
                .map_err(|e| Failure::Failed(e.to_string()))?;
            for (record, lines) in out.records().iter().zip(opened) {
                match lines {
                    Ok(lines) => print_lines(&lines, json_out, marks.as_mut()),
                    Err(error) => crate::errln!(
                        "das-setup tail: record {} could not be processed ({error}); the Lambda would send it to errors/",
                        record.sequence_number()
                    ),
                }
            }
        }
        for child in children {
            // From the child's first record: everything after the parent's last.
            iterators.push(open(child, ShardIteratorType::TrimHorizon).await?);
            caught_up = false;
        }
        if iterators.iter().all(Option::is_none) || (!settings.follow && caught_up) {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The child shards not read yet (a shard listed at the start, or the child of two merged
/// parents, is read once).
fn new_children(known: &mut HashSet<String>, children: &[ChildShard]) -> Vec<String> {
    children
        .iter()
        .filter(|c| known.insert(c.shard_id().to_owned()))
        .map(|c| c.shard_id().to_owned())
        .collect()
}

/// The alert rules `tail` marks events with, and what their thresholds have counted so far.
struct Marks {
    rules: Rules,
    tracker: Tracker,
}

/// Each event as one line (text) or as stored (JSON); with alert rules, a matched event is
/// marked: `⚑ rule, ...` after the line, or an `alerts` member naming the rules.
fn print_lines(ndjson: &[u8], json_out: bool, mut marks: Option<&mut Marks>) {
    for line in ndjson.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let text = String::from_utf8_lossy(line);
        let matched: Vec<String> = match marks.as_deref_mut() {
            Some(m) => crate::alerts::observe(
                &m.rules,
                &mut m.tracker,
                &text,
                crate::session::now_millis(),
            )
            .into_iter()
            .map(|a| a.rule)
            .collect(),
            None => Vec::new(),
        };
        if json_out {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(mut event)) if !matched.is_empty() => {
                    event.insert("alerts".into(), matched.into());
                    crate::outln!("{}", Value::Object(event));
                }
                _ => crate::outln!("{text}"),
            }
        } else if let Ok(event) = serde_json::from_str::<Value>(&text) {
            if matched.is_empty() {
                crate::outln!("{}", event_line(&event));
            } else {
                crate::outln!("{}  ⚑ {}", event_line(&event), matched.join(", "));
            }
        }
    }
}

/// `2026-11-24 10:00:00.123456+00  DDL           alice@postgres  CREATE TABLE t (...)`
pub fn event_line(event: &Value) -> String {
    let text = |k: &str| match event.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let statement = [text("commandText"), text("command"), text("type")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let statement: String = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    let statement = if statement.chars().count() > STATEMENT_WIDTH {
        statement
            .chars()
            .take(STATEMENT_WIDTH - 1)
            .collect::<String>()
            + "…"
    } else {
        statement
    };
    let who = match (text("dbUserName"), text("databaseName")) {
        (u, d) if d.is_empty() => u,
        (u, d) => format!("{u}@{d}"),
    };
    format!(
        "{:<28} {:<12} {:<24} {statement}",
        text("logTime"),
        text("category"),
        who
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_closed_shards_children_are_read_once() {
        let child = |id: &str| {
            ChildShard::builder()
                .shard_id(id)
                .set_parent_shards(Some(vec!["shardId-000000000000".into()]))
                .hash_key_range(
                    aws_sdk_kinesis::types::HashKeyRange::builder()
                        .starting_hash_key("0")
                        .ending_hash_key("1")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let mut known: HashSet<String> = [
            "shardId-000000000000".to_owned(),
            "shardId-000000000002".to_owned(),
        ]
        .into();
        // A split: two children, one of them already listed at the start.
        let new = new_children(
            &mut known,
            &[child("shardId-000000000001"), child("shardId-000000000002")],
        );
        assert_eq!(new, ["shardId-000000000001"]);
        // A merge names the same child at the end of both parents: read once.
        assert!(new_children(&mut known, &[child("shardId-000000000001")]).is_empty());
    }

    #[test]
    fn one_readable_line_per_event() {
        let line = event_line(&json!({
            "logTime": "2026-11-24 10:00:00.000000+00", "category": "DDL",
            "dbUserName": "alice", "databaseName": "shop",
            "commandText": "CREATE TABLE t\n  (id int)", "statementId": 4
        }));
        assert!(line.starts_with("2026-11-24 10:00:00.000000+00"), "{line}");
        assert!(line.contains("DDL"));
        assert!(line.contains("alice@shop"));
        assert!(line.ends_with("CREATE TABLE t (id int)"), "{line}");
        let long = event_line(&json!({"commandText": "x".repeat(500), "category": "DQL"}));
        assert!(long.ends_with('…'));
        assert!(long.chars().count() < 200);
        let login =
            event_line(&json!({"command": "CONNECT", "category": "CONNECT", "dbUserName": "bob"}));
        assert!(login.contains("bob") && login.ends_with("CONNECT"));
    }
}
