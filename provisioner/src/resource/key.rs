//! The KMS key the activity stream encrypts with: `--kms-key`, or one das-setup creates (alias
//! `alias/das-setup/<target>`, tagged, its description naming the database's ARN).
//!
//! An `up` stopped between `CreateKey` and `CreateAlias` leaves a key without its alias. It is
//! found again through the Resource Groups Tagging API (`tag:GetResources`, filtered by
//! das-setup's tags and the `kms:key` resource type): a bounded number of calls whatever the
//! account holds, and any error stops the command instead of being skipped (a skipped key would
//! make `up` create a second one).

use aws_sdk_kms::operation::create_alias::CreateAliasError;
use aws_sdk_kms::operation::delete_alias::DeleteAliasError;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_kms::operation::schedule_key_deletion::ScheduleKeyDeletionError;
use aws_sdk_kms::types::{KeyManagerType, KeySpec, KeyState as SdkKeyState, KeyUsageType};
use std::collections::BTreeMap;
use std::fmt;

use super::{Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict, invalid};
use crate::aws::{AwsError, Clients, Named as _, required, required_str};
use crate::desired::Desired;
use crate::naming::{TAG_CLUSTER, TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE, TargetRef};

/// KMS's shortest waiting period: the key can still be recovered for a week.
pub const DELETION_WINDOW_DAYS: i32 = 7;

/// A KMS key as `DescribeKey` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub arn: String,
    pub id: String,
    pub state: Option<SdkKeyState>,
    pub manager: Option<KeyManagerType>,
    pub spec: Option<KeySpec>,
    pub description: Option<String>,
}

impl KeyState {
    pub fn enabled(&self) -> bool {
        self.state == Some(SdkKeyState::Enabled)
    }

    pub fn pending_deletion(&self) -> bool {
        self.state == Some(SdkKeyState::PendingDeletion)
    }

    /// A symmetric customer-managed key: the only kind activity streams accept.
    pub fn usable_for_streams(&self) -> bool {
        self.manager == Some(KeyManagerType::Customer)
            && self
                .spec
                .as_ref()
                .is_none_or(|s| *s == KeySpec::SymmetricDefault)
    }

    pub fn state_name(&self) -> &str {
        self.state.as_ref().map_or("unknown", |s| s.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyChange {
    /// `CreateKey`, then `CreateAlias`.
    Create,
    /// The alias for the key an interrupted run created.
    Alias,
}

impl fmt::Display for KeyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyChange::Create => "create key and alias",
            KeyChange::Alias => "alias for the key an interrupted run created",
        })
    }
}

impl Change for KeyChange {
    fn effect(self) -> Effect {
        match self {
            KeyChange::Create => Effect::Create,
            KeyChange::Alias => Effect::Update,
        }
    }
}

/// `DescribeKey` of an id, ARN or alias; `Ok(None)` when it does not exist.
pub async fn observe(clients: &Clients, key: &str) -> Result<Option<KeyState>, AwsError> {
    let what = format!("key {key}");
    let Some(out) = clients
        .kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .or_absent("kms:DescribeKey", &what, |e| {
            matches!(e, DescribeKeyError::NotFoundException(_))
        })?
    else {
        return Ok(None);
    };
    let meta = required(out.key_metadata, "kms:DescribeKey", &what, "KeyMetadata")?;
    Ok(Some(KeyState {
        arn: required_str(meta.arn(), "kms:DescribeKey", &what, "KeyMetadata.Arn")?,
        id: required_str(
            Some(meta.key_id()),
            "kms:DescribeKey",
            &what,
            "KeyMetadata.KeyId",
        )?,
        state: meta.key_state().cloned(),
        manager: meta.key_manager().cloned(),
        spec: meta.key_spec().cloned(),
        description: meta.description().map(str::to_owned),
    }))
}

