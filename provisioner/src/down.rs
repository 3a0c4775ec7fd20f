//! `das-setup down`: delete what `up` built, in reverse dependency order, from any partial state.
//!
//! Order: the delivery stream first (nothing reads the activity stream or calls the function
//! any more), then at once the function, both roles (inline and attached policies first) and
//! the log groups, and `StopActivityStream` (waited for until `stopped`); then, only if asked,
//! the bucket (every version and delete marker, then the bucket) and the KMS key (scheduled
//! for deletion, only if das-setup created it). The signing key goes only with the bucket
//! (`--delete-bucket`, and only once the bucket is gone): while the events are kept, their
//! digests stay verifiable. Resources that carry a das-setup name but not
//! its `managed-by` tag are left alone and reported. "Not found" counts as done; a failure does
//! not stop the rest; every failure is reported at the end.
//!
//! Exit codes: 0 done or nothing to do; 1 some deletions failed (run `down` again); 2 refused
//! before any change (bad flags, no credentials, a read refused, no `--yes` off a terminal);
//! 130 interrupted.

use serde_json::{Value, json};

use crate::aws::Clients;
use crate::cli::{DownArgs, GlobalArgs, OutputFormat};
use crate::deployment;
use crate::desired::Identity;
use crate::engine::{self, DownError, Teardown};
use crate::naming::{Names, TargetRef};
use crate::progress::{Progress, seconds};
use crate::resource::key::KeyPurpose;
use crate::resource::log_group::LogGroupSpec;
use crate::resource::{
    Resource, Verdict, activity_stream, alarms, bucket, catalog, delivery_stream, function, key,
    log_group, role, topic, workgroup,
};
use crate::session::{
    self, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Refusal, confirm, emit_json, kind_word,
};
use crate::settings::DownSettings;

struct Found {
    identity: Identity,
    teardown: Teardown,
}

pub async fn run(global: &GlobalArgs, args: &DownArgs) -> u8 {
    let json_out = global.output == OutputFormat::Json;
    let progress = Progress::new(false);
    let settings = match DownSettings::from_args(args) {
        Ok(s) => s,
        Err(e) => return refused(json_out, &progress, &e.into()),
    };
    let target = settings.target.clone();
    let clients = Clients::load(global).await;
    let step = progress.begin("reading what exists", false);
    let found = match look(&clients, &settings).await {
        Ok(f) => f,
        Err(e) => return refused(json_out, &progress, &e),
    };
    drop(step);
    let work = found
        .teardown
        .verdicts
        .values()
        .filter(|(_, v)| v.acts())
        .count();
    if !json_out {
        crate::outln!(
            "das-setup down: {} {} in {}, account {}",
            kind_word(target.kind),
            target.id,
            found.identity.region,
            found.identity.account
        );
        crate::out!("{}", to_text(&found.teardown));
    }
    if settings.dry_run || work == 0 {
        progress.finish();
        if !json_out {
            crate::outln!(
                "{}",
                if settings.dry_run {
                    "Dry run: nothing was changed."
                } else {
                    "Nothing to delete."
                }
            );
        }
        emit_json(
            json_out,
            &document(&target, &found, settings.dry_run, false, &[]),
        );
        return EXIT_OK;
    }
    if !settings.yes {
        let deletes_data = found.teardown.wants(Resource::Bucket).is_some();
        let question = if deletes_data {
            format!(
                "Delete these {work} resource(s), INCLUDING EVERY AUDIT EVENT in s3://{} (all versions)?",
                found.teardown.bucket
            )
        } else {
            format!("Delete these {work} resource(s)?")
        };
        match confirm(&question) {
            Ok(true) => {}
            Ok(false) => {
                progress.finish();
                crate::errln!("das-setup down: not confirmed; nothing was changed");
                emit_json(
                    json_out,
                    &json!({"command": "down", "error": "not confirmed"}),
                );
                return EXIT_REFUSED;
            }
            Err(e) => return refused(json_out, &progress, &e),
        }
    }
    let errors = engine::delete(&clients, &found.teardown, &progress).await;
    progress.finish();
    emit_json(
        json_out,
        &document(&target, &found, false, errors.is_empty(), &errors),
    );
    if errors.is_empty() {
        if !json_out {
            let kept = found
                .teardown
                .verdicts
                .get(&Resource::Bucket)
                .is_some_and(|(_, v)| matches!(v, Verdict::Keep(_)));
            crate::outln!(
                "Done in {}.{}",
                seconds(progress.elapsed()),
                if kept {
                    format!(
                        " The bucket {} and its audit events are kept (--delete-bucket deletes them).",
                        found.teardown.bucket
                    )
                } else {
                    String::new()
                }
            );
        }
        EXIT_OK
    } else {
        crate::errln!("das-setup down: {} deletion(s) failed:", errors.len());
        for e in &errors {
            crate::errln!("  - {e}");
        }
        crate::errln!("The rest was deleted; run `das-setup down` again to retry what failed.");
        EXIT_FAILED
    }
}

