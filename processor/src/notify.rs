//! Telling people: the alerts an invocation raised (`alert`), published once the events are
//! stored, to the deployment's SNS topic and as EventBridge events on the default bus.
//!
//! - One message per alert, batched per invocation: SNS `PublishBatch` and EventBridge
//!   `PutEvents` take at most 10 entries a call (SNS API reference, PublishBatch; EventBridge
//!   API reference, PutEvents), and at most 256 KiB a call; an alert quotes at most 1,000
//!   characters of statement, so ten of them stay far below that.
//! - A publish failure (the call failing, or any entry of it refused) fails the invocation, so
//!   Firehose retries the batch. The retry raises the same alerts (`alert::Tracker` remembers
//!   what each event raised), and what a destination already accepted is not sent to it again
//!   ([`Delivered`], in the warm environment's memory): at least once, a duplicate only when the
//!   environment is replaced between the attempt and its retry, or a destination accepted an
//!   entry whose answer was lost. Every message carries `alertId`, the same for every delivery
//!   of one alert, for consumers that must drop duplicates.
//! - The message is JSON (the SNS message, and the EventBridge `detail`); e-mail subscribers get
//!   a short text instead (`MessageStructure` `json`). SNS message attributes `severity` and
//!   `rule` let a subscription filter policy pick alerts without reading the message.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::alert::Alert;
use crate::manifest::rfc3339_millis;

/// Entries per `PublishBatch` / `PutEvents` call (both APIs' limit).
pub const BATCH_ENTRIES: usize = 10;
/// EventBridge `source` of every alert event.
pub const EVENT_SOURCE: &str = "das-setup";
/// EventBridge `detail-type` of every alert event.
pub const EVENT_DETAIL_TYPE: &str = "Database Activity Alert";
/// Alerts one invocation publishes one by one; beyond, one summary per rule (an alert storm: a
/// rule matching most events is a configuration error, and a batch's thousands of messages
/// would take the function minutes and stall the pipeline behind it).
pub const MAX_NOTICES: usize = 500;
/// (alert id, destination) pairs a [`Delivered`] remembers.
pub const MAX_DELIVERED: usize = 50_000;
/// SNS `Subject`: printable ASCII "less than 100 characters long", no line breaks (Publish API
/// reference, Subject).
const SUBJECT_CHARS: usize = 99;

/// Where alerts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// The SNS topic (`DAS_ALERT_TOPIC_ARN`).
    Topic,
    /// EventBridge (`DAS_ALERT_EVENT_BUS`, `default` as `up` sets it).
    EventBus,
    /// AWS Security Hub (`DAS_SECURITY_HUB_DATABASE_ARN`): high and critical alerts only.
    SecurityHub,
}

impl Destination {
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Topic => "sns",
            Destination::EventBus => "eventbridge",
            Destination::SecurityHub => "securityhub",
        }
    }

    /// Whether this destination takes this alert.
    pub fn takes(self, notice: &Notice) -> bool {
        match self {
            Destination::Topic | Destination::EventBus => true,
            Destination::SecurityHub => crate::finding::wanted(notice.severity),
        }
    }
}

/// What an alert concerns beyond the event's own fields: where its database and event are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub cluster: Option<String>,
    pub instance: Option<String>,
    /// The S3 object holding the event (`None`: not stored by the processor, because the
    /// filter drops it or Firehose writes it in `events` output mode).
    pub s3_key: Option<String>,
}

/// An alert as published: the alert's fields, where it happened, and its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// The same for every delivery of this alert (record id, event position, rule): 24 hex
    /// digits of `id`.
    pub alert_id: String,
    #[serde(skip)]
    pub id: [u8; 12],
    pub rule: String,
    pub severity: &'static str,
    pub description: Option<String>,
    pub category: &'static str,
    pub command: Option<String>,
    pub user: Option<String>,
    pub database: Option<String>,
    pub object: Option<String>,
    pub client: Option<String>,
    pub application: Option<String>,
    pub engine: Option<String>,
    /// Masked as stored (passwords and keys never leave the processor), at most 1,000 chars.
    pub statement: Option<String>,
    pub cluster: Option<String>,
    pub instance: Option<String>,
    /// RFC 3339, UTC, milliseconds.
    pub event_time: String,
    /// A threshold rule's count within its window (1 otherwise).
    pub count: u32,
    /// Matches the de-duplication window held back before this alert.
    pub suppressed: u32,
    /// A storm summary (more than [`MAX_NOTICES`] alerts in one invocation): the matches of
    /// this rule it stands for, not published one by one; 0 for every other alert.
    pub summarized: u32,
    pub bucket: Option<String>,
    pub s3_key: Option<String>,
}