/// The key das-setup created for this database whose alias is missing: tagged as das-setup's
/// for this target (found with one `tag:GetResources` listing, a page per 100 matches), enabled,
/// and its description naming the database's ARN.
pub async fn orphan(
    clients: &Clients,
    target: &TargetRef,
    database_arn: &str,
) -> Result<Option<KeyState>, AwsError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let what = format!("das-setup's keys for {}", target.id);
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .tagging
            .get_resources()
            .resource_type_filters("kms:key")
            .tag_filters(
                TagFilter::builder()
                    .key(TAG_MANAGED_BY)
                    .values(TAG_MANAGED_BY_VALUE)
                    .build(),
            )
            .tag_filters(
                TagFilter::builder()
                    .key(TAG_CLUSTER)
                    .values(&target.id)
                    .build(),
            )
            .set_pagination_token(token.clone())
            .send()
            .await
            .named("tag:GetResources", &what)?;
        for mapping in page.resource_tag_mapping_list() {
            let Some(arn) = mapping.resource_arn() else {
                continue;
            };
            let Some(key) = observe(clients, arn).await? else {
                continue;
            };
            if key.enabled()
                && key
                    .description
                    .as_deref()
                    .is_some_and(|d| d.contains(database_arn))
            {
                return Ok(Some(key));
            }
        }
        token = page
            .pagination_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// The key's changes: `pending` when it is still to be created, `alias_missing` when an
/// interrupted run created it.
pub fn compare(d: &Desired) -> Planned<KeyChange> {
    let (name, changes) = if d.key_pending {
        (d.names.key_alias.clone(), vec![KeyChange::Create])
    } else if d.key_alias_missing {
        (d.key_arn.clone(), vec![KeyChange::Alias])
    } else {
        (d.key_arn.clone(), vec![])
    };
    Planned::new(name, changes)
}

/// Carries out the plan; returns the ARN of a key it created.
pub async fn apply(ctx: &Ctx<'_>, d: &Desired, plan: &Planned<KeyChange>) -> Res<Option<String>> {
    let mut created = None;
    for change in &plan.changes {
        match change {
            KeyChange::Alias => create_alias(ctx, d, &d.key_arn).await?,
            KeyChange::Create => created = Some(create(ctx, d).await?),
        }
    }
    Ok(created)
}

async fn create(ctx: &Ctx<'_>, d: &Desired) -> Res<String> {
    let alias = &d.names.key_alias;
    let step = ctx
        .progress
        .begin(format!("creating KMS key {alias}"), false);
    let mut tags = Vec::new();
    for (k, v) in &d.tags {
        tags.push(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| invalid("kms:CreateKey", alias, e))?,
        );
    }
    ctx.mutate("kms:CreateKey", alias)?;
    // No `Policy`: KMS then attaches its default key policy, the one statement of
    // policies/key-policy.json (the account administers the key through IAM). A policy given
    // here must pass KMS's lockout safety check, which needs the caller to be allowed
    // kms:PutKeyPolicy (CreateKey API reference, `Policy`), a permission deployer.json does not
    // need to grant otherwise.
    let key = ctx
        .clients
        .kms
        .create_key()
        .description(format!(
            "Database activity stream of {} (das-setup)",
            d.database.arn
        ))
        .key_usage(KeyUsageType::EncryptDecrypt)
        .key_spec(KeySpec::SymmetricDefault)
        .set_tags(Some(tags))
        .send()
        .await
        .named("kms:CreateKey", alias)?;
    let meta = required(key.key_metadata, "kms:CreateKey", alias, "KeyMetadata")?;
    let arn = required_str(meta.arn(), "kms:CreateKey", alias, "KeyMetadata.Arn")?;
    create_alias(ctx, d, &arn).await?;
    step.done(&format!("created KMS key {alias} ({arn})"));
    Ok(arn)
}

/// How long an alias that `CreateAlias` says exists may stay invisible to `DescribeKey`.
pub const ALIAS_VISIBLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5 * 60);