fn refused(json_out: bool, progress: &Progress, e: &Refusal) -> u8 {
    session::refused("down", json_out, progress, e, json!({"deleted": false}))
}

async fn look(clients: &Clients, settings: &DownSettings) -> Result<Found, Refusal> {
    let target = &settings.target;
    let (identity, database) = session::resolve(clients, target).await?;
    let names = Names::new(target, &identity.account, &identity.region);
    let (deployment, key) = futures_util::future::join(
        deployment::observe(clients, &names, settings.bucket.as_deref()),
        key::observe(clients, &names.key_alias),
    )
    .await;
    let o = deployment?;
    let key = match (key?, &database) {
        // An up interrupted between CreateKey and CreateAlias left its key without the alias.
        (None, Some(db)) if settings.delete_key => {
            key::orphan(clients, target, &db.arn, KeyPurpose::Stream).await?
        }
        (key, _) => key,
    };
    let key_tags = match &key {
        Some(k) if settings.delete_key && !k.pending_deletion() => {
            Some(key::tags(clients, k).await?)
        }
        _ => None,
    };
    let bucket_verdict = bucket::verdict(&o.bucket, settings.delete_bucket);
    // The signing key goes only when the bucket does (or is gone already).
    let delete_signing_key =
        settings.delete_bucket && matches!(bucket_verdict, Verdict::Delete | Verdict::Absent);
    let signing_key = match (&o.signing_key, &database) {
        (None, Some(db)) if delete_signing_key => {
            key::orphan(clients, target, &db.arn, KeyPurpose::Digests).await?
        }
        (key, _) => key.clone(),
    };
    let signing_key_tags = match &signing_key {
        Some(k) if delete_signing_key && !k.pending_deletion() => {
            Some(key::tags(clients, k).await?)
        }
        _ => None,
    };
    let stream_name = database
        .as_ref()
        .map_or_else(|| "(database not found)".to_owned(), |d| d.stream_name());
    let managed = |v: Verdict| v == Verdict::Delete;
    let verdicts = Resource::ALL
        .into_iter()
        .map(|resource| {
            let entry = match resource {
                Resource::Key => (
                    names.key_alias.clone(),
                    key::verdict(
                        KeyPurpose::Stream,
                        key.as_ref(),
                        key_tags.as_ref(),
                        settings.delete_key,
                    ),
                ),
                Resource::SigningKey => (
                    names.digest_key_alias.clone(),
                    key::verdict(
                        KeyPurpose::Digests,
                        signing_key.as_ref(),
                        signing_key_tags.as_ref(),
                        delete_signing_key,
                    ),
                ),
                Resource::ActivityStream => (
                    stream_name.clone(),
                    activity_stream::verdict(database.as_ref()),
                ),
                Resource::Bucket => (o.bucket_name.clone(), bucket_verdict.clone()),
                Resource::AlertsTopic => (
                    names.alerts_topic.clone(),
                    topic::verdict(o.alerts_topic.as_ref()),
                ),
                Resource::Alarms => (
                    format!("{}*", names.alarm_prefix),
                    alarms::verdict(&o.alarms),
                ),
                Resource::ProcessorRole => (
                    names.processor_role.clone(),
                    role::verdict(o.processor_role.as_ref()),
                ),
                Resource::FirehoseRole => (
                    names.firehose_role.clone(),
                    role::verdict(o.firehose_role.as_ref()),
                ),
                Resource::FunctionLogGroup => (
                    names.lambda_log_group.clone(),
                    log_group::verdict(
                        LogGroupSpec::function(&names),
                        o.function_logs.is_some(),
                        o.function
                            .as_ref()
                            .map(|f| managed(function::verdict(Some(f)))),
                    ),
                ),
                Resource::FirehoseLogGroup => (
                    names.firehose_log_group.clone(),
                    log_group::verdict(
                        LogGroupSpec::firehose(&names),
                        o.firehose_logs.is_some(),
                        o.delivery
                            .as_ref()
                            .map(|s| managed(delivery_stream::verdict(Some(s)))),
                    ),
                ),
                Resource::Function => (
                    names.function.clone(),
                    function::verdict(o.function.as_ref()),
                ),
                Resource::DeliveryStream => (
                    names.delivery_stream.clone(),
                    delivery_stream::verdict(o.delivery.as_ref()),
                ),
                Resource::GlueTable => (
                    format!("{}.{}", names.glue_database, crate::query::table::TABLE),
                    catalog::verdict(o.catalog.as_ref()),
                ),
                Resource::Workgroup => (
                    names.workgroup.clone(),
                    workgroup::verdict(o.workgroup.as_ref()),
                ),
            };
            (resource, entry)
        })
        .collect();
    Ok(Found {
        identity,
        teardown: Teardown {
            database,
            bucket: o.bucket_name.clone(),
            names,
            key,
            signing_key,
            own_key_statement: alarms::key_statement_present(&o.alarms),
            verdicts,
        },
    })
}

