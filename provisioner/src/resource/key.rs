//! das-setup's KMS keys ([`KeyPurpose`]): the one the activity stream encrypts with
//! (`--kms-key`, or one das-setup creates: alias `alias/das-setup/<target>`, symmetric), and the
//! one the processor signs its integrity digests with (always das-setup's: alias
//! `alias/das-setup/digests/<target>`, ECC_NIST_P384 for SIGN_VERIFY). Both are tagged, their
//! descriptions naming the database's ARN.
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
pub use crate::desired::KeyPurpose;
use crate::desired::{Desired, KeyRef};
use crate::naming::{Names, TAG_CLUSTER, TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE, TargetRef};

impl KeyPurpose {
    pub fn resource(self) -> Resource {
        match self {
            KeyPurpose::Stream => Resource::Key,
            KeyPurpose::Digests => Resource::SigningKey,
        }
    }

    pub fn alias(self, names: &Names) -> &str {
        match self {
            KeyPurpose::Stream => &names.key_alias,
            KeyPurpose::Digests => &names.digest_key_alias,
        }
    }

    pub fn spec(self) -> KeySpec {
        match self {
            KeyPurpose::Stream => KeySpec::SymmetricDefault,
            KeyPurpose::Digests => KeySpec::EccNistP384,
        }
    }

    pub fn usage(self) -> KeyUsageType {
        match self {
            KeyPurpose::Stream => KeyUsageType::EncryptDecrypt,
            KeyPurpose::Digests => KeyUsageType::SignVerify,
        }
    }

    /// The key's description: what it is for, and the database's ARN (how [`orphan`] knows it).
    pub fn description(self, database_arn: &str) -> String {
        match self {
            KeyPurpose::Stream => format!("Database activity stream of {database_arn} (das-setup)"),
            KeyPurpose::Digests => format!(
                "Signs the integrity digests of the activity stream of {database_arn} (das-setup)"
            ),
        }
    }
}

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
    pub usage: Option<KeyUsageType>,
    pub description: Option<String>,
    /// When the key was created (ms since the epoch).
    pub created_millis: Option<i64>,
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

    /// Enabled, customer managed, and of the spec and usage `purpose` needs.
    pub fn usable_for(&self, purpose: KeyPurpose) -> bool {
        match purpose {
            KeyPurpose::Stream => self.usable_for_streams(),
            KeyPurpose::Digests => {
                self.manager == Some(KeyManagerType::Customer)
                    && self.spec == Some(purpose.spec())
                    && self.usage == Some(purpose.usage())
            }
        }
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
        usage: meta.key_usage().cloned(),
        description: meta.description().map(str::to_owned),
        created_millis: meta.creation_date().and_then(|t| t.to_millis().ok()),
    }))
}

/// The key das-setup created for this database and purpose whose alias is missing: tagged as
/// das-setup's for this target (found with one `tag:GetResources` listing, a page per 100
/// matches), enabled, of the purpose's spec, and its description naming the database's ARN.
pub async fn orphan(
    clients: &Clients,
    target: &TargetRef,
    database_arn: &str,
    purpose: KeyPurpose,
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
                && key.spec == Some(purpose.spec())
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

/// The key's changes: created when it is still pending, its alias when an interrupted run
/// created the key only.
pub fn compare(d: &Desired, purpose: KeyPurpose) -> Planned<KeyChange> {
    let KeyRef {
        arn,
        pending,
        alias_missing,
    } = d.key_of(purpose);
    let (name, changes) = if *pending {
        (purpose.alias(&d.names).to_owned(), vec![KeyChange::Create])
    } else if *alias_missing {
        (arn.clone(), vec![KeyChange::Alias])
    } else {
        (arn.clone(), vec![])
    };
    Planned::new(name, changes)
}

/// Carries out the plan; returns the ARN of a key it created.
pub async fn apply(
    ctx: &Ctx<'_>,
    d: &Desired,
    purpose: KeyPurpose,
    plan: &Planned<KeyChange>,
) -> Res<Option<String>> {
    let mut created = None;
    for change in &plan.changes {
        match change {
            KeyChange::Alias => create_alias(ctx, d, purpose, &d.key_of(purpose).arn).await?,
            KeyChange::Create => created = Some(create(ctx, d, purpose).await?),
        }
    }
    Ok(created)
}

async fn create(ctx: &Ctx<'_>, d: &Desired, purpose: KeyPurpose) -> Res<String> {
    let alias = purpose.alias(&d.names);
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
        .description(purpose.description(&d.database.arn))
        .key_usage(purpose.usage())
        .key_spec(purpose.spec())
        .set_tags(Some(tags))
        .send()
        .await
        .named("kms:CreateKey", alias)?;
    let meta = required(key.key_metadata, "kms:CreateKey", alias, "KeyMetadata")?;
    let arn = required_str(meta.arn(), "kms:CreateKey", alias, "KeyMetadata.Arn")?;
    create_alias(ctx, d, purpose, &arn).await?;
    step.done(&format!("created KMS key {alias} ({arn})"));
    Ok(arn)
}

/// How long an alias that `CreateAlias` says exists may stay invisible to `DescribeKey`.
pub const ALIAS_VISIBLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5 * 60);

