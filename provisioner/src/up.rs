//! `das-setup up`: check everything that can be checked before changing anything, observe,
//! plan, print the plan, then apply it.
//!
//! Exit codes: 0 done (or nothing to do, or a dry run); 1 failed while applying (some changes
//! may have been made: running `up` again converges); 2 refused before any change (bad flags,
//! unknown database, engine or mode not supported, KMS key not usable, bucket name taken,
//! a missing permission to read, no confirmation); 130 interrupted.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::aws::Clients;
use crate::cli::{GlobalArgs, OutputFormat, UpArgs};
use crate::database::Database;
use crate::desired::{Desired, Identity};
use crate::naming::Names;
use crate::package;
use crate::plan::{self, Plan};
use crate::progress::{Progress, seconds};
use crate::resource::ApplyError;
use crate::resource::bucket::BucketState;
use crate::resource::key::{self, KeyPurpose, KeyState};
use crate::session::{self, Refusal, confirm, emit_json, kind_word, refuse};
use crate::settings::{KeyChoice, UpSettings};
use crate::{deployment, engine};

pub use crate::session::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED};

/// Everything decided before the plan.
struct Prepared {
    identity: Identity,
    database: Database,
    desired: Desired,
    zip: Vec<u8>,
}

/// `--dry-run --detailed-exitcode`: changes are pending.
pub const EXIT_CHANGES_PENDING: u8 = 2;

pub async fn run(global: &GlobalArgs, args: &UpArgs) -> u8 {
    let pending = AtomicBool::new(false);
    let code = apply(global, args, &pending).await;
    if !args.detailed_exitcode {
        return code;
    }
    let pending = pending.load(Ordering::Relaxed);
    // As `terraform plan -detailed-exitcode`: 0 nothing to change, 2 changes pending, 1 any
    // error (a refusal included).
    match code {
        EXIT_OK if pending => EXIT_CHANGES_PENDING,
        EXIT_OK | EXIT_INTERRUPTED => code,
        _ => EXIT_FAILED,
    }
}

/// Plans, prints, and (unless a dry run) applies; `pending` is set when the plan has changes.
async fn apply(global: &GlobalArgs, args: &UpArgs, pending: &AtomicBool) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let progress = Progress::new(false);
    let settings = match UpSettings::from_args(args) {
        Ok(s) => s,
        Err(e) => return report_refusal(json_out, &progress, &refuse(e.to_string())),
    };
    let clients = Clients::load(global).await;
    let prepared = match prepare(&clients, &settings, &progress).await {
        Ok(p) => p,
        Err(e) => return report_refusal(json_out, &progress, &e),
    };
    let Prepared {
        identity,
        database,
        mut desired,
        zip,
    } = prepared;

    let step = progress.begin("reading the current state", false);
    let observed = match deployment::observe(&clients, &desired.names, Some(&desired.bucket)).await
    {
        Ok(o) => o,
        Err(e) => return report_refusal(json_out, &progress, &Refusal::Aws(e)),
    };
    drop(step);
    if observed.bucket == BucketState::Foreign {
        return report_refusal(
            json_out,
            &progress,
            &refuse(format!(
                "bucket {} exists and this account may not use it (another account owns the name, or a bucket policy denies you); choose another with --bucket",
                desired.bucket
            )),
        );
    }
    if let Some(why) = crate::resource::bucket::unwritable(&observed.bucket) {
        return report_refusal(
            json_out,
            &progress,
            &refuse(format!("bucket {}: {why}", desired.bucket)),
        );
    }
    if let Err(e) = signing_key(&clients, &settings, &database, &observed, &mut desired).await {
        return report_refusal(json_out, &progress, &e);
    }
    if desired.delivery.raw.is_none()
        && crate::resource::delivery_stream::raw_found(observed.delivery.as_ref())
    {
        desired.delivery.raw = Some(crate::desired::RawBackupSpec::new(true));
    }
    let plan = plan::diff(&desired, &observed);
    let header = format!(
        "das-setup up: {} {} ({}, {}) in {}, account {}",
        kind_word(database.kind),
        database.id,
        database.engine,
        database.resource_id,
        identity.region,
        identity.account
    );
    let changed = plan.changed();
    pending.store(changed > 0, Ordering::Relaxed);

    if !json_out {
        crate::outln!("{header}\n{}", plan::to_text(&plan));
    }
    if settings.dry_run || changed == 0 {
        if !json_out {
            crate::outln!(
                "{}",
                if settings.dry_run {
                    "Dry run: nothing was changed."
                } else {
                    "Nothing to change."
                }
            );
        }
        progress.finish();
        emit_json(
            json_out,
            &document(&desired, &plan, settings.dry_run, false, 0, &progress, &[]),
        );
        return EXIT_OK;
    }
    if !settings.yes {
        let mut question = format!("Apply these changes to {changed} resource(s)?");
        if !plan.stream.changes.is_empty() {
            let warnings = crate::resource::activity_stream::warnings(&database);
            question = format!("Note: {}. {question}", warnings.join("; "));
        }
        match confirm(&question) {
            Ok(true) => {}
            Ok(false) => {
                progress.finish();
                crate::errln!("das-setup up: not confirmed; nothing was changed");
                emit_json(
                    json_out,
                    &json!({"command": "up", "applied": false, "error": "not confirmed"}),
                );
                return EXIT_REFUSED;
            }
            Err(e) => return report_refusal(json_out, &progress, &e),
        }
    }

    let (report, errors) =
        engine::apply(&clients, &desired, &plan, &observed, &zip, &progress).await;
    progress.finish();
    if let Some(arn) = &report.created_signing_key {
        // For the report: the plan's stand-in is now a key.
        desired.digest_key.arn.clone_from(arn);
        desired.digest_key.pending = false;
    }
    let doc = document(
        &desired,
        &plan,
        false,
        errors.is_empty(),
        report.mutating_calls,
        &progress,
        &errors,
    );
    emit_json(json_out, &doc);
    if errors.is_empty() {
        if !json_out {
            crate::outln!(
                "Done in {}: the activity stream of {} {} is delivered to s3://{}/{} by {}.",
                seconds(progress.elapsed()),
                kind_word(database.kind),
                database.id,
                desired.bucket,
                desired.prefix,
                desired.names.delivery_stream
            );
        }
        EXIT_OK
    } else {
        crate::errln!("das-setup up: {} step(s) failed:", errors.len());
        for e in &errors {
            crate::errln!("  - {e}");
        }
        crate::errln!(
            "What succeeded stays in place; run `das-setup up` again with the same flags to finish."
        );
        EXIT_FAILED
    }
}