/// The order `down` works in, for the listing.
const ORDER: [Resource; 14] = [
    Resource::DeliveryStream,
    Resource::Function,
    Resource::AlertsTopic,
    Resource::Alarms,
    Resource::ProcessorRole,
    Resource::FirehoseRole,
    Resource::FunctionLogGroup,
    Resource::FirehoseLogGroup,
    Resource::GlueTable,
    Resource::Workgroup,
    Resource::ActivityStream,
    Resource::Bucket,
    Resource::Key,
    Resource::SigningKey,
];

fn rows(t: &Teardown) -> impl Iterator<Item = (Resource, &str, &Verdict)> {
    ORDER
        .into_iter()
        .filter_map(|r| t.verdicts.get(&r).map(|(name, v)| (r, name.as_str(), v)))
}

fn to_text(t: &Teardown) -> String {
    let mut out = String::new();
    let mut count = 0;
    for (resource, name, verdict) in rows(t) {
        let (mark, text) = match verdict {
            Verdict::Delete => ("-", "delete".to_owned()),
            Verdict::Stop => ("-", "stop (and wait until stopped)".to_owned()),
            Verdict::WaitStopped => ("-", "stopping: wait until stopped".to_owned()),
            Verdict::Keep(why) => ("=", format!("keep: {why}")),
            Verdict::Absent if resource == Resource::ActivityStream => (" ", "stopped".to_owned()),
            Verdict::Absent => (" ", "not found".to_owned()),
        };
        if verdict.acts() {
            count += 1;
        }
        out.push_str(&format!(
            "  {mark} {:<20} {:<44} {text}\n",
            resource.as_str(),
            name
        ));
    }
    out.push_str(&format!("{count} to delete or stop\n"));
    out
}

fn document(
    target: &TargetRef,
    found: &Found,
    dry_run: bool,
    done: bool,
    errors: &[DownError],
) -> Value {
    json!({
        "command": "down",
        "target": {"kind": kind_word(target.kind), "id": target.id},
        "account": found.identity.account,
        "region": found.identity.region,
        "dryRun": dry_run,
        "deleted": done,
        "resources": rows(&found.teardown).map(|(resource, name, verdict)| {
            let (action, reason) = match verdict {
                Verdict::Delete => ("delete", None),
                Verdict::Stop => ("stop", None),
                Verdict::WaitStopped => ("wait-stopped", None),
                Verdict::Keep(why) => ("keep", Some(why.clone())),
                Verdict::Absent => ("absent", None),
            };
            json!({"resource": resource.as_str(), "name": name, "action": action, "reason": reason})
        }).collect::<Vec<_>>(),
        "errors": errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