async fn create_alias(ctx: &Ctx<'_>, d: &Desired, purpose: KeyPurpose, key_arn: &str) -> Res {
    let alias = purpose.alias(&d.names);
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
                "it exists already and points to {}, not {key_arn}; delete it (aws kms delete-alias){}",
                target.map_or_else(
                    || "a key this principal cannot describe".to_owned(),
                    |k| k.arn
                ),
                match purpose {
                    KeyPurpose::Stream => " or pass --kms-key",
                    KeyPurpose::Digests => "",
                }
            ),
        });
    }
    result.named("kms:CreateAlias", alias)?;
    Ok(())
}

/// `down`: only a key das-setup tagged, only when asked (`delete`): the activity stream's key
/// with `--delete-key`; the signing key with the bucket whose digests it signed
/// (`--delete-bucket`), kept otherwise so that the kept digests stay verifiable.
pub fn verdict(
    purpose: KeyPurpose,
    key: Option<&KeyState>,
    tags: Option<&BTreeMap<String, String>>,
    delete: bool,
) -> Verdict {
    match key {
        None => Verdict::Absent,
        Some(k) if k.pending_deletion() => Verdict::Absent,
        Some(_) if !delete => Verdict::Keep(match purpose {
            KeyPurpose::Stream => "only the activity stream used it (stored events are encrypted by S3); --delete-key schedules its deletion".into(),
            KeyPurpose::Digests => "it signed the digests of the kept events (das-setup verify checks them with its public key); --delete-bucket schedules its deletion".into(),
        }),
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

/// `status`: the signing key behind `alias` exists, is enabled and of the right kind, and is
/// the one the function signs with (`signs_with`: its `DAS_DIGEST_KEY`, when it exists).
pub fn digest_check(alias: &str, key: Option<&KeyState>, signs_with: Option<&str>) -> Check {
    let of = |level, detail: String| Check::of(Resource::SigningKey, level, detail);
    let Some(k) = key else {
        return of(
            Level::Warn,
            format!(
                "{alias} does not exist: the digests are not signed (das-setup up creates the key)"
            ),
        );
    };
    if !k.enabled() {
        return of(
            Level::Fail,
            format!(
                "{} is {}: the processor cannot sign its digests, so every invocation fails",
                k.arn,
                k.state_name()
            ),
        );
    }
    if !k.usable_for(KeyPurpose::Digests) {
        return of(
            Level::Fail,
            format!(
                "{} is not a customer-managed ECC_NIST_P384 SIGN_VERIFY key: the processor cannot sign with it",
                k.arn
            ),
        );
    }
    match signs_with {
        Some(used) if used != k.arn && used != k.id => of(
            Level::Warn,
            format!(
                "the function signs with {used}, not {} ({alias}): das-setup verify finds those signatures invalid; das-setup up sets it back",
                k.arn
            ),
        ),
        _ => of(Level::Ok, format!("{}: Enabled, ECC_NIST_P384", k.arn)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    fn signing_key(state: SdkKeyState) -> KeyState {
        KeyState {
            arn: "arn:aws:kms:eu-west-1:1:key/d".into(),
            id: "d".into(),
            state: Some(state),
            manager: Some(KeyManagerType::Customer),
            spec: Some(KeySpec::EccNistP384),
            usage: Some(KeyUsageType::SignVerify),
            description: None,
            created_millis: None,
        }
    }

    #[test]
    fn the_signing_key_is_kept_with_the_bucket_and_goes_with_it() {
        let key = signing_key(SdkKeyState::Enabled);
        let ours: BTreeMap<_, _> =
            [(TAG_MANAGED_BY.to_owned(), TAG_MANAGED_BY_VALUE.to_owned())].into();
        assert!(matches!(
            verdict(KeyPurpose::Digests, Some(&key), Some(&ours), false),
            Verdict::Keep(why) if why.contains("--delete-bucket")
        ));
        assert_eq!(
            verdict(KeyPurpose::Digests, Some(&key), Some(&ours), true),
            Verdict::Delete
        );
        assert!(matches!(
            verdict(
                KeyPurpose::Digests,
                Some(&key),
                Some(&BTreeMap::new()),
                true
            ),
            Verdict::Keep(_)
        ));
        let pending = signing_key(SdkKeyState::PendingDeletion);
        assert_eq!(
            verdict(KeyPurpose::Digests, Some(&pending), Some(&ours), true),
            Verdict::Absent
        );
        assert_eq!(
            verdict(KeyPurpose::Digests, None, None, true),
            Verdict::Absent
        );
    }

    #[test]
    fn the_signing_key_check_names_what_is_wrong() {
        let alias = "alias/das-setup/digests/db";
        let ok = signing_key(SdkKeyState::Enabled);
        let level = |key: Option<&KeyState>, used: Option<&str>| {
            let c = digest_check(alias, key, used);
            assert_eq!(c.name, "signing-key");
            (c.level, c.detail)
        };
        assert_eq!(level(Some(&ok), Some(&ok.arn)).0, Level::Ok);
        assert_eq!(level(Some(&ok), None).0, Level::Ok);
        let (l, why) = level(Some(&ok), Some("arn:aws:kms:eu-west-1:1:key/other"));
        assert_eq!(l, Level::Warn);
        assert!(why.contains("key/other"), "{why}");
        let (l, why) = level(None, None);
        assert_eq!(l, Level::Warn);
        assert!(why.contains(alias) && why.contains("not signed"), "{why}");
        let (l, why) = level(Some(&signing_key(SdkKeyState::Disabled)), None);
        assert_eq!(l, Level::Fail);
        assert!(why.contains("Disabled"), "{why}");
        let symmetric = KeyState {
            spec: Some(KeySpec::SymmetricDefault),
            usage: Some(KeyUsageType::EncryptDecrypt),
            ..ok
        };
        assert_eq!(level(Some(&symmetric), None).0, Level::Fail);
    }

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
            KeyPurpose::Stream,
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
            KeyPurpose::Stream,
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
            usage: None,
            description: None,
            created_millis: None,
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
        d.key.pending = true;
        let plan = compare(&d, KeyPurpose::Stream);
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
        let created = apply(&ctx, &d, KeyPurpose::Stream, &plan).await;
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
        d.key.pending = false;
        d.key.alias_missing = true;
        for (target, ok) in [
            (d.key.arn.clone(), true),
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
            let result = apply(
                &ctx,
                &d,
                KeyPurpose::Stream,
                &compare(&d, KeyPurpose::Stream),
            )
            .await;
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
        d.key.alias_missing = false;
        let silent = FakeAws::silent();
        let clients = silent.clients();
        assert!(matches!(
            apply(
                &Ctx::new(&clients, &progress),
                &d,
                KeyPurpose::Stream,
                &compare(&d, KeyPurpose::Stream)
            )
            .await,
            Ok(None)
        ));
        assert!(silent.calls().is_empty());
    }

    #[tokio::test]
    async fn the_signing_key_is_an_ecc_p384_signing_key_under_its_own_alias() {
        let mut d = crate::desired::tests::desired_started();
        d.digest_key.pending = true;
        let plan = compare(&d, KeyPurpose::Digests);
        assert_eq!(plan.changes, [KeyChange::Create]);
        assert_eq!(plan.name, "alias/das-setup/digests/demo");
        let made = "arn:aws:kms:eu-west-1:123456789012:key/signing";
        let fake = FakeAws::new(move |c| match c.operation.as_str() {
            "TrentService.CreateKey" => describe_answer(made, "Enabled"),
            "TrentService.CreateAlias" => Answer::json(200, "{}"),
            _ => Answer::unexpected(),
        });
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        let created = apply(
            &Ctx::new(&clients, &progress),
            &d,
            KeyPurpose::Digests,
            &plan,
        )
        .await;
        assert_eq!(created.ok().flatten().as_deref(), Some(made));
        let calls = fake.calls();
        let create: serde_json::Value = serde_json::from_str(&calls[0].body).unwrap();
        assert_eq!(create["KeySpec"], "ECC_NIST_P384");
        assert_eq!(create["KeyUsage"], "SIGN_VERIFY");
        assert!(
            create["Description"]
                .as_str()
                .is_some_and(|t| t.contains(&d.database.arn) && t.contains("digests")),
            "{create}"
        );
        assert!(
            calls[1]
                .body
                .contains(r#""AliasName":"alias/das-setup/digests/demo""#),
            "{}",
            calls[1].body
        );
    }

    #[tokio::test]
    async fn an_orphan_of_the_other_purpose_is_not_taken() {
        // Both keys of a database name its ARN: the spec tells them apart, or `up` would give
        // the activity stream the signing key (or sign with the stream's key).
        let db = "arn:aws:rds:eu-west-1:111122223333:cluster:db";
        let signing = "arn:aws:kms:eu-west-1:111122223333:key/signing";
        let fake = FakeAws::new(move |call| match call.operation.as_str() {
            "ResourceGroupsTaggingAPI_20170126.GetResources" => Answer::json(
                200,
                &format!(
                    r#"{{"ResourceTagMappingList":[{{"ResourceARN":"{signing}"}}],"PaginationToken":""}}"#
                ),
            ),
            "TrentService.DescribeKey" => Answer::json(
                200,
                &format!(
                    r#"{{"KeyMetadata":{{"KeyId":"signing","Arn":"{signing}","KeyState":"Enabled","KeyManager":"CUSTOMER","KeySpec":"ECC_NIST_P384","KeyUsage":"SIGN_VERIFY","Description":"{}"}}}}"#,
                    KeyPurpose::Digests.description(db)
                ),
            ),
            _ => Answer::unexpected(),
        });
        let target = TargetRef::parse(crate::naming::TargetKind::Cluster, "db").unwrap();
        let stream = orphan(&fake.clients(), &target, db, KeyPurpose::Stream).await;
        assert!(matches!(stream, Ok(None)), "{stream:?}");
        let digests = orphan(&fake.clients(), &target, db, KeyPurpose::Digests).await;
        assert_eq!(
            digests.ok().flatten().map(|k| k.arn).as_deref(),
            Some(signing)
        );
    }

    #[test]
    fn down_keeps_keys_unless_asked_and_ours() {
        let key = KeyState {
            arn: "a".into(),
            id: "k".into(),
            state: Some(SdkKeyState::Enabled),
            manager: Some(KeyManagerType::Customer),
            spec: None,
            usage: None,
            description: None,
            created_millis: None,
        };
        assert!(matches!(
            verdict(KeyPurpose::Stream, Some(&key), None, false),
            Verdict::Keep(_)
        ));
        assert!(matches!(
            verdict(KeyPurpose::Stream, Some(&key), Some(&BTreeMap::new()), true),
            Verdict::Keep(_)
        ));
        let ours: BTreeMap<_, _> =
            [(TAG_MANAGED_BY.to_owned(), TAG_MANAGED_BY_VALUE.to_owned())].into();
        assert_eq!(
            verdict(KeyPurpose::Stream, Some(&key), Some(&ours), true),
            Verdict::Delete
        );
        let pending = KeyState {
            state: Some(SdkKeyState::PendingDeletion),
            ..key
        };
        assert_eq!(
            verdict(KeyPurpose::Stream, Some(&pending), Some(&ours), true),
            Verdict::Absent
        );
    }
}