impl Notice {
    /// `record_id` and `index` (the event's place in its record) make the alert's identity.
    pub fn new(
        alert: Alert,
        description: Option<&str>,
        origin: Origin,
        bucket: Option<&str>,
        record_id: &str,
        index: usize,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(record_id.as_bytes());
        h.update([0]);
        h.update(index.to_le_bytes());
        h.update(alert.rule.as_bytes());
        let (id, alert_id) = identity(&h.finalize());
        Self {
            alert_id,
            id,
            rule: alert.rule,
            severity: alert.severity.as_str(),
            description: description.map(str::to_owned),
            category: alert.category,
            command: alert.command,
            user: alert.user,
            database: alert.database,
            object: alert.object,
            client: alert.client,
            application: alert.application,
            engine: alert.engine,
            statement: alert.statement,
            cluster: origin.cluster,
            instance: origin.instance,
            event_time: rfc3339_millis(alert.event_time),
            count: alert.count,
            suppressed: alert.suppressed,
            summarized: 0,
            bucket: origin.s3_key.as_ref().and(bucket.map(str::to_owned)),
            s3_key: origin.s3_key,
        }
    }

    /// The JSON message (SNS) and detail (EventBridge).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The database the alert is about: cluster, else instance.
    pub fn target(&self) -> &str {
        self.cluster
            .as_deref()
            .or(self.instance.as_deref())
            .unwrap_or("unknown database")
    }

    /// SNS `Subject` (e-mail subject line): printable ASCII, fewer than 100 characters.
    pub fn subject(&self) -> String {
        let text = format!(
            "das-setup {}: {} on {}",
            self.severity.to_ascii_uppercase(),
            self.rule,
            self.target()
        );
        let clean: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        clean.chars().take(SUBJECT_CHARS).collect()
    }

    /// The event's own fields, named, in the order people read them.
    pub fn event_fields(&self) -> [(&'static str, Option<&str>); 8] {
        [
            ("category", Some(self.category)),
            ("command", self.command.as_deref()),
            ("user", self.user.as_deref()),
            ("database", self.database.as_deref()),
            ("object", self.object.as_deref()),
            ("client", self.client.as_deref()),
            ("application", self.application.as_deref()),
            ("statement", self.statement.as_deref()),
        ]
    }

    /// `s3://bucket/key` of the stored event, when the processor stored it.
    pub fn stored_in(&self) -> Option<String> {
        match (&self.bucket, &self.s3_key) {
            (Some(b), Some(k)) => Some(format!("s3://{b}/{k}")),
            _ => None,
        }
    }

    /// What an e-mail subscriber reads.
    pub fn email_text(&self) -> String {
        let mut t = String::with_capacity(512);
        let _ = writeln!(
            t,
            "{} alert from das-setup: rule {} on {}",
            self.severity,
            self.rule,
            self.target()
        );
        if let Some(d) = &self.description {
            let _ = writeln!(t, "{d}");
        }
        t.push('\n');
        let mut line = |name: &str, value: Option<&str>| {
            if let Some(v) = value {
                let _ = writeln!(t, "{name:<12}{v}");
            }
        };
        line("time", Some(&self.event_time));
        for (name, value) in self.event_fields() {
            line(name, value);
        }
        let count = self.count.to_string();
        line("count", (self.count > 1).then_some(count.as_str()));
        let held = self.suppressed.to_string();
        line("held back", (self.suppressed > 0).then_some(held.as_str()));
        let summarized = self.summarized.to_string();
        line(
            "summarized",
            (self.summarized > 0).then_some(summarized.as_str()),
        );
        line("stored in", self.stored_in().as_deref());
        line("alert id", Some(&self.alert_id));
        t
    }

    /// The SNS message of `MessageStructure` `json`: JSON for every protocol, text for e-mail.
    pub fn sns_message(&self) -> String {
        serde_json::json!({
            "default": self.to_json(),
            "email": self.email_text(),
        })
        .to_string()
    }
}

/// An alert's identity from a SHA-256: its first 12 bytes, and their 24 hex digits.
fn identity(digest: &[u8]) -> ([u8; 12], String) {
    let mut id = [0u8; 12];
    id.copy_from_slice(&digest[..12]);
    let mut hex = String::with_capacity(24);
    for b in id {
        let _ = write!(hex, "{b:02x}");
    }
    (id, hex)
}

/// At most `max` notices as they are, then one summary per rule of the rest, in the order the
/// rules first appear there: the rule, its severity and category, the database, the newest
/// event time, and in `summarized` how many matches it stands for. Deterministic, so a retry of
/// the batch publishes the same summaries with the same ids.
pub fn cap(mut notices: Vec<Notice>, max: usize) -> Vec<Notice> {
    if notices.len() <= max {
        return notices;
    }
    let excess = notices.split_off(max);
    let mut summaries: Vec<Notice> = Vec::new();
    for n in excess {
        if let Some(s) = summaries.iter_mut().find(|s| s.rule == n.rule) {
            s.summarized += 1;
            if n.event_time > s.event_time {
                s.event_time = n.event_time;
            }
            continue;
        }
        let digest = Sha256::new()
            .chain_update(n.id)
            .chain_update(b"storm summary")
            .finalize();
        let (id, alert_id) = identity(&digest);
        summaries.push(Notice {
            alert_id,
            id,
            description: Some(format!(
                "Alert storm: more than {max} alerts in one batch; this rule's further matches are \
                 counted here (summarized), not published one by one. Every event is stored."
            )),
            command: None,
            user: None,
            database: None,
            object: None,
            client: None,
            application: None,
            statement: None,
            count: 1,
            suppressed: 0,
            summarized: 1,
            bucket: None,
            s3_key: None,
            ..n
        });
    }
    notices.extend(summaries);
    notices
}

/// Publishes one batch (at most [`BATCH_ENTRIES`]) to one destination; one result per notice,
/// in order (an error names why that entry was not accepted).
pub trait AlertSink: Send + Sync {
    fn send<'a>(
        &'a self,
        destination: Destination,
        notices: &'a [&'a Notice],
    ) -> BoxFuture<'a, Vec<Result<(), String>>>;
}