async fn prepare(
    clients: &Clients,
    settings: &UpSettings,
    progress: &Progress,
) -> Result<Prepared, Refusal> {
    let target = &settings.target;
    let step = progress.begin("checking the database and the key", false);
    let (identity, database) = session::resolve(clients, target).await?;
    let database = database.ok_or_else(|| {
        refuse(format!(
            "no DB {} named {:?} in {} (account {}); check --{} and --region",
            kind_word(target.kind),
            target.id,
            identity.region,
            identity.account,
            kind_word(target.kind)
        ))
    })?;
    let support_notes = crate::preflight::check(clients, &database, settings.mode).await?;
    if settings.alerts.as_ref().is_some_and(|a| a.security_hub) {
        security_hub_enabled(clients, &database).await?;
    }
    let key = resolve_key(clients, settings, &database, &identity).await?;
    drop(step);

    let zip = processor_zip(settings, progress)?;
    let code_sha256 = package::code_sha256(&zip);
    let (key_arn, alias_missing) = match key {
        KeyFound::Ready(arn) => (Some(arn), false),
        KeyFound::AliasMissing(arn) => (Some(arn), true),
        KeyFound::ToCreate => (None, false),
    };
    let mut desired = Desired::new(
        settings,
        &identity,
        &database,
        key_arn.as_deref(),
        &code_sha256,
    )
    .map_err(|e| refuse(e.to_string()))?;
    desired.key.alias_missing = alias_missing;
    desired.support_notes = support_notes;
    Ok(Prepared {
        identity,
        database,
        desired,
        zip,
    })
}

/// `--security-hub`: findings can be imported only where Security Hub is enabled; otherwise
/// every batch with a high or critical alert would fail. Refused before any change.
async fn security_hub_enabled(clients: &Clients, database: &Database) -> Result<(), Refusal> {
    use das_processor::finding::HubTarget;
    use das_processor::securityhub::SecurityHub;
    let target = HubTarget::from_database_arn(&database.arn).ok_or_else(|| {
        refuse(format!(
            "--security-hub: {} is not an RDS ARN Security Hub findings can name",
            database.arn
        ))
    })?;
    let region = target.region.clone();
    match SecurityHub::new(&clients.config, target).enabled().await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refuse(format!(
            "--security-hub: AWS Security Hub is not enabled in {region} for this account;              enable it (aws securityhub enable-security-hub) or leave out --security-hub"
        ))),
        Err(e) => Err(refuse(format!(
            "--security-hub: cannot tell whether AWS Security Hub is enabled in {region}              (securityhub:DescribeHub): {e}"
        ))),
    }
}

