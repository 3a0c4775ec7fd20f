//! The alerts topic (`up --alert-rules FILE` / `--alerts default`): an SNS topic
//! `das-setup-<name>-alerts`, encrypted at rest with the activity stream's KMS key (SNS
//! server-side encryption, `KmsMasterKeyId`), tagged as das-setup's, with the optional e-mail
//! subscription of `--alert-email`. The processor publishes every alert to it.
//!
//! A topic found while `up` is given no rules is kept (its subscribers stay; `down` removes it),
//! and the plan says so: turning alerts off is the function's environment, not the topic.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_sns::operation::delete_topic::DeleteTopicError;
use aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesError;
use aws_sdk_sns::types::Tag;

use super::{Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict, invalid};
use crate::aws::{AwsError, Clients, Named as _};
use crate::desired::Desired;

/// SNS's `KmsMasterKeyId` attribute (SNS API reference, SetTopicAttributes).
const KMS_ATTRIBUTE: &str = "KmsMasterKeyId";
/// What `ListSubscriptionsByTopic` says of a subscription not confirmed yet.
const PENDING: &str = "PendingConfirmation";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
    /// Not confirmed by its endpoint yet (an e-mail's link not followed).
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    pub arn: String,
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub subscriptions: Vec<Subscription>,
}

impl TopicState {
    fn has_email(&self, address: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.protocol == "email" && s.endpoint.eq_ignore_ascii_case(address))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TopicChange {
    Create,
    Encryption,
    Tags,
    Subscribe,
}

impl fmt::Display for TopicChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicChange::Create => "create topic",
            TopicChange::Encryption => "encryption key",
            TopicChange::Tags => "tags",
            TopicChange::Subscribe => "e-mail subscription",
        })
    }
}

impl Change for TopicChange {
    fn effect(self) -> Effect {
        match self {
            TopicChange::Create => Effect::Create,
            TopicChange::Encryption | TopicChange::Tags | TopicChange::Subscribe => Effect::Update,
        }
    }
}