/// Alerts that were not published. The invocation fails with it, so Firehose retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("publishing {failed} of {total} alert(s) to {destination} failed: {reason}")]
pub struct PublishError {
    pub destination: &'static str,
    pub failed: usize,
    pub total: usize,
    /// The first refusal (service error code and message; never the alert's content).
    pub reason: String,
}

/// What each destination accepted already, in one warm environment (bounded, oldest forgotten).
#[derive(Debug, Default)]
pub struct Delivered {
    set: HashSet<([u8; 12], Destination)>,
    order: VecDeque<([u8; 12], Destination)>,
}

impl Delivered {
    pub fn contains(&self, id: [u8; 12], destination: Destination) -> bool {
        self.set.contains(&(id, destination))
    }

    pub fn insert(&mut self, id: [u8; 12], destination: Destination) {
        let key = (id, destination);
        if self.set.insert(key) {
            self.order.push_back(key);
            while self.order.len() > MAX_DELIVERED {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// Sends every notice not yet delivered to each destination, in batches; records what was
/// accepted. Returns how many entries were sent, or the first destination's failure (after
/// every batch was tried, so a retry resends only what failed).
pub async fn publish(
    sink: &dyn AlertSink,
    destinations: &[Destination],
    delivered: &Mutex<Delivered>,
    notices: &[Notice],
) -> Result<usize, PublishError> {
    let mut sent = 0;
    let mut first_error: Option<PublishError> = None;
    for &destination in destinations {
        let pending: Vec<&Notice> = {
            let done = delivered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            notices
                .iter()
                .filter(|n| destination.takes(n) && !done.contains(n.id, destination))
                .collect()
        };
        let mut failed = 0;
        let mut reason = None;
        for batch in pending.chunks(BATCH_ENTRIES) {
            let results = sink.send(destination, batch).await;
            let mut done = delivered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (i, notice) in batch.iter().enumerate() {
                match results.get(i) {
                    Some(Ok(())) => {
                        sent += 1;
                        done.insert(notice.id, destination);
                    }
                    Some(Err(e)) => {
                        failed += 1;
                        reason.get_or_insert_with(|| e.clone());
                    }
                    None => {
                        failed += 1;
                        reason.get_or_insert_with(|| "no result for this entry".to_owned());
                    }
                }
            }
        }
        if failed > 0 && first_error.is_none() {
            first_error = Some(PublishError {
                destination: destination.as_str(),
                failed,
                total: pending.len(),
                reason: reason.unwrap_or_default(),
            });
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::Severity;

    /// A notice of `rule`, for other modules' tests.
    pub(crate) fn notice_for_tests(rule: &str) -> Notice {
        notice("record-1", 0, rule)
    }

    fn alert(rule: &str) -> Alert {
        Alert {
            rule: rule.into(),
            severity: Severity::High,
            category: "DDL",
            command: Some("DROP TABLE".into()),
            user: Some("mallory".into()),
            database: Some("shop".into()),
            object: Some("orders".into()),
            client: Some("10.0.0.9".into()),
            application: None,
            engine: Some("PostgreSQL".into()),
            statement: Some("DROP TABLE orders".into()),
            event_time: 1_796_000_000_123,
            count: 1,
            suppressed: 0,
        }
    }

    fn notice(record: &str, index: usize, rule: &str) -> Notice {
        Notice::new(
            alert(rule),
            Some("A table was dropped"),
            Origin {
                cluster: Some("demo".into()),
                instance: None,
                s3_key: Some("parsed/DDL/2026/12/01/10/b.ndjson.gz".into()),
            },
            Some("bucket"),
            record,
            index,
        )
    }

    #[test]
    fn an_alert_keeps_its_id_and_differs_from_every_other() {
        assert_eq!(notice("r1", 0, "a").alert_id, notice("r1", 0, "a").alert_id);
        let ids: HashSet<String> = [
            ("r1", 0, "a"),
            ("r1", 1, "a"),
            ("r2", 0, "a"),
            ("r1", 0, "b"),
        ]
        .into_iter()
        .map(|(r, i, n)| notice(r, i, n).alert_id)
        .collect();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn the_message_carries_the_documented_fields() {
        let n = notice("r1", 0, "table-dropped");
        let v: serde_json::Value = serde_json::from_str(&n.to_json()).unwrap();
        for field in [
            "alertId",
            "rule",
            "severity",
            "category",
            "user",
            "database",
            "object",
            "client",
            "statement",
            "cluster",
            "instance",
            "eventTime",
            "s3Key",
            "bucket",
        ] {
            assert!(v.get(field).is_some(), "{field} missing: {v}");
        }
        assert_eq!(v["eventTime"], "2026-11-30T00:53:20.123Z");
        assert_eq!(v["severity"], "high");
        let sns: serde_json::Value = serde_json::from_str(&n.sns_message()).unwrap();
        assert_eq!(sns["default"].as_str().unwrap(), n.to_json());
        let email = sns["email"].as_str().unwrap();
        assert!(email.contains("s3://bucket/parsed/DDL/"), "{email}");
        assert!(email.contains("DROP TABLE orders"), "{email}");
        assert_eq!(n.subject(), "das-setup HIGH: table-dropped on demo");
    }

    #[test]
    fn a_subject_is_printable_ascii_of_fewer_than_100_chars() {
        let mut n = notice("r", 0, "x");
        n.cluster = Some(format!("é\n{}", "c".repeat(200)));
        let s = n.subject();
        assert_eq!(s.chars().count(), 99);
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{s}");
    }

    /// Accepts all but the entries whose rule is in `refuse`, and records what it got.
    struct Fake {
        refuse: Mutex<HashSet<String>>,
        got: Mutex<Vec<(Destination, usize, String)>>,
    }

    impl AlertSink for Fake {
        fn send<'a>(
            &'a self,
            destination: Destination,
            notices: &'a [&'a Notice],
        ) -> BoxFuture<'a, Vec<Result<(), String>>> {
            Box::pin(async move {
                assert!(notices.len() <= BATCH_ENTRIES);
                let refuse = self.refuse.lock().unwrap().clone();
                notices
                    .iter()
                    .map(|n| {
                        if refuse.contains(&n.rule) {
                            Err("InternalError: try again".to_owned())
                        } else {
                            self.got.lock().unwrap().push((
                                destination,
                                notices.len(),
                                n.alert_id.clone(),
                            ));
                            Ok(())
                        }
                    })
                    .collect()
            })
        }
    }

    #[tokio::test]
    async fn batches_of_ten_and_a_retry_sends_only_what_failed() {
        let sink = Fake {
            refuse: Mutex::new(["bad".to_owned()].into()),
            got: Mutex::default(),
        };
        let mut notices: Vec<Notice> = (0..23).map(|i| notice("r", i, "good")).collect();
        notices.push(notice("r", 0, "bad"));
        let delivered = Mutex::new(Delivered::default());
        let both = [Destination::Topic, Destination::EventBus];
        let err = publish(&sink, &both, &delivered, &notices)
            .await
            .unwrap_err();
        assert_eq!((err.destination, err.failed, err.total), ("sns", 1, 24));
        assert!(err.reason.contains("InternalError"), "{err}");
        {
            let got = sink.got.lock().unwrap();
            // 24 in batches of 10, 10, 4, to each destination; 23 accepted by each.
            assert_eq!(got.len(), 46);
            let sizes: HashSet<usize> = got.iter().map(|g| g.1).collect();
            assert_eq!(sizes, [10, 4].into());
        }
        sink.got.lock().unwrap().clear();
        sink.refuse.lock().unwrap().clear();
        assert_eq!(
            publish(&sink, &both, &delivered, &notices).await.unwrap(),
            2
        );
        let got = sink.got.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|g| g.2 == notices[23].alert_id));
        // Everything delivered: a third attempt sends nothing.
        assert_eq!(
            publish(&sink, &both, &delivered, &notices).await.unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn security_hub_gets_only_the_high_and_critical_alerts() {
        let sink = Fake {
            refuse: Mutex::default(),
            got: Mutex::default(),
        };
        let high = notice("r", 0, "drop");
        let mut medium = notice("r", 1, "alter");
        medium.severity = "medium";
        let mut critical = notice("r", 2, "grant");
        critical.severity = "critical";
        let notices = [high.clone(), medium.clone(), critical.clone()];
        let delivered = Mutex::new(Delivered::default());
        let sent = publish(
            &sink,
            &[Destination::Topic, Destination::SecurityHub],
            &delivered,
            &notices,
        )
        .await
        .unwrap();
        assert_eq!(sent, 5, "three to the topic, two to Security Hub");
        let hub: Vec<String> = sink
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.0 == Destination::SecurityHub)
            .map(|g| g.2.clone())
            .collect();
        assert_eq!(hub, [high.alert_id, critical.alert_id]);
    }

    #[test]
    fn a_storm_is_capped_with_one_summary_per_rule_the_same_every_time() {
        let mut notices: Vec<Notice> = (0..7).map(|i| notice("r", i, "a")).collect();
        notices.extend((0..4).map(|i| notice("r", i, "b")));
        notices[8].event_time = "2026-11-30T00:59:00.000Z".into();
        assert_eq!(
            cap(notices.clone(), 20),
            notices,
            "under the cap: as they are"
        );
        let capped = cap(notices.clone(), 5);
        assert_eq!(capped.len(), 7);
        assert_eq!(capped[..5], notices[..5]);
        let (a, b) = (&capped[5], &capped[6]);
        assert_eq!((a.rule.as_str(), a.summarized), ("a", 2));
        assert_eq!((b.rule.as_str(), b.summarized), ("b", 4));
        assert_eq!(b.event_time, "2026-11-30T00:59:00.000Z", "the newest");
        assert!(a.statement.is_none() && a.user.is_none() && a.s3_key.is_none());
        assert!(a.description.as_deref().unwrap().contains("Alert storm"));
        assert_ne!(a.alert_id, notices[5].alert_id);
        assert_eq!(
            cap(notices, 5),
            capped,
            "a retry publishes the same summaries"
        );
        let v: serde_json::Value = serde_json::from_str(&b.to_json()).unwrap();
        assert_eq!(v["summarized"], 4);
    }

    #[test]
    fn delivered_is_bounded() {
        let id = |i: usize| {
            let mut id = [0u8; 12];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            id
        };
        let mut d = Delivered::default();
        for i in 0..MAX_DELIVERED + 10 {
            d.insert(id(i), Destination::Topic);
        }
        assert!(!d.contains(id(0), Destination::Topic));
        assert!(d.contains(id(MAX_DELIVERED + 9), Destination::Topic));
        assert!(!d.contains(id(MAX_DELIVERED + 9), Destination::EventBus));
        assert_eq!(d.set.len(), MAX_DELIVERED);
    }
}