/// Where the activity stream's key stands.
enum KeyFound {
    Ready(String),
    /// das-setup's key, created by an interrupted run that did not get to its alias.
    AliasMissing(String),
    ToCreate,
}

async fn resolve_key(
    clients: &Clients,
    settings: &UpSettings,
    db: &Database,
    identity: &Identity,
) -> Result<KeyFound, Refusal> {
    let usable = |key: &KeyState, named: &str| -> Result<(), Refusal> {
        if !key.enabled() {
            return Err(refuse(format!(
                "KMS key {named} is {} (it must be Enabled)",
                key.state_name()
            )));
        }
        if !key.usable_for_streams() {
            return Err(refuse(format!(
                "KMS key {named} must be a symmetric customer-managed key (activity streams refuse AWS-managed and asymmetric keys)"
            )));
        }
        Ok(())
    };
    let describe = |name: String| async move {
        match key::observe(clients, &name).await {
            Ok(Some(k)) => Ok(Some(k)),
            Ok(None) => Ok(None),
            Err(e) if e.is_access_denied() => Err(refuse(format!(
                "KMS key {name} is not accessible to this principal ({e}); the deploying principal needs kms:DescribeKey and kms:CreateGrant on it"
            ))),
            Err(e) => Err(Refusal::Aws(e)),
        }
    };
    // A stream that runs already has its key: the processor must be allowed that one.
    if db.stream.running()
        && let Some(in_use) = &db.stream.kms_key
    {
        let key = describe(in_use.clone()).await?.ok_or_else(|| {
            refuse(format!(
                "the activity stream's KMS key {in_use} cannot be found"
            ))
        })?;
        if let KeyChoice::Existing(asked) = &settings.key {
            let wanted = describe(asked.clone()).await?;
            if wanted.as_ref().map(|k| &k.arn) != Some(&key.arn) {
                return Err(refuse(format!(
                    "the activity stream of {} {} already uses KMS key {}; --kms-key {asked} differs (stop the stream with das-setup down to change keys)",
                    kind_word(db.kind),
                    db.id,
                    key.arn
                )));
            }
        }
        return Ok(KeyFound::Ready(key.arn));
    }
    match &settings.key {
        KeyChoice::Existing(name) => {
            let key = describe(name.clone()).await?.ok_or_else(|| {
                refuse(format!("KMS key {name} not found in {}", identity.region))
            })?;
            usable(&key, name)?;
            Ok(KeyFound::Ready(key.arn))
        }
        KeyChoice::Create => {
            let alias = Names::new(&settings.target, &identity.account, &identity.region).key_alias;
            match describe(alias.clone()).await? {
                Some(key) => {
                    usable(&key, &alias)?;
                    Ok(KeyFound::Ready(key.arn))
                }
                None => match key::orphan(clients, &settings.target, &db.arn, KeyPurpose::Stream)
                    .await?
                {
                    Some(key) => Ok(KeyFound::AliasMissing(key.arn)),
                    None => Ok(KeyFound::ToCreate),
                },
            }
        }
    }
}

/// The signing key: the one behind das-setup's alias, else the one an interrupted `up` made
/// without its alias, else none yet (the plan creates it). One found that cannot sign is refused
/// before any change, saying how to get out.
async fn signing_key(
    clients: &Clients,
    settings: &UpSettings,
    db: &Database,
    observed: &deployment::Deployment,
    desired: &mut Desired,
) -> Result<(), Refusal> {
    let alias = desired.names.digest_key_alias.clone();
    let (found, alias_missing) = match &observed.signing_key {
        Some(k) => (Some(k.clone()), false),
        None => (
            key::orphan(clients, &settings.target, &db.arn, KeyPurpose::Digests).await?,
            true,
        ),
    };
    let Some(k) = found else {
        return Ok(());
    };
    if !k.enabled() {
        let way_out = if k.pending_deletion() {
            "cancel its deletion (aws kms cancel-key-deletion, then aws kms enable-key)"
        } else {
            "enable it (aws kms enable-key)"
        };
        return Err(refuse(format!(
            "the signing key {alias} ({}) is {}: {way_out}, or delete the alias (aws kms delete-alias) to let up create a new key",
            k.arn,
            k.state_name()
        )));
    }
    if !k.usable_for(KeyPurpose::Digests) {
        return Err(refuse(format!(
            "{alias} names {}, which is not a customer-managed ECC_NIST_P384 SIGN_VERIFY key; delete the alias (aws kms delete-alias) to let up create one",
            k.arn
        )));
    }
    desired
        .set_key(KeyPurpose::Digests, &k.arn, alias_missing)
        .map_err(|e| refuse(e.to_string()))
}