async fn create_alias(ctx: &Ctx<'_>, d: &Desired, key_arn: &str) -> Res {
    let alias = &d.names.key_alias;
    ctx.mutate("kms:CreateAlias", alias)?;
    let result = ctx
        .clients
        .kms
        .create_alias()
        .alias_name(alias)
        .target_key_id(key_arn)
        .send()
        .await;
    // `up` gets here when DescribeKey found no key behind the alias, but KMS is eventually
    // consistent ("The KMS API follows an eventual consistency model", CreateKey API
    // reference): the alias may have been made a moment ago, for this very key. Look again;
    // only an alias naming another key is refused.
    if let Err(e) = &result
        && e.as_service_error()
            .is_some_and(|e| matches!(e, CreateAliasError::AlreadyExistsException(_)))
    {
        // Until the alias is visible: DescribeKey lags CreateAlias as much as the lookup that
        // sent us here did (the emulator's --alias-lag shows it).
        let mut target = observe(ctx.clients, alias).await?;
        if target.is_none() {
            let mut poll = ctx.poll(
                format!("alias {alias} to be visible"),
                ALIAS_VISIBLE_TIMEOUT,
            );
            while target.is_none() {
                poll.next("not visible yet").await?;
                target = observe(ctx.clients, alias).await?;
            }
            poll.done(&format!("alias {alias} is visible"));
        }
        if target
            .as_ref()
            .is_some_and(|k| k.arn == key_arn || k.id == key_arn)
        {
            return Ok(());
        }
        return Err(super::ApplyError::Failed {
            what: format!("alias {alias}"),
            reason: format!(
                "it exists already and points to {}, not {key_arn}; delete it (aws kms delete-alias) or pass --kms-key",
                target.map_or_else(
                    || "a key this principal cannot describe".to_owned(),
                    |k| k.arn
                )
            ),
        });
    }
    result.named("kms:CreateAlias", alias)?;
    Ok(())
}

/// `down`: only a key das-setup tagged, only with `--delete-key`.
pub fn verdict(
    key: Option<&KeyState>,
    tags: Option<&BTreeMap<String, String>>,
    delete_key: bool,
) -> Verdict {
    match key {
        None => Verdict::Absent,
        Some(k) if k.pending_deletion() => Verdict::Absent,
        Some(_) if !delete_key => Verdict::Keep(
            "only the activity stream used it (stored events are encrypted by S3); --delete-key schedules its deletion".into(),
        ),
        Some(_) => Verdict::by_tags(tags.unwrap_or(&BTreeMap::new())),
    }
}

/// The key's tags, for [`verdict`].
pub async fn tags(clients: &Clients, key: &KeyState) -> Result<BTreeMap<String, String>, AwsError> {
    let out = clients
        .kms
        .list_resource_tags()
        .key_id(&key.id)
        .send()
        .await
        .named("kms:ListResourceTags", &key.arn)?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
        .collect())
}

/// Deletes the alias and schedules the key's deletion; "not found" counts as done.
pub async fn delete(clients: &Clients, alias: &str, key: &KeyState) -> Result<(), AwsError> {
    clients
        .kms
        .delete_alias()
        .alias_name(alias)
        .send()
        .await
        .or_absent("kms:DeleteAlias", alias, |e| {
            matches!(e, DeleteAliasError::NotFoundException(_))
        })?;
    clients
        .kms
        .schedule_key_deletion()
        .key_id(&key.id)
        .pending_window_in_days(DELETION_WINDOW_DAYS)
        .send()
        .await
        .or_absent("kms:ScheduleKeyDeletion", alias, |e| {
            matches!(e, ScheduleKeyDeletionError::NotFoundException(_))
        })?;
    Ok(())
}