/// The topic of `arn`, or `None` when there is none.
pub async fn observe(clients: &Clients, arn: &str) -> Result<Option<TopicState>, AwsError> {
    let what = format!("topic {arn}");
    let Some(attrs) = clients
        .sns
        .get_topic_attributes()
        .topic_arn(arn)
        .send()
        .await
        .or_absent("sns:GetTopicAttributes", &what, |e| {
            matches!(e, GetTopicAttributesError::NotFoundException(_))
        })?
    else {
        return Ok(None);
    };
    let kms_key = attrs
        .attributes()
        .and_then(|a| a.get(KMS_ATTRIBUTE))
        .filter(|k| !k.is_empty())
        .cloned();
    let tags = clients
        .sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .named("sns:ListTagsForResource", &what)?
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    let mut subscriptions = Vec::new();
    let mut token = None;
    loop {
        let page = clients
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .set_next_token(token)
            .send()
            .await
            .named("sns:ListSubscriptionsByTopic", &what)?;
        subscriptions.extend(page.subscriptions().iter().map(|s| Subscription {
            protocol: s.protocol().unwrap_or_default().to_owned(),
            endpoint: s.endpoint().unwrap_or_default().to_owned(),
            pending: s.subscription_arn() == Some(PENDING),
        }));
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(Some(TopicState {
        arn: arn.to_owned(),
        kms_key,
        tags,
        subscriptions,
    }))
}

pub fn compare(d: &Desired, state: Option<&TopicState>) -> Planned<TopicChange> {
    let name = d.names.alerts_topic.clone();
    let Some(alerts) = &d.alerts else {
        let mut p = Planned::new(name, vec![]);
        if state.is_some() {
            p.notes.push(
                "kept: no alert rules given, so the function publishes nothing; down removes it"
                    .into(),
            );
        }
        return p;
    };
    let mut changes = vec![];
    match state {
        None => {
            changes.push(TopicChange::Create);
            if alerts.email.is_some() {
                changes.push(TopicChange::Subscribe);
            }
        }
        Some(t) => {
            if t.kms_key.as_deref() != Some(d.key.arn.as_str()) {
                changes.push(TopicChange::Encryption);
            }
            if super::missing_tags(&d.tags, &t.tags) {
                changes.push(TopicChange::Tags);
            }
            if let Some(email) = &alerts.email
                && !t.has_email(email)
            {
                changes.push(TopicChange::Subscribe);
            }
        }
    }
    let mut p = Planned::new(name, changes);
    if let Some(email) = &alerts.email
        && p.has(TopicChange::Subscribe)
    {
        p.notes
            .push(format!("{email} must confirm the subscription AWS e-mails"));
    }
    p
}

pub async fn apply(ctx: &Ctx<'_>, d: &Desired, plan: &Planned<TopicChange>) -> Res {
    let Some(alerts) = &d.alerts else {
        return Ok(());
    };
    if plan.changes.is_empty() {
        return Ok(());
    }
    let arn = &d.names.alerts_topic_arn;
    let what = format!("topic {arn}");
    let step = ctx.progress.begin(format!("configuring {what}"), false);
    let sns = &ctx.clients.sns;
    let tags = || -> Result<Vec<Tag>, _> {
        d.tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    };
    for change in &plan.changes {
        match change {
            TopicChange::Create => {
                ctx.mutate("sns:CreateTopic", arn)?;
                // CreateTopic is idempotent for the same name, attributes and tags (SNS API
                // reference): an interrupted run's topic is taken as it is.
                let created = sns
                    .create_topic()
                    .name(&d.names.alerts_topic)
                    .attributes(KMS_ATTRIBUTE, &d.key.arn)
                    .set_tags(Some(
                        tags().map_err(|e| invalid("sns:CreateTopic", arn, e))?,
                    ))
                    .send()
                    .await
                    .named("sns:CreateTopic", &what)?;
                if created.topic_arn() != Some(arn.as_str()) {
                    return Err(invalid(
                        "sns:CreateTopic",
                        arn,
                        format!(
                            "SNS created {:?}, not the expected ARN",
                            created.topic_arn().unwrap_or_default()
                        ),
                    ));
                }
            }
            TopicChange::Encryption => {
                ctx.mutate("sns:SetTopicAttributes", arn)?;
                sns.set_topic_attributes()
                    .topic_arn(arn)
                    .attribute_name(KMS_ATTRIBUTE)
                    .attribute_value(&d.key.arn)
                    .send()
                    .await
                    .named("sns:SetTopicAttributes", &what)?;
            }
            TopicChange::Tags => {
                ctx.mutate("sns:TagResource", arn)?;
                sns.tag_resource()
                    .resource_arn(arn)
                    .set_tags(Some(
                        tags().map_err(|e| invalid("sns:TagResource", arn, e))?,
                    ))
                    .send()
                    .await
                    .named("sns:TagResource", &what)?;
            }
            TopicChange::Subscribe => {
                let Some(email) = &alerts.email else { continue };
                ctx.mutate("sns:Subscribe", arn)?;
                sns.subscribe()
                    .topic_arn(arn)
                    .protocol("email")
                    .endpoint(email)
                    .send()
                    .await
                    .named("sns:Subscribe", &what)?;
            }
        }
    }
    step.done(&format!("{what}: {}", plan.descriptions().join(", ")));
    Ok(())
}

/// `down`: das-setup's topic goes (its subscriptions with it); another's is left.
pub fn verdict(state: Option<&TopicState>) -> Verdict {
    state.map_or(Verdict::Absent, |t| Verdict::by_tags(&t.tags))
}

/// Deletes the topic and, with it, its subscriptions (SNS API reference, DeleteTopic).
pub async fn delete(clients: &Clients, arn: &str) -> Result<(), AwsError> {
    clients
        .sns
        .delete_topic()
        .topic_arn(arn)
        .send()
        .await
        .or_absent("sns:DeleteTopic", arn, |e| {
            matches!(e, DeleteTopicError::NotFoundException(_))
        })?;
    Ok(())
}

/// `status`: `alerting` is the function's topic when it publishes alerts.
pub fn check(arn: &str, state: Option<&TopicState>, alerting: Option<&str>) -> Check {
    let r = Resource::AlertsTopic;
    match (state, alerting) {
        (None, None) => Check::of(
            r,
            Level::Ok,
            "alerts off (up --alerts default or --alert-rules FILE turns them on)",
        ),
        (None, Some(_)) => Check::of(
            r,
            Level::Fail,
            format!("{arn} does not exist, but the function publishes alerts to it: run up"),
        ),
        (Some(t), _) => {
            let pending = t.subscriptions.iter().filter(|s| s.pending).count();
            let confirmed = t.subscriptions.len() - pending;
            let mut detail = format!(
                "{arn}, {}, {confirmed} subscription(s)",
                if t.kms_key.is_some() {
                    "encrypted"
                } else {
                    "NOT encrypted"
                }
            );
            if pending > 0 {
                detail.push_str(&format!(
                    ", {pending} waiting for confirmation (the e-mail AWS sent)"
                ));
            }
            if alerting.is_none() {
                detail.push_str("; the function publishes no alerts");
            }
            if t.subscriptions.is_empty() && alerting.is_some() {
                detail.push_str(" (alerts reach EventBridge only)");
            }
            let level = if t.kms_key.is_none() || pending > 0 {
                Level::Warn
            } else {
                Level::Ok
            };
            Check::of(r, level, detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::desired;

    fn found(d: &Desired, email: Option<(&str, bool)>) -> TopicState {
        TopicState {
            arn: d.names.alerts_topic_arn.clone(),
            kms_key: Some(d.key.arn.clone()),
            tags: d.tags.clone(),
            subscriptions: email
                .map(|(e, pending)| Subscription {
                    protocol: "email".into(),
                    endpoint: e.into(),
                    pending,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn created_with_its_subscription_then_unchanged() {
        let d = desired(&[
            "--cluster",
            "demo",
            "--alerts",
            "default",
            "--alert-email",
            "sec@example.com",
        ]);
        assert_eq!(d.names.alerts_topic, "das-setup-demo-alerts");
        let p = compare(&d, None);
        assert_eq!(p.changes, vec![TopicChange::Create, TopicChange::Subscribe]);
        assert!(
            p.notes[0].contains("sec@example.com must confirm"),
            "{:?}",
            p.notes
        );
        let state = found(&d, Some(("SEC@example.com", true)));
        assert!(compare(&d, Some(&state)).changes.is_empty());
    }

    #[test]
    fn drift_is_put_back() {
        let d = desired(&["--cluster", "demo", "--alerts", "default"]);
        let mut state = found(&d, None);
        state.kms_key = None;
        state.tags.clear();
        assert_eq!(
            compare(&d, Some(&state)).changes,
            vec![TopicChange::Encryption, TopicChange::Tags]
        );
    }

    #[test]
    fn without_rules_a_found_topic_is_kept_and_said_so() {
        let d = desired(&["--cluster", "demo"]);
        assert!(d.alerts.is_none());
        let with = desired(&["--cluster", "demo", "--alerts", "default"]);
        let p = compare(&d, Some(&found(&with, None)));
        assert!(p.changes.is_empty());
        assert!(p.notes[0].contains("kept"), "{:?}", p.notes);
        assert!(compare(&d, None).notes.is_empty());
    }

    #[test]
    fn status_says_what_is_missing() {
        let d = desired(&["--cluster", "demo", "--alerts", "default"]);
        let arn = &d.names.alerts_topic_arn;
        assert_eq!(check(arn, None, None).level, Level::Ok);
        assert_eq!(check(arn, None, Some(arn)).level, Level::Fail);
        let pending = found(&d, Some(("a@example.com", true)));
        let c = check(arn, Some(&pending), Some(arn));
        assert_eq!(c.level, Level::Warn);
        assert!(
            c.detail.contains("waiting for confirmation"),
            "{}",
            c.detail
        );
        let confirmed = found(&d, Some(("a@example.com", false)));
        assert_eq!(check(arn, Some(&confirmed), Some(arn)).level, Level::Ok);
        assert_eq!(
            verdict(Some(&confirmed)),
            Verdict::Delete,
            "das-setup's topic goes with down"
        );
    }
}