/// The processor zip: `--lambda-zip`, else the one this das-setup carries, else built from the
/// source tree this binary came from (`package::processor_zip`).
fn processor_zip(settings: &UpSettings, progress: &Progress) -> Result<Vec<u8>, Refusal> {
    let zip = match &settings.lambda_zip {
        Some(path) => std::fs::read(path)
            .map_err(|e| refuse(format!("--lambda-zip {}: {e}", path.display())))?,
        None => {
            package::processor_zip(settings.arch, false, progress)
                .map_err(|e| refuse(e.to_string()))?
                .0
        }
    };
    let what = settings.lambda_zip.as_ref().map_or_else(
        || "the processor zip".to_owned(),
        |p| format!("--lambda-zip {}", p.display()),
    );
    package::check_arch(&zip, settings.arch, &what).map_err(refuse)?;
    match &settings.alerts {
        Some(alerts) => package::with_file(
            &zip,
            das_processor::config::ALERT_RULES_FILE,
            alerts.rules_json.as_bytes(),
        )
        .map_err(|e| refuse(format!("{what}: adding the alert rules: {e}"))),
        None => Ok(zip),
    }
}

fn document(
    d: &Desired,
    plan: &Plan,
    dry_run: bool,
    applied: bool,
    mutating_calls: usize,
    progress: &Progress,
    errors: &[ApplyError],
) -> Value {
    json!({
        "command": "up",
        "target": {
            "kind": kind_word(d.database.kind),
            "id": d.database.id,
            "arn": d.database.arn,
            "resourceId": d.database.resource_id,
            "engine": d.database.engine,
        },
        "account": d.identity.account,
        "region": d.identity.region,
        "dryRun": dry_run,
        "changes": plan.changed(),
        "plan": plan::to_json(plan, d),
        "applied": applied,
        "mutatingCalls": mutating_calls,
        "elapsedSeconds": (progress.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "bucket": d.bucket,
        "prefix": d.prefix,
        "signingKey": {
            "alias": d.names.digest_key_alias,
            "arn": (!d.digest_key.pending).then_some(&d.digest_key.arn),
        },
        "storage": {
            "retentionDays": {
                "default": d.retention.default,
                "categories": d.retention.categories.iter()
                    .map(|(c, days)| (c.as_str().to_owned(), json!(days)))
                    .collect::<serde_json::Map<_, _>>(),
            },
            "objectLock": d.object_lock.map(|l| json!({"mode": l.mode.as_str(), "days": l.days})),
            "rawArchive": d.delivery.raw.as_ref().map(|r| json!({"prefix": r.prefix, "kept": r.found})),
        },
        "alerts": d.alerts.as_ref().map(|a| json!({
            "topicArn": d.names.alerts_topic_arn,
            "eventBus": crate::settings::ALERT_EVENT_BUS,
            "eventSource": das_processor::notify::EVENT_SOURCE,
            "eventDetailType": das_processor::notify::EVENT_DETAIL_TYPE,
            "rules": a.rule_names,
            "email": a.email,
            "securityHub": a.security_hub.then(|| json!({
                "productArn": das_processor::finding::HubTarget::from_database_arn(&d.database.arn)
                    .map(|t| t.product_arn()),
                "severities": das_processor::finding::SEVERITIES,
            })),
            "alarms": crate::resource::alarms::wanted(d)
                .into_iter()
                .map(|(_, name, _)| name)
                .collect::<Vec<_>>(),
        })),
        "query": {
            "glueDatabase": d.names.glue_database,
            "table": crate::query::table::TABLE,
            "tableLocation": crate::resource::catalog::location(&d.bucket, &d.prefix).0,
            "workgroup": d.names.workgroup,
            "resultsLocation": crate::resource::workgroup::results_location(&d.bucket, &d.database.id),
            "resultsExpireDays": crate::retention::ATHENA_RESULTS_DAYS,
        },
        "errors": errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn report_refusal(json_out: bool, progress: &Progress, e: &Refusal) -> u8 {
    session::refused(
        "up",
        json_out,
        progress,
        e,
        json!({"applied": false, "changes": 0}),
    )
}