/// `status`: the key the activity stream encrypts with is there and enabled (`in_use`: the
/// key RDS names for the stream; `key`: what `DescribeKey` said of it).
pub fn check(in_use: Option<&str>, key: Option<&KeyState>) -> Check {
    match (in_use, key) {
        (None, _) => Check::of(
            Resource::Key,
            Level::Unknown,
            "the activity stream names no key (it is not running)",
        ),
        (Some(id), None) => Check::of(
            Resource::Key,
            Level::Fail,
            format!("{id} does not exist: RDS cannot encrypt the activity stream"),
        ),
        (Some(_), Some(k)) if !k.enabled() => Check::of(
            Resource::Key,
            Level::Fail,
            format!(
                "{} is {}: RDS cannot encrypt the activity stream, nor the processor decrypt it",
                k.arn,
                k.state_name()
            ),
        ),
        (Some(_), Some(k)) => Check::of(Resource::Key, Level::Ok, format!("{}: Enabled", k.arn)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    fn describe_answer(arn: &str, state: &str) -> Answer {
        Answer::json(
            200,
            &format!(
                r#"{{"KeyMetadata":{{"KeyId":"{id}","Arn":"{arn}","KeyState":"{state}","KeyManager":"CUSTOMER","KeySpec":"SYMMETRIC_DEFAULT","Description":"Database activity stream of arn:aws:rds:eu-west-1:111122223333:cluster:db (das-setup)"}}}}"#,
                id = arn.rsplit('/').next().unwrap_or(arn)
            ),
        )
    }

    #[tokio::test]
    async fn a_missing_key_is_none_in_one_call() {
        let fake = FakeAws::new(|call| match call.operation.as_str() {
            "TrentService.DescribeKey" => {
                Answer::error_json(400, "NotFoundException", "Alias not found")
            }
            _ => Answer::unexpected(),
        });
        let key = observe(&fake.clients(), "alias/x").await;
        assert!(matches!(key, Ok(None)), "{key:?}");
        assert_eq!(fake.operations(), ["TrentService.DescribeKey"]);
    }

    #[tokio::test]
    async fn an_access_denied_is_an_error_not_an_absence() {
        let fake = FakeAws::new(|_| Answer::error_json(400, "AccessDeniedException", "no"));
        let Err(e) = observe(&fake.clients(), "alias/x").await else {
            panic!("access denied must be an error");
        };
        assert!(e.is_access_denied(), "{e}");
    }

    #[tokio::test]
    async fn a_key_without_an_arn_is_an_error() {
        let fake = FakeAws::new(|_| Answer::json(200, r#"{"KeyMetadata":{"KeyId":"k"}}"#));
        let e = observe(&fake.clients(), "k").await;
        assert!(
            matches!(&e, Err(e) if e.message.contains("KeyMetadata.Arn")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn the_orphan_is_found_by_tags_in_a_bounded_number_of_calls() {
        let lost = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd";
        let fake = FakeAws::new(move |call| match call.operation.as_str() {
            "ResourceGroupsTaggingAPI_20170126.GetResources" => Answer::json(
                200,
                &format!(
                    r#"{{"ResourceTagMappingList":[{{"ResourceARN":"{lost}"}}],"PaginationToken":""}}"#
                ),
            ),
            "TrentService.DescribeKey" => describe_answer(lost, "Enabled"),
            _ => Answer::unexpected(),
        });
        let target = TargetRef::parse(crate::naming::TargetKind::Cluster, "db").unwrap();
        let key = orphan(
            &fake.clients(),
            &target,
            "arn:aws:rds:eu-west-1:111122223333:cluster:db",
        )
        .await;
        assert_eq!(key.ok().flatten().map(|k| k.arn).as_deref(), Some(lost));
        let calls = fake.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        let filters = &calls[0].body;
        assert!(
            filters.contains(r#""ResourceTypeFilters":["kms:key"]"#),
            "{filters}"
        );
        assert!(
            filters.contains(TAG_MANAGED_BY) && filters.contains(TAG_CLUSTER),
            "{filters}"
        );
    }

    #[tokio::test]
    async fn a_throttled_lookup_stops_instead_of_skipping() {
        // Regression: errors were dropped key by key, so a throttled call made `up` create a
        // second key.
        let fake = FakeAws::new(|call| match call.operation.as_str() {
            "ResourceGroupsTaggingAPI_20170126.GetResources" => {
                Answer::error_json(400, "ThrottledException", "Rate exceeded")
            }
            _ => Answer::unexpected(),
        });
        let target = TargetRef::parse(crate::naming::TargetKind::Cluster, "db").unwrap();
        let e = orphan(
            &fake.clients(),
            &target,
            "arn:aws:rds:eu-west-1:1:cluster:db",
        )
        .await;
        assert!(
            matches!(&e, Err(e) if e.kind == crate::aws::ErrorKind::Throttling),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn delete_schedules_and_counts_missing_as_done() {
        let fake = FakeAws::new(|call| match call.operation.as_str() {
            "TrentService.DeleteAlias" => Answer::error_json(400, "NotFoundException", "gone"),
            "TrentService.ScheduleKeyDeletion" => Answer::json(200, r#"{"KeyId":"k"}"#),
            _ => Answer::unexpected(),
        });
        let key = KeyState {
            arn: "arn:aws:kms:eu-west-1:1:key/k".into(),
            id: "k".into(),
            state: Some(SdkKeyState::Enabled),
            manager: Some(KeyManagerType::Customer),
            spec: None,
            description: None,
        };
        let result = delete(&fake.clients(), "alias/das-setup/db", &key).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            fake.operations(),
            [
                "TrentService.DeleteAlias",
                "TrentService.ScheduleKeyDeletion"
            ]
        );
        assert!(fake.calls()[1].body.contains(r#""PendingWindowInDays":7"#));
    }

    #[tokio::test]
    async fn create_makes_the_key_then_its_alias_and_refuses_a_foreign_alias() {
        let mut d = crate::desired::tests::desired_started();
        d.key_pending = true;
        let plan = compare(&d);
        assert_eq!(plan.changes, [KeyChange::Create]);
        let made = "arn:aws:kms:eu-west-1:123456789012:key/new";
        let fake = FakeAws::new(move |c| match c.operation.as_str() {
            "TrentService.CreateKey" => describe_answer(made, "Enabled"),
            "TrentService.CreateAlias" => Answer::json(200, "{}"),
            _ => Answer::unexpected(),
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let ctx = Ctx::new(&clients, &progress);
        let created = apply(&ctx, &d, &plan).await;
        assert_eq!(created.ok().flatten().as_deref(), Some(made));
        assert_eq!(
            fake.operations(),
            ["TrentService.CreateKey", "TrentService.CreateAlias"]
        );
        let create = &fake.calls()[0].body;
        assert!(
            create.contains(&d.database.arn) && create.contains(TAG_MANAGED_BY),
            "{create}"
        );
        // Regression (lockout safety check): no key policy is sent, so KMS's default applies and
        // the caller needs no kms:PutKeyPolicy.
        assert!(!create.contains(r#""Policy""#), "{create}");
        assert!(fake.calls()[1].body.contains(made));
        assert_eq!(ctx.mutations(), 2);

        // The alias exists already. For this key (made a moment ago: aliases are eventually
        // consistent): done. For another key: refused, naming the way out.
        d.key_pending = false;
        d.key_alias_missing = true;
        for (target, ok) in [
            (d.key_arn.clone(), true),
            (
                "arn:aws:kms:eu-west-1:123456789012:key/other".to_owned(),
                false,
            ),
        ] {
            let fake = FakeAws::new(move |c| match c.operation.as_str() {
                "TrentService.CreateAlias" => {
                    Answer::error_json(400, "AlreadyExistsException", "exists")
                }
                "TrentService.DescribeKey" => describe_answer(&target, "Enabled"),
                _ => Answer::unexpected(),
            });
            let clients = fake.clients();
            let ctx = Ctx::new(&clients, &progress);
            let result = apply(&ctx, &d, &compare(&d)).await;
            if ok {
                assert!(matches!(result, Ok(None)), "{result:?}");
            } else {
                assert!(
                    matches!(&result, Err(e) if e.to_string().contains("--kms-key")),
                    "{result:?}"
                );
            }
            assert_eq!(
                fake.operations(),
                ["TrentService.CreateAlias", "TrentService.DescribeKey"]
            );
        }

        // Nothing to do: nothing sent.
        d.key_alias_missing = false;
        let silent = FakeAws::silent();
        let clients = silent.clients();
        assert!(matches!(
            apply(&Ctx::new(&clients, &progress), &d, &compare(&d)).await,
            Ok(None)
        ));
        assert!(silent.calls().is_empty());
    }

    #[test]
    fn down_keeps_keys_unless_asked_and_ours() {
        let key = KeyState {
            arn: "a".into(),
            id: "k".into(),
            state: Some(SdkKeyState::Enabled),
            manager: Some(KeyManagerType::Customer),
            spec: None,
            description: None,
        };
        assert!(matches!(verdict(Some(&key), None, false), Verdict::Keep(_)));
        assert!(matches!(
            verdict(Some(&key), Some(&BTreeMap::new()), true),
            Verdict::Keep(_)
        ));
        let ours: BTreeMap<_, _> =
            [(TAG_MANAGED_BY.to_owned(), TAG_MANAGED_BY_VALUE.to_owned())].into();
        assert_eq!(verdict(Some(&key), Some(&ours), true), Verdict::Delete);
        let pending = KeyState {
            state: Some(SdkKeyState::PendingDeletion),
            ..key
        };
        assert_eq!(verdict(Some(&pending), Some(&ours), true), Verdict::Absent);
    }
}
